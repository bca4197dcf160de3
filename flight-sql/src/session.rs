//! Client sessions: per client connection, the current catalog and schema
//! (Flight SQL session options), and the executor session that holds its
//! transaction and temporary tables.
//!
//! A session belongs to one client connection (HTTP/2 connection), which is
//! how Flight SQL drivers keep one connection per database connection. When
//! the connection closes, its session is dropped, which rolls back an open
//! transaction and drops temporary tables.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use openduck_coordinator::{ClientSession, Scope};
use parking_lot::Mutex;
use tracing::debug;

use crate::error::{Error, Result};

/// Identifies the client connection a request arrived on (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionId(pub(crate) u64);

/// State of one client connection.
#[derive(Debug, Default)]
struct ClientState {
    catalog: Option<String>,
    schema: Option<String>,
    session: Option<ClientSession>,
    transaction: Option<Bytes>,
}

/// Every client connection's state.
#[derive(Debug, Default)]
pub(crate) struct ClientSessions {
    clients: Mutex<HashMap<ConnectionId, ClientState>>,
    next_transaction: AtomicU64,
}

impl ClientSessions {
    /// Clients holding state here (a transaction, a session's options).
    pub(crate) fn len(&self) -> usize {
        self.clients.lock().len()
    }

    /// A new connection id.
    pub(crate) fn connection_id() -> ConnectionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnectionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// What the client's statements run in. A statement naming a transaction
    /// must name the one the connection has open.
    pub(crate) fn scope(&self, client: Option<ConnectionId>, transaction: Option<&Bytes>) -> Result<Scope> {
        let clients = self.clients.lock();
        let state = client.and_then(|id| clients.get(&id));
        if let Some(wanted) = transaction {
            if state.and_then(|state| state.transaction.as_ref()) != Some(wanted) {
                return Err(Error::UnknownTransaction);
            }
        }
        Ok(match state {
            Some(state) => Scope {
                database: state.catalog.clone(),
                schema: state.schema.clone(),
                session: state.session.clone(),
                ..Scope::default()
            },
            None => Scope::default(),
        })
    }

    /// Whether the client has a transaction open.
    pub(crate) fn in_transaction(&self, client: Option<ConnectionId>) -> bool {
        let clients = self.clients.lock();
        client
            .and_then(|id| clients.get(&id))
            .is_some_and(|state| state.transaction.is_some())
    }

    /// The client's executor session, opened with `open` when it has none.
    pub(crate) async fn pin<F>(&self, client: Option<ConnectionId>, open: F) -> Result<ClientSession>
    where
        F: std::future::Future<Output = Result<ClientSession>>,
    {
        let client = client.ok_or(Error::NoSession)?;
        if let Some(session) = self.clients.lock().get(&client).and_then(|state| state.session.clone()) {
            return Ok(session);
        }
        let opened = open.await?;
        let mut clients = self.clients.lock();
        let state = clients.entry(client).or_default();
        // Two requests of one connection may race to open a session: the
        // first one kept wins, and the other's closes as it is dropped.
        let session = state.session.get_or_insert(opened).clone();
        debug!(
            connection = client.0,
            executor = session.executor_id(),
            "session opened"
        );
        Ok(session)
    }

    /// Records a new transaction of the client and returns its id; refused
    /// when one is open already.
    pub(crate) fn start_transaction(&self, client: Option<ConnectionId>) -> Result<Bytes> {
        let client = client.ok_or(Error::NoSession)?;
        let mut clients = self.clients.lock();
        let state = clients.entry(client).or_default();
        if state.transaction.is_some() {
            return Err(Error::InvalidRequest(
                "a transaction is open already on this connection; end it first".into(),
            ));
        }
        let number = self.next_transaction.fetch_add(1, Ordering::Relaxed);
        let id = Bytes::from(format!("tx-{}-{number}", client.0));
        state.transaction = Some(id.clone());
        Ok(id)
    }

    /// Forgets the client's transaction `id`; refused when it is not the open one.
    pub(crate) fn end_transaction(&self, client: Option<ConnectionId>, id: &Bytes) -> Result<()> {
        let mut clients = self.clients.lock();
        let state = client.and_then(|client| clients.get_mut(&client));
        match state {
            Some(state) if state.transaction.as_ref() == Some(id) => {
                state.transaction = None;
                Ok(())
            }
            _ => Err(Error::UnknownTransaction),
        }
    }

    /// Sets the client's current catalog (`None` for the default).
    pub(crate) fn set_catalog(&self, client: ConnectionId, catalog: Option<String>) {
        self.clients.lock().entry(client).or_default().catalog = catalog;
    }

    /// Sets the client's current schema (`None` for the default).
    pub(crate) fn set_schema(&self, client: ConnectionId, schema: Option<String>) {
        self.clients.lock().entry(client).or_default().schema = schema;
    }

    /// The client's current catalog and schema, as set.
    pub(crate) fn options(&self, client: ConnectionId) -> (Option<String>, Option<String>) {
        let clients = self.clients.lock();
        clients
            .get(&client)
            .map(|state| (state.catalog.clone(), state.schema.clone()))
            .unwrap_or_default()
    }

    /// Drops the client's state: its transaction rolls back and its
    /// temporary tables go once no statement of it runs any more. Returns
    /// whether there was any.
    pub(crate) fn close(&self, client: ConnectionId) -> bool {
        let closed = self.clients.lock().remove(&client);
        if let Some(state) = &closed {
            debug!(
                connection = client.0,
                in_transaction = state.transaction.is_some(),
                "session closed"
            );
        }
        closed.is_some()
    }
}

/// Closes a connection's session when the connection goes away.
#[derive(Debug)]
pub(crate) struct CloseOnDrop {
    pub(crate) sessions: Arc<ClientSessions>,
    pub(crate) client: ConnectionId,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.sessions.close(self.client);
    }
}
