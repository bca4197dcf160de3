//! Database heads: which snapshot is the current state of each database, and
//! who may move it.
//!
//! A head moves only by compare-and-swap from the snapshot its writer last saw,
//! and only while the writer holds its [`Claim`]:
//! - [`FileHeads`] (embedded mode) keeps `<db>.head` files in a directory,
//!   replaced by atomic rename; a claim is an exclusive lock on `<db>.lock`
//!   held for as long as the writer lives;
//! - [`EtcdHeads`] (cluster mode) keeps `<prefix>/heads/<db>` keys; every swap
//!   is a transaction that also checks that `<prefix>/writers/<db>` still
//!   names this writer. That key lives under the writer's registry lease, so a
//!   writer whose lease expired can never move the head again, whoever
//!   claims the database next.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use openduck_proto::etcd_keys;

use crate::error::{check_name, Error, Result};
use crate::manifest::SnapshotId;

/// The right to move one database's head.
#[derive(Debug)]
pub struct Claim {
    database: String,
    /// The held lock file of [`FileHeads`].
    _lock: Option<File>,
}

impl Claim {
    /// The database claimed.
    pub fn database(&self) -> &str {
        &self.database
    }
}

/// Where heads live.
#[async_trait]
pub trait Heads: Send + Sync + std::fmt::Debug {
    /// The current snapshot of `database`, if it has one.
    async fn get(&self, database: &str) -> Result<Option<SnapshotId>>;

    /// Claims `database` for writing; fails with [`Error::Busy`] while
    /// another writer holds it.
    async fn claim(&self, database: &str) -> Result<Claim>;

    /// Moves the head from `expected` (`None`: no head yet) to `snapshot`;
    /// fails with [`Error::Fenced`], changing nothing, when the head is
    /// elsewhere or the claim was lost.
    async fn swap(&self, claim: &Claim, expected: Option<&SnapshotId>, snapshot: &SnapshotId) -> Result<()>;

    /// Every database with a head, and its snapshot.
    async fn list(&self) -> Result<Vec<(String, SnapshotId)>>;
}

/// Heads as files in a local directory.
#[derive(Debug, Clone)]
pub struct FileHeads {
    dir: PathBuf,
}

