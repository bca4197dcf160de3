//! The storage crate's error type.

use std::path::{Path, PathBuf};

/// A storage result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in differential storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database name that is not a plain identifier (it could escape the
    /// data directory or the bucket prefix).
    #[error("invalid database name {0:?}: use letters, digits and _, at most 63 characters")]
    InvalidDatabaseName(String),
    /// A snapshot name that is not an id.
    #[error("invalid snapshot id {0:?}")]
    InvalidSnapshotId(String),
    /// The storage URL is not one this build understands.
    #[error("invalid storage location {url:?}: {reason}")]
    InvalidLocation {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// No snapshot of the database exists.
    #[error("database {0} has no snapshot in storage")]
    NoSuchDatabase(String),
    /// The database already exists (a clone target, say).
    #[error("database {0} already exists in storage")]
    DatabaseExists(String),
    /// A snapshot is missing.
    #[error("snapshot {snapshot} of database {database} is missing from storage")]
    MissingSnapshot {
        /// The database.
        database: String,
        /// The snapshot.
        snapshot: String,
    },
    /// A manifest could not be read or does not match its checksum.
    #[error("the manifest of snapshot {snapshot} of database {database} is corrupt: {reason}")]
    CorruptManifest {
        /// The database.
        database: String,
        /// The snapshot.
        snapshot: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A layer's bytes do not match the checksum its manifest records.
    #[error("layer {layer} is corrupt: {what} at offset {offset} fails its checksum")]
    CorruptLayer {
        /// The layer object.
        layer: String,
        /// Which part of the file (a block, the header).
        what: String,
        /// The offset in the layer.
        offset: u64,
    },
    /// The head of a database moved under us, or this writer lost its claim:
    /// the snapshot was not published.
    #[error("database {database}: {reason}")]
    Fenced {
        /// The database.
        database: String,
        /// Why the head could not move.
        reason: String,
    },
    /// Another writer holds the database.
    #[error("database {database} is written by {holder}")]
    Busy {
        /// The database.
        database: String,
        /// Who holds it.
        holder: String,
    },
    /// A file is not a DuckDB database this crate can read.
    #[error("{path} is not a DuckDB database openduck can store: {reason}")]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The file kept changing while a snapshot read it.
    #[error("{0} kept changing while it was read for a snapshot; is another process checkpointing it?")]
    FileChanging(PathBuf),
    /// Local file I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The object store failed.
    #[error("object storage: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// etcd failed.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Blocking work on `path` that did not finish: cancelled when the
    /// runtime shut down under it (an error), or panicked (a panic still).
    pub(crate) fn stopped(path: &Path, stopped: tokio::task::JoinError) -> Self {
        if stopped.is_panic() {
            std::panic::resume_unwind(stopped.into_panic());
        }
        Error::io(path, std::io::Error::other(stopped))
    }
}

/// Whether `name` may name a database in storage: the same plain identifiers
/// the executor accepts, so no name can leave its prefix.
pub fn is_valid_database_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    if is_valid_database_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidDatabaseName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_cannot_escape_the_data_directory() {
        for good in ["mydb", "_x", "sales_2024"] {
            assert!(is_valid_database_name(good), "{good}");
        }
        for bad in ["", "../etc", "a/b", "a.b", "1db", "x y", "db\0", "a@b", &"a".repeat(64)] {
            assert!(!is_valid_database_name(bad), "{bad:?}");
        }
    }
}
