use std::path::PathBuf;

pub use openduck_api::ErrorKind;

/// Errors of the executor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DuckDB refused or failed a statement; `message` is DuckDB's own text.
    #[error("{message}")]
    DuckDb {
        /// How the error is classified.
        kind: ErrorKind,
        /// DuckDB's message, for example `Catalog Error: Table with name t does not exist!`.
        message: String,
    },
    /// A database file could not be opened.
    #[error("cannot open database {name:?} at {}: {message}", path.display())]
    Open {
        /// The database name.
        name: String,
        /// Where its file lives.
        path: PathBuf,
        /// DuckDB's reason.
        message: String,
    },
    /// A database name that is not a plain identifier (it could name a path
    /// outside the data directory).
    #[error("invalid database name {0:?}: use letters, digits and underscores, starting with a letter or underscore (at most 63 characters)")]
    InvalidDatabaseName(String),
    /// A statement returned more rows than its [`Statement::result_limit`];
    /// nothing it did stands.
    ///
    /// [`Statement::result_limit`]: openduck_api::Statement::result_limit
    #[error(
        "the statement returned more than {limit} bytes of rows, the most the server holds for a statement \
         that changes data, so it was undone (in a transaction: the transaction can no longer commit); \
         return fewer rows or columns (RETURNING), or change the data in parts"
    )]
    ResultTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A statement named a database this executor does not host.
    #[error("database {0:?} is not hosted here")]
    UnknownDatabase(String),
    /// A table or view that does not exist (`database.schema.table`).
    #[error("table {0} does not exist")]
    UnknownTable(String),
    /// A parameter value whose Arrow type cannot be bound to DuckDB.
    #[error("cannot bind parameter {index} of Arrow type {data_type}")]
    UnsupportedParameter {
        /// One-based parameter index.
        index: usize,
        /// The offending Arrow type.
        data_type: String,
    },
    /// The number of bound parameters does not match the statement.
    #[error("the statement has {expected} parameter(s) but {given} were bound")]
    ParameterCount {
        /// Parameters the statement declares.
        expected: usize,
        /// Columns of the bound parameter batch.
        given: usize,
    },
    /// The statement is one the executor refuses to run through a pooled
    /// connection (for example a bare `BEGIN`).
    #[error("{0}")]
    Refused(String),
    /// The SQL text holds no statement.
    #[error("the SQL text holds no statement")]
    EmptyStatement,
    /// Converting DuckDB's Arrow output failed.
    #[error("Arrow conversion failed: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// File system access failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An ingest's client sent nothing for as long as the executor waits.
    #[error(
        "the ingest stream sent no batch for {0:?} (--ingest-idle-timeout): it was cut off, and none of its rows are kept"
    )]
    IngestIdle(std::time::Duration),
    /// A worker task died (a panic in DuckDB glue code); the message says why.
    #[error("executor task failed: {0}")]
    TaskFailed(String),
    /// The executor is shutting down.
    #[error("the executor is shutting down")]
    ShuttingDown,
    /// Differential storage failed.
    #[error(transparent)]
    Storage(#[from] openduck_storage::Error),
    /// This executor lost the right to write: it accepts no more writes.
    #[error("writes refused: {0}")]
    Fenced(String),
    /// Local storage that SQL could read and write.
    #[error(
        "storage {} is within reach of SQL, which may read and write files in the data directory {}: {reach}. \
         {}, or accept the risk with --allow-storage-in-sql-reach",
        storage.display(),
        data_dir.display(),
        reach.remedy()
    )]
    StorageInSqlReach {
        /// The storage directory (canonical).
        storage: PathBuf,
        /// The data directory (canonical).
        data_dir: PathBuf,
        /// How SQL reaches it.
        reach: crate::placement::Reach,
    },
    /// The data directory has no parent to keep storage beside it.
    #[error("no default storage for the data directory {}: give --storage a directory outside it", .0.display())]
    NoDefaultStorage(PathBuf),
    /// Storage both where older versions kept it and where it goes now.
    #[error(
        "storage exists both in {legacy} (where older versions kept it, inside the data directory) and in \
         {default} (the default now, outside it); only one can hold the databases. If {default} holds nothing \
         you need, remove it and start again: {legacy} moves there. If {legacy} appeared after the move (an \
         older version started again, or SQL, which can create directories in the data directory), keep \
         what you need of it elsewhere and remove it",
        legacy = legacy.display(),
        default = default.display()
    )]
    StorageInTwoPlaces {
        /// `<data-dir>/storage`.
        legacy: PathBuf,
        /// `<data-dir>-storage`.
        default: PathBuf,
    },
    /// Storage in the old place is in use by another process.
    #[error(
        "cannot move storage from {} to {}: database {database} is being written by another openduck \
         process; stop it, then start again",
        legacy.display(),
        default.display()
    )]
    StorageInUse {
        /// `<data-dir>/storage`.
        legacy: PathBuf,
        /// `<data-dir>-storage`.
        default: PathBuf,
        /// A database whose writer runs.
        database: String,
    },
    /// Moving storage out of the data directory failed.
    #[error(
        "cannot move storage from {} to {}: {source}; move it by hand (or give --storage {} \
         --allow-storage-in-sql-reach to keep it where it is)",
        legacy.display(),
        default.display(),
        legacy.display()
    )]
    StorageMove {
        /// `<data-dir>/storage`.
        legacy: PathBuf,
        /// `<data-dir>-storage`.
        default: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DuckDb { kind, .. } => *kind,
            Error::InvalidDatabaseName(_)
            | Error::UnsupportedParameter { .. }
            | Error::ParameterCount { .. }
            | Error::EmptyStatement => ErrorKind::InvalidArgument,
            Error::Refused(_)
            | Error::StorageInSqlReach { .. }
            | Error::NoDefaultStorage(_)
            | Error::StorageInTwoPlaces { .. }
            | Error::StorageInUse { .. } => ErrorKind::FailedPrecondition,
            Error::UnknownDatabase(_) | Error::UnknownTable(_) => ErrorKind::NotFound,
            Error::ShuttingDown | Error::ResultTooLarge { .. } => ErrorKind::ResourceExhausted,
            Error::Open { .. }
            | Error::Arrow(_)
            | Error::Io { .. }
            | Error::TaskFailed(_)
            | Error::StorageMove { .. } => ErrorKind::Internal,
            Error::Fenced(_) => ErrorKind::Unavailable,
            Error::IngestIdle(_) => ErrorKind::DeadlineExceeded,
            Error::Storage(error) => storage_kind(error),
        }
    }

    /// What a read-only statement (a read-only user's) that is not one
    /// query gets; the coordinator refuses such statements first.
    pub(crate) fn read_only() -> Self {
        Error::DuckDb {
            kind: ErrorKind::PermissionDenied,
            message: "the statement is read-only (a read-only user's): it may be one query, nothing else".into(),
        }
    }

    /// What a statement that touches what its user or no client may touch
    /// gets (a database not granted, the executor's own files).
    pub(crate) fn permission_denied(message: String) -> Self {
        Error::DuckDb {
            kind: ErrorKind::PermissionDenied,
            message,
        }
    }

    /// A DuckDB error classified from its message (`"<Type> Error: ..."`), for
    /// the C API calls that report a message but no error type.
    pub(crate) fn from_duckdb_message(message: String) -> Self {
        let prefix = message.split(" Error:").next().unwrap_or_default();
        let kind = match prefix {
            // "Binder Error: Catalog \"x\" does not exist!" names a missing database.
            "Binder" if message.contains("does not exist") => ErrorKind::NotFound,
            "Parser"
            | "Syntax"
            | "Binder"
            | "Conversion"
            | "Out of Range"
            | "Invalid Input"
            | "Mismatch Type"
            | "Invalid Type"
            | "Divide by Zero"
            | "Decimal"
            | "Expression"
            | "Parameter Not Resolved"
            | "Parameter Not Allowed"
            | "Invalid" => ErrorKind::InvalidArgument,
            "Catalog" => catalog_kind(&message),
            "Constraint" | "Dependency" | "Sequence" => ErrorKind::FailedPrecondition,
            "INTERRUPT" | "Interrupt" => ErrorKind::Cancelled,
            "Out of Memory" => ErrorKind::ResourceExhausted,
            "Not implemented" | "Not Implemented" => ErrorKind::Unimplemented,
            // A write in a read-only user's transaction.
            "TransactionContext" if message.contains("transaction is launched in read-only mode") => {
                ErrorKind::PermissionDenied
            }
            "TransactionContext" | "Transaction" => ErrorKind::Aborted,
            "Permission" => ErrorKind::PermissionDenied,
            _ => ErrorKind::Internal,
        };
        Error::DuckDb { kind, message }
    }
}

