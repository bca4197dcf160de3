//! Turning a checkpointed DuckDB file into a snapshot.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, Instrument};

use crate::error::{check_name, Error, Result};
use crate::format::{checksum_matches, parse_headers, read_checksums, stored_checksum, Layout, HEADER_SIZE};
use crate::heads::Claim;
use crate::hydrate::{hydrate, HydrateStats};
use crate::manifest::{now_ms, sha256_hex, BlockRef, Extent, Manifest, SnapshotId, FORMAT_VERSION};
use crate::store::Storage;

/// Layers are cut at this size, so a large first snapshot is uploaded in
/// parts and never held whole in memory.
const LAYER_TARGET: usize = 64 << 20;

/// How often a snapshot is taken again when the file changed while it was
/// read (a checkpoint that did not come from this writer).
const ATTEMPTS: usize = 3;

/// What one snapshot wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStats {
    /// The new snapshot.
    pub id: SnapshotId,
    /// Blocks in the file.
    pub blocks: u64,
    /// Blocks whose checksum changed since the previous snapshot.
    pub changed_blocks: u64,
    /// Bytes uploaded in new layers (headers included).
    pub uploaded_bytes: u64,
}

/// The single writer of one database: it holds the database's claim and
/// publishes snapshots of its local DuckDB file.
#[derive(Debug)]
pub struct DatabaseWriter {
    storage: Storage,
    claim: Claim,
    path: PathBuf,
    head: Option<(SnapshotId, Arc<Manifest>)>,
    /// A snapshot whose head swap failed without saying whether it took
    /// place (etcd went away during the call): the next publication looks
    /// at the head first, and goes on from this snapshot if it is there.
    unsure: Option<(SnapshotId, Arc<Manifest>)>,
}

impl DatabaseWriter {
    /// Claims `database` and brings the local file at `path` to its head:
    /// blocks whose checksums differ from the head's are fetched, the rest
    /// kept, and any WAL (writes never acknowledged) removed. When storage
    /// holds no snapshot of the database, a local file is kept as it is and
    /// becomes the first snapshot.
    pub async fn open(storage: &Storage, database: &str, path: &Path) -> Result<(Self, Option<HydrateStats>)> {
        check_name(database)?;
        let claim = storage.heads().claim(database).await?;
        let (head, stats) = match storage.head(database).await? {
            Some(id) => {
                let manifest = storage.manifest(database, &id).await?;
                let existed = path.exists();
                let stats = hydrate(storage, &manifest, path).await?;
                if existed && stats.blocks_fetched > 0 {
                    tracing::warn!(
                        database,
                        path = %path.display(),
                        blocks = stats.blocks_fetched,
                        "the local file differed from the latest snapshot; changes never published were discarded"
                    );
                }
                info!(database, snapshot = %id, fetched = stats.blocks_fetched, kept = stats.blocks_kept, "local file at head");
                (Some((id, Arc::new(manifest))), Some(stats))
            }
            None => (None, None),
        };
        let writer = DatabaseWriter {
            storage: storage.clone(),
            claim,
            path: path.to_path_buf(),
            head,
            unsure: None,
        };
        Ok((writer, stats))
    }

    /// The database written.
    pub fn database(&self) -> &str {
        self.claim.database()
    }

    /// The snapshot the head points at, as this writer last moved it.
    pub fn head(&self) -> Option<&SnapshotId> {
        self.head.as_ref().map(|(id, _)| id)
    }

    /// Publishes the local file as a new snapshot: uploads the blocks whose
    /// checksums changed (each distinct block once), writes the manifest and
    /// moves the head. Call it after a checkpoint; returns `None` when the
    /// file has not changed since the last snapshot. Once it returns `Ok`,
    /// the state of the file is durable.
    pub async fn snapshot(&mut self) -> Result<Option<SnapshotStats>> {
        let span = tracing::info_span!("publish_snapshot", openduck.database = self.database());
        let started = std::time::Instant::now();
        let published = self.publish().instrument(span).await;
        if let Ok(Some(stats)) = &published {
            let database = [opentelemetry::KeyValue::new("database", self.database().to_string())];
            PUBLISHED.duration.record(started.elapsed().as_secs_f64(), &database);
            PUBLISHED.bytes.add(stats.uploaded_bytes, &database);
        }
        published
    }

    /// Settles a head swap whose outcome was unknown: when the head is that
    /// snapshot, it is this writer's head now. Left unsettled (to try
    /// again) while the head cannot be read.
    async fn settle(&mut self) -> Result<()> {
        let Some((id, manifest)) = self.unsure.take() else {
            return Ok(());
        };
        match self.storage.heads().get(self.database()).await {
            Ok(current) if current.as_ref() == Some(&id) => {
                info!(database = self.database(), snapshot = %id, "an unanswered head update had taken place");
                self.head = Some((id, manifest));
                Ok(())
            }
            // It did not take place; if the head moved otherwise, the next swap says so.
            Ok(_) => Ok(()),
            Err(error) => {
                self.unsure = Some((id, manifest));
                Err(error)
            }
        }
    }

