//! Two executors on real ports: one fetches a fragment from the other,
//! asked by a coordinator's client, straight into a table of its own.

mod common;

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use openduck_api::{ErrorKind, ExecutorApi, IngestMode, IngestTarget, Source, Statement};
use openduck_remote::{serve_executor, Listening, RemoteExecutor, RunningExecutor, TicketSigner};
use tempfile::TempDir;
use tokio::net::TcpListener;

const SECRET: &[u8] = b"the cluster secret of this test";

fn signer() -> TicketSigner {
    TicketSigner::new(SECRET, Duration::from_secs(60))
}

struct Served {
    client: RemoteExecutor,
    _server: RunningExecutor,
    _dir: TempDir,
}

/// Executor `id` on a port, and a coordinator's client for it.
async fn serve(id: &str) -> Served {
    let (executor, dir) = common::open_executor(id).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve_executor(executor, signer(), Listening::plain(listener, 16 << 20))
        .await
        .unwrap();
    let endpoint = format!("grpc://{}", server.local_addr());
    Served {
        client: RemoteExecutor::connect(id, &endpoint, signer(), 16 << 20, None).unwrap(),
        _server: server,
        _dir: dir,
    }
}

/// A temporary table `shipped` in `session`.
fn shipped_into(session: &str) -> IngestTarget {
    IngestTarget {
        database: "db".into(),
        schema: None,
        table: "shipped".into(),
        mode: IngestMode::Create,
        temporary: true,
        session_id: Some(session.into()),
        in_transaction: false,
        from_query: false,
    }
}

/// The single BIGINT row of `sql`, run in `session`.
async fn number(executor: &RemoteExecutor, session: &str, sql: &str) -> Result<Vec<i64>, ErrorKind> {
    let statement = Statement {
        session_id: Some(session.into()),
        ..Statement::new("db", sql)
    };
    let rows = executor.query(statement).await.map_err(|error| error.kind())?;
    let batches: Vec<_> = rows.batches.try_collect().await.map_err(|error| error.kind())?;
    Ok(batches
        .iter()
        .flat_map(|batch| batch.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect())
}

#[tokio::test]
async fn an_executor_fetches_a_fragment_from_another_into_its_session() {
    let (a, b) = (serve("exec-a").await, serve("exec-b").await);
    a.client
        .update(Statement::new(
            "db",
            "CREATE TABLE t AS SELECT range AS x FROM range(100000)",
        ))
        .await
        .unwrap();
    let source = a
        .client
        .source(&Statement::new("db", "SELECT x FROM t WHERE x % 3 = 0"))
        .unwrap()
        .unwrap();
    assert_eq!(source.executor, "exec-a");

    let session = b.client.open_session().await.unwrap();
    let transferred = b.client.ingest_from(shipped_into(&session), source).await.unwrap();
    assert_eq!(transferred.rows, 33_334);
    assert!(transferred.bytes >= 33_334 * 8, "{transferred:?}");
    let sum = "SELECT sum(x)::BIGINT FROM temp.main.shipped";
    assert_eq!(
        number(&b.client, &session, sum).await,
        Ok(vec![(0..100_000).step_by(3).sum()])
    );
    // The table is the session's own.
    let other = b.client.open_session().await.unwrap();
    assert_eq!(number(&b.client, &other, sum).await, Err(ErrorKind::NotFound));
}

#[tokio::test]
async fn a_source_that_fails_midway_appends_nothing_and_says_why() {
    let (a, b) = (serve("exec-a").await, serve("exec-b").await);
    let failing = "SELECT CASE WHEN range < 150000 THEN range ELSE error('the source broke') END::BIGINT AS x \
                   FROM range(200000)";
    let source = a.client.source(&Statement::new("db", failing)).unwrap().unwrap();
    let session = b.client.open_session().await.unwrap();
    let error = b.client.ingest_from(shipped_into(&session), source).await.unwrap_err();
    // DuckDB 1.5.2 sometimes loses a worker thread's error to its own
    // interrupt flag; the source then says so (see the flight-sql crate's
    // an_error_in_the_middle_of_a_stream_is_not_a_short_result). Either way
    // the transfer fails, naming the source, and appends nothing.
    let message = error.to_string();
    let lost_in_duckdb = message.contains("its own error was lost in a race inside DuckDB");
    assert!(
        message.contains("exec-a") && (message.contains("the source broke") || lost_in_duckdb),
        "{error}"
    );
    let count = "SELECT count(*)::BIGINT FROM temp.main.shipped";
    assert_eq!(number(&b.client, &session, count).await, Err(ErrorKind::NotFound));
    // The session goes on: the same table can be filled again.
    let source = a
        .client
        .source(&Statement::new("db", "SELECT range AS x FROM range(10)"))
        .unwrap()
        .unwrap();
    b.client.ingest_from(shipped_into(&session), source).await.unwrap();
    assert_eq!(number(&b.client, &session, count).await, Ok(vec![10]));
}

#[tokio::test]
async fn a_ticket_another_cluster_signed_is_refused_by_the_source() {
    let (a, b) = (serve("exec-a").await, serve("exec-b").await);
    let mut source = a
        .client
        .source(&Statement::new("db", "SELECT 1::BIGINT"))
        .unwrap()
        .unwrap();
    let forger = RemoteExecutor::connect(
        "exec-a",
        &source.endpoint,
        TicketSigner::new(b"another secret", Duration::from_secs(60)),
        16 << 20,
        None,
    )
    .unwrap();
    source.ticket = forger
        .source(&Statement::new("db", "SELECT 1::BIGINT"))
        .unwrap()
        .unwrap()
        .ticket;
    let session = b.client.open_session().await.unwrap();
    let error = b.client.ingest_from(shipped_into(&session), source).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
}

/// Why `receiver` does not fetch from executor `executor` at `endpoint`.
async fn fetch_error(receiver: &Served, executor: &str, endpoint: String) -> openduck_api::Error {
    let ticket = receiver
        .client
        .source(&Statement::new("db", "SELECT 1"))
        .unwrap()
        .unwrap()
        .ticket;
    let source = Source {
        executor: executor.into(),
        endpoint,
        ticket,
    };
    let session = receiver.client.open_session().await.unwrap();
    receiver
        .client
        .ingest_from(shipped_into(&session), source)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_source_that_is_gone_is_unavailable_and_named() {
    let b = serve("exec-b").await;
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("grpc://{}", closed.local_addr().unwrap());
    drop(closed);
    let error = fetch_error(&b, "exec-gone", endpoint).await;
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.to_string().contains("exec-gone"), "{error}");
}

#[tokio::test]
async fn an_executor_that_cannot_check_its_peers_tls_does_not_fetch() {
    // It serves plain gRPC and was given no CA: a peer serving TLS is out of
    // its reach, and it says so with the code that has the coordinator move
    // the rows itself.
    let b = serve("exec-b").await;
    let error = fetch_error(&b, "exec-a", "grpc+tls://127.0.0.1:1".into()).await;
    assert_eq!(error.kind(), ErrorKind::Unimplemented, "{error}");
}
