//! Read replicas: databases served read-only from their writer's snapshots.
//!
//! A replica keeps two local files. The one attached serves reads; the other
//! is brought to the next snapshot (fetching only the blocks that differ),
//! and then the two trade places under the swap lock, which statements hold
//! for reading. A statement therefore sees one whole snapshot from start to
//! end, never a file being written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openduck_storage::{hydrate, SnapshotId, Storage};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::error::Result;
use crate::pool::{Lease, Pool};
use crate::sql::{quote_identifier, quote_literal};
use crate::stream::run_blocking;

/// How old the snapshot a replica just moved to was (its writer published
/// it that long before it became visible here).
static REPLICA_LAG: std::sync::LazyLock<opentelemetry::metrics::Gauge<f64>> = std::sync::LazyLock::new(|| {
    opentelemetry::global::meter("openduck")
        .f64_gauge("openduck_replica_lag_seconds")
        .with_unit("s")
        .with_description("Age of the snapshot a read replica last moved to, when it moved, by database.")
        .build()
});

/// One database served read-only.
#[derive(Debug)]
pub(crate) struct Replica {
    name: String,
    files: [PathBuf; 2],
    active: usize,
    snapshot: SnapshotId,
}

impl Replica {
    /// Brings the first file of replica `name` to the database's head,
    /// before DuckDB attaches it. A database without a snapshot yet is
    /// waited for, looking again every `poll`: a replica may start before
    /// its writer has published (every pod of a new cluster starts at once).
    pub(crate) async fn prepare(storage: &Storage, data_dir: &Path, name: &str, poll: Duration) -> Result<Self> {
        let snapshot = first_snapshot(storage, name, poll).await?;
        let manifest = storage.manifest(name, &snapshot).await?;
        let files = [0, 1].map(|n| data_dir.join(format!("{name}.replica{n}.duckdb")));
        let stats = hydrate(storage, &manifest, &files[0]).await?;
        info!(database = name, %snapshot, fetched = stats.blocks_fetched, kept = stats.blocks_kept, "replica ready");
        Ok(Replica {
            name: name.to_string(),
            files,
            active: 0,
            snapshot,
        })
    }

    /// The file DuckDB attaches.
    pub(crate) fn active_file(&self) -> &Path {
        &self.files[self.active]
    }

    /// The database replicated.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// The head of database `name`, once it has one.
async fn first_snapshot(storage: &Storage, name: &str, poll: Duration) -> Result<SnapshotId> {
    let mut waiting = false;
    loop {
        if let Some(snapshot) = storage.head(name).await? {
            return Ok(snapshot);
        }
        if !waiting {
            info!(database = name, "replica waits for its writer's first snapshot");
            waiting = true;
        }
        tokio::time::sleep(poll).await;
    }
}

/// The replicas of an executor, and the task that moves them to their
/// writers' new snapshots; stops following when dropped.
#[derive(Debug)]
pub(crate) struct Replication {
    names: Vec<String>,
    swap: Arc<RwLock<()>>,
    follower: JoinHandle<()>,
}

impl Replication {
    /// Follows `replicas`, attached on `pool`, checking every `interval`.
    pub(crate) fn start(storage: Storage, replicas: Vec<Replica>, pool: Arc<Pool>, interval: Duration) -> Self {
        let names = replicas.iter().map(|replica| replica.name.clone()).collect();
        let swap = Arc::new(RwLock::new(()));
        let follower = tokio::spawn(follow(storage, replicas, pool, Arc::clone(&swap), interval));
        Replication { names, swap, follower }
    }

    /// The databases replicated.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Held for reading by every statement, for writing by a replica moving
    /// to a new snapshot.
    pub(crate) fn swap(&self) -> &Arc<RwLock<()>> {
        &self.swap
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// Follows the heads of every replica, checking every `interval`.
async fn follow(
    storage: Storage,
    mut replicas: Vec<Replica>,
    pool: Arc<Pool>,
    swap: Arc<RwLock<()>>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for replica in &mut replicas {
            if let Err(error) = advance(&storage, replica, &pool, &swap).await {
                warn!(database = %replica.name, %error, "replica cannot follow its writer yet");
            }
        }
    }
}

async fn advance(storage: &Storage, replica: &mut Replica, pool: &Arc<Pool>, swap: &Arc<RwLock<()>>) -> Result<()> {
    let Some(head) = storage.head(&replica.name).await? else {
        return Ok(());
    };
    if head == replica.snapshot {
        return Ok(());
    }
    let started = Instant::now();
    let manifest = storage.manifest(&replica.name, &head).await?;
    let next = 1 - replica.active;
    if !replica.files[next].exists() {
        // Start the second file from the first: a local copy, so that only
        // the blocks that changed come from storage.
        crate::files::copy_file(replica.active_file().to_path_buf(), replica.files[next].clone()).await?;
    }
    let stats = hydrate(storage, &manifest, &replica.files[next]).await?;
    let fetched = started.elapsed();
    // A connection cannot detach its own default database: step into the
    // in-memory catalog first (the pool makes every connection USE its
    // database again after a swap).
    let sql = format!(
        "USE memory; DETACH {name}; ATTACH {path} AS {name} (READ_ONLY)",
        name = quote_identifier(&replica.name),
        path = quote_literal(&replica.files[next].to_string_lossy()),
    );
    let back = format!(
        "ATTACH IF NOT EXISTS {path} AS {name} (READ_ONLY)",
        name = quote_identifier(&replica.name),
        path = quote_literal(&replica.active_file().to_string_lossy()),
    );
    {
        let _exclusive = swap.write().await;
        let conn = pool.get().await?;
        let swapped = run_blocking(Lease::pooled(conn), move |conn| match conn.conn().execute_batch(&sql) {
            Ok(()) => Ok(()),
            Err(error) => {
                // Never leave the database detached.
                let _ = conn.conn().execute_batch(&back);
                Err(error)
            }
        })
        .await;
        pool.reattached();
        swapped?;
    }
    pool.catalog_changed();
    replica.active = next;
    replica.snapshot = head;
    let lag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |now| {
            (now.as_millis() as f64 - manifest.created_at_ms as f64) / 1000.0
        });
    REPLICA_LAG.record(
        lag.max(0.0),
        &[opentelemetry::KeyValue::new("database", replica.name.clone())],
    );
    info!(
        database = %replica.name,
        snapshot = %replica.snapshot,
        fetched_blocks = stats.blocks_fetched,
        fetched_bytes = stats.bytes_fetched,
        kept_blocks = stats.blocks_kept,
        fetch_ms = fetched.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "replica moved to a new snapshot"
    );
    Ok(())
}
