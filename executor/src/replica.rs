//! Read replicas: databases served read-only from their writer's snapshots.
//!
//! A replica keeps two local files. The one attached serves reads; the other
//! is brought to the next snapshot (fetching only the blocks that differ),
//! and then the two trade places under the swap lock, which statements hold
//! for reading. A statement therefore sees one whole snapshot from start to
//! end, never a file being written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openduck_storage::{hydrate, SnapshotId, Storage};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::error::Result;
use crate::pool::{Lease, Pool};
use crate::sql::{quote_identifier, quote_literal};
use crate::stream::run_blocking;

/// Where one replica stands, as [`Replication::progress`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaProgress {
    /// The database replicated.
    pub database: String,
    /// The snapshot it serves.
    pub snapshot: String,
    /// When the writer published the oldest snapshot this replica has seen
    /// and not moved to yet; `None` when it serves the newest it saw.
    pub behind_since: Option<SystemTime>,
}

impl ReplicaProgress {
    /// How far behind its writer the replica is now: zero when it serves
    /// the newest snapshot it saw, else the time since the writer published
    /// one it has not moved to.
    pub fn lag(&self) -> Duration {
        self.behind_since
            .and_then(|since| SystemTime::now().duration_since(since).ok())
            .unwrap_or_default()
    }
}

/// Every replica's progress, shared between the follower and its readers.
type Progress = Arc<parking_lot::Mutex<Vec<ReplicaProgress>>>;

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
    progress: Progress,
    follower: JoinHandle<()>,
}

impl Replication {
    /// Follows `replicas`, attached on `pool`, checking every `interval`.
    pub(crate) fn start(storage: Storage, replicas: Vec<Replica>, pool: Arc<Pool>, interval: Duration) -> Self {
        let names = replicas.iter().map(|replica| replica.name.clone()).collect();
        let swap = Arc::new(RwLock::new(()));
        let progress: Progress = Arc::new(parking_lot::Mutex::new(
            replicas
                .iter()
                .map(|replica| ReplicaProgress {
                    database: replica.name.clone(),
                    snapshot: replica.snapshot.to_string(),
                    behind_since: None,
                })
                .collect(),
        ));
        openduck_telemetry::observe_gauge(
            "openduck_replica_lag_seconds",
            "How far a read replica is behind its writer: the time since the writer published a snapshot the replica has not moved to (0 when it serves the newest it saw), by database.",
            openduck_telemetry::GaugeUnit::Seconds,
            &progress,
            |progress| {
                progress
                    .lock()
                    .iter()
                    .map(|replica| {
                        let database = opentelemetry::KeyValue::new("database", replica.database.clone());
                        (replica.lag().as_secs_f64(), vec![database])
                    })
                    .collect()
            },
        );
        let follower = tokio::spawn(follow(
            storage,
            replicas,
            pool,
            Arc::clone(&swap),
            Arc::clone(&progress),
            interval,
        ));
        Replication {
            names,
            swap,
            progress,
            follower,
        }
    }

    /// The databases replicated.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Where each replica stands.
    pub(crate) fn progress(&self) -> Vec<ReplicaProgress> {
        self.progress.lock().clone()
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
    progress: Progress,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for (index, replica) in replicas.iter_mut().enumerate() {
            let note = Note {
                progress: &progress,
                index,
            };
            if let Err(error) = advance(&storage, replica, &pool, &swap, note).await {
                warn!(database = %replica.name, %error, "replica cannot follow its writer yet");
            }
        }
    }
}

/// Where one replica's progress is noted.
#[derive(Clone, Copy)]
struct Note<'a> {
    progress: &'a Progress,
    index: usize,
}

impl Note<'_> {
    fn update(self, change: impl FnOnce(&mut ReplicaProgress)) {
        if let Some(entry) = self.progress.lock().get_mut(self.index) {
            change(entry);
        }
    }
}

/// Moves `replica` to its database's head, if it has a newer one, and
/// `note`s where it stands.
async fn advance(
    storage: &Storage,
    replica: &mut Replica,
    pool: &Arc<Pool>,
    swap: &Arc<RwLock<()>>,
    note: Note<'_>,
) -> Result<()> {
    let Some(head) = storage.head(&replica.name).await? else {
        return Ok(());
    };
    if head == replica.snapshot {
        note.update(|progress| progress.behind_since = None);
        return Ok(());
    }
    let started = Instant::now();
    // Behind from now at the latest, even if the manifest cannot be read.
    note.update(|progress| {
        progress.behind_since.get_or_insert_with(SystemTime::now);
    });
    let manifest = storage.manifest(&replica.name, &head).await?;
    let published = UNIX_EPOCH + Duration::from_millis(manifest.created_at_ms);
    note.update(|progress| {
        // Since the oldest snapshot not moved to yet was published.
        if progress.behind_since.is_some_and(|since| published < since) {
            progress.behind_since = Some(published);
        }
    });
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
    note.update(|progress| {
        progress.snapshot = replica.snapshot.to_string();
        progress.behind_since = None;
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_is_behind_since_the_writer_published_what_it_has_not_moved_to() {
        let mut progress = ReplicaProgress {
            database: "db".into(),
            snapshot: "s1".into(),
            behind_since: None,
        };
        assert_eq!(progress.lag(), Duration::ZERO);
        progress.behind_since = Some(SystemTime::now() - Duration::from_secs(30));
        assert!((30..40).contains(&progress.lag().as_secs()), "{:?}", progress.lag());
        // A clock that went back reports no lag rather than a negative one.
        progress.behind_since = Some(SystemTime::now() + Duration::from_secs(30));
        assert_eq!(progress.lag(), Duration::ZERO);
    }
}
