"""Read-only user accounts (`openduck passwd --read-only`): they query, and
every statement that would change something is refused with
PERMISSION_DENIED, through the ADBC driver and through the DuckDB extension,
with nothing changed on the service."""

import subprocess

import adbc_driver_manager
import pyarrow as pa
import pytest
from extension_harness import local_duckdb, placed
from openduck_harness import Server, openduck_bin

TOKEN = "read-only-token"


def add_user(users, name, password, *flags):
    subprocess.run([openduck_bin(), "passwd", "--users", str(users), *flags, name], input=password + "\n",
                   text=True, check=True, capture_output=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("readonly")
    users = root / "users"
    add_user(users, "reader", "first pw", "--read-only")
    add_user(users, "writer", "writer pw")
    add_user(users, "reader", "reader pw")  # a new password keeps the role
    assert users.read_text().count(":read-only") == 1
    add_user(users, "writer", "writer pw", "--read-write")
    assert users.read_text().count(":read-only") == 1
    srv = Server(root / "data", token=TOKEN, extra_args=["--users", str(users)]).start()
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT range AS id FROM range(3)")
        cur.execute("CREATE SEQUENCE seq")
    yield srv
    srv.stop()


def ids(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM t ORDER BY id")
        return [row[0] for row in cur.fetchall()]


def run(cur, sql):
    """Runs `sql` and reads its rows (a query's failure may come with them)."""
    cur.execute(sql)
    return cur.fetchall()


def refused(call):
    with pytest.raises(adbc_driver_manager.Error) as error:
        call()
    message = str(error.value)
    assert "PermissionDenied" in message, message
    return message


def test_a_read_only_user_queries_and_is_refused_every_write(server):
    with server.connect(username="reader", password="reader pw") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), sum(id) FROM t")
        assert cur.fetchall() == [(3, 3)]
        cur.execute("SELECT sql FROM openduck.main.query_history WHERE sql LIKE 'SELECT count%'")
        assert cur.fetchall() == [("SELECT count(*), sum(id) FROM t",)]
        for sql in [
            "INSERT INTO t VALUES (99)",
            "CREATE TABLE u (x INT)",
            "DELETE FROM t",
            "SET threads = 1",
        ]:
            assert "read-only" in refused(lambda: run(cur, sql))
        # A query with a side effect runs in a read-only transaction on the executor.
        assert "read-only" in refused(lambda: run(cur, "SELECT nextval('seq')"))
        cur.adbc_statement.set_sql_query("UPDATE t SET id = id + 1")
        refused(cur.adbc_statement.execute_update)
        refused(lambda: cur.adbc_ingest("t", pa.table({"id": [7]}), mode="append"))
    assert ids(server) == [0, 1, 2]


def test_a_read_only_users_transaction_only_queries(server):
    with server.connect(username="reader", password="reader pw", autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM t")
            assert cur.fetchall() == [(3,)]
            refused(lambda: run(cur, "INSERT INTO t VALUES (5)"))
        conn.rollback()
    assert ids(server) == [0, 1, 2]


def test_a_read_write_user_writes(server):
    with server.connect(username="writer", password="writer pw") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (3)")
        cur.execute("SELECT nextval('seq')")
        assert cur.fetchall() == [(1,)]
    assert ids(server) == [0, 1, 2, 3]
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM t WHERE id = 3")


def test_the_extension_attached_as_a_read_only_user_reads_and_cannot_write(server):
    con = local_duckdb()
    try:
        con.execute(f"CREATE SECRET reader (TYPE openduck, USER 'reader', PASSWORD 'reader pw', SCOPE '{server.uri}')")
        con.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}' AS cloud")
        assert con.sql("SELECT count(*) FROM cloud.t").fetchall() == [(3,)]
        for sql in ["INSERT INTO cloud.t VALUES (42)", "CREATE TABLE cloud.u (x INT)",
                    "UPDATE cloud.t SET id = 0", "CREATE TABLE cloud.v AS SELECT 1 AS x"]:
            with pytest.raises(Exception) as error:
                con.execute(sql)
            assert "read-only" in str(error.value), (sql, str(error.value))
        # A table of this session joined with the service's would go up into a
        # temporary table, which this account may not make: it runs here instead.
        con.execute("SET openduck_placement = 'remote'")
        con.execute("CREATE TABLE mine AS SELECT 1 AS id")
        sql = "SELECT count(*) FROM cloud.t JOIN mine USING (id)"
        assert placed(con, sql) == ([], ['"mydb"."main"."t"'])
        assert con.sql(sql).fetchall() == [(1,)]
    finally:
        con.close()
    assert ids(server) == [0, 1, 2]
