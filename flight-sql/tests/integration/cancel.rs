//! A query dropped half way stops and gives its connection back.

use std::time::Duration;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::CommandStatementQuery;
use futures::{StreamExt, TryStreamExt};

use crate::fixture::{Options, TestServer};

async fn start(server: &TestServer, sql: &str) -> FlightRecordBatchStream {
    let info = server
        .info(CommandStatementQuery {
            query: sql.into(),
            transaction_id: None,
        })
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stream = server
        .flight()
        .do_get(server.request(ticket))
        .await
        .unwrap()
        .into_inner();
    FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from))
}

/// The server has two connections. Each abandoned query below would keep one
/// busy for hours if dropping its stream did not interrupt DuckDB: the
/// aggregation produces nothing until it has read 10^12 rows, so only an
/// interrupt frees the connection. Without interrupts the next statement waits
/// for a connection forever, and the deadline fails the test.
#[tokio::test]
async fn dropping_a_stream_interrupts_the_query() {
    let server = TestServer::start_with(Options {
        max_connections: 2,
        ..Options::default()
    })
    .await;
    let abandon_and_ask_again = abandon_queries_then_ask(&server);
    let answer = tokio::time::timeout(Duration::from_secs(30), abandon_and_ask_again).await;
    assert_eq!(answer.expect("the connections were free again"), "42");
}

async fn abandon_queries_then_ask(server: &TestServer) -> String {
    for _ in 0..3 {
        let unread = start(
            server,
            "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b",
        )
        .await;
        drop(unread);

        let mut streaming = start(
            server,
            "SELECT a.range * b.range AS x FROM range(100000) a, range(100000) b",
        )
        .await;
        let first = streaming.next().await.expect("a first batch").unwrap();
        assert!(first.num_rows() > 0);
        drop(streaming);
    }
    server.scalar("SELECT 42").await
}

/// CancelFlightInfo stops a query that is streaming: the aggregation below
/// needs minutes, so only the cancel ends the stream before the deadline.
#[tokio::test]
async fn cancel_flight_info_stops_a_running_query() {
    use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
    use prost::Message;

    let server = TestServer::start().await;
    let info = server
        .info(CommandStatementQuery {
            query: "SELECT sum(a.range * b.range) FROM range(10000000) a, range(1000000) b".into(),
            transaction_id: None,
        })
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stream = server
        .flight()
        .do_get(server.request(ticket))
        .await
        .unwrap()
        .into_inner();
    let mut rows = FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from));

    let cancel = CancelFlightInfoRequest { info: Some(info) }.encode_to_vec();
    let mut results = server
        .flight()
        .do_action(server.request(Action::new("CancelFlightInfo", cancel)))
        .await
        .unwrap()
        .into_inner();
    let result = CancelFlightInfoResult::decode(results.message().await.unwrap().unwrap().body).unwrap();
    assert_eq!(result.status, CancelStatus::Cancelled as i32);

    let ended = tokio::time::timeout(Duration::from_secs(30), rows.next()).await;
    let error = ended.expect("the stream ended soon").expect("an item").unwrap_err();
    let status = crate::fixture::to_status(error);
    assert_eq!(status.code(), tonic::Code::Cancelled, "{status}");
    // The connection is free again.
    assert_eq!(server.scalar("SELECT 42").await, "42");
}

/// The older CancelQuery action cancels too, and answers for a statement
/// that already ran that it cannot be cancelled.
#[tokio::test]
async fn cancel_query_action() {
    use arrow_flight::sql::{ActionCancelQueryRequest, ActionCancelQueryResult, Any, ProstMessageExt};
    use arrow_flight::Action;
    use prost::Message;

    let server = TestServer::start().await;
    let cancel = |info: arrow_flight::FlightInfo| {
        let request = ActionCancelQueryRequest {
            info: info.encode_to_vec().into(),
        };
        let server = &server;
        async move {
            let mut results = server
                .flight()
                .do_action(server.request(Action::new("CancelQuery", request.as_any().encode_to_vec())))
                .await
                .unwrap()
                .into_inner();
            let body = results.message().await.unwrap().unwrap().body;
            Any::decode(body)
                .unwrap()
                .unpack::<ActionCancelQueryResult>()
                .unwrap()
                .unwrap()
                .result
        }
    };
    let query = |sql: &str| CommandStatementQuery {
        query: sql.into(),
        transaction_id: None,
    };
    let info = server.info(query("SELECT 42")).await.unwrap();
    assert_eq!(cancel(info.clone()).await, 1, "CANCEL_RESULT_CANCELLED");
    let refused = server.fetch(info).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Cancelled,
        "a cancelled ticket does not run: {refused}"
    );
    let ddl = server.info(query("CREATE TABLE t (x INTEGER)")).await.unwrap();
    assert_eq!(cancel(ddl).await, 3, "CANCEL_RESULT_NOT_CANCELLABLE");
}
