//! The Flight SQL front end's errors and their one conversion to `tonic::Status`.

use openduck_remote::{code_of, status_with_causes};
use tonic::{Code, Status};

/// Errors of the Flight SQL service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The coordinator or an executor refused or failed the request.
    #[error(transparent)]
    Coordinator(#[from] openduck_coordinator::Error),
    /// A request that does not follow the Flight SQL protocol.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A prepared statement handle this server does not know (closed, never
    /// created, or created before a restart).
    #[error("prepared statement handle does not exist (it was closed, or the server restarted)")]
    UnknownPreparedStatement,
    /// Too many open prepared statements.
    #[error("too many open prepared statements (limit {0}); close unused ones")]
    TooManyPreparedStatements(usize),
    /// A transaction id that is not the one open on this connection.
    #[error("unknown transaction: it was ended, or belongs to another connection")]
    UnknownTransaction,
    /// A request that needs a session arrived without a connection to tie it to.
    #[error("this request needs a session, which this connection cannot hold")]
    NoSession,
    /// An action this server does not provide.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// Credentials missing or wrong.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Reading Arrow data a client sent failed.
    #[error("invalid Arrow data: {0}")]
    Flight(#[from] arrow_flight::error::FlightError),
    /// Building a result failed.
    #[error("building the result failed: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The server configuration is unsafe or invalid.
    #[error("{0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The service's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn code(&self) -> Code {
        match self {
            Error::Coordinator(error) => code_of(error.kind()),
            // A stream the client sent failed: keep the transport's code, but
            // an oversized message is ResourceExhausted.
            Error::Flight(arrow_flight::error::FlightError::Tonic(status)) => {
                if crate::limits::is_too_large(status.code(), status.message()) {
                    Code::ResourceExhausted
                } else {
                    status.code()
                }
            }
            Error::InvalidRequest(_) | Error::Flight(_) => Code::InvalidArgument,
            Error::UnknownPreparedStatement | Error::UnknownTransaction => Code::NotFound,
            Error::NoSession => Code::FailedPrecondition,
            Error::UnknownAction(_) => Code::Unimplemented,
            Error::TooManyPreparedStatements(_) => Code::ResourceExhausted,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Arrow(_) | Error::Config(_) | Error::Bind { .. } | Error::Transport(_) => Code::Internal,
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        status_with_causes(error.code(), &error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_errors_to_codes() {
        let status = Status::from(Error::UnknownPreparedStatement);
        assert_eq!(status.code(), Code::NotFound);
        let long = Error::InvalidRequest("x".repeat(10_000));
        let status = Status::from(long);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().len() < 5_000);
    }
}
