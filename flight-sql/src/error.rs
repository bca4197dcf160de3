//! The Flight SQL front end's errors and their one conversion to `tonic::Status`.

use std::error::Error as _;

use openduck_coordinator::ErrorKind;
use tonic::{Code, Status};
use tracing::{info, warn};

/// Longest message a client gets; DuckDB messages can quote whole statements.
const MAX_MESSAGE_LEN: usize = 4096;

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

fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = error.code();
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(": ");
                message.push_str(&cause);
            }
            source = cause_of(source);
        }
        if message.len() > MAX_MESSAGE_LEN {
            let mut end = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        match code {
            Code::Internal | Code::Unavailable | Code::Unknown => warn!(?code, %message, "request failed"),
            _ => info!(?code, %message, "request refused"),
        }
        Status::new(code, message)
    }
}

fn cause_of<'a>(error: Option<&'a (dyn std::error::Error + 'static)>) -> Option<&'a (dyn std::error::Error + 'static)> {
    error.and_then(|error| error.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_kinds_to_codes_and_bounds_messages() {
        let status = Status::from(Error::UnknownPreparedStatement);
        assert_eq!(status.code(), Code::NotFound);
        let long = Error::InvalidRequest("x".repeat(10_000));
        let status = Status::from(long);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
    }
}
