"""Many clients writing at once to one server with differential storage:
every write succeeds, reads go on meanwhile, and after a crash every
acknowledged write is back from storage alone (issue: "Cannot CHECKPOINT:
there are other write transactions")."""

import shutil
import threading

import adbc_driver_manager
import pytest

import workload
from cluster_harness import wait_until
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


def crash_and_restart(deployment):
    """kill -9, the disk lost, and a start from storage alone."""
    deployment.kill()
    shutil.rmtree(deployment.data_dir)
    deployment.start()


def in_background(deployment, sql):
    """Runs `sql` on a connection of its own in a thread; the returned
    event is set once the server acknowledged it."""
    done = threading.Event()

    def run():
        with deployment.connect() as conn, conn.cursor() as cur:
            cur.execute(sql)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


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

    # The server was killed; the disk is lost too: it starts from storage alone.
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
    crash_and_restart(deployment)
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT balance FROM accounts")
        assert cur.fetchone()[0] == 90


def test_an_open_transaction_that_wrote_delays_other_writes_until_it_ends(deployment):
    """DuckDB refuses to checkpoint while a transaction that updated is open:
    a write that commits on its own is acknowledged once the open one ends.
    A transaction that only read holds nothing back, though DuckDB would not
    checkpoint an update while a transaction older than it is open."""
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT 0 AS id, 0 AS n")
    reader = deployment.connect(autocommit=False)
    with reader.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        cur.fetchall()
    updated = in_background(deployment, "UPDATE t SET n = n + 1")
    assert updated.wait(30), "an update was not acknowledged while a transaction that only read was open"

    writer = deployment.connect(autocommit=False)
    with writer.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (2, 0)")
    inserted = in_background(deployment, "INSERT INTO t VALUES (3, 0)")
    # Reads are answered meanwhile (row 3 may or may not have committed yet;
    # row 2 is not committed).
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t WHERE id <> 3")
        assert cur.fetchone()[0] == 1
    # A negative: nothing can be polled for, so it gets a fixed second.
    assert not inserted.wait(1.0), "an insert was acknowledged while a transaction that wrote was open"
    writer.commit()
    assert inserted.wait(30), "the insert was not acknowledged after the open transaction committed"
    reader.close()
    writer.close()
    crash_and_restart(deployment)
    with deployment.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT list(id ORDER BY id), sum(n) FROM t")
        assert cur.fetchone() == ([0, 2, 3], 1)


def test_a_write_whose_client_gave_up_after_the_head_moved_leaves_the_writer_writing(tmp_path):
    """A client that stops waiting (a deadline, its coordinator dying) while its write
    is being published must not stop the publish half way: after storage's head moved,
    the writer has to note the new head, or its next publish finds the head moved and
    fences it (every later write refused)."""
    release = tmp_path / "release"
    release.touch()
    server = Server(tmp_path / "data", extra_args=["--storage", str(tmp_path / "storage")],
                    env={"OPENDUCK_PAUSE_AT": "after-head-update", "OPENDUCK_PAUSE_UNTIL": str(release)})
    server.start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (v BIGINT)")
        release.unlink()  # every publish now holds right after the head update
        impatient = {"adbc.flight.sql.rpc.timeout_seconds.query": "1",
                     "adbc.flight.sql.rpc.timeout_seconds.update": "1"}
        with server.connect(autocommit=False, **impatient) as conn:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO kept VALUES (0)")
            # The commit is published, and holds; the client gives up meanwhile.
            with pytest.raises(adbc_driver_manager.Error):
                conn.commit()
        wait_until(lambda: "OPENDUCK_PAUSE_AT: holding here" in server.log_path.read_text(),
                   what="the publish to hold after the head update")
        release.touch()
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO kept VALUES (1), (2)")
            cur.execute("SELECT count(*) FROM kept")
            assert cur.fetchone() == (3,)
        assert "fenced" not in server.log_path.read_text()
    finally:
        release.touch()
        server.stop()
