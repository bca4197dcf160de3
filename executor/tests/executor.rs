//! The executor against a real DuckDB: pooling, parameters, describe, streaming.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, IntervalMonthDayNanoArray,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, IntervalMonthDayNano, Schema};
use arrow::util::display::array_value_to_string;
use futures::TryStreamExt;
use openduck_executor::{ErrorKind, Executor, ExecutorConfig, Statement};
use tempfile::TempDir;

fn open(max_connections: usize) -> (Executor, TempDir) {
    let dir = TempDir::new().unwrap();
    let config = ExecutorConfig {
        max_connections,
        ..ExecutorConfig::new(dir.path(), vec!["mydb".into(), "other".into()])
    };
    (Executor::open(config).unwrap(), dir)
}

async fn rows(executor: &Executor, statement: Statement) -> Vec<RecordBatch> {
    executor.query(statement).await.unwrap().try_collect().await.unwrap()
}

async fn scalar(executor: &Executor, sql: &str) -> String {
    let batches = rows(executor, Statement::new("mydb", sql)).await;
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    array_value_to_string(batch.column(0), 0).unwrap()
}

#[tokio::test]
async fn session_changes_do_not_leak_to_the_next_statement() {
    let (executor, _dir) = open(1);
    executor
        .update(Statement::new("mydb", "SET VARIABLE answer = 42"))
        .await
        .unwrap();
    assert_eq!(scalar(&executor, "SELECT getvariable('answer') IS NULL").await, "true");
    executor.update(Statement::new("mydb", "USE other")).await.unwrap();
    assert_eq!(scalar(&executor, "SELECT current_database()").await, "mydb");
    let other = rows(&executor, Statement::new("other", "SELECT current_database()")).await;
    assert_eq!(array_value_to_string(other[0].column(0), 0).unwrap(), "other");
}

#[tokio::test]
async fn arrow_parameters_bind_to_duckdb_values() {
    let (executor, _dir) = open(2);
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("i", Arc::new(Int64Array::from(vec![Some(-7), None]))),
        ("s", Arc::new(StringArray::from(vec![Some("grüße"), Some("x")]))),
        ("b", Arc::new(BooleanArray::from(vec![Some(true), Some(false)]))),
        ("f", Arc::new(Float64Array::from(vec![f64::NAN, 2.5]))),
        ("d", Arc::new(Date32Array::from(vec![19_782, 0]))),
        (
            "t",
            Arc::new(TimestampMicrosecondArray::from(vec![1_700_000_000_123_456, 0])),
        ),
        (
            "m",
            Arc::new(
                Decimal128Array::from(vec![12_345, -1])
                    .with_precision_and_scale(9, 2)
                    .unwrap(),
            ),
        ),
        (
            "v",
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(1, 2, 3_000),
                IntervalMonthDayNano::new(0, 0, 0),
            ])),
        ),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    let params = RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let sql = "SELECT $1::BIGINT IS NULL, $2::VARCHAR, $3::BOOLEAN, isnan($4::DOUBLE), $5::DATE, \
               $6::TIMESTAMP, $7::DECIMAL(9,2), $8::INTERVAL";
    let batches = rows(&executor, Statement::new("mydb", sql).with_parameters(params)).await;
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(batch.num_rows(), 2, "one result row per parameter row");
    let row0: Vec<String> = (0..batch.num_columns())
        .map(|c| array_value_to_string(batch.column(c), 0).unwrap())
        .collect();
    assert_eq!(
        row0,
        [
            "false",
            "grüße",
            "true",
            "true",
            "2024-02-29",
            "2023-11-14T22:13:20.123456",
            "123.45",
            "1 mons 2 days 0.000003000 secs"
        ]
    );
    assert_eq!(
        array_value_to_string(batch.column(0), 1).unwrap(),
        "true",
        "NULL binds as NULL"
    );

    let wrong = Statement::new("mydb", "SELECT $1 + $2").with_parameters(
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap(),
    );
    let error = executor.query(wrong).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
}

