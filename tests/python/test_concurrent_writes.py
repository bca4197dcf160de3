"""Many clients writing at once to one server with differential storage:
every write succeeds, reads go on meanwhile, and after a crash every
acknowledged write is back from storage alone (issue: "Cannot CHECKPOINT:
there are other write transactions")."""

import shutil

import adbc_driver_manager
import pytest

import workload
from openduck_harness import Server

WRITERS = 16
READERS = 4
DURATION_S = 10


@pytest.fixture
def deployment(tmp_path):
    """`openduck serve` with its storage outside the data directory, so the
    data directory can be wiped as a lost disk."""
    server = Server(tmp_path / "data", extra_args=["--storage", str(tmp_path / "storage")])
    server.start()
    yield server
    if server.proc is not None:
        server.stop()


def test_concurrent_writers_lose_nothing_across_a_crash(deployment):
    with deployment.connect() as conn:
        workload.prepare(conn)
    ledger, outcome, elapsed = workload.run(
        deployment, writers=WRITERS, readers=READERS, duration_s=DURATION_S, kill_at_end=True
    )
    assert outcome.error_count() == 0, (
        f"failed statements: {dict((k, dict(v)) for k, v in outcome.errors.items())}; {outcome.messages}"
    )
    for kind in workload.WRITES + workload.READS:
        assert outcome.latencies[kind], f"no {kind} statement completed in {elapsed:.1f} s"

    # The disk is lost: the server starts from storage alone.
    shutil.rmtree(deployment.data_dir)
    deployment.start()
    with deployment.connect() as conn:
        checked = ledger.verify(conn)
    assert checked["inserts"] > 0 and checked["updates"] > 0 and checked["ingests"] > 0, checked


def test_a_transaction_conflict_is_aborted_not_unknown(deployment):
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE accounts AS SELECT 1 AS id, 100 AS balance")
    first = deployment.connect(autocommit=False)
    second = deployment.connect(autocommit=False)
    try:
        with first.cursor() as cur:
            cur.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1")
        with second.cursor() as cur, pytest.raises(adbc_driver_manager.Error) as conflict:
            cur.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 1")
        assert workload.status_code(conflict.value) == "Aborted", str(conflict.value)
        second.rollback()
        first.commit()
    finally:
        first.close()
        second.close()
    # The winner's write is acknowledged, so it survives a crash.
    deployment.kill()
    shutil.rmtree(deployment.data_dir)
    deployment.start()
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT balance FROM accounts")
        assert cur.fetchone()[0] == 90


def test_an_open_transaction_that_wrote_delays_other_writes_until_it_ends(deployment):
    """DuckDB checkpoints only when no write transaction is open: a write
    that commits on its own is acknowledged once the open one ends, and a
    transaction that only read holds nothing back."""
    import threading

    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INTEGER)")
    reader = deployment.connect(autocommit=False)
    with reader.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        cur.fetchall()
    # A transaction that only read does not hold writes back.
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
    writer = deployment.connect(autocommit=False)
    with writer.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (2)")
    done = threading.Event()

    def autocommit_insert():
        with deployment.connect() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (3)")
        done.set()

    thread = threading.Thread(target=autocommit_insert, daemon=True)
    thread.start()
    # Reads are answered meanwhile.
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        cur.fetchall()
    assert not done.wait(1.0), "an insert was acknowledged while a transaction that wrote was open"
    writer.commit()
    assert done.wait(30), "the insert was not acknowledged after the open transaction committed"
    thread.join()
    reader.close()
    writer.close()
    deployment.kill()
    shutil.rmtree(deployment.data_dir)
    deployment.start()
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT list(id ORDER BY id) FROM t")
        assert cur.fetchone()[0] == [1, 2, 3]
