//! `/metrics` over HTTP/1.1, for Prometheus to scrape: one small server,
//! one response per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::init::Telemetry;

/// Longest request head read.
const MAX_HEAD: usize = 16 << 10;
/// How long one request may take, from accept to the last byte sent: a
/// client that never sends, or never reads, is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests answered at once; more connections are closed at once.
const MAX_CONCURRENT: usize = 16;
/// Pause after a failed accept (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The metrics endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address it listens on, with the real port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `telemetry`'s metrics on `http://<address>/metrics`.
pub async fn serve_metrics(telemetry: Arc<Telemetry>, address: &str) -> Result<MetricsServer> {
    let listener = TcpListener::bind(address).await.map_err(|source| Error::Bind {
        address: address.to_string(),
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        address: address.to_string(),
        source,
    })?;
    let task = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    tracing::debug!(%error, "cannot accept a metrics connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                continue; // dropping it closes it: too many at once
            };
            let telemetry = Arc::clone(&telemetry);
            tokio::spawn(async move {
                match tokio::time::timeout(REQUEST_TIMEOUT, answer(tcp, &telemetry)).await {
                    Ok(Err(error)) => tracing::debug!(%error, "a metrics request failed"),
                    Err(_) => tracing::debug!("a metrics request timed out"),
                    Ok(Ok(())) => {}
                }
                drop(slot);
            });
        }
    });
    tracing::info!(%local_addr, "serving metrics on /metrics");
    Ok(MetricsServer { local_addr, task })
}

async fn answer(mut tcp: TcpStream, telemetry: &Telemetry) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = tcp.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            telemetry.prometheus(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "try /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics\n".to_string(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    tcp.write_all(&response).await?;
    tcp.shutdown().await
}
