//! openduck's Arrow Flight SQL front end.
//!
//! [`serve`] binds a listen address and serves Flight SQL for a
//! [`Coordinator`](openduck_coordinator::Coordinator): statement queries and
//! updates, prepared statements with parameters bound through DoPut (several
//! rows run as a batch), GetSchema and PollFlightInfo, all catalog metadata
//! (catalogs, schemas, tables with column metadata, table types, keys, XDBC
//! types, every SqlInfo key), bulk ingest, transactions, session options
//! (catalog, schema) and cancellation. Substrait and savepoints answer
//! `Unimplemented`.
//!
//! A session belongs to a client connection: the server tags every request
//! with its connection, and a connection that closes rolls back its open
//! transaction.
//!
//! The service is thin: it decodes the protocol, authenticates, keeps
//! prepared statement handles, and delegates to the coordinator. Query
//! results stream from the executor to the client batch by batch.
//!
//! Authentication: with a token configured, every call carries
//! `authorization: Bearer <token>`, or the client first calls Handshake with
//! Basic credentials (any user, the token as password) and receives the bearer
//! header. With [`UserAccounts`], users log in through Handshake and receive a
//! signed token that expires; an account may be read-only (queries only).
//! Without either, only loopback addresses may be served. Every statement is
//! recorded, with who sent it, in the coordinator's query history.
//! [`ServerTls`] serves TLS, with client certificates when it names a client
//! CA.

mod accounts;
mod actions;
mod auth;
mod connection;
mod error;
mod flight;
mod history;
mod ingest;
mod limits;
mod metadata;
mod observe;
mod prepared;
mod server;
mod service;
mod session;
mod sql_info;
mod streams;

pub use accounts::{account_line, is_reserved, Role, UserAccounts};
pub use error::{Error, Result};
pub use openduck_remote::ServerTls;
pub use server::{serve, RunningServer, ServerConfig, DEFAULT_STREAMS_PER_CONNECTION};
