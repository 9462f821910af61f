//! What machine the figures come from.

use std::path::Path;

/// A few lines describing CPU, memory, OS and the disk under `dir`.
pub fn describe(dir: &Path) -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .and_then(|rest| rest.split(':').nth(1))
        })
        .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|kb| kb.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown".to_owned(),
            |kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let disk = mount_of(dir).unwrap_or_else(|| "unknown".to_owned());
    vec![
        format!("CPU: {model}, {cores} cores available"),
        format!("Memory: {memory}"),
        format!("Kernel: Linux {}", kernel.trim()),
        format!("Benchmark data folder: {} on {disk}", dir.display()),
    ]
}

/// The device and file system holding `dir`, from /proc/mounts.
fn mount_of(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount, fs) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(mount)
                .then(|| (mount.len(), format!("{device} ({fs}, mounted at {mount})")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, description)| description)
}
