"""Statements, parameters and executemany through the ADBC Flight SQL driver,
checked against the duckdb package on the same data."""

import adbc_driver_manager
import duckdb
import pyarrow as pa
import pytest

SETUP = [
    "CREATE TABLE orders (id INTEGER, customer VARCHAR, amount DECIMAL(10,2), placed DATE)",
    "INSERT INTO orders SELECT i, 'c' || (i % 7), (i * 3.25)::DECIMAL(10,2), DATE '2024-01-01' + i::INTEGER FROM range(500) r(i)",
]
QUERIES = [
    "SELECT * FROM orders ORDER BY id",
    "SELECT customer, sum(amount) AS total, count(*) AS n FROM orders GROUP BY customer ORDER BY customer",
    "FROM orders SELECT id, placed WHERE id % 100 = 0 ORDER BY id",
    "SELECT customer, list(id ORDER BY id)[1:3] AS first_ids FROM orders GROUP BY ALL ORDER BY ALL",
    "PIVOT (SELECT customer, year(placed) AS y, amount FROM orders) ON y USING sum(amount) ORDER BY customer",
]


def reference():
    db = duckdb.connect()
    for statement in SETUP:
        db.execute(statement)
    return db


def test_queries_match_duckdb(conn):
    with conn.cursor() as cur:
        for statement in SETUP:
            cur.execute(statement)
        ref = reference()
        for sql in QUERIES:
            cur.execute(sql)
            got = cur.fetch_arrow_table()
            want = ref.sql(sql).arrow()
            if isinstance(want, pa.RecordBatchReader):
                want = want.read_all()
            assert got.schema == want.schema, sql
            assert got.to_pylist() == want.to_pylist(), sql


def test_parameters(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT ? + 1 AS answer, ? AS greeting, ? IS NULL AS missing", parameters=(41, "grüß dich", None))
        assert cur.fetchall() == [(42, "grüß dich", True)]


def test_executemany_inserts_every_row(conn):
    rows = [(i, f"name-{i}", i * 0.5) for i in range(1000)]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE people (id BIGINT, name VARCHAR, score DOUBLE)")
        cur.executemany("INSERT INTO people VALUES (?, ?, ?)", rows)
        cur.execute("SELECT count(*), sum(id), max(name), sum(score) FROM people")
        assert cur.fetchone() == (1000, sum(range(1000)), "name-999", sum(i * 0.5 for i in range(1000)))


def test_updates_report_row_counts(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT range AS i FROM range(10)")
        cur.adbc_statement.set_sql_query("DELETE FROM t WHERE i < 4")
        assert cur.adbc_statement.execute_update() == 4


def test_bad_sql_is_reported_and_the_server_keeps_serving(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as syntax:
            cur.execute("SELEC 1")
        assert "Parser Error" in str(syntax.value)
        with pytest.raises(adbc_driver_manager.Error) as missing:
            cur.execute("SELECT * FROM missing_table")
        assert "missing_table" in str(missing.value)
        assert "NOT_FOUND" in str(missing.value) or "NotFound" in str(missing.value)
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)
