"""Chaos: a cluster under a write load loses a process to `kill -9` in turn
(the writer, a read replica, the coordinator, etcd), gets it back, and at the
end holds every acknowledged write exactly once and no write in part.

Each write puts a pair of rows, `id` and `-id`, either in one autocommitted
statement or in two statements of one transaction. Clients record in a
ledger every id they tried and every id the service acknowledged, and never
try an id twice, so a write that failed with an unknown outcome may be
present whole or absent, but an acknowledged one must be there once, and a
reader must never see half a pair."""

import collections
import json
import os
import subprocess
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from cluster_harness import Coordinator, Etcd, Executor, cluster_env, wait_until
from openduck_harness import openduck_bin

ROUNDS = int(os.environ.get("OPENDUCK_CHAOS_ROUNDS", "2"))
# Load between two faults, so that each one lands in the middle of writes.
UNDER_LOAD_S = 1.5
# A client call that takes longer than this is a hang, not a slow answer.
CALL_TIMEOUT_S = 30
TIMEOUTS = {
    f"adbc.flight.sql.rpc.timeout_seconds.{kind}": str(CALL_TIMEOUT_S) for kind in ("fetch", "query", "update")
}


class Ledger:
    """What the clients tried, what was acknowledged, what readers saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tried = set()
        self.acknowledged = set()
        self.acknowledged_at = []
        self.reads_at = []
        self.torn_reads = []
        self.errors = collections.Counter()

    def acks_since(self, moment):
        with self.lock:
            return sum(1 for at in self.acknowledged_at if at > moment)

    def reads_since(self, moment):
        with self.lock:
            return sum(1 for at in self.reads_at if at > moment)

    def failed(self, error):
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        with self.lock:
            self.errors[first_line[:120]] += 1


def connect(coordinator, autocommit=True):
    return flight_sql.connect(coordinator.uri, db_kwargs=dict(TIMEOUTS), autocommit=autocommit)


def close_quietly(conn):
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - the server behind it may be gone
        pass


def write_forever(coordinator, ledger, client, in_transaction, stop):
    """One client writing pairs until `stop`; reconnects after any error."""
    conn = None
    serial = 0
    while not stop.is_set():
        serial += 1
        pair = client * 1_000_000 + serial
        with ledger.lock:
            ledger.tried.add(pair)
        try:
            if conn is None:
                conn = connect(coordinator, autocommit=not in_transaction)
                # The driver falls back to autocommit when it cannot begin a
                # transaction (the writer is gone): a pair would be two writes.
                autocommit = conn.adbc_connection.get_option("adbc.connection.autocommit")
                if autocommit != str(not in_transaction).lower():
                    raise RuntimeError(f"connected with autocommit {autocommit}")
            with conn.cursor() as cur:
                if in_transaction:
                    cur.execute(f"INSERT INTO mydb.main.ledger VALUES ({pair})")
                    cur.execute(f"INSERT INTO mydb.main.ledger VALUES (-{pair})")
                    conn.commit()
                else:
                    cur.execute(f"INSERT INTO mydb.main.ledger VALUES ({pair}), (-{pair})")
            with ledger.lock:
                ledger.acknowledged.add(pair)
                ledger.acknowledged_at.append(time.monotonic())
        except Exception as error:  # noqa: BLE001 - any failure leaves the outcome unknown
            conn = after_failure(error, conn, ledger, stop)
    if conn is not None:
        close_quietly(conn)


def after_failure(error, conn, ledger, stop):
    """Records `error`, drops `conn` (its server may be gone) and pauses a
    little before the client connects again; the connection to use: none."""
    ledger.failed(error)
    if conn is not None:
        close_quietly(conn)
    stop.wait(0.05)
    return None


def read_forever(coordinator, ledger, stop):
    """One client checking that every read sees whole pairs only."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = connect(coordinator)
            with conn.cursor() as cur:
                cur.execute("SELECT count(*), coalesce(sum(v), 0) FROM mydb.main.ledger")
                rows, total = cur.fetchone()
            with ledger.lock:
                ledger.reads_at.append(time.monotonic())
                if rows % 2 or total:
                    ledger.torn_reads.append((rows, total))
        except Exception as error:  # noqa: BLE001 - reads fail while their server is gone
            conn = after_failure(error, conn, ledger, stop)
    if conn is not None:
        close_quietly(conn)


@pytest.fixture
def cluster(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    bucket = str(tmp_path / "bucket")
    writer = Executor(tmp_path / "writer", etcd, "writer", ["mydb"], extra_args=["--storage", bucket])
    replica = Executor(tmp_path / "replica", etcd, "replica", [],
                       extra_args=["--storage", bucket, "--replica", "mydb", "--replica-interval", "200ms"])
    coordinator = Coordinator(tmp_path / "coordinator", etcd)
    processes = [writer, replica, coordinator]
    try:
        writer.start()
        coordinator.start()
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: cur.execute("SELECT 1") or True, what="the writer registered")
            cur.execute("CREATE TABLE mydb.main.ledger (v BIGINT)")
        replica.start()
        wait_until(lambda: "executor joined executor=replica" in coordinator.log_path.read_text(),
                   what="the replica to join")
        yield {"etcd": etcd, "writer": writer, "replica": replica, "coordinator": coordinator}
    finally:
        for process in reversed(processes):
            if process.proc is not None:
                process.stop()
        etcd.stop()


def caught_up(etcd):
    """Whether the replica serves mydb's head snapshot, as `openduck status`
    reads it from etcd (executors report it at each lease renewal)."""
    shown = subprocess.run([openduck_bin(), "status", "--format", "json"], env=dict(os.environ, **cluster_env(etcd)),
                           capture_output=True, text=True, timeout=30, check=True)
    database = json.loads(shown.stdout)["databases"]["mydb"]
    replicas = database["replicas"]
    return database["head"] is not None and replicas and all(r["snapshot"] == database["head"] for r in replicas)


