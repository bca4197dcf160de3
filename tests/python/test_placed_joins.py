"""Dual execution of a FROM clause's parts: in a query that runs in the user's DuckDB,
tables of the service that its FROM joins with tables of here (inner and comma joins),
joined to each other by conditions over them alone, run on the service as one join, and
only its rows come down. Where a column reference could mean more than one table, or the
join is not an inner one, nothing is regrouped and the service's tables are scanned."""

import pytest
from extension_harness import arrived, placement
from query_compare import assert_same_rows
from test_placed_subqueries import con, server  # noqa: F401 - the same service: facts and dims
from test_placement import reference  # noqa: F401


def same(con, reference, sql):  # noqa: F811
    """`sql` ({c} for the attachment) gives reference's rows and column names here."""
    text = sql.replace("{c}", "")
    here, local = con.sql(sql.replace("{c}", "cloud.")), reference.sql(text)
    assert here.columns == local.columns, text
    assert_same_rows(here.fetchall(), local.fetchall(), text)


# Each reads a table function (range), so it never runs on the service whole.
@pytest.mark.parametrize("sql", [
    # Comma joins, the service's conditions in WHERE.
    "SELECT r.i, d.name, count(*) AS n, sum(f.v) FROM range(10) r(i), {c}facts f, {c}dims d "
    "WHERE f.dim = d.dim AND d.dim = r.i AND f.v > 50 GROUP BY r.i, d.name ORDER BY 1",
    # JOIN ... ON, the service's condition in an ON.
    "SELECT r.i, d.name, max(f.day) AS last FROM range(10) r(i) JOIN {c}facts f ON f.dim = r.i "
    "JOIN {c}dims d ON d.dim = f.dim WHERE NOT d.special GROUP BY ALL ORDER BY 1",
    # A window, a HAVING and an ORDER BY over the service's columns.
    "SELECT d.name, sum(f.v) AS s, rank() OVER (ORDER BY sum(f.v)) AS k FROM range(10) r(i), {c}facts f, "
    "{c}dims d WHERE f.dim = d.dim AND r.i = d.dim GROUP BY d.name HAVING sum(f.v) > 0 ORDER BY d.name",
])
def test_the_services_tables_of_a_from_are_joined_there(con, reference, sql):  # noqa: F811
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["scanned"] == [], parts
    (shipped,) = parts["subqueries"]
    assert "mydb.main.facts" in shipped and "mydb.main.dims" in shipped, shipped
    same(con, reference, sql)


def test_unqualified_columns_of_one_table_each(con, reference):  # noqa: F811
    # A table of here too large to copy up (its columns are known, unlike a table
    # function's); the query names its columns unqualified, and gives its output none.
    here = "CREATE OR REPLACE TABLE here AS SELECT i AS k, i % 1000 AS w FROM range(400000) r(i)"
    con.execute(here)
    reference.execute(here.replace("CREATE OR REPLACE TABLE", "CREATE OR REPLACE TEMP TABLE"))
    sql = ("SELECT name, sum(v), count(DISTINCT id), max(w) FROM here, {c}facts f, {c}dims d "
           "WHERE f.dim = d.dim AND special AND k = f.id GROUP BY name ORDER BY name")
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["scanned"] == [] and len(parts["subqueries"]) == 1, parts
    same(con, reference, sql)


def test_only_the_joins_rows_come_down(server, con, reference):  # noqa: F811
    sql = """SELECT r.i, count(*) AS n FROM range(10) r(i), {c}facts f, {c}dims tag_joined
             WHERE f.dim = tag_joined.dim AND tag_joined.special AND f.v = 3 AND r.i = f.dim
             GROUP BY r.i ORDER BY 1"""
    same(con, reference, sql)
    # The service was asked for its estimate of the join (an EXPLAIN), then one statement
    # arrived: the join, sending its ~700 rows, not facts' 200,000.
    statements = arrived(server, "tag_joined")
    assert [text.startswith("EXPLAIN") for text, _ in statements] == [True, False], statements
    ((text, rows),) = statements[1:]
    expected = reference.sql("SELECT count(*) FROM facts f, dims d WHERE f.dim = d.dim AND d.special AND f.v = 3")
    assert rows == expected.fetchall()[0][0] and rows < 1000, (text, rows)


@pytest.mark.parametrize("sql", [
    # `name` could be a column of the table function's too (only the binder knows).
    "SELECT name, count(*) FROM range(10) r(i), {c}facts f, {c}dims d WHERE f.dim = d.dim AND r.i = f.dim "
    "GROUP BY 1 ORDER BY 1",
    # An outer join between the service's tables.
    "SELECT r.i, count(d.name) FROM range(10) r(i) JOIN {c}facts f ON f.dim = r.i "
    "LEFT JOIN {c}dims d ON d.dim = f.dim AND d.special GROUP BY 1 ORDER BY 1",
    # The service's tables joined only through a table of here.
    "SELECT r.i, count(*) FROM range(3) r(i), {c}facts f, {c}dims d WHERE f.dim = r.i AND d.dim = r.i "
    "GROUP BY 1 ORDER BY 1",
    # A `*`.
    "SELECT * FROM range(2) r(i), {c}facts f, {c}dims d WHERE f.dim = d.dim AND r.i = f.dim AND f.id < 50 "
    "ORDER BY f.id",
    # Two output columns named alike: which one ORDER BY means depends on their aliases.
    "SELECT upper(d.name) AS name, d.name FROM range(10) r(i), {c}facts f, {c}dims d "
    "WHERE f.dim = d.dim AND r.i = f.id ORDER BY name",
    # A subquery of the FROM reading one of the service's tables laterally.
    "SELECT r.i, x.w FROM range(3) r(i), {c}facts f, {c}dims d, (SELECT f.v + 1 AS w) x "
    "WHERE f.dim = d.dim AND r.i = f.id ORDER BY 1",
    # So does a table function's argument.
    "SELECT r.i, u.x FROM range(3) r(i), {c}facts f, {c}dims d, unnest([f.v, d.dim]) u(x) "
    "WHERE f.dim = d.dim AND r.i = f.id ORDER BY 1, 2",
])
def test_a_from_that_cannot_be_regrouped_surely_is_scanned(con, reference, sql):  # noqa: F811
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["whole"] == [] and parts["subqueries"] == [], parts
    assert sorted(parts["scanned"]) == ['"mydb"."main"."dims"', '"mydb"."main"."facts"'], parts
    same(con, reference, sql)


def test_a_join_that_multiplies_rows_is_scanned_instead(con, reference):  # noqa: F811
    # Joined on a column of ten values, facts with itself is 4 billion rows: the service
    # estimates so, and scans of the two tables move far less.
    sql = ("SELECT r.i, count(*) FROM range(3) r(i), {c}facts a, {c}facts b WHERE a.dim = b.dim AND a.id = r.i "
           "GROUP BY 1 ORDER BY 1")
    parts = placement(con, sql.replace("{c}", "cloud."))
    assert parts["subqueries"] == [] and len(parts["scanned"]) == 2, parts
    same(con, reference, sql)
