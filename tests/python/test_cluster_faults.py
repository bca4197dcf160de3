"""Faults in a real cluster: an executor killed in the middle of a query,
its lease running out, its return; etcd going away and coming back. Each
test gets its own etcd, two executors and a coordinator."""

import threading
import time

import adbc_driver_manager
import pytest

from cluster_harness import Coordinator, Etcd, Executor, wait_until

BIG_ROWS = 5_000_000


@pytest.fixture
def cluster(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    started = []
    try:
        alpha = Executor(tmp_path / "alpha", etcd, "exec-alpha", ["alpha"]).start()
        started.append(alpha)
        beta = Executor(tmp_path / "beta", etcd, "exec-beta", ["beta"]).start()
        started.append(beta)
        coordinator = Coordinator(tmp_path / "coordinator", etcd).start()
        started.append(coordinator)
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: catalogs(conn) >= {"alpha", "beta"}, what="both executors registered")
            cur.execute(f"CREATE TABLE alpha.main.big AS SELECT range AS x FROM range({BIG_ROWS})")
            cur.execute("CREATE TABLE beta.main.one AS SELECT 1 AS y")
        yield {"etcd": etcd, "alpha": alpha, "beta": beta, "coordinator": coordinator, "root": tmp_path}
    finally:
        for process in reversed(started):
            process.stop()
        etcd.stop()


def catalogs(conn):
    return set(conn.adbc_get_objects(depth="catalogs").read_all().column("catalog_name").to_pylist())


def count(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_an_executor_killed_mid_query_fails_the_query_and_is_dropped_until_it_returns(cluster):
    coordinator, alpha = cluster["coordinator"], cluster["alpha"]
    with coordinator.connect() as conn, conn.cursor() as cur:
        # A query across both executors: alpha's rows stream through the coordinator.
        cur.execute("SELECT x FROM alpha.main.big UNION ALL SELECT y FROM beta.main.one")
        reader = cur.fetch_record_batch()
        first = reader.read_next_batch()
        assert first.num_rows > 0
        alpha.kill()
        started = time.monotonic()
        # The driver reports it from its reader as an OSError.
        with pytest.raises((adbc_driver_manager.Error, OSError)) as failure:
            while True:
                reader.read_next_batch()
        assert time.monotonic() - started < 10
        message = str(failure.value)
        assert "Unavailable" in message and "exec-alpha" in message, message

    with coordinator.connect() as conn:
        # Once its lease runs out, its database is reported as unserved, fast.
        def unserved():
            try:
                count(conn, "SELECT count(*) FROM alpha.main.big")
            except adbc_driver_manager.Error as error:
                return 'no executor serves database "alpha"' in str(error)
            return False

        wait_until(unserved, timeout_s=20, what="the dead executor to be dropped")
        assert count(conn, "SELECT count(*) FROM beta.main.one") == 1

        # Restarted on its data, it registers again and serves, with no
        # restart of the coordinator.
        alpha.start()
        assert wait_until(lambda: count(conn, "SELECT count(*) FROM alpha.main.big"), what="alpha back") == BIG_ROWS


def test_a_join_whose_small_side_is_on_a_dead_executor_fails_fast_and_names_it(cluster):
    coordinator, alpha, beta = cluster["coordinator"], cluster["alpha"], cluster["beta"]
    sql = "SELECT count(*) FROM alpha.main.big AS b JOIN beta.main.one AS o ON b.x = o.y"
    with coordinator.connect() as conn, conn.cursor() as cur:
        # beta's one row goes to alpha, which fetches it from beta itself.
        cur.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cur.fetchall())
        assert "Shipped [REMOTE exec-beta]" in plan, plan
        assert count(conn, sql) == 1

        beta.kill()
        started = time.monotonic()
        with pytest.raises(adbc_driver_manager.Error) as failure:
            count(conn, sql)
        assert time.monotonic() - started < 10
        message = str(failure.value)
        assert "Unavailable" in message and "exec-beta" in message, message
        # alpha, which was fetching, goes on serving.
        assert count(conn, "SELECT count(*) FROM alpha.main.big") == BIG_ROWS


