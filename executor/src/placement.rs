//! Where local differential storage lives, so that SQL never reaches it.
//!
//! SQL may read and write files in the data directory (DuckDB's
//! `allowed_directories`, see `open.rs`). Storage holds every layer,
//! manifest and head of every database: a statement that could read it
//! would read every database, and one that could write it could move a head
//! or plant a manifest, past the single-writer fencing. So local storage
//! lives beside the data directory, never in it:
//!
//! - [`default_storage_dir`] names the default, `<data-dir>-storage`;
//! - [`prepare_default_storage`] moves storage from where older versions kept
//!   it (`<data-dir>/storage`) to there;
//! - [`confine_storage`] refuses local storage that SQL could reach.
//!
//! DuckDB resolves a path's symbolic links before it checks the path, but
//! only as far as the path exists: through a link whose target does not
//! exist yet, `COPY ... TO` creates the file wherever the link leads.
//! [`confine_storage`] refuses any link in the data directory that leads into
//! storage when the executor starts, without relying on DuckDB's check.

use std::ffi::OsString;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use openduck_storage::FileHeads;
use tracing::{info, warn};

use crate::error::{Error, Result};

/// Where older versions kept local storage by default, inside the data
/// directory.
const LEGACY_STORAGE: &str = "storage";

/// The most directory entries [`confine_storage`] looks at for symbolic links.
const MAX_ENTRIES_WALKED: usize = 100_000;

/// How many links deep a link's target is followed before giving up (the
/// operating system gives up at 40 as well).
const MAX_LINK_DEPTH: usize = 40;

/// The default local storage of `data_dir`: the directory beside it with
/// `-storage` added to its name (`./openduck-data` stores in
/// `./openduck-data-storage`).
pub fn default_storage_dir(data_dir: &Path) -> Result<PathBuf> {
    if let Some(name) = data_dir.file_name() {
        return Ok(data_dir.with_file_name(sibling_name(name)));
    }
    // `.`, `..`, `x/..` or the root: name the directory itself.
    let absolute = std::path::absolute(data_dir).map_err(|source| Error::Io {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let normal = normalize(&absolute);
    match normal.file_name() {
        Some(name) => Ok(normal.with_file_name(sibling_name(name))),
        None => Err(Error::NoDefaultStorage(data_dir.to_path_buf())),
    }
}

fn sibling_name(name: &std::ffi::OsStr) -> OsString {
    let mut name = name.to_os_string();
    name.push("-storage");
    name
}

/// The local storage to use when no `--storage` is given: the
/// [default](default_storage_dir), after storage is moved there from
/// `<data-dir>/storage`, where older versions kept it, when only that exists.
///
/// With `migrate` false (the storage commands, which must not move storage a
/// running server of an older version may use) storage found in the old
/// place is used where it is. Storage in both places is refused: which one
/// holds the databases is for the operator to say.
pub fn prepare_default_storage(data_dir: &Path, migrate: bool) -> Result<PathBuf> {
    let default = default_storage_dir(data_dir)?;
    let legacy = data_dir.join(LEGACY_STORAGE);
    if !exists(&legacy) {
        return Ok(default);
    }
    if exists(&default) {
        return Err(Error::StorageInTwoPlaces { legacy, default });
    }
    if !migrate {
        info!(
            storage = %legacy.display(),
            "storage is still inside the data directory; the next `openduck serve` or `openduck executor` moves it to {}",
            default.display()
        );
        return Ok(legacy);
    }
    if let Some(database) = FileHeads::claimed_database(&legacy)? {
        return Err(Error::StorageInUse {
            legacy,
            default,
            database,
        });
    }
    std::fs::rename(&legacy, &default).map_err(|source| Error::StorageMove {
        legacy: legacy.clone(),
        default: default.clone(),
        source,
    })?;
    warn!(
        from = %legacy.display(),
        to = %default.display(),
        "moved storage out of the data directory, where SQL could read and write it"
    );
    Ok(default)
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// What SQL may do with files, as the executor is configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlFileAccess {
    /// SQL reads and writes any file (`--allow-external-access`).
    pub external_access: bool,
    /// The operator accepts local storage within SQL's reach
    /// (`--allow-storage-in-sql-reach`): warn instead of refusing.
    pub storage_in_reach: bool,
}

/// How SQL could reach local storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// SQL may touch any file.
    ExternalAccess,
    /// Storage is the data directory or inside it.
    StorageInDataDir,
    /// The data directory is inside storage.
    DataDirInStorage,
    /// A symbolic link in the data directory leads into storage (or to a
    /// directory that holds it).
    Link {
        /// The link.
        link: PathBuf,
        /// Where it leads.
        target: PathBuf,
    },
}

impl Reach {
    /// What the operator can do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            Reach::ExternalAccess => {
                "Drop --allow-external-access (or, in a cluster, use s3://, gs:// or az:// storage)"
            }
            Reach::StorageInDataDir => {
                "Give --storage a directory outside the data directory (the default, <data-dir>-storage, is beside it)"
            }
            Reach::DataDirInStorage => "Give --data-dir and --storage two directories, neither inside the other",
            Reach::Link { .. } => "Remove the link",
        }
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reach::ExternalAccess => write!(f, "--allow-external-access lets SQL read and write every file"),
            Reach::StorageInDataDir => write!(f, "it is inside the data directory"),
            Reach::DataDirInStorage => write!(f, "the data directory is inside it"),
            Reach::Link { link, target } => {
                write!(
                    f,
                    "the data directory holds a symbolic link, {}, to {}",
                    link.display(),
                    target.display()
                )
            }
        }
    }
}

