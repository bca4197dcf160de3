//! The object store that holds layers and manifests, and the heads beside it.
//!
//! Layout under the storage prefix:
//! - `layers/<ms>-<random>`: immutable layer objects, blocks back to back;
//! - `snapshots/<id>.json`: immutable manifests, named by their checksum;
//! - `history/<db>/<ms>-<id>`: empty markers, one per snapshot a database's
//!   head moved to, so its history lists with one LIST request;
//! - `heads/<db>.head` (local storage only): the heads, see [`FileHeads`].

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::{check_name, Error, Result};
use crate::heads::{FileHeads, Heads};
use crate::manifest::{Manifest, SnapshotId};

/// Differential storage: an object store for layers and manifests, and a
/// place for heads.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    heads: Arc<dyn Heads>,
    location: String,
}

/// Where storage is, as `--storage` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// An object store URL: `s3://bucket/prefix`, `gs://...`, `az://...`.
    Remote(Url),
}

impl Location {
    /// Parses a path or URL. A plain path or `file://` URL is local.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidLocation {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        if !text.contains("://") {
            return Ok(Location::Local(PathBuf::from(text)));
        }
        let url = Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
        match url.scheme() {
            "file" => url
                .to_file_path()
                .map(Location::Local)
                .map_err(|()| invalid("not an absolute file path")),
            "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure" => {
                if url.host_str().unwrap_or("").is_empty() {
                    return Err(invalid("the URL names no bucket"));
                }
                Ok(Location::Remote(url))
            }
            other => Err(invalid(&format!(
                "unsupported scheme {other}:// (use s3, gs, az or a path)"
            ))),
        }
    }
}

impl Storage {
    /// Opens storage at `location`. Heads are `heads` when given (etcd, in a
    /// cluster); otherwise local storage keeps them as files beside the
    /// layers, and remote storage is refused: an object store alone offers
    /// no compare-and-swap this crate relies on.
    pub fn open(location: &Location, heads: Option<Arc<dyn Heads>>) -> Result<Self> {
        match (location, heads) {
            (Location::Local(dir), heads) => Storage::local_with(dir, heads),
            (Location::Remote(url), Some(heads)) => Storage::remote(url, heads),
            (Location::Remote(url), None) => Err(Error::InvalidLocation {
                url: url.to_string(),
                reason: "remote storage keeps its heads in etcd: run in a cluster (--etcd)".into(),
            }),
        }
    }

    /// Storage in a local directory, with its heads as files beside it.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Self> {
        Storage::local_with(dir.as_ref(), None)
    }

    fn local_with(dir: &FsPath, heads: Option<Arc<dyn Heads>>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let heads = match heads {
            Some(heads) => heads,
            None => Arc::new(FileHeads::new(dir.join("heads"))?),
        };
        let store = LocalFileSystem::new_with_prefix(&dir)?;
        Ok(Storage {
            store: Arc::new(store),
            prefix: Path::default(),
            heads,
            location: dir.display().to_string(),
        })
    }

    /// Storage at a remote URL, credentials and endpoint from the usual
    /// environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`), with heads
    /// kept elsewhere (etcd).
    fn remote(url: &Url, heads: Arc<dyn Heads>) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .build()?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .build()?,
            ),
            _ => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .build()?,
            ),
        };
        let prefix = Path::parse(url.path().trim_matches('/')).map_err(|e| Error::InvalidLocation {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Storage {
            store,
            prefix,
            heads,
            location: url.to_string(),
        })
    }

    /// Where this storage is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The heads of this storage.
    pub fn heads(&self) -> &Arc<dyn Heads> {
        &self.heads
    }

    pub(crate) fn path(&self, parts: &[&str]) -> Path {
        let mut path = self.prefix.clone();
        for part in parts {
            path = path.clone().join(*part);
        }
        path
    }

    pub(crate) fn layer_path(&self, layer: &str) -> Path {
        self.path(&["layers", layer])
    }

    pub(crate) fn manifest_path(&self, id: &SnapshotId) -> Path {
        self.path(&["snapshots", &format!("{id}.json")])
    }

    /// The current snapshot of `database`.
    pub async fn head(&self, database: &str) -> Result<Option<SnapshotId>> {
        check_name(database)?;
        self.heads.get(database).await
    }

    /// Reads and checks the manifest of `snapshot`; `database` is only for
    /// messages.
    pub async fn manifest(&self, database: &str, snapshot: &SnapshotId) -> Result<Manifest> {
        let bytes = match self.store.get(&self.manifest_path(snapshot)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::MissingSnapshot {
                    database: database.to_string(),
                    snapshot: snapshot.to_string(),
                })
            }
            Err(error) => return Err(error.into()),
        };
        Manifest::decode(snapshot, &bytes).map_err(|reason| Error::CorruptManifest {
            database: database.to_string(),
            snapshot: snapshot.to_string(),
            reason,
        })
    }

    pub(crate) async fn put_manifest(&self, manifest: &Manifest) -> Result<SnapshotId> {
        let (id, body) = manifest.encode();
        self.store.put(&self.manifest_path(&id), PutPayload::from(body)).await?;
        Ok(id)
    }

    /// Notes that `database`'s head moved to `snapshot` at `at_ms`.
    pub(crate) async fn put_history(&self, database: &str, at_ms: u64, snapshot: &SnapshotId) -> Result<()> {
        let path = self.path(&["history", database, &format!("{at_ms:013}-{snapshot}")]);
        self.store.put(&path, PutPayload::default()).await?;
        Ok(())
    }

    /// The snapshots `database`'s head moved to, oldest first, as
    /// (milliseconds since the epoch, id), from the history markers.
    pub async fn history(&self, database: &str) -> Result<Vec<(u64, SnapshotId)>> {
        check_name(database)?;
        let prefix = self.path(&["history", database]);
        let metas: Vec<ObjectMeta> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut entries: Vec<(u64, SnapshotId)> = metas
            .iter()
            .filter_map(|meta| parse_history(meta.location.filename()?))
            .collect();
        entries.sort();
        Ok(entries)
    }

    pub(crate) async fn put_layer(&self, layer: &str, bytes: Bytes) -> Result<()> {
        self.store.put(&self.layer_path(layer), PutPayload::from(bytes)).await?;
        Ok(())
    }

    pub(crate) async fn read_layer(&self, layer: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        Ok(self.store.get_ranges(&self.layer_path(layer), ranges).await?)
    }

    pub(crate) async fn list_objects(&self, kind: &str) -> Result<Vec<ObjectMeta>> {
        Ok(self.store.list(Some(&self.path(&[kind]))).try_collect().await?)
    }

    pub(crate) async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// Parses a history marker's name, `<ms>-<id>`.
pub(crate) fn parse_history(name: &str) -> Option<(u64, SnapshotId)> {
    let (ms, id) = name.split_once('-')?;
    Some((ms.parse().ok()?, SnapshotId::parse(id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(Location::parse("/data/x").unwrap(), Location::Local("/data/x".into()));
        assert_eq!(
            Location::parse("file:///data/x").unwrap(),
            Location::Local("/data/x".into())
        );
        assert!(matches!(
            Location::parse("s3://bucket/prefix").unwrap(),
            Location::Remote(_)
        ));
        for bad in ["s3:///prefix", "ftp://host/x", "file://relative"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}
