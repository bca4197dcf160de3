//! glibc's malloc, tuned for a server that streams large buffers.
//!
//! glibc serves an allocation above its mmap threshold with a mapping of its own,
//! unmapped when freed, and hands the free top of a heap back to the kernel once more
//! than its trim threshold is free there. Both start low (128 KiB); the mmap threshold
//! rises only as large blocks are freed, and the trim threshold follows it. A query
//! streams batches of megabytes (DuckDB's Arrow buffers, IPC message bodies), so with
//! the defaults much of that memory goes back to the kernel and is faulted in again,
//! batch after batch. Where the host takes such memory back from a virtual machine
//! (free page reporting), every fault is expensive: streaming 10 million rows took
//! 0.85 s instead of 0.65 s on the benchmark machine (docs/benchmarks.md).
//!
//! The mmap threshold is set to the highest glibc itself would reach (32 MiB), and so is
//! the trim threshold: each heap may keep up to 32 MiB free (a thread's heap is at most
//! 64 MiB, so twice that would never be trimmed). A user's own
//! thresholds (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, or the same in
//! `GLIBC_TUNABLES`) are left alone.

use std::ffi::OsString;

/// Sets the thresholds, unless the user set malloc's parameters. Call it first
/// thing in `main`, before other threads start.
pub(crate) fn tune() {
    if !users_own(std::env::vars_os()) {
        set_thresholds();
    }
}

/// Whether `variables` (the environment) set malloc's parameters.
fn users_own(mut variables: impl Iterator<Item = (OsString, OsString)>) -> bool {
    variables.any(|(name, value)| {
        let name = name.to_string_lossy();
        let value = value.to_string_lossy();
        matches!(name.as_ref(), "MALLOC_MMAP_THRESHOLD_" | "MALLOC_TRIM_THRESHOLD_")
            || (name == "GLIBC_TUNABLES"
                && (value.contains("glibc.malloc.mmap_threshold") || value.contains("glibc.malloc.trim_threshold")))
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
#[allow(unsafe_code)]
fn set_thresholds() {
    /// Largest allocation served from a heap rather than a mapping of its own.
    const MMAP_THRESHOLD: i32 = 32 << 20;
    /// Free memory a heap keeps at its top before handing it back.
    const TRIM_THRESHOLD: i32 = 32 << 20;
    // SAFETY: mallopt only changes malloc's parameters, and it is called before any
    // other thread allocates. A parameter it refuses stays as it was.
    unsafe {
        // Setting either turns glibc's own adjustment off: the trim threshold only
        // with the mmap one.
        if libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 {
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")))]
fn set_thresholds() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(variables: &[(&str, &str)]) -> impl Iterator<Item = (OsString, OsString)> {
        variables
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_users_own_malloc_settings_win() {
        assert!(!users_own(environment(&[("PATH", "/bin"), ("MALLOC_ARENA_MAX", "2")])));
        assert!(!users_own(environment(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2"
        )])));
        assert!(users_own(environment(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(users_own(environment(&[("MALLOC_MMAP_THRESHOLD_", "131072")])));
        assert!(users_own(environment(&[(
            "GLIBC_TUNABLES",
            "glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=65536"
        )])));
    }
}
