//! Binding, serving and stopping the Flight SQL server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::StreamExt;
use openduck_coordinator::Coordinator;
use openduck_remote::{Connections, Health, ServerTls, LINGER};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

use crate::accounts::UserAccounts;

use crate::auth::{AuthLayer, Credentials};
use crate::connection::tracked_connection;
use crate::error::{Error, Result};
use crate::flight::OpenDuckFlight;
use crate::limits::LimitsLayer;
use crate::service::OpenDuckFlightSql;
use crate::session::ClientSessions;
use crate::streams::StreamsLayer;

/// Calls one client connection may have running at once unless told otherwise.
pub const DEFAULT_STREAMS_PER_CONNECTION: usize = 100;

/// How the Flight SQL server listens and whom it lets in.
#[derive(Clone)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on; port 0 picks a free port.
    pub listen: String,
    /// The token clients must present; with neither a token nor user
    /// accounts only loopback addresses may be served.
    pub token: Option<String>,
    /// User accounts that log in with Basic credentials through Handshake.
    pub users: Option<Arc<UserAccounts>>,
    /// How long the bearer token of a logged-in user stays valid.
    pub token_ttl: Duration,
    /// Serve TLS (and require client certificates when it names a client CA).
    pub tls: Option<ServerTls>,
    /// Largest gRPC message the server accepts or sends (a DoPut batch, a
    /// result batch); a larger request fails with `ResourceExhausted`.
    pub max_message_size: usize,
    /// Largest total size of a request's headers (HTTP/2 header list).
    pub max_header_size: u32,
    /// Most calls one client connection may have running at once (a
    /// `DoGet` runs until its last row is sent); one more answers
    /// `ResourceExhausted`.
    pub max_streams_per_connection: usize,
    /// How long shutdown lets running calls finish before interrupting them.
    pub shutdown_grace: Duration,
    /// How long shutdown keeps accepting calls after health checks turn
    /// NOT_SERVING, so that a load balancer stops sending clients first.
    pub shutdown_delay: Duration,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("users", &self.users)
            .field("token_ttl", &self.token_ttl)
            .field("tls", &self.tls)
            .field("max_message_size", &self.max_message_size)
            .field("max_header_size", &self.max_header_size)
            .field("max_streams_per_connection", &self.max_streams_per_connection)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("shutdown_delay", &self.shutdown_delay)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:7878".into(),
            token: None,
            users: None,
            token_ttl: Duration::from_secs(12 * 3600),
            tls: None,
            max_message_size: 64 << 20,
            max_header_size: 256 << 10,
            max_streams_per_connection: DEFAULT_STREAMS_PER_CONNECTION,
            shutdown_grace: Duration::from_secs(5),
            shutdown_delay: Duration::ZERO,
        }
    }
}

/// A server that accepts connections until [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    coordinator: Arc<Coordinator>,
    health: Health,
    grace: Duration,
    delay: Duration,
    connections: Connections,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

/// Binds the listen address and starts serving Flight SQL for `coordinator`.
///
/// Refuses to listen on an address that is not loopback unless a token is
/// configured: an open server on a network would hand every database to
/// anyone who can reach it. Health checks (`grpc.health.v1`) need no
/// credentials; they answer SERVING until [`RunningServer::shutdown`] begins.
pub async fn serve(coordinator: Arc<Coordinator>, config: ServerConfig) -> Result<RunningServer> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen.clone(),
            source,
        })?
        .collect();
    let credentials = Credentials::with_accounts(config.token.clone(), config.users.clone(), config.token_ttl);
    if !credentials.required() && addrs.iter().any(|addr| !addr.ip().is_loopback()) {
        return Err(Error::Config(format!(
            "refusing to listen on {} without a token or user accounts: anyone who can reach it \
             could read and change every database. Set --token (or OPENDUCK_TOKEN) or --users, \
             or listen on 127.0.0.1",
            config.listen
        )));
    }
    let mut builder = tonic::transport::Server::builder().http2_max_header_list_size(config.max_header_size);
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.server_config())?;
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
    openduck_telemetry::observe_gauge(
        "openduck_open_sessions",
        "Clients with a session on the front end (a transaction, session options).",
        openduck_telemetry::GaugeUnit::Count,
        &sessions,
        |sessions| vec![(sessions.len() as f64, Vec::new())],
    );
    let flight_sql = OpenDuckFlightSql::new(Arc::clone(&coordinator), credentials.clone(), Arc::clone(&sessions));
    let service = FlightServiceServer::new(OpenDuckFlight::new(flight_sql))
        .max_decoding_message_size(config.max_message_size)
        .max_encoding_message_size(config.max_message_size);
    let connections = Connections::default();
    connections.observe("flight_sql");
    let incoming = TcpListenerStream::new(listener).map({
        let connections = connections.clone();
        move |stream| stream.map(|tcp| tracked_connection(connections.accept(tcp), Arc::clone(&sessions)))
    });
    let (health, health_service) = Health::serving().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        builder
            .layer(LimitsLayer)
            .layer(StreamsLayer::new(config.max_streams_per_connection))
            .layer(AuthLayer::new(credentials))
            .add_service(health_service)
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
        health,
        grace: config.shutdown_grace,
        delay: config.shutdown_delay,
        connections,
        stop: Some(stop),
        task,
    })
}

impl RunningServer {
    /// The address the server listens on, with the real port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Drains: health checks answer NOT_SERVING, calls are still taken for
    /// the shutdown delay (a load balancer stops sending clients meanwhile),
    /// then no new call is, running calls finish for up to the grace
    /// period, what still runs is interrupted, every database checkpointed
    /// and the connections left are closed.
    pub async fn shutdown(mut self) -> Result<()> {
        self.health.draining().await;
        tokio::time::sleep(self.delay).await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match tokio::time::timeout(self.grace, &mut self.task).await {
            Ok(served) => Some(served),
            Err(_) => {
                warn!(grace = ?self.grace, "calls still running after the grace period; interrupting them");
                None
            }
        };
        let checkpointed = self.coordinator.shutdown(self.grace).await;
        let served = match served {
            Some(served) => Some(served),
            // Interrupted statements end their calls; whatever is left is closed.
            None => tokio::time::timeout(Duration::from_secs(1), &mut self.task).await.ok(),
        };
        match served {
            Some(Ok(served)) => served?,
            Some(Err(join)) => warn!(error = %join, "the server task failed"),
            None => {
                warn!("connections still open after the grace period; closing them");
                self.task.abort();
            }
        }
        // Clients read the ends of their streams before the sockets close.
        self.connections.closed_within(LINGER).await;
        checkpointed?;
        info!("server stopped");
        Ok(())
    }
}
