//! Fragments whose parent needs none of their columns: a `count(*)`, a
//! scalar subquery or an EXISTS over an executor's table, in a query that
//! spans executors. Each query runs twice, across executors (`crm.main.reason`
//! lives on another executor than `sales.main.ss`) and on one executor (with
//! a copy of `reason` next to `ss`, where the coordinator passes the SQL to
//! DuckDB as it is), and both must give the same rows.

mod common;

use common::{cluster, Cluster};

async fn with_tables() -> Cluster {
    let cluster = cluster().await;
    cluster
        .update(
            "sales",
            "CREATE TABLE ss AS SELECT range AS q, CAST(range AS DECIMAL(7,2)) / 4 AS paid FROM range(100)",
        )
        .await;
    let reason = "CREATE TABLE reason AS SELECT range AS r_sk, 'reason ' || range AS r_desc FROM range(1, 6)";
    cluster.update("crm", reason).await;
    cluster.update("sales", reason).await;
    cluster
}

/// `sql` (with `{reason}` for the reason table) gives the same rows across
/// executors as on one, and at least one row.
async fn same_across_executors(cluster: &Cluster, sql: &str) {
    let across = cluster
        .lines(&sql.replace("{reason}", "crm.main.reason"))
        .await
        .unwrap_or_else(|error| panic!("across executors: {error}\n{sql}"));
    let one = cluster
        .lines(&sql.replace("{reason}", "sales.main.reason"))
        .await
        .unwrap_or_else(|error| panic!("on one executor: {error}\n{sql}"));
    assert!(!one.is_empty(), "{sql}");
    assert_eq!(across, one, "{sql}");
}

#[tokio::test]
async fn scalar_subqueries_over_another_executor() {
    // The shape of TPC-DS query 9.
    let cluster = with_tables().await;
    same_across_executors(
        &cluster,
        "SELECT CASE WHEN (SELECT count(*) FROM sales.main.ss WHERE q BETWEEN 1 AND 20) > 10
                     THEN (SELECT avg(paid) FROM sales.main.ss WHERE q BETWEEN 1 AND 20)
                     ELSE (SELECT avg(q) FROM sales.main.ss WHERE q BETWEEN 1 AND 20) END AS bucket1,
                CASE WHEN (SELECT count(*) FROM sales.main.ss WHERE q BETWEEN 21 AND 40) > 30
                     THEN (SELECT avg(paid) FROM sales.main.ss WHERE q BETWEEN 21 AND 40)
                     ELSE (SELECT avg(q) FROM sales.main.ss WHERE q BETWEEN 21 AND 40) END AS bucket2
         FROM {reason} WHERE r_sk = 1",
    )
    .await;
    same_across_executors(
        &cluster,
        "SELECT r_desc, (SELECT count(*) FROM sales.main.ss WHERE paid > 10) AS n FROM {reason} ORDER BY r_sk",
    )
    .await;
}

#[tokio::test]
async fn counting_rows_of_a_join_and_of_a_projection() {
    let cluster = with_tables().await;
    same_across_executors(&cluster, "SELECT count(*) FROM sales.main.ss, {reason} WHERE q = r_sk").await;
    same_across_executors(
        &cluster,
        "SELECT count(*) FROM (SELECT q, paid FROM sales.main.ss WHERE paid > 3) AS t, {reason}",
    )
    .await;
    same_across_executors(
        &cluster,
        "SELECT (SELECT count(*) FROM sales.main.ss) + count(*) AS n FROM {reason}",
    )
    .await;
}

#[tokio::test]
async fn exists_over_another_executor() {
    let cluster = with_tables().await;
    same_across_executors(
        &cluster,
        "SELECT r_sk FROM {reason} WHERE EXISTS (SELECT 1 FROM sales.main.ss WHERE q > 50) ORDER BY r_sk",
    )
    .await;
    same_across_executors(
        &cluster,
        "SELECT r_sk FROM {reason} WHERE EXISTS (SELECT * FROM sales.main.ss WHERE q = r_sk * 10) ORDER BY r_sk",
    )
    .await;
    same_across_executors(
        &cluster,
        "SELECT r_sk FROM {reason} WHERE NOT EXISTS (SELECT * FROM sales.main.ss WHERE q = r_sk * 30) ORDER BY r_sk",
    )
    .await;
}
