//! Storage administration: `openduck snapshot`, `openduck clone` and
//! `openduck gc` work on differential storage directly, with or without a
//! server running.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use openduck_storage::{hydrate, EtcdHeads, GcOptions, Heads, Storage};

use crate::serve::{parse_duration, StorageArgs};

/// Where the storage is, and where its heads are.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    #[command(flatten)]
    storage: StorageArgs,

    /// etcd endpoints, when the heads live in a cluster's etcd (comma separated).
    #[arg(long, env = "OPENDUCK_ETCD", value_delimiter = ',')]
    etcd: Vec<String>,

    /// Key prefix of the cluster in etcd.
    #[arg(long, env = "OPENDUCK_ETCD_PREFIX", default_value = "/openduck")]
    etcd_prefix: String,
}

impl AdminArgs {
    async fn open(&self) -> Result<Storage, Box<dyn std::error::Error>> {
        let heads: Option<Arc<dyn Heads>> = if self.etcd.is_empty() {
            None
        } else {
            Some(Arc::new(EtcdHeads::connect(&self.etcd, &self.etcd_prefix, None).await?))
        };
        self.storage
            .open(heads)?
            .ok_or_else(|| "--storage none: there is no storage to work on".into())
    }
}

#[derive(Debug, Args)]
pub(crate) struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// List a database's snapshots, newest first.
    List {
        /// The database.
        database: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Write one snapshot out as a DuckDB file (open it read-only with any DuckDB).
    Export {
        /// The snapshot, as DATABASE@SNAPSHOT (an id, a unique prefix of at
        /// least six digits, or `latest`).
        snapshot: String,
        /// The file to write; it must not exist, unless --incremental.
        #[arg(long)]
        to: PathBuf,
        /// Bring an existing file (an earlier export) to the snapshot,
        /// fetching only the blocks that differ.
        #[arg(long)]
        incremental: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

pub(crate) async fn snapshot(args: SnapshotArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.command {
        SnapshotCommand::List { database, admin } => {
            let storage = admin.open().await?;
            println!(
                "{:<20}  {:<24}  {:>12}  {:<20}  database",
                "snapshot", "created (UTC)", "bytes", "parent"
            );
            for snapshot in storage.snapshots(&database).await? {
                println!(
                    "{:<20}  {:<24}  {:>12}  {:<20}  {}{}",
                    snapshot.id,
                    format_time(snapshot.created_at_ms),
                    snapshot.file_len,
                    snapshot.parent.as_ref().map_or("-".into(), ToString::to_string),
                    snapshot.database,
                    if snapshot.is_head { "  (head)" } else { "" },
                );
            }
        }
        SnapshotCommand::Export {
            snapshot,
            to,
            incremental,
            admin,
        } => {
            let (database, name) = snapshot
                .split_once('@')
                .ok_or_else(|| format!("{snapshot:?}: name a snapshot as DATABASE@SNAPSHOT"))?;
            if to.exists() && !incremental {
                return Err(format!(
                    "{} exists; export writes a new file (or pass --incremental)",
                    to.display()
                )
                .into());
            }
            let storage = admin.open().await?;
            let (id, manifest) = storage.resolve(database, name).await?;
            let stats = hydrate(&storage, &manifest, &to).await?;
            println!(
                "wrote snapshot {id} of {database} to {}: fetched {} blocks ({} bytes), kept {}",
                to.display(),
                stats.blocks_fetched,
                stats.bytes_fetched,
                stats.blocks_kept
            );
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct CloneArgs {
    /// The database to clone, optionally at a snapshot (SOURCE@SNAPSHOT).
    source: String,
    /// The new database; it must not exist.
    target: String,
    #[command(flatten)]
    admin: AdminArgs,
}

pub(crate) async fn clone(args: CloneArgs) -> Result<(), Box<dyn std::error::Error>> {
    let storage = args.admin.open().await?;
    let (source, snapshot) = match args.source.split_once('@') {
        Some((source, snapshot)) => (source, Some(snapshot)),
        None => (args.source.as_str(), None),
    };
    let id = storage.clone_database(source, snapshot, &args.target).await?;
    println!("cloned {source} at snapshot {id} as {}", args.target);
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Keep every snapshot that was a database's head within this long (for
    /// time travel), for example 7d or 12h.
    #[arg(long, env = "OPENDUCK_GC_RETAIN", default_value = "7d", value_parser = parse_duration)]
    retain: Duration,
    /// Never delete objects younger than this: a writer uploads layers before
    /// it publishes them.
    #[arg(long, env = "OPENDUCK_GC_GRACE", default_value = "1h", value_parser = parse_duration)]
    grace: Duration,
    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

pub(crate) async fn gc(args: GcArgs) -> Result<(), Box<dyn std::error::Error>> {
    let storage = args.admin.open().await?;
    let report = storage
        .gc(GcOptions {
            retain: args.retain,
            grace: args.grace,
            dry_run: args.dry_run,
        })
        .await?;
    let verb = if args.dry_run { "would delete" } else { "deleted" };
    println!(
        "kept {} snapshots and {} layers; {verb} {} snapshots and {} layers ({} bytes)",
        report.snapshots_kept,
        report.layers_kept,
        report.snapshots_deleted.len(),
        report.layers_deleted.len(),
        report.bytes_freed
    );
    Ok(())
}

/// `2026-11-21 10:04:05.123` from milliseconds since the epoch (UTC).
fn format_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || ms.to_string(),
            |time| time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(format_time(1_795_741_445_123), "2026-11-27 01:04:05.123");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00.000");
    }
}
