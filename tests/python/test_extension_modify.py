"""UPDATE, DELETE and CREATE VIEW through the DuckDB extension: the statement
the user wrote runs on the service as one statement (its rows never cross),
with its parameters, in the transaction of the user's DuckDB; a statement that
cannot run there exactly as written is refused, and nothing changes."""

import json

import duckdb
import pytest
from extension_harness import local_duckdb, service_rows
from openduck_harness import Server

ROWS = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("ext-modify") / "data", databases=("mydb",)).start()
    yield srv
    srv.stop()


@pytest.fixture
def con(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS items")
        cur.execute("DROP TABLE IF EXISTS prices")
        cur.execute(
            f"CREATE TABLE items AS SELECT range AS id, 'item' || range AS name, range % 100 AS price, "
            f"TIMESTAMPTZ '2024-01-01 00:00:00+00' AS seen FROM range({ROWS})"
        )
        cur.execute("CREATE TABLE prices AS SELECT range AS id, range * 1000 AS price FROM range(10)")
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}' AS cloud")
    yield con
    con.close()


def explain(con, sql):
    """The operators of `sql`'s plan: (name, extra info), from the root down."""
    pending, nodes = [json.loads(con.sql(f"EXPLAIN (FORMAT json) {sql}").fetchall()[0][1])], []
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        nodes.append((node.get("name"), node.get("extra_info", {})))
        pending.extend(node.get("children", []))
    return nodes


