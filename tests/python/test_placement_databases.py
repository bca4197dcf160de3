"""Placement over several databases of one service: the attachments `ATTACH 'openduck:'`
makes (one per database, one endpoint, one principal) count as one, so a query joining
tables of two of them runs on the service whole, as one statement, and so does each such
subquery of a query that runs here. Attachments of another endpoint, or one that wrote in
the open transaction, do not: their tables are scanned, and every answer stays exact."""

import duckdb
import pytest
from extension_harness import arrived, local_duckdb, over_a_fast_link, placement
from openduck_harness import Server
from query_compare import assert_same_rows

ORDERS = """CREATE TABLE orders AS
    SELECT i AS id, i % 1000 AS customer, (i % 97) * 1.5 AS amount FROM range(200000) r(i)"""
CUSTOMERS = "CREATE TABLE customers AS SELECT i AS id, 'region ' || (i % 7) AS region FROM range(1000) r(i)"

JOIN = """SELECT c.region AS {tag}, count(*) AS n, sum(o.amount) AS total
          FROM sales.orders o JOIN crm.customers c ON o.customer = c.id
          GROUP BY c.region ORDER BY c.region"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("databases") / "data", databases=("sales", "crm")).start()
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute(f"USE sales; {ORDERS}")
        cur.execute(f"USE crm; {CUSTOMERS}")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def reference():
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS sales; ATTACH ':memory:' AS crm")
    con.execute(f"USE sales; {ORDERS}; USE crm; {CUSTOMERS}; USE memory")
    yield con
    con.close()


@pytest.fixture
def con(server):
    con = over_a_fast_link(local_duckdb())
    con.execute(f"ATTACH 'openduck:?endpoint={server.uri}'")
    yield con
    con.close()


def same(con, reference, sql):
    assert_same_rows(con.sql(sql).fetchall(), reference.sql(sql).fetchall(), sql)


def test_a_join_across_two_databases_of_the_service_runs_there_as_one_statement(server, con, reference):
    sql = JOIN.replace("{tag}", "tag_across")
    same(con, reference, sql)
    parts = placement(con, sql)
    assert parts["scanned"] == [] and len(parts["whole"]) == 1, parts
    assert "sales.main.orders" in parts["whole"][0] and "crm.main.customers" in parts["whole"][0], parts
    # One statement arrived, and sent 7 rows, not 200,000.
    ((text, rows),) = arrived(server, "tag_across")
    assert rows == 7, text


def test_a_subquery_across_two_databases_runs_there_on_its_own(server, con, reference):
    # A table of this session: the query runs here (copies of it would go up into a
    # session on one executor, which a query over several databases need not run on).
    for each in (con, reference):
        each.execute("CREATE OR REPLACE TABLE memory.labels AS "
                     "SELECT * FROM (VALUES ('region 1', 'one'), ('region 3', 'three')) l(region, label)")
    sql = """SELECT l.label, t.n FROM memory.labels l
             JOIN (SELECT c.region AS tag_sub, count(*) AS n FROM sales.orders o JOIN crm.customers c
                   ON o.customer = c.id GROUP BY c.region) t ON t.tag_sub = l.region ORDER BY l.label"""
    same(con, reference, sql)
    parts = placement(con, sql)
    assert parts["scanned"] == [] and parts["whole"] == [] and len(parts["subqueries"]) == 1, parts
    assert "crm.main.customers" in parts["subqueries"][0], parts


def test_another_endpoint_of_the_same_server_is_another_service(server, reference):
    # Named otherwise, it could be another service: the tables are scanned here.
    con = over_a_fast_link(local_duckdb())
    con.execute(f"ATTACH 'openduck:sales?endpoint={server.uri}' AS sales")
    con.execute(f"ATTACH 'openduck:crm?endpoint={server.uri.replace('127.0.0.1', 'localhost')}' AS crm")
    sql = JOIN.replace("{tag}", "tag_other")
    same(con, reference, sql)
    parts = placement(con, sql)
    assert parts["whole"] == [] and sorted(parts["scanned"]) == ['"crm"."main"."customers"', '"sales"."main"."orders"']
    con.close()


def test_an_attachment_that_wrote_in_the_transaction_keeps_the_query_here(server, con):
    sql = JOIN.replace("{tag}", "tag_wrote")
    before = dict((region, n) for region, n, _ in con.sql(sql).fetchall())
    con.execute("BEGIN")
    con.execute("INSERT INTO sales.orders SELECT 300000 + i, 7 * (i % 5), 1 FROM range(50) r(i)")
    # The service's sales (outside this transaction) does not hold what it wrote there.
    parts = placement(con, sql)
    assert parts["whole"] == [], parts
    during = dict((region, n) for region, n, _ in con.sql(sql).fetchall())
    assert during["region 0"] == before["region 0"] + 50
    con.execute("ROLLBACK")
    assert dict((region, n) for region, n, _ in con.sql(sql).fetchall()) == before
