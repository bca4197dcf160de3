"""Distributed mode end to end: a real etcd, three `openduck executor`
processes and an `openduck coordinator`, driven by the ADBC Flight SQL driver
and raw pyarrow.flight. TPC-H (generated with tpchgen-cli, scale 0.01) is
spread over the executors, and all 22 queries must give the rows one DuckDB
holding every table gives."""

import subprocess
import sys
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest
import query_compare
from cluster_harness import Coordinator, Executor, placed_cluster, wait_until
from openduck_harness import Server
from query_compare import assert_same_rows, rows_of
from test_jdbc_metadata import command
from test_transactions_ingest import field

TPCH_QUERIES = Path(__file__).resolve().parents[2] / "benches" / "tpch"
SCALE = "0.01"

# Which executor holds which tables: orders and lineitem together, the
# customer side on a second one, parts and suppliers on a third.
PLACEMENT = {
    "sales": ["lineitem", "orders"],
    "crm": ["customer", "nation", "region"],
    "parts": ["part", "partsupp", "supplier"],
}
DATABASE_OF = {table: db for db, tables in PLACEMENT.items() for table in tables}


def qualified(sql: str) -> str:
    """The TPC-H query with every table named db.main.table."""
    return query_compare.qualified(sql, DATABASE_OF)


@pytest.fixture(scope="module")
def tpch(tmp_path_factory):
    out = tmp_path_factory.mktemp("tpch")
    tpchgen = Path(sys.executable).parent / "tpchgen-cli"
    subprocess.run([str(tpchgen), "parquet", "-s", SCALE, f"--output-dir={out}"], check=True)
    tables = {}
    for path in sorted(out.glob("*.parquet")):
        table = pq.read_table(path)
        # Parquet from tpchgen carries string_view; ingest plain strings.
        schema = pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema])
        # Batches the driver can send whole (it refuses messages over 16 MiB).
        tables[path.stem] = pa.Table.from_batches(table.cast(schema).to_batches(max_chunksize=65536))
    return tables


@pytest.fixture(scope="module")
def reference(tpch):
    con = duckdb.connect()
    for name, table in tpch.items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
    yield con
    con.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tpch):
    with placed_cluster(tmp_path_factory.mktemp("cluster"), PLACEMENT, tpch) as cluster:
        yield cluster


QUERIES = sorted(path.stem for path in TPCH_QUERIES.glob("q*.sql"))


@pytest.mark.parametrize("query", QUERIES)
def test_tpch_across_three_executors(cluster, reference, query):
    sql = (TPCH_QUERIES / f"{query}.sql").read_text()
    with cluster["coordinator"].connect() as conn:
        actual = rows_of(conn, qualified(sql))
    expected = [tuple(row) for row in reference.execute(sql).fetchall()]
    assert_same_rows(actual, expected, sql)


@pytest.fixture(scope="module")
def shipping(tmp_path_factory, cluster):
    """A second coordinator of the cluster that ships a join's small side to
    its large side's executor wherever the estimates favour it, however small
    the data (the default threshold keeps TPC-H SF 0.01 from shipping)."""
    coordinator = Coordinator(
        tmp_path_factory.mktemp("shipping"), cluster["etcd"], extra_args=["--join-shipping-threshold", "0"]
    ).start()
    yield coordinator
    coordinator.stop()


@pytest.mark.parametrize("query", QUERIES)
def test_tpch_with_small_sides_shipped_across_executors(shipping, reference, query):
    sql = (TPCH_QUERIES / f"{query}.sql").read_text()
    with shipping.connect() as conn:
        actual = rows_of(conn, qualified(sql))
    expected = [tuple(row) for row in reference.execute(sql).fetchall()]
    assert_same_rows(actual, expected, sql)


def explain_text(coordinator, sql):
    with coordinator.connect() as conn:
        return "\n".join(row[0] for row in rows_of(conn, f"EXPLAIN {sql}"))


