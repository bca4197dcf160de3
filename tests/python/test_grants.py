"""Per-database grants (`openduck passwd --databases sales,web`): an account
uses only the databases it was granted. What a statement reads and changes
is what DuckDB's binder records while preparing it on the executor, so the
grant holds through views, table functions that scan tables, sequences and
queries across executors; catalog listings leave other databases out. The
clients are real: the ADBC driver and the DuckDB extension."""

import subprocess

import adbc_driver_manager
import pyarrow as pa
import pytest
from cluster_harness import Coordinator, Etcd, Executor, wait_until
from extension_harness import local_duckdb
from openduck_harness import Server, openduck_bin

TOKEN = "grants-token"


def add_user(users, name, password, *flags):
    done = subprocess.run([openduck_bin(), "passwd", "--users", str(users), *flags, name],
                          input=password + "\n", text=True, check=True, capture_output=True)
    return done.stderr


def users_file(root):
    users = root / "users"
    assert "databases sales" in add_user(users, "ann", "ann pw", "--databases", "sales,web")
    add_user(users, "rita", "rita pw", "--databases", "sales", "--read-only")
    add_user(users, "ann", "new ann pw")  # a new password keeps the grants
    add_user(users, "root", "root pw", "--databases", "hr")
    add_user(users, "root", "root pw", "--all-databases")
    text = users.read_text()
    assert text.count(":databases=sales,web") == 1 and ":read-only:databases=sales" in text, text
    assert "databases=hr" not in text, text
    return users


def create_hr_and_sales(cur):
    cur.execute("CREATE TABLE hr.main.people AS SELECT range AS id, 'secret ' || range AS salary FROM range(3)")
    cur.execute("CREATE SEQUENCE hr.main.ids")
    cur.execute("CREATE TABLE sales.main.orders AS SELECT range AS id FROM range(5)")
    # A view in a granted database over one that is not.
    cur.execute("CREATE VIEW sales.main.staff AS SELECT * FROM hr.main.people")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("grants")
    users = users_file(root)
    # hr first: the server's default database, which ann was not granted.
    srv = Server(root / "data", token=TOKEN, databases=["hr", "sales"], extra_args=["--users", str(users)]).start()
    with srv.connect() as conn, conn.cursor() as cur:
        create_hr_and_sales(cur)
    yield srv
    srv.stop()


def refused(call, *words):
    with pytest.raises(adbc_driver_manager.Error) as error:
        call()
    message = str(error.value)
    assert "PermissionDenied" in message, message
    for word in words:
        assert word in message, message
    return message


