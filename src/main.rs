//! The `openduck` command line: the one-process server (`openduck serve`, also
//! what a bare `openduck` does), the cluster's processes (`openduck
//! coordinator` and `openduck executor`), a small Flight SQL client
//! (`openduck query`), `openduck status` for a cluster, `openduck passwd`
//! for the users file, and the storage commands (`openduck snapshot`,
//! `clone`, `gc`).

mod admin;
mod cluster;
mod malloc;
mod passwd;
mod query;
mod serve;
mod status;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// openduck: DuckDB as an Arrow Flight SQL service.
#[derive(Debug, Parser)]
#[command(name = "openduck", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, openduck serves with these options.
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Flight SQL over DuckDB databases in one process (the default).
    Serve(serve::ServeArgs),
    /// Serve Flight SQL for a cluster: plan statements and send them to the
    /// executors registered in etcd.
    #[command(alias = "gateway")]
    Coordinator(cluster::CoordinatorArgs),
    /// Host DuckDB databases for a cluster: register in etcd and run what
    /// coordinators send.
    #[command(alias = "worker")]
    Executor(cluster::ExecutorProcessArgs),
    /// Run SQL against an openduck server and print the rows.
    Query(query::QueryArgs),
    /// Print a cluster as etcd has it: executors, their databases and
    /// roles, and each database's writer, replicas and latest snapshot.
    Status(status::StatusArgs),
    /// List or export the snapshots of a database in storage.
    Snapshot(admin::SnapshotArgs),
    /// Make a new database that shares every block of another (no data is copied).
    Clone(admin::CloneArgs),
    /// Delete snapshots and layers that no retained snapshot reaches.
    Gc(admin::GcArgs),
    /// Add a user to a users file (or change their password); the password
    /// is read from standard input.
    Passwd(passwd::PasswdArgs),
}

fn main() -> ExitCode {
    malloc::tune();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Some(Command::Serve(args)) => serve::run(args).await,
            Some(Command::Coordinator(args)) => cluster::run_coordinator(args).await,
            Some(Command::Executor(args)) => cluster::run_executor(args).await,
            Some(Command::Query(args)) => query::run(args).await,
            Some(Command::Status(args)) => status::run(args).await,
            Some(Command::Passwd(args)) => passwd::run(args).await,
            Some(Command::Snapshot(args)) => admin::snapshot(args).await,
            Some(Command::Clone(args)) => admin::clone(args).await,
            Some(Command::Gc(args)) => admin::gc(args).await,
            None => serve::run(cli.serve).await,
        }
    });
    // Whatever still runs on the blocking pool (a statement deaf to its
    // interrupt) must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