def test_a_join_runs_where_its_large_side_is_and_its_small_side_goes_there(cluster, shipping):
    # TPC-H q3: customers of one segment (exec-1, about 300 rows) join orders
    # and lineitem (exec-0, tens of thousands).
    sql = qualified((TPCH_QUERIES / "q03.sql").read_text())
    shipped = explain_text(shipping, sql)
    assert "Shipped [REMOTE exec-1] into temp.main." in shipped, shipped
    # Everything else, up to the sort and limit, runs on the large side's executor.
    assert "[LOCAL]" not in shipped.split("physical plan")[0], shipped
    assert "Shipped" not in explain_text(cluster["coordinator"], sql)
    logged = shipping.log_path.stat().st_size
    with shipping.connect() as conn, cluster["coordinator"].connect() as pulled:
        assert rows_of(conn, sql) == rows_of(pulled, sql)
    # exec-0 fetched the customers from exec-1 itself: they did not pass
    # through the coordinator.
    def since():
        return shipping.log_path.read_bytes()[logged:].decode(errors="replace")

    wait_until(lambda: "transfer finished" in since(), what="the transfer's log line")
    transfer = next(line for line in since().splitlines() if "transfer finished" in line)
    assert "executor=exec-1 shipped_to=exec-0" in transfer, transfer
    assert "shipped_to" not in "".join(line for line in since().splitlines() if "bridge finished" in line)


def test_a_query_over_one_executors_tables_and_small_ones_runs_there_whole(shipping, reference):
    # TPC-H q17: lineitem (exec-0) with the few parts of one brand and container
    # (exec-2). The parts go to exec-0 and the query runs there as written, its
    # correlated subquery left to DuckDB, which aggregates only those parts'
    # lineitems (DataFusion's decorrelated plan aggregates all of them).
    sql = (TPCH_QUERIES / "q17.sql").read_text()
    plan = explain_text(shipping, qualified(sql))
    logical = plan.split("physical plan")[0]
    assert logical.count("Bridge [REMOTE exec-0]") == 1 and "[LOCAL]" not in logical, plan
    assert "WHERE l_partkey = p_partkey" in logical and "AS \"part\"" in logical, plan
    assert "Shipped [REMOTE exec-2] into temp.main." in logical, plan
    # Only the parts the query's own filters keep are shipped.
    assert "'Brand#23'" in logical.split("Shipped")[1], plan
    with shipping.connect() as conn:
        actual = rows_of(conn, qualified(sql))
    assert_same_rows(actual, [tuple(row) for row in reference.execute(sql).fetchall()], sql)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, tpch):
    srv = Server(tmp_path_factory.mktemp("embedded") / "data", databases=["tpch"]).start()
    with srv.connect() as conn, conn.cursor() as cur:
        for name, table in tpch.items():
            cur.adbc_ingest(name, table, mode="create")
    yield srv
    srv.stop()


@pytest.mark.parametrize("query", QUERIES)
def test_tpch_embedded(embedded, reference, query):
    sql = (TPCH_QUERIES / f"{query}.sql").read_text()
    with embedded.connect() as conn:
        actual = rows_of(conn, sql)
    expected = [tuple(row) for row in reference.execute(sql).fetchall()]
    assert_same_rows(actual, expected, sql)


def statement_info(uri, sql):
    client = flight.FlightClient(uri.replace("grpc://", "grpc+tcp://"))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command("CommandStatementQuery", field(1, sql.encode()))))
    return client, info


def test_single_executor_results_come_straight_from_the_executor(cluster):
    coordinator, sales = cluster["coordinator"], cluster["executors"]["sales"]
    client, info = statement_info(coordinator.uri, "SELECT count(*) AS n FROM sales.main.orders")
    [endpoint] = info.endpoints
    assert [location.uri.decode() for location in endpoint.locations] == [sales.uri]
    # The executor serves the ticket itself ...
    direct = flight.FlightClient(endpoint.locations[0])
    assert direct.do_get(endpoint.ticket).read_all().column(0).to_pylist() == [15000]
    # ... and a client that ignores locations gets the rows from the coordinator.
    assert client.do_get(endpoint.ticket).read_all().column(0).to_pylist() == [15000]
    client.close()
    direct.close()


