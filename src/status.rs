//! `openduck status`: the cluster as etcd has it — executors, the databases
//! each hosts and in which role, how busy each is, and each database's
//! writer, latest snapshot and replicas with how far they are behind.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use openduck_proto::{ExecutorLoad, Role};
use openduck_registry::RegistryConfig;
use openduck_storage::{EtcdHeads, Heads};

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// etcd endpoints of the cluster (comma separated).
    #[arg(long, env = "OPENDUCK_ETCD", required = true, value_delimiter = ',')]
    etcd: Vec<String>,

    /// Key prefix of the cluster in etcd.
    #[arg(long, env = "OPENDUCK_ETCD_PREFIX", default_value = "/openduck")]
    etcd_prefix: String,

    /// How to print it.
    #[arg(long, env = "OPENDUCK_STATUS_FORMAT", value_enum, default_value = "table")]
    format: StatusFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatusFormat {
    Table,
    Json,
}

/// One database as the cluster serves it.
#[derive(Debug, Default, serde::Serialize)]
struct DatabaseStatus {
    writer: Option<String>,
    replicas: Vec<ReplicaStatus>,
    head: Option<String>,
}

/// One read replica of a database.
#[derive(Debug, serde::Serialize)]
struct ReplicaStatus {
    executor: String,
    /// The snapshot it serves, once its executor reported it.
    snapshot: Option<String>,
    /// How far behind its writer it is, in seconds (0 when it serves the
    /// newest snapshot it saw), once its executor reported it.
    lag_seconds: Option<f64>,
}

#[derive(Debug, serde::Serialize)]
struct ExecutorStatus {
    id: String,
    endpoint: String,
    version: String,
    capacity: u32,
    databases: BTreeMap<String, &'static str>,
    /// Statements running (sessions' too, which have connections of their
    /// own beyond `capacity`), once the executor reported its load (every
    /// few seconds).
    statements_running: Option<u32>,
    sessions_open: Option<u32>,
}

