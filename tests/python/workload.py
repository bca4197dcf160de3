"""A mixed load of readers and writers against one openduck server, with a
ledger of every write the server acknowledged.

Each client is a thread with its own ADBC connection (autocommit on) that
loops over a mix of statement kinds until told to stop:

- readers: `point` (a prepared point query), `agg` (a grouped aggregation),
  `scan` (a filtered scan fetched as Arrow);
- writers: `insert` (one row into a table all writers share), `update` (a
  counter row of the client's own in a shared table), `ingest`
  (`adbc_ingest` of a batch of rows into a table of the client's own),
  `txn` (an insert and an update in one transaction, committed together).

Every write carries ids unique to it, so `Ledger.verify` can tell afterwards
that each acknowledged write is present exactly once and that no write is
half present. Used by the concurrent-writes test and by `benches/load.py`.
"""

import random
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import adbc_driver_manager
import pyarrow as pa

FACT_ROWS = 100_000
INGEST_ROWS = 1_000
READS = ("point", "agg", "scan")
WRITES = ("insert", "update", "ingest", "txn")
GRPC_CODES = (
    "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
)
CODE = re.compile(r"\b(" + "|".join(GRPC_CODES) + r")\b|\b(" + "|".join(
    re.sub(r"(?<!^)([A-Z])", r"_\1", code).upper() for code in GRPC_CODES
) + r")\b")


GRPC_STATUS = re.compile(r"\((" + "|".join(GRPC_CODES) + r"); [\w.]+\)")


def status_code(error: Exception) -> str:
    """The gRPC status named in a driver error's message, or its type. The
    ADBC driver writes it as `(Aborted; ExecuteQuery)` after the message, and
    its own status (`UNKNOWN: ...`, ADBC's code for several gRPC ones) first."""
    grpc = GRPC_STATUS.search(str(error))
    if grpc:
        return grpc.group(1)
    match = CODE.search(str(error))
    if not match:
        return type(error).__name__
    name = match.group(1) or match.group(2)
    return name if name in GRPC_CODES else "".join(part.title() for part in name.split("_"))


def prepare(conn):
    """Creates the tables the workload reads and writes."""
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE OR REPLACE TABLE facts AS SELECT range AS id, range % 97 AS k, "
            f"(range * 7919) % 100000 AS v, 'row-' || range AS label FROM range({FACT_ROWS})"
        )
        cur.execute("CREATE OR REPLACE TABLE shared (id BIGINT, client INTEGER, payload VARCHAR)")
        cur.execute("CREATE OR REPLACE TABLE counters (client INTEGER, n BIGINT)")