def test_explain_marks_local_and_remote_operators(cluster):
    sql = "EXPLAIN SELECT c.c_name, sum(o.o_totalprice) FROM crm.main.customer c JOIN sales.main.orders o ON o.o_custkey = c.c_custkey GROUP BY c.c_name"
    with cluster["coordinator"].connect() as conn:
        lines = [row[0] for row in rows_of(conn, sql)]
    text = "\n".join(lines)
    assert "[LOCAL]" in text
    assert "Bridge [REMOTE exec-0]" in text and "Bridge [REMOTE exec-1]" in text, text


def test_executors_refuse_unsigned_and_forged_tickets(cluster):
    sales = cluster["executors"]["sales"]
    client = flight.FlightClient(sales.uri.replace("grpc://", "grpc+tcp://"))
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.do_get(flight.Ticket(b"not a ticket")).read_all()
    # A genuine ticket from the coordinator, with one byte of its SQL changed.
    _, info = statement_info(cluster["coordinator"].uri, "SELECT 42 AS answer FROM sales.main.orders")
    ticket = info.endpoints[0].ticket.ticket
    forged = ticket.replace(b"42", b"43")
    assert forged != ticket
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.do_get(flight.Ticket(forged)).read_all()
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(client.do_action(flight.Action("openduck.v1", b"\x0a\x00")))
    client.close()


def test_any_coordinator_redeems_a_query_across_executors(cluster, tmp_path):
    """The coordinator that planned a query runs the plan it kept; another
    one plans the ticket's SQL again."""
    sql = "SELECT count(*) AS n FROM sales.main.orders o JOIN crm.main.customer c ON o.o_custkey = c.c_custkey"
    client, info = statement_info(cluster["coordinator"].uri, sql)
    expected = client.do_get(info.endpoints[0].ticket).read_all()
    client.close()
    other = Coordinator(tmp_path / "other", cluster["etcd"]).start()
    try:
        client, info = statement_info(cluster["coordinator"].uri, sql)
        client.close()
        elsewhere = flight.FlightClient(other.uri.replace("grpc://", "grpc+tcp://"))
        assert elsewhere.do_get(info.endpoints[0].ticket).read_all() == expected
        assert expected.column("n")[0].as_py() > 0
        elsewhere.close()
    finally:
        other.stop()


def test_a_second_writer_of_a_database_is_refused(cluster, tmp_path):
    rogue = Executor(tmp_path / "rogue", cluster["etcd"], "rogue", ["sales"])
    with pytest.raises(AssertionError):
        rogue.start()
    assert "already has a writer" in rogue.log_path.read_text()


def test_writes_spanning_executors_are_refused_clearly(cluster):
    with cluster["coordinator"].connect() as conn, conn.cursor() as cur:
        with pytest.raises(Exception, match="different executors"):
            cur.execute("INSERT INTO sales.main.orders SELECT * FROM sales.main.orders o JOIN crm.main.customer c ON false")


NULL_CASES = [
    "SELECT a.k FROM sales.main.a, crm.main.c WHERE NOT EXISTS (SELECT 1 FROM sales.main.b WHERE b.k = a.k)",
    "SELECT a.k FROM sales.main.a, crm.main.c WHERE EXISTS (SELECT 1 FROM sales.main.b WHERE b.k = a.k)",
    "SELECT a.k FROM sales.main.a, crm.main.c WHERE a.k NOT IN (SELECT k FROM sales.main.b)",
    "SELECT a.k FROM sales.main.a, crm.main.c WHERE a.k IN (SELECT k FROM sales.main.b)",
    "SELECT a.k, c.x FROM sales.main.a LEFT JOIN crm.main.c ON a.k = c.x",
    "SELECT a.k / 2 AS half, CAST(a.k * 1.5 AS INTEGER) AS rounded FROM sales.main.a, crm.main.c",
    "SELECT a.k / 0 AS infinite, c.x / 2 AS half FROM sales.main.a, crm.main.c",
    "SELECT count(*) FROM sales.main.a, sales.main.b, crm.main.c",
]


