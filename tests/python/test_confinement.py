"""SQL never reaches differential storage: by default storage lives beside
the data directory, out of reach of SQL (which may touch files in the data
directory only), and the server refuses to start where SQL could reach it.
Storage left inside the data directory by older versions is moved out.
Against the real binary, `openduck serve` and a cluster executor, with the
ADBC driver."""

import os
import subprocess
from pathlib import Path

import adbc_driver_manager
import pytest

from cluster_harness import Coordinator, Etcd, Executor, cluster_env, wait_until
from openduck_harness import Server, openduck_bin


def permission_denied(conn, sql):
    """Runs `sql` and insists it fails with gRPC PermissionDenied."""
    with pytest.raises(adbc_driver_manager.Error) as refused:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    message = str(refused.value)
    assert "PermissionDenied" in message, f"{sql}: {message}"
    return message


def escapes(storage: Path, data_dir: Path):
    """SQL aimed at storage: by absolute path, relative to the server's
    working directory, and with `..` through the data directory. Writes aim
    at the head, reads at every layer."""
    absolute = str(storage)
    relative = os.path.relpath(storage, Path.cwd())
    dotdot = f"{data_dir}/../{storage.name}"
    statements = []
    for base in (absolute, relative, dotdot):
        statements += [
            f"COPY (SELECT 'pwned') TO '{base}/evil.csv'",
            f"COPY (SELECT 'pwned') TO '{base}/heads/mydb.head' (HEADER false)",
            f"SELECT count(*) FROM read_blob('{base}/**')",
            f"SELECT count(*) FROM read_text('{base}/heads/*')",
            f"SELECT * FROM read_csv('{base}/heads/mydb.head', header = false)",
            f"SELECT * FROM glob('{base}/*')",
        ]
    return statements


def stored_files(storage: Path):
    return sorted(str(p.relative_to(storage)) for p in storage.rglob("*"))


def test_sql_cannot_reach_default_storage(tmp_path):
    data = tmp_path / "data"
    storage = tmp_path / "data-storage"
    server = Server(data).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t AS SELECT range AS v FROM range(100)")
            assert (storage / "heads" / "mydb.head").exists(), "default storage is beside the data directory"
            assert not (data / "storage").exists()
            before = stored_files(storage)
            head = (storage / "heads" / "mydb.head").read_text()
            for sql in escapes(storage, data):
                permission_denied(conn, sql)
            assert stored_files(storage) == before
            assert (storage / "heads" / "mydb.head").read_text() == head

            # Files inside the data directory are still SQL's to use.
            cur.execute(f"COPY (SELECT v FROM t WHERE v < 10) TO '{data}/out.parquet'")
            cur.execute(f"SELECT count(*), sum(v) FROM read_parquet('{data}/out.parquet')")
            assert cur.fetchone() == (10, 45)
            cur.execute(f"COPY (SELECT 'fine' AS s) TO '{data}/out.csv'")
            cur.execute(f"SELECT s FROM read_csv('{data}/out.csv')")
            assert cur.fetchone() == ("fine",)
            cur.execute(f"SELECT count(*) FROM glob('{data}/out.*')")
            assert cur.fetchone() == (2,)
    finally:
        server.stop()


def refused_start(args, env=None):
    """Runs `openduck ARGS` and insists it refuses to start."""
    result = subprocess.run(
        [openduck_bin(), *args], capture_output=True, text=True, timeout=120, env=dict(os.environ, **(env or {})),
    )
    assert result.returncode != 0, f"openduck {' '.join(args)} started: {result.stdout}"
    return result.stderr


def serve_args(data, *extra):
    return ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(data), *extra]


