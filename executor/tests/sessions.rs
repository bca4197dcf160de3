//! Sessions, transactions, bulk ingest and cancellation by query id, against
//! a real DuckDB.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::array_value_to_string;
use futures::{stream, StreamExt, TryStreamExt};
use openduck_executor::{ErrorKind, Executor, ExecutorConfig, IngestMode, IngestTarget, Statement};
use tempfile::TempDir;

fn open() -> (Executor, TempDir) {
    let dir = TempDir::new().unwrap();
    let config = ExecutorConfig {
        max_connections: 2,
        ..ExecutorConfig::new(dir.path(), vec!["mydb".into()])
    };
    (Executor::open(config).unwrap(), dir)
}

async fn scalar(executor: &Executor, statement: Statement) -> String {
    let batches: Vec<RecordBatch> = executor.query(statement).await.unwrap().try_collect().await.unwrap();
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    array_value_to_string(batch.column(0), 0).unwrap()
}

fn in_session(sql: &str, session: &str) -> Statement {
    let mut statement = Statement::new("mydb", sql);
    statement.session_id = Some(session.to_string());
    statement
}

fn target(table: &str, mode: IngestMode) -> IngestTarget {
    IngestTarget {
        database: "mydb".into(),
        schema: None,
        table: table.into(),
        mode,
        temporary: false,
        session_id: None,
        in_transaction: false,
        from_query: false,
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn batch(from: i64, rows: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..from + rows).collect();
    let names: Vec<Option<String>> = ids.iter().map(|id| (id % 3 != 0).then(|| format!("n{id}"))).collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

fn batches(parts: Vec<RecordBatch>) -> impl futures::Stream<Item = Result<RecordBatch, String>> + Unpin {
    stream::iter(parts.into_iter().map(Ok))
}

#[tokio::test]
async fn a_transaction_commits_or_rolls_back_as_a_whole() {
    let (executor, _dir) = open();
    executor
        .update(Statement::new("mydb", "CREATE TABLE t (x INT)"))
        .await
        .unwrap();
    let session = executor.open_session().unwrap();

    executor.begin(session.id(), false).await.unwrap();
    executor
        .update(in_session("INSERT INTO t VALUES (1), (2)", session.id()))
        .await
        .unwrap();
    assert_eq!(
        scalar(&executor, in_session("SELECT count(*) FROM t", session.id())).await,
        "2"
    );
    // Not visible outside the transaction before it commits.
    assert_eq!(
        scalar(&executor, Statement::new("mydb", "SELECT count(*) FROM t")).await,
        "0"
    );
    executor.rollback(session.id()).await.unwrap();
    assert_eq!(
        scalar(&executor, Statement::new("mydb", "SELECT count(*) FROM t")).await,
        "0"
    );

    executor.begin(session.id(), false).await.unwrap();
    executor
        .update(in_session("INSERT INTO t VALUES (3)", session.id()))
        .await
        .unwrap();
    executor.commit(session.id()).await.unwrap();
    assert_eq!(
        scalar(&executor, Statement::new("mydb", "SELECT sum(x) FROM t")).await,
        "3"
    );

    // SQL transaction statements stay refused: the protocol owns transactions.
    let refused = executor.update(in_session("COMMIT", session.id())).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::FailedPrecondition);
}

#[tokio::test]
async fn dropping_a_session_rolls_its_transaction_back() {
    let (executor, _dir) = open();
    executor
        .update(Statement::new("mydb", "CREATE TABLE t (x INT)"))
        .await
        .unwrap();
    let session = executor.open_session().unwrap();
    let id = session.id().to_string();
    executor.begin(&id, false).await.unwrap();
    executor
        .update(in_session("INSERT INTO t VALUES (1)", &id))
        .await
        .unwrap();
    drop(session);
    let gone = executor
        .update(in_session("INSERT INTO t VALUES (2)", &id))
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::FailedPrecondition, "{gone}");
    assert_eq!(
        scalar(&executor, Statement::new("mydb", "SELECT count(*) FROM t")).await,
        "0"
    );
}

