//! TLS between a coordinator and an executor on a real port: what a
//! coordinator with the cluster's certificates runs, and what a plain, an
//! anonymous or a forged peer is refused.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use futures::TryStreamExt;
use openduck_api::{ErrorKind, ExecutorApi, Statement};
use openduck_executor::{Executor, ExecutorConfig};
use openduck_remote::{serve_executor, ClientTls, Error, RemoteExecutor, RunningExecutor, ServerTls, TicketSigner};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tempfile::TempDir;
use tokio::net::TcpListener;

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
    _server: RunningExecutor,
    _dir: TempDir,
}

/// An executor serving TLS with a certificate of `authority` for
/// 127.0.0.1, requiring client certificates of `client_ca` when given.
async fn serve(authority: &Authority, client_ca: Option<&Authority>) -> Served {
    let dir = TempDir::new().unwrap();
    let config = ExecutorConfig {
        id: "exec-tls".into(),
        ..ExecutorConfig::new(dir.path(), vec!["db".into()])
    };
    let executor = Arc::new(
        tokio::task::spawn_blocking(move || Executor::open(config))
            .await
            .unwrap()
            .unwrap(),
    );
    let (cert, key) = authority.certify(&["127.0.0.1"]);
    let tls = ServerTls {
        cert,
        key,
        client_ca: client_ca.map(|ca| ca.pem.clone().into_bytes()),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let signer = TicketSigner::new(SECRET, Duration::from_secs(60));
    let server = serve_executor(executor, signer, listener, 16 << 20, Some(&tls))
        .await
        .unwrap();
    Served {
        address: server.local_addr().to_string(),
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
    let plain = connect(&format!("grpc://{}", served.address), None).unwrap();
    // (the client reads the server's TLS alert as a broken HTTP/2 frame).
    assert!(answer(&plain).await.is_err());
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
