//! Facts about the machine and the build a report was measured on.
//!
//! Everything here is read from Linux's `/proc` and from `git`, never guessed: a value that
//! cannot be read is reported as `"unknown"` (or 0) rather than failing the run, because a
//! benchmark result is still worth keeping when, say, it runs outside a git checkout.

use serde::{Deserialize, Serialize};
use std::process::Command;

/// Placeholder for facts that could not be read.
pub const UNKNOWN: &str = "unknown";

/// CPU, core count and kernel of the machine that ran a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo` (or `unknown`).
    pub cpu_model: String,
    /// Cores this process may run on (`available_parallelism`, as `nproc` prints).
    pub cores: usize,
    /// Kernel name and release, as `uname -sr` prints them.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine this process runs on.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            cpu_model: cpu_model_from(&cpuinfo).unwrap_or_else(|| UNKNOWN.to_string()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: kernel_release(),
        }
    }
}

/// The first `model name` (x86) or `Model`/`Hardware` (ARM) line of a `/proc/cpuinfo` text.
fn cpu_model_from(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware", "cpu model"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == *key && !value.trim().is_empty()).then(|| value.trim().to_string())
        })
    })
}

/// `Linux 6.1.0-…`, read from `/proc/sys/kernel/{ostype,osrelease}`.
fn kernel_release() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
            .map(|text| text.trim().to_string())
            .ok()
    };
    match (read("ostype"), read("osrelease")) {
        (Some(os), Some(release)) => format!("{os} {release}"),
        _ => UNKNOWN.to_string(),
    }
}

/// The short commit of the current directory's git checkout, with `-dirty` when tracked
/// files differ from it, or `unknown` outside a repository.
pub fn git_rev() -> String {
    let Some(rev) = git_output(&["rev-parse", "--short", "HEAD"]) else {
        return UNKNOWN.to_string();
    };
    let dirty = git_output(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    if dirty {
        format!("{rev}-dirty")
    } else {
        rev
    }
}

/// Trimmed stdout of a successful `git` command, `None` on any failure.
fn git_output(args: &[&str]) -> Option<String> {
    let output =
        Command::new("git").args(args).stderr(std::process::Stdio::null()).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The peak resident set size of this process so far (`VmHWM`), in bytes; 0 if unreadable.
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    vm_hwm_bytes_from(&status).unwrap_or(0)
}

/// Parses `VmHWM:   1234 kB` out of a `/proc/<pid>/status` text.
fn vm_hwm_bytes_from(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let mut words = line["VmHWM:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpuinfo_and_status() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 3.0GHz\nflags\t: fpu\n";
        assert_eq!(cpu_model_from(cpuinfo).as_deref(), Some("Example CPU @ 3.0GHz"));
        assert_eq!(cpu_model_from("processor : 0\n"), None);
        assert_eq!(vm_hwm_bytes_from("Name: x\nVmHWM:\t    2048 kB\n"), Some(2048 * 1024));
    }

    #[test]
    fn detects_this_machine() {
        let machine = Machine::detect();
        assert!(machine.cores >= 1);
        assert!(peak_rss_bytes() > 0);
        assert!(!git_rev().is_empty());
    }
}