def run(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def hr_rows(server):
    with server.connect() as conn, conn.cursor() as cur:
        return run(cur, "SELECT count(*), (SELECT count(*) FROM duckdb_tables() WHERE database_name = 'hr') "
                        "FROM hr.main.people")


NOT_GRANTED = [
    "SELECT * FROM hr.people",
    "SELECT * FROM hr.main.people",
    "SELECT * FROM staff",  # through a view of a granted database
    "SELECT * FROM query_table('hr.people')",
    "SELECT id FROM orders WHERE id IN (SELECT id FROM hr.people)",
    "SELECT nextval('hr.ids')",
    "INSERT INTO hr.people VALUES (9, 'mine')",
    "INSERT INTO orders SELECT id FROM hr.people",
    "UPDATE hr.people SET salary = 'none'",
    "DELETE FROM hr.people",
    "DROP TABLE hr.people",
    "CREATE TABLE hr.main.mine (x INTEGER)",
    "CREATE TABLE orders_copy AS SELECT * FROM hr.people",
]

WHOLE_DATABASES = [
    "ATTACH ':memory:' AS scratch",
    "LOAD json",
]

# What reads or acts on other databases without naming their tables.
BEYOND_TABLES = [
    ("SELECT count(*) FROM glob('{d}/*')", "glob()"),
    ("SELECT count(*) FROM read_blob('{d}/hr.duckdb')", "read_blob()"),
    ("SELECT * FROM pragma_storage_info('hr.people')", "pragma_storage_info()"),
    ("CHECKPOINT hr", "checkpoint()"),
    ("COPY orders TO '{d}/orders.csv'", "writing files"),
    ("SET GLOBAL threads = 1", "setting threads"),
    ("CREATE DATABASE mine FROM hr", "CREATE DATABASE"),
]


def test_a_user_granted_some_databases_uses_them_and_no_other(server):
    before = hr_rows(server)
    with server.connect(username="ann", password="new ann pw") as conn, conn.cursor() as cur:
        # Its default is its first granted database, not the server's (hr).
        assert run(cur, "SELECT count(*) FROM orders") == [(5,)]
        cur.execute("INSERT INTO orders VALUES (5)")
        assert run(cur, "SELECT current_database()") == [("sales",)]
        assert run(cur, "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'sales'") == [(1,)]
        for sql in NOT_GRANTED:
            refused(lambda: run(cur, sql), 'database "hr" was not granted', "sales, web")
        for sql in WHOLE_DATABASES:
            refused(lambda: run(cur, sql), "granted", "ATTACH")
        for sql, word in BEYOND_TABLES:
            sql = sql.format(d=server.data_dir.resolve())
            refused(lambda: run(cur, sql), "granted", word)
        # Bound again when it runs (a parameter's type unknown until then): checked again.
        refused(lambda: cur.execute("SELECT * FROM query_table(?)", parameters=("hr.main.people",)), '"hr"')
        refused(lambda: cur.execute("SELECT * FROM (SELECT length(?)) AS l, hr.main.people",
                                    parameters=("x",)), '"hr"')
        assert run(cur, "SELECT * FROM pragma_table_info('orders')")[0][1] == "id"
        # Preparing tells nothing of a table it may not read either.
        refused(lambda: cur.adbc_prepare("SELECT * FROM hr.people WHERE id = ?"), '"hr"')
        cur.adbc_statement.set_sql_query("DELETE FROM hr.people")
        refused(cur.adbc_statement.execute_update, '"hr"')
        refused(lambda: cur.adbc_ingest("people", pa.table({"id": [7]}), mode="append", catalog_name="hr"),
                'database "hr" was not granted')
        cur.adbc_ingest("orders", pa.table({"id": pa.array([6], pa.int64())}), mode="append", catalog_name="sales")
        assert run(cur, "SELECT count(*) FROM sales.orders") == [(7,)]
        cur.execute("DELETE FROM orders WHERE id >= 5")
    assert hr_rows(server) == before


def test_a_granted_users_transaction_stays_in_its_databases(server):
    with server.connect(username="ann", password="new ann pw", autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO orders VALUES (10)")
            refused(lambda: run(cur, "SELECT * FROM staff"), '"hr"')
        conn.rollback()
    with server.connect(username="ann", password="new ann pw") as conn, conn.cursor() as cur:
        assert run(cur, "SELECT count(*) FROM orders") == [(5,)]


def test_listings_show_only_the_granted_databases(server):
    def catalogs(conn):
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        return {row["catalog_name"]: sorted(table["table_name"] for schema in row["catalog_db_schemas"]
                                           for table in schema["db_schema_tables"]) for row in objects}

    with server.connect() as conn:
        assert catalogs(conn) == {"hr": ["people"], "sales": ["orders", "staff"]}
    with server.connect(username="ann", password="new ann pw") as conn:
        assert catalogs(conn) == {"sales": ["orders", "staff"]}
        assert conn.adbc_get_table_schema("orders", catalog_filter="sales").names == ["id"]
        # A catalog it was not granted cannot be made its current one.
        with pytest.raises(adbc_driver_manager.Error):
            conn.adbc_current_catalog = "hr"
        assert conn.adbc_current_catalog == "sales"


def test_a_call_naming_a_database_not_granted_is_refused(server):
    """The extension names its database in every call's metadata; a client cannot use
    it to run in a database its account may not use."""
    header = "adbc.flight.sql.rpc.call_header.x-openduck-catalog-bin"
    with server.connect(username="ann", password="new ann pw", **{header: "sales"}) as conn, conn.cursor() as cur:
        assert run(cur, "SELECT current_database()") == [("sales",)]
    with server.connect(username="ann", password="new ann pw", **{header: "hr"}) as conn, conn.cursor() as cur:
        refused(lambda: run(cur, "SELECT 1"), 'database "hr" was not granted')


def test_a_read_only_user_with_grants_is_held_to_both(server):
    with server.connect(username="rita", password="rita pw") as conn, conn.cursor() as cur:
        assert run(cur, "SELECT count(*) FROM sales.orders") == [(5,)]
        refused(lambda: run(cur, "SELECT * FROM hr.people"), '"hr"')
        refused(lambda: run(cur, "INSERT INTO orders VALUES (1)"), "read-only")


def test_the_extension_attaches_only_the_granted_databases(server):
    con = local_duckdb()
    try:
        con.execute(f"CREATE SECRET ann (TYPE openduck, USER 'ann', PASSWORD 'new ann pw', SCOPE '{server.uri}')")
        con.execute(f"ATTACH 'openduck:?endpoint={server.uri}'")
        attached = {row[0] for row in con.sql("SELECT database_name FROM duckdb_databases() "
                                              "WHERE type = 'openduck'").fetchall()}
        assert attached == {"sales"}
        assert con.sql("SELECT count(*) FROM sales.orders").fetchall() == [(5,)]
        for sql in ["SELECT * FROM sales.staff", "SELECT * FROM openduck_query('sales', 'FROM hr.people')"]:
            with pytest.raises(Exception) as error:
                con.sql(sql).fetchall()
            assert 'database "hr" was not granted' in str(error.value), (sql, str(error.value))
    finally:
        con.close()


def test_queries_across_executors_hold_to_the_grants(tmp_path):
    """sales and hr on one executor, web on another: a query joining them
    runs as fragments on both, each held to the user's grants."""
    users = users_file(tmp_path)
    etcd = Etcd(tmp_path / "etcd").start()
    started = [etcd]
    try:
        started.append(Executor(tmp_path / "a", etcd, "exec-a", ["sales", "hr"]).start())
        started.append(Executor(tmp_path / "b", etcd, "exec-b", ["web"]).start())
        coordinator = Coordinator(tmp_path / "coordinator", etcd,
                                  extra_args=["--users", str(users), "--token", TOKEN]).start()
        coordinator.token = TOKEN
        started.append(coordinator)
        with coordinator.connect() as conn:
            wait_until(lambda: len(conn.adbc_get_objects(depth="catalogs").read_all()) >= 3, what="executors")
            with conn.cursor() as cur:
                create_hr_and_sales(cur)
                cur.execute("CREATE TABLE web.main.visits AS SELECT range % 3 AS id FROM range(6)")
        join = "SELECT count(*) FROM {} AS o JOIN web.main.visits AS v ON o.id = v.id"
        with coordinator.connect(username="ann", password="new ann pw") as conn, conn.cursor() as cur:
            assert run(cur, join.format("sales.main.orders")) == [(6,)]
            refused(lambda: run(cur, join.format("sales.main.staff")), '"hr" was not granted')
            refused(lambda: run(cur, join.format("hr.main.people")), '"hr" was not granted')
        with coordinator.connect(username="root", password="root pw") as conn, conn.cursor() as cur:
            assert run(cur, join.format("sales.main.staff")) == [(6,)]
    finally:
        for process in reversed(started):
            process.stop()