def test_sql_cannot_write_the_executors_own_files(tmp_path):
    """Files in the data directory are SQL's to read and write, except the
    executor's own: a COPY over a database file would destroy it."""
    data = tmp_path / "data"
    server = Server(data, databases=("mydb", "hr")).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE hr.people AS SELECT range AS id FROM range(3)")
            cur.execute("SELECT count(*) FROM hr.people")  # a snapshot to attach later
            d = data.resolve()
            for sql in [
                f"COPY (SELECT 1) TO '{d}/hr.duckdb' (FORMAT csv)",
                f"COPY (SELECT 1) TO '{d}/hr.duckdb.wal' (FORMAT csv)",
                f"COPY (SELECT 1) TO '{d}/exports/../mydb.duckdb' (FORMAT csv)",
                f"COPY (SELECT 1) TO 'file://{d}/hr.duckdb' (FORMAT csv)",
                f"COPY (SELECT 1) TO '/proc/self/root{d}/hr.duckdb' (FORMAT csv)",
                f"COPY (SELECT 1 AS p, 2 AS v) TO '{d}' (FORMAT csv, PARTITION_BY (p), OVERWRITE)",
                f"COPY (SELECT 1) TO '{d}/.tmp/spill' (FORMAT csv)",
                f"EXPORT DATABASE hr TO '{d}'",
                f"ATTACH '{d}/mydb.duckdb' AS again",
                "DETACH hr",
                f"ATTACH OR REPLACE '{d}/exports/other.duckdb' AS hr",
                f"COPY (SELECT 1 AS v) TO '{d}/exports' (FORMAT csv, PER_THREAD_OUTPUT, "
                "FILENAME_PATTERN '{i}/../{i}/../../hr', FILE_EXTENSION 'duckdb')",
            ]:
                permission_denied(conn, sql)
            # A session's home directory is where `~` leads (a transaction keeps its
            # connection, and so the setting); DuckDB checks the path as written, too.
            with server.connect(autocommit=False) as session:
                with session.cursor() as own:
                    own.execute(f"SET home_directory = '{d}'")
                permission_denied(session, "COPY (SELECT 1) TO '~/hr.duckdb' (FORMAT csv)")
                session.rollback()
            cur.execute(f"COPY hr.people TO '{d}/people.csv'")
            cur.execute(f"SELECT count(*) FROM read_csv('{d}/people.csv')")
            assert cur.fetchall() == [(3,)]
            cur.execute("SELECT count(*) FROM hr.people")
            assert cur.fetchall() == [(3,)]
    finally:
        server.stop()
    # Stopped cleanly: every database checkpointed into its intact file.
    assert (data / "hr.duckdb").stat().st_size > 4096


def test_storage_within_reach_of_sql_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    inside = data / "store"
    message = refused_start(serve_args(data, "--storage", str(inside)))
    assert str(inside) in message and str(data) in message and "--allow-storage-in-sql-reach" in message, message
    assert not inside.exists(), "nothing is created before the refusal"

    # The same through a file:// URL, through a link that names the data
    # directory otherwise, and with storage around the data directory.
    message = refused_start(serve_args(data, "--storage", f"file://{data}/store"))
    assert "inside the data directory" in message, message
    (tmp_path / "alias").symlink_to(data)
    message = refused_start(serve_args(data, "--storage", str(tmp_path / "alias" / "store")))
    assert "inside the data directory" in message, message
    message = refused_start(serve_args(data, "--storage", str(tmp_path)))
    assert "the data directory is inside it" in message, message

    # With external access, SQL reaches any local file: local storage is refused.
    message = refused_start(serve_args(data, "--allow-external-access"))
    assert "--allow-external-access" in message and str(tmp_path / "data-storage") in message, message

    # The operator may accept the risk, by flag or environment; then SQL
    # reads and writes storage, as the statements these tests refuse show.
    server = Server(data, extra_args=["--storage", str(inside), "--allow-storage-in-sql-reach"]).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t AS SELECT 1 AS v")
            cur.execute(f"SELECT count(*) FROM read_blob('{inside}/**')")
            assert cur.fetchone()[0] >= 4
            cur.execute(f"COPY (SELECT 'pwned') TO '{inside}/evil.csv'")
            assert (inside / "evil.csv").exists()
    finally:
        server.stop()
    assert "SQL can read and write storage" in server.log_path.read_text()
    server = Server(data, extra_args=["--allow-external-access"],
                    env={"OPENDUCK_ALLOW_STORAGE_IN_SQL_REACH": "true"}).start()
    server.stop()


