"""A result in parts: a UNION ALL whose branches each run on one executor comes back as
one Flight endpoint per branch, each redeemed at its executor, to a client that says it
reads every endpoint (`x-openduck-endpoints: all`): the DuckDB extension says so and reads
them in parallel; the ADBC driver does with a call header. Every other client gets one
endpoint, as before (flightsql-dbapi reads the first endpoint alone)."""

import threading
import time

import duckdb
import pytest
from adbc_driver_flightsql import dbapi as flight_sql
from cluster_harness import Coordinator, Etcd, Executor, free_port, wait_until
from extension_harness import local_duckdb, over_a_fast_link, placement
from flightsql import FlightSQLClient
from telemetry_harness import sample, scrape

UNION = "SELECT k, v FROM sales.main.p WHERE v % 3 = 0 UNION ALL SELECT k, w FROM crm.main.q"
EVERY_ENDPOINT = {"adbc.flight.sql.rpc.call_header.x-openduck-endpoints": "all"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("endpoints")
    metrics = f"127.0.0.1:{free_port()}"
    etcd = Etcd(root / "etcd").start()
    started = []
    try:
        for index, database in enumerate(["sales", "crm"]):
            # One connection each: an executor still busy with an interrupted part
            # answers nothing else.
            started.append(Executor(root / f"exec-{index}", etcd, f"exec-{index}", [database],
                                    extra_args=["--max-connections", "1"]).start())
        coordinator = Coordinator(root / "coordinator", etcd, extra_args=["--metrics-listen", metrics]).start()
        started.append(coordinator)
        with coordinator.connect() as conn:
            wait_until(lambda: len(conn.adbc_get_objects(depth="catalogs").read_all()) >= 2, what="executors")
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE sales.main.p AS SELECT range AS k, range * 2 AS v FROM range(30000)")
                cur.execute("CREATE TABLE crm.main.q AS SELECT range AS k, range * 3 AS w FROM range(20000)")
        yield {"coordinator": coordinator, "metrics": metrics}
    finally:
        for process in reversed(started):
            process.stop()
        etcd.stop()


def expected():
    rows = [(k, 2 * k) for k in range(30000) if (2 * k) % 3 == 0] + [(k, 3 * k) for k in range(20000)]
    return sorted(rows)


def through_coordinator(cluster):
    """Rows the coordinator has streamed to clients so far."""
    return sample(scrape(cluster["metrics"]), "openduck_rows_streamed_total", receiver="client") or 0


def history(cluster, tag):
    with cluster["coordinator"].connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT sql, status FROM openduck.main.query_history ORDER BY sequence")
        return [(sql, status) for sql, status in cur.fetchall() if tag in sql and "query_history" not in sql]


def test_adbc_asking_for_every_endpoint_gets_one_partition_per_executor(cluster):
    coordinator = cluster["coordinator"]
    with coordinator.connect(**EVERY_ENDPOINT) as conn, conn.cursor() as cur:
        partitions, _ = cur.adbc_execute_partitions(UNION)
        assert len(partitions) == 2
        parts = []
        for partition in partitions:
            cur.adbc_read_partition(partition)
            parts.append(cur.fetch_arrow_table())
        assert sorted(part.num_rows for part in parts) == [10000, 20000]
        assert all(part.column_names == ["k", "v"] for part in parts)
        rows = sorted(row for part in parts for row in zip(*(column.to_pylist() for column in part.columns)))
        assert rows == expected()

        cur.execute(UNION)
        table = cur.fetch_arrow_table()
        assert sorted(zip(table["k"].to_pylist(), table["v"].to_pylist())) == expected()

    # Without the header: one endpoint, every row through it.
    with coordinator.connect() as conn, conn.cursor() as cur:
        partitions, _ = cur.adbc_execute_partitions(UNION)
        assert len(partitions) == 1
        cur.adbc_read_partition(partitions[0])
        assert cur.fetch_arrow_table().num_rows == 30000


def test_a_client_that_reads_the_first_endpoint_alone_gets_every_row(cluster):
    host, port = cluster["coordinator"].uri.removeprefix("grpc://").rsplit(":", 1)
    client = FlightSQLClient(host=host, port=int(port), insecure=True)
    try:
        info = client.execute(UNION)
        assert len(info.endpoints) == 1
        table = client.do_get(info.endpoints[0].ticket).read_all()
        assert sorted(zip(table["k"].to_pylist(), table["v"].to_pylist())) == expected()
    finally:
        client.close()


def test_the_extension_reads_the_parts_from_their_executors(cluster):
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:sales?endpoint={cluster['coordinator'].uri}' AS sales")
    before = through_coordinator(cluster)
    tagged = UNION.replace("SELECT k, v", "SELECT /* parts */ k, v")
    rows = con.execute(f"SELECT * FROM openduck_query('sales', $${tagged}$$)").fetchall()
    assert sorted(rows) == expected()
    # The 30,000 rows came from the executors, not through the coordinator.
    assert through_coordinator(cluster) - before < 1000
    assert [status for _, status in history(cluster, "/* parts */")] == ["direct"]
    con.close()


def test_a_query_over_databases_of_two_executors_is_not_placed_there_whole(cluster):
    # ATTACH 'openduck:' attaches each database; a query over two of them runs on the
    # service whole only when one executor serves both (DuckDB's text, run verbatim):
    # here they live apart, so the user's DuckDB scans each.
    con = over_a_fast_link(local_duckdb())
    con.execute(f"ATTACH 'openduck:?endpoint={cluster['coordinator'].uri}'")
    sql = "SELECT k AS tag_attached, v FROM sales.p WHERE v % 3 = 0 UNION ALL SELECT k, w FROM crm.q"
    parts = placement(con, sql)
    assert parts["whole"] == [] and len(parts["scanned"]) == 2, parts
    assert sorted(con.execute(sql).fetchall()) == expected()
    con.close()


def test_a_query_required_on_one_executor_is_refused_across_them(cluster):
    # What the extension sends with the query it placed, so that databases that moved
    # apart since it asked fail the query rather than change its dialect.
    header = {"adbc.flight.sql.rpc.call_header.x-openduck-one-executor": "required"}
    with cluster["coordinator"].connect(**header) as conn, conn.cursor() as cur:
        with pytest.raises(Exception, match="do not live on one executor"):
            cur.execute(UNION)
            cur.fetchall()
        cur.execute("SELECT count(*) FROM crm.main.q")
        assert cur.fetchall() == [(20000,)]


def test_interrupting_a_query_in_parts_stops_every_part(cluster):
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:sales?endpoint={cluster['coordinator'].uri}' AS sales")
    # Each branch a cross join of one executor's rows with themselves, thrice.
    forever = ("SELECT sum(a.k * b.k - c.k) AS s FROM sales.main.p a, sales.main.p b, sales.main.p c "
               "UNION ALL SELECT sum(a.k * b.w - c.k) FROM crm.main.q a, crm.main.q b, crm.main.q c")
    errors = []

    def run():
        try:
            con.sql(f"SELECT * FROM openduck_query('sales', $${forever}$$)").fetchall()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def answers(database):
        """Whether the executor of `database` answers a query within 2 s (its one
        connection is free)."""
        done = threading.Event()

        def ask():
            with cluster["coordinator"].connect() as conn, conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {database}.main.{'p' if database == 'sales' else 'q'}")
                cur.fetchall()
                done.set()

        threading.Thread(target=ask, daemon=True).start()
        return done.wait(2)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    # Until both parts hold their executors at once: read one after the other, the
    # second part would never start.
    while answers("sales") or answers("crm"):
        assert time.monotonic() < deadline, "the parts never started"
    con.interrupt()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the interrupt did not end the query"
    assert len(errors) == 1 and isinstance(errors[0], duckdb.InterruptException), errors
    wait_until(lambda: answers("sales") and answers("crm"), timeout_s=30, what="both executors free again")
    con.close()
