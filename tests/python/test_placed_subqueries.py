"""Dual execution of a query's parts: in a query that runs in the user's DuckDB,
each outermost subquery (a derived table, a CTE, a subquery in an expression, a
branch of a set operation) whose tables all live in one attachment runs on the
service as one statement, and only its rows come down. Where it would not mean
the same there (it reads the query around it, or a name whose meaning depends on
its scope), it stays here."""

import duckdb
import pytest
from extension_harness import arrived, attached, over_a_fast_link, placement, service_rows
from openduck_harness import Server
from query_compare import assert_same_rows
from test_placement import DIMS, FACTS, reference  # noqa: F401

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("subqueries") / "data", databases=("mydb",)).start()
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute(FACTS)
        cur.execute(DIMS)
    yield srv
    srv.stop()


@pytest.fixture
def con(server):
    con = over_a_fast_link(attached(server))
    yield con
    con.close()


# Each reads a table function (range) here, so it never runs on the service whole.
@pytest.mark.parametrize("sql,shipped_part", [
    ("SELECT r.i, s.total FROM range(12) r(i) "
     "JOIN (SELECT dim, sum(v) AS total FROM {c}facts GROUP BY dim) s ON s.dim = r.i ORDER BY 1", "GROUP BY dim"),
    ("WITH s AS (SELECT dim, count(*) AS n, max(day) AS last FROM {c}facts GROUP BY dim) "
     "SELECT r.i, s.n, s.last FROM range(3) r(i) JOIN s ON s.dim = r.i ORDER BY 1", 'max("day")'),
    ("SELECT i FROM range(20) r(i) WHERE i IN (SELECT DISTINCT v FROM {c}facts WHERE v < 5) ORDER BY 1", "DISTINCT"),
    ("SELECT i, (SELECT max(id) FROM {c}facts) AS m FROM range(2) r(i) ORDER BY 1", "max(id)"),
    ("SELECT i FROM range(3) r(i) UNION ALL (SELECT dim FROM {c}facts GROUP BY dim ORDER BY dim LIMIT 2)", "LIMIT 2"),
    # A join of two of the service's tables under a join here.
    ("SELECT r.i, j.name, j.n FROM range(10) r(i) JOIN (SELECT d.dim, d.name, count(*) AS n "
     "FROM {c}facts f JOIN {c}dims d ON f.dim = d.dim GROUP BY ALL) j ON j.dim = r.i ORDER BY 1", "JOIN"),
    # NOT IN over a set holding NULL: no row passes, there as here.
    ("SELECT count(*) FROM range(100) r(i) WHERE i NOT IN (SELECT v FROM {c}facts WHERE id < 30 GROUP BY v)",
     "GROUP BY v"),
    # A window and a QUALIFY.
    ("SELECT r.i, w.id FROM range(10) r(i) JOIN (SELECT dim, id, row_number() OVER (PARTITION BY dim ORDER BY id DESC)"
     " AS k FROM {c}facts QUALIFY k = 1) w ON w.dim = r.i ORDER BY 1", "row_number()"),
])
def test_a_subquery_over_the_services_tables_runs_there(con, reference, sql, shipped_part):  # noqa: F811
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["scanned"] == [], parts
    (shipped,) = parts["subqueries"]
    assert shipped_part in shipped and "mydb.main.facts" in shipped, shipped
    local = sql.replace("{c}", "")
    assert_same_rows(con.sql(sql.replace("{c}", "cloud.")).fetchall(), reference.sql(local).fetchall(), local)


def test_only_the_subquerys_rows_come_down(server, con, reference):  # noqa: F811
    sql = """SELECT r.i, s.tag_rows FROM range(12) r(i)
             JOIN (SELECT dim, count(*) AS tag_rows FROM {c}facts GROUP BY dim) s ON s.dim = r.i ORDER BY 1"""
    assert con.sql(sql.replace("{c}", "cloud.")).fetchall() == reference.sql(sql.replace("{c}", "")).fetchall()
    # One statement arrived, and it sent 10 rows, not facts' 200,000.
    ((text, rows),) = arrived(server, "tag_rows")
    assert rows == 10 and "GROUP BY dim" in text, text


