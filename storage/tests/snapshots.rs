//! Differential storage against a real DuckDB on the local filesystem store:
//! snapshots, time travel, clones, corruption and garbage collection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use duckdb::Connection;
use openduck_storage::{hydrate, DatabaseWriter, Error, GcOptions, SnapshotId, Storage};
use proptest::prelude::*;

/// Every table's rows, sorted, as text: what a snapshot must reproduce.
fn contents(conn: &Connection) -> Vec<String> {
    let mut tables: Vec<String> = conn
        .prepare("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables.sort();
    let mut out = Vec::new();
    for table in tables {
        let sql = format!("SELECT CAST(t AS VARCHAR) FROM \"{table}\" t ORDER BY ALL");
        let rows: Vec<String> = conn
            .prepare(&sql)
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.push(format!("{table}: {}", rows.join(";")));
    }
    out
}

/// Opens a materialized snapshot read-only and reads it back.
fn read_back(path: &Path) -> Vec<String> {
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    let conn = Connection::open_with_flags(path, config).unwrap();
    contents(&conn)
}

struct Db {
    storage: Storage,
    dir: PathBuf,
    name: String,
    conn: Option<Connection>,
    writer: DatabaseWriter,
}

impl Db {
    async fn open(storage: &Storage, dir: &Path, name: &str) -> Db {
        let path = dir.join(format!("{name}.duckdb"));
        let (writer, _) = DatabaseWriter::open(storage, name, &path).await.unwrap();
        Db {
            storage: storage.clone(),
            dir: dir.to_path_buf(),
            name: name.to_string(),
            conn: Some(Connection::open(&path).unwrap()),
            writer,
        }
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().unwrap()
    }

    /// Checkpoints and publishes a snapshot; returns it with what the
    /// database held at that point.
    async fn snapshot(&mut self) -> Option<(SnapshotId, Vec<String>)> {
        self.conn().execute_batch("CHECKPOINT").unwrap();
        let expected = contents(self.conn());
        let stats = self.writer.snapshot().await.unwrap()?;
        Some((stats.id, expected))
    }

    async fn materialize(&self, id: &SnapshotId, label: &str) -> PathBuf {
        let manifest = self.storage.manifest(&self.name, id).await.unwrap();
        let path = self.dir.join(format!("{label}.duckdb"));
        hydrate(&self.storage, &manifest, &path).await.unwrap();
        path
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert { table: u8, rows: u32 },
    Update { table: u8, modulo: u8 },
    Delete { table: u8, modulo: u8 },
    Snapshot,
    Clone,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3u8, 1..20_000u32).prop_map(|(table, rows)| Op::Insert { table, rows }),
        (0..3u8, 2..7u8).prop_map(|(table, modulo)| Op::Update { table, modulo }),
        (0..3u8, 2..7u8).prop_map(|(table, modulo)| Op::Delete { table, modulo }),
        Just(Op::Snapshot),
        Just(Op::Snapshot),
        Just(Op::Clone),
    ]
}

fn apply(conn: &Connection, op: &Op) {
    let sql = match op {
        Op::Insert { table, rows } => format!(
            "CREATE TABLE IF NOT EXISTS t{table} (i BIGINT, s VARCHAR); \
             INSERT INTO t{table} SELECT i, repeat(chr(65 + (i % 26)::INT), (i % 40)::INT) \
             FROM range((SELECT count(*) FROM t{table}), (SELECT count(*) FROM t{table}) + {rows}) r(i)"
        ),
        Op::Update { table, modulo } => format!(
            "CREATE TABLE IF NOT EXISTS t{table} (i BIGINT, s VARCHAR); \
             UPDATE t{table} SET s = s || 'u' WHERE i % {modulo} = 0"
        ),
        Op::Delete { table, modulo } => format!(
            "CREATE TABLE IF NOT EXISTS t{table} (i BIGINT, s VARCHAR); \
             DELETE FROM t{table} WHERE i % {modulo} = 1"
        ),
        Op::Snapshot | Op::Clone => return,
    };
    conn.execute_batch(&sql).unwrap();
}