    async fn publish(&mut self) -> Result<Option<SnapshotStats>> {
        self.settle().await?;
        for _ in 0..ATTEMPTS {
            let storage = self.storage.clone();
            let path = self.path.clone();
            let previous = self.head.as_ref().map(|(_, m)| Arc::clone(m));
            let handle = tokio::runtime::Handle::current();
            let scanned = tokio::task::spawn_blocking(move || scan(&storage, &handle, &path, previous.as_deref()))
                .await
                .map_err(|stopped| Error::stopped(&self.path, stopped))??;
            let scan = match scanned {
                Scanned::Unchanged => return Ok(None),
                Scanned::Moved => continue,
                Scanned::Done(scan) => scan,
            };
            let mut manifest = scan.manifest;
            manifest.database = self.database().to_string();
            manifest.parent = self.head().cloned();
            let id = self.storage.put_manifest(&manifest).await?;
            crate::crash::point("before-head-update");
            crate::crash::pause("before-head-update").await;
            let manifest = Arc::new(manifest);
            match self.storage.heads().swap(&self.claim, self.head(), &id).await {
                Ok(()) => {}
                Err(refused @ (Error::Fenced { .. } | Error::Busy { .. })) => return Err(refused),
                Err(unanswered) => {
                    self.unsure = Some((id, manifest));
                    return Err(unanswered);
                }
            }
            crate::crash::point("after-head-update");
            crate::crash::pause("after-head-update").await;
            // Only for listing: a crash right here leaves the snapshot out of
            // `history`, never out of the database.
            if let Err(error) = self
                .storage
                .put_history(self.database(), manifest.created_at_ms, &id)
                .await
            {
                tracing::warn!(database = self.database(), snapshot = %id, %error, "cannot record the snapshot in the history");
            }
            let stats = SnapshotStats {
                id: id.clone(),
                blocks: manifest.blocks.len() as u64,
                changed_blocks: scan.changed_blocks,
                uploaded_bytes: scan.uploaded_bytes,
            };
            debug!(database = self.database(), snapshot = %id, changed = stats.changed_blocks, bytes = stats.uploaded_bytes, "snapshot published");
            self.head = Some((id, manifest));
            return Ok(Some(stats));
        }
        Err(Error::FileChanging(self.path.clone()))
    }
}

struct Published {
    duration: opentelemetry::metrics::Histogram<f64>,
    bytes: opentelemetry::metrics::Counter<u64>,
}

/// Snapshots published, how long each took and what it uploaded.
static PUBLISHED: std::sync::LazyLock<Published> = std::sync::LazyLock::new(|| {
    let meter = opentelemetry::global::meter("openduck");
    Published {
        duration: meter
            .f64_histogram("openduck_storage_publish_duration_seconds")
            .with_unit("s")
            .with_description("How long publishing a snapshot takes (scan, upload, manifest, head), by database.")
            .with_boundaries(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
            .build(),
        bytes: meter
            .u64_counter("openduck_storage_uploaded_bytes")
            .with_unit("By")
            .with_description("Bytes of changed blocks uploaded to storage, by database.")
            .build(),
    }
});

enum Scanned {
    Unchanged,
    /// The header changed while the blocks were read.
    Moved,
    Done(Scan),
}

struct Scan {
    manifest: Manifest,
    changed_blocks: u64,
    uploaded_bytes: u64,
}

/// Layers being filled and uploaded, and the names every extent points into.
struct Layers<'a> {
    storage: &'a Storage,
    runtime: &'a tokio::runtime::Handle,
    names: Vec<String>,
    index: HashMap<String, u32>,
    open: Option<(String, BytesMut)>,
    uploaded: u64,
}

impl Layers<'_> {
    fn index_of(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.index.get(name) {
            return index;
        }
        let index = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), index);
        index
    }

    /// Appends `bytes` to the open layer and says where they went.
    fn push(&mut self, bytes: &[u8], sha256: String) -> Result<Extent> {
        if self
            .open
            .as_ref()
            .is_some_and(|(_, buf)| buf.len() + bytes.len() > LAYER_TARGET)
        {
            self.flush()?;
        }
        let (name, buf) = self.open.get_or_insert_with(|| {
            (
                new_layer_name(),
                BytesMut::with_capacity(LAYER_TARGET.min(bytes.len() * 16)),
            )
        });
        let offset = buf.len() as u64;
        buf.extend_from_slice(bytes);
        let name = name.clone();
        Ok(Extent {
            layer: self.index_of(&name),
            offset,
            sha256,
        })
    }

    fn flush(&mut self) -> Result<()> {
        if let Some((name, buf)) = self.open.take() {
            let bytes: Bytes = buf.freeze();
            self.uploaded += bytes.len() as u64;
            self.runtime.block_on(self.storage.put_layer(&name, bytes))?;
            crate::crash::point("after-layer-upload");
        }
        Ok(())
    }
}

