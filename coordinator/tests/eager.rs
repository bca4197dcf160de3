//! Aggregates over a join across executors, aggregated in part on the
//! executor of the side they read before the join, and semi and anti joins
//! across executors, whose filtering side is reduced to its distinct keys
//! on its executor. Each query runs across
//! executors (`crm.main.dim` lives on another executor than `sales.main.ss`)
//! and on one executor (a copy of `dim` next to `ss`, where the coordinator
//! passes the SQL to DuckDB as it is); both must give the same rows.

mod common;

use common::{cluster, Cluster};

async fn with_tables() -> Cluster {
    let cluster = cluster().await;
    // Keys repeat on both sides and are sometimes NULL; values too.
    cluster
        .update(
            "sales",
            "CREATE TABLE ss AS SELECT CASE WHEN range % 10 = 0 THEN NULL ELSE range % 7 END AS k, \
             CASE WHEN range % 9 = 0 THEN NULL ELSE CAST(range AS DECIMAL(7,2)) / 4 END AS paid, \
             range AS q FROM range(300)",
        )
        .await;
    let dim = "CREATE TABLE dim AS SELECT CASE WHEN range = 11 THEN NULL ELSE range % 5 END AS d_k, \
               'dim ' || (range % 3) AS d_name FROM range(12)";
    cluster.update("crm", dim).await;
    cluster.update("sales", dim).await;
    cluster
}

/// The rows of `sql`, each formatted as one line.
async fn rows(cluster: &Cluster, sql: &str) -> Vec<String> {
    cluster
        .lines(sql)
        .await
        .unwrap_or_else(|error| panic!("{error}\n{sql}"))
}

/// `sql` (with `{dim}` for the dim table) gives the same rows across
/// executors as on one, and several; the plan across executors, EXPLAINed.
async fn same_across_executors(cluster: &Cluster, sql: &str) -> String {
    let across_sql = sql.replace("{dim}", "crm.main.dim");
    let across = rows(cluster, &across_sql).await;
    let one = rows(cluster, &sql.replace("{dim}", "sales.main.dim")).await;
    assert!(one.len() > 1, "{sql}: {one:?}");
    assert_eq!(across, one, "{sql}");
    cluster.explain(&across_sql).await
}

/// The fragment of `plan` that reads `table` (`"db"."main"."name"`).
fn fragment_reading<'p>(plan: &'p str, table: &str) -> &'p str {
    plan.lines()
        .find(|line| line.contains("Bridge [REMOTE") && line.contains(table))
        .unwrap_or_else(|| panic!("no fragment reads {table}:\n{plan}"))
}

