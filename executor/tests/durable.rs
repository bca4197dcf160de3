//! Durable writes under concurrency, against a real DuckDB and local
//! differential storage: many writers at once all succeed, and every write
//! acknowledged is in storage, so an executor opened on an empty disk has it.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::array_value_to_string;
use futures::{stream, StreamExt, TryStreamExt};
use openduck_executor::{Executor, ExecutorConfig, IngestMode, IngestTarget, Statement};
use openduck_storage::Storage;
use tempfile::TempDir;

const WRITERS: i64 = 16;
const WRITES_EACH: i64 = 10;
/// What the writers leave, as `written` reports it: rows of `t` (distinct
/// and all), the sum of the counters, rows ingested.
const WRITTEN: &str = "80/80 80 80";

async fn start(dir: &TempDir, max_connections: usize) -> Executor {
    let config = ExecutorConfig {
        max_connections,
        storage: Some(Storage::local(dir.path().join("storage")).unwrap()),
        ..ExecutorConfig::new(dir.path().join("data"), vec!["mydb".into()])
    };
    Executor::start(config).await.unwrap()
}

async fn scalar(executor: &Executor, sql: &str) -> String {
    let batches: Vec<RecordBatch> = executor
        .query(Statement::new("mydb", sql))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    array_value_to_string(batch.column(0), 0).unwrap()
}

fn ids(from: i64, rows: i64) -> (Arc<Schema>, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from_iter_values(from..from + rows))],
    )
    .unwrap();
    (schema, batch)
}

/// One writer's work, by the path its statements take: `update` (of a
/// counter row of its own), a writing `query`, an `ingest` (into a table of
/// its own, created by the first), or a session's transaction. Updates and
/// tables made hold DuckDB's checkpoint lock until they commit.
async fn write(executor: Arc<Executor>, writer: i64) {
    for n in 0..WRITES_EACH {
        let id = writer * 1000 + n;
        match writer % 4 {
            0 => {
                let update = format!("UPDATE counters SET n = n + 1 WHERE writer = {writer}");
                assert_eq!(executor.update(Statement::new("mydb", update)).await.unwrap(), Some(1));
            }
            1 => {
                let insert = format!("INSERT INTO t VALUES ({id})");
                let stream = executor.query(Statement::new("mydb", insert)).await.unwrap();
                let _: Vec<RecordBatch> = stream.try_collect().await.unwrap();
            }
            2 => {
                // Batches that arrive slowly keep the ingest's transaction
                // open while others commit.
                let (schema, first) = ids(id, 1);
                let (_, second) = ids(id + 500, 1);
                let batches = stream::iter([first, second]).then(|batch| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok::<_, String>(batch)
                });
                let target = IngestTarget {
                    database: "mydb".into(),
                    schema: None,
                    table: format!("own_{writer}"),
                    mode: IngestMode::CreateOrAppend,
                    temporary: false,
                    session_id: None,
                    in_transaction: false,
                    from_query: false,
                };
                let rows = executor.ingest(target, schema, Box::pin(batches)).await.unwrap();
                assert_eq!(rows, 2);
            }
            _ => {
                let session = executor.open_session().unwrap();
                executor.begin(session.id(), false).await.unwrap();
                let statements = [
                    format!("INSERT INTO t VALUES ({id})"),
                    format!("UPDATE counters SET n = n + 1 WHERE writer = {writer}"),
                ];
                for sql in statements {
                    let mut statement = Statement::new("mydb", sql);
                    statement.session_id = Some(session.id().to_string());
                    executor.update(statement).await.unwrap();
                    // The transaction stays open a while, as a client's would.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                executor.commit(session.id()).await.unwrap();
            }
        }
    }
}

