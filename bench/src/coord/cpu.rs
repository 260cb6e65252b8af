//! CPU time of processes, from `/proc/<pid>/stat`: what a server spent serving a window.
//!
//! `utime + stime` (fields 14 and 15, after the parenthesised command name, which may itself
//! hold spaces and parentheses) are in clock ticks of `sysconf(_SC_CLK_TCK)`, usually 10 ms.
//! A sample over a window of several seconds is therefore good to about 1 %.

use std::path::Path;

/// User plus system CPU time of process `pid` (all its threads), in microseconds; `None`
/// when the process is gone or `/proc` is unreadable.
pub fn process_cpu_us(pid: u32) -> Option<u64> {
    stat_cpu_us(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

/// As [`process_cpu_us`] for this process (the load generator and its client I/O threads).
pub fn own_cpu_us() -> Option<u64> {
    stat_cpu_us(Path::new("/proc/self/stat"))
}

/// The summed CPU time of `pids`, `None` if any of them cannot be read.
pub fn processes_cpu_us(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|&pid| process_cpu_us(pid)).sum()
}

fn stat_cpu_us(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let ticks = parse_cpu_ticks(&text)?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    (ticks_per_s > 0).then(|| ticks * 1_000_000 / ticks_per_s)
}

/// `utime + stime` in clock ticks from the text of a `/proc/<pid>/stat` file.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3) … utime (14), stime (15).
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let stat = "1234 (java (main) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 40 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_cpu_time_grows() {
        let before = own_cpu_us().unwrap();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(own_cpu_us().unwrap() >= before, "{x}");
        assert!(processes_cpu_us(&[std::process::id()]).is_some());
    }
}