/// How SQL, which may touch files in `data_dir` (or anywhere, with
/// `external_access`), reaches `storage`, if it does; both paths canonical.
/// A link in the data directory is another way in: see [`link_reaches`].
fn reach(data_dir: &Path, storage: &Path, external_access: bool) -> Option<Reach> {
    if external_access {
        Some(Reach::ExternalAccess)
    } else if storage.starts_with(data_dir) {
        Some(Reach::StorageInDataDir)
    } else if data_dir.starts_with(storage) {
        Some(Reach::DataDirInStorage)
    } else {
        None
    }
}

/// Whether a link in the data directory to `target` lets SQL reach
/// `storage` (both canonical): the target is in storage, or storage is
/// below the target (a link to `/` reaches every file).
fn link_reaches(target: &Path, storage: &Path) -> bool {
    target.starts_with(storage) || storage.starts_with(target)
}

/// Refuses local `storage` that SQL could reach from `data_dir`: storage in
/// the data directory or around it, any local storage when SQL may touch
/// every file, or a symbolic link in the data directory that leads into
/// storage. With `access.storage_in_reach`, warns instead.
///
/// Paths are compared with symbolic links resolved; neither directory needs
/// to exist yet.
pub fn confine_storage(data_dir: &Path, storage: &Path, access: SqlFileAccess) -> Result<()> {
    let data_dir = resolve(data_dir, 0)?;
    let storage = resolve(storage, 0)?;
    let found = match reach(&data_dir, &storage, access.external_access) {
        Some(found) => Some(found),
        None => find_link(&data_dir, &storage)?,
    };
    let Some(reach) = found else {
        return Ok(());
    };
    if access.storage_in_reach {
        warn!(
            storage = %storage.display(),
            data_dir = %data_dir.display(),
            "SQL can read and write storage: {reach} (allowed by --allow-storage-in-sql-reach)"
        );
        return Ok(());
    }
    Err(Error::StorageInSqlReach {
        storage,
        data_dir,
        reach,
    })
}

/// The first symbolic link in `data_dir` (walked without following links)
/// that leads to storage.
fn find_link(data_dir: &Path, storage: &Path) -> Result<Option<Reach>> {
    let mut pending = vec![data_dir.to_path_buf()];
    let mut walked = 0;
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Not there yet: nothing in it. Unreadable: DuckDB cannot list it either.
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            walked += 1;
            if walked > MAX_ENTRIES_WALKED {
                warn!(
                    data_dir = %data_dir.display(),
                    "looked for symbolic links into storage among the first {MAX_ENTRIES_WALKED} files of the data directory only"
                );
                return Ok(None);
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_symlink() {
                let target = resolve(&path, 0)?;
                if link_reaches(&target, storage) {
                    return Ok(Some(Reach::Link { link: path, target }));
                }
            }
        }
    }
    Ok(None)
}

