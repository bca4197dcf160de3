//! The remote protocol's errors and their one conversion to `tonic::Status`.

use openduck_api::ErrorKind;
use tonic::Status;

use crate::signing::TicketError;
use crate::status::{code_of, kind_of, status_with_causes};

/// Errors of the coordinator-executor protocol, on either side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The executor refused or failed the statement (executor side).
    #[error(transparent)]
    Executor(#[from] openduck_api::Error),
    /// A ticket or request was refused (executor side).
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The executor answered with an error (coordinator side).
    #[error("executor {executor:?}: {message}")]
    Remote {
        /// Which executor.
        executor: String,
        /// How the executor classified it.
        kind: ErrorKind,
        /// The executor's message.
        message: String,
    },
    /// An executor this process cannot or will not reach as registered (an
    /// endpoint that is invalid, plain where TLS is required, or TLS
    /// without the CA to check it).
    #[error("cannot reach executor {executor:?}: {reason}")]
    Endpoint {
        /// Which executor.
        executor: String,
        /// Why not.
        reason: String,
    },
    /// TLS could not be set up with the certificates given.
    #[error("TLS: {0}")]
    Tls(String),
    /// A request this executor does not answer (one it does not know, from a
    /// newer coordinator, or a transfer it cannot make): nothing was done,
    /// and the caller may do without it.
    #[error("{0}")]
    Unsupported(String),
    /// A request or answer that does not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A ticket for another executor.
    #[error("the ticket is for executor {0:?}, not this one")]
    WrongExecutor(String),
    /// A ticket that only a coordinator redeems (a held result, a query
    /// across executors), presented to an executor.
    #[error("the ticket is redeemed by a coordinator, not by an executor")]
    CoordinatorTicket,
    /// The rows to ingest stopped with an error; nothing was appended.
    #[error("the rows to ingest failed: {0}")]
    IngestAborted(String),
    /// Encoding or decoding Arrow data failed.
    #[error("invalid Arrow data: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl Error {
    /// A status an executor sent, or a transport failure talking to it.
    pub(crate) fn remote(executor: &str, status: &Status) -> Self {
        Error::Remote {
            executor: executor.to_string(),
            kind: kind_of(status.code()),
            message: status.message().to_string(),
        }
    }

    /// How the error is classified, for mapping to protocol status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Executor(error) => error.kind(),
            Error::Ticket(_) => ErrorKind::Unauthenticated,
            Error::Remote { kind, .. } => *kind,
            Error::Protocol(_) => ErrorKind::Internal,
            Error::Unsupported(_) => ErrorKind::Unimplemented,
            Error::Endpoint { .. } => ErrorKind::Unavailable,
            Error::Tls(_) => ErrorKind::InvalidArgument,
            Error::WrongExecutor(_) | Error::CoordinatorTicket | Error::IngestAborted(_) | Error::Arrow(_) => {
                ErrorKind::InvalidArgument
            }
        }
    }
}

impl From<arrow_flight::error::FlightError> for Error {
    fn from(error: arrow_flight::error::FlightError) -> Self {
        match error {
            arrow_flight::error::FlightError::Arrow(error) => Error::Arrow(error),
            // Damaged Arrow IPC: the sender's fault.
            arrow_flight::error::FlightError::DecodeError(message)
            | arrow_flight::error::FlightError::ProtocolError(message) => {
                Error::Arrow(arrow::error::ArrowError::IpcError(message))
            }
            other => Error::Protocol(other.to_string()),
        }
    }
}

/// On the coordinator's side, an executor operation that failed.
impl From<Error> for openduck_api::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Executor(error) => error,
            other => openduck_api::Error::new(other.kind(), other),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        status_with_causes(code_of(error.kind()), &error)
    }
}

/// The remote protocol's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