@dataclass
class Ledger:
    """What each client sent and what the server acknowledged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    inserts_acked: set = field(default_factory=set)
    inserts_sent: set = field(default_factory=set)
    updates_acked: dict = field(default_factory=lambda: defaultdict(int))
    updates_sent: dict = field(default_factory=lambda: defaultdict(int))
    ingests_acked: set = field(default_factory=set)  # (client, batch)
    ingests_sent: set = field(default_factory=set)

    def verify(self, conn):
        """Raises AssertionError unless every acknowledged write is present
        exactly once, nothing sent is present twice, and no write is half
        present. Returns counts of what was checked."""
        with conn.cursor() as cur:
            cur.execute("SELECT id, count(*) FROM shared GROUP BY id")
            present = dict(cur.fetchall())
            missing = self.inserts_acked - present.keys()
            assert not missing, f"{len(missing)} acknowledged inserts lost, e.g. {sorted(missing)[:5]}"
            twice = {i: n for i, n in present.items() if n != 1}
            assert not twice, f"rows inserted more than once: {list(twice.items())[:5]}"
            unknown = present.keys() - self.inserts_sent
            assert not unknown, f"rows nobody sent: {sorted(unknown)[:5]}"

            cur.execute("SELECT client, n FROM counters")
            counters = dict(cur.fetchall())
            for client, acked in self.updates_acked.items():
                value = counters.get(client, 0)
                assert acked <= value <= self.updates_sent[client], (
                    f"client {client}: counter {value}, {acked} updates acknowledged, "
                    f"{self.updates_sent[client]} sent"
                )

            # A client whose first ingest (the one that creates its table)
            # was cut off has no table: no rows, which `lost` then checks.
            cur.execute("SELECT table_name FROM duckdb_tables()")
            tables = {name for (name,) in cur.fetchall()}
            batches = {}
            for client in {client for client, _ in self.ingests_sent}:
                if f"ingest_{client}" not in tables:
                    continue
                cur.execute(f"SELECT batch, count(*) FROM ingest_{client} GROUP BY batch")
                batches.update({(client, batch): rows for batch, rows in cur.fetchall()})
            lost = self.ingests_acked - batches.keys()
            assert not lost, f"{len(lost)} acknowledged ingests lost, e.g. {sorted(lost)[:5]}"
            partial = {key: rows for key, rows in batches.items() if rows != INGEST_ROWS}
            assert not partial, f"ingests present in part or twice: {list(partial.items())[:5]}"
            return {
                "inserts": len(self.inserts_acked),
                "updates": sum(self.updates_acked.values()),
                "ingests": len(self.ingests_acked),
            }


@dataclass
class Outcome:
    """Latencies (seconds) by kind, and errors by kind and status code."""

    latencies: dict = field(default_factory=lambda: defaultdict(list))
    errors: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    messages: list = field(default_factory=list)
    in_doubt: int = 0

    def statements(self):
        return sum(len(values) for values in self.latencies.values())

    def error_count(self):
        return sum(sum(codes.values()) for codes in self.errors.values())


class Client(threading.Thread):
    """One client: loops over its kinds until `stop` is set. A statement that
    fails after `crashed` is set (the server was killed) is in doubt, not an
    error."""

    def __init__(self, number, server, kinds, ledger, outcome, stop, crashed, seed):
        super().__init__(daemon=True, name=f"client-{number}")
        self.number = number
        self.server = server
        self.kinds = kinds
        self.ledger = ledger
        self.outcome = outcome
        self.stop = stop
        self.crashed = crashed
        self.random = random.Random(seed)
        self.sequence = 0
        self.batches = 0
        self.transactional = None

    def next_id(self):
        self.sequence += 1
        return self.number * 10_000_000 + self.sequence

    def run(self):
        try:
            conn = self.server.connect()
        except Exception as error:  # noqa: BLE001 - recorded, the test decides
            self.record_error("connect", error)
            return
        try:
            with conn.cursor() as cur:
                if "update" in self.kinds or "txn" in self.kinds:
                    cur.execute("INSERT INTO counters VALUES (?, 0)", parameters=(self.number,))
                while not self.stop.is_set():
                    kind = self.random.choice(self.kinds)
                    started = time.perf_counter()
                    try:
                        getattr(self, kind)(conn, cur)
                    except Exception as error:  # noqa: BLE001
                        self.record_error(kind, error)
                        if self.crashed.is_set():
                            return
                        continue
                    elapsed = time.perf_counter() - started
                    with self.ledger.lock:
                        self.outcome.latencies[kind].append(elapsed)
        except Exception as error:  # noqa: BLE001
            self.record_error("setup", error)
        finally:
            for connection in (conn, self.transactional):
                try:
                    if connection is not None:
                        connection.close()
                except Exception:  # noqa: BLE001 - the server may be gone
                    pass

    def record_error(self, kind, error):
        with self.ledger.lock:
            if self.crashed.is_set():
                self.outcome.in_doubt += 1
                return
            self.outcome.errors[kind][status_code(error)] += 1
            if len(self.outcome.messages) < 20:
                self.outcome.messages.append(f"{kind}: {error}")

    # Readers.
    def point(self, conn, cur):
        cur.execute("SELECT * FROM facts WHERE id = ?", parameters=(self.random.randrange(FACT_ROWS),))
        assert len(cur.fetchall()) == 1

    def agg(self, conn, cur):
        cur.execute("SELECT k, sum(v), count(*) FROM facts GROUP BY k")
        assert len(cur.fetchall()) == 97

    def scan(self, conn, cur):
        cur.execute("SELECT id, v, label FROM facts WHERE v < 20000")
        cur.fetch_arrow_table()

    # Writers: each records what it sent before it sends, and what was
    # acknowledged once the call returns.
    def insert(self, conn, cur):
        row = self.next_id()
        with self.ledger.lock:
            self.ledger.inserts_sent.add(row)
        cur.execute("INSERT INTO shared VALUES (?, ?, 'x')", parameters=(row, self.number))
        with self.ledger.lock:
            self.ledger.inserts_acked.add(row)

    def update(self, conn, cur):
        with self.ledger.lock:
            self.ledger.updates_sent[self.number] += 1
        cur.execute("UPDATE counters SET n = n + 1 WHERE client = ?", parameters=(self.number,))
        with self.ledger.lock:
            self.ledger.updates_acked[self.number] += 1

    def ingest(self, conn, cur):
        self.batches += 1
        key = (self.number, self.batches)
        first = self.next_id()
        self.sequence += INGEST_ROWS
        table = pa.table({
            "id": pa.array(range(first, first + INGEST_ROWS), pa.int64()),
            "batch": pa.array([self.batches] * INGEST_ROWS, pa.int64()),
        })
        with self.ledger.lock:
            self.ledger.ingests_sent.add(key)
        cur.adbc_ingest(f"ingest_{self.number}", table, mode="create_append")
        with self.ledger.lock:
            self.ledger.ingests_acked.add(key)

    def txn(self, conn, cur):
        """An insert and an update committed together, on a second connection
        of the client's with autocommit off (so a transaction is always open
        on it, as DBAPI clients keep one)."""
        row = self.next_id()
        with self.ledger.lock:
            self.ledger.inserts_sent.add(row)
            self.ledger.updates_sent[self.number] += 1
        if self.transactional is None:
            self.transactional = self.server.connect(autocommit=False)
        try:
            with self.transactional.cursor() as tcur:
                tcur.execute("INSERT INTO shared VALUES (?, ?, 'txn')", parameters=(row, self.number))
                tcur.execute("UPDATE counters SET n = n + 1 WHERE client = ?", parameters=(self.number,))
            self.transactional.commit()
        except Exception:
            if not self.crashed.is_set():
                self.transactional.rollback()
            raise
        with self.ledger.lock:
            self.ledger.inserts_acked.add(row)
            self.ledger.updates_acked[self.number] += 1


def run(server, writers, readers, duration_s, kinds=None, sample=None, kill_at_end=False, seed=1):
    """Runs `writers` writing clients and `readers` reading ones for
    `duration_s`. `sample(phase)` is called at the start, the middle and the
    end (for memory readings). With `kill_at_end` the server is killed with
    SIGKILL while the clients still run. Returns (ledger, outcome, elapsed)."""
    ledger, outcome = Ledger(), Outcome()
    stop, crashed = threading.Event(), threading.Event()
    write_kinds = tuple(kinds or WRITES)
    clients = [
        Client(n, server, write_kinds, ledger, outcome, stop, crashed, seed * 1000 + n)
        for n in range(writers)
    ] + [
        Client(writers + n, server, READS, ledger, outcome, stop, crashed, seed * 1000 + writers + n)
        for n in range(readers)
    ]
    sample = sample or (lambda phase: None)
    sample("start")
    started = time.perf_counter()
    for client in clients:
        client.start()
    deadline = started + duration_s
    halfway = started + duration_s / 2
    sampled_middle = False
    while time.perf_counter() < deadline:
        time.sleep(min(0.1, max(0.0, deadline - time.perf_counter())))
        if not sampled_middle and time.perf_counter() >= halfway:
            sample("middle")
            sampled_middle = True
    elapsed = time.perf_counter() - started
    if kill_at_end:
        crashed.set()
        server.kill()
    else:
        sample("end")
    stop.set()
    for client in clients:
        client.join(timeout=60)
        assert not client.is_alive(), f"{client.name} did not stop within 60 s"
    return ledger, outcome, elapsed


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_mb(pid):
    """Resident memory of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