def test_a_link_into_storage_in_the_data_directory_is_refused(tmp_path):
    data = tmp_path / "data"
    storage = tmp_path / "data-storage"
    Server(data).start().stop()
    (data / "sub").mkdir()
    link = data / "sub" / "peek"
    link.symlink_to(storage)

    message = refused_start(serve_args(data))
    assert str(link) in message and str(storage) in message, message
    assert "--allow-storage-in-sql-reach" in message, message

    # A link to a directory above storage reaches it just as well.
    link.unlink()
    link.symlink_to(tmp_path)
    refused_start(serve_args(data))

    # A link that leads nowhere yet would create files in storage.
    link.unlink()
    link.symlink_to(storage / "heads" / "planted.head")
    refused_start(serve_args(data))

    # Links elsewhere are fine.
    link.unlink()
    (tmp_path / "parquet").mkdir()
    link.symlink_to(tmp_path / "parquet")
    Server(data).start().stop()


def test_links_made_while_serving(tmp_path):
    """DuckDB resolves links in the part of a path that exists before it
    checks it, so a link into storage made while the server runs is refused
    per statement; a link whose target does not exist yet is not resolved,
    and COPY ... TO through it creates the file in storage: the next start
    refuses (docs/storage.md, "Out of SQL's reach")."""
    data = tmp_path / "data"
    storage = tmp_path / "data-storage"
    server = Server(data).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t AS SELECT 1 AS v")
            (data / "peek").symlink_to(storage)
            permission_denied(conn, f"SELECT count(*) FROM read_blob('{data}/peek/heads/*')")
            permission_denied(conn, f"SELECT * FROM read_text('{data}/peek/heads/mydb.head')")
            permission_denied(conn, f"COPY (SELECT 'pwned') TO '{data}/peek/heads/mydb.head' (HEADER false)")
            cur.execute(f"SELECT count(*) FROM read_blob('{data}/**')")
            assert cur.fetchone() == (1,), "globs do not descend through links"

            (data / "dangling").symlink_to(storage / "planted.csv")
            cur.execute(f"COPY (SELECT 'pwned') TO '{data}/dangling' (HEADER false)")
            assert (storage / "planted.csv").read_text().strip() == "pwned", "the documented gap"
    finally:
        server.stop()
    (data / "peek").unlink()
    message = refused_start(serve_args(data))
    assert str(data / "dangling") in message, message


def old_layout(tmp_path):
    """A data directory with storage where older versions kept it,
    `<data-dir>/storage`, holding a table, made by the current binary."""
    data = tmp_path / "data"
    legacy = data / "storage"
    server = Server(data, databases=("mydb", "sales"),
                    extra_args=["--storage", str(legacy), "--allow-storage-in-sql-reach"]).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE mydb.main.t AS SELECT range AS v FROM range(1000)")
            cur.execute("CREATE TABLE sales.main.orders AS SELECT 7 AS id")
            cur.execute("UPDATE mydb.main.t SET v = v + 1")
    finally:
        server.stop()
    return data, legacy