/// `path` absolute, with every symbolic link resolved as far as the path
/// exists, and the rest (which the executor or DuckDB would create)
/// normalized: where a file at `path` would be created. A link that leads
/// nowhere resolves to where its target would be created.
fn resolve(path: &Path, depth: usize) -> Result<PathBuf> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let absolute = std::path::absolute(path).map_err(io)?;
    let mut resolved = PathBuf::new();
    let mut components = absolute.components();
    for component in components.by_ref() {
        match component {
            Component::Prefix(_) | Component::RootDir => resolved.push(component),
            Component::CurDir => {}
            // `resolved` has no links, so its parent is the real one.
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                let next = resolved.join(name);
                let Ok(metadata) = next.symlink_metadata() else {
                    resolved = next;
                    break;
                };
                if !metadata.file_type().is_symlink() {
                    resolved = next;
                } else if let Ok(target) = next.canonicalize() {
                    resolved = target;
                } else if depth < MAX_LINK_DEPTH {
                    // A link to something missing: follow it as far as it goes.
                    let target = std::fs::read_link(&next).map_err(io)?;
                    resolved = resolve(&resolved.join(target), depth + 1)?;
                } else {
                    // A loop: no file is reached through it.
                    resolved = next;
                }
            }
        }
    }
    // What does not exist yet: no links in it, `..` is lexical.
    Ok(normalize(&resolved.join(components.as_path())))
}

