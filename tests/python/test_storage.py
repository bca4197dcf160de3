"""Differential storage end to end, on local-filesystem storage and on an
S3-compatible server (moto) with heads in etcd: durability across kills and
empty disks, crashes at chosen points, snapshots and time travel, clones,
garbage collection and bad input."""

import threading

import adbc_driver_manager
import duckdb
import pytest

from cluster_harness import wait_until
from storage_harness import LocalDeployment, S3Deployment, snapshot_ids


@pytest.fixture(params=["local", "s3"])
def deployment(request, tmp_path):
    kind = LocalDeployment if request.param == "local" else S3Deployment
    deployment = kind(tmp_path).start()
    try:
        yield deployment
    finally:
        deployment.stop()


def run(deployment, *statements):
    with deployment.connect() as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
            if cur.description:
                rows = cur.fetchall()
        return rows if cur.description else None


def count(deployment, table="mydb.main.t"):
    return run(deployment, f"SELECT count(*), coalesce(sum(v), 0) FROM {table}")[0]


def test_acknowledged_writes_survive_a_kill_and_an_empty_disk(deployment):
    run(deployment, "CREATE TABLE mydb.main.t (v BIGINT, s VARCHAR)")
    for batch in range(5):
        run(deployment, f"INSERT INTO mydb.main.t SELECT {batch}, repeat('x', 100) FROM range(2000)")
    run(deployment, "DELETE FROM mydb.main.t WHERE v = 1")
    expected = count(deployment)
    assert expected == (8000, 8000 * 0 + 2000 * (0 + 2 + 3 + 4))

    # kill -9 right after the last acknowledgement, then start on an empty disk.
    deployment.restart_writer(wipe=True)
    assert count(deployment) == expected
    assert not (deployment.writer.data_dir / "mydb.duckdb.wal").exists()


@pytest.mark.parametrize("point", ["after-layer-upload", "before-head-update", "after-head-update"])
# The driver complains when it closes a statement whose server died under it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_writer_killed_while_publishing_loses_nothing_acknowledged(deployment, point):
    run(deployment, "CREATE TABLE mydb.main.t (v BIGINT)", "INSERT INTO mydb.main.t SELECT 1 FROM range(1000)")
    acknowledged = count(deployment)
    layers_before = set(deployment.objects("layers"))

    deployment.restart_writer(crash_at=point)
    with pytest.raises((adbc_driver_manager.Error, OSError)):
        run(deployment, "INSERT INTO mydb.main.t SELECT 1 FROM range(5000)")
    deployment.writer_exited()

    deployment.restart_writer(wipe=True)
    after = count(deployment)
    if point == "after-head-update":
        # Published but never acknowledged: wholly there.
        assert after == (6000, 6000)
    else:
        # Never published: wholly absent.
        assert after == acknowledged

    # The crashed write left layers no snapshot reaches; gc collects them and
    # keeps everything the head needs.
    orphans = set(deployment.objects("layers")) - layers_before
    assert orphans, "the crashed write uploaded a layer"
    deployment.admin("gc", "--grace", "0", "--retain", "0")
    remaining = set(deployment.objects("layers"))
    if point != "after-head-update":
        assert not (orphans & remaining), f"orphans left: {orphans & remaining}"
    deployment.restart_writer(wipe=True)
    assert count(deployment) == after


def test_gc_killed_midway_leaves_storage_usable_and_finishes_later(deployment):
    run(deployment, "CREATE TABLE mydb.main.t (v BIGINT)")
    for n in range(6):
        run(deployment, f"INSERT INTO mydb.main.t SELECT {n} FROM range(3000)")
    expected = count(deployment)
    before = len(deployment.objects("snapshots"))

    crashed = deployment.admin("gc", "--grace", "0", "--retain", "0", crash_at="during-gc", check=False)
    assert crashed.returncode != 0
    assert len(deployment.objects("snapshots")) == before - 1, "it died after its first deletion"

    deployment.admin("gc", "--grace", "0", "--retain", "0")
    assert len(deployment.objects("snapshots")) == 1
    deployment.restart_writer(wipe=True)
    assert count(deployment) == expected


