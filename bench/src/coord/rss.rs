//! Resident memory of a process, from `/proc/<pid>/status`: what a server holds.
//!
//! `VmRSS` is what the process has resident now and `VmHWM` the most it ever had (the
//! high-water mark, which catches transient peaks such as a snapshot buffer). `VmRSS` splits
//! into `RssAnon` (heap, stacks: memory only the process can give back) and `RssFile`
//! (mapped files such as the executable and memory-mapped log segments, which the kernel can
//! drop and re-read), so a report can tell the two apart. Values are in kB in the file and
//! in bytes here.

use std::path::Path;

/// A process's resident memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rss {
    /// `VmRSS`: resident now.
    pub rss_bytes: u64,
    /// `VmHWM`: the peak of `VmRSS` over the process's life.
    pub hwm_bytes: u64,
    /// `RssAnon`: the anonymous part of `VmRSS`.
    pub anon_bytes: u64,
    /// `RssFile`: the file-backed part of `VmRSS`.
    pub file_bytes: u64,
}

/// The resident memory of process `pid`; `None` when it is gone or `/proc` is unreadable.
pub fn process_rss(pid: u32) -> Option<Rss> {
    let path = Path::new("/proc").join(pid.to_string()).join("status");
    parse_status(&std::fs::read_to_string(path).ok()?)
}

/// The memory fields of the text of a `/proc/<pid>/status` file (`VmRSS` and `VmHWM` are
/// required; kernels before 4.5 lack the split, which then reads 0).
fn parse_status(status: &str) -> Option<Rss> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?;
        let kb: u64 = line.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    };
    Some(Rss {
        rss_bytes: field("VmRSS")?,
        hwm_bytes: field("VmHWM")?,
        anon_bytes: field("RssAnon").unwrap_or(0),
        file_bytes: field("RssFile").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_memory_fields() {
        let status = "Name:\tjava\nVmPeak:\t 5000 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n\
                      RssAnon:\t   1000 kB\nRssFile:\t     24 kB\nRssShmem:\t0 kB\n";
        let rss = parse_status(status).unwrap();
        assert_eq!(
            rss,
            Rss {
                rss_bytes: 1 << 20,
                hwm_bytes: 2 << 20,
                anon_bytes: 1_024_000,
                file_bytes: 24 * 1024
            }
        );
        assert_eq!(parse_status("Name:\tx\nVmRSS:\t1 kB\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let rss = process_rss(std::process::id()).unwrap();
        assert!(rss.rss_bytes > 0 && rss.hwm_bytes >= rss.rss_bytes);
        assert!(rss.anon_bytes + rss.file_bytes <= rss.rss_bytes);
    }
}
