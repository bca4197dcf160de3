//! Binding, serving and stopping the Flight SQL server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::StreamExt;
use openduck_coordinator::Coordinator;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

use crate::auth::{AuthLayer, Credentials};
use crate::connection::TrackedConnection;
use crate::error::{Error, Result};
use crate::flight::OpenDuckFlight;
use crate::service::OpenDuckFlightSql;
use crate::session::ClientSessions;

/// How the Flight SQL server listens and whom it lets in.
#[derive(Clone)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on; port 0 picks a free port.
    pub listen: String,
    /// The token clients must present; `None` allows only loopback addresses.
    pub token: Option<String>,
    /// Largest gRPC message the server accepts (a DoPut batch, for example).
    pub max_message_size: usize,
    /// How long shutdown waits for running statements after interrupting them.
    pub shutdown_grace: Duration,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_message_size", &self.max_message_size)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:7878".into(),
            token: None,
            max_message_size: 64 << 20,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A server that accepts connections until [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    coordinator: Arc<Coordinator>,
    grace: Duration,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

/// Binds the listen address and starts serving Flight SQL for `coordinator`.
///
/// Refuses to listen on an address that is not loopback unless a token is
/// configured: an open server on a network would hand every database to
/// anyone who can reach it.
pub async fn serve(coordinator: Arc<Coordinator>, config: ServerConfig) -> Result<RunningServer> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen.clone(),
            source,
        })?
        .collect();
    let credentials = Credentials::new(config.token.clone());
    if credentials.token().is_none() && addrs.iter().any(|addr| !addr.ip().is_loopback()) {
        return Err(Error::Config(format!(
            "refusing to listen on {} without a token: anyone who can reach it could read and \
             change every database. Set --token (or OPENDUCK_TOKEN), or listen on 127.0.0.1",
            config.listen
        )));
    }
    let first = *addrs.first().ok_or_else(|| Error::Bind {
        addr: config.listen.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "the name resolves to no address"),
    })?;
    let listener = TcpListener::bind(first).await.map_err(|source| Error::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen.clone(),
        source,
    })?;

    let sessions = Arc::new(ClientSessions::default());
    let flight_sql = OpenDuckFlightSql::new(Arc::clone(&coordinator), credentials.clone(), Arc::clone(&sessions));
    let service = FlightServiceServer::new(OpenDuckFlight::new(flight_sql))
        .max_decoding_message_size(config.max_message_size)
        .max_encoding_message_size(config.max_message_size);
    let incoming = TcpListenerStream::new(listener).map(move |stream| {
        stream.map(|tcp| {
            let _ = tcp.set_nodelay(true);
            TrackedConnection::new(tcp, Arc::clone(&sessions))
        })
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(AuthLayer::new(credentials))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await?;
        Ok(())
    });
    info!(%local_addr, "Flight SQL server listening");
    Ok(RunningServer {
        local_addr,
        coordinator,
        grace: config.shutdown_grace,
        stop: Some(stop),
        task,
    })
}

impl RunningServer {
    /// The address the server listens on, with the real port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting calls, interrupts running statements, checkpoints
    /// every database and waits for the server to finish.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let checkpointed = self.coordinator.shutdown(self.grace).await;
        match tokio::time::timeout(self.grace + Duration::from_secs(1), &mut self.task).await {
            Ok(Ok(served)) => served?,
            Ok(Err(join)) => warn!(error = %join, "the server task failed"),
            Err(_) => {
                warn!("connections still open after the grace period; closing them");
                self.task.abort();
            }
        }
        checkpointed?;
        info!("server stopped");
        Ok(())
    }
}
