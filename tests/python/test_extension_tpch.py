"""TPC-H (scale 0.01) read through the DuckDB extension: the 22 queries run in
the user's DuckDB over attached databases, against `openduck serve` holding
every table (each query shipped to it whole, and placed locally over scans)
and against a coordinator with three executors, and give the rows one local
DuckDB gives."""

import pytest
from cluster_harness import placed_cluster
from extension_harness import local_duckdb, placed
from openduck_harness import Server
from query_compare import assert_same_rows
from test_distributed import PLACEMENT, QUERIES, TPCH_QUERIES, qualified, reference, tpch  # noqa: F401


@pytest.fixture(scope="module")
def served(tmp_path_factory, tpch):  # noqa: F811
    srv = Server(tmp_path_factory.mktemp("served") / "data", databases=["tpch"]).start()
    with srv.connect() as conn, conn.cursor() as cur:
        for name, table in tpch.items():
            cur.adbc_ingest(name, table, mode="create")
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:tpch?endpoint={srv.uri}' AS tpch")
    con.execute("USE tpch")
    yield con
    con.close()
    srv.stop()


@pytest.fixture(scope="module")
def clustered(tmp_path_factory, tpch):  # noqa: F811
    with placed_cluster(tmp_path_factory.mktemp("cluster"), PLACEMENT, tpch) as cluster:
        con = local_duckdb()
        for database in PLACEMENT:
            con.execute(f"ATTACH 'openduck:{database}?endpoint={cluster['coordinator'].uri}' AS {database}")
        yield con
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
def test_tpch_through_an_attached_cluster(clustered, reference, query):  # noqa: F811
    sql = (TPCH_QUERIES / f"{query}.sql").read_text()
    assert_same_rows(clustered.execute(qualified(sql)).fetchall(), expected_rows(reference, sql), sql)
