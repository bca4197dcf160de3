//! openduck's internal protocol, `openduck.v1`.
//!
//! The messages the coordinator and executors exchange besides Arrow data:
//! [`FragmentTicket`], which says what one executor must run;
//! [`ExecutorRequest`], everything else a coordinator asks of an executor;
//! [`SignedTicket`], the envelope that carries either with a MAC so that
//! executors run only what a coordinator of their cluster asked for; and
//! [`ExecutorRecord`], what an executor announces in the registry. Signing and
//! checking live in the `openduck-remote` crate; this crate only holds the
//! generated types.
//!
//! [`flight_session`] holds Arrow Flight's session messages, which the
//! arrow-flight crate does not generate yet.
//!
//! The `.proto` sources are in `proto/openduck/v1/` and `proto/arrow/`; `build.rs` compiles them
//! with protox, so building needs no `protoc`.

#![warn(missing_docs)]

#[allow(missing_docs, unreachable_pub, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/openduck.v1.rs"));
}

/// Arrow Flight's session messages (`SetSessionOptions`, `GetSessionOptions`,
/// `CloseSession`), which the arrow-flight crate does not provide yet.
pub mod flight_session {
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    mod generated {
        include!(concat!(env!("OUT_DIR"), "/arrow.flight.protocol.rs"));
    }
    pub use generated::*;
}

pub use generated::*;
pub use prost::Message;
