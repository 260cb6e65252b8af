//! How `zabflow cli` prints things: the text formats of ZooKeeper's shell (`zkCli.sh`), so
//! that people and scripts used to it read zabflow's output unchanged.
//!
//! ```text
//! children   = "[" name ("," SP name)* "]"                  ls, sorted by name
//! stat       = "cZxid = 0x" hex NL "ctime = " date NL "mZxid = 0x" hex NL
//!              "mtime = " date NL "pZxid = 0x" hex NL "cversion = " int NL
//!              "dataVersion = " int NL "aclVersion = " int NL
//!              "ephemeralOwner = 0x" hex NL "dataLength = " int NL "numChildren = " int NL
//! date       = Www SP Mmm SP dd SP hh ":" mm ":" ss SP "UTC" SP yyyy       (Java's Date)
//! acl entry  = "'" scheme ",'" id NL ": " perms NL          perms in the order "cdrwa"
//! event      = NL "WATCHER::" NL NL "WatchedEvent state:" State " type:" Type
//!              " path:" (path | "null") NL
//! ```
//!
//! Hex is lower case without leading zeros and two's complement for negative values, as
//! Java's `Long.toHexString`. Dates are printed in UTC (ZooKeeper's shell uses the JVM's
//! time zone). Everything here is a pure function of its arguments.

use std::fmt::Write as _;

use zabflow_net::client::WatchedEvent;
use zabflow_net::jute::{ErrorCode, EventType, Perms, Stat, ACL};
use zabflow_net::ZkError;

/// `ls`: the names, sorted, as Java prints a list.
#[must_use]
pub fn format_list(mut names: Vec<String>) -> String {
    names.sort_unstable();
    format!("[{}]\n", names.join(", "))
}

/// `stat`, `get -s`, `ls -s`, `set -s`: one `name = value` line per `Stat` field.
#[must_use]
pub fn format_stat(stat: &Stat) -> String {
    let mut text = String::with_capacity(320);
    let mut line = |name: &str, value: String| {
        let _ = writeln!(text, "{name} = {value}");
    };
    line("cZxid", hex(stat.czxid));
    line("ctime", format_date(stat.ctime));
    line("mZxid", hex(stat.mzxid));
    line("mtime", format_date(stat.mtime));
    line("pZxid", hex(stat.pzxid));
    line("cversion", stat.cversion.to_string());
    line("dataVersion", stat.version.to_string());
    line("aclVersion", stat.aversion.to_string());
    line("ephemeralOwner", hex(stat.ephemeral_owner));
    line("dataLength", stat.data_length.to_string());
    line("numChildren", stat.num_children.to_string());
    text
}

/// `0x` and Java's `Long.toHexString`: lower case, two's complement for negatives.
#[must_use]
pub fn hex(value: i64) -> String {
    format!("0x{:x}", value as u64)
}