#[tokio::test]
async fn describe_knows_schemas_without_running() {
    let (executor, _dir) = open(2);
    executor
        .update(Statement::new("mydb", "CREATE TABLE t (a INT, b VARCHAR)"))
        .await
        .unwrap();
    let description = executor
        .describe(&Statement::new("mydb", "INSERT INTO t VALUES (?, ?)"))
        .await
        .unwrap();
    assert_eq!(description.parameters.fields().len(), 2);
    assert_eq!(description.parameters.field(0).data_type(), &DataType::Int32);
    let description = executor
        .describe(&Statement::new("mydb", "SELECT b, a FROM t"))
        .await
        .unwrap();
    let schema = description.schema.expect("no parameters, so the schema is known");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    let depends = executor
        .describe(&Statement::new("mydb", "SELECT ? + 1 AS x"))
        .await
        .unwrap();
    assert!(depends.schema.is_none(), "the type of ? + 1 is known only once bound");
    assert_eq!(
        scalar(&executor, "SELECT count(*) FROM t").await,
        "0",
        "describe ran nothing"
    );
}

#[tokio::test]
async fn a_dropped_stream_frees_its_connection() {
    let (executor, _dir) = open(1);
    let mut stream = executor
        .query(Statement::new(
            "mydb",
            "SELECT a.range + b.range FROM range(100000) a, range(100000) b",
        ))
        .await
        .unwrap();
    assert!(stream.try_next().await.unwrap().is_some());
    drop(stream);
    let next = tokio::time::timeout(Duration::from_secs(20), scalar(&executor, "SELECT 1")).await;
    assert_eq!(next.expect("the only connection came back"), "1");
}

#[tokio::test]
async fn unknown_databases_and_bad_names_are_refused() {
    let (executor, _dir) = open(1);
    let error = executor.update(Statement::new("nope", "SELECT 1")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let dir = TempDir::new().unwrap();
    let error = Executor::open(ExecutorConfig::new(dir.path(), vec!["../escape".into()])).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert!(!dir.path().parent().unwrap().join("escape.duckdb").exists());
}

#[tokio::test]
async fn a_streamed_statement_leaves_no_transaction_open() {
    let (executor, _dir) = open(1);
    let create = Statement::new("mydb", "CREATE TABLE other.main.only_here AS SELECT 42 AS x");
    executor.describe(&create).await.unwrap();
    executor.describe(&create).await.unwrap();
    let _: Vec<RecordBatch> = rows(&executor, create).await;
    executor
        .update(Statement::new("mydb", "CREATE SCHEMA mydb.reports"))
        .await
        .unwrap();
    executor
        .update(Statement::new("mydb", "CREATE TABLE other.main.t2 (x INT)"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_memory_limit_holds_and_what_does_not_fit_spills_inside_the_data_directory() {
    let dir = TempDir::new().unwrap();
    let config = ExecutorConfig {
        memory_limit: Some("32MB".into()),
        ..ExecutorConfig::new(dir.path(), vec!["mydb".into()])
    };
    let executor = Executor::open(config).unwrap();
    assert_eq!(
        scalar(&executor, "SELECT current_setting('memory_limit')").await,
        "30.5 MiB"
    );
    let spill = dir.path().canonicalize().unwrap().join(".tmp");
    assert_eq!(
        scalar(&executor, "SELECT current_setting('temp_directory')").await,
        spill.to_string_lossy()
    );

    // A sort larger than the limit spills there and finishes.
    let sorted = "SELECT count(*) FROM (SELECT range, random() AS r FROM range(5000000) ORDER BY r)";
    assert_eq!(scalar(&executor, sorted).await, "5000000");
    assert!(spill.is_dir(), "nothing spilled to {}", spill.display());

    // What cannot spill is refused as exhausted, not as a fault.
    let unspillable = Statement::new("mydb", "SELECT length(list(range::VARCHAR)) FROM range(10000000)");
    let error = match executor.query(unspillable).await {
        Ok(rows) => rows.try_collect::<Vec<_>>().await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.kind(), ErrorKind::ResourceExhausted, "{error}");
    // SQL cannot move the spill directory out.
    let error = executor
        .update(Statement::new("mydb", "SET temp_directory = '/tmp'"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
}

#[test]
fn an_invalid_memory_limit_is_refused_with_duckdbs_reason() {
    let dir = TempDir::new().unwrap();
    let config = ExecutorConfig {
        memory_limit: Some("lots".into()),
        ..ExecutorConfig::new(dir.path(), vec!["mydb".into()])
    };
    let error = Executor::open(config).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("\"lots\"") && message.contains("Memory must have a number"),
        "{message}"
    );
    assert_eq!(error.kind(), ErrorKind::FailedPrecondition);
}
