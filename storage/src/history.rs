//! Snapshots over time: listing them, naming one, cloning a database from one.

use crate::error::{check_name, Error, Result};
use crate::manifest::{Manifest, SnapshotId};
use crate::store::Storage;

/// One snapshot of a database's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its id.
    pub id: SnapshotId,
    /// The database it was taken of (for a clone's first entries, the source).
    pub database: String,
    /// The snapshot before it.
    pub parent: Option<SnapshotId>,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The size of the database file.
    pub file_len: u64,
    /// Whether it is the database's head.
    pub is_head: bool,
}

impl Storage {
    /// The snapshots of `database`, newest first: the head, its parent, and so
    /// on back to the first snapshot or the oldest that garbage collection
    /// kept.
    pub async fn snapshots(&self, database: &str) -> Result<Vec<SnapshotInfo>> {
        let head = self
            .head(database)
            .await?
            .ok_or_else(|| Error::NoSuchDatabase(database.to_string()))?;
        let mut history = Vec::new();
        let mut next = Some(head);
        while let Some(id) = next {
            let manifest = match self.manifest(database, &id).await {
                Ok(manifest) => manifest,
                // Collected: history ends here.
                Err(Error::MissingSnapshot { .. }) if !history.is_empty() => break,
                Err(error) => return Err(error),
            };
            next = manifest.parent.clone();
            history.push(SnapshotInfo {
                is_head: history.is_empty(),
                id,
                database: manifest.database,
                parent: manifest.parent,
                created_at_ms: manifest.created_at_ms,
                file_len: manifest.file_len,
            });
        }
        Ok(history)
    }

    /// Finds a snapshot of `database` by its id or a unique prefix of at least
    /// six digits of it, or `latest` for the head.
    pub async fn resolve(&self, database: &str, name: &str) -> Result<(SnapshotId, Manifest)> {
        let invalid = || Error::InvalidSnapshotId(format!("{database}@{name}"));
        if name == "latest" {
            let head = self
                .head(database)
                .await?
                .ok_or_else(|| Error::NoSuchDatabase(database.to_string()))?;
            let manifest = self.manifest(database, &head).await?;
            return Ok((head, manifest));
        }
        if name.len() < 6 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let name = name.to_ascii_lowercase();
        // The history markers list the database's snapshots in one request;
        // walking the chain of manifests, one read each, finds what they lack
        // (a clone's snapshots from before the clone, a marker a crash lost).
        let mut matches: Vec<SnapshotId> = self
            .history(database)
            .await?
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| id.as_str().starts_with(&name))
            .collect();
        matches.sort();
        matches.dedup();
        if matches.is_empty() {
            matches = self
                .snapshots(database)
                .await?
                .into_iter()
                .map(|snapshot| snapshot.id)
                .filter(|id| id.as_str().starts_with(&name))
                .collect();
        }
        match matches.as_slice() {
            [one] => Ok((one.clone(), self.manifest(database, one).await?)),
            [] => Err(Error::MissingSnapshot {
                database: database.to_string(),
                snapshot: name,
            }),
            _ => Err(invalid()),
        }
    }

    /// Creates `target` as a writable copy of `source` at `snapshot` (its head
    /// when `None`) by pointing the new head at the same manifest: no block is
    /// copied, and the cost does not depend on the database's size. Writes to
    /// either database afterwards make snapshots of their own.
    pub async fn clone_database(&self, source: &str, snapshot: Option<&str>, target: &str) -> Result<SnapshotId> {
        check_name(source)?;
        check_name(target)?;
        let (id, _) = self.resolve(source, snapshot.unwrap_or("latest")).await?;
        let claim = self.heads().claim(target).await?;
        if self.head(target).await?.is_some() {
            return Err(Error::DatabaseExists(target.to_string()));
        }
        self.heads()
            .swap(&claim, None, &id)
            .await
            .map_err(|error| match error {
                Error::Fenced { .. } => Error::DatabaseExists(target.to_string()),
                other => other,
            })?;
        self.put_history(target, crate::manifest::now_ms(), &id).await?;
        Ok(id)
    }
}
