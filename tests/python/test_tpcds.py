"""The 99 TPC-DS queries over three executors, against one DuckDB holding
every table: each must give DuckDB's rows.

The data is TPC-DS-shaped (`tpcds_data`, small and deterministic), the
queries are DuckDB's own TPC-DS queries as ibis-framework ships them. Fact
tables live on one executor, the customer and time dimensions on a second
and the organisation's (stores, warehouses, promotions, ...) on a third, so
nearly every query joins across executors."""

from importlib.metadata import distribution

import duckdb
import pytest

import tpcds_data
import tpcds_schema
from cluster_harness import Coordinator, placed_cluster
from query_compare import assert_same_rows, qualified, rows_of

QUERIES = distribution("ibis-framework").locate_file("ibis/backends/tests/tpc/queries/duckdb/ds")

PLACEMENT = {
    "facts": [
        "store_sales",
        "store_returns",
        "catalog_sales",
        "catalog_returns",
        "web_sales",
        "web_returns",
        "inventory",
    ],
    "people": [
        "customer",
        "customer_address",
        "customer_demographics",
        "household_demographics",
        "income_band",
        "date_dim",
        "time_dim",
        "item",
    ],
    "org": [
        "store",
        "call_center",
        "catalog_page",
        "web_page",
        "web_site",
        "warehouse",
        "promotion",
        "reason",
        "ship_mode",
    ],
}
DATABASE_OF = {table: db for db, tables in PLACEMENT.items() for table in tables}


def test_the_placement_holds_every_table():
    assert sorted(DATABASE_OF) == sorted(tpcds_schema.SCHEMA_SPEC)


@pytest.fixture(scope="module")
def tables():
    return tpcds_data.generate()


@pytest.fixture(scope="module")
def reference(tables):
    con = duckdb.connect()
    tpcds_data.load_into_duckdb(con, tables)
    yield con
    con.close()


@pytest.fixture(scope="module")
def placed(tmp_path_factory, tables):
    with placed_cluster(tmp_path_factory.mktemp("tpcds"), PLACEMENT, tables) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster(placed):
    return placed["coordinator"]


@pytest.fixture(scope="module")
def shipping(tmp_path_factory, placed):
    """A second coordinator that moves small tables to large ones however
    small the data: most queries then run whole on one executor, their text
    rewritten (the default threshold keeps this data from shipping)."""
    coordinator = Coordinator(
        tmp_path_factory.mktemp("tpcds-shipping"), placed["etcd"], extra_args=["--join-shipping-threshold", "0"]
    ).start()
    yield coordinator
    coordinator.stop()


def assert_tpcds_rows(coordinator, reference, query):
    sql = (QUERIES / f"{query}.sql").read_text()
    expected = [tuple(row) for row in reference.execute(sql).fetchall()]
    with coordinator.connect() as conn:
        actual = rows_of(conn, qualified(sql, DATABASE_OF))
    assert_same_rows(actual, expected, sql)


@pytest.mark.parametrize("query", [f"{n:02}" for n in range(1, 100)])
def test_tpcds_across_three_executors(cluster, reference, query):
    assert_tpcds_rows(cluster, reference, query)


@pytest.mark.parametrize("query", [f"{n:02}" for n in range(1, 100)])
def test_tpcds_with_small_tables_shipped_to_large_ones(shipping, reference, query):
    assert_tpcds_rows(shipping, reference, query)