pub(crate) async fn run(args: StatusArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = RegistryConfig {
        prefix: args.etcd_prefix.clone(),
        ..RegistryConfig::new(args.etcd.clone())
    };
    let records = openduck_registry::watch(config.clone()).await?.current();
    let loads = openduck_registry::loads(&config).await?;
    let heads = EtcdHeads::connect(&args.etcd, &args.etcd_prefix, None)
        .await?
        .list()
        .await?;

    let mut databases: BTreeMap<String, DatabaseStatus> = BTreeMap::new();
    let mut executors = Vec::new();
    for record in records.values() {
        let load = loads.get(&record.id);
        let mut hosted = BTreeMap::new();
        for database in &record.databases {
            let entry = databases.entry(database.name.clone()).or_default();
            let role = if database.role() == Role::Writer {
                entry.writer = Some(record.id.clone());
                "writer"
            } else {
                entry.replicas.push(replica_status(&record.id, &database.name, load));
                "replica"
            };
            hosted.insert(database.name.clone(), role);
        }
        executors.push(ExecutorStatus {
            id: record.id.clone(),
            endpoint: record.endpoint.clone(),
            version: record.version.clone(),
            capacity: record.capacity,
            databases: hosted,
            statements_running: load.map(|load| load.statements_running),
            sessions_open: load.map(|load| load.sessions_open),
        });
    }
    for (name, head) in heads {
        databases.entry(name).or_default().head = Some(head.to_string());
    }

    match args.format {
        StatusFormat::Json => {
            let status = serde_json::json!({ "executors": executors, "databases": databases });
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
        StatusFormat::Table => print_tables(&executors, &databases),
    }
    Ok(())
}

/// Replica `database` on executor `id`, as its last reported `load` says.
fn replica_status(id: &str, database: &str, load: Option<&ExecutorLoad>) -> ReplicaStatus {
    let progress = load.and_then(|load| load.replicas.iter().find(|replica| replica.database == database));
    ReplicaStatus {
        executor: id.to_string(),
        snapshot: progress.map(|progress| progress.snapshot.clone()),
        lag_seconds: progress.map(|progress| lag_seconds(progress.behind_since_unix_ms)),
    }
}

/// Seconds since `behind_since_unix_ms`, or 0 when it is 0 (not behind).
fn lag_seconds(behind_since_unix_ms: u64) -> f64 {
    if behind_since_unix_ms == 0 {
        return 0.0;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() as u64);
    now.saturating_sub(behind_since_unix_ms) as f64 / 1000.0
}

fn print_tables(executors: &[ExecutorStatus], databases: &BTreeMap<String, DatabaseStatus>) {
    println!("executors: {}", executors.len());
    let rows: Vec<Vec<String>> = executors
        .iter()
        .map(|executor| {
            let hosted: Vec<String> = executor
                .databases
                .iter()
                .map(|(name, role)| format!("{name} ({role})"))
                .collect();
            let known = |value: Option<u32>| value.map_or_else(|| "-".to_string(), |value| value.to_string());
            vec![
                executor.id.clone(),
                executor.endpoint.clone(),
                executor.version.clone(),
                known(executor.statements_running),
                executor.capacity.to_string(),
                known(executor.sessions_open),
                hosted.join(", "),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "ENDPOINT",
            "VERSION",
            "RUNNING",
            "CAPACITY",
            "SESSIONS",
            "DATABASES",
        ],
        &rows,
    );
    println!();
    println!("databases: {}", databases.len());
    let rows: Vec<Vec<String>> = databases
        .iter()
        .map(|(name, database)| {
            vec![
                name.clone(),
                database.writer.clone().unwrap_or_else(|| "-".into()),
                database.head.clone().unwrap_or_else(|| "-".into()),
                if database.replicas.is_empty() {
                    "-".into()
                } else {
                    database
                        .replicas
                        .iter()
                        .map(|replica| format_replica(replica, database.head.as_deref()))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ]
        })
        .collect();
    print_table(&["DATABASE", "WRITER", "LATEST SNAPSHOT", "REPLICAS"], &rows);
}

/// `exec-2 (at head)`, `exec-2 (2.4 s behind)`, `exec-2 (load not reported yet)`.
fn format_replica(replica: &ReplicaStatus, head: Option<&str>) -> String {
    let state = match (&replica.snapshot, replica.lag_seconds) {
        (Some(snapshot), Some(lag)) if lag == 0.0 && Some(snapshot.as_str()) == head => "at head".to_string(),
        (Some(snapshot), Some(0.0)) => format!("serves {snapshot}, not the head"),
        (Some(_), Some(lag)) => format!("{lag:.1} s behind"),
        _ => "load not reported yet".to_string(),
    };
    format!("{} ({state})", replica.executor)
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(snapshot: Option<&str>, lag_seconds: Option<f64>) -> ReplicaStatus {
        ReplicaStatus {
            executor: "r1".into(),
            snapshot: snapshot.map(str::to_string),
            lag_seconds,
        }
    }

    #[test]
    fn a_replica_shows_whether_it_serves_the_head_and_how_far_behind_it_is() {
        let head = Some("aaaa");
        assert_eq!(format_replica(&replica(Some("aaaa"), Some(0.0)), head), "r1 (at head)");
        assert_eq!(
            format_replica(&replica(Some("bbbb"), Some(2.44)), head),
            "r1 (2.4 s behind)"
        );
        assert_eq!(
            format_replica(&replica(Some("bbbb"), Some(0.0)), head),
            "r1 (serves bbbb, not the head)"
        );
        assert_eq!(format_replica(&replica(None, None), head), "r1 (load not reported yet)");
    }

    #[test]
    fn lag_counts_from_when_the_replica_fell_behind() {
        assert_eq!(lag_seconds(0), 0.0);
        let ten_seconds_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            - 10_000;
        assert!((10.0..15.0).contains(&lag_seconds(ten_seconds_ago)));
    }
}
