//! The record encodings of zabflow's input logs, as `zabflow log gen` writes them and jobs
//! read them: keyed events (fixed-width binary) and web access-log lines (text).
//!
//! ```text
//! input log  = DIR/partition-<i>/ (a zabflow_core::log directory each) + DIR/MANIFEST
//! keyed      = event_time_ms:u64 LE | key:u64 LE | value:u64 LE          (24 bytes)
//! access     = client " - - [" dd "/" Mon "/" yyyy ":" HH ":" MM ":" SS " +0000] \""
//!              method " " url " HTTP/1.1\" " status " " bytes            (UTF-8, no newline)
//! ```
//!
//! A keyed event's layout is the engine's `Stamped<Event>` log encoding (timestamp, key,
//! value), so the log source reads a generated log as it is. Access lines are Apache's
//! common log format in UTC; their time has whole seconds.

use std::fmt::Write as _;

/// Bytes of an encoded [`KeyedEvent`].
pub const KEYED_EVENT_BYTES: usize = 24;

/// A keyed event with an event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyedEvent {
    /// Event time, milliseconds since the Unix epoch.
    pub event_time_ms: u64,
    pub key: u64,
    pub value: u64,
}

impl KeyedEvent {
    /// Appends the 24-byte encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.event_time_ms.to_le_bytes());
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.value.to_le_bytes());
    }

    /// The event `bytes` encode, or `None` unless they are exactly one encoding.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<KeyedEvent> {
        if bytes.len() != KEYED_EVENT_BYTES {
            return None;
        }
        let field = |index: usize| {
            u64::from_le_bytes(bytes[index * 8..index * 8 + 8].try_into().expect("eight bytes"))
        };
        Some(KeyedEvent { event_time_ms: field(0), key: field(1), value: field(2) })
    }
}

/// One access-log entry; text fields borrow from the line they were parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessEntry<'a> {
    /// Request time, milliseconds since the Unix epoch (a multiple of 1000).
    pub timestamp_ms: u64,
    pub client: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    pub status: u16,
    pub bytes: u64,
}

/// Why a line is not an access-log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an access-log line: {0}")]
pub struct AccessParseError(pub &'static str);

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

impl<'a> AccessEntry<'a> {
    /// Appends the entry's line (no newline) to `out`.
    ///
    /// # Panics
    /// If the timestamp is not a whole second (the format cannot hold it): a caller bug.
    pub fn write_line(&self, out: &mut String) {
        assert_eq!(self.timestamp_ms % 1000, 0, "access-log times are whole seconds");
        let seconds = self.timestamp_ms / 1000;
        let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
        let second_of_day = seconds % 86_400;
        let _ = write!(
            out,
            "{} - - [{day:02}/{}/{year:04}:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {}",
            self.client,
            MONTHS[month as usize - 1],
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
            self.method,
            self.url,
            self.status,
            self.bytes
        );
    }

    /// Parses a line written by [`AccessEntry::write_line`] (or any common-log-format line
    /// in UTC).
    ///
    /// # Errors
    /// [`AccessParseError`] naming the first part that does not fit.
    pub fn parse(line: &'a str) -> Result<AccessEntry<'a>, AccessParseError> {
        let (client, rest) = line.split_once(" - - [").ok_or(AccessParseError("client"))?;
        let (time, rest) = rest.split_once("] \"").ok_or(AccessParseError("time"))?;
        let timestamp_ms = parse_time(time).ok_or(AccessParseError("time"))? * 1000;
        let (request, rest) = rest.split_once("\" ").ok_or(AccessParseError("request"))?;
        let mut request_parts = request.split(' ');
        let method = request_parts.next().filter(|m| !m.is_empty());
        let url = request_parts.next().filter(|u| u.starts_with('/'));
        let (Some(method), Some(url)) = (method, url) else {
            return Err(AccessParseError("request"));
        };
        let (status, bytes) = rest.split_once(' ').ok_or(AccessParseError("status"))?;
        let status = status.parse().ok().filter(|s| (100..600).contains(s));
        let status = status.ok_or(AccessParseError("status"))?;
        let bytes = bytes.parse().map_err(|_| AccessParseError("bytes"))?;
        Ok(AccessEntry { timestamp_ms, client, method, url, status, bytes })
    }
}

/// Seconds since the Unix epoch of `dd/Mon/yyyy:HH:MM:SS +0000`.
fn parse_time(time: &str) -> Option<u64> {
    let time = time.strip_suffix(" +0000")?;
    let bytes = time.as_bytes();
    if bytes.len() != 20 || bytes[2] != b'/' || bytes[6] != b'/' || bytes[11] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let text = time.get(range)?;
        text.bytes().all(|b| b.is_ascii_digit()).then(|| text.parse().ok())?
    };
    let day = number(0..2)?;
    let month = MONTHS.iter().position(|&name| name == &time[3..6])? as u64 + 1;
    let year = number(7..11)?;
    let (hour, minute, second) = (number(12..14)?, number(15..17)?, number(18..20)?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    Some(days as u64 * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_events_round_trip_and_refuse_other_lengths() {
        let event = KeyedEvent { event_time_ms: 1_700_000_000_123, key: 42, value: 999 };
        let mut bytes = Vec::new();
        event.encode(&mut bytes);
        assert_eq!(bytes.len(), KEYED_EVENT_BYTES);
        assert_eq!(KeyedEvent::decode(&bytes), Some(event));
        assert_eq!(KeyedEvent::decode(&bytes[1..]), None);
        bytes.push(0);
        assert_eq!(KeyedEvent::decode(&bytes), None);
    }

    #[test]
    fn access_lines_round_trip() {
        let entry = AccessEntry {
            timestamp_ms: 971_185_736_000,
            client: "127.0.0.1",
            method: "GET",
            url: "/apache_pb.gif",
            status: 200,
            bytes: 2326,
        };
        let mut line = String::new();
        entry.write_line(&mut line);
        assert_eq!(
            line,
            "127.0.0.1 - - [10/Oct/2000:13:48:56 +0000] \"GET /apache_pb.gif HTTP/1.1\" 200 2326"
        );
        assert_eq!(AccessEntry::parse(&line), Ok(entry));
        for bad in ["", "x - - [", &line.replace("200 2326", "2000 1"), &line.replace("Oct", "Okt")]
        {
            assert!(AccessEntry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calendar_conversions_agree() {
        for days in (-1000..200_000).step_by(37) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
