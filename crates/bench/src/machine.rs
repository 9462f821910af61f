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
        format!(
            "Single-core check: {:.0} M steps/s of a fixed integer loop (shared VMs vary \
             from day to day; compare runs by this before comparing their figures)",
            single_core_steps_per_s() / 1e6
        ),
    ]
}

/// Steps per second of a fixed, allocation-free integer loop (xorshift),
/// best of five half-second tries: a rough gauge of this core's speed now.
fn single_core_steps_per_s() -> f64 {
    let mut best: f64 = 0.0;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut steps = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(500) {
            for _ in 0..100_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            steps += 100_000;
            std::hint::black_box(x);
        }
        best = best.max(steps as f64 / started.elapsed().as_secs_f64());
    }
    best
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
