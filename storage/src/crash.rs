//! Crash points for tests: `OPENDUCK_CRASH_AT=<point>` makes the process
//! abort at that point, as a power cut or `kill -9` would, so that tests can
//! check what survives a writer or a collection dying at the worst moment.
//!
//! Points: `after-layer-upload`, `before-head-update`, `after-head-update`,
//! `during-gc`.

use std::sync::OnceLock;

/// Aborts the process when `OPENDUCK_CRASH_AT` names `point`.
pub(crate) fn point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("OPENDUCK_CRASH_AT").ok().filter(|at| !at.is_empty()));
    if at.as_deref() == Some(point) {
        tracing::error!(point, "OPENDUCK_CRASH_AT: aborting the process here");
        std::process::abort();
    }
}
