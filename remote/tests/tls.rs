//! TLS between a coordinator and an executor on a real port: what a
//! coordinator with the cluster's certificates runs, and what a plain, an
//! anonymous or a forged peer is refused.

mod common;

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::Empty;
use futures::TryStreamExt;
use openduck_api::{ErrorKind, ExecutorApi, Statement};
use openduck_remote::{
    serve_executor, ClientTls, Error, Listening, RemoteExecutor, RunningExecutor, ServerTls, TicketSigner,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const SECRET: &[u8] = b"the cluster secret of this test";

/// A certificate authority of a test.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Authority {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` and its key, both PEM.
    fn certify(&self, names: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let params = CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    }
}

struct Served {
    address: String,
    /// Where it answers health checks in plain gRPC.
    health: String,
    _server: RunningExecutor,
    _dir: TempDir,
}

/// An executor serving TLS with a certificate of `authority` for
/// 127.0.0.1, requiring client certificates of `client_ca` when given.
async fn serve(authority: &Authority, client_ca: Option<&Authority>) -> Served {
    serve_as(authority, client_ca, &["127.0.0.1"]).await
}

/// The same, with a certificate for `names`.
async fn serve_as(authority: &Authority, client_ca: Option<&Authority>, names: &[&str]) -> Served {
    let (executor, dir) = common::open_executor("exec-tls").await;
    let (cert, key) = authority.certify(names);
    let tls = ServerTls {
        cert,
        key,
        client_ca: client_ca.map(|ca| ca.pem.clone().into_bytes()),
    };
    tls.check().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health_address = health.local_addr().unwrap().to_string();
    let signer = TicketSigner::new(SECRET, Duration::from_secs(60));
    let listening = Listening {
        tls: Some(tls),
        health: Some(health),
        ..Listening::plain(listener, 16 << 20)
    };
    let server = serve_executor(executor, signer, listening).await.unwrap();
    Served {
        address: server.local_addr().to_string(),
        health: health_address,
        _server: server,
        _dir: dir,
    }
}

/// How a coordinator reaches executors certified by `trusted`, presenting
/// a certificate of `presents` when given.
fn tls(trusted: &Authority, presents: Option<&Authority>) -> ClientTls {
    ClientTls {
        ca: trusted.pem.clone().into_bytes(),
        identity: presents.map(|authority| authority.certify(&["coordinator"])),
    }
}

fn connect(endpoint: &str, tls: Option<&ClientTls>) -> Result<RemoteExecutor, Error> {
    RemoteExecutor::connect(
        "exec-tls",
        endpoint,
        TicketSigner::new(SECRET, Duration::from_secs(60)),
        16 << 20,
        tls,
    )
}

/// `SELECT 42` through `remote`: its one value, or the error's kind.
async fn answer(remote: &RemoteExecutor) -> Result<i32, ErrorKind> {
    let rows = remote
        .query(Statement::new("db", "SELECT 42 AS answer"))
        .await
        .map_err(|error| error.kind())?;
    let batches: Vec<_> = rows.batches.try_collect().await.map_err(|error| error.kind())?;
    Ok(batches[0].column(0).as_primitive::<Int32Type>().value(0))
}

#[tokio::test]
async fn an_executor_serving_tls_answers_only_peers_that_check_its_certificate() {
    let cluster = Authority::new();
    let served = serve(&cluster, None).await;
    let secure = format!("grpc+tls://{}", served.address);

    let trusting = connect(&secure, Some(&tls(&cluster, None))).unwrap();
    assert_eq!(answer(&trusting).await, Ok(42));

    // A certificate no CA of the cluster signed: the handshake fails.
    let forged = Authority::new();
    let fooled = connect(&secure, Some(&tls(&forged, None))).unwrap();
    assert_eq!(answer(&fooled).await, Err(ErrorKind::Unavailable));

    // Plain gRPC to a TLS port: refused at the handshake, nothing runs
    // (the client reads the server's TLS alert as a broken HTTP/2 frame).
    let plain = connect(&format!("grpc://{}", served.address), None).unwrap();
    assert!(answer(&plain).await.is_err());

    // Probes that cannot speak TLS ask the plain health port, which
    // answers health checks and nothing else.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", served.health))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let flight = FlightServiceClient::new(channel).list_actions(Empty {}).await;
    assert_eq!(flight.unwrap_err().code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let cluster = Authority::new();
    let served = serve_as(&cluster, None, &["exec-1.openduck.svc"]).await;
    let remote = connect(&format!("grpc+tls://{}", served.address), Some(&tls(&cluster, None))).unwrap();
    assert_eq!(answer(&remote).await, Err(ErrorKind::Unavailable));
}

#[test]
fn certificates_that_cannot_serve_are_refused_at_start() {
    let cluster = Authority::new();
    let (cert, key) = cluster.certify(&["127.0.0.1"]);
    let server = |cert: &[u8], key: &[u8], client_ca: Option<&[u8]>| ServerTls {
        cert: cert.to_vec(),
        key: key.to_vec(),
        client_ca: client_ca.map(<[u8]>::to_vec),
    };
    assert!(server(&cert, &key, Some(cluster.pem.as_bytes())).check().is_ok());
    let refusal = |tls: ServerTls| tls.check().unwrap_err().to_string();
    assert!(refusal(server(b"", &key, None)).contains("not a PEM certificate"));
    assert!(refusal(server(&cert, b"not a key", None)).contains("cannot serve TLS"));
    assert!(refusal(server(&cert, &key, Some(b"garbage"))).contains("client CA"));

    assert!(tls(&cluster, Some(&cluster)).check().is_ok());
    let empty_ca = ClientTls {
        ca: Vec::new(),
        identity: None,
    };
    assert!(empty_ca
        .check()
        .unwrap_err()
        .to_string()
        .contains("the CA is not a PEM certificate"));
    let bad_key = ClientTls {
        identity: Some((cert, b"not a key".to_vec())),
        ..tls(&cluster, None)
    };
    assert!(bad_key.check().is_err());
}

#[tokio::test]
async fn with_mutual_tls_an_executor_answers_only_certified_coordinators() {
    let cluster = Authority::new();
    let served = serve(&cluster, Some(&cluster)).await;
    let secure = format!("grpc+tls://{}", served.address);

    let certified = connect(&secure, Some(&tls(&cluster, Some(&cluster)))).unwrap();
    assert_eq!(answer(&certified).await, Ok(42));

    let anonymous = connect(&secure, Some(&tls(&cluster, None))).unwrap();
    assert_eq!(answer(&anonymous).await, Err(ErrorKind::Unavailable));

    let forged = Authority::new();
    let impostor = connect(&secure, Some(&tls(&cluster, Some(&forged)))).unwrap();
    assert_eq!(answer(&impostor).await, Err(ErrorKind::Unavailable));
}

#[test]
fn a_coordinator_with_tls_never_reaches_an_executor_in_the_clear() {
    let cluster = Authority::new();
    let refused = connect("grpc://127.0.0.1:7879", Some(&tls(&cluster, None))).unwrap_err();
    assert!(refused.to_string().contains("plain gRPC"), "{refused}");
    assert_eq!(refused.kind(), ErrorKind::Unavailable);

    // And one without the CA cannot check an executor that serves TLS.
    let unchecked = connect("grpc+tls://127.0.0.1:7879", None).unwrap_err();
    assert!(unchecked.to_string().contains("--cluster-tls-ca"), "{unchecked}");
}