def snapshot_list(data, database="mydb"):
    result = subprocess.run([openduck_bin(), "snapshot", "list", database, "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines()[1:]]


def test_storage_in_the_old_place_moves_out_of_the_data_directory(tmp_path):
    data, legacy = old_layout(tmp_path)
    storage = tmp_path / "data-storage"
    snapshots = snapshot_list(data)
    assert len(snapshots) >= 2
    assert legacy.is_dir() and not storage.exists(), "the storage commands use storage where it is, moving nothing"

    # Start on the old layout with default flags, without the local files:
    # every database comes back from the storage that moved.
    for file in data.glob("*.duckdb*"):
        file.unlink()
    server = Server(data, databases=("mydb",)).start()
    try:
        assert not legacy.exists() and (storage / "heads" / "mydb.head").exists()
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), sum(v) FROM mydb.main.t")
            assert cur.fetchone() == (1000, 500500)
            cur.execute("SELECT id FROM sales.main.orders")
            assert cur.fetchone() == (7,)
            permission_denied(conn, f"SELECT count(*) FROM read_blob('{storage}/**')")
    finally:
        server.stop()
    assert "moved storage out of the data directory" in server.log_path.read_text()
    assert snapshot_list(data) == snapshots


def test_storage_in_both_places_is_refused(tmp_path):
    data, legacy = old_layout(tmp_path)
    storage = tmp_path / "data-storage"
    storage.mkdir()
    message = refused_start(serve_args(data))
    assert str(legacy) in message and str(storage) in message and "remove it" in message, message
    assert legacy.is_dir(), "nothing moved"
    result = subprocess.run([openduck_bin(), "snapshot", "list", "mydb", "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and str(legacy) in result.stderr

    # Doing what the message says: remove the empty new place, start again.
    storage.rmdir()
    server = Server(data).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM mydb.main.t")
            assert cur.fetchone() == (1000,)
    finally:
        server.stop()


@pytest.fixture
def etcd(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    yield etcd
    etcd.stop()


def test_sql_cannot_reach_an_executors_storage(tmp_path, etcd):
    data = tmp_path / "exec"
    storage = tmp_path / "exec-storage"
    executor = Executor(data, etcd, "exec-1", ["mydb"]).start()
    coordinator = Coordinator(tmp_path / "coordinator", etcd).start()
    try:
        with coordinator.connect() as conn, conn.cursor() as cur:
            def create():
                cur.execute("CREATE TABLE IF NOT EXISTS mydb.main.t AS SELECT range AS v FROM range(10)")
                return True

            wait_until(create, what="the executor to take statements")
            assert list(storage.glob("layers/*")), "the executor's default storage is beside its data directory"
            before = stored_files(storage)
            for sql in [
                f"COPY (SELECT 'pwned') TO '{storage}/evil.csv'",
                f"COPY (SELECT count(*) FROM mydb.main.t) TO '{data}/../{storage.name}/evil.csv'",
                f"SELECT count(*) FROM read_blob('{storage}/**')",
                f"SELECT * FROM glob('{storage}/*')",
            ]:
                permission_denied(conn, sql)
            assert stored_files(storage) == before
            cur.execute(f"COPY (SELECT v FROM mydb.main.t) TO '{data}/out.parquet'")
            cur.execute(f"SELECT count(*) FROM read_parquet('{data}/out.parquet')")
            assert cur.fetchone() == (10,)
    finally:
        coordinator.stop()
        executor.stop()

    (data / "peek").symlink_to(storage)
    message = refused_start(["executor", "--listen", "127.0.0.1:0", "--id", "exec-1", "--data-dir", str(data),
                             "--database", "mydb"], env=cluster_env(etcd))
    assert str(data / "peek") in message and str(storage) in message, message


def test_spills_stay_in_the_data_directory_under_a_memory_limit(tmp_path):
    """`--memory-limit` (here through its environment variable) bounds
    DuckDB; a sort larger than it spills inside the data directory, where SQL
    cannot move the spill directory from."""
    data = tmp_path / "data"
    server = Server(data, env={"OPENDUCK_MEMORY_LIMIT": "32MB"}).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')")
            limit, spill = cur.fetchone()
            assert limit == "30.5 MiB"
            assert Path(spill) == data.resolve() / ".tmp"
            cur.execute("SELECT count(*) FROM (SELECT range, random() AS r FROM range(5000000) ORDER BY r)")
            assert cur.fetchone() == (5000000,)
            assert (data / ".tmp").is_dir()
        with server.connect() as conn:
            permission_denied(conn, f"SET temp_directory = '{tmp_path}'")
    finally:
        server.stop()