/// Random writes, checkpoints and clones; then every snapshot (of the
/// database and of each clone) is materialized and must hold exactly what
/// DuckDB held when it was taken.
async fn run_ops(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage")).unwrap();
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let mut db = Db::open(&storage, &local, "db").await;
    let mut taken: Vec<(String, SnapshotId, Vec<String>)> = Vec::new();
    let mut clones = 0;
    for op in &ops {
        match op {
            Op::Snapshot => {
                if let Some((id, expected)) = db.snapshot().await {
                    taken.push(("db".into(), id, expected));
                }
            }
            Op::Clone => {
                let Some(_) = db.writer.head() else { continue };
                let name = format!("clone{clones}");
                clones += 1;
                storage.clone_database("db", None, &name).await.unwrap();
                // The clone diverges: write to it and snapshot it.
                let mut clone = Db::open(&storage, &local, &name).await;
                apply(clone.conn(), &Op::Insert { table: 9, rows: 100 });
                let (id, expected) = clone.snapshot().await.unwrap();
                taken.push((name.clone(), id, expected));
                clone.conn.take();
            }
            write => apply(db.conn(), write),
        }
    }
    for (n, (database, id, expected)) in taken.iter().enumerate() {
        let manifest = storage.manifest(database, id).await.unwrap();
        let path = local.join(format!("check{n}.duckdb"));
        hydrate(&storage, &manifest, &path).await.unwrap();
        assert_eq!(&read_back(&path), expected, "snapshot {id} of {database} after {ops:?}");
    }
    // A clone never sees the writes made to its source afterwards, nor the
    // source the clone's.
    for (database, _, expected) in &taken {
        if database != "db" {
            assert!(expected.iter().any(|t| t.starts_with("t9:")), "{database}");
        }
    }
    let head = &taken.iter().rev().find(|(d, _, _)| d == "db");
    if let Some((_, _, expected)) = head {
        assert!(!expected.iter().any(|t| t.starts_with("t9:")));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn every_snapshot_materializes_as_it_was(ops in prop::collection::vec(op(), 1..14)) {
        tokio::runtime::Runtime::new().unwrap().block_on(run_ops(ops));
    }
}

#[tokio::test]
async fn unchanged_blocks_are_neither_uploaded_nor_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage")).unwrap();
    let mut db = Db::open(&storage, dir.path(), "big").await;
    db.conn()
        .execute_batch(
            "CREATE TABLE a AS SELECT range i, md5(range::VARCHAR) s FROM range(400000); \
             CREATE TABLE b AS SELECT range i FROM range(10)",
        )
        .unwrap();
    let (first, _) = db.snapshot().await.unwrap();
    db.conn().execute_batch("CHECKPOINT").unwrap();
    assert!(db.writer.snapshot().await.unwrap().is_none(), "no change, no snapshot");
    db.conn().execute_batch("INSERT INTO b VALUES (11)").unwrap();
    db.conn().execute_batch("CHECKPOINT").unwrap();
    let stats = db.writer.snapshot().await.unwrap().unwrap();
    let file_len = std::fs::metadata(dir.path().join("big.duckdb")).unwrap().len();
    assert!(stats.changed_blocks * 4 < stats.blocks, "{stats:?}");
    assert!(stats.uploaded_bytes * 4 < file_len, "{stats:?} of {file_len}");

    // A file at the first snapshot fetches only the changed blocks.
    let path = db.materialize(&first, "follower").await;
    let manifest = storage.manifest("big", &stats.id).await.unwrap();
    let incremental = hydrate(&storage, &manifest, &path).await.unwrap();
    assert!(
        incremental.blocks_fetched <= stats.changed_blocks,
        "{incremental:?} {stats:?}"
    );
    assert!(incremental.blocks_kept > 0, "{incremental:?}");
    assert_eq!(read_back(&path), contents(db.conn()));
}

#[tokio::test]
async fn a_corrupt_layer_or_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage")).unwrap();
    let mut db = Db::open(&storage, dir.path(), "c").await;
    db.conn()
        .execute_batch("CREATE TABLE t AS SELECT range i FROM range(100000)")
        .unwrap();
    let (id, _) = db.snapshot().await.unwrap();
    let manifest = storage.manifest("c", &id).await.unwrap();
    let block = &manifest.blocks[0].extent;
    let layer = manifest.layer_of(block).to_string();
    let layer_path = dir.path().join("storage/layers").join(&layer);
    let mut bytes = std::fs::read(&layer_path).unwrap();
    bytes[block.offset as usize + 100] ^= 0xff;
    std::fs::write(&layer_path, &bytes).unwrap();
    let error = hydrate(&storage, &manifest, &dir.path().join("x.duckdb"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::CorruptLayer { .. }), "{error}");
    assert!(error.to_string().contains(&layer), "{error}");

    let manifest_path = dir.path().join(format!("storage/snapshots/{id}.json"));
    let mut text = std::fs::read(&manifest_path).unwrap();
    text[10] ^= 1;
    std::fs::write(&manifest_path, &text).unwrap();
    let error = storage.manifest("c", &id).await.unwrap_err().to_string();
    assert!(
        error.contains("corrupt") && error.contains(id.as_str()) && error.contains(" c "),
        "{error}"
    );
    std::fs::remove_file(&manifest_path).unwrap();
    let error = storage.snapshots("c").await.unwrap_err().to_string();
    assert!(error.contains("missing") && error.contains(id.as_str()), "{error}");
}

