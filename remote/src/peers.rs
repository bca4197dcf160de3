//! Sessions end with the connection they were opened on.
//!
//! A coordinator opens an executor session for each client transaction and
//! closes it when the transaction's client goes. A coordinator that dies
//! (`kill -9`, a lost node) closes nothing: its sessions would stay open for
//! ever, and a transaction among them that wrote would hold the executor's
//! write gate, so no later write could be acknowledged. Each connection
//! therefore remembers the sessions opened over it, and once it is closed
//! and no call that arrived on it still runs, those left open are closed,
//! which rolls back what they held. The executor's HTTP/2 keep-alive notices
//! a peer that vanished without closing its socket.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use openduck_api::ExecutorApi;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TlsConnectInfo};
use tracing::{info, warn};

use crate::connections::LingeringTcp;

/// An accepted connection to an executor, owning the sessions opened on it.
#[derive(Debug)]
pub(crate) struct PeerConnection {
    tcp: LingeringTcp,
    peer: Peer,
}

impl PeerConnection {
    pub(crate) fn new(tcp: LingeringTcp, executor: Arc<dyn ExecutorApi>) -> Self {
        PeerConnection {
            tcp,
            peer: Peer(Arc::new(PeerSessions {
                executor,
                open: Mutex::default(),
            })),
        }
    }
}

/// What each request's extensions carry of its connection. The sessions
/// close when the connection and every request from it are gone.
#[derive(Debug, Clone)]
pub(crate) struct Peer(Arc<PeerSessions>);

impl Peer {
    /// The peer a request arrived from, over TLS or not; `None` when the
    /// service is not served by [`crate::serve_executor`].
    pub(crate) fn of(extensions: &tonic::codegen::http::Extensions) -> Option<Peer> {
        extensions
            .get::<Peer>()
            .or_else(|| extensions.get::<TlsConnectInfo<Peer>>().map(TlsConnectInfo::get_ref))
            .cloned()
    }

    /// Notes that session `id` was opened over this connection.
    pub(crate) fn opened(&self, id: &str) {
        self.0.open.lock().insert(id.to_string());
    }

    /// Notes that session `id` was closed.
    pub(crate) fn closed(&self, id: &str) {
        self.0.open.lock().remove(id);
    }
}

struct PeerSessions {
    executor: Arc<dyn ExecutorApi>,
    open: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for PeerSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSessions")
            .field("open", &self.open.lock().len())
            .finish_non_exhaustive()
    }
}

impl Drop for PeerSessions {
    fn drop(&mut self) {
        let open = std::mem::take(&mut *self.open.lock());
        if open.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        info!(
            sessions = open.len(),
            "a coordinator's connection closed with sessions open; closing them"
        );
        let executor = Arc::clone(&self.executor);
        runtime.spawn(async move {
            for id in open {
                if let Err(error) = executor.close_session(&id).await {
                    warn!(session = %id, %error, "cannot close a session of a closed connection");
                }
            }
        });
    }
}

impl Connected for PeerConnection {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for PeerConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
