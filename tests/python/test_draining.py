"""Draining: SIGTERM (a rolling update, a drained node) stops a server from
taking new statements but lets a stream already running finish within
--shutdown-grace; then the process exits cleanly. Against `openduck serve`
and against an executor of a cluster, under a stream through the
coordinator."""

import signal
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from cluster_harness import Coordinator, Etcd, Executor, wait_until
from helm_harness import grpc_serving
from openduck_harness import Server

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