def test_gc_during_writes_and_clones_never_removes_what_is_reachable(deployment, tmp_path):
    run(deployment, "CREATE TABLE mydb.main.t (v BIGINT)")
    stop = threading.Event()
    failures = []

    def collect():
        while not stop.is_set():
            # A grace period of a couple of seconds covers a writer's upload
            # to head update; everything older that no head reaches goes.
            result = deployment.admin("gc", "--grace", "2s", "--retain", "0", check=False)
            if result.returncode != 0:
                failures.append(result.stderr)

    collector = threading.Thread(target=collect)
    collector.start()
    clones = {}
    try:
        for n in range(15):
            run(deployment, f"INSERT INTO mydb.main.t SELECT {n} FROM range(1000)")
            if n % 5 == 4:
                deployment.admin("clone", "mydb", f"clone{n}")
                clones[f"clone{n}"] = count(deployment)
    finally:
        stop.set()
        collector.join()
    assert not failures, failures
    expected = count(deployment)
    assert expected == (15000, 1000 * sum(range(15)))
    deployment.restart_writer(wipe=True)
    assert count(deployment) == expected
    # Every clone made while gc ran still materializes whole.
    for name, rows in clones.items():
        path = tmp_path / f"{name}.duckdb"
        deployment.admin("snapshot", "export", f"{name}@latest", "--to", str(path))
        with duckdb.connect(str(path), read_only=True) as local:
            assert local.execute("SELECT count(*), coalesce(sum(v), 0) FROM t").fetchone() == rows


def test_snapshots_are_listed_and_queried_read_only(deployment, tmp_path):
    run(deployment, "CREATE TABLE mydb.main.t (v BIGINT)")
    states = []
    for n in range(1, 4):
        run(deployment, f"INSERT INTO mydb.main.t SELECT {n} FROM range(100)")
        states.append((snapshot_ids(deployment)[0], count(deployment)))
    listed = snapshot_ids(deployment)
    assert [state[0] for state in reversed(states)] == listed[:3]
    # Through SQL, from any client: the openduck.snapshots table.
    rows = run(deployment, "SELECT snapshot, is_head FROM openduck.main.snapshots "
                           "WHERE database = 'mydb' ORDER BY created_at DESC")
    assert [row[0] for row in rows[:3]] == listed[:3]
    assert [row[1] for row in rows].count(True) == 1 and rows[0][1]

    for snapshot, expected in states:
        # Through SQL: the catalog "mydb@<snapshot>" (a unique prefix will do).
        assert count(deployment, f'"mydb@{snapshot[:10]}".main.t') == expected
        assert count(deployment, f'"mydb@{snapshot}".main.t') == expected
    with pytest.raises(adbc_driver_manager.Error, match="read-only|read only"):
        run(deployment, f'INSERT INTO "mydb@{states[0][0]}".main.t VALUES (9)')

    # Through the CLI: a DuckDB file any DuckDB opens.
    exported = tmp_path / "old.duckdb"
    deployment.admin("snapshot", "export", f"mydb@{states[0][0]}", "--to", str(exported))
    with duckdb.connect(str(exported), read_only=True) as local:
        assert local.execute("SELECT count(*), sum(v) FROM t").fetchone() == states[0][1]


