//! The openduck coordinator: decides where each statement runs.
//!
//! A [`Coordinator`] knows the executors through a [`Registry`]: the one
//! in-process executor of `openduck serve`, or the executors registered in
//! etcd, reached over Flight. For every statement it reads which databases
//! the SQL touches and sends it to the one executor that serves them all,
//! verbatim, so clients get DuckDB's whole dialect. A query whose databases
//! live on several executors is planned with DataFusion over a mirror of
//! their catalogs and cut into REMOTE fragments (DuckDB SQL that each
//! executor runs) under LOCAL operators that run here; `EXPLAIN` shows the
//! cut. Statements that change data must stay on one executor
//! ([`Error::SpansExecutors`]). Queries are planned into a signed ticket
//! ([`Coordinator::plan_query`]) that is redeemed later
//! ([`Coordinator::execute_ticket`]); tickets are HMAC-signed
//! ([`TicketSigner`]) so that only this cluster's coordinators can mint them.
//! A statement that changes something runs when it is planned, so that it
//! takes effect even if the client never fetches its result; its result is
//! held until the ticket is redeemed.
//!
//! A client's [`Scope`] says which database and schema its statements use and
//! which [`ClientSession`] (a connection held on one executor, for
//! transactions and temporary tables) they run in, and who sends them
//! ([`Principal`]). The coordinator keeps the newest statements it received
//! ([`QueryHistory`]), which clients query as `openduck.main.query_history`.

mod coordinator;
mod distributed;
mod error;
mod held;
mod history;
mod registry;
mod results;
mod route;
mod scope;
mod site;
mod started;

pub use coordinator::{Cancelled, Coordinator, PlannedEndpoint, PlannedQuery, DEFAULT_HELD_RESULT, DEFAULT_HISTORY};
pub use distributed::DEFAULT_SHIPPING_THRESHOLD;
pub use error::{Error, Result};
pub use history::{HistoryStatus, QueryHistory, Recording};
pub use openduck_api::{
    duckdb_type_name, quote_identifier, CatalogFilter, Description, ErrorKind, ExecutorApi, IngestMode, IngestTarget,
    KeyColumn, TableEntry, TableKind,
};
pub use openduck_remote::{ClientTls, TicketError, TicketSigner};
pub use registry::Registry;
pub use results::ResultStream;
pub use scope::{ClientSession, Principal, Scope};
