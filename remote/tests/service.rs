//! The executor's Flight service on a real port, called by the
//! coordinator's client: what runs, and what is refused.

mod common;

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use openduck_api::{Error, ErrorKind, ExecutorApi, Statement, TableName};
use openduck_proto as pb;
use openduck_remote::{serve_executor, Listening, RemoteExecutor, RunningExecutor, TicketKind, TicketSigner};
use tempfile::TempDir;
use tokio::net::TcpListener;

const SECRET: &[u8] = b"the cluster secret of this test";

struct Served {
    endpoint: String,
    _server: RunningExecutor,
    _dir: TempDir,
}

async fn serve() -> Served {
    let (executor, dir) = common::open_executor("exec-test").await;
    let signer = TicketSigner::new(SECRET, Duration::from_secs(60));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve_executor(executor, signer, Listening::plain(listener, 16 << 20))
        .await
        .unwrap();
    Served {
        endpoint: format!("grpc://{}", server.local_addr()),
        _server: server,
        _dir: dir,
    }
}

fn client(served: &Served, id: &str, signer: TicketSigner) -> RemoteExecutor {
    RemoteExecutor::connect(id, &served.endpoint, signer, 16 << 20, None).unwrap()
}

fn kind(error: Error) -> ErrorKind {
    error.kind()
}

