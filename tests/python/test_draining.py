"""Draining: SIGTERM (a rolling update, a drained node) stops a server from
taking new statements but lets a stream already running finish within
--shutdown-grace; then the process exits cleanly. Against `openduck serve`
and against an executor of a cluster, under a stream through the
coordinator."""

import json
import signal
import subprocess
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from cluster_harness import Coordinator, Etcd, Executor, wait_until
from helm_harness import grpc_serving
from openduck_harness import Server, openduck_bin

# The driver's statement, whose close failed against the drained server, is
# closed again when collected, and says so on stderr: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ROWS = 5_000_000
QUERY = f"SELECT range AS id FROM range({ROWS})"


def drain_during_stream(conn, process, drained_port):
    """Starts QUERY's stream on `conn`, SIGTERMs `process` after its first
    batch, and returns the rows the stream then delivers in all."""
    cur = conn.cursor()
    cur.execute(QUERY)
    reader = cur.fetch_record_batch()
    rows = reader.read_next_batch().num_rows
    process.proc.send_signal(signal.SIGTERM)
    # The server says it is draining before the stream ends.
    wait_until(lambda: not grpc_serving(drained_port), timeout_s=10, what="health to answer NOT_SERVING")
    assert process.proc.poll() is None, "the process exited with a stream still running"
    for batch in reader:
        rows += batch.num_rows
    try:
        # The driver closes its prepared statement with one more call, which
        # a drained server, gone once its last call ended, may not take.
        cur.close()
    except flight_sql.Error:
        pass
    return rows


def port_of(uri):
    return int(uri.rsplit(":", 1)[1])


