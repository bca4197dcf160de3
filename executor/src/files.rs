//! Where an executor's database files live, and copying them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Copies a local file off the async runtime (a reflink where the file
/// system offers one).
pub(crate) async fn copy_file(from: PathBuf, to: PathBuf) -> Result<()> {
    let path = to.clone();
    tokio::task::spawn_blocking(move || std::fs::copy(from, to))
        .await
        .map_err(|error| Error::TaskFailed(error.to_string()))?
        .map(drop)
        .map_err(|source| Error::Io { path, source })
}

/// The local file of a database an executor writes.
pub(crate) fn local_file(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(format!("{name}.duckdb"))
}