def test_executors_keep_serving_while_etcd_is_down_and_register_again(cluster):
    etcd, coordinator = cluster["etcd"], cluster["coordinator"]
    etcd.stop()
    with coordinator.connect() as conn:
        # The coordinator keeps its last view and the executors keep serving.
        assert count(conn, "SELECT count(*) FROM alpha.main.big b JOIN beta.main.one o ON b.x = o.y") == 1
    etcd.start()
    # A coordinator started now sees both executors: they registered again.
    late = Coordinator(cluster["root"] / "late", etcd).start()
    try:
        with late.connect() as conn:
            wait_until(lambda: catalogs(conn) >= {"alpha", "beta"}, timeout_s=20, what="executors registered again")
            assert count(conn, "SELECT count(*) FROM alpha.main.big b JOIN beta.main.one o ON b.x = o.y") == 1
    finally:
        late.stop()


def test_a_table_made_through_another_coordinator_is_planned_at_once(cluster):
    """An executor announces a new catalog version after DDL; coordinators
    list its tables again instead of waiting for their mirror to age."""
    first = cluster["coordinator"]
    second = Coordinator(cluster["root"] / "second", cluster["etcd"]).start()
    try:
        with first.connect() as conn:
            # The first coordinator mirrors the catalogs now.
            assert count(conn, "SELECT count(*) FROM alpha.main.big b JOIN beta.main.one o ON b.x = o.y") == 1
            with second.connect() as other, other.cursor() as cur:
                cur.execute("CREATE TABLE beta.main.two AS SELECT 2 AS y")
            started = time.monotonic()
            wait_until(
                lambda: count(conn, "SELECT count(*) FROM alpha.main.big b JOIN beta.main.two t ON b.x = t.y") == 1,
                timeout_s=20,
                what="the new table planned across executors",
            )
            # Well before the mirror's 30 s lifetime runs out.
            assert time.monotonic() - started < 10
    finally:
        second.stop()


def test_a_burst_of_ddl_keeps_the_executor_registered(cluster):
    """Each DDL statement changes the executor's record (its catalog
    version); the lease must still be renewed on time throughout."""
    with cluster["coordinator"].connect() as conn, conn.cursor() as cur:
        deadline = time.monotonic() + 6  # twice the test lease
        statements = 0
        while time.monotonic() < deadline:
            cur.execute(f"CREATE OR REPLACE TABLE alpha.main.t{statements % 3} AS SELECT {statements} AS v")
            statements += 1
        assert statements > 20
        assert "alpha" in catalogs(conn)
        assert count(conn, "SELECT count(*) FROM alpha.main.big b JOIN beta.main.one o ON b.x = o.y") == 1


def test_executors_and_coordinators_started_before_etcd_wait_for_it(tmp_path):
    """The pods of a new cluster start together: an executor and a
    coordinator that start before etcd answers wait for it, then serve."""
    etcd = Etcd(tmp_path / "etcd")  # its port is chosen; it is not started yet
    executor = Executor(tmp_path / "exec", etcd, "exec-early", ["early"])
    coordinator = Coordinator(tmp_path / "coordinator", etcd)
    # start() returns once the process listens, which is after etcd answered.
    failures = []

    def start(process):
        try:
            process.start()
        except Exception as error:  # noqa: BLE001 - reported below, in the test's thread
            failures.append(error)

    starts = [threading.Thread(target=start, args=(process,), daemon=True) for process in (executor, coordinator)]
    try:
        for thread in starts:
            thread.start()
        for process in (executor, coordinator):
            wait_until(lambda: "waiting for etcd" in process.log_path.read_text(), what="a process to wait for etcd")
        etcd.start()
        for thread in starts:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a process did not start once etcd answered"
        assert not failures, failures
        with coordinator.connect() as conn:
            wait_until(lambda: "early" in catalogs(conn), what="the executor to register")
            assert count(conn, "SELECT 42") == 42
    finally:
        for process in (coordinator, executor):
            if process.proc is not None:
                process.stop()
        etcd.stop()


def test_a_process_gives_up_on_etcd_after_its_patience(tmp_path):
    etcd = Etcd(tmp_path / "etcd")  # never started
    executor = Executor(tmp_path / "exec", etcd, "exec-alone", ["alone"], extra_args=["--etcd-wait", "1s"])
    with pytest.raises(AssertionError):
        executor.start()
    assert executor.proc.wait(timeout=30) != 0
    log = executor.log_path.read_text()
    assert "waiting for etcd" in log and etcd.url.removeprefix("http://") in log, log
