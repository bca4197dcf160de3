//! Statements run verbatim in DuckDB: queries, updates, the whole dialect.

use arrow::array::Int64Array;

use crate::fixture::{total_rows, Options, TestServer};

#[tokio::test]
async fn ddl_and_dml_report_affected_rows() {
    let server = TestServer::start().await;
    assert_eq!(
        server
            .update("CREATE TABLE t (id INTEGER, name VARCHAR)")
            .await
            .unwrap(),
        -1
    );
    assert_eq!(
        server
            .update("INSERT INTO t SELECT i, 'n' || i FROM range(10) r(i)")
            .await
            .unwrap(),
        10
    );
    assert_eq!(server.update("UPDATE t SET name = 'x' WHERE id < 3").await.unwrap(), 3);
    assert_eq!(server.update("DELETE FROM t WHERE id >= 8").await.unwrap(), 2);
    assert_eq!(server.scalar("SELECT count(*) FROM t").await, "8");
    assert_eq!(
        server
            .scalar("SELECT string_agg(name, ',' ORDER BY id) FROM t WHERE id < 4")
            .await,
        "x,x,x,n3"
    );
}

#[tokio::test]
async fn the_whole_duckdb_dialect_works() {
    let server = TestServer::start().await;
    server
        .update("CREATE TABLE sales AS SELECT * FROM (VALUES ('a', 2023, 10), ('a', 2024, 20), ('b', 2024, 5)) v(product, year, amount)")
        .await
        .unwrap();
    // FROM-first, QUALIFY, list functions, macros and PIVOT are DuckDB's own syntax.
    assert_eq!(server.scalar("FROM sales SELECT sum(amount)").await, "35");
    assert_eq!(
        server
            .scalar("SELECT product FROM sales QUALIFY row_number() OVER (ORDER BY amount DESC) = 1")
            .await,
        "a"
    );
    assert_eq!(server.scalar("SELECT list_sum([1, 2, 3]) + len([4, 5])").await, "8");
    server.update("CREATE MACRO twice(x) AS x * 2").await.unwrap();
    assert_eq!(server.scalar("SELECT twice(21)").await, "42");
    let pivoted = server
        .query("PIVOT sales ON year USING sum(amount) ORDER BY product")
        .await
        .unwrap();
    assert_eq!(pivoted[0].schema().fields().len(), 3);
    assert_eq!(total_rows(&pivoted), 2);
}

#[tokio::test]
async fn several_statements_in_one_text_run_in_order() {
    let server = TestServer::start().await;
    let sum = server
        .scalar("CREATE TABLE m (x INT); INSERT INTO m VALUES (1), (2); SELECT sum(x) AS s FROM m")
        .await;
    assert_eq!(sum, "3");
}

#[tokio::test]
async fn large_results_stream_in_batches() {
    let server = TestServer::start().await;
    let batches = server
        .query("SELECT i, i * 2 AS j FROM range(1000000) r(i)")
        .await
        .unwrap();
    assert_eq!(total_rows(&batches), 1_000_000);
    assert!(batches.len() > 1, "a million rows arrive in several batches");
    let sum: i64 = batches
        .iter()
        .map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .iter()
                .flatten()
                .sum::<i64>()
        })
        .sum();
    assert_eq!(sum, 999_999 * 1_000_000 / 2);
}

#[tokio::test]
async fn several_databases_and_qualified_names() {
    let server = TestServer::start_with(Options {
        databases: vec!["mydb".into(), "sales".into()],
        ..Options::default()
    })
    .await;
    server
        .update("CREATE TABLE local_t AS SELECT 1 AS id, 'here' AS v")
        .await
        .unwrap();
    server
        .update("CREATE TABLE sales.main.orders AS SELECT 1 AS id, 99 AS amount")
        .await
        .unwrap();
    assert_eq!(
        server
            .scalar("SELECT o.amount FROM sales.main.orders o JOIN mydb.main.local_t l USING (id)")
            .await,
        "99"
    );
    let status = server.query("SELECT * FROM nowhere.main.t").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status}");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let server = TestServer::start().await;
    server
        .update("CREATE TABLE kept AS SELECT range AS i FROM range(1000)")
        .await
        .unwrap();
    server.update("INSERT INTO kept VALUES (-1)").await.unwrap();
    let dir = server.stop().await;
    assert!(dir.path().join("mydb.duckdb").exists());

    let server = TestServer::start_in(dir, Options::default()).await;
    assert_eq!(server.scalar("SELECT count(*) FROM kept").await, "1001");
    assert_eq!(server.scalar("SELECT min(i) FROM kept").await, "-1");
}
