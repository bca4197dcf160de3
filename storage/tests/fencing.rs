//! Single writer against a real etcd (Debian's `etcd` binary): a writer whose
//! claim moved to another can never move the head again, and two writers
//! racing for one head never both win.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duckdb::Connection;
use etcd_client::Client;
use openduck_storage::{DatabaseWriter, Error, EtcdHeads, Location, Storage};

/// An etcd member on free loopback ports, killed on drop.
struct Etcd {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    async fn start() -> Etcd {
        let free = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (client, peer) = (free(), free());
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{client}");
        let child = Command::new(which_etcd())
            .args(["--data-dir", &dir.path().join("data").to_string_lossy()])
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-cluster", &format!("default=http://127.0.0.1:{peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd runs (install Debian's etcd-server package)");
        let etcd = Etcd { child, url, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut client) = Client::connect([&etcd.url], None).await {
                if client.status().await.is_ok() {
                    return etcd;
                }
            }
            assert!(Instant::now() < deadline, "etcd did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which_etcd() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| {
        if Path::new("/usr/bin/etcd").exists() {
            "/usr/bin/etcd".into()
        } else {
            "etcd".into()
        }
    })
}

async fn storage_of(etcd: &Etcd, dir: &Path, writer: &str) -> Storage {
    let heads = EtcdHeads::connect(std::slice::from_ref(&etcd.url), "/test", Some(writer.to_string()))
        .await
        .unwrap();
    Storage::open(&Location::Local(dir.to_path_buf()), Some(Arc::new(heads))).unwrap()
}

async fn claim(etcd: &Etcd, writer: &str) {
    let mut client = Client::connect([&etcd.url], None).await.unwrap();
    client.put("/test/writers/db", writer, None).await.unwrap();
}

fn write(path: &Path, sql: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
    conn.execute_batch("CHECKPOINT").unwrap();
}

#[tokio::test]
async fn a_writer_that_lost_its_claim_never_moves_the_head() {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");

    claim(&etcd, "a").await;
    let storage_a = storage_of(&etcd, &bucket, "a").await;
    let path_a = dir.path().join("a.duckdb");
    let (mut a, _) = DatabaseWriter::open(&storage_a, "db", &path_a).await.unwrap();
    write(&path_a, "CREATE TABLE t AS SELECT 1 AS v");
    let first = a.snapshot().await.unwrap().unwrap().id;

    // B is refused while A holds the claim.
    let storage_b = storage_of(&etcd, &bucket, "b").await;
    let path_b = dir.path().join("b.duckdb");
    let busy = DatabaseWriter::open(&storage_b, "db", &path_b).await.unwrap_err();
    assert!(matches!(busy, Error::Busy { .. }), "{busy}");

    // A's lease expires and B claims the database: B starts from A's head.
    claim(&etcd, "b").await;
    let (mut b, _) = DatabaseWriter::open(&storage_b, "db", &path_b).await.unwrap();
    assert_eq!(b.head(), Some(&first));
    write(&path_b, "INSERT INTO t VALUES (2)");
    let second = b.snapshot().await.unwrap().unwrap().id;

    // A, unaware, publishes a write of its own: fenced, and the head stays B's.
    write(&path_a, "INSERT INTO t VALUES (3)");
    let fenced = a.snapshot().await.unwrap_err();
    assert!(matches!(fenced, Error::Fenced { .. }), "{fenced}");
    assert_eq!(storage_a.head("db").await.unwrap(), Some(second.clone()));

    // Even with the claim back, A's view of the head is stale: still fenced.
    claim(&etcd, "a").await;
    write(&path_a, "INSERT INTO t VALUES (4)");
    let stale = a.snapshot().await.unwrap_err();
    assert!(stale.to_string().contains("head moved"), "{stale}");
    assert_eq!(storage_a.heads().get("db").await.unwrap(), Some(second));
}

#[tokio::test]
async fn racing_writers_never_both_move_the_head() {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    claim(&etcd, "a").await;
    let storage = storage_of(&etcd, &bucket, "a").await;
    let path = dir.path().join("a.duckdb");
    let (mut writer, _) = DatabaseWriter::open(&storage, "db", &path).await.unwrap();
    write(&path, "CREATE TABLE t AS SELECT 1 AS v");
    let base = writer.snapshot().await.unwrap().unwrap().id;

    // Two publishers start from the same head; exactly one wins.
    let mut wins = 0;
    let mut results = Vec::new();
    for n in 0..2 {
        let path = dir.path().join(format!("r{n}.duckdb"));
        let (racer, _) = DatabaseWriter::open(&storage_of(&etcd, &bucket, "a").await, "db", &path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        write(&path, &format!("INSERT INTO t VALUES ({n})"));
        results.push(racer);
    }
    let outcomes = futures::future::join_all(results.iter_mut().map(|r| r.snapshot())).await;
    for outcome in outcomes {
        match outcome {
            Ok(Some(_)) => wins += 1,
            Err(Error::Fenced { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    let head = storage.heads().get("db").await.unwrap().unwrap();
    assert_ne!(head, base);
    assert_eq!(storage.manifest("db", &head).await.unwrap().parent, Some(base));
}