#[tokio::test]
async fn gc_keeps_what_is_reachable_and_sweeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage")).unwrap();
    let mut db = Db::open(&storage, dir.path(), "g").await;
    let mut ids = Vec::new();
    for round in 0..4 {
        db.conn()
            .execute_batch(&format!("CREATE TABLE t{round} AS SELECT range i FROM range(50000)"))
            .unwrap();
        ids.push(db.snapshot().await.unwrap());
    }
    storage
        .clone_database("g", Some(&ids[1].0.as_str()[..8]), "g_clone")
        .await
        .unwrap();
    // An orphan layer, as a writer that died before moving the head leaves.
    std::fs::write(dir.path().join("storage/layers/0000000000001-orphan"), b"x").unwrap();

    let keep_all = GcOptions {
        retain: Duration::from_secs(3600),
        grace: Duration::ZERO,
        dry_run: false,
    };
    let report = storage.gc(keep_all).await.unwrap();
    assert_eq!(report.snapshots_deleted, Vec::<String>::new());
    assert_eq!(report.layers_deleted, vec!["0000000000001-orphan".to_string()]);

    let dry = GcOptions {
        retain: Duration::ZERO,
        grace: Duration::ZERO,
        dry_run: true,
    };
    let planned = storage.gc(dry).await.unwrap();
    // Snapshots 0 and 2 are reachable from no head without retention.
    assert_eq!(planned.snapshots_deleted.len(), 2, "{planned:?}");
    assert_eq!(storage.gc(dry).await.unwrap(), planned, "a dry run deletes nothing");
    let report = storage.gc(GcOptions { dry_run: false, ..dry }).await.unwrap();
    assert_eq!(report.snapshots_deleted, planned.snapshots_deleted);
    for (database, (id, expected)) in [("g", &ids[3]), ("g_clone", &ids[1])] {
        let path = db.materialize(id, &format!("after_gc_{database}")).await;
        assert_eq!(&read_back(&path), expected);
        assert_eq!(storage.snapshots(database).await.unwrap()[0].id, *id);
    }
    let error = storage.resolve("g", &ids[0].0.as_str()[..8]).await.unwrap_err();
    assert!(matches!(error, Error::MissingSnapshot { .. }), "{error}");
}

#[tokio::test]
async fn names_that_could_escape_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path()).unwrap();
    for bad in ["../x", "a/b", "", "x.y", "..", "a\0"] {
        assert!(
            matches!(storage.head(bad).await, Err(Error::InvalidDatabaseName(_))),
            "{bad:?}"
        );
        assert!(storage.clone_database("ok", None, bad).await.is_err(), "{bad:?}");
    }
    for bad in ["../../etc", "abc", "latest/../x"] {
        assert!(storage.resolve("db", bad).await.is_err(), "{bad:?}");
    }
}

/// Heads whose next swap takes place but whose answer is lost, as when etcd
/// dies between committing the swap and answering it.
#[derive(Debug)]
struct AnswerLost {
    inner: openduck_storage::FileHeads,
    lose_next: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl openduck_storage::Heads for AnswerLost {
    async fn get(&self, database: &str) -> openduck_storage::Result<Option<SnapshotId>> {
        self.inner.get(database).await
    }

    async fn claim(&self, database: &str) -> openduck_storage::Result<openduck_storage::Claim> {
        self.inner.claim(database).await
    }

    async fn swap(
        &self,
        claim: &openduck_storage::Claim,
        expected: Option<&SnapshotId>,
        snapshot: &SnapshotId,
    ) -> openduck_storage::Result<()> {
        self.inner.swap(claim, expected, snapshot).await?;
        if self.lose_next.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Io {
                path: "etcd".into(),
                source: std::io::Error::other("connection reset before the answer"),
            });
        }
        Ok(())
    }

    async fn list(&self) -> openduck_storage::Result<Vec<(String, SnapshotId)>> {
        self.inner.list().await
    }
}

#[tokio::test]
async fn a_head_update_whose_answer_was_lost_is_taken_up_by_the_next_publication() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let heads = std::sync::Arc::new(AnswerLost {
        inner: openduck_storage::FileHeads::new(&store).unwrap(),
        lose_next: false.into(),
    });
    let storage = Storage::open(
        &openduck_storage::Location::Local(store),
        Some(std::sync::Arc::clone(&heads) as _),
    )
    .unwrap();
    let mut db = Db::open(&storage, tmp.path(), "db").await;
    db.conn().execute_batch("CREATE TABLE t AS SELECT 1 AS x").unwrap();
    db.snapshot().await.unwrap();

    db.conn().execute_batch("INSERT INTO t VALUES (2)").unwrap();
    db.conn().execute_batch("CHECKPOINT").unwrap();
    heads.lose_next.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(db.writer.snapshot().await.is_err(), "the lost answer is an error");

    // The head did move: the next publication goes on from there instead of
    // taking the writer for fenced.
    db.conn().execute_batch("INSERT INTO t VALUES (3)").unwrap();
    let (id, expected) = db.snapshot().await.unwrap();
    assert_eq!(storage.head("db").await.unwrap().as_ref(), Some(&id));
    let manifest = storage.manifest("db", &id).await.unwrap();
    assert!(manifest.parent.is_some());
    assert_eq!(read_back(&db.materialize(&id, "after").await), expected);
}