/// The error of a query that must fail before any row arrives.
async fn query_error(remote: &RemoteExecutor, statement: &Statement) -> Error {
    match remote.query(statement.clone()).await {
        Ok(_) => panic!("the query ran"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn runs_what_the_cluster_signed() {
    let served = serve().await;
    let remote = client(&served, "exec-test", TicketSigner::new(SECRET, Duration::from_secs(60)));
    let rows = remote
        .query(Statement::new("db", "SELECT range AS i FROM range(5000)"))
        .await
        .unwrap();
    let batches: Vec<_> = rows.batches.try_collect().await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5000);
    assert_eq!(
        remote
            .update(Statement::new("db", "CREATE TABLE t AS SELECT 1 AS x"))
            .await
            .unwrap(),
        None
    );
    let description = remote.describe(&Statement::new("db", "SELECT x FROM t")).await.unwrap();
    assert!(description.is_query);
}

#[tokio::test]
async fn refuses_other_clusters_and_expired_tickets() {
    let served = serve().await;
    let statement = Statement::new("db", "SELECT 1");
    let foreign = client(
        &served,
        "exec-test",
        TicketSigner::new(b"another secret".to_vec(), Duration::from_secs(60)),
    );
    assert_eq!(
        kind(query_error(&foreign, &statement).await),
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        kind(foreign.describe(&statement).await.unwrap_err()),
        ErrorKind::Unauthenticated
    );

    let expired = client(&served, "exec-test", TicketSigner::new(SECRET, Duration::ZERO));
    assert_eq!(
        kind(query_error(&expired, &statement).await),
        ErrorKind::Unauthenticated
    );
    assert_eq!(kind(expired.cancel("q").await.unwrap_err()), ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn refuses_a_ticket_for_another_executor() {
    let served = serve().await;
    let elsewhere = client(
        &served,
        "exec-other",
        TicketSigner::new(SECRET, Duration::from_secs(60)),
    );
    let error = query_error(&elsewhere, &Statement::new("db", "SELECT 1")).await;
    assert_eq!(kind(error), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn refuses_tickets_only_a_coordinator_redeems() {
    let served = serve().await;
    let signer = TicketSigner::new(SECRET, Duration::from_secs(60));
    let remote = client(&served, "exec-test", signer.clone());
    let held = TicketKind::Held(pb::HeldResult { query_id: "q1".into() });
    let distributed = TicketKind::Distributed(pb::DistributedQuery {
        query_id: "q2".into(),
        database: "db".into(),
        sql: "SELECT 1".into(),
        ..Default::default()
    });
    for ticket in [held, distributed] {
        let error = match remote
            .redeem(&signer.sign(ticket), Statement::new("db", "SELECT 1"))
            .await
        {
            Ok(_) => panic!("an executor redeemed a coordinator's ticket"),
            Err(error) => error,
        };
        assert_eq!(kind(error), ErrorKind::InvalidArgument);
    }
}

#[tokio::test]
async fn an_unreachable_executor_is_unavailable_and_named() {
    let remote = RemoteExecutor::connect(
        "exec-gone",
        "grpc://127.0.0.1:1",
        TicketSigner::new(SECRET, Duration::from_secs(60)),
        1 << 20,
        None,
    )
    .unwrap();
    let error = query_error(&remote, &Statement::new("db", "SELECT 1")).await;
    assert!(error.to_string().contains("exec-gone"), "{error}");
    assert_eq!(kind(error), ErrorKind::Unavailable);
}

/// The rows of `sql`'s single BIGINT column.
async fn numbers(remote: &RemoteExecutor, mut statement: Statement, sql: &str) -> Vec<i64> {
    statement.sql = sql.into();
    let rows = remote.query(statement).await.unwrap();
    let batches: Vec<_> = rows.batches.try_collect().await.unwrap();
    batches
        .iter()
        .flat_map(|batch| batch.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

#[tokio::test]
async fn a_session_keeps_its_transaction_until_it_is_closed() {
    let served = serve().await;
    let remote = client(&served, "exec-test", TicketSigner::new(SECRET, Duration::from_secs(60)));
    remote
        .update(Statement::new("db", "CREATE TABLE t (x BIGINT)"))
        .await
        .unwrap();
    let session = remote.open_session().await.unwrap();
    let in_session = Statement {
        session_id: Some(session.clone()),
        ..Statement::new("db", "")
    };
    remote.begin(&session, false).await.unwrap();
    let insert = Statement {
        sql: "INSERT INTO t VALUES (1), (2)".into(),
        ..in_session.clone()
    };
    assert_eq!(remote.update(insert).await.unwrap(), Some(2));
    let count = "SELECT count(*)::BIGINT FROM t";
    assert_eq!(numbers(&remote, in_session.clone(), count).await, [2]);
    assert_eq!(numbers(&remote, Statement::new("db", ""), count).await, [0]);

    // Closing the session rolls its open transaction back, and the id is gone.
    remote.close_session(&session).await.unwrap();
    assert_eq!(numbers(&remote, Statement::new("db", ""), count).await, [0]);
    let error = remote.commit(&session).await.unwrap_err();
    assert_eq!(kind(error), ErrorKind::FailedPrecondition);
}

#[tokio::test]
async fn measures_a_table_over_the_wire() {
    let served = serve().await;
    let remote = client(&served, "exec-test", TicketSigner::new(SECRET, Duration::from_secs(60)));
    let create = r#"CREATE TABLE "Odd Table" AS SELECT range AS id,
        CASE WHEN range % 4 = 0 THEN NULL ELSE 'v' || (range % 10) END AS "we""ird",
        NULL::INTEGER AS nothing
        FROM range(1000)"#;
    remote.update(Statement::new("db", create)).await.unwrap();

    let statistics = remote
        .table_statistics(&TableName::new("db", "main", "Odd Table"))
        .await
        .unwrap();
    assert_eq!(statistics.rows, 1000);
    let names: Vec<_> = statistics.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "we\"ird", "nothing"]);
    let [id, label, nothing] = &statistics.columns[..] else {
        unreachable!()
    };
    assert_eq!(
        (id.null_count, id.min.as_deref(), id.max.as_deref()),
        (0, Some("0"), Some("999"))
    );
    // An estimate (HyperLogLog): the right order of magnitude.
    assert!((500..=2000).contains(&id.distinct_estimate), "{id:?}");
    assert_eq!(
        (label.null_count, label.min.as_deref(), label.max.as_deref()),
        (250, Some("v0"), Some("v9"))
    );
    assert!((5..=20).contains(&label.distinct_estimate), "{label:?}");
    assert_eq!((nothing.null_count, nothing.distinct_estimate), (1000, 0));
    assert_eq!((nothing.min.as_deref(), nothing.max.as_deref()), (None, None));

    let error = remote
        .table_statistics(&TableName::new("db", "main", "missing"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.to_string().contains("db.main.missing"), "{error}");
}

#[tokio::test]
async fn answers_health_checks() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let served = serve().await;
    let endpoint = served.endpoint.replacen("grpc://", "http://", 1);
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "arrow.flight.protocol.FlightService"] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let answer = health.check(request).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "service {service:?}");
    }
}

/// `sql` run in session `id`.
fn in_session(id: &str, sql: &str) -> Statement {
    let mut statement = Statement::new("db", sql);
    statement.session_id = Some(id.to_string());
    statement
}

#[tokio::test]
async fn sessions_close_with_the_last_coordinator_connection_that_named_them() {
    let served = serve().await;
    let signer = || TicketSigner::new(SECRET, Duration::from_secs(60));
    let observer = client(&served, "exec-test", signer());
    observer
        .update(Statement::new("db", "CREATE TABLE t AS SELECT 1 AS x"))
        .await
        .unwrap();

    // Opened over a connection that then closes (a coordinator killed) with
    // a write in its transaction: the session closes and the write is rolled
    // back, so the row is free again.
    let dying = client(&served, "exec-test", signer());
    let orphan = dying.open_session().await.unwrap();
    dying.begin(&orphan, false).await.unwrap();
    dying.update(in_session(&orphan, "UPDATE t SET x = 2")).await.unwrap();
    let write = || observer.update(Statement::new("db", "UPDATE t SET x = 3"));
    assert!(write().await.is_err(), "the open transaction holds the row");
    drop(dying);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while write().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session outlived its connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Opened over one connection and used over another (a coordinator whose
    // channel reconnected): the first one closing leaves it open.
    let first = client(&served, "exec-test", signer());
    let moved = first.open_session().await.unwrap();
    let second = client(&served, "exec-test", signer());
    second.begin(&moved, false).await.unwrap();
    second.update(in_session(&moved, "UPDATE t SET x = 4")).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.commit(&moved).await.unwrap();
    let rows = observer.query(Statement::new("db", "SELECT x FROM t")).await.unwrap();
    let batches: Vec<_> = rows.batches.try_collect().await.unwrap();
    assert_eq!(
        batches[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        4
    );
}