@pytest.mark.parametrize("sql", NULL_CASES)
def test_nulls_and_arithmetic_mean_what_duckdb_means(cluster, sql):
    """Semi, anti and outer joins with NULL keys, integer division and casts
    across executors give DuckDB's rows (or, for casts of fractions to
    integers, where DataFusion's meaning differs from DuckDB's,
    DataFusion's, computed on the coordinator)."""
    with cluster["coordinator"].connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE TABLE sales.main.a AS SELECT * FROM (VALUES (1), (2), (3), (NULL)) t(k)")
        cur.execute("CREATE OR REPLACE TABLE sales.main.b AS SELECT * FROM (VALUES (2), (NULL)) t(k)")
        cur.execute("CREATE OR REPLACE TABLE crm.main.c AS SELECT * FROM (VALUES (1), (3)) t(x)")
        actual = sorted(rows_of(conn, sql), key=repr)
    local = duckdb.connect()
    for db in ("sales", "crm"):
        local.execute(f"ATTACH ':memory:' AS {db}")
    local.execute("CREATE TABLE sales.main.a AS SELECT * FROM (VALUES (1), (2), (3), (NULL)) t(k)")
    local.execute("CREATE TABLE sales.main.b AS SELECT * FROM (VALUES (2), (NULL)) t(k)")
    local.execute("CREATE TABLE crm.main.c AS SELECT * FROM (VALUES (1), (3)) t(x)")
    expected = sorted((tuple(row) for row in local.execute(sql).fetchall()), key=repr)
    if "CAST(" in sql:
        # DataFusion truncates casts to integers, DuckDB rounds: queries
        # across executors have DataFusion's meaning there. Division means
        # DuckDB's (a float quotient) in both.
        expected = [(None if k is None else k / 2, None if k is None else int(k * 1.5))
                    for (k,) in sorted(local.execute("SELECT a.k FROM sales.main.a, crm.main.c").fetchall(), key=repr)]
        expected = sorted(expected, key=repr)
    assert actual == expected


UNION_AGGREGATES = [
    "SELECT k, sum(v) AS s, count(*) AS n, count(v) AS nv, min(v) AS lo, max(v) AS hi, sum(d) AS sd "
    "FROM (SELECT k, v, d FROM sales.main.p1 UNION ALL SELECT k, v, d FROM crm.main.p2) u GROUP BY k",
    "SELECT sum(v), count(*), min(d), max(k) FROM (SELECT k, v, d FROM sales.main.p1 UNION ALL SELECT k, v, d FROM crm.main.p2) u",
    "SELECT sum(v), count(*) FROM (SELECT v FROM sales.main.p1 WHERE v > 1000 UNION ALL SELECT v FROM crm.main.p2 WHERE v > 1000) u",
    "SELECT k, avg(v) FROM (SELECT k, v FROM sales.main.p1 UNION ALL SELECT k, v FROM crm.main.p2) u GROUP BY k",
]
UNION_DATA = {
    "sales.main.p1": "SELECT range % 7 AS k, CASE WHEN range % 11 = 0 THEN NULL ELSE range END AS v, "
                     "(range / 100)::DECIMAL(15,2) AS d FROM range(5000)",
    "crm.main.p2": "SELECT range % 5 AS k, range * 3 AS v, (range / 7)::DECIMAL(15,2) AS d FROM range(3000)",
}