/// What the writers leave: rows of `t`, the sum of the counters, and rows
/// of the ingests' tables.
async fn written(executor: &Executor) -> String {
    let own: Vec<String> = (0..WRITERS)
        .filter(|writer| writer % 4 == 2)
        .map(|writer| format!("(SELECT count(*) FROM own_{writer})"))
        .collect();
    let sql = format!(
        "SELECT (SELECT count(DISTINCT id) FROM t) || '/' || (SELECT count(*) FROM t) || ' ' || \
         (SELECT sum(n) FROM counters) || ' ' || ({})",
        own.join(" + ")
    );
    scalar(executor, &sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_all_succeed_and_survive_the_loss_of_the_disk() {
    let dir = TempDir::new().unwrap();
    let executor = Arc::new(start(&dir, 4).await);
    let setup = format!(
        "CREATE TABLE t (id BIGINT); CREATE TABLE counters AS SELECT range AS writer, 0 AS n FROM range({WRITERS})"
    );
    executor.update(Statement::new("mydb", setup)).await.unwrap();

    // A reader in a transaction that stays open, as DBAPI clients keep one:
    // it holds no write back.
    let reader = executor.open_session().unwrap();
    executor.begin(reader.id(), false).await.unwrap();
    let mut read = Statement::new("mydb", "SELECT count(*) FROM t");
    read.session_id = Some(reader.id().to_string());
    let _: Vec<RecordBatch> = executor.query(read).await.unwrap().try_collect().await.unwrap();

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write(Arc::clone(&executor), writer)))
        .collect();
    // Reads are answered while the writes go on.
    for _ in 0..20 {
        scalar(&executor, "SELECT count(*) FROM t").await;
    }
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("writers finish")
            .unwrap();
    }
    assert_eq!(written(&executor).await, WRITTEN);
    drop(reader);
    drop(executor);

    // Every write was acknowledged, so storage alone has them all.
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    let executor = start(&dir, 4).await;
    assert_eq!(written(&executor).await, WRITTEN);
    executor.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Every pod of a new cluster starts at once, so a replica may open before
/// its writer has published anything: it waits for the first snapshot
/// instead of failing, then follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_before_its_writer_waits_for_its_first_snapshot() {
    let dir = TempDir::new().unwrap();
    let replica_config = ExecutorConfig {
        storage: Some(Storage::local(dir.path().join("storage")).unwrap()),
        replicas: vec!["mydb".into()],
        replica_interval: Duration::from_millis(50),
        ..ExecutorConfig::new(dir.path().join("replica"), vec![])
    };
    let mut replica = tokio::spawn(Executor::start(replica_config));
    // Still waiting after many looks at storage.
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut replica)
        .await
        .is_err());

    let writer = start(&dir, 2).await;
    writer
        .update(Statement::new("mydb", "CREATE TABLE t AS SELECT 42 AS answer"))
        .await
        .unwrap();
    let replica = tokio::time::timeout(Duration::from_secs(20), replica)
        .await
        .expect("the replica opens once the writer has published")
        .unwrap()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = replica.query(Statement::new("mydb", "SELECT answer FROM t")).await;
        if let Ok(batches) = seen {
            let batches: Vec<RecordBatch> = batches.try_collect().await.unwrap();
            assert_eq!(array_value_to_string(batches[0].column(0), 0).unwrap(), "42");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never saw the writer's table"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A transaction that changed temporary tables only (the DuckDB extension's
/// copies of a user's local tables) has nothing to publish: its commit does
/// not wait for another transaction that wrote the database and stays open,
/// and its tables stay in its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_changed_temporary_tables_only_commits_without_waiting() {
    let dir = TempDir::new().unwrap();
    let executor = start(&dir, 4).await;
    executor
        .update(Statement::new("mydb", "CREATE TABLE t (id BIGINT)"))
        .await
        .unwrap();
    let in_session = |sql: &str, session: &str| {
        let mut statement = Statement::new("mydb", sql);
        statement.session_id = Some(session.to_string());
        statement
    };

    let writer = executor.open_session().unwrap();
    executor.begin(writer.id(), false).await.unwrap();
    executor
        .update(in_session("INSERT INTO t VALUES (1)", writer.id()))
        .await
        .unwrap();

    let copier = executor.open_session().unwrap();
    executor.begin(copier.id(), false).await.unwrap();
    executor
        .update(in_session("CREATE TEMPORARY TABLE copy AS SELECT 7 AS v", copier.id()))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), executor.commit(copier.id()))
        .await
        .expect("the commit does not wait for the writer's open transaction")
        .unwrap();
    let copied: Vec<RecordBatch> = executor
        .query(in_session("SELECT v FROM copy", copier.id()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(array_value_to_string(copied[0].column(0), 0).unwrap(), "7");

    // A transaction that changed the database publishes as it commits: its
    // row is in storage once the commit returns.
    executor.commit(writer.id()).await.unwrap();
    drop((writer, copier));
    drop(executor);
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    let executor = start(&dir, 2).await;
    assert_eq!(scalar(&executor, "SELECT count(*) FROM t").await, "1");
    executor.shutdown(Duration::from_secs(5)).await.unwrap();
}