def test_a_clone_shares_its_source_and_diverges(deployment):
    run(deployment, "CREATE TABLE mydb.main.t (v BIGINT)", "INSERT INTO mydb.main.t SELECT 1 FROM range(5000)")
    layers = set(deployment.objects("layers"))
    out = deployment.admin("clone", "mydb", "copy").stdout
    assert "cloned mydb" in out
    assert set(deployment.objects("layers")) == layers, "a clone copies no data"
    again = deployment.admin("clone", "mydb", "copy", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr

    if deployment.kind == "s3":
        # In a cluster an executor writes only what it claimed: SQL clones say how.
        with pytest.raises(adbc_driver_manager.Error, match="openduck clone"):
            run(deployment, "CREATE DATABASE other FROM mydb")
        assert deployment.admin("snapshot", "list", "other", check=False).returncode != 0
        deployment.databases = ["mydb", "copy"]
    deployment.restart_writer()
    assert count(deployment, "copy.main.t") == (5000, 5000)
    run(deployment, "INSERT INTO copy.main.t VALUES (100)", "INSERT INTO mydb.main.t VALUES (7)")
    assert count(deployment, "copy.main.t") == (5001, 5100)
    assert count(deployment, "mydb.main.t") == (5001, 5007)
    deployment.restart_writer(wipe=True)
    assert count(deployment, "copy.main.t") == (5001, 5100)
    assert count(deployment, "mydb.main.t") == (5001, 5007)


def test_create_database_from_clones_in_sql(tmp_path):
    """Embedded mode: `CREATE DATABASE dst FROM src` clones and serves the
    clone at once; writes to either never show in the other."""
    deployment = LocalDeployment(tmp_path).start()
    try:
        run(deployment, "CREATE TABLE mydb.main.t (v BIGINT)", "INSERT INTO mydb.main.t SELECT 1 FROM range(1000)")
        layers = set(deployment.objects("layers"))
        snapshots = set(deployment.objects("snapshots"))
        first = snapshot_ids(deployment)[-1]
        run(deployment, "CREATE DATABASE branch FROM mydb")
        run(deployment, f'CREATE DATABASE "old" FROM "mydb@{first}"')
        assert set(deployment.objects("layers")) == layers and set(deployment.objects("snapshots")) == snapshots
        assert count(deployment, "branch.main.t") == (1000, 1000)
        with pytest.raises(adbc_driver_manager.Error, match="does not exist"):
            count(deployment, "old.main.t")
        run(deployment, "INSERT INTO branch.main.t VALUES (5)", "DELETE FROM mydb.main.t WHERE rowid < 10")
        assert count(deployment, "branch.main.t") == (1001, 1005)
        assert count(deployment, "mydb.main.t") == (990, 990)
        with pytest.raises(adbc_driver_manager.Error, match="already exists"):
            run(deployment, "CREATE DATABASE branch FROM mydb")
        with pytest.raises(adbc_driver_manager.Error, match="invalid database name"):
            run(deployment, "CREATE DATABASE ../x FROM mydb")
        # It is a database like any other: `serve` hosts it after a restart
        # without being told.
        deployment.restart_writer(wipe=True)
        assert count(deployment, "branch.main.t") == (1001, 1005)
    finally:
        deployment.stop()


def test_bad_names_and_corrupt_manifests_are_clear_errors(deployment):
    run(deployment, "CREATE TABLE mydb.main.t (v BIGINT)")
    for bad in ["../etc", "a/b", "x.y"]:
        result = deployment.admin("snapshot", "list", bad, check=False)
        assert result.returncode != 0 and "invalid database name" in result.stderr, result.stderr
        result = deployment.admin("clone", "mydb", bad, check=False)
        assert result.returncode != 0 and "invalid database name" in result.stderr, result.stderr
    with pytest.raises(adbc_driver_manager.Error, match="missing"):
        run(deployment, 'SELECT * FROM "mydb@abcdef0123".main.t')
    with pytest.raises(adbc_driver_manager.Error, match="invalid snapshot"):
        run(deployment, 'SELECT * FROM "mydb@../../x".main.t')

    head = snapshot_ids(deployment)[0]
    deployment.corrupt_manifest(head)
    result = deployment.admin("snapshot", "list", "mydb", check=False)
    assert result.returncode != 0
    assert "corrupt" in result.stderr and head in result.stderr and "mydb" in result.stderr, result.stderr
