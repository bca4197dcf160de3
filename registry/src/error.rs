//! The registry's errors.

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// etcd could not be reached or refused a request.
    #[error("etcd at {endpoints}: {source}")]
    Etcd {
        /// The endpoints tried.
        endpoints: String,
        /// The client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// Another executor is the writer of a database this one wants to write.
    #[error("database {database:?} already has a writer: executor {owner:?} (one writer per database; start this executor as a reader, or stop the other)")]
    WriterTaken {
        /// The database.
        database: String,
        /// The executor that writes it.
        owner: String,
    },
    /// A record in etcd that is not an executor record.
    #[error("invalid executor record under {key}: {message}")]
    InvalidRecord {
        /// The key.
        key: String,
        /// What was wrong.
        message: String,
    },
}

/// The registry's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