/// `path` with `.` dropped and `..` taken lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_storage_is_beside_the_data_directory() {
        let cases = [
            ("./openduck-data", "./openduck-data-storage"),
            ("openduck-data/", "openduck-data-storage"),
            ("/srv/openduck/data", "/srv/openduck/data-storage"),
            ("/srv/a/./data", "/srv/a/data-storage"),
        ];
        for (data_dir, storage) in cases {
            assert_eq!(
                default_storage_dir(Path::new(data_dir)).unwrap(),
                Path::new(storage),
                "{data_dir}"
            );
        }
        let cwd = std::env::current_dir().unwrap();
        let beside_cwd = cwd.with_file_name(format!("{}-storage", cwd.file_name().unwrap().to_string_lossy()));
        assert_eq!(default_storage_dir(Path::new(".")).unwrap(), beside_cwd);
        assert_eq!(default_storage_dir(&cwd.join("x/..")).unwrap(), beside_cwd);
        assert!(matches!(
            default_storage_dir(Path::new("/")),
            Err(Error::NoDefaultStorage(_))
        ));
    }

    #[test]
    fn storage_must_be_outside_the_data_directory_and_around_it() {
        let data = Path::new("/srv/data");
        assert_eq!(reach(data, Path::new("/srv/data-storage"), false), None);
        assert_eq!(reach(data, Path::new("/srv/other/storage"), false), None);
        assert_eq!(reach(data, Path::new("/srv/dat"), false), None);
        assert_eq!(
            reach(data, Path::new("/srv/data/storage"), false),
            Some(Reach::StorageInDataDir)
        );
        assert_eq!(
            reach(data, Path::new("/srv/data/a/b"), false),
            Some(Reach::StorageInDataDir)
        );
        assert_eq!(reach(data, data, false), Some(Reach::StorageInDataDir));
        assert_eq!(reach(data, Path::new("/srv"), false), Some(Reach::DataDirInStorage));
        assert_eq!(reach(data, Path::new("/"), false), Some(Reach::DataDirInStorage));
        assert_eq!(reach(data, Path::new("/elsewhere"), true), Some(Reach::ExternalAccess));
    }

    #[test]
    fn a_link_reaches_storage_when_it_leads_into_it_or_above_it() {
        let storage = Path::new("/srv/data-storage");
        assert!(link_reaches(Path::new("/srv/data-storage"), storage));
        assert!(link_reaches(Path::new("/srv/data-storage/heads"), storage));
        assert!(link_reaches(Path::new("/srv"), storage));
        assert!(link_reaches(Path::new("/"), storage));
        assert!(!link_reaches(Path::new("/srv/data-storage2"), storage));
        assert!(!link_reaches(Path::new("/srv/parquet"), storage));
    }

    #[cfg(unix)]
    fn assert_storage_in_data_dir(result: Result<()>) {
        let error = result.unwrap_err();
        assert!(
            matches!(
                error,
                Error::StorageInSqlReach {
                    reach: Reach::StorageInDataDir,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn links_are_resolved_before_paths_are_compared() {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let data = root.join("data");
        let storage = root.join("data-storage");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::create_dir_all(&storage).unwrap();
        let refuse = SqlFileAccess::default();
        confine_storage(&data, &storage, refuse).unwrap();
        // Storage named through a link to a place inside the data directory.
        symlink(data.join("sub"), root.join("alias")).unwrap();
        assert_storage_in_data_dir(confine_storage(&data, &root.join("alias/store"), refuse));
        // `..` through the data directory, to storage that does not exist yet.
        confine_storage(&data, &data.join("../elsewhere"), refuse).unwrap();
        assert_storage_in_data_dir(confine_storage(&data, &data.join("sub/../new"), refuse));
        // A link in the data directory into storage, deep down.
        symlink(storage.join("heads"), data.join("sub/heads")).unwrap();
        let error = confine_storage(&data, &storage, refuse).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("sub/heads") && message.contains("--allow-storage-in-sql-reach"),
            "{message}"
        );
        let allow = SqlFileAccess {
            storage_in_reach: true,
            ..refuse
        };
        confine_storage(&data, &storage, allow).unwrap();
        std::fs::remove_file(data.join("sub/heads")).unwrap();
        // A link to a directory above storage, and a link loop (harmless).
        symlink(&root, data.join("up")).unwrap();
        assert!(matches!(
            confine_storage(&data, &storage, refuse),
            Err(Error::StorageInSqlReach {
                reach: Reach::Link { .. },
                ..
            })
        ));
        std::fs::remove_file(data.join("up")).unwrap();
        symlink(data.join("b"), data.join("a")).unwrap();
        symlink(data.join("a"), data.join("b")).unwrap();
        symlink(root.join("parquet"), data.join("parquet")).unwrap();
        confine_storage(&data, &storage, refuse).unwrap();
        // A dangling link whose target would be created in storage.
        symlink(storage.join("heads/evil.head"), data.join("dangling")).unwrap();
        assert!(confine_storage(&data, &storage, refuse).is_err());
    }

    #[test]
    fn storage_moves_out_of_the_data_directory_once() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let default = root.path().join("data-storage");
        assert_eq!(prepare_default_storage(&data, true).unwrap(), default);
        assert!(!default.exists(), "nothing is created");

        std::fs::create_dir_all(data.join("storage/heads")).unwrap();
        std::fs::write(data.join("storage/heads/mydb.head"), "x").unwrap();
        assert_eq!(prepare_default_storage(&data, false).unwrap(), data.join("storage"));
        assert_eq!(prepare_default_storage(&data, true).unwrap(), default);
        assert_eq!(std::fs::read_to_string(default.join("heads/mydb.head")).unwrap(), "x");
        assert!(!data.join("storage").exists());
        assert_eq!(prepare_default_storage(&data, true).unwrap(), default);

        std::fs::create_dir_all(data.join("storage")).unwrap();
        let error = prepare_default_storage(&data, true).unwrap_err();
        assert!(matches!(error, Error::StorageInTwoPlaces { .. }), "{error}");
        assert!(prepare_default_storage(&data, false).is_err());
    }

    #[tokio::test]
    async fn storage_a_writer_uses_stays_where_it_is() {
        use openduck_storage::Heads;
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let heads = FileHeads::new(data.join("storage/heads")).unwrap();
        let claim = heads.claim("mydb").await.unwrap();
        let error = prepare_default_storage(&data, true).unwrap_err();
        assert!(
            matches!(&error, Error::StorageInUse { database, .. } if database == "mydb"),
            "{error}"
        );
        assert!(data.join("storage/heads").is_dir());
        drop(claim);
        assert_eq!(
            prepare_default_storage(&data, true).unwrap(),
            root.path().join("data-storage")
        );
    }
}