fn new_layer_name() -> String {
    format!("{:013}-{:016x}", now_ms(), rand::random::<u64>())
}

fn scan(
    storage: &Storage,
    runtime: &tokio::runtime::Handle,
    path: &Path,
    previous: Option<&Manifest>,
) -> Result<Scanned> {
    let io = |e| Error::io(path, e);
    let file = File::open(path).map_err(io)?;
    let mut header = vec![0u8; HEADER_SIZE as usize];
    file.read_exact_at(&mut header, 0).map_err(io)?;
    let layout = parse_headers(&header).map_err(|reason| Error::NotADatabase {
        path: path.to_path_buf(),
        reason,
    })?;
    let header_sha = sha256_hex(&header);
    if previous.is_some_and(|p| p.header.sha256 == header_sha) {
        return Ok(Scanned::Unchanged);
    }
    // DuckDB truncates free blocks at the end of the file, and may have
    // appended blocks no header references yet: the snapshot holds the
    // blocks the header counts, as far as the file reaches.
    let actual_len = file.metadata().map_err(io)?.len();
    let file_len = actual_len.min(layout.file_len()).max(HEADER_SIZE);
    let layout = Layout {
        block_count: (file_len - HEADER_SIZE).div_ceil(layout.block_size),
        ..layout
    };
    let checksums = read_checksums(&file, &layout).map_err(io)?;
    // Where each distinct block already lives, to store it once.
    let mut known: HashMap<String, (String, u64)> = previous
        .map(|p| {
            p.blocks
                .iter()
                .map(|b| {
                    (
                        b.extent.sha256.clone(),
                        (p.layer_of(&b.extent).to_string(), b.extent.offset),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut layers = Layers {
        storage,
        runtime,
        names: Vec::new(),
        index: HashMap::new(),
        open: None,
        uploaded: 0,
    };
    let header_extent = layers.push(&header, header_sha)?;
    let mut blocks = Vec::with_capacity(checksums.len());
    let mut changed = 0;
    let mut buf = vec![0u8; layout.block_size as usize];
    for (index, &checksum) in checksums.iter().enumerate() {
        if let Some((old, p)) = previous.and_then(|p| p.blocks.get(index).map(|b| (b, p))) {
            if old.checksum != 0 && old.checksum == checksum {
                let layer = layers.index_of(p.layer_of(&old.extent));
                blocks.push(BlockRef {
                    extent: Extent {
                        layer,
                        ..old.extent.clone()
                    },
                    checksum,
                });
                continue;
            }
        }
        changed += 1;
        read_block(&file, &mut buf, layout.block_offset(index as u64)).map_err(io)?;
        // A block that is not whole is a free block being written right now;
        // it is stored, but never trusted by checksum alone.
        let checksum = if checksum_matches(&buf) {
            stored_checksum(&buf)
        } else {
            0
        };
        let sha = sha256_hex(&buf);
        let extent = match known.get(&sha) {
            Some((layer, offset)) => Extent {
                layer: layers.index_of(layer),
                offset: *offset,
                sha256: sha,
            },
            None => {
                let extent = layers.push(&buf, sha.clone())?;
                known.insert(sha, (layers.names[extent.layer as usize].clone(), extent.offset));
                extent
            }
        };
        blocks.push(BlockRef { extent, checksum });
    }
    layers.flush()?;
    let mut again = vec![0u8; HEADER_SIZE as usize];
    file.read_exact_at(&mut again, 0).map_err(io)?;
    if again != header {
        return Ok(Scanned::Moved);
    }
    Ok(Scanned::Done(Scan {
        manifest: Manifest {
            format: FORMAT_VERSION,
            database: String::new(),
            parent: None,
            created_at_ms: now_ms(),
            storage_version: layout.storage_version,
            iteration: layout.iteration,
            block_size: layout.block_size,
            file_len,
            layers: layers.names,
            header: header_extent,
            blocks,
        },
        changed_blocks: changed,
        uploaded_bytes: layers.uploaded,
    }))
}

/// Reads the block at `offset`; a block the end of the file cuts short is
/// padded with zeros (materializing the snapshot cuts the file again).
fn read_block(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    buf[filled..].fill(0);
    Ok(())
}