#[tokio::test]
async fn temporary_tables_live_in_their_session_only() {
    let (executor, _dir) = open();
    let session = executor.open_session().unwrap();
    executor
        .update(in_session("CREATE TEMP TABLE scratch AS SELECT 42 AS x", session.id()))
        .await
        .unwrap();
    executor
        .update(in_session("SET VARIABLE answer = 42", session.id()))
        .await
        .unwrap();
    assert_eq!(
        scalar(&executor, in_session("SELECT x FROM scratch", session.id())).await,
        "42"
    );
    assert_eq!(
        scalar(&executor, in_session("SELECT getvariable('answer')", session.id())).await,
        "42"
    );

    // A temporary table made on a pooled connection must not reach the
    // next client of that connection.
    executor
        .update(Statement::new("mydb", "CREATE TEMP TABLE leak AS SELECT 1 AS x"))
        .await
        .unwrap();
    for _ in 0..4 {
        let missing = executor
            .query(Statement::new("mydb", "SELECT * FROM leak"))
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }
}

async fn summary(executor: &Executor) -> Vec<String> {
    let statement = Statement::new("mydb", "SELECT count(*), sum(id), count(name), min(name) FROM people");
    let batches: Vec<RecordBatch> = executor.query(statement).await.unwrap().try_collect().await.unwrap();
    (0..4)
        .map(|c| array_value_to_string(batches[0].column(c), 0).unwrap())
        .collect()
}

#[tokio::test]
async fn ingest_appends_a_stream_in_every_mode() {
    let (executor, _dir) = open();
    let parts = vec![batch(0, 5000), batch(5000, 1), batch(5001, 2999)];
    let rows = executor
        .ingest(target("people", IngestMode::Create), schema(), batches(parts))
        .await
        .unwrap();
    assert_eq!(rows, 8000);
    assert_eq!(summary(&executor).await, ["8000", "31996000", "5333", "n1"]);

    let exists = executor
        .ingest(
            target("people", IngestMode::Create),
            schema(),
            batches(vec![batch(0, 1)]),
        )
        .await
        .unwrap_err();
    assert_eq!(exists.kind(), ErrorKind::AlreadyExists, "{exists}");

    executor
        .ingest(
            target("people", IngestMode::Append),
            schema(),
            batches(vec![batch(8000, 10)]),
        )
        .await
        .unwrap();
    assert_eq!(summary(&executor).await[0], "8010");
    executor
        .ingest(
            target("people", IngestMode::Replace),
            schema(),
            batches(vec![batch(1, 3)]),
        )
        .await
        .unwrap();
    assert_eq!(summary(&executor).await[0], "3");
    executor
        .ingest(
            target("people", IngestMode::CreateOrAppend),
            schema(),
            batches(vec![batch(4, 3)]),
        )
        .await
        .unwrap();
    assert_eq!(summary(&executor).await[..2], ["6", "21"]);

    let missing = executor
        .ingest(
            target("nobody", IngestMode::Append),
            schema(),
            batches(vec![batch(0, 1)]),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
}

/// A stream whose fields all name columns of the table (exactly) fills them by name,
/// in any order, and the columns it leaves out take their defaults; any other stream fills
/// the table's columns in order.
#[tokio::test]
async fn ingest_fills_named_columns_and_defaults_the_rest() {
    let (executor, _dir) = open();
    for create in [
        "CREATE SEQUENCE serial START 100",
        "CREATE TABLE people (num BIGINT DEFAULT nextval('serial'), id BIGINT, name VARCHAR DEFAULT 'nobody')",
    ] {
        executor.update(Statement::new("mydb", create)).await.unwrap();
    }
    let reversed = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("id", DataType::Int64, false),
    ]));
    let rows = RecordBatch::try_new(
        Arc::clone(&reversed),
        vec![
            Arc::new(StringArray::from(vec![Some("a"), None])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ],
    )
    .unwrap();
    executor
        .ingest(target("people", IngestMode::Append), reversed, batches(vec![rows]))
        .await
        .unwrap();
    let only_id = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let rows = RecordBatch::try_new(Arc::clone(&only_id), vec![Arc::new(Int64Array::from(vec![3]))]).unwrap();
    executor
        .ingest(target("people", IngestMode::Append), only_id, batches(vec![rows]))
        .await
        .unwrap();
    // Fields named otherwise: by position, as before.
    let positional = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Int64, false),
        Field::new("c", DataType::Utf8, true),
    ]));
    let rows = RecordBatch::try_new(
        Arc::clone(&positional),
        vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(Int64Array::from(vec![4])),
            Arc::new(StringArray::from(vec![Some("d")])),
        ],
    )
    .unwrap();
    executor
        .ingest(target("people", IngestMode::Append), positional, batches(vec![rows]))
        .await
        .unwrap();

    let statement = Statement::new(
        "mydb",
        "SELECT string_agg(num || ':' || id || ':' || coalesce(name, 'NULL'), ' ' ORDER BY id) FROM people",
    );
    let batches: Vec<RecordBatch> = executor.query(statement).await.unwrap().try_collect().await.unwrap();
    let rows = array_value_to_string(batches[0].column(0), 0).unwrap();
    assert_eq!(rows, "100:1:a 101:2:NULL 102:3:nobody 7:4:d");
}