impl FileHeads {
    /// Heads in `dir`, created when missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(FileHeads { dir })
    }

    /// A database of the local storage in `storage_dir` whose writer is
    /// running now (it holds the lock of its claim), if any. Local storage
    /// must not be moved while one does.
    pub fn claimed_database(storage_dir: &Path) -> Result<Option<String>> {
        let dir = storage_dir.join("heads");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            let Some(database) = path.file_name().and_then(|name| name.to_str()?.strip_suffix(".lock")) else {
                continue;
            };
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                // Dropping the file releases the lock at once.
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(Some(database.to_string())),
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        Ok(None)
    }

    fn head_path(&self, database: &str) -> PathBuf {
        self.dir.join(format!("{database}.head"))
    }

    fn read(path: &Path) -> Result<Option<SnapshotId>> {
        match std::fs::read_to_string(path) {
            Ok(text) => SnapshotId::parse(text.trim())
                .map(Some)
                .ok_or_else(|| Error::InvalidSnapshotId(format!("{text} (in {})", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

#[async_trait]
impl Heads for FileHeads {
    async fn get(&self, database: &str) -> Result<Option<SnapshotId>> {
        check_name(database)?;
        FileHeads::read(&self.head_path(database))
    }

    async fn claim(&self, database: &str) -> Result<Claim> {
        check_name(database)?;
        let path = self.dir.join(format!("{database}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Claim {
                database: database.to_string(),
                _lock: Some(file),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy {
                database: database.to_string(),
                holder: "another process on this machine".into(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    async fn swap(&self, claim: &Claim, expected: Option<&SnapshotId>, snapshot: &SnapshotId) -> Result<()> {
        let path = self.head_path(&claim.database);
        // The claim's lock makes this read-compare-rename atomic.
        let current = FileHeads::read(&path)?;
        if current.as_ref() != expected {
            return Err(Error::Fenced {
                database: claim.database.clone(),
                reason: format!(
                    "the head moved to {} while this writer expected {}",
                    display(current.as_ref()),
                    display(expected)
                ),
            });
        }
        let temp = self.dir.join(format!(".{}.head.tmp", claim.database));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(snapshot.as_str().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| Error::io(&path, e))
    }

    async fn list(&self) -> Result<Vec<(String, SnapshotId)>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut heads = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(database) = name.strip_suffix(".head") {
                if let Some(snapshot) = FileHeads::read(&entry.path())? {
                    heads.push((database.to_string(), snapshot));
                }
            }
        }
        heads.sort();
        Ok(heads)
    }
}

fn display(snapshot: Option<&SnapshotId>) -> String {
    snapshot.map_or_else(|| "nothing".into(), ToString::to_string)
}

/// Heads in etcd, fenced by the writer claims of the registry.
#[derive(Clone)]
pub struct EtcdHeads {
    client: Client,
    prefix: String,
    /// The executor id a writer claim must name; `None` for administrative
    /// use (clones into new databases), where only absent heads are created.
    writer: Option<String>,
}

impl std::fmt::Debug for EtcdHeads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdHeads")
            .field("prefix", &self.prefix)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

impl EtcdHeads {
    /// Heads under `prefix` (a cluster prefix such as `/openduck`). With
    /// `writer`, swaps check that `<prefix>/writers/<db>` holds that id.
    pub async fn connect(endpoints: &[String], prefix: &str, writer: Option<String>) -> Result<Self> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_keep_alive(std::time::Duration::from_secs(5), std::time::Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options)).await?;
        Ok(EtcdHeads {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
            writer,
        })
    }

    fn head_key(&self, database: &str) -> String {
        etcd_keys::head(&self.prefix, database)
    }

    fn writer_key(&self, database: &str) -> String {
        etcd_keys::writer(&self.prefix, database)
    }

    async fn value(&self, key: &str) -> Result<Option<String>> {
        let response = self.client.kv_client().get(key, None).await?;
        Ok(response
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }
}

#[async_trait]
impl Heads for EtcdHeads {
    async fn get(&self, database: &str) -> Result<Option<SnapshotId>> {
        check_name(database)?;
        match self.value(&self.head_key(database)).await? {
            None => Ok(None),
            Some(text) => SnapshotId::parse(&text).map(Some).ok_or(Error::InvalidSnapshotId(text)),
        }
    }

    async fn claim(&self, database: &str) -> Result<Claim> {
        check_name(database)?;
        if let Some(writer) = &self.writer {
            let holder = self.value(&self.writer_key(database)).await?;
            if holder.as_deref() != Some(writer.as_str()) {
                return Err(Error::Busy {
                    database: database.to_string(),
                    holder: holder.map_or_else(|| "nobody (no writer claim)".into(), |h| format!("executor {h}")),
                });
            }
        }
        Ok(Claim {
            database: database.to_string(),
            _lock: None,
        })
    }

    async fn swap(&self, claim: &Claim, expected: Option<&SnapshotId>, snapshot: &SnapshotId) -> Result<()> {
        let key = self.head_key(&claim.database);
        let mut compares = vec![match expected {
            Some(expected) => Compare::value(key.clone(), CompareOp::Equal, expected.as_str()),
            None => Compare::version(key.clone(), CompareOp::Equal, 0),
        }];
        match &self.writer {
            Some(writer) => compares.push(Compare::value(
                self.writer_key(&claim.database),
                CompareOp::Equal,
                writer.as_str(),
            )),
            None if expected.is_some() => {
                return Err(Error::Fenced {
                    database: claim.database.clone(),
                    reason: "only the database's writer moves an existing head".into(),
                })
            }
            None => {}
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::put(key, snapshot.as_str(), None)]);
        let response = self.client.kv_client().txn(txn).await?;
        if response.succeeded() {
            return Ok(());
        }
        let current = self.get(&claim.database).await.ok().flatten();
        let holder = self.value(&self.writer_key(&claim.database)).await.ok().flatten();
        Err(Error::Fenced {
            database: claim.database.clone(),
            reason: if current.as_ref() != expected {
                format!(
                    "the head moved to {} while this writer expected {}",
                    display(current.as_ref()),
                    display(expected)
                )
            } else {
                format!(
                    "this executor lost its writer claim (held now by {})",
                    holder.as_deref().unwrap_or("nobody")
                )
            },
        })
    }

    async fn list(&self) -> Result<Vec<(String, SnapshotId)>> {
        let prefix = etcd_keys::heads(&self.prefix);
        let response = self
            .client
            .kv_client()
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await?;
        let mut heads = Vec::new();
        for kv in response.kvs() {
            let key = String::from_utf8_lossy(kv.key());
            let value = String::from_utf8_lossy(kv.value());
            if let (Some(database), Some(snapshot)) = (key.strip_prefix(&prefix), SnapshotId::parse(&value)) {
                heads.push((database.to_string(), snapshot));
            }
        }
        heads.sort();
        Ok(heads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> SnapshotId {
        SnapshotId::parse(&format!("{n:020x}")).unwrap()
    }

    #[tokio::test]
    async fn file_heads_move_only_by_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let heads = FileHeads::new(dir.path()).unwrap();
        assert_eq!(heads.get("db").await.unwrap(), None);
        let claim = heads.claim("db").await.unwrap();
        assert!(matches!(heads.claim("db").await, Err(Error::Busy { .. })));
        heads.swap(&claim, None, &id(1)).await.unwrap();
        let error = heads.swap(&claim, None, &id(2)).await.unwrap_err();
        assert!(matches!(error, Error::Fenced { .. }), "{error}");
        heads.swap(&claim, Some(&id(1)), &id(2)).await.unwrap();
        assert_eq!(heads.get("db").await.unwrap(), Some(id(2)));
        assert_eq!(heads.list().await.unwrap(), vec![("db".to_string(), id(2))]);
        drop(claim);
        heads.claim("db").await.unwrap();
        assert!(matches!(heads.get("../x").await, Err(Error::InvalidDatabaseName(_))));
    }

    #[tokio::test]
    async fn a_running_writer_is_seen_through_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(FileHeads::claimed_database(dir.path()).unwrap(), None);
        let heads = FileHeads::new(dir.path().join("heads")).unwrap();
        let claim = heads.claim("db").await.unwrap();
        assert_eq!(FileHeads::claimed_database(dir.path()).unwrap(), Some("db".into()));
        // Looking neither takes the lock away nor keeps it.
        assert!(matches!(heads.claim("db").await, Err(Error::Busy { .. })));
        drop(claim);
        assert_eq!(FileHeads::claimed_database(dir.path()).unwrap(), None);
        heads.claim("db").await.unwrap();
    }
}
