//! What the executor's integration tests share.

use std::sync::Arc;

use openduck_executor::{Executor, ExecutorConfig};
use tempfile::TempDir;

/// An executor `id` hosting database `db` in a new directory (kept as long
/// as the directory).
pub(crate) async fn open_executor(id: &str) -> (Arc<Executor>, TempDir) {
    let dir = TempDir::new().unwrap();
    let config = ExecutorConfig {
        id: id.into(),
        ..ExecutorConfig::new(dir.path(), vec!["db".into()])
    };
    let executor = tokio::task::spawn_blocking(move || Executor::open(config))
        .await
        .unwrap()
        .unwrap();
    (Arc::new(executor), dir)
}