#[tokio::test]
async fn a_failing_stream_leaves_no_rows_behind() {
    let (executor, _dir) = open();
    let parts = stream::iter(vec![Ok(batch(0, 100)), Err("client went away".to_string())]);
    let failed = executor
        .ingest(target("half", IngestMode::Create), schema(), parts)
        .await
        .unwrap_err();
    assert!(failed.to_string().contains("client went away"), "{failed}");
    let missing = executor
        .query(Statement::new("mydb", "SELECT * FROM half"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "the create rolled back too");
}

/// DuckDB's threads insert the batches side by side: the rows still land in the
/// stream's order, across several row groups, with batches of every size.
#[tokio::test]
async fn ingest_keeps_the_streams_order_across_threads() {
    let (executor, _dir) = open();
    let mut parts = Vec::new();
    let mut from = 0;
    for rows in [65_536, 1, 0, 4_095, 100_000, 2_048, 70_000, 3] {
        parts.push(batch(from, rows));
        from += rows;
    }
    let rows = executor
        .ingest(target("ordered", IngestMode::Create), schema(), batches(parts))
        .await
        .unwrap();
    assert_eq!(rows, from as u64);
    // rowid is the position of a row in insertion order.
    let misplaced = scalar(
        &executor,
        Statement::new(
            "mydb",
            "SELECT count(*) FILTER (id <> rowid) || '/' || count(*) FROM ordered",
        ),
    )
    .await;
    assert_eq!(misplaced, format!("0/{from}"));
}

/// The table is found as DuckDB finds names (in any case), so its columns are too, and
/// rows fill them by name; a field name C cannot hold is refused, the server unharmed.
#[tokio::test]
async fn ingest_finds_the_table_in_any_case_and_refuses_unspeakable_names() {
    let (executor, _dir) = open();
    executor
        .update(Statement::new("mydb", "CREATE TABLE people (id BIGINT, name VARCHAR)"))
        .await
        .unwrap();
    let reversed = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("id", DataType::Int64, false),
    ]));
    let rows = RecordBatch::try_new(
        Arc::clone(&reversed),
        vec![
            Arc::new(StringArray::from(vec![Some("ann")])),
            Arc::new(Int64Array::from(vec![7])),
        ],
    )
    .unwrap();
    executor
        .ingest(target("PEOPLE", IngestMode::Append), reversed, batches(vec![rows]))
        .await
        .unwrap();
    assert_eq!(
        scalar(
            &executor,
            Statement::new("mydb", "SELECT id || ':' || name FROM people")
        )
        .await,
        "7:ann"
    );

    for name in ["na\0me", "point"] {
        let nested = DataType::Struct(vec![Field::new("x\0y", DataType::Int64, true)].into());
        let data_type = if name == "point" { nested } else { DataType::Int64 };
        let odd = Arc::new(Schema::new(vec![Field::new(name, data_type, true)]));
        let refused = executor
            .ingest(target("people", IngestMode::Append), odd, batches(vec![]))
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("NUL"), "{refused}");
    }
    assert_eq!(
        scalar(&executor, Statement::new("mydb", "SELECT count(*) FROM people")).await,
        "1"
    );

    // A user's macro of the same name as DuckDB's Arrow scan changes nothing.
    for name in ["arrow_scan", "arrow_scan_dumb"] {
        let sql = format!("CREATE MACRO {name}(a, b, c) AS TABLE SELECT -1 AS id, 'macro' AS name");
        executor.update(Statement::new("mydb", sql)).await.unwrap();
    }
    executor
        .ingest(
            target("people", IngestMode::Append),
            schema(),
            batches(vec![batch(100, 3)]),
        )
        .await
        .unwrap();
    assert_eq!(
        scalar(
            &executor,
            Statement::new("mydb", "SELECT count(*) || ',' || min(id) FROM people")
        )
        .await,
        "4,7"
    );
}

