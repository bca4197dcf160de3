//! openduck's internal protocol, `openduck.v1`.
//!
//! The messages the coordinator and executors exchange besides Arrow data:
//! [`QueryTicket`], what a ticket redeems (a [`FragmentTicket`] that one
//! executor runs, a [`HeldResult`] or a [`DistributedQuery`] that a
//! coordinator serves); [`ExecutorRequest`], everything else a coordinator
//! asks of an executor; [`SignedTicket`], the envelope that carries either
//! with a MAC so that executors run only what a coordinator of their cluster
//! asked for; and [`ExecutorRecord`], what an executor announces in the
//! registry, under the keys [`etcd_keys`] lays out. Signing and checking
//! live in the `openduck-remote` crate; this crate holds the generated types
//! and the key layout.
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

/// The gRPC metadata key (binary, UTF-8) with which a client names the
/// database a Flight SQL call is for: unqualified names resolve in it, and a
/// transaction begins on its executor. It takes precedence over the
/// connection's `catalog` session option, which a new connection (after a
/// reconnect, or a restart of the service) no longer has; the DuckDB
/// extension sends it with every call of an attachment.
pub const CATALOG_METADATA: &str = "x-openduck-catalog-bin";

/// The gRPC metadata key with which a client says, with the value
/// [`EVERY_ENDPOINT`], that it reads every endpoint of a FlightInfo. Only
/// such a client is given a result in several parts (each part's endpoint
/// redeemed at the executor that computes it, in parallel); the Flight SQL
/// protocol allows several, but some clients read the first alone.
pub const ENDPOINTS_METADATA: &str = "x-openduck-endpoints";

/// The value of [`ENDPOINTS_METADATA`] of a client that reads every endpoint.
pub const EVERY_ENDPOINT: &str = "all";

/// The gRPC metadata key with which a client asks, with the value
/// [`REQUIRED`], that a query run on one executor, verbatim in its DuckDB:
/// a coordinator refuses one whose databases live on different executors
/// (`FAILED_PRECONDITION`) instead of planning it across them, in its own
/// dialect. The DuckDB extension sends it with a query it wrote in DuckDB's
/// dialect over several databases, after asking [`ON_ONE_EXECUTOR`].
pub const ONE_EXECUTOR_METADATA: &str = "x-openduck-one-executor";

/// The value of [`ONE_EXECUTOR_METADATA`] that asks for one executor.
pub const REQUIRED: &str = "required";

/// The Flight action that asks whether one executor serves every database
/// its body names (UTF-8, one name per line): its one result's body is
/// `true` or `false` (false too for a database the caller may not use).
pub const ON_ONE_EXECUTOR: &str = "openduck.on_one_executor";

/// Where a cluster's state lives in etcd, under the prefix (such as
/// `/openduck`) that every process of the cluster is given. The registry and
/// storage's heads both use these keys; fencing depends on their agreeing.
pub mod etcd_keys {
    fn root(prefix: &str) -> &str {
        prefix.trim_end_matches('/')
    }

    /// `<prefix>/executors/`, under which each live executor keeps its
    /// [`ExecutorRecord`](crate::ExecutorRecord), bound to its lease.
    pub fn executors(prefix: &str) -> String {
        format!("{}/executors/", root(prefix))
    }

    /// `<prefix>/executors/<id>`.
    pub fn executor(prefix: &str, id: &str) -> String {
        format!("{}{id}", executors(prefix))
    }

    /// `<prefix>/writers/<database>`: the id of the one executor that may
    /// write `database`; every swap of its head checks it.
    pub fn writer(prefix: &str, database: &str) -> String {
        format!("{}/writers/{database}", root(prefix))
    }

    /// `<prefix>/heads/`, under which each database's latest snapshot is kept.
    pub fn heads(prefix: &str) -> String {
        format!("{}/heads/", root(prefix))
    }

    /// `<prefix>/heads/<database>`.
    pub fn head(prefix: &str, database: &str) -> String {
        format!("{}{database}", heads(prefix))
    }

    /// `<prefix>/load/`, under which each live executor reports its
    /// [`ExecutorLoad`](crate::ExecutorLoad), bound to its lease.
    pub fn loads(prefix: &str) -> String {
        format!("{}/load/", root(prefix))
    }

    /// `<prefix>/load/<id>`.
    pub fn load(prefix: &str, id: &str) -> String {
        format!("{}{id}", loads(prefix))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_trailing_slash_of_the_prefix_changes_no_key() {
            for prefix in ["/openduck", "/openduck/"] {
                assert_eq!(super::writer(prefix, "db"), "/openduck/writers/db");
                assert_eq!(super::head(prefix, "db"), "/openduck/heads/db");
                assert_eq!(super::executor(prefix, "e1"), "/openduck/executors/e1");
                assert_eq!(super::load(prefix, "e1"), "/openduck/load/e1");
            }
        }
    }
}