def test_serve_lets_a_running_stream_finish_and_refuses_new_statements(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--shutdown-grace", "30s"]).start()
    try:
        with server.connect() as conn:
            assert drain_during_stream(conn, server, port_of(server.uri)) == ROWS
        code = server.proc.wait(timeout=30)
        assert code == 0, server.log_path.read_text()[-2000:]
        server.proc.stdout.close()
        server.proc = None
        # Nothing listens any more: a new client fails at once, it does not hang.
        started = time.monotonic()
        with pytest.raises(flight_sql.Error):
            with flight_sql.connect(server.uri, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
        assert time.monotonic() - started < 10
    finally:
        if server.proc is not None:
            server.proc.kill()


def test_a_draining_executor_finishes_its_stream_and_leaves_the_registry(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    started = []
    try:
        executor = Executor(tmp_path / "exec", etcd, "exec-1", ["mydb"], extra_args=["--shutdown-grace", "30s"])
        started.append(executor.start())
        coordinator = Coordinator(tmp_path / "coordinator", etcd, extra_args=["--direct-results", "false"])
        started.append(coordinator.start())
        with coordinator.connect() as conn:
            assert drain_during_stream(conn, executor, executor.port) == ROWS
        assert executor.proc.wait(timeout=30) == 0
        # The coordinator saw it leave: statements for its database fail
        # fast with a clear error instead of waiting for a dead address.
        wait_until(lambda: 'executor left executor="exec-1"' in coordinator.log_path.read_text(),
                   what="the coordinator to see the executor leave")
        with coordinator.connect() as conn, conn.cursor() as cur:
            started_at = time.monotonic()
            with pytest.raises(flight_sql.Error, match="mydb"):
                cur.execute("SELECT count(*) FROM mydb.main.nothing")
            assert time.monotonic() - started_at < 10
    finally:
        for process in reversed(started):
            if process.proc is not None and process.proc.poll() is None:
                process.stop()
        etcd.stop()


def test_a_rolling_restart_under_read_load_loses_no_query(tmp_path):
    """Every executor of a database (its writer, then each replica) is
    restarted in turn, as a rolling update does, while clients keep reading:
    not one read fails."""
    etcd = Etcd(tmp_path / "etcd").start()
    bucket = str(tmp_path / "bucket")
    started = []

    def executor(name, *args):
        process = Executor(tmp_path / name, etcd, name, [], extra_args=["--storage", bucket, *args])
        started.append(process.start())
        return process

    stop = threading.Event()
    errors, answered = [], []
    try:
        writer = executor("writer", "--database", "mydb")
        coordinator = Coordinator(tmp_path / "coordinator", etcd)
        started.append(coordinator.start())
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: cur.execute("SELECT 1") or cur.fetchall() == [(1,)], what="the writer registered")
            cur.execute("CREATE TABLE mydb.main.t AS SELECT range AS id FROM range(100)")
        replicas = [executor(f"replica-{i}", "--replica", "mydb", "--replica-interval", "200ms") for i in (1, 2)]

        def serves(name):
            """Whether the registry says `name` serves mydb (as `openduck status` reads it)."""
            done = subprocess.run([openduck_bin(), "status", "--etcd", etcd.url, "--format", "json"],
                                  capture_output=True, text=True, timeout=30, check=True)
            return any(e["id"] == name and "mydb" in e["databases"] for e in json.loads(done.stdout)["executors"])

        wait_until(lambda: all(serves(r.executor_id) for r in replicas), what="the replicas to join")

        def read_forever():
            with coordinator.connect() as reader, reader.cursor() as cur:
                while not stop.is_set():
                    try:
                        cur.execute("SELECT count(*), sum(id) FROM mydb.main.t")
                        answer = cur.fetchall()
                        (answered if answer == [(100, 4950)] else errors).append(answer)
                    except Exception as error:  # noqa: BLE001 - every failure is what the test counts
                        errors.append(repr(error))

        readers = [threading.Thread(target=read_forever) for _ in range(4)]
        for thread in readers:
            thread.start()
        for process in [writer, *replicas]:
            mark = len(answered)
            process.stop()  # SIGTERM; asserts a clean exit
            process.start()
            wait_until(lambda: serves(process.executor_id), what=f"{process.executor_id} to serve again")
            wait_until(lambda: len(answered) > mark + 20, what="reads to go on")
        stop.set()
        for thread in readers:
            thread.join()
        assert not errors, errors[:5]
        assert len(answered) >= 60
    finally:
        stop.set()
        for process in reversed(started):
            if process.proc is not None and process.proc.poll() is None:
                process.stop()
        etcd.stop()


def test_a_query_planned_for_an_executor_that_left_runs_on_another(tmp_path):
    """A client plans a read (GetFlightInfo), the executor it was planned for
    leaves (a rolling update), then the client fetches: the coordinator runs
    it where its database is served now."""
    etcd = Etcd(tmp_path / "etcd").start()
    bucket = str(tmp_path / "bucket")
    started = []
    try:
        writer = Executor(tmp_path / "writer", etcd, "writer", ["mydb"], extra_args=["--storage", bucket])
        started.append(writer.start())
        coordinator = Coordinator(tmp_path / "coordinator", etcd, extra_args=["--direct-results", "false"])
        started.append(coordinator.start())
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: cur.execute("SELECT 1") or cur.fetchall() == [(1,)], what="the writer registered")
            cur.execute("CREATE TABLE mydb.main.t AS SELECT range AS id FROM range(100)")
        replica = Executor(tmp_path / "replica", etcd, "replica", [],
                           extra_args=["--storage", bucket, "--replica", "mydb", "--replica-interval", "200ms"])
        started.append(replica.start())

        def every_reader_answers():
            with coordinator.connect() as conn, conn.cursor() as cur:
                for _ in range(4):
                    cur.execute("SELECT count(*) FROM mydb.main.t")
                    if cur.fetchall() != [(100,)]:
                        return False
            return True

        wait_until(every_reader_answers, what="the replica to serve mydb")
        with coordinator.connect() as conn, conn.cursor() as cur:
            partitions, _ = cur.adbc_execute_partitions("SELECT count(*), sum(id) FROM mydb.main.t")
            (partition,) = partitions
            # The signed ticket names the executor it was planned for.
            (planned,) = [p for p in (writer, replica) if f"{p.executor_id}".encode() in partition]
            planned.stop()
            wait_until(lambda: f'executor left executor="{planned.executor_id}"' in coordinator.log_path.read_text(),
                       what="the coordinator to see it leave")
            cur.adbc_read_partition(partition)
            assert cur.fetchall() == [(100, 4950)]
        assert "running it on another" in coordinator.log_path.read_text()
    finally:
        for process in reversed(started):
            if process.proc is not None and process.proc.poll() is None:
                process.stop()
        etcd.stop()


def test_during_the_shutdown_delay_health_fails_but_calls_are_still_taken(tmp_path):
    """--shutdown-delay: what a coordinator behind a Kubernetes Service needs,
    readiness failing at once while clients still routed here get answers."""
    server = Server(tmp_path / "data", extra_args=["--shutdown-delay", "3s"]).start()
    try:
        server.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not grpc_serving(port_of(server.uri)), timeout_s=5, what="health to answer NOT_SERVING")
        with flight_sql.connect(server.uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT 42")
            assert cur.fetchall() == [(42,)]
        assert server.proc.poll() is None
        assert server.proc.wait(timeout=30) == 0
        server.proc.stdout.close()
        server.proc = None
    finally:
        if server.proc is not None:
            server.proc.kill()