@pytest.mark.parametrize("sql", UNION_AGGREGATES)
def test_aggregates_over_unions_across_executors(cluster, sql):
    with cluster["coordinator"].connect() as conn, conn.cursor() as cur:
        for table, select in UNION_DATA.items():
            cur.execute(f"CREATE OR REPLACE TABLE {table} AS {select}")
        actual = rows_of(conn, sql)
        plan = "\n".join(row[0] for row in rows_of(conn, f"EXPLAIN {sql}"))
    local = duckdb.connect()
    for db in ("sales", "crm"):
        local.execute(f"ATTACH ':memory:' AS {db}")
    for table, select in UNION_DATA.items():
        local.execute(f"CREATE TABLE {table} AS {select}")
    expected = [tuple(row) for row in local.execute(sql).fetchall()]
    assert_same_rows(actual, expected, sql)
    if "avg(" not in sql:
        # Each executor aggregates its own rows; only partial results cross.
        bridges = [line for line in plan.splitlines() if line.strip().startswith("SELECT")]
        assert len(bridges) == 2 and all("count(" in b or "sum(" in b for b in bridges), plan


def test_a_coordinator_that_takes_credentials_keeps_clients_away_from_executors(cluster, tmp_path):
    """Drivers send their token to every location they follow, and executors
    serve plain gRPC: with credentials, results come through the coordinator."""
    guarded = Coordinator(tmp_path / "guarded", cluster["etcd"], extra_args=["--token", "s3cret"]).start()
    try:
        client = flight.FlightClient(guarded.uri.replace("grpc://", "grpc+tcp://"))
        options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer s3cret")])
        command_bytes = command("CommandStatementQuery", field(1, b"SELECT count(*) AS n FROM sales.main.orders"))
        info = client.get_flight_info(flight.FlightDescriptor.for_command(command_bytes), options)
        [endpoint] = info.endpoints
        assert list(endpoint.locations) == []
        assert client.do_get(endpoint.ticket, options).read_all().column(0).to_pylist() == [15000]
        client.close()
    finally:
        guarded.stop()


def test_transactions_on_an_executor_behind_the_coordinator(cluster):
    """A client's transaction lives in a session on the executor that holds
    the table, reached over the wire: invisible to others until commit,
    gone with rollback, and rolled back there when the client goes away."""
    coordinator = cluster["coordinator"]

    def in_sales():
        # The session opens on the executor of the connection's catalog.
        options = {"adbc.connection.catalog": "sales"}
        return flight_sql.connect(coordinator.uri, conn_kwargs=options, autocommit=False)

    def total(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), coalesce(sum(x), 0) FROM sales.main.ledger_tx")
            return cur.fetchone()

    with coordinator.connect() as setup, setup.cursor() as cur:
        cur.execute("CREATE TABLE sales.main.ledger_tx (x INTEGER)")
    with in_sales() as conn, coordinator.connect() as outside:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO sales.main.ledger_tx VALUES (1), (2)")
        assert total(conn) == (2, 3)
        assert total(outside) == (0, 0)
        conn.rollback()
        assert total(conn) == (0, 0)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO sales.main.ledger_tx VALUES (10)")
        conn.commit()
        assert total(outside) == (1, 10)

    dropped = in_sales()
    with dropped.cursor() as cur:
        cur.execute("INSERT INTO sales.main.ledger_tx VALUES (100)")
    dropped.close()
    # The dropped client's transaction wrote, so it holds the executor's
    # write gate: this write goes through only once the coordinator has
    # closed that session on the executor, rolling the transaction back
    # (a session left open makes it wait past the deadline and fail).
    deadline = {f"adbc.flight.sql.rpc.timeout_seconds.{call}": "20" for call in ("query", "update", "fetch")}
    with coordinator.connect(**deadline) as outside:
        with outside.cursor() as cur:
            cur.execute("INSERT INTO sales.main.ledger_tx VALUES (20)")
        assert total(outside) == (2, 30)
