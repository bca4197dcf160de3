//! Client connections that know their id, so that requests can find their
//! connection's session and the session ends when the connection does.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TlsConnectInfo};

use openduck_remote::LingeringTcp;

use crate::session::{ClientSessions, CloseOnDrop, ConnectionId};
use crate::streams::Running;

/// A client's TCP connection; its id reaches every request as an extension.
#[derive(Debug)]
pub(crate) struct TrackedConnection {
    tcp: LingeringTcp,
    id: ConnectionId,
    running: Arc<Running>,
    _close: CloseOnDrop,
}

impl TrackedConnection {
    pub(crate) fn new(tcp: LingeringTcp, sessions: Arc<ClientSessions>) -> Self {
        let id = ClientSessions::connection_id();
        TrackedConnection {
            tcp,
            id,
            running: Arc::default(),
            _close: CloseOnDrop { sessions, client: id },
        }
    }
}

/// What tonic puts in each request's extensions for a tracked connection.
#[derive(Debug, Clone)]
pub(crate) struct TrackedInfo {
    pub(crate) id: ConnectionId,
    /// The calls it has running.
    pub(crate) running: Arc<Running>,
}

impl Connected for TrackedConnection {
    type ConnectInfo = TrackedInfo;

    fn connect_info(&self) -> TrackedInfo {
        TrackedInfo {
            id: self.id,
            running: Arc::clone(&self.running),
        }
    }
}

impl AsyncRead for TrackedConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedConnection {
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

/// The id of the connection a request arrived on.
pub(crate) fn client_of<T>(request: &tonic::Request<T>) -> Option<ConnectionId> {
    tracked(request.extensions()).map(|info| info.id)
}

/// What a request's extensions say of its connection, over TLS or not.
pub(crate) fn tracked(extensions: &http::Extensions) -> Option<&TrackedInfo> {
    extensions.get::<TrackedInfo>().or_else(|| {
        extensions
            .get::<TlsConnectInfo<TrackedInfo>>()
            .map(TlsConnectInfo::get_ref)
    })
}
