//! Crash points for tests: `OPENDUCK_CRASH_AT=<point>` makes the process
//! abort at that point, as a power cut or `kill -9` would, so that tests can
//! check what survives a writer or a collection dying at the worst moment.
//!
//! Points: `after-layer-upload`, `before-head-update`, `after-head-update`,
//! `during-gc`.
//!
//! `OPENDUCK_PAUSE_AT=<point>` with `OPENDUCK_PAUSE_UNTIL=<file>` instead
//! holds the writer at `before-head-update` or `after-head-update` until that
//! file exists (at most a minute), so a test can take the database away from
//! it, or the client's request, meanwhile.

use std::sync::OnceLock;

/// Waits while `OPENDUCK_PAUSE_AT` names `point` and the file
/// `OPENDUCK_PAUSE_UNTIL` does not exist yet.
pub(crate) async fn pause(point: &str) {
    if std::env::var("OPENDUCK_PAUSE_AT").ok().as_deref() != Some(point) {
        return;
    }
    let Some(until) = std::env::var_os("OPENDUCK_PAUSE_UNTIL") else {
        return;
    };
    tracing::warn!(point, "OPENDUCK_PAUSE_AT: holding here");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::path::Path::new(&until).exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Aborts the process when `OPENDUCK_CRASH_AT` names `point`.
pub(crate) fn point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("OPENDUCK_CRASH_AT").ok().filter(|at| !at.is_empty()));
    if at.as_deref() == Some(point) {
        tracing::error!(point, "OPENDUCK_CRASH_AT: aborting the process here");
        std::process::abort();
    }
}
