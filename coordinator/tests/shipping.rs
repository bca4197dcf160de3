//! A join's small side shipped to its large side's executor, run. The
//! executors here are in this process and have no endpoint to fetch from
//! each other: the shipped rows pass through the coordinator, the way they
//! do wherever an executor cannot fetch directly. (Executors on the wire
//! fetch directly: `remote/tests/transfer.rs`, and the Python cluster tests.)

mod common;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use common::cluster;

/// Orders of one segment's customers before a date, with their lineitems.
const SEGMENT_REVENUE: &str = "SELECT o_orderdate, count(*) AS n, sum(l_extendedprice) AS revenue
     FROM crm.main.customer, sales.main.orders, sales.main.lineitem
     WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
       AND o_orderdate < CAST('1995-03-15' AS date)
     GROUP BY o_orderdate
     ORDER BY o_orderdate";

fn table(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).unwrap().to_string()
}

#[tokio::test]
async fn a_side_shipped_through_the_coordinator_gives_the_rows_of_a_pull() {
    let shipping = cluster().await;
    shipping.fill_q3_tables().await;
    let pulling = shipping.shipping(None);
    let plan = shipping.explain(SEGMENT_REVENUE).await;
    assert!(plan.contains("Shipped [REMOTE exec-1]"), "{plan}");
    assert!(!pulling.explain(SEGMENT_REVENUE).await.contains("Shipped"));

    let shipped = shipping.query(SEGMENT_REVENUE).await.unwrap();
    let pulled = pulling.query(SEGMENT_REVENUE).await.unwrap();
    let rows: usize = shipped.iter().map(RecordBatch::num_rows).sum();
    assert!(rows > 5, "{}", table(&shipped));
    assert_eq!(table(&shipped), table(&pulled));
}

#[tokio::test]
async fn a_query_whose_other_tables_are_few_rows_runs_whole_where_the_many_are() {
    let cluster = cluster().await;
    cluster.fill_q3_tables().await;
    let whole = cluster.shipping(Some(0));
    let pulling = cluster.shipping(None);
    let plan = whole.explain(SEGMENT_REVENUE).await;
    let logical = plan.split("physical plan").next().unwrap();
    // One fragment: the query's own text, customer's name made the shipped table's.
    assert_eq!(logical.matches("Bridge [REMOTE").count(), 1, "{plan}");
    assert!(!logical.contains("[LOCAL]"), "{plan}");
    assert!(logical.contains(r#"FROM "temp"."main"."shipped_"#), "{plan}");
    assert!(logical.contains(r#" AS "customer", "sales"."main"."orders""#), "{plan}");
    // Only the customers of the segment cross, by their names.
    assert!(
        logical.contains(r#"c0 AS "c_custkey""#) && logical.contains("'BUILDING'"),
        "{plan}"
    );

    let rows = whole.query(SEGMENT_REVENUE).await.unwrap();
    assert!(
        rows.iter().map(RecordBatch::num_rows).sum::<usize>() > 5,
        "{}",
        table(&rows)
    );
    assert_eq!(table(&rows), table(&pulling.query(SEGMENT_REVENUE).await.unwrap()));
}

#[tokio::test]
async fn a_shipped_table_keeps_the_columns_a_using_join_names() {
    let cluster = cluster().await;
    cluster
        .update(
            "sales",
            "CREATE TABLE big AS SELECT range % 10 AS k, range AS v FROM range(100000)",
        )
        .await;
    cluster
        .update(
            "crm",
            "CREATE TABLE small AS SELECT range AS k, 'label ' || range AS label FROM range(5)",
        )
        .await;
    let sql = "SELECT label, count(*) AS n, sum(v) AS total FROM sales.main.big JOIN crm.main.small USING (k)
               GROUP BY label ORDER BY label";
    let whole = cluster.shipping(Some(0));
    let plan = whole.explain(sql).await;
    assert!(plan.contains(r#" JOIN "temp"."main"."shipped_"#), "{plan}");
    // `k` is named only by USING: the shipped table has it all the same.
    assert!(plan.contains(r#"AS "k""#), "{plan}");
    let rows = whole.query(sql).await.unwrap();
    assert_eq!(
        rows.iter().map(RecordBatch::num_rows).sum::<usize>(),
        5,
        "{}",
        table(&rows)
    );
    assert_eq!(table(&rows), table(&cluster.shipping(None).query(sql).await.unwrap()));
}