/// The fragment the plan sends to `sales`' executor.
fn sales_fragment(plan: &str) -> &str {
    fragment_reading(plan, r#""sales"."main"."ss""#)
}

#[tokio::test]
async fn the_side_the_aggregates_read_is_aggregated_on_its_executor() {
    let cluster = with_tables().await;
    let plan = same_across_executors(
        &cluster,
        "SELECT d_name, sum(paid) AS s, count(*) AS n, count(paid) AS c, min(paid) AS lo, max(q) AS hi
         FROM sales.main.ss JOIN {dim} ON k = d_k GROUP BY d_name ORDER BY d_name",
    )
    .await;
    let fragment = sales_fragment(&plan);
    assert!(
        fragment.contains("sum(") && fragment.contains("count(") && fragment.contains("GROUP BY"),
        "{plan}"
    );
}

#[tokio::test]
async fn grouping_by_columns_of_both_sides() {
    let cluster = with_tables().await;
    let plan = same_across_executors(
        &cluster,
        "SELECT d_name, q % 3 AS bucket, sum(paid) AS s, count(*) AS n
         FROM {dim}, sales.main.ss WHERE d_k = k GROUP BY d_name, q % 3 ORDER BY d_name, bucket",
    )
    .await;
    assert!(sales_fragment(&plan).contains("sum("), "{plan}");
}

#[tokio::test]
async fn aggregates_that_do_not_combine_stay_above_the_join() {
    let cluster = with_tables().await;
    // An average is not combined from parts: the rows of ss cross as they
    // are, and the coordinator aggregates them.
    let plan = same_across_executors(
        &cluster,
        "SELECT d_name, avg(paid) AS a, sum(paid) AS s
         FROM sales.main.ss JOIN {dim} ON k = d_k GROUP BY d_name ORDER BY d_name",
    )
    .await;
    assert!(!sales_fragment(&plan).contains("sum("), "{plan}");
    // A count of distinct values is, once DataFusion made it an aggregate
    // grouped by those values: the inner one goes below the join.
    same_across_executors(
        &cluster,
        "SELECT d_name, count(DISTINCT paid) AS n, sum(paid) AS s
         FROM sales.main.ss JOIN {dim} ON k = d_k GROUP BY d_name ORDER BY d_name",
    )
    .await;
    // An aggregate reading both sides cannot run on either alone.
    let plan = same_across_executors(
        &cluster,
        "SELECT d_name, sum(paid + d_k) AS s FROM sales.main.ss JOIN {dim} ON k = d_k GROUP BY d_name ORDER BY d_name",
    )
    .await;
    assert!(!sales_fragment(&plan).contains("sum("), "{plan}");
}

#[tokio::test]
async fn the_other_side_may_read_the_aggregated_sides_executor_too() {
    // TPC-H q18's shape: the other side is filtered by a subquery over the
    // aggregated side's executor; the join still cannot run there as it is.
    let cluster = with_tables().await;
    let plan = same_across_executors(
        &cluster,
        "SELECT d_name, sum(paid) AS s, count(*) AS n
         FROM sales.main.ss JOIN (SELECT * FROM {dim} WHERE d_k IN (SELECT k FROM sales.main.ss WHERE q < 50)) AS d
           ON k = d_k
         GROUP BY d_name ORDER BY d_name",
    )
    .await;
    let aggregated = plan
        .lines()
        .filter(|line| line.contains("Bridge [REMOTE") && line.contains(r#""sales"."main"."ss""#))
        .any(|line| line.contains("sum("));
    assert!(aggregated, "{plan}");
}

/// The fragment the plan sends to `crm`'s executor.
fn dim_fragment(plan: &str) -> &str {
    fragment_reading(plan, r#""crm"."main"."dim""#)
}

#[tokio::test]
async fn a_semi_or_anti_join_across_executors_brings_only_distinct_keys() {
    // dim's keys repeat (12 rows, 6 keys with NULL): EXISTS and NOT EXISTS
    // need each key once.
    let cluster = with_tables().await;
    for query in [
        "SELECT q, paid FROM sales.main.ss WHERE EXISTS (SELECT * FROM {dim} WHERE d_k = k) ORDER BY q",
        "SELECT q, paid FROM sales.main.ss WHERE NOT EXISTS (SELECT * FROM {dim} WHERE d_k = k) ORDER BY q",
        "SELECT q FROM sales.main.ss WHERE k IN (SELECT d_k FROM {dim} WHERE d_name <> 'dim 1') ORDER BY q",
    ] {
        let plan = same_across_executors(&cluster, query).await;
        assert!(dim_fragment(&plan).contains("GROUP BY"), "{plan}");
    }
    // NOT IN must see dim's NULL key as it is (no row then passes): it is
    // left alone, and both give the same (empty) rows.
    let not_in = "SELECT q FROM sales.main.ss WHERE k NOT IN (SELECT d_k FROM {dim}) ORDER BY q";
    let across = rows(&cluster, &not_in.replace("{dim}", "crm.main.dim")).await;
    assert_eq!(across, rows(&cluster, &not_in.replace("{dim}", "sales.main.dim")).await);
    let plan = cluster.explain(&not_in.replace("{dim}", "crm.main.dim")).await;
    assert!(!dim_fragment(&plan).contains("GROUP BY"), "{plan}");
}

#[tokio::test]
async fn an_ungrouped_count_over_no_rows_is_zero() {
    let cluster = with_tables().await;
    let sql = "SELECT count(*) AS n, count(paid) AS c, sum(paid) AS s, min(q) AS lo
               FROM sales.main.ss JOIN {dim} ON k = d_k WHERE q < 0";
    let across = rows(&cluster, &sql.replace("{dim}", "crm.main.dim")).await;
    assert_eq!(across, vec!["0 | 0 | NULL | NULL".to_string()]);
    assert_eq!(across, rows(&cluster, &sql.replace("{dim}", "sales.main.dim")).await);
    // Without a count, an ungrouped aggregate still goes below the join.
    let plan = cluster
        .explain("SELECT sum(paid) AS s FROM sales.main.ss JOIN crm.main.dim ON k = d_k")
        .await;
    assert!(sales_fragment(&plan).contains("sum("), "{plan}");
}
