//! A client connection runs at most so many calls at once: one more is
//! refused with ResourceExhausted until a stream ends.

use std::time::{Duration, Instant};

use arrow_flight::sql::CommandStatementQuery;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::fixture::{Options, TestServer};

/// Far more rows than the connection's buffers hold: its stream stays open
/// until the client reads it.
const ENDLESS: &str = "SELECT range FROM range(100000000)";

async fn open_stream(server: &TestServer) -> tonic::Streaming<arrow_flight::FlightData> {
    let info = server
        .info(CommandStatementQuery {
            query: ENDLESS.into(),
            transaction_id: None,
        })
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    server
        .flight()
        .do_get(server.request(ticket))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_connection_runs_at_most_its_bound_of_calls() {
    let server = TestServer::start_with(Options {
        max_streams_per_connection: 2,
        ..Options::default()
    })
    .await;
    let first = open_stream(&server).await;
    let second = open_stream(&server).await;

    let refused = server.query("SELECT 1").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    assert!(refused.message().contains("--max-streams-per-connection"), "{refused}");

    // Health checks are never refused.
    let health = HealthClient::new(server.channel())
        .check(HealthCheckRequest { service: String::new() })
        .await;
    assert!(health.is_ok(), "{health:?}");

    // A stream dropped by its client gives its call back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match server.query("SELECT 42").await {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("the call was not given back: {status}"),
        }
    }
    drop(second);
}
