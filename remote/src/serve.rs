//! An executor's Flight server: the one way to put an executor on the wire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use openduck_api::ExecutorApi;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

use crate::connections::{Connections, LINGER};
use crate::error::{Error, Result};
use crate::health::Health;
use crate::peers::SessionHolders;
use crate::server::ExecutorService;
use crate::signing::TicketSigner;
use crate::tls::{ClientTls, ServerTls};

/// HTTP/2 pings on every connection, so that a coordinator that went away
/// in the middle of a stream is noticed (and the sessions it opened closed).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// An executor serving Flight until [`RunningExecutor::shutdown`].
#[derive(Debug)]
pub struct RunningExecutor {
    local_addr: SocketAddr,
    executor: Arc<dyn ExecutorApi>,
    health: Health,
    connections: Connections,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The plain server answering only health checks, if any.
    health_task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// Where and how an executor's Flight server listens.
#[derive(Debug)]
pub struct Listening {
    /// The Flight service's listener.
    pub listener: TcpListener,
    /// Largest message accepted or sent, in bytes.
    pub max_message_size: usize,
    /// Serve TLS only (and, when it names a client CA, only to clients that
    /// present a certificate the CA signed): a plain connection fails its
    /// handshake.
    pub tls: Option<ServerTls>,
    /// A second listener that answers health checks and nothing else, in
    /// plain gRPC, for probes that cannot speak TLS (Kubernetes' own).
    pub health: Option<TcpListener>,
    /// How it reaches other executors to fetch a fragment from one (a
    /// join's small side, shipped to it): over TLS checked against this
    /// CA, or in plain gRPC. An executor that cannot check a peer's TLS
    /// answers that it does not fetch, and the coordinator moves the rows.
    pub peer_tls: Option<ClientTls>,
}

impl Listening {
    /// Plain gRPC on `listener`, messages up to `max_message_size` bytes.
    pub fn plain(listener: TcpListener, max_message_size: usize) -> Self {
        Listening {
            listener,
            max_message_size,
            tls: None,
            health: None,
            peer_tls: None,
        }
    }
}

/// Serves `executor` as `listening` says, answering what `signer`'s secret
/// signed, and health checks (`grpc.health.v1`): the executor is open, so
/// it is ready.
pub async fn serve_executor(
    executor: Arc<dyn ExecutorApi>,
    signer: TicketSigner,
    listening: Listening,
) -> Result<RunningExecutor> {
    let Listening {
        listener,
        max_message_size,
        tls,
        health: health_listener,
        peer_tls,
    } = listening;
    let local_addr = listener
        .local_addr()
        .map_err(|error| Error::Protocol(format!("the executor's listener has no address: {error}")))?;
    let service = ExecutorService::new(Arc::clone(&executor), signer)
        .with_peers(peer_tls, max_message_size)
        .into_server(max_message_size);
    // Open, registered and listening: ready.
    let (health, health_service) = Health::serving().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let connections = Connections::default();
    connections.observe("executor");
    let incoming = TcpListenerStream::new(listener).map({
        let connections = connections.clone();
        let holders = SessionHolders::new(Arc::clone(&executor));
        move |accepted| accepted.map(|tcp| holders.accept(connections.accept(tcp)))
    });
    let mut builder = tonic::transport::Server::builder().http2_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    if let Some(tls) = &tls {
        builder = builder
            .tls_config(tls.server_config())
            .map_err(|error| Error::Tls(error.to_string()))?;
    }
    // Health checks only: nothing on it takes a ticket.
    let health_task = health_listener.map(|listener| {
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health_service.clone())
                .serve_with_incoming(TcpListenerStream::new(listener)),
        )
    });
    let task = tokio::spawn(
        builder
            .add_service(health_service)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );
    info!(%local_addr, executor = executor.id(), "executor listening");
    Ok(RunningExecutor {
        local_addr,
        executor,
        health,
        connections,
        stop: Some(stop),
        task,
        health_task,
    })
}

impl RunningExecutor {
    /// The address it listens on, with the real port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting calls, lets the running ones finish for up to
    /// `grace`, then shuts the executor down (interrupting what still runs,
    /// checkpointing its databases).
    pub async fn shutdown(mut self, grace: Duration) -> Result<()> {
        self.health.draining().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => warn!(%error, "the executor's server failed"),
            Ok(Err(join)) => warn!(error = %join, "the executor's server task failed"),
            Err(_) => {
                warn!("calls still running after the grace period; interrupting them");
                self.task.abort();
            }
        }
        // Interrupt what still runs, checkpoint; then let coordinators read
        // the ends of their streams before the sockets close.
        let stopped = self.executor.shutdown(grace).await;
        self.connections.closed_within(LINGER).await;
        stopped?;
        Ok(())
    }
}

impl Drop for RunningExecutor {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(task) = &self.health_task {
            task.abort();
        }
    }
}
