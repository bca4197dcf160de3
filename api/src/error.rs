//! Errors an executor answers with, classified so that every service
//! boundary maps them to the same protocol status codes.

use std::error::Error as StdError;
use std::fmt;

/// What went wrong, in terms a caller can act on. Service boundaries map it to
/// a protocol status code (for example gRPC's `InvalidArgument` or `NotFound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The statement is malformed or cannot be bound (syntax, unknown column,
    /// wrong parameter type, a value out of range).
    InvalidArgument,
    /// A table, view, schema or database that does not exist.
    NotFound,
    /// Something that must be unique exists already.
    AlreadyExists,
    /// A constraint or the state of the database refuses the statement.
    FailedPrecondition,
    /// The statement was interrupted because its caller cancelled it.
    Cancelled,
    /// The statement ran longer than the executor allows (`--statement-timeout`).
    DeadlineExceeded,
    /// The statement touches something it may not (for example files outside
    /// the data directory).
    PermissionDenied,
    /// Out of memory or of connections.
    ResourceExhausted,
    /// A feature that DuckDB or openduck does not provide.
    Unimplemented,
    /// A transaction conflict; retrying may succeed.
    Aborted,
    /// A ticket or credential that is missing, forged or expired.
    Unauthenticated,
    /// The executor that serves the data is not reachable (gone, not yet registered).
    Unavailable,
    /// Stored data failed its checksum.
    DataLoss,
    /// A fault of the executor itself (I/O, DuckDB internal errors).
    Internal,
}

/// An executor operation failed: how it is classified, and the error of the
/// implementation that failed (DuckDB's, or the wire's), whose message and
/// causes it shows as its own.
pub struct Error {
    kind: ErrorKind,
    error: Box<dyn StdError + Send + Sync + 'static>,
}

impl Error {
    /// An error of `kind`, from an implementation's error or a message.
    pub fn new(kind: ErrorKind, error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Error {
            kind,
            error: error.into(),
        }
    }

    /// How it is classified.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The implementation's error, when it is a `T`.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        self.error.downcast_ref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// Transparent: the causes are the implementation error's causes, so a
/// chain printed for a client does not repeat the message.
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.source()
    }
}

/// The result of an executor operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn shows_the_implementation_error_and_its_causes_once() {
        let error = Error::new(ErrorKind::DataLoss, Outer(std::io::Error::other("inner")));
        assert_eq!(error.kind(), ErrorKind::DataLoss);
        assert_eq!(error.to_string(), "outer");
        assert_eq!(error.source().map(ToString::to_string).as_deref(), Some("inner"));
        assert!(error.downcast_ref::<Outer>().is_some());
        assert!(error.downcast_ref::<std::io::Error>().is_none());
    }

    #[test]
    fn a_message_is_an_error() {
        let error = Error::new(ErrorKind::NotFound, format!("no table {}", "t"));
        assert_eq!(error.to_string(), "no table t");
        assert!(error.source().is_none());
    }
}
