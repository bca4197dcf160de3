//! Three in-process executors (databases sales, crm and parts) under one
//! coordinator, with the TPC-H tables they hold, empty.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use openduck_coordinator::{Coordinator, Error, ExecutorApi, Registry, Scope, TicketSigner};
use openduck_executor::{Executor, ExecutorConfig};
use tempfile::TempDir;

const TABLES: &[(&str, &str)] = &[
    ("sales", "CREATE TABLE lineitem (l_orderkey BIGINT, l_partkey BIGINT, l_suppkey BIGINT, l_linenumber INTEGER, l_quantity DECIMAL(15,2), l_extendedprice DECIMAL(15,2), l_discount DECIMAL(15,2), l_tax DECIMAL(15,2), l_returnflag VARCHAR, l_linestatus VARCHAR, l_shipdate DATE, l_commitdate DATE, l_receiptdate DATE, l_shipinstruct VARCHAR, l_shipmode VARCHAR, l_comment VARCHAR)"),
    ("sales", "CREATE TABLE orders (o_orderkey BIGINT, o_custkey BIGINT, o_orderstatus VARCHAR, o_totalprice DECIMAL(15,2), o_orderdate DATE, o_orderpriority VARCHAR, o_clerk VARCHAR, o_shippriority INTEGER, o_comment VARCHAR)"),
    ("crm", "CREATE TABLE customer (c_custkey BIGINT, c_name VARCHAR, c_address VARCHAR, c_nationkey INTEGER, c_phone VARCHAR, c_acctbal DECIMAL(15,2), c_mktsegment VARCHAR, c_comment VARCHAR)"),
    ("crm", "CREATE TABLE nation (n_nationkey INTEGER, n_name VARCHAR, n_regionkey INTEGER, n_comment VARCHAR)"),
    ("crm", "CREATE TABLE region (r_regionkey INTEGER, r_name VARCHAR, r_comment VARCHAR)"),
    ("parts", "CREATE TABLE supplier (s_suppkey BIGINT, s_name VARCHAR, s_address VARCHAR, s_nationkey INTEGER, s_phone VARCHAR, s_acctbal DECIMAL(15,2), s_comment VARCHAR)"),
];

pub(crate) struct Cluster {
    pub(crate) coordinator: Coordinator,
    _dirs: Vec<TempDir>,
}

pub(crate) async fn cluster() -> Cluster {
    let mut executors = Vec::new();
    let mut dirs = Vec::new();
    for (index, database) in ["sales", "crm", "parts"].into_iter().enumerate() {
        let dir = TempDir::new().unwrap();
        let config = ExecutorConfig {
            id: format!("exec-{index}"),
            ..ExecutorConfig::new(dir.path(), vec![database.to_string()])
        };
        let executor = tokio::task::spawn_blocking(move || Executor::open(config))
            .await
            .unwrap()
            .unwrap();
        executors.push(Arc::new(executor) as Arc<dyn ExecutorApi>);
        dirs.push(dir);
    }
    let coordinator = Coordinator::new(
        Registry::embedded(executors),
        TicketSigner::random(Duration::from_secs(60)),
        Some("sales".into()),
    );
    let cluster = Cluster {
        coordinator,
        _dirs: dirs,
    };
    for (database, ddl) in TABLES {
        cluster.update(database, ddl).await;
    }
    cluster
}

impl Cluster {
    /// Runs a statement whose rows are not wanted, in `database`.
    pub(crate) async fn update(&self, database: &str, sql: &str) {
        let scope = Scope {
            database: Some(database.to_string()),
            ..Scope::default()
        };
        self.coordinator.execute_update(&scope, sql, None).await.unwrap();
    }

    /// The rows of a ticket the coordinator planned.
    #[allow(dead_code)] // not every test binary redeems tickets this way
    pub(crate) async fn redeem(&self, ticket: &[u8]) -> Result<Vec<RecordBatch>, Error> {
        self.coordinator.execute_ticket(ticket).await?.try_collect().await
    }

    /// The rows of `sql`, planned and redeemed.
    #[allow(dead_code)] // not every test binary runs queries this way
    pub(crate) async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, Error> {
        let planned = self.coordinator.plan_query(&Scope::default(), sql, None).await?;
        self.redeem(&planned.ticket).await
    }
}
