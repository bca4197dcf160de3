"""Limits an operator sets on what one statement may take: a statement that
runs past --statement-timeout is stopped and fails with DEADLINE_EXCEEDED,
alone and through a coordinator, and leaves nothing half done; a write that
returns more rows than --max-held-result is refused with RESOURCE_EXHAUSTED
and undone."""

import time

import adbc_driver_manager
import pytest

from cluster_harness import Coordinator, Etcd, Executor, wait_until
from openduck_harness import Server

TIMEOUT = "1s"
HELD = 1 << 20
# About 10 MiB of rows returned: ten times what the server holds.
LARGE_RETURNING = "INSERT INTO ledger SELECT i, repeat('x', 100) FROM range(100000) t(i) RETURNING *"
# Far more rows than a second allows: only the timeout ends it.
ENDLESS = "SELECT sum(i) FROM range(1000000000000000) t(i)"


def fails_with_deadline(cur, sql):
    started = time.monotonic()
    with pytest.raises(adbc_driver_manager.Error) as failed:
        cur.execute(sql)
        cur.fetchall()
    elapsed = time.monotonic() - started
    message = str(failed.value)
    assert "DeadlineExceeded" in message and "statement timeout (1 s)" in message, message
    # Stopped at the limit, not when the work would have ended (never).
    assert elapsed < 15, elapsed
    return message


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--statement-timeout", TIMEOUT,
                                                   "--max-held-result", str(HELD)]).start()
    yield server
    server.stop()


def test_a_statement_past_the_timeout_is_stopped_and_the_next_one_runs(server):
    with server.connect() as conn, conn.cursor() as cur:
        fails_with_deadline(cur, ENDLESS)
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)


def test_a_write_past_the_timeout_leaves_nothing_behind(server):
    with server.connect() as conn, conn.cursor() as cur:
        fails_with_deadline(cur, f"CREATE TABLE big AS {ENDLESS}")
        cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'big'")
        assert cur.fetchone() == (0,)


def test_a_transaction_with_a_timed_out_statement_cannot_commit(server):
    with server.connect(autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE small (x INT)")
        cur.execute("INSERT INTO small VALUES (1)")
        fails_with_deadline(cur, f"INSERT INTO small SELECT i::INT FROM ({ENDLESS}) s(i)")
        # DuckDB would roll the transaction back and call it a commit.
        with pytest.raises(adbc_driver_manager.Error, match=r"(?s)rolled back, not committed.*\(Aborted; Commit\)"):
            conn.commit()
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'small'")
        assert cur.fetchone() == (0,)


def refused_as_too_large(cur, sql):
    with pytest.raises(adbc_driver_manager.Error) as refused:
        cur.execute(sql)
        cur.fetchall()
    message = str(refused.value)
    assert "ResourceExhausted" in message and f"more than {HELD} bytes of rows" in message, message


def test_a_write_returning_more_than_is_held_is_refused_and_undone(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ledger (id BIGINT, note VARCHAR)")
        refused_as_too_large(cur, LARGE_RETURNING)
        cur.execute("SELECT count(*) FROM ledger")
        assert cur.fetchone() == (0,)
        cur.execute("INSERT INTO ledger VALUES (1, 'one') RETURNING id")
        assert cur.fetchall() == [(1,)]
    with server.connect(autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO ledger VALUES (2, 'two')")
        refused_as_too_large(cur, LARGE_RETURNING)
        with pytest.raises(adbc_driver_manager.Error, match=r"(?s)rolled back, not committed.*\(Aborted; Commit\)"):
            conn.commit()
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM ledger")
        assert cur.fetchall() == [(1,)]


def test_no_limit_unless_one_is_set(tmp_path):
    with pytest.raises(AssertionError, match="not a duration"):
        Server(tmp_path / "bad", extra_args=["--statement-timeout", "soon"]).start()
    server = Server(tmp_path / "data", extra_args=["--statement-timeout", "0"]).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            # 0 is no limit, not a limit of no time.
            cur.execute("SELECT sum(i) FROM range(50000000) t(i)")
            assert cur.fetchone() == (50000000 * 49999999 // 2,)
    finally:
        server.stop()


def test_the_limits_reach_a_client_of_a_cluster(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    started = []
    try:
        started.append(Executor(tmp_path / "exec", etcd, "exec-0", ["mydb"],
                                extra_args=["--statement-timeout", TIMEOUT]).start())
        coordinator = Coordinator(tmp_path / "coordinator", etcd, extra_args=["--max-held-result", str(HELD)]).start()
        started.append(coordinator)
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: cur.execute("SELECT 1") or True, what="the executor to register")
            fails_with_deadline(cur, ENDLESS)
            cur.execute("SELECT 7")
            assert cur.fetchone() == (7,)
            # The coordinator's limit travels with the statement to the executor.
            cur.execute("CREATE TABLE ledger (id BIGINT, note VARCHAR)")
            refused_as_too_large(cur, LARGE_RETURNING)
            cur.execute("SELECT count(*) FROM ledger")
            assert cur.fetchone() == (0,)
    finally:
        for process in reversed(started):
            process.stop()
        etcd.stop()


def test_an_idle_transaction_that_holds_back_writes_is_rolled_back(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--idle-transaction-timeout", "1s"]).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t (v INTEGER)")
        idle = server.connect(autocommit=False)
        with idle.cursor() as cur:
            # Wrote, then went quiet: every other write waits for it to end.
            cur.execute("INSERT INTO t VALUES (1)")
        # (Bounded, so that a write held back for good fails the test.)
        bounded = {f"adbc.flight.sql.rpc.timeout_seconds.{kind}": "20" for kind in ("query", "update")}
        with server.connect(**bounded) as conn, conn.cursor() as cur:
            started = time.monotonic()
            cur.execute("INSERT INTO t VALUES (2)")
            waited = time.monotonic() - started
            assert 0.9 < waited < 10, waited
        with idle.cursor() as cur:
            with pytest.raises(adbc_driver_manager.Error) as rolled_back:
                cur.execute("INSERT INTO t VALUES (3)")
            assert "Aborted" in str(rolled_back.value) and "idle-transaction-timeout" in str(rolled_back.value)
        idle.rollback()
        with idle.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (4)")
        idle.commit()
        idle.close()

        # Idle with no other write waiting, a transaction is left alone.
        quiet = server.connect(autocommit=False)
        with quiet.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (5)")
            time.sleep(2)
            cur.execute("INSERT INTO t VALUES (6)")
        quiet.commit()
        quiet.close()
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT v FROM t ORDER BY v")
            assert cur.fetchall() == [(2,), (4,), (5,), (6,)]
    finally:
        server.stop()
