//! What the load generators and benchmarks measure of a server process, read from Linux's
//! `/proc`: `None` when the process is gone or the file cannot be read.

use std::sync::OnceLock;

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Pss of a process (its share of every page it maps), in KiB.
pub fn pss_kib(pid: u32) -> Option<u64> {
    status_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// utime + stime of a process (all its threads), in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is the 3rd field, utime the 14th.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

/// The number after `key` on its line of a `/proc` file of `key: value kB` lines.
fn status_field(path: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `getconf CLK_TCK` (clock ticks per second of /proc/<pid>/stat), read once; 100 if unavailable.
fn clk_tck() -> f64 {
    static HZ: OnceLock<f64> = OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|k| k > 0));
        assert!(cpu_secs(me).is_some_and(|s| s >= 0.0));
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