/// A time in milliseconds since the epoch as Java's `Date.toString`, in UTC:
/// `Thu Jan 01 00:00:00 UTC 1970`.
#[must_use]
pub fn format_date(epoch_ms: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let seconds = epoch_ms.div_euclid(1_000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let weekday = WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    let (hour, minute, second) =
        (second_of_day / 3_600, second_of_day / 60 % 60, second_of_day % 60);
    format!("{weekday} {month_name} {day:02} {hour:02}:{minute:02}:{second:02} UTC {year}")
}

/// (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `getAcl`: each entry as jute prints an `Id` record, then its permissions.
#[must_use]
pub fn format_acl(acl: &[ACL]) -> String {
    let mut text = String::new();
    for entry in acl {
        let (scheme, id) = (jute_string(&entry.id.scheme), jute_string(&entry.id.id));
        let _ = writeln!(text, "{scheme},{id}\n: {}", perm_string(entry.perms));
    }
    text
}

/// A string as jute's `toString` prints it: a leading quote and a few characters escaped.
fn jute_string(value: &str) -> String {
    let mut text = String::with_capacity(value.len() + 1);
    text.push('\'');
    for character in value.chars() {
        match character {
            '\0' => text.push_str("%00"),
            '\n' => text.push_str("%0A"),
            '\r' => text.push_str("%0D"),
            ',' => text.push_str("%2C"),
            '}' => text.push_str("%7D"),
            '%' => text.push_str("%25"),
            other => text.push(other),
        }
    }
    text
}

/// Permission bits as letters, in ZooKeeper's order `cdrwa`.
#[must_use]
pub fn perm_string(perms: i32) -> String {
    [(Perms::CREATE, 'c'), (Perms::DELETE, 'd'), (Perms::READ, 'r'), (Perms::WRITE, 'w')]
        .into_iter()
        .chain([(Perms::ADMIN, 'a')])
        .filter(|(bit, _)| perms & bit != 0)
        .map(|(_, letter)| letter)
        .collect()
}

/// A watch event or session-state change, as the shell's default watcher prints it.
#[must_use]
pub fn format_event(event: &WatchedEvent) -> String {
    let path = event.path.as_deref().unwrap_or("null");
    let (state, event_type) = (event.state, event.event_type);
    format!("\nWATCHER::\n\nWatchedEvent state:{state:?} type:{event_type:?} path:{path}\n")
}

/// Whether an event is a session-state change rather than a watch firing.
#[must_use]
pub fn is_state_change(event: &WatchedEvent) -> bool {
    event.event_type == EventType::None
}

/// The message the shell prints for a failed call on `path`.
#[must_use]
pub fn error_message(error: &ZkError, path: &str) -> String {
    match error {
        ZkError::Code(code) => code_message(*code, path),
        ZkError::UnknownCode(code) => format!("KeeperErrorCode = Unknown error {code} for {path}"),
        other => other.to_string(),
    }
}

/// ZooKeeper's shell rewords the common failures; the rest read `KeeperErrorCode = …`.
fn code_message(code: ErrorCode, path: &str) -> String {
    let reworded = match code {
        ErrorCode::NoNode => "Node does not exist: ",
        ErrorCode::NoChildrenForEphemerals => "Ephemerals cannot have children: ",
        ErrorCode::NodeExists => "Node already exists: ",
        ErrorCode::NotEmpty => "Node not empty: ",
        ErrorCode::NotReadOnly => "Not a read-only call: ",
        ErrorCode::InvalidAcl => "Acl is not valid : ",
        ErrorCode::NoAuth => "Insufficient permission : ",
        ErrorCode::BadArguments => "Arguments are not valid : ",
        ErrorCode::BadVersion => "version No is not valid : ",
        ErrorCode::QuotaExceeded => "Quota has exceeded : ",
        _ => return format!("KeeperErrorCode = {} for {path}", code_name(code)),
    };
    format!("{reworded}{path}")
}

/// `KeeperException.getCodeMessage`: mostly the code's name, a few in words.
fn code_name(code: ErrorCode) -> String {
    let words = match code {
        ErrorCode::Ok => "ok",
        ErrorCode::ApiError => "APIError",
        ErrorCode::InvalidAcl => "InvalidACL",
        ErrorCode::NotEmpty => "Directory not empty",
        ErrorCode::SessionExpired => "Session expired",
        ErrorCode::InvalidCallback => "Invalid callback",
        ErrorCode::SessionMoved => "Session moved",
        ErrorCode::NotReadOnly => "Not a read-only call",
        ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
        ErrorCode::NoWatcher => "No such watcher",
        ErrorCode::ReconfigDisabled => "Reconfig is disabled",
        ErrorCode::QuotaExceeded => "Quota has exceeded",
        ErrorCode::ThrottledOp => "Op throttled due to high load",
        other => return format!("{other:?}"),
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zabflow_net::jute::{Id, KeeperState};

    #[test]
    fn dates_read_as_java_prints_them() {
        assert_eq!(format_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(format_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(format_date(1_709_555_696_789), "Mon Mar 04 12:34:56 UTC 2024");
        assert_eq!(format_date(-1), "Wed Dec 31 23:59:59 UTC 1969");
    }

    #[test]
    fn stat_lines_use_java_hex() {
        let stat = Stat { czxid: 0x1a, ephemeral_owner: -1, num_children: 2, ..Stat::default() };
        let text = format_stat(&stat);
        assert!(text.starts_with("cZxid = 0x1a\nctime = Thu Jan 01 00:00:00 UTC 1970\n"));
        assert!(text.contains("ephemeralOwner = 0xffffffffffffffff\n"));
        assert!(text.ends_with("dataLength = 0\nnumChildren = 2\n"));
        assert_eq!(text.lines().count(), 11);
    }

    #[test]
    fn acl_and_lists_print_as_zookeeper() {
        let acl = ACL { perms: Perms::ALL, id: Id { scheme: "world".into(), id: "anyone".into() } };
        assert_eq!(format_acl(&[acl]), "'world,'anyone\n: cdrwa\n");
        assert_eq!(perm_string(Perms::READ | Perms::ADMIN), "ra");
        assert_eq!(jute_string("a,b%"), "'a%2Cb%25");
        assert_eq!(format_list(vec!["b".into(), "a".into()]), "[a, b]\n");
        assert_eq!(format_list(Vec::new()), "[]\n");
    }

    #[test]
    fn errors_and_events_read_as_zookeeper() {
        let message = |code| error_message(&ZkError::Code(code), "/x");
        assert_eq!(message(ErrorCode::NoNode), "Node does not exist: /x");
        assert_eq!(message(ErrorCode::BadVersion), "version No is not valid : /x");
        assert_eq!(message(ErrorCode::NoWatcher), "KeeperErrorCode = No such watcher for /x");
        assert_eq!(message(ErrorCode::ConnectionLoss), "KeeperErrorCode = ConnectionLoss for /x");
        let event = WatchedEvent {
            event_type: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: Some("/x".into()),
        };
        assert_eq!(
            format_event(&event),
            "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/x\n"
        );
    }
}
