//! Sessions end with the coordinator connection that holds them.
//!
//! A coordinator opens an executor session for each client transaction and
//! closes it when the transaction's client goes. A coordinator that dies
//! (`kill -9`, a lost node) closes nothing: its sessions would stay open for
//! ever, and a transaction among them that wrote would hold the executor's
//! write gate, so no later write could be acknowledged.
//!
//! So each open session belongs to the coordinator connection that last
//! named it (opened it, or sent a statement, a transaction request or an
//! ingest for it): a coordinator whose channel reconnected takes its
//! sessions along with its next request for each. Once a connection is
//! closed and no call that arrived on it still runs, the sessions it still
//! holds are closed, which rolls back what they left open. The executor's
//! HTTP/2 keep-alive notices a peer that vanished without closing its
//! socket. Clients redeeming tickets directly name no session here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openduck_api::ExecutorApi;
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::connections::{tag_of, LingeringTcp, Tagged};

/// The open sessions of one executor's server, by the connection holding each.
pub(crate) struct SessionHolders {
    executor: Arc<dyn ExecutorApi>,
    holder: Mutex<HashMap<String, u64>>,
    next_connection: AtomicU64,
}

impl std::fmt::Debug for SessionHolders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHolders")
            .field("sessions", &self.holder.lock().len())
            .finish_non_exhaustive()
    }
}

impl SessionHolders {
    pub(crate) fn new(executor: Arc<dyn ExecutorApi>) -> Arc<Self> {
        Arc::new(SessionHolders {
            executor,
            holder: Mutex::default(),
            next_connection: AtomicU64::new(1),
        })
    }

    /// Takes charge of an accepted connection.
    pub(crate) fn accept(self: &Arc<Self>, tcp: LingeringTcp) -> Tagged<Peer> {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let peer = Peer(Arc::new(PeerInner {
            id,
            holders: Arc::clone(self),
        }));
        Tagged::new(tcp, peer, ())
    }

    /// Closes the sessions connection `id` still holds.
    fn connection_closed(&self, id: u64) {
        let held: Vec<String> = {
            let mut holder = self.holder.lock();
            let held = holder
                .iter()
                .filter(|(_, by)| **by == id)
                .map(|(session, _)| session.clone())
                .collect::<Vec<_>>();
            for session in &held {
                holder.remove(session);
            }
            held
        };
        if held.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        info!(
            sessions = held.len(),
            "a coordinator's connection closed with sessions open; closing them"
        );
        let executor = Arc::clone(&self.executor);
        runtime.spawn(async move {
            for session in held {
                if let Err(error) = executor.close_session(&session).await {
                    warn!(%session, %error, "cannot close a session of a closed connection");
                }
            }
        });
    }
}

/// What each request's extensions carry of its connection. The connection
/// counts as closed once it and every request from it are gone.
#[derive(Debug, Clone)]
pub(crate) struct Peer(Arc<PeerInner>);

#[derive(Debug)]
struct PeerInner {
    id: u64,
    holders: Arc<SessionHolders>,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        self.holders.connection_closed(self.id);
    }
}

impl Peer {
    /// The peer a request arrived from, over TLS or not; `None` when the
    /// service is not served by [`crate::serve_executor`].
    pub(crate) fn of(extensions: &tonic::codegen::http::Extensions) -> Option<Peer> {
        tag_of::<Peer>(extensions).cloned()
    }

    /// Notes that a request on this connection named session `id` (opened
    /// it, or used it): the session belongs to this connection now.
    pub(crate) fn named(&self, id: &str) {
        if !id.is_empty() {
            self.0.holders.holder.lock().insert(id.to_string(), self.0.id);
        }
    }

    /// Notes that session `id` was closed.
    pub(crate) fn closed(&self, id: &str) {
        self.0.holders.holder.lock().remove(id);
    }
}