def test_the_subqueries_of_an_insert_or_create_table_as_here_run_there(server, con, reference):  # noqa: F811
    """The SELECT of an INSERT into a table here (or of a CREATE TABLE AS) reads a table
    function, so it runs here; its subquery over the service's tables runs there, and
    its rows are cast to the columns' types here."""
    select = """SELECT r.i, s.{tag} FROM range(12) r(i)
                JOIN (SELECT dim, count(*) AS {tag} FROM {c}facts GROUP BY dim) s ON s.dim = r.i"""
    insert = "INSERT INTO copied " + select.replace("{tag}", "tag_insert")
    con.execute("CREATE TABLE copied (i INTEGER, n DECIMAL(12, 1))")
    parts = placement(con, insert.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["scanned"] == [] and len(parts["subqueries"]) == 1, parts
    assert con.execute(insert.replace("{c}", "cloud.")).fetchall() == [(10,)]
    expected = reference.sql(select.replace("{tag}", "n").replace("{c}", "") + " ORDER BY 1").fetchall()
    assert con.sql("SELECT * FROM copied ORDER BY 1").fetchall() == expected
    assert con.sql("SELECT typeof(n) FROM copied LIMIT 1").fetchall() == [("DECIMAL(12,1)",)]
    ((_, rows),) = arrived(server, "tag_insert")
    assert rows == 10

    ctas = "CREATE TABLE made AS " + select.replace("{tag}", "tag_made")
    parts = placement(con, ctas.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["scanned"] == [] and len(parts["subqueries"]) == 1, parts
    con.execute(ctas.replace("{c}", "cloud."))  # not fetched: it runs at once all the same
    assert con.sql("SELECT * FROM made ORDER BY 1").fetchall() == expected
    assert con.sql("SELECT * FROM made").columns == ["i", "tag_made"]
    ((_, rows),) = arrived(server, "tag_made")
    assert rows == 10


def test_a_query_whose_local_table_is_larger_stays_here_and_its_subquery_goes(server, con, reference):  # noqa: F811
    """The realistic case: copying this session's table up would move more than the
    service's rows; the query runs here, and its aggregate of the service's table
    runs there."""
    here = "CREATE TABLE here AS SELECT i % 10 AS dim, i AS w FROM range(400000) r(i)"
    con.execute(here)
    reference.execute(here.replace("CREATE TABLE", "CREATE OR REPLACE TEMP TABLE"))
    sql = """SELECT s.dim, sum(h.w) AS w, max(s.tag_big) AS total FROM here h
             JOIN (SELECT dim, sum(v) AS tag_big FROM {c}facts GROUP BY dim) s USING (dim)
             GROUP BY s.dim ORDER BY 1"""
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["scanned"] == [] and len(parts["subqueries"]) == 1, parts
    assert con.sql(sql.replace("{c}", "cloud.")).fetchall() == reference.sql(sql.replace("{c}", "")).fetchall()
    ((_, rows),) = arrived(server, "tag_big")
    assert rows == 10


def test_the_outermost_subquery_that_can_run_there_is_the_one_shipped(con, reference):  # noqa: F811
    # The derived table x joins a table function: it runs here; the aggregate inside it
    # runs there.
    sql = """SELECT r.i, x.n FROM range(5) r(i)
             JOIN (SELECT a.dim, a.n FROM (SELECT dim, count(*) AS n FROM {c}facts GROUP BY dim) a
                   JOIN range(3) q(dim) ON q.dim = a.dim) x ON x.dim = r.i ORDER BY 1"""
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["scanned"] == [], parts
    (shipped,) = parts["subqueries"]
    assert "GROUP BY dim" in shipped and "range" not in shipped, shipped
    assert con.sql(sql.replace("{c}", "cloud.")).fetchall() == reference.sql(sql.replace("{c}", "")).fetchall()


def test_a_correlated_subquery_stays_here(con, reference):  # noqa: F811
    sql = "SELECT i, (SELECT max(id) FROM {c}facts f WHERE f.dim = r.i) AS m FROM range(3) r(i) ORDER BY 1"
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["subqueries"] == [] and parts["scanned"] == ['"mydb"."main"."facts"'], parts
    assert con.sql(sql.replace("{c}", "cloud.")).fetchall() == reference.sql(sql.replace("{c}", "")).fetchall()


def test_a_filtered_scan_stays_a_scan_unless_placed_remote(con, reference):  # noqa: F811
    sql = "SELECT i FROM range(10) r(i) WHERE i IN (SELECT v FROM {c}facts WHERE id < 10) ORDER BY 1"
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["subqueries"] == [] and parts["scanned"] == ['"mydb"."main"."facts"'], parts
    con.execute("SET openduck_placement = 'remote'")
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert len(parts["subqueries"]) == 1 and parts["scanned"] == [], parts
    assert con.sql(sql.replace("{c}", "cloud.")).fetchall() == reference.sql(sql.replace("{c}", "")).fetchall()
    con.execute("SET openduck_placement = 'local'")
    assert placement(con, "SELECT i FROM range(3) r(i) WHERE i IN (SELECT max(v) FROM cloud.facts)")["subqueries"] == []


def test_a_name_a_cte_of_the_query_also_has_is_not_shipped(con):
    # `dims` in the scalar subquery is the query's CTE, not the service's table of that
    # name; bound alone, the subquery would read the table.
    con.execute("USE cloud")
    sql = "WITH dims AS (SELECT 1 AS dim) SELECT r.i, (SELECT count(*) FROM dims) AS n FROM range(2) r(i) ORDER BY 1"
    assert placement(con, sql)["subqueries"] == []
    assert con.sql(sql).fetchall() == [(0, 1), (1, 1)]


def test_columns_the_wire_carries_as_another_type_come_back_as_bound_here(con, reference):  # noqa: F811
    sql = """SELECT r.i, s.b, s.u FROM range(3) r(i) JOIN (
                 SELECT dim, max(big) AS b,
                        max(('00000000-0000-0000-0000-' || lpad(id::VARCHAR, 12, '0'))::UUID) AS u
                 FROM {c}facts GROUP BY dim) s ON s.dim = r.i ORDER BY 1"""
    got = con.sql(sql.replace("{c}", "cloud."))
    assert [str(t) for t in got.types] == ["BIGINT", "HUGEINT", "UUID"]
    assert got.fetchall() == reference.sql(sql.replace("{c}", "")).fetchall()
    assert len(placement(con, sql.replace("{c}", "cloud."))["subqueries"]) == 1


def test_a_placed_subquery_sees_the_transactions_own_writes(server, con):
    sql = "SELECT r.i, s.n FROM range(1) r(i), (SELECT count(*) AS n FROM cloud.dims) s"
    con.execute("BEGIN")
    con.execute("INSERT INTO cloud.dims VALUES (42, 'dim 42', false)")
    assert len(placement(con, sql)["subqueries"]) == 1
    assert con.sql(sql).fetchall() == [(0, 11)]
    con.execute("ROLLBACK")
    assert con.sql(sql).fetchall() == [(0, 10)]
    assert service_rows(server, "SELECT count(*) FROM dims") == [(10,)]


def test_explain_says_which_subquery_runs_there(con):
    sql = "SELECT i, (SELECT max(id) FROM cloud.facts) FROM range(2) r(i)"
    plan = con.sql(f"EXPLAIN {sql}").fetchall()[0][1]
    assert "OPENDUCK_REMOTE_QUERY" in plan and "this subquery runs" in plan, plan
    assert "RANGE" in plan, plan


def test_the_scan_of_a_placed_subquery_is_not_called_by_name(con):
    with pytest.raises(duckdb.BinderException, match="not called by name"):
        con.sql("SELECT * FROM openduck_remote_query(0)").fetchall()
