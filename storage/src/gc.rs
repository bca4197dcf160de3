//! Garbage collection: mark from every head, sweep what nothing reaches.
//!
//! Marking follows each database's head back through its parents while they
//! were the head within the retention (a snapshot counts from the moment its
//! child replaced it; the head itself is always kept, and so is everything a
//! clone's head reaches). Heads are marked twice, before and after listing
//! objects, so a head moved meanwhile (a clone) keeps what it reaches. Sweeping deletes manifests first, then
//! layers, and only objects older than the grace period: a writer uploads its
//! layers and manifest before it moves the head, so anything it is about to
//! publish is younger than the grace period and survives.

use std::collections::HashSet;
use std::time::Duration;

use tracing::info;

use crate::error::{Error, Result};
use crate::manifest::{now_ms, SnapshotId};
use crate::store::Storage;

/// How to collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Snapshots younger than this stay reachable for time travel.
    pub retain: Duration,
    /// Objects younger than this are never deleted.
    pub grace: Duration,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
}

/// What a collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Manifests still reachable.
    pub snapshots_kept: usize,
    /// Layers still referenced.
    pub layers_kept: usize,
    /// Manifests deleted (or that would be, in a dry run).
    pub snapshots_deleted: Vec<String>,
    /// Layers deleted (or that would be).
    pub layers_deleted: Vec<String>,
    /// Bytes of the layers deleted.
    pub bytes_freed: u64,
}

impl Storage {
    /// Collects unreachable snapshots and layers.
    pub async fn gc(&self, options: GcOptions) -> Result<GcReport> {
        let now = now_ms();
        let oldest_kept = now.saturating_sub(options.retain.as_millis() as u64);
        let mut snapshots: HashSet<SnapshotId> = HashSet::new();
        let mut layers: HashSet<String> = HashSet::new();
        self.mark(oldest_kept, &mut snapshots, &mut layers).await?;
        let manifests = self.list_objects("snapshots").await?;
        let layer_objects = self.list_objects("layers").await?;
        let markers = self.list_objects("history").await?;
        // Heads that moved since the first mark (a clone, a new snapshot)
        // may reach what it did not: mark again, after listing.
        self.mark(oldest_kept, &mut snapshots, &mut layers).await?;
        let mut report = GcReport {
            snapshots_kept: snapshots.len(),
            layers_kept: layers.len(),
            ..GcReport::default()
        };
        let old_enough = |meta: &object_store::ObjectMeta| {
            (meta.last_modified.timestamp_millis() as u64).saturating_add(options.grace.as_millis() as u64) <= now
        };
        for meta in manifests {
            let name = meta.location.filename().unwrap_or_default();
            let id = name.strip_suffix(".json").and_then(SnapshotId::parse);
            if id.is_some_and(|id| !snapshots.contains(&id)) && old_enough(&meta) {
                if !options.dry_run {
                    self.delete(&meta.location).await?;
                    crate::crash::point("during-gc");
                }
                report.snapshots_deleted.push(name.to_string());
            }
        }
        for meta in markers {
            let gone = meta
                .location
                .filename()
                .and_then(crate::store::parse_history)
                .is_some_and(|(_, id)| !snapshots.contains(&id));
            if gone && old_enough(&meta) && !options.dry_run {
                self.delete(&meta.location).await?;
            }
        }
        for meta in layer_objects {
            let name = meta.location.filename().unwrap_or_default().to_string();
            if !layers.contains(&name) && old_enough(&meta) {
                if !options.dry_run {
                    self.delete(&meta.location).await?;
                }
                report.bytes_freed += meta.size;
                report.layers_deleted.push(name);
            }
        }
        info!(
            dry_run = options.dry_run,
            kept = report.snapshots_kept,
            snapshots = report.snapshots_deleted.len(),
            layers = report.layers_deleted.len(),
            bytes = report.bytes_freed,
            "garbage collected"
        );
        Ok(report)
    }

    /// Marks what every head reaches: the head, and each parent that was
    /// still the head (its child is younger than) `oldest_kept`.
    async fn mark(
        &self,
        oldest_kept: u64,
        snapshots: &mut HashSet<SnapshotId>,
        layers: &mut HashSet<String>,
    ) -> Result<()> {
        for (database, head) in self.heads().list().await? {
            let mut next = Some(head);
            let mut superseded_at = u64::MAX;
            while let Some(id) = next.take() {
                if superseded_at < oldest_kept || snapshots.contains(&id) {
                    break;
                }
                let manifest = match self.manifest(&database, &id).await {
                    Ok(manifest) => manifest,
                    Err(Error::MissingSnapshot { .. }) if superseded_at != u64::MAX => break,
                    Err(error) => return Err(error),
                };
                layers.extend(manifest.layers.iter().cloned());
                superseded_at = manifest.created_at_ms;
                next = manifest.parent.clone();
                snapshots.insert(id);
            }
        }
        Ok(())
    }
}
