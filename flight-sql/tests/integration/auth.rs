//! Token authentication: Bearer headers, Basic handshake, loopback-only without a token.

use std::sync::Arc;
use std::time::Duration;

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::FlightDescriptor;
use openduck_coordinator::Coordinator;
use openduck_executor::{Executor, ExecutorConfig};
use openduck_flight_sql::{serve, Error, ServerConfig};
use prost::Message;
use tonic::{Code, Request};

use crate::fixture::{total_rows, Options, TestServer};

async fn with_token() -> TestServer {
    TestServer::start_with(Options {
        token: Some("s3cret".into()),
        ..Options::default()
    })
    .await
}

fn select_one() -> FlightDescriptor {
    FlightDescriptor::new_cmd(
        CommandStatementQuery {
            query: "SELECT 1".into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec(),
    )
}

#[tokio::test]
async fn bearer_token_is_required_and_checked() {
    let server = with_token().await;
    assert_eq!(total_rows(&server.query("SELECT 1").await.unwrap()), 1);

    let anonymous = server
        .flight()
        .get_flight_info(Request::new(select_one()))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let mut wrong = Request::new(select_one());
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer guess".parse().unwrap());
    let status = server.flight().get_flight_info(wrong).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains("s3cret"));
}

#[tokio::test]
async fn handshake_with_basic_credentials_returns_a_bearer_token() {
    let server = with_token().await;
    let mut client = FlightSqlServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr()))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    assert!(client.handshake("analyst", "wrong").await.is_err());
    client.handshake("analyst", "s3cret").await.unwrap();
    assert_eq!(client.token().map(String::as_str), Some("s3cret"));
    let info = client.execute("SELECT 42".into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = futures::TryStreamExt::try_collect(client.do_get(ticket).await.unwrap())
        .await
        .unwrap();
    assert_eq!(total_rows(&batches), 1);
}

#[tokio::test]
async fn refuses_non_loopback_addresses_without_a_token() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = ExecutorConfig::new(dir.path(), vec!["mydb".into()]);
    let executor = tokio::task::spawn_blocking(move || Executor::open(config))
        .await
        .unwrap()
        .unwrap();
    let coordinator = Arc::new(Coordinator::embedded(Arc::new(executor), Duration::from_secs(60)));
    let refused = serve(
        Arc::clone(&coordinator),
        ServerConfig {
            listen: "0.0.0.0:0".into(),
            token: None,
            ..ServerConfig::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, Error::Config(_)));
    assert!(refused.to_string().contains("--token"), "{refused}");

    let allowed = serve(
        coordinator,
        ServerConfig {
            listen: "0.0.0.0:0".into(),
            token: Some("t".into()),
            ..ServerConfig::default()
        },
    )
    .await
    .unwrap();
    allowed.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_checks_need_no_token_and_answer_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let server = with_token().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr()))
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
    let unknown = HealthCheckRequest {
        service: "no.such.Service".into(),
    };
    assert_eq!(health.check(unknown).await.unwrap_err().code(), Code::NotFound);
    // The token still guards everything else.
    let anonymous = server.flight().get_flight_info(Request::new(select_one())).await;
    assert_eq!(anonymous.unwrap_err().code(), Code::Unauthenticated);
}
