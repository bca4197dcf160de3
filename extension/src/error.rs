//! The one error type of the extension's core, classified by gRPC code.

use tonic::Code;

/// Why a call of the extension's core failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What `ATTACH` was given cannot be used.
    #[error("{0}")]
    InvalidTarget(String),
    /// The service could not be reached.
    #[error("cannot reach the openduck service at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The service answered with an error.
    #[error("{}", describe(.0))]
    Status(#[from] tonic::Status),
    /// Rows or schemas that could not be decoded.
    #[error("openduck: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The service answered with something other than what the protocol says.
    #[error("openduck: unexpected answer from the service: {0}")]
    Protocol(String),
    /// The user interrupted the query.
    #[error("openduck: the query was interrupted and cancelled on the service")]
    Interrupted,
    /// A bug in the extension: a panic caught at the C boundary.
    #[error("openduck extension panicked: {0}")]
    Panic(String),
}

impl Error {
    /// The gRPC code that best classifies this error.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidTarget(_) => Code::InvalidArgument,
            Error::Unreachable { .. } => Code::Unavailable,
            // Only the user's own interrupt is a cancellation to DuckDB (its
            // InterruptException); a call the service or the transport cancelled failed.
            Error::Status(status) if status.code() == Code::Cancelled => Code::Aborted,
            Error::Status(status) => status.code(),
            Error::Arrow(_) => Code::DataLoss,
            Error::Protocol(_) => Code::Internal,
            Error::Interrupted => Code::Cancelled,
            Error::Panic(_) => Code::Internal,
        }
    }
}

impl From<arrow_flight::error::FlightError> for Error {
    fn from(error: arrow_flight::error::FlightError) -> Self {
        match error {
            arrow_flight::error::FlightError::Tonic(status) => Error::Status(*status),
            arrow_flight::error::FlightError::Arrow(error) => Error::Arrow(error),
            other => Error::Arrow(arrow::error::ArrowError::ExternalError(Box::new(other))),
        }
    }
}

fn describe(status: &tonic::Status) -> String {
    match status.code() {
        Code::Unauthenticated => format!("openduck: authentication failed: {}", status.message()),
        Code::PermissionDenied => format!("openduck: permission denied: {}", status.message()),
        code => format!("openduck: {} ({code:?})", status.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_users_interrupt_is_a_cancellation() {
        assert_eq!(Error::Interrupted.code(), Code::Cancelled);
        let reset = Error::Status(tonic::Status::cancelled("h2 protocol error: stream reset"));
        assert_eq!(reset.code(), Code::Aborted);
        assert!(reset.to_string().contains("stream reset"));
        let refused = Error::Status(tonic::Status::unauthenticated("invalid credentials"));
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
}
