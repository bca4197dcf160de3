//! A UNION ALL of parts that each run on one executor is answered in parts,
//! one endpoint each, redeemed at its executor, for a client that reads
//! every endpoint; other clients and other plans get one endpoint.

mod common;

use arrow::array::{Array, Int64Array, RecordBatch};
use common::{cluster, Cluster};
use openduck_coordinator::{ErrorKind, PlannedQuery, Principal, Scope};

const UNION: &str = "SELECT k, v FROM sales.main.p WHERE v > 4 UNION ALL SELECT k, w FROM crm.main.q";

async fn with_tables() -> Cluster {
    let cluster = cluster().await;
    cluster
        .update(
            "sales",
            "CREATE TABLE p AS SELECT range AS k, range * 2 AS v, CAST(range AS DECIMAL(15,2)) AS d FROM range(10)",
        )
        .await;
    cluster
        .update(
            "crm",
            "CREATE TABLE q AS SELECT range AS k, range * 3 AS w, CAST(range AS DECIMAL(15,2)) AS d FROM range(5)",
        )
        .await;
    cluster
}

async fn plan(cluster: &Cluster, sql: &str, reads_every_endpoint: bool) -> PlannedQuery {
    let scope = Scope {
        reads_every_endpoint,
        ..Scope::default()
    };
    cluster.coordinator.plan_query(&scope, sql, None).await.unwrap()
}

/// Every endpoint's rows as (k, v) pairs, sorted, and each endpoint's batches.
async fn rows(cluster: &Cluster, planned: &PlannedQuery) -> (Vec<(i64, i64)>, Vec<Vec<RecordBatch>>) {
    let mut pairs = Vec::new();
    let mut parts = Vec::new();
    for endpoint in &planned.endpoints {
        let batches = cluster.redeem(&endpoint.ticket).await.unwrap();
        for batch in &batches {
            assert_eq!(batch.schema().fields(), planned.schema.as_ref().unwrap().fields());
            let k = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let v = batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            pairs.extend((0..k.len()).map(|row| (k.value(row), v.value(row))));
        }
        parts.push(batches);
    }
    pairs.sort();
    (pairs, parts)
}

#[tokio::test]
async fn a_union_across_executors_comes_in_one_part_per_executor() {
    let cluster = with_tables().await;
    let whole = plan(&cluster, UNION, false).await;
    assert_eq!(whole.endpoints.len(), 1, "a client that reads one endpoint gets one");
    let (expected, _) = rows(&cluster, &whole).await;
    assert_eq!(expected.len(), 7 + 5);

    let planned = plan(&cluster, UNION, true).await;
    assert_eq!(planned.endpoints.len(), 2);
    assert!(planned.past_coordinator());
    let (got, parts) = rows(&cluster, &planned).await;
    assert_eq!(got, expected);
    // Each endpoint holds one executor's rows, named as the query's columns.
    let counts: Vec<usize> = parts
        .iter()
        .map(|batches| batches.iter().map(RecordBatch::num_rows).sum())
        .collect();
    assert_eq!(counts, [7, 5]);
    assert_eq!(parts[1][0].schema().field(1).name(), "v");
    // Two tickets, each a query of its own.
    assert_ne!(planned.endpoints[0].ticket, planned.endpoints[1].ticket);
}

#[tokio::test]
async fn two_parts_on_one_executor_and_three_branches() {
    let cluster = with_tables().await;
    let sql =
        "SELECT k, v FROM sales.main.p UNION ALL SELECT k, w FROM crm.main.q UNION ALL SELECT k + 1, w FROM crm.main.q";
    let (expected, _) = rows(&cluster, &plan(&cluster, sql, false).await).await;
    let planned = plan(&cluster, sql, true).await;
    assert_eq!(planned.endpoints.len(), 3);
    assert_eq!(rows(&cluster, &planned).await.0, expected);
}

#[tokio::test]
async fn other_plans_come_in_one_endpoint() {
    let cluster = with_tables().await;
    for sql in [
        // Something LOCAL above the union.
        "SELECT k, v FROM sales.main.p UNION ALL SELECT k, w FROM crm.main.q ORDER BY k LIMIT 3",
        "SELECT k, v FROM sales.main.p UNION SELECT k, w FROM crm.main.q",
        // One executor alone: one fragment already.
        "SELECT k, v FROM sales.main.p UNION ALL SELECT k, v FROM sales.main.p",
        // DuckDB sums DECIMAL(15,2) as DECIMAL(38,2), DataFusion as
        // DECIMAL(25,2): the parts would not arrive as the schema says.
        "SELECT k, sum(d) AS s FROM sales.main.p GROUP BY k UNION ALL SELECT k, sum(d) FROM crm.main.q GROUP BY k",
    ] {
        let planned = plan(&cluster, sql, true).await;
        assert_eq!(planned.endpoints.len(), 1, "{sql}");
        assert!(
            !cluster.redeem(&planned.endpoints[0].ticket).await.unwrap().is_empty(),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn a_query_required_on_one_executor_runs_there_or_is_refused() {
    let cluster = with_tables().await;
    let anyone = Principal::default();
    let names = |names: &[&str]| names.iter().map(|name| name.to_string()).collect::<Vec<_>>();
    assert!(cluster.coordinator.on_one_executor(&anyone, &names(&["sales"])));
    assert!(!cluster.coordinator.on_one_executor(&anyone, &names(&["sales", "crm"])));
    assert!(!cluster
        .coordinator
        .on_one_executor(&anyone, &names(&["sales", "nowhere"])));

    let scope = Scope {
        one_executor: true,
        ..Scope::default()
    };
    let error = cluster.coordinator.plan_query(&scope, UNION, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::FailedPrecondition, "{error}");
    assert!(
        error.to_string().contains("crm") && error.to_string().contains("sales"),
        "{error}"
    );
    let one = "SELECT k, v FROM sales.main.p UNION ALL SELECT k, v FROM sales.main.p";
    let planned = cluster.coordinator.plan_query(&scope, one, None).await.unwrap();
    assert_eq!(
        cluster.redeem(&planned.endpoints[0].ticket).await.unwrap()[0].num_columns(),
        2
    );
}
