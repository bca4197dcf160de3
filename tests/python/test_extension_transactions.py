"""Transactions through the DuckDB extension: a DuckDB transaction that writes
to an attached openduck database is one transaction on the service, all or
nothing, and sees its own writes before it commits."""

import threading

import duckdb
import pytest
from extension_harness import attached, service_rows
from openduck_harness import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("ext-tx") / "data", databases=("mydb",)).start()
    yield srv
    srv.stop()


@pytest.fixture
def con(server):
    con = attached(server)
    yield con
    con.close()


def service_has_table(server, name):
    count = service_rows(server, f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{name}'")
    return count == [(1,)]


def test_a_transaction_commits_all_its_writes_at_once(server, con):
    con.execute("BEGIN")
    con.execute("CREATE TABLE cloud.tx_commit (i BIGINT, s VARCHAR)")
    con.execute("INSERT INTO cloud.tx_commit VALUES (1, 'one')")
    con.execute("INSERT INTO cloud.tx_commit SELECT range, range::VARCHAR FROM range(10, 5010)")
    # The transaction sees its own table and rows ...
    assert con.sql("SELECT count(*), sum(i) FROM cloud.tx_commit").fetchall() == [(5001, 1 + sum(range(10, 5010)))]
    assert con.sql("SELECT column_name FROM (DESCRIBE cloud.tx_commit)").fetchall() == [("i",), ("s",)]
    # ... nobody else does yet.
    assert not service_has_table(server, "tx_commit")
    con.execute("COMMIT")
    assert service_rows(server, "SELECT count(*), sum(i) FROM tx_commit") == [(5001, 1 + sum(range(10, 5010)))]
    assert con.sql("SELECT count(*) FROM cloud.tx_commit").fetchall() == [(5001,)]


def test_a_table_made_in_a_transaction_reads_back_in_it_exactly(server, con):
    con.execute("BEGIN")
    con.execute(
        """CREATE TABLE cloud.tx_made AS
           SELECT '123e4567-e89b-12d3-a456-426614174000'::UUID AS u, -170141183460469231731687303715884105727::HUGEINT AS h,
                  'b'::ENUM('a', 'b') AS e"""
    )
    # CREATE TABLE AS is seen by its own transaction, and types the wire carries as
    # others (UUID and ENUM as VARCHAR, HUGEINT as DECIMAL(38,0)) come back as themselves.
    assert con.sql("SELECT u::VARCHAR, h::VARCHAR, e::VARCHAR, typeof(u), typeof(h), typeof(e) FROM cloud.tx_made").fetchall() == [
        (
            "123e4567-e89b-12d3-a456-426614174000",
            "-170141183460469231731687303715884105727",
            "b",
            "UUID",
            "HUGEINT",
            "ENUM('a', 'b')",
        )
    ]
    con.execute("COMMIT")
    assert con.sql("SELECT typeof(u), typeof(h), typeof(e) FROM cloud.tx_made").fetchall() == [
        ("UUID", "HUGEINT", "ENUM('a', 'b')")
    ]


def test_a_rolled_back_transaction_leaves_nothing(server, con):
    con.execute("CREATE TABLE cloud.tx_kept (i BIGINT)")
    con.execute("INSERT INTO cloud.tx_kept VALUES (1)")
    con.execute("BEGIN")
    con.execute("INSERT INTO cloud.tx_kept SELECT range FROM range(100)")
    con.execute("CREATE TABLE cloud.tx_rolled_back AS SELECT 1 AS x")
    con.execute("DROP TABLE cloud.tx_kept")
    con.execute("ROLLBACK")
    assert not service_has_table(server, "tx_rolled_back")
    assert service_rows(server, "SELECT count(*) FROM tx_kept") == [(1,)]
    assert con.sql("SELECT count(*) FROM cloud.tx_kept").fetchall() == [(1,)]
    with pytest.raises(duckdb.CatalogException):
        con.sql("SELECT * FROM cloud.tx_rolled_back")


def test_an_error_aborts_the_whole_transaction(server, con):
    con.execute("CREATE TABLE cloud.tx_error (i BIGINT)")
    con.execute("BEGIN")
    con.execute("INSERT INTO cloud.tx_error VALUES (1), (2)")
    with pytest.raises(duckdb.InvalidInputException, match="boom"):
        con.execute("INSERT INTO cloud.tx_error SELECT CASE WHEN range = 5000 THEN error('boom') ELSE range END FROM range(10000)")
    # As in DuckDB itself, the failed transaction's COMMIT rolls it back.
    con.execute("COMMIT")
    assert service_rows(server, "SELECT count(*) FROM tx_error") == [(0,)]
    # The attachment works on.
    con.execute("INSERT INTO cloud.tx_error VALUES (3)")
    assert service_rows(server, "SELECT sum(i) FROM tx_error") == [(3,)]


def test_a_failed_create_table_as_leaves_no_table(server, con):
    with pytest.raises(duckdb.InvalidInputException, match="boom"):
        con.execute("CREATE TABLE cloud.tx_ctas AS SELECT CASE WHEN range = 7000 THEN error('boom') ELSE range END AS i FROM range(10000)")
    assert not service_has_table(server, "tx_ctas")
    with pytest.raises(duckdb.CatalogException):
        con.sql("SELECT * FROM cloud.tx_ctas")


def test_transactions_of_two_connections_stay_apart(server, con):
    con.execute("CREATE TABLE cloud.tx_apart (who VARCHAR, i BIGINT)")
    first, second = con.cursor(), con.cursor()
    first.execute("BEGIN")
    second.execute("BEGIN")
    first.execute("INSERT INTO cloud.tx_apart SELECT 'first', range FROM range(1000)")
    second.execute("INSERT INTO cloud.tx_apart SELECT 'second', range FROM range(10)")
    assert first.sql("SELECT who, count(*) FROM cloud.tx_apart GROUP BY who").fetchall() == [("first", 1000)]
    assert second.sql("SELECT who, count(*) FROM cloud.tx_apart GROUP BY who").fetchall() == [("second", 10)]
    # (A commit on the service waits for the transactions that wrote before it
    # to end: it publishes a snapshot, which needs a quiet point.)
    first.execute("ROLLBACK")
    second.execute("COMMIT")
    assert service_rows(server, "SELECT who, count(*) FROM tx_apart GROUP BY who") == [("second", 10)]


def test_concurrent_autocommit_writes_from_many_threads(server, con):
    con.execute("CREATE TABLE cloud.tx_threads (t BIGINT, i BIGINT)")
    errors = []

    def write(thread):
        cursor = con.cursor()
        try:
            for round_ in range(5):
                cursor.execute(f"INSERT INTO cloud.tx_threads SELECT {thread}, range FROM range({round_ * 100}, {round_ * 100 + 100})")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            cursor.close()

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert service_rows(server, "SELECT count(*), count(DISTINCT (t, i)) FROM tx_threads") == [(2000, 2000)]
