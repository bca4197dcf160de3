//! Three in-process executors (databases sales, crm and parts) under one
//! coordinator, with the TPC-H tables they hold, empty.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::util::display::{ArrayFormatter, FormatOptions};
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

/// TPC-H q3 over the three executors.
#[allow(dead_code)] // not every test binary runs it
pub(crate) const Q3: &str =
    "SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate, o_shippriority
     FROM crm.main.customer, sales.main.orders, sales.main.lineitem
     WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
       AND o_orderdate < CAST('1995-03-15' AS date) AND l_shipdate > CAST('1995-03-15' AS date)
     GROUP BY l_orderkey, o_orderdate, o_shippriority
     ORDER BY revenue DESC, o_orderdate
     LIMIT 10";

pub(crate) struct Cluster {
    pub(crate) coordinator: Coordinator,
    executors: Vec<Arc<dyn ExecutorApi>>,
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
    let cluster = Cluster {
        coordinator: coordinator_of(&executors),
        executors,
        _dirs: dirs,
    };
    for (database, ddl) in TABLES {
        cluster.update(database, ddl).await;
    }
    cluster
}

fn coordinator_of(executors: &[Arc<dyn ExecutorApi>]) -> Coordinator {
    Coordinator::new(
        Registry::embedded(executors.to_vec()),
        TicketSigner::random(Duration::from_secs(60)),
        Some("sales".into()),
    )
}

impl Cluster {
    /// A second coordinator of the same executors, shipping joins' small
    /// sides as `threshold` says (`None`: never).
    #[allow(dead_code)] // not every test binary ships
    pub(crate) fn shipping(&self, threshold: Option<u64>) -> Cluster {
        Cluster {
            coordinator: coordinator_of(&self.executors).with_join_shipping(threshold),
            executors: self.executors.clone(),
            _dirs: Vec::new(),
        }
    }

    /// TPC-H q3's tables with rows: one segment's customers few (200 of
    /// 1,000), orders (100,000) and lineitem (600,000) many.
    #[allow(dead_code)] // not every test binary needs rows
    pub(crate) async fn fill_q3_tables(&self) {
        self.update(
            "crm",
            "INSERT INTO customer (c_custkey, c_mktsegment) SELECT range, \
             CASE WHEN range % 5 = 0 THEN 'BUILDING' ELSE 'MACHINERY' END FROM range(1000)",
        )
        .await;
        self.update(
            "sales",
            "INSERT INTO orders (o_orderkey, o_custkey, o_orderdate, o_shippriority) \
             SELECT range, range % 1000, DATE '1995-01-01' + CAST(range % 200 AS INTEGER), 0 FROM range(100000)",
        )
        .await;
        self.update(
            "sales",
            "INSERT INTO lineitem (l_orderkey, l_extendedprice, l_discount, l_shipdate) \
             SELECT range % 100000, 1, 0, DATE '1995-01-01' + CAST(range % 200 AS INTEGER) FROM range(600000)",
        )
        .await;
    }

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

    /// The lines of `EXPLAIN sql`.
    #[allow(dead_code)] // not every test binary explains
    pub(crate) async fn explain(&self, sql: &str) -> String {
        let batches = self.query(&format!("EXPLAIN {sql}")).await.unwrap();
        let mut lines = Vec::new();
        for batch in batches {
            let column = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            lines.extend((0..column.len()).map(|i| column.value(i).to_string()));
        }
        lines.join("\n")
    }

    /// The rows of `sql`, planned and redeemed.
    #[allow(dead_code)] // not every test binary runs queries this way
    pub(crate) async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, Error> {
        let planned = self.coordinator.plan_query(&Scope::default(), sql, None).await?;
        self.redeem(&planned.endpoints[0].ticket).await
    }

    /// The rows of `sql`, each formatted as one line (`a | b | NULL`).
    #[allow(dead_code)] // not every test binary compares rows as text
    pub(crate) async fn lines(&self, sql: &str) -> Result<Vec<String>, Error> {
        let options = FormatOptions::default().with_null("NULL");
        let mut lines = Vec::new();
        for batch in self.query(sql).await? {
            let columns = batch
                .columns()
                .iter()
                .map(|column| ArrayFormatter::try_new(column.as_ref(), &options).unwrap())
                .collect::<Vec<_>>();
            for row in 0..batch.num_rows() {
                let values: Vec<String> = columns.iter().map(|column| column.value(row).to_string()).collect();
                lines.push(values.join(" | "));
            }
        }
        Ok(lines)
    }
}
