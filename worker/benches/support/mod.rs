//! What the worker's benchmarks read of a process from `/proc`.

/// User + system CPU seconds of the process whose `stat` file is `path` (`/proc/self/stat`,
/// `/proc/<pid>/stat`).
pub fn proc_cpu_seconds(path: &str) -> f64 {
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's CPU seconds so far.
pub fn cpu_seconds() -> f64 {
    proc_cpu_seconds("/proc/self/stat")
}