/// A batch whose types differ from the stream's first is refused before DuckDB reads
/// its buffers, and nothing of the ingest stays.
#[tokio::test]
async fn a_batch_of_another_schema_is_refused_and_nothing_stays() {
    let (executor, _dir) = open();
    let other = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let odd = RecordBatch::try_new(
        other,
        vec![
            Arc::new(StringArray::from(vec!["not a number"])),
            Arc::new(StringArray::from(vec![Some("x")])),
        ],
    )
    .unwrap();
    let refused = executor
        .ingest(
            target("mixed", IngestMode::Create),
            schema(),
            batches(vec![batch(0, 70_000), odd, batch(70_000, 10)]),
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("must have the schema of the first"),
        "{refused}"
    );
    assert_eq!(refused.kind(), ErrorKind::FailedPrecondition, "{refused}");
    let missing = executor
        .query(Statement::new("mydb", "SELECT * FROM mixed"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "the create rolled back too");
}

/// A client that resets its ingest half way (the request is dropped) must leave
/// no rows and no open transaction behind. With one connection, a transaction
/// left open on it would swallow the next statement: its insert would see the
/// cut-off rows and never be committed.
#[tokio::test]
async fn an_ingest_cut_off_half_way_leaves_nothing_open() {
    let dir = TempDir::new().unwrap();
    let config = ExecutorConfig {
        max_connections: 1,
        ..ExecutorConfig::new(dir.path(), vec!["mydb".into()])
    };
    let executor = Executor::open(config).unwrap();
    executor
        .update(Statement::new(
            "mydb",
            "CREATE TABLE cut (id BIGINT NOT NULL, name VARCHAR)",
        ))
        .await
        .unwrap();

    // Whether the appender sees its feed end before or after the interrupt of
    // the dropped request is a race; several rounds meet both orders.
    for round in 1..=5 {
        let (reached, waiting) = tokio::sync::oneshot::channel();
        let parts = stream::iter(vec![Ok::<_, String>(batch(0, 5000)), Ok(batch(5000, 5000))])
            .chain(stream::once(async move {
                let _ = reached.send(());
                std::future::pending::<Result<RecordBatch, String>>().await
            }))
            .boxed();
        tokio::select! {
            outcome = executor.ingest(target("cut", IngestMode::Append), schema(), parts) => {
                panic!("an endless ingest ended: {outcome:?}")
            }
            _ = waiting => {}
        }

        let statement = Statement::new("mydb", format!("INSERT INTO cut VALUES ({}, 'after')", -round));
        let inserted = tokio::time::timeout(Duration::from_secs(30), executor.update(statement)).await;
        assert_eq!(inserted.expect("the connection came back").unwrap(), Some(1));
        let counted = scalar(
            &executor,
            Statement::new("mydb", "SELECT count(*) || ',' || min(id) FROM cut"),
        )
        .await;
        assert_eq!(
            counted,
            format!("{round},{}", -round),
            "only the later inserts, committed"
        );
    }
    executor.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A client that stops sending holds DuckDB's worker threads (and, with
/// storage, every other write): its ingest is cut off once it has sent
/// nothing for the idle limit, keeps no rows, and leaves the connection clean.
/// A slow client whose every pause is shorter than the limit is not.
#[tokio::test]
async fn an_ingest_whose_client_goes_quiet_is_cut_off() {
    let dir = TempDir::new().unwrap();
    let limit = Duration::from_millis(500);
    let config = ExecutorConfig {
        max_connections: 1,
        ingest_idle_timeout: Some(limit),
        ..ExecutorConfig::new(dir.path(), vec!["mydb".into()])
    };
    let executor = Executor::open(config).unwrap();

    // Paused four times for 60% of the limit each: longer than the limit in all.
    let pause = limit * 6 / 10;
    let slow = stream::iter(0..5)
        .then(|part| async move {
            if part > 0 {
                tokio::time::sleep(pause).await;
            }
            Ok::<_, String>(batch(part * 100, 100))
        })
        .boxed();
    let started = std::time::Instant::now();
    let rows = executor
        .ingest(target("quiet", IngestMode::Create), schema(), slow)
        .await
        .unwrap();
    assert!(
        started.elapsed() > limit,
        "the slow client took {:?}",
        started.elapsed()
    );
    assert_eq!(rows, 500);

    let quiet = stream::iter(vec![Ok::<_, String>(batch(500, 5000))])
        .chain(stream::once(std::future::pending::<Result<RecordBatch, String>>()))
        .boxed();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        executor.ingest(target("quiet", IngestMode::Append), schema(), quiet),
    )
    .await
    .expect("a quiet client's ingest ends");
    let error = outcome.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeadlineExceeded, "{error}");
    assert!(error.to_string().contains("--ingest-idle-timeout"), "{error}");

    // The one connection is back, with no transaction open and no row kept.
    executor
        .update(Statement::new("mydb", "INSERT INTO quiet VALUES (-1, 'after')"))
        .await
        .unwrap();
    let counted = scalar(
        &executor,
        Statement::new("mydb", "SELECT count(*) || ',' || max(id) FROM quiet"),
    )
    .await;
    assert_eq!(counted, "501,499");

    // Rows that are another executor's query result (a join's small side,
    // shipped here) are waited for, however slow.
    let session = executor.open_session().unwrap();
    let mut scratch = target("scratch", IngestMode::Create);
    scratch.temporary = true;
    scratch.session_id = Some(session.id().to_string());
    scratch.from_query = true;
    let slower = stream::iter(0..2)
        .then(|part| async move {
            if part > 0 {
                tokio::time::sleep(limit * 2).await;
            }
            Ok::<_, String>(batch(part * 10, 10))
        })
        .boxed();
    let rows = executor.ingest(scratch, schema(), slower).await.unwrap();
    assert_eq!(rows, 20);
    drop(session);
    executor.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn ingest_joins_an_open_transaction_and_temporary_tables() {
    let (executor, _dir) = open();
    let session = executor.open_session().unwrap();
    executor.begin(session.id(), false).await.unwrap();
    let mut inside = target("t", IngestMode::Create);
    inside.session_id = Some(session.id().to_string());
    inside.in_transaction = true;
    executor
        .ingest(inside, schema(), batches(vec![batch(0, 10)]))
        .await
        .unwrap();
    executor.rollback(session.id()).await.unwrap();
    let missing = executor
        .query(Statement::new("mydb", "SELECT * FROM t"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);

    let mut temporary = target("scratch", IngestMode::Create);
    temporary.temporary = true;
    let refused = executor
        .ingest(temporary.clone(), schema(), batches(vec![]))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::FailedPrecondition);
    temporary.session_id = Some(session.id().to_string());
    executor
        .ingest(temporary, schema(), batches(vec![batch(0, 7)]))
        .await
        .unwrap();
    assert_eq!(
        scalar(&executor, in_session("SELECT count(*) FROM scratch", session.id())).await,
        "7"
    );
    let hidden = executor
        .query(Statement::new("mydb", "SELECT * FROM scratch"))
        .await
        .unwrap_err();
    assert_eq!(hidden.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn cancel_by_query_id_stops_a_running_query_and_one_not_started() {
    let (executor, _dir) = open();
    let mut statement = Statement::new("mydb", "SELECT count(*) FROM range(10000000000) a");
    statement.query_id = Some("q-running".into());
    let mut rows = executor.query(statement).await.unwrap();
    let canceller = async {
        // Poll until the query is registered as running, then cancel it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !executor.cancel("q-running") {
            assert!(tokio::time::Instant::now() < deadline, "the query never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (outcome, ()) = tokio::join!(tokio::time::timeout(Duration::from_secs(30), rows.next()), canceller);
    let error = outcome.expect("cancel stops the query").expect("an item").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");

    assert!(!executor.cancel("q-later"), "not running yet");
    let mut later = Statement::new("mydb", "SELECT 1");
    later.query_id = Some("q-later".into());
    let refused = executor.query(later).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Cancelled);
}

/// The first error of `statement`, whether it fails to start or midway.
async fn failure(executor: &Executor, statement: Statement) -> openduck_executor::Error {
    let stream = match executor.query(statement).await {
        Ok(stream) => stream,
        Err(error) => return error,
    };
    stream
        .try_collect::<Vec<RecordBatch>>()
        .await
        .map(|_| ())
        .expect_err("the statement succeeded")
}

/// A statement that returns more than its result limit fails, and nothing
/// it did stands: its own transaction rolls back, and a client's
/// transaction it ran in can no longer commit.
#[tokio::test]
async fn a_result_beyond_its_limit_undoes_the_statement() {
    let (executor, _dir) = open();
    executor
        .update(Statement::new("mydb", "CREATE TABLE t (x BIGINT)"))
        .await
        .unwrap();
    let count = || scalar(&executor, Statement::new("mydb", "SELECT count(*) FROM t"));
    let limited = |sql: &str, session: Option<&str>| {
        let mut statement = Statement::new("mydb", sql);
        statement.session_id = session.map(str::to_string);
        statement.result_limit = Some(64 << 10);
        statement
    };
    let large = "INSERT INTO t SELECT range FROM range(100000) RETURNING x";
    // Over the limit only in the last batch, sent when the statement ends.
    let just_over = "INSERT INTO t SELECT range FROM range(10000) RETURNING x";

    for sql in [large, just_over] {
        let error = failure(&executor, limited(sql, None)).await;
        assert_eq!(error.kind(), ErrorKind::ResourceExhausted);
        assert!(error.to_string().contains("so it was undone"), "{error}");
        assert_eq!(count().await, "0", "{sql}");
    }

    // Within the limit, it returns its rows and commits.
    let small: Vec<RecordBatch> = executor
        .query(limited("INSERT INTO t VALUES (7) RETURNING x", None))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(small.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    assert_eq!(count().await, "1");

    // In a text of several statements, those before the last commit on
    // their own, as they do when the last fails in any other way.
    let text = format!("INSERT INTO t VALUES (8); {just_over}");
    let error = failure(&executor, limited(&text, None)).await;
    assert_eq!(error.kind(), ErrorKind::ResourceExhausted);
    assert_eq!(count().await, "2");

    // In a client's transaction: the statement fails, and so does COMMIT.
    let session = executor.open_session().unwrap();
    for sql in [large, just_over] {
        executor.begin(session.id(), false).await.unwrap();
        executor
            .update(in_session("INSERT INTO t VALUES (9)", session.id()))
            .await
            .unwrap();
        let error = failure(&executor, limited(sql, Some(session.id()))).await;
        assert_eq!(error.kind(), ErrorKind::ResourceExhausted);
        let refused = executor.commit(session.id()).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Aborted, "{refused}");
        assert_eq!(count().await, "2", "{sql}");
    }

    // A query beyond the limit fails alone: only writes are undone.
    executor.begin(session.id(), false).await.unwrap();
    executor
        .update(in_session("INSERT INTO t VALUES (10)", session.id()))
        .await
        .unwrap();
    let error = failure(
        &executor,
        limited("SELECT range FROM range(100000)", Some(session.id())),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::ResourceExhausted);
    executor.commit(session.id()).await.unwrap();
    assert_eq!(count().await, "3");
}
