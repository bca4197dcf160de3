//! Error kinds and gRPC status codes, both ways, in one place.

use std::error::Error as StdError;

use openduck_api::ErrorKind;
use tonic::{Code, Status};
use tracing::{info, warn};

/// Longest message a client gets; DuckDB messages can quote whole statements.
const MAX_MESSAGE_LEN: usize = 4096;

/// The status code for an error of `kind`.
pub fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DataLoss => Code::DataLoss,
        ErrorKind::Internal => Code::Internal,
    }
}

/// The kind of error a status from a peer reports. A broken transport
/// (`Unknown`, `Unavailable`) means the peer is gone. `DeadlineExceeded`
/// is a statement's own timeout: statements to a peer carry no gRPC
/// deadline (other requests' run out as `Cancelled`).
pub(crate) fn kind_of(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Cancelled => ErrorKind::Cancelled,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::Unimplemented => ErrorKind::Unimplemented,
        Code::Aborted => ErrorKind::Aborted,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::Unavailable | Code::Unknown => ErrorKind::Unavailable,
        Code::DataLoss => ErrorKind::DataLoss,
        Code::Internal | Code::Ok => ErrorKind::Internal,
    }
}

/// A status with `code` whose message is `error` and its chain of causes
/// (each once), bounded in length. Failures of the server are logged as
/// warnings, refusals of a request as information.
pub fn status_with_causes(code: Code, error: &(dyn StdError + 'static)) -> Status {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_survive_the_round_trip_through_codes() {
        for kind in [
            ErrorKind::InvalidArgument,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::FailedPrecondition,
            ErrorKind::Cancelled,
            ErrorKind::DeadlineExceeded,
            ErrorKind::PermissionDenied,
            ErrorKind::ResourceExhausted,
            ErrorKind::Unimplemented,
            ErrorKind::Aborted,
            ErrorKind::Unauthenticated,
            ErrorKind::Unavailable,
            ErrorKind::DataLoss,
            ErrorKind::Internal,
        ] {
            assert_eq!(kind_of(code_of(kind)), kind);
        }
        assert_eq!(kind_of(Code::Unknown), ErrorKind::Unavailable);
    }

    #[test]
    fn bounds_messages_and_keeps_causes() {
        let long = std::io::Error::other("x".repeat(10_000));
        let status = status_with_causes(Code::InvalidArgument, &long);
        assert!(status.message().len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
    }
}
