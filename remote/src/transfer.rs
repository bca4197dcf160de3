//! Rows from executor to executor: the receiving side of a join's small side
//! shipped to its large side. A coordinator signs a ticket for the fragment
//! on the source executor and asks the receiving one to fetch it and append
//! the rows to a table; the rows never pass through the coordinator.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use futures::{StreamExt, TryStreamExt};
use openduck_api::{result_bytes, ExecutorApi, IngestTarget, Source, Transferred};
use parking_lot::Mutex;
use prost::Message;
use tracing::debug;

use crate::client::RemoteExecutor;
use crate::error::{Error, Result};
use crate::signing::TicketSigner;
use crate::tls::ClientTls;

/// Clients kept for the executors fetched from; past this many (executors
/// come and go under new addresses), the idle ones are forgotten.
const MOST_PEERS: usize = 256;

/// How an executor reaches the other executors of its cluster.
#[derive(Debug)]
pub(crate) struct PeerClients {
    signer: TicketSigner,
    max_message_size: usize,
    tls: Option<ClientTls>,
    clients: Mutex<HashMap<(String, String), RemoteExecutor>>,
}

impl PeerClients {
    /// Reaches peers over TLS checked against `tls`'s CA, or in plain gRPC.
    pub(crate) fn new(signer: TicketSigner, max_message_size: usize, tls: Option<ClientTls>) -> Self {
        PeerClients {
            signer,
            max_message_size,
            tls,
            clients: Mutex::default(),
        }
    }

    /// Fetches the rows of `source` from its executor and appends them to
    /// `target` on `executor`, in one ingest: a source that fails appends
    /// nothing.
    pub(crate) async fn ingest(
        &self,
        executor: &dyn ExecutorApi,
        target: IngestTarget,
        source: Source,
    ) -> Result<Transferred> {
        let peer = self.client(&source.executor, &source.endpoint)?;
        let target = IngestTarget {
            from_query: true,
            ..target
        };
        // Fetched as a client redeems a ticket: a session the fragment runs in
        // stays with the coordinator connection that holds it.
        let ticket = TicketStatementQuery {
            statement_handle: source.ticket.into(),
        }
        .as_any()
        .encode_to_vec();
        let rows = peer.fetch(ticket).await?;
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&bytes);
        let batches = rows
            .batches
            .inspect_ok(move |batch| {
                counted.fetch_add(result_bytes(batch) as u64, Ordering::Relaxed);
            })
            .boxed();
        let rows = executor.ingest(target, rows.schema, batches).await?;
        let transferred = Transferred {
            rows,
            bytes: bytes.load(Ordering::Relaxed),
        };
        debug!(from = %source.executor, rows, bytes = transferred.bytes, "fetched from a peer");
        Ok(transferred)
    }

    /// The client of executor `id` at `endpoint`, made on first use.
    fn client(&self, id: &str, endpoint: &str) -> Result<RemoteExecutor> {
        let key = (id.to_string(), endpoint.to_string());
        let mut clients = self.clients.lock();
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = RemoteExecutor::connect(
            id,
            endpoint,
            self.signer.clone(),
            self.max_message_size,
            self.tls.as_ref(),
        )
        .map_err(|error| Error::Unsupported(format!("this executor does not fetch directly: {error}")))?;
        if clients.len() >= MOST_PEERS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}
