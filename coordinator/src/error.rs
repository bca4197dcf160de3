use openduck_api::ErrorKind;

use openduck_remote::TicketError;

/// Errors of the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The executor refused or failed the statement, or could not be reached.
    #[error(transparent)]
    Executor(#[from] openduck_api::Error),
    /// Talking to a remote executor failed, or it refused the request.
    #[error(transparent)]
    Remote(#[from] openduck_remote::Error),
    /// A ticket was refused.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// No registered executor hosts the database.
    #[error("no executor serves database {0:?}")]
    NoExecutor(String),
    /// No executor serves the database, nor did one since this coordinator started.
    #[error("database {0:?} does not exist (no executor serves it)")]
    UnknownDatabase(String),
    /// The statement names no database and no executor serves one to
    /// default to: none has registered yet, or all have left.
    #[error(
        "no executor serves any database: none has registered with this coordinator yet, or all have left (is the cluster starting?)"
    )]
    NoDatabases,
    /// The ticket names an executor that is not registered (any more).
    #[error("executor {0:?} is not registered")]
    UnknownExecutor(String),
    /// The statement changes data and touches databases that live on
    /// different executors.
    #[error("the statement touches databases on different executors ({0}); only queries (SELECT) may span executors, a statement that changes data must stay on one")]
    SpansExecutors(String),
    /// A client asked that a query run on one executor, verbatim, and the
    /// databases it reads live on different executors.
    #[error("the databases this query reads ({0}) do not live on one executor, where it was meant to run verbatim; run it again")]
    NotOnOneExecutor(String),
    /// Planning or running a query across executors failed.
    #[error("{message}")]
    Distributed {
        /// How it is classified.
        kind: ErrorKind,
        /// DataFusion's message.
        message: String,
    },
    /// The held result of a statement was fetched already, or expired.
    #[error("the result of query {0} was already fetched or has expired")]
    ResultGone(String),
    /// A statement of a session (a transaction, temporary tables) touches
    /// databases of another executor than the one holding the session.
    #[error("the statement runs on executor {executor:?}, but this session's transaction and temporary tables live on {session_executor:?}")]
    OutsideSession {
        /// Where the statement would run.
        executor: String,
        /// Where the session is.
        session_executor: String,
    },
    /// A statement names `openduck.main.query_history` but is not a query
    /// of it alone.
    #[error("openduck.main.query_history lives in the coordinator, not in a database: it can be read only by a query of its own, once, not joined with tables nor written")]
    HistoryAlone,
    /// A read-only user sent something other than a query.
    #[error("user {0:?} is read-only: it may run queries, not statements that change anything")]
    ReadOnly(String),
    /// A user granted some databases only named another one.
    #[error("database {database:?} was not granted to this account; it may use {grants}")]
    NotGranted {
        /// The database it named.
        database: String,
        /// The databases it was granted.
        grants: String,
    },
    /// Encoding or decoding parameter rows failed.
    #[error("invalid parameter rows: {0}")]
    Parameters(#[source] arrow::error::ArrowError),
}

impl Error {
    /// How the error is classified, for mapping to protocol status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Executor(error) => error.kind(),
            Error::Remote(error) => error.kind(),
            Error::Ticket(_) => ErrorKind::Unauthenticated,
            Error::NoExecutor(_) | Error::UnknownExecutor(_) | Error::NoDatabases => ErrorKind::Unavailable,
            Error::SpansExecutors(_) => ErrorKind::Unimplemented,
            Error::NotOnOneExecutor(_) => ErrorKind::FailedPrecondition,
            Error::UnknownDatabase(_) => ErrorKind::NotFound,
            Error::Distributed { kind, .. } => *kind,
            Error::OutsideSession { .. } => ErrorKind::FailedPrecondition,
            Error::ReadOnly(_) | Error::NotGranted { .. } => ErrorKind::PermissionDenied,
            Error::ResultGone(_) => ErrorKind::NotFound,
            Error::Parameters(_) | Error::HistoryAlone => ErrorKind::InvalidArgument,
        }
    }
}

/// The coordinator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
