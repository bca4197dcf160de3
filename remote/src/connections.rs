//! Closing a server's connections without losing what was sent on them.
//!
//! When a server closes a TCP socket that still has unread bytes coming in
//! (an HTTP/2 client's window updates and pings, which keep arriving while
//! it reads the end of a stream), the kernel answers with a reset, and the
//! client's kernel throws away what it received but had not yet read: the
//! last rows of a stream. That is what a draining server does to the stream
//! it just finished. So every connection here closes the lingering way:
//! once the server is done with it, it sends FIN, then reads and discards
//! until the client closes its side (or [`LINGER`] passes), and only then
//! closes the socket. [`Connections`] counts them until they are gone, so a
//! process can wait for that before it exits.
//!
//! Every connection also sends small writes at once (no Nagle's algorithm):
//! a reply is several small HTTP/2 frames (headers, schema, batch, trailers),
//! and with Nagle each after the first waits for the peer's delayed ACK,
//! about 40 ms a call.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

/// Longest a closed connection waits for its client to close too.
pub const LINGER: Duration = Duration::from_secs(2);

/// The connections a server has open, counting those still lingering.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    inner: Arc<Counter>,
}

#[derive(Debug, Default)]
struct Counter {
    open: AtomicUsize,
    none_open: Notify,
}

impl Connections {
    /// Takes charge of an accepted connection (and turns Nagle's algorithm off).
    pub fn accept(&self, tcp: TcpStream) -> LingeringTcp {
        // Only fails for a socket already closed, whose first write will say so.
        let _ = tcp.set_nodelay(true);
        self.inner.open.fetch_add(1, Ordering::SeqCst);
        LingeringTcp {
            tcp: Some(tcp),
            open: Some(Open(Arc::clone(&self.inner))),
        }
    }

    /// Reports how many are open in `openduck_connections_open`, labelled
    /// with `server`, for as long as these connections are counted.
    pub fn observe(&self, server: &'static str) {
        openduck_telemetry::observe_gauge(
            "openduck_connections_open",
            "Client connections a server has open, counting those closing.",
            openduck_telemetry::GaugeUnit::Count,
            &self.inner,
            move |counter| {
                vec![(
                    counter.open.load(Ordering::SeqCst) as f64,
                    vec![opentelemetry::KeyValue::new("server", server)],
                )]
            },
        );
    }

    /// How many are open or lingering.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// Waits until every connection is closed, for at most `limit`; whether
    /// they all are.
    pub async fn closed_within(&self, limit: Duration) -> bool {
        let all_closed = async {
            loop {
                let notified = self.inner.none_open.notified();
                if self.open() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, all_closed).await.is_ok()
    }
}

/// One count in [`Connections`], given back when dropped.
#[derive(Debug)]
struct Open(Arc<Counter>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_open.notify_waiters();
        }
    }
}

/// An accepted TCP connection that closes the lingering way when dropped.
#[derive(Debug)]
pub struct LingeringTcp {
    tcp: Option<TcpStream>,
    open: Option<Open>,
}

impl LingeringTcp {
    fn tcp(&mut self) -> std::io::Result<&mut TcpStream> {
        self.tcp
            .as_mut()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed"))
    }
}

impl Drop for LingeringTcp {
    fn drop(&mut self) {
        let (Some(tcp), Some(open)) = (self.tcp.take(), self.open.take()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(tcp, open));
        }
    }
}

/// FIN, then read until the client closes (or [`LINGER`] passes), then close.
async fn linger(mut tcp: TcpStream, open: Open) {
    let _ = tcp.shutdown().await;
    let drained = async {
        let mut discard = [0u8; 8192];
        while let Ok(1..) = tcp.read(&mut discard).await {}
    };
    let _ = tokio::time::timeout(LINGER, drained).await;
    drop(tcp);
    drop(open);
}

impl Connected for LingeringTcp {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.tcp.as_ref().and_then(|tcp| tcp.local_addr().ok()),
            remote_addr: self.tcp.as_ref().and_then(|tcp| tcp.peer_addr().ok()),
        }
    }
}

impl AsyncRead for LingeringTcp {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.tcp()?).poll_read(cx, buf)
    }
}

impl AsyncWrite for LingeringTcp {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(self.tcp()?).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.tcp()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.tcp()?).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.tcp()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.as_ref().is_some_and(|tcp| tcp.is_write_vectored())
    }
}

/// An accepted connection whose every request carries `info` (tonic puts
/// a connection's info in each request's extensions; [`tag_of`] finds it),
/// and which keeps `guard` until it closes.
#[derive(Debug)]
pub struct Tagged<I, G = ()> {
    tcp: LingeringTcp,
    info: I,
    _guard: G,
}

impl<I, G> Tagged<I, G> {
    /// `tcp`, tagged with `info`, holding `guard`.
    pub fn new(tcp: LingeringTcp, info: I, guard: G) -> Self {
        Tagged {
            tcp,
            info,
            _guard: guard,
        }
    }
}

/// The info of the [`Tagged`] connection a request arrived on, over TLS or not.
pub fn tag_of<I: Clone + Send + Sync + 'static>(extensions: &tonic::codegen::http::Extensions) -> Option<&I> {
    extensions
        .get::<I>()
        .or_else(|| extensions.get::<TlsConnectInfo<I>>().map(TlsConnectInfo::get_ref))
}

impl<I: Clone + Send + Sync + 'static, G> Connected for Tagged<I, G> {
    type ConnectInfo = I;

    fn connect_info(&self) -> I {
        self.info.clone()
    }
}

impl<I: Unpin, G: Unpin> AsyncRead for Tagged<I, G> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl<I: Unpin, G: Unpin> AsyncWrite for Tagged<I, G> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// The client's last bytes arrive even though it keeps writing after
    /// the server is done, and the count falls to zero once it closes.
    #[tokio::test]
    async fn a_closed_connection_lingers_until_its_client_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Connections::default();
        let client = tokio::spawn(async move {
            let mut tcp = TcpStream::connect(address).await.unwrap();
            // Unread bytes at the server when it closes: a reset without lingering.
            tcp.write_all(&[7u8; 64 << 10]).await.unwrap();
            // A slow reader: what the server sends waits in its socket's
            // buffer, which a reset would throw away.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut received = Vec::new();
            tcp.read_to_end(&mut received).await.map(|_| received.len())
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let mut server = connections.accept(tcp);
        server.write_all(&vec![1u8; 4 << 20]).await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(client.await.unwrap().unwrap(), 4 << 20);
        assert!(connections.closed_within(Duration::from_secs(5)).await);
        assert_eq!(connections.open(), 0);
    }

    /// A reply's frames leave as they are written, not after the peer's ACK
    /// of the previous one.
    #[tokio::test]
    async fn an_accepted_connection_writes_without_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = TcpStream::connect(address).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        assert!(
            !tcp.nodelay().unwrap(),
            "the kernel's default changed: this test shows nothing"
        );
        let server = Connections::default().accept(tcp);
        assert!(server.tcp.as_ref().unwrap().nodelay().unwrap());
        drop(client);
    }
}
