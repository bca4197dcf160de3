//! The telemetry crate's one error type.

/// What can go wrong setting telemetry up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log filter does not parse.
    #[error("bad log filter {filter:?}: {reason}")]
    LogFilter {
        /// The filter as given.
        filter: String,
        /// Why it was refused.
        reason: String,
    },
    /// A subscriber was already installed in this process.
    #[error("logging is already set up in this process")]
    AlreadyInstalled,
    /// An OTLP exporter could not be built from its settings.
    #[error("cannot export {signal} over OTLP: {reason}")]
    Exporter {
        /// traces or metrics.
        signal: &'static str,
        /// Why.
        reason: String,
    },
    /// The metrics listener could not bind.
    #[error("cannot serve metrics on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The telemetry crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
