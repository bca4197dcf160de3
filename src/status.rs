//! `openduck status`: the cluster as etcd has it — executors, the databases
//! each hosts and in which role, and each database's writer, replicas and
//! latest snapshot.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use openduck_proto::Role;
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
    replicas: Vec<String>,
    head: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct ExecutorStatus {
    id: String,
    endpoint: String,
    version: String,
    capacity: u32,
    databases: BTreeMap<String, &'static str>,
}

pub(crate) async fn run(args: StatusArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = RegistryConfig {
        prefix: args.etcd_prefix.clone(),
        ..RegistryConfig::new(args.etcd.clone())
    };
    let records = openduck_registry::watch(config).await?.current();
    let heads = EtcdHeads::connect(&args.etcd, &args.etcd_prefix, None)
        .await?
        .list()
        .await?;

    let mut databases: BTreeMap<String, DatabaseStatus> = BTreeMap::new();
    let mut executors = Vec::new();
    for record in records.values() {
        let mut hosted = BTreeMap::new();
        for database in &record.databases {
            let entry = databases.entry(database.name.clone()).or_default();
            let role = if database.role() == Role::Writer {
                entry.writer = Some(record.id.clone());
                "writer"
            } else {
                entry.replicas.push(record.id.clone());
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
            vec![
                executor.id.clone(),
                executor.endpoint.clone(),
                executor.version.clone(),
                executor.capacity.to_string(),
                hosted.join(", "),
            ]
        })
        .collect();
    print_table(&["ID", "ENDPOINT", "VERSION", "CAPACITY", "DATABASES"], &rows);
    println!();
    println!("databases: {}", databases.len());
    let rows: Vec<Vec<String>> = databases
        .iter()
        .map(|(name, database)| {
            vec![
                name.clone(),
                database.writer.clone().unwrap_or_else(|| "-".into()),
                if database.replicas.is_empty() {
                    "-".into()
                } else {
                    database.replicas.join(", ")
                },
                database.head.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["DATABASE", "WRITER", "REPLICAS", "LATEST SNAPSHOT"], &rows);
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