/// "does not exist" is `NotFound`; "already exists" is `AlreadyExists`.
fn storage_kind(error: &openduck_storage::Error) -> ErrorKind {
    use openduck_storage::Error as E;
    match error {
        E::InvalidDatabaseName(_) | E::InvalidSnapshotId(_) | E::InvalidLocation { .. } => ErrorKind::InvalidArgument,
        E::NoSuchDatabase(_) | E::MissingSnapshot { .. } => ErrorKind::NotFound,
        E::DatabaseExists(_) => ErrorKind::AlreadyExists,
        E::CorruptManifest { .. } | E::CorruptLayer { .. } => ErrorKind::DataLoss,
        E::Fenced { .. } | E::Busy { .. } => ErrorKind::Unavailable,
        E::NotADatabase { .. } | E::FileChanging(_) => ErrorKind::Internal,
        _ => ErrorKind::Unavailable,
    }
}

fn catalog_kind(message: &str) -> ErrorKind {
    if message.contains("already exists") {
        ErrorKind::AlreadyExists
    } else if message.contains("does not exist") || message.contains("not found") {
        ErrorKind::NotFound
    } else {
        ErrorKind::InvalidArgument
    }
}

impl From<Error> for openduck_api::Error {
    fn from(error: Error) -> Self {
        openduck_api::Error::new(error.kind(), error)
    }
}

/// The executor's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_duckdb_messages() {
        let cases = [
            (
                "Parser Error: syntax error at or near \"SELEC\"",
                ErrorKind::InvalidArgument,
            ),
            (
                "Catalog Error: Table with name nope does not exist!",
                ErrorKind::NotFound,
            ),
            (
                "Catalog Error: Table with name t already exists!",
                ErrorKind::AlreadyExists,
            ),
            (
                "Binder Error: Referenced column \"x\" not found",
                ErrorKind::InvalidArgument,
            ),
            ("Binder Error: Catalog \"nowhere\" does not exist!", ErrorKind::NotFound),
            (
                "Constraint Error: Duplicate key \"id: 1\"",
                ErrorKind::FailedPrecondition,
            ),
            ("INTERRUPT Error: Interrupted!", ErrorKind::Cancelled),
            ("Something else entirely", ErrorKind::Internal),
        ];
        for (message, kind) in cases {
            assert_eq!(Error::from_duckdb_message(message.into()).kind(), kind, "{message}");
        }
    }
}