def test_an_update_runs_on_the_service_as_one_statement(server, con):
    changed = con.execute("UPDATE cloud.items SET price = price + 1000 WHERE id % 10 = 0").fetchall()
    assert changed == [(ROWS // 10,)]
    assert service_rows(server, "SELECT count(*) FROM items WHERE price >= 1000") == [(ROWS // 10,)]
    assert con.sql("SELECT count(*) FROM cloud.items WHERE price >= 1000").fetchall() == [(ROWS // 10,)]
    # What ran is the statement itself: no scan of the table in the user's DuckDB.
    plan = explain(con, "UPDATE cloud.items SET name = upper(name) WHERE id < 5")
    assert [name for name, _ in plan] == ["OPENDUCK_STATEMENT"]
    assert plan[0][1]["Remote SQL"] == 'UPDATE mydb.main.items SET "name" = upper("name") WHERE (id < 5)'
    con.execute("UPDATE cloud.items SET name = upper(name) WHERE id < 5")
    assert service_rows(server, "SELECT name FROM items WHERE id = 3") == [("ITEM3",)]


def test_a_delete_runs_on_the_service(server, con):
    assert con.execute("DELETE FROM cloud.items WHERE id >= 1000").fetchall() == [(ROWS - 1000,)]
    assert service_rows(server, "SELECT count(*), max(id) FROM items") == [(1000, 999)]
    assert con.execute("DELETE FROM cloud.items").fetchall() == [(1000,)]
    assert con.sql("SELECT count(*) FROM cloud.items").fetchall() == [(0,)]


def test_parameters_are_sent_as_their_values(server, con):
    assert con.execute("UPDATE cloud.items SET name = ? WHERE id = ?", ["it's one", 1]).fetchall() == [(1,)]
    assert con.execute("DELETE FROM cloud.items WHERE id BETWEEN $low AND $high", {"low": 10, "high": 19}).fetchall() == [(10,)]
    assert service_rows(server, "SELECT name FROM items WHERE id = 1") == [("it's one",)]
    assert service_rows(server, "SELECT count(*) FROM items WHERE id BETWEEN 10 AND 19") == [(0,)]


def test_statements_over_several_tables_of_the_attachment(server, con):
    con.execute("UPDATE cloud.items AS i SET price = p.price FROM cloud.prices p WHERE i.id = p.id")
    assert service_rows(server, "SELECT sum(price) FROM items WHERE id < 10") == [(sum(i * 1000 for i in range(10)),)]
    con.execute("DELETE FROM cloud.items USING cloud.prices WHERE items.id = prices.id AND prices.price > 5000")
    assert service_rows(server, "SELECT count(*) FROM items WHERE id < 10") == [(6,)]
    con.execute(
        "WITH cheap AS (SELECT id FROM cloud.items WHERE price < 2) "
        "DELETE FROM cloud.items WHERE id IN (SELECT id FROM cheap)"
    )
    assert service_rows(server, "SELECT count(*) FROM items WHERE price < 2") == [(0,)]
    con.execute("USE cloud")
    assert con.execute("UPDATE items SET name = 'unqualified' WHERE id = 50").fetchall() == [(1,)]
    assert service_rows(server, "SELECT name FROM items WHERE id = 50") == [("unqualified",)]


def test_an_attachment_under_another_name(server, con):
    other = local_duckdb()
    other.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}' AS elsewhere")
    assert other.execute("UPDATE elsewhere.main.items SET name = 'renamed' WHERE id = 7").fetchall() == [(1,)]
    assert service_rows(server, "SELECT name FROM items WHERE id = 7") == [("renamed",)]
    other.close()


@pytest.mark.parametrize(
    "sql,why",
    [
        ("UPDATE cloud.items SET price = 0 WHERE id IN (SELECT id FROM laptop)", "memory.main.laptop"),
        ("DELETE FROM cloud.items WHERE id IN (SELECT * FROM range(5))", "range()"),
        ("UPDATE cloud.items SET name = current_setting('TimeZone')", "current_setting"),
        ("UPDATE cloud.items SET seen = seen + INTERVAL 1 DAY", "time zones"),
        ("DELETE FROM cloud.items WHERE seen < '2024-01-02'", "time zones"),
        ("UPDATE cloud.items SET price = 0 WHERE id IN (SELECT id FROM laptop) RETURNING id", "memory.main.laptop"),
        ("INSERT INTO cloud.items (id) SELECT id + 1000000 FROM laptop RETURNING id", "memory.main.laptop"),
        ("INSERT INTO cloud.items (id, seen) VALUES (1000000, '2024-01-01 10:00') RETURNING id", "time zones"),
    ],
)
def test_what_cannot_run_there_as_written_is_refused(server, con, sql, why):
    con.execute("CREATE TABLE laptop AS SELECT 1 AS id")
    with pytest.raises(duckdb.NotImplementedException, match=why):
        con.execute(sql)
    assert service_rows(server, "SELECT count(*), sum(price), min(name) FROM items") == [
        (ROWS, sum(i % 100 for i in range(ROWS)), "item0")
    ]


def test_a_statement_prepared_in_sql_is_refused(server, con):
    # Refused where it runs (a statement with parameters is bound again at each run).
    con.execute("PREPARE wipe AS DELETE FROM cloud.items WHERE id = $1")
    with pytest.raises(duckdb.NotImplementedException, match="not the statement being run"):
        con.execute("EXECUTE wipe(1)")
    with pytest.raises(duckdb.NotImplementedException, match="not the statement being run"):
        con.execute("PREPARE tidy AS DELETE FROM cloud.items WHERE id = 2")
    assert service_rows(server, "SELECT count(*) FROM items") == [(ROWS,)]


def test_updates_in_a_transaction_roll_back_with_it(server, con):
    con.execute("BEGIN")
    con.execute("UPDATE cloud.items SET price = -1 WHERE id < 100")
    con.execute("DELETE FROM cloud.items WHERE id >= 100")
    assert con.sql("SELECT count(*), sum(price) FROM cloud.items").fetchall() == [(100, -100)]
    assert service_rows(server, "SELECT count(*) FROM items") == [(ROWS,)]
    con.execute("ROLLBACK")
    assert service_rows(server, "SELECT count(*), min(price) FROM items") == [(ROWS, 0)]


def test_errors_on_the_service_arrive_with_their_kind(server, con):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS strict")
        cur.execute("CREATE TABLE strict (id INTEGER PRIMARY KEY, v VARCHAR NOT NULL)")
        cur.execute("INSERT INTO strict VALUES (1, 'a'), (2, 'b')")
    con.execute("CALL openduck_refresh()")
    with pytest.raises(duckdb.Error, match="NOT NULL"):
        con.execute("UPDATE cloud.strict SET v = NULL WHERE id = 1")
    with pytest.raises(duckdb.Error, match="(?i)conversion|convert|could not"):
        con.execute("UPDATE cloud.strict SET id = 'x' || id::VARCHAR")
    assert service_rows(server, "SELECT v FROM strict ORDER BY id") == [("a",), ("b",)]


def test_views_are_created_on_the_service_and_dropped(server, con):
    con.execute("CREATE VIEW cloud.expensive AS SELECT i.id, i.name, p.price FROM cloud.items i JOIN cloud.prices p USING (id) WHERE p.price > 3000")
    assert con.sql("SELECT count(*), min(id) FROM cloud.expensive").fetchall() == [(6, 4)]
    assert service_rows(server, "SELECT count(*) FROM expensive") == [(6,)]
    described = con.sql("SELECT column_name, column_type FROM (DESCRIBE cloud.expensive)").fetchall()
    assert described == [("id", "BIGINT"), ("name", "VARCHAR"), ("price", "BIGINT")]
    con.execute("CREATE OR REPLACE VIEW cloud.expensive (k) AS SELECT id FROM cloud.prices WHERE price > 8000")
    assert service_rows(server, "SELECT * FROM expensive") == [(9,)]
    con.execute("DROP VIEW cloud.expensive")
    assert service_rows(server, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'expensive'") == [(0,)]
    with pytest.raises(duckdb.CatalogException):
        con.sql("SELECT * FROM cloud.expensive")


def test_a_view_over_what_the_service_cannot_see_is_refused(server, con):
    con.execute("CREATE TABLE laptop AS SELECT 1 AS id")
    for sql, why in [
        ("CREATE VIEW cloud.mixed AS SELECT * FROM cloud.items WHERE id IN (SELECT id FROM laptop)", "laptop"),
        ("CREATE VIEW cloud.generated AS SELECT * FROM range(3)", "table function"),
        ("CREATE VIEW cloud.setting AS SELECT current_setting('TimeZone') AS zone", "current_setting"),
    ]:
        with pytest.raises(duckdb.NotImplementedException, match=why):
            con.execute(sql)
    assert service_rows(server, "SELECT count(*) FROM duckdb_views() WHERE NOT internal") == [(0,)]


KEYED = """CREATE TABLE keyed (Id INTEGER, v VARCHAR, n INTEGER DEFAULT 0, seen TIMESTAMP, "my col" INTEGER,
                            PRIMARY KEY (id))"""


KEYED_ROWS = "INSERT INTO keyed (id, v, n) VALUES (1, 'one', 1), (2, 'two', 2)"


def keyed_here():
    """The keyed table, as the fixture below makes it on the service, in a local DuckDB."""
    reference = duckdb.connect()
    reference.execute(KEYED)
    reference.execute(KEYED_ROWS)
    return reference


@pytest.fixture
def keyed(server):
    """A table with a primary key (declared in another case than its column) on the
    service, attached afresh."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS keyed")
        cur.execute(KEYED)
        cur.execute(KEYED_ROWS)
        cur.execute("CREATE OR REPLACE TABLE zoned (id INTEGER PRIMARY KEY, seen TIMESTAMPTZ)")
        cur.execute("INSERT INTO zoned VALUES (1, TIMESTAMPTZ '2024-01-01 10:00:00+00')")
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}' AS cloud")
    yield con
    con.close()


def test_an_insert_on_conflict_runs_on_the_service_as_written(server, keyed):
    con = keyed
    reference = keyed_here()
    for sql, parameters in [
        ("INSERT INTO {}keyed (id, v, n) VALUES (1, 'uno', 10), (3, 'three', 3) ON CONFLICT DO NOTHING", None),
        ("INSERT INTO {}keyed (id, v, n) VALUES (2, 'dos', 20), (4, 'four', 4) "
         "ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = keyed.n + excluded.n", None),
        ("INSERT OR REPLACE INTO {}keyed (id, v) VALUES (3, 'tres')", None),
        ("INSERT INTO {}keyed (id, v, n) VALUES ($1, $2, 0) ON CONFLICT DO UPDATE SET v = $2", [4, "cuatro"]),
        # A key column changed: the service deletes and inserts, not this DuckDB.
        ("UPDATE {}keyed SET id = id + 10 WHERE id = 4", None),
    ]:
        there = con.execute(sql.format("cloud."), parameters).fetchall()
        here = reference.execute(sql.format(""), parameters).fetchall()
        assert there == here, sql
    rows = "SELECT id, v, n, seen IS NULL FROM keyed ORDER BY id"
    want = reference.sql(rows).fetchall()
    assert want == [(1, "one", 1, True), (2, "dos", 22, True), (3, "tres", 3, True), (14, "cuatro", 4, True)]
    assert service_rows(server, rows) == want
    assert con.sql(rows.replace("FROM keyed", "FROM cloud.keyed")).fetchall() == want
    plan = explain(con, "INSERT INTO cloud.keyed (id, v) VALUES (5, 'five') ON CONFLICT DO NOTHING")
    assert [name for name, _ in plan] == ["OPENDUCK_STATEMENT"], plan
    assert plan[0][1]["Remote SQL"].startswith("INSERT INTO mydb.main.keyed"), plan


def test_returning_gives_the_rows_the_service_changed(server, keyed):
    """UPDATE, DELETE and INSERT (... ON CONFLICT) with RETURNING: the statement runs on the
    service with `RETURNING *`, the rows it changed come back, and the user's RETURNING
    list is computed here over them, as one local DuckDB would."""
    con = keyed
    reference = keyed_here()
    for sql, parameters in [
        ("UPDATE {}keyed SET n = n + 10 RETURNING id, upper(v) || '!' AS shout, n * 2", None),
        ("INSERT INTO {}keyed (id, v, n) VALUES (2, 'dos', 20), (5, 'five', 5) "
         "ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING *", None),
        ("INSERT INTO {}keyed (id, v) VALUES (1, 'uno'), (6, 'six') ON CONFLICT DO NOTHING RETURNING id, v", None),
        ("UPDATE {}keyed SET v = $1 WHERE id = $2 RETURNING v, id", ["changed", 6]),
        ("DELETE FROM {}keyed WHERE n > 10 RETURNING id, n", None),
        ("UPDATE {}keyed SET n = 0 WHERE id > 100 RETURNING id", None),
    ]:
        there = con.execute(sql.format("cloud."), parameters).fetchall()
        here = reference.execute(sql.format(""), parameters).fetchall()
        assert sorted(there) == sorted(here), sql
        assert here or "id > 100" in sql, sql
    rows = "SELECT id, v, n FROM keyed ORDER BY id"
    assert service_rows(server, rows) == reference.sql(rows).fetchall()
    # A plain INSERT with RETURNING runs there too: the service's defaults come back.
    there = con.execute("INSERT INTO cloud.keyed (id, v) VALUES (7, 'seven'), (8, 'eight') RETURNING id, n, v").fetchall()
    here = reference.execute("INSERT INTO keyed (id, v) VALUES (7, 'seven'), (8, 'eight') RETURNING id, n, v").fetchall()
    assert sorted(there) == sorted(here) == [(7, 0, "seven"), (8, 0, "eight")]
    there = con.execute("INSERT INTO cloud.keyed SELECT id + 100, v, n, seen, \"my col\" FROM cloud.keyed "
                        "WHERE id < 8 RETURNING id").fetchall()
    here = reference.execute("INSERT INTO keyed SELECT id + 100, v, n, seen, \"my col\" FROM keyed "
                             "WHERE id < 8 RETURNING id").fetchall()
    assert sorted(there) == sorted(here)
    # Prepared once, run with each set of values.
    sql = "INSERT INTO {}keyed (id, v) VALUES (?, ?) RETURNING id, v"
    con.executemany(sql.format("cloud."), [[30, "a"], [31, "b"]])
    reference.executemany(sql.format(""), [[30, "a"], [31, "b"]])
    # One statement there, the user's RETURNING list here.
    plan = explain(con, "DELETE FROM cloud.keyed WHERE id = 5 RETURNING id + 1")
    assert [name for name, _ in plan] == ["PROJECTION", "OPENDUCK_REMOTE_QUERY"], plan
    assert plan[1][1]["Remote SQL"] == "DELETE FROM mydb.main.keyed WHERE (id = 5) RETURNING *", plan
    # In a transaction: the rows come from it, and go with its rollback.
    con.execute("BEGIN")
    assert con.execute("DELETE FROM cloud.keyed WHERE id = 5 RETURNING v").fetchall() == [("five",)]
    assert con.sql("SELECT count(*) FROM cloud.keyed WHERE id = 5").fetchall() == [(0,)]
    con.execute("ROLLBACK")
    assert service_rows(server, "SELECT v FROM keyed WHERE id = 5") == [("five",)]
    # A key that would repeat: nothing comes back, nothing changes.
    with pytest.raises(duckdb.ConstraintException, match="Duplicate key"):
        con.execute("UPDATE cloud.keyed SET id = 6 WHERE id = 5 RETURNING id")
    assert service_rows(server, rows) == reference.sql(rows).fetchall()


def test_an_upsert_that_would_not_mean_the_same_there_is_refused(server, keyed):
    con = keyed
    con.execute("CREATE TABLE mine AS SELECT 1 AS id, 'local' AS v")
    for sql, why in [
        ("INSERT INTO cloud.keyed (id, v) SELECT * FROM mine ON CONFLICT DO NOTHING", "memory.main.mine"),
        ("INSERT INTO cloud.keyed (id, v) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET \"my col\" = 1", "quotes"),
        # DuckDB's plan of an upsert computes with every column of the table.
        ("INSERT INTO cloud.zoned (id) VALUES (1) ON CONFLICT DO NOTHING", "time zones"),
    ]:
        with pytest.raises(duckdb.NotImplementedException) as refused:
            con.execute(sql)
        assert why in str(refused.value), (sql, str(refused.value))
    assert service_rows(server, "SELECT count(*) FROM keyed") == [(2,)]
    # An UPDATE of a key column of such a table still runs there as written.
    assert con.execute("UPDATE cloud.zoned SET id = id + 10").fetchall() == [(1,)]
    assert service_rows(server, "SELECT id, seen IS NULL FROM zoned") == [(11, False)]
