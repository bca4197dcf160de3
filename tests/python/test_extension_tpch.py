"""TPC-H (scale 0.01) read through the DuckDB extension: the 22 queries run in
the user's DuckDB over attached databases, against `openduck serve` holding
every table (each query shipped to it whole, and placed locally over scans)
and against a coordinator with three executors, and give the rows one local
DuckDB gives."""

import re

import pytest
from cluster_harness import Coordinator, Etcd, Executor, free_port, placed_cluster, wait_until
from extension_harness import local_duckdb, placed
from openduck_harness import Server
from query_compare import assert_same_rows
from telemetry_harness import sample, scrape
from test_distributed import PLACEMENT, QUERIES, TPCH_QUERIES, qualified, reference, tpch  # noqa: F401


@pytest.fixture(scope="module")
def tpch_server(tmp_path_factory, tpch):  # noqa: F811
    srv = Server(tmp_path_factory.mktemp("served") / "data", databases=["tpch"]).start()
    with srv.connect() as conn, conn.cursor() as cur:
        for name, table in tpch.items():
            cur.adbc_ingest(name, table, mode="create")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def served(tpch_server):
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:tpch?endpoint={tpch_server.uri}' AS tpch")
    con.execute("USE tpch")
    yield con
    con.close()


@pytest.fixture(scope="module")
def clustered(tmp_path_factory, tpch):  # noqa: F811
    with placed_cluster(tmp_path_factory.mktemp("cluster"), PLACEMENT, tpch) as cluster:
        con = local_duckdb()
        for database in PLACEMENT:
            con.execute(f"ATTACH 'openduck:{database}?endpoint={cluster['coordinator'].uri}' AS {database}")
        yield con
        con.close()


FACTS = ("lineitem", "orders", "partsupp")


@pytest.fixture(scope="module", params=["facts remote", "facts remote, placed remote", "facts local"])
def mixed(request, tpch_server, tpch):  # noqa: F811
    """A user's DuckDB holding one side of TPC-H, the other side read from the
    service (which holds every table; the search path finds this side's copy
    first)."""
    local_facts = request.param == "facts local"
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:tpch?endpoint={tpch_server.uri}' AS tpch")
    for name, table in tpch.items():
        if (name in FACTS) == local_facts:
            con.register("arrow_table", table)
            con.execute(f"CREATE TABLE memory.main.{name} AS SELECT * FROM arrow_table")
            con.unregister("arrow_table")
    con.execute("SET search_path = 'memory.main,tpch.main'")
    if request.param.endswith("placed remote"):
        con.execute("SET openduck_placement = 'remote'")
    # Round trips as good as free: bytes alone decide where each query runs (the
    # measured link of a loopback varies from one run to the next).
    con.execute("SET openduck_link_round_trip_ms = 0.000001")
    con.execute("SET openduck_link_megabytes_per_second = 1000")
    yield request.param, con
    con.close()


def expected_rows(reference, sql):  # noqa: F811
    return [tuple(row) for row in reference.execute(sql).fetchall()]


@pytest.mark.parametrize("placement", ["auto", "local"])
@pytest.mark.parametrize("query", QUERIES)
def test_tpch_through_an_attached_server(served, reference, query, placement):  # noqa: F811
    sql = (TPCH_QUERIES / f"{query}.sql").read_text()
    served.execute(f"SET openduck_placement = '{placement}'")
    shipped, scanned = placed(served, sql)
    if placement == "auto":
        # Every table is the service's: the query runs there whole.
        assert len(shipped) == 1 and scanned == [], (shipped, scanned)
    else:
        assert shipped == [] and scanned, (shipped, scanned)
    assert_same_rows(served.execute(sql).fetchall(), expected_rows(reference, sql), sql)


@pytest.mark.parametrize("query", QUERIES)
def test_tpch_with_one_side_here_and_the_other_on_the_service(mixed, reference, query):  # noqa: F811
    """Facts on the service and dimensions here, and the reverse: each query
    runs where the fewest bytes move (round trips are free in these tests: whole
    on the service, with the tables of this side copied up, or here over scans),
    and gives a local DuckDB's rows."""
    placement, con = mixed
    sql = (TPCH_QUERIES / f"{query}.sql").read_text()
    shipped, scanned = placed(con, sql)
    assert len(shipped) <= 1 and not (shipped and scanned), (shipped, scanned)
    if placement == "facts local":
        # The service holds only dimensions: bringing them down moves less.
        assert shipped == [], shipped
    elif placement.endswith("placed remote"):
        # Every query runs there, with the dimensions it reads copied up.
        assert len(shipped) == 1 and scanned == [], (shipped, scanned)
        reads_local = re.search(r"\b(customer|part|supplier|nation|region)\b", sql) is not None
        assert ("openduck_upload_" in shipped[0]) == reads_local, shipped
    elif not scanned:
        assert shipped, "a query over the service's tables only runs there"
    assert_same_rows(con.execute(sql).fetchall(), expected_rows(reference, sql), sql)


@pytest.mark.parametrize("query", QUERIES)
def test_tpch_through_an_attached_cluster(clustered, reference, query):  # noqa: F811
    sql = (TPCH_QUERIES / f"{query}.sql").read_text()
    assert_same_rows(clustered.execute(qualified(sql)).fetchall(), expected_rows(reference, sql), sql)


def test_a_scan_through_a_coordinator_reads_straight_from_the_executor(tmp_path):
    # The coordinator names the executor that runs a query as its result's location; the
    # extension redeems the ticket there, so the rows skip the coordinator.
    metrics = f"127.0.0.1:{free_port()}"
    etcd = Etcd(tmp_path / "etcd").start()
    executor = coordinator = None
    try:
        executor = Executor(tmp_path / "exec", etcd, "exec-0", ["sales"]).start()
        coordinator = Coordinator(tmp_path / "coordinator", etcd, extra_args=["--metrics-listen", metrics]).start()
        with coordinator.connect() as conn:
            wait_until(lambda: len(conn.adbc_get_objects(depth="catalogs").read_all()) >= 1, what="the executor")
        con = local_duckdb()
        con.execute(f"ATTACH 'openduck:sales?endpoint={coordinator.uri}'")
        con.execute("CREATE TABLE sales.t AS SELECT range AS i FROM range(50000)")

        def through_coordinator():
            return sample(scrape(metrics), "openduck_rows_streamed_total", receiver="client") or 0

        before = through_coordinator()
        assert con.sql("SELECT i FROM sales.t WHERE i % 5 = 0").fetchall() == [(i,) for i in range(0, 50000, 5)]
        # Only the catalog's listing came through the coordinator, not the 10,000 rows.
        assert through_coordinator() - before < 1000
        con.close()
    finally:
        for process in (coordinator, executor):
            if process:
                process.stop()
        etcd.stop()
