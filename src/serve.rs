//! `openduck serve`: Flight SQL, the coordinator and one in-process executor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use openduck_coordinator::Coordinator;
use openduck_executor::{Executor, ExecutorConfig};
use openduck_flight_sql::{serve, ServerConfig};
use tracing_subscriber::EnvFilter;

/// How long a query ticket stays valid after the query is planned.
const TICKET_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to serve Flight SQL on (HOST:PORT; port 0 picks a free port).
    #[arg(long, env = "OPENDUCK_LISTEN", default_value = "127.0.0.1:7878")]
    listen: String,

    /// Directory holding the database files.
    #[arg(long, env = "OPENDUCK_DATA_DIR", default_value = "./openduck-data")]
    data_dir: PathBuf,

    /// Database to host, created when missing; repeat (or separate with commas)
    /// for several. The first is the default for statements that name none.
    #[arg(long = "database", env = "OPENDUCK_DATABASE", default_value = "mydb", value_delimiter = ',')]
    databases: Vec<String>,

    /// Token clients must present (Bearer, or as the Basic password). Required
    /// to listen on anything but a loopback address.
    #[arg(long, env = "OPENDUCK_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Most statements that run at once; more wait for a free connection.
    #[arg(long, env = "OPENDUCK_MAX_CONNECTIONS", default_value_t = 16)]
    max_connections: usize,

    /// Let SQL read and write files outside the data directory (read_csv,
    /// COPY TO, ATTACH). Off by default: clients must not reach the server's files.
    #[arg(long, env = "OPENDUCK_ALLOW_EXTERNAL_ACCESS")]
    allow_external_access: bool,

    /// Log filter (tracing's EnvFilter syntax, for example `info` or `openduck=debug`).
    #[arg(long, env = "OPENDUCK_LOG", default_value = "info")]
    log: String,
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let config = ExecutorConfig {
        max_connections: args.max_connections,
        allow_external_access: args.allow_external_access,
        ..ExecutorConfig::new(&args.data_dir, args.databases)
    };
    let executor = tokio::task::spawn_blocking(move || Executor::open(config)).await??;
    let coordinator = Arc::new(Coordinator::embedded(executor, TICKET_TTL));
    let server = serve(
        Arc::clone(&coordinator),
        ServerConfig {
            listen: args.listen,
            token: args.token,
            ..ServerConfig::default()
        },
    )
    .await;
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            // Close the databases cleanly even when the server never started.
            let _ = coordinator.shutdown(Duration::from_secs(1)).await;
            return Err(error.into());
        }
    };
    // The one line scripts wait for: the real address, once connections are accepted.
    println!("openduck listening on grpc://{}", server.local_addr());

    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
