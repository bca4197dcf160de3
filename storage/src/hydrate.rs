//! Bringing a local file to a snapshot, fetching only the blocks it lacks.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::format::{read_checksums, Layout, HEADER_SIZE};
use crate::manifest::{sha256_hex, Extent, Manifest};
use crate::store::Storage;

/// Ranges of one layer read in one request are at most this long.
const MAX_RANGE: u64 = 16 << 20;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;

/// What a hydration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HydrateStats {
    /// Blocks fetched from storage.
    pub blocks_fetched: u64,
    /// Bytes fetched from storage (header included).
    pub bytes_fetched: u64,
    /// Blocks already right in the local file.
    pub blocks_kept: u64,
}

/// Makes the file at `path` (created when missing) hold exactly the snapshot
/// `manifest` describes. A local block whose DuckDB checksum matches the
/// manifest's is kept; every other block is fetched and checked against its
/// SHA-256. The header is written last, and the WAL beside the file removed,
/// so the file opens as the snapshot and nothing else.
///
/// The file must not be open in DuckDB meanwhile.
pub async fn hydrate(storage: &Storage, manifest: &Manifest, path: &Path) -> Result<HydrateStats> {
    let file = Arc::new(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?,
    );
    let layout = Layout {
        storage_version: manifest.storage_version,
        iteration: manifest.iteration,
        block_size: manifest.block_size,
        block_count: manifest.blocks.len() as u64,
    };
    let local = {
        let file = Arc::clone(&file);
        blocking(path, move || read_checksums(&file, &layout)).await?
    };
    // Blocks to fetch, by layer, in layer order.
    let mut wanted: BTreeMap<String, Vec<(u64, Extent)>> = BTreeMap::new();
    let mut stats = HydrateStats::default();
    for (index, block) in manifest.blocks.iter().enumerate() {
        if block.checksum != 0 && local[index] == block.checksum {
            stats.blocks_kept += 1;
        } else {
            wanted
                .entry(manifest.layer_of(&block.extent).to_string())
                .or_default()
                .push((layout.block_offset(index as u64), block.extent.clone()));
        }
    }
    let mut reads = Vec::new();
    for (layer, mut extents) in wanted {
        extents.sort_by_key(|(_, extent)| extent.offset);
        reads.extend(coalesce(layer, extents, manifest.block_size));
    }
    let fetched: Vec<(u64, u64)> = futures::stream::iter(reads.into_iter().map(|read| {
        fetch(
            storage.clone(),
            read,
            manifest.block_size,
            Arc::clone(&file),
            path.to_path_buf(),
        )
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect()
    .await?;
    for (blocks, bytes) in fetched {
        stats.blocks_fetched += blocks;
        stats.bytes_fetched += bytes;
    }
    let header = &manifest.header;
    let layer = manifest.layer_of(header);
    let range = header.offset..header.offset + HEADER_SIZE;
    let bytes = storage.read_layer(layer, std::slice::from_ref(&range)).await?.remove(0);
    verify(layer, "the header", header, &bytes)?;
    stats.bytes_fetched += bytes.len() as u64;
    let file_len = manifest.file_len;
    let wal = wal_path(path);
    blocking(path, move || {
        file.set_len(file_len)?;
        file.sync_all()?;
        file.write_all_at(&bytes, 0)?;
        file.sync_all()?;
        match std::fs::remove_file(&wal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    })
    .await?;
    Ok(stats)
}

/// The WAL DuckDB keeps beside a database file.
pub fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

/// One ranged read of a layer: the blocks it carries and where they go.
struct Read {
    layer: String,
    range: Range<u64>,
    targets: Vec<(u64, Extent)>,
}

/// Groups blocks that lie back to back in a layer into reads of at most
/// [`MAX_RANGE`] bytes.
fn coalesce(layer: String, extents: Vec<(u64, Extent)>, block_size: u64) -> Vec<Read> {
    let mut reads: Vec<Read> = Vec::new();
    for (target, extent) in extents {
        match reads.last_mut() {
            Some(read)
                if read.range.end == extent.offset && read.range.end - read.range.start + block_size <= MAX_RANGE =>
            {
                read.range.end += block_size;
                read.targets.push((target, extent));
            }
            // The same block wanted at two places of the file.
            Some(read) if read.range.end == extent.offset + block_size => read.targets.push((target, extent)),
            _ => reads.push(Read {
                layer: layer.clone(),
                range: extent.offset..extent.offset + block_size,
                targets: vec![(target, extent)],
            }),
        }
    }
    reads
}

async fn fetch(storage: Storage, read: Read, block_size: u64, file: Arc<File>, path: PathBuf) -> Result<(u64, u64)> {
    let bytes = storage
        .read_layer(&read.layer, std::slice::from_ref(&read.range))
        .await?
        .remove(0);
    let mut writes = Vec::with_capacity(read.targets.len());
    for (target, extent) in &read.targets {
        let start = (extent.offset - read.range.start) as usize;
        let block = bytes.slice(start..start + block_size as usize);
        verify(&read.layer, "a block", extent, &block)?;
        writes.push((*target, block));
    }
    let blocks = writes.len() as u64;
    let len = bytes.len() as u64;
    blocking(&path, move || {
        for (target, block) in writes {
            file.write_all_at(&block, target)?;
        }
        Ok(())
    })
    .await?;
    Ok((blocks, len))
}

fn verify(layer: &str, what: &str, extent: &Extent, bytes: &[u8]) -> Result<()> {
    if sha256_hex(bytes) == extent.sha256 {
        Ok(())
    } else {
        Err(Error::CorruptLayer {
            layer: layer.to_string(),
            what: what.to_string(),
            offset: extent.offset,
        })
    }
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done.map_err(|e| Error::io(path, e)),
        Err(stopped) => Err(Error::stopped(path, stopped)),
    }
}
