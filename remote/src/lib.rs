//! How an openduck coordinator and its executors talk: Arrow Flight, with
//! everything a coordinator asks signed with the cluster secret.
//!
//! - [`TicketSigner`] signs and checks fragment tickets and executor requests
//!   (HMAC-SHA256, with a kind and an expiry), so executors run only what a
//!   coordinator of their cluster asked for, and only for a while.
//! - [`ExecutorService`] is an executor's Flight service: `DoGet` streams a
//!   fragment's rows, `DoAction` answers requests (describe, update, cancel,
//!   sessions, catalog listings), `DoPut` ingests. It serves any
//!   [`openduck_api::ExecutorApi`], dispatching each request to it. The
//!   sessions a connection opened close when it does, so a coordinator
//!   that dies leaves no transaction open behind it.
//! - [`serve_executor`] puts an executor on the wire, and shuts it down
//!   in order ([`RunningExecutor::shutdown`]). Asked by a coordinator, it
//!   fetches a fragment from another executor straight into a table of its
//!   own (a join's small side, shipped to the large side).
//! - [`RemoteExecutor`] is the coordinator's client for it, and implements
//!   the same [`openduck_api::ExecutorApi`] over the wire.
//! - [`ServerTls`] and [`ClientTls`]: TLS for every server of openduck and
//!   for the coordinator's connections to executors (optionally mutual), so
//!   tickets and rows need not cross a network in the clear.
//! - [`encode_results`] and [`incoming_batches`] put rows on and take them
//!   off the wire the same way in every server of openduck, and
//!   [`for_client`] gives the schema clients see (no view types).
//! - [`Connections`] closes a server's connections without losing the end
//!   of a stream, and counts them until they are gone; [`Tagged`] gives
//!   every request on a connection what the server knows of it.
//! - [`Health`] answers the gRPC health checking protocol for every server.
//! - [`code_of`] and [`status_with_causes`] map errors to gRPC statuses in one place.

mod client;
mod connections;
mod convert;
mod error;
mod health;
mod metrics;
mod peers;
mod results;
mod serve;
mod server;
mod signing;
mod status;
mod tls;
mod transfer;

pub use client::RemoteExecutor;
pub use connections::{tag_of, Connections, LingeringTcp, Tagged, LINGER};
pub use convert::{batch_from_bytes, batch_to_bytes, grants_of, grants_to_pb, statement_of, ticket_of};
pub use error::{Error, Result};
pub use health::{Health, HEALTH_PATH_PREFIX};
pub use results::{encode_results, for_client, incoming_batches, Receiver};
pub use serve::{serve_executor, Listening, RunningExecutor};
pub use server::{ExecutorService, ACTION};
pub use signing::{TicketError, TicketKind, TicketSigner};
pub use status::{code_of, status_with_causes};
pub use tls::{ClientTls, ServerTls};