def settled_rows(cluster):
    """The table's rows once the replica serves the latest snapshot, so that
    the writer and the replica answer alike."""
    wait_until(lambda: caught_up(cluster["etcd"]), timeout_s=60, interval_s=0.3, what="the replica to catch up")
    with connect(cluster["coordinator"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT v FROM mydb.main.ledger ORDER BY v")
        return cur.fetch_arrow_table().column("v").to_pylist()


def test_every_acknowledged_write_survives_kill_9_of_each_process_in_turn(cluster):
    etcd, writer, replica, coordinator = (cluster[name] for name in ("etcd", "writer", "replica", "coordinator"))
    ledger = Ledger()
    stop = threading.Event()
    clients = [
        threading.Thread(target=write_forever, args=(coordinator, ledger, client, client % 2 == 1, stop))
        for client in range(1, 5)
    ] + [threading.Thread(target=read_forever, args=(coordinator, ledger, stop)) for _ in range(2)]
    for thread in clients:
        thread.start()
    faults = []
    try:
        for _ in range(ROUNDS):
            for victim in ("writer", "replica", "coordinator", "etcd"):
                stop.wait(UNDER_LOAD_S)
                killed_at = time.monotonic()
                if victim == "etcd":
                    etcd.proc.kill()
                    etcd.proc.wait()
                    etcd.proc = None
                else:
                    cluster[victim].kill()
                if victim == "writer":
                    # The replica keeps answering reads while the writer is gone.
                    wait_until(lambda: ledger.reads_since(killed_at) >= 5, timeout_s=30,
                               what="reads answered while the writer is down")
                stop.wait(UNDER_LOAD_S)
                restarted_at = time.monotonic()
                (etcd if victim == "etcd" else cluster[victim]).start()
                # Writes and reads resume after each restart.
                wait_until(lambda: ledger.acks_since(restarted_at) >= 5 and ledger.reads_since(restarted_at) >= 5,
                           timeout_s=60, what=f"writes and reads to resume after {victim} returned")
                faults.append((victim, round(restarted_at - killed_at, 1), round(time.monotonic() - restarted_at, 1)))
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=2 * CALL_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in clients), "a client hung"

    rows = settled_rows(cluster)
    print(f"faults (victim, down s, back to writing s): {faults}")
    print(f"{len(ledger.acknowledged)} writes acknowledged of {len(ledger.tried)} tried; "
          f"{len(ledger.reads_at)} reads; errors:")
    for message, times in ledger.errors.most_common():
        print(f"  {times:5} {message}")
    assert not ledger.torn_reads, f"reads saw half a write: {ledger.torn_reads[:5]}"
    counts = collections.Counter(rows)
    doubled = [v for v, n in counts.items() if n > 1]
    assert not doubled, f"rows present more than once: {doubled[:10]}"
    halves = [v for v in counts if -v not in counts]
    assert not halves, f"writes present in part: {halves[:10]}"
    present = {abs(v) for v in counts}
    lost = ledger.acknowledged - present
    assert not lost, f"{len(lost)} acknowledged writes lost: {sorted(lost)[:10]}"
    assert present <= ledger.tried, f"rows nobody wrote: {sorted(present - ledger.tried)[:10]}"
    # Every fault happened under load: each round acknowledged writes.
    assert len(ledger.acknowledged) > 20 * ROUNDS, len(ledger.acknowledged)


def test_a_transaction_left_open_by_a_dead_coordinator_holds_back_no_write(cluster):
    coordinator = cluster["coordinator"]
    orphan = connect(coordinator, autocommit=False)
    try:
        with orphan.cursor() as cur:
            # The transaction's write holds the writer's gate until it ends.
            cur.execute("INSERT INTO mydb.main.ledger VALUES (7)")
        coordinator.kill()
        coordinator.start()
        # Without the coordinator that opened it, the writer rolls it back:
        # later writes are acknowledged at once, and its row never appears.
        with connect(coordinator) as conn, conn.cursor() as cur:
            wait_until(lambda: cur.execute("SELECT 1") or True, what="the coordinator to serve")
            started = time.monotonic()
            cur.execute("INSERT INTO mydb.main.ledger VALUES (8), (-8)")
            assert time.monotonic() - started < 10
        # Read once the replica caught up too (a read may go to either).
        assert settled_rows(cluster) == [-8, 8]
        assert "closing them" in cluster["writer"].log_path.read_text()
    finally:
        close_quietly(orphan)


def test_reads_move_to_the_other_server_as_soon_as_one_dies(cluster):
    coordinator = cluster["coordinator"]
    with connect(coordinator) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO mydb.main.ledger VALUES (5), (-5)")
    settled_rows(cluster)
    for victim in ("writer", "replica"):
        cluster[victim].kill()
        # Reads do not wait for the dead one's lease to run out: each one
        # that was routed there runs on the other server instead.
        with connect(coordinator) as conn:
            for _ in range(20):
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM mydb.main.ledger")
                    assert cur.fetchone() == (2,)
        cluster[victim].start()
        with connect(coordinator) as conn, conn.cursor() as cur:
            # Back, and caught up: the writer takes writes, the replica the last one.
            wait_until(lambda: cur.execute("INSERT INTO mydb.main.ledger VALUES (6), (-6)") or True,
                       what=f"{victim} to return")
            cur.execute("DELETE FROM mydb.main.ledger WHERE abs(v) = 6")
        settled_rows(cluster)
