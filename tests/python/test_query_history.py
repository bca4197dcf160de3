"""`openduck.main.query_history`: every statement a client sends, with its
user, database, SQL as received, rows and bytes sent and how it ended, read
with SQL through the ADBC driver; each user account sees its own."""

import adbc_driver_manager
import pyarrow as pa
import pytest
from openduck_harness import Server
from test_tls_accounts import add_user

TOKEN = "history-token"
HISTORY = """
    SELECT kind, sql, status, row_count, bytes_sent, error, user_name, database_name, duration_ms
    FROM openduck.main.query_history WHERE sql LIKE '%{tag}%' AND sql NOT LIKE '%query_history%'
    ORDER BY start_time
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    users = root / "users"
    add_user(users, "alice", "alice's password")
    add_user(users, "bob", "bob's password")
    srv = Server(root / "data", token=TOKEN, databases=("mydb", "other"),
                 extra_args=["--users", str(users)]).start()
    yield srv
    srv.stop()


def history(conn, tag):
    with conn.cursor() as cur:
        cur.execute(HISTORY.format(tag=tag))
        return cur.fetch_arrow_table().to_pylist()


def test_statements_are_recorded_with_rows_bytes_and_outcome(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT i AS tag_q1 FROM range(1000) t(i)")
        assert len(cur.fetchall()) == 1000
        cur.execute("CREATE TABLE tag_t1 AS SELECT range AS x FROM range(5)")
        cur.adbc_statement.set_sql_query("UPDATE tag_t1 SET x = x + 1 WHERE x < 3")
        assert cur.adbc_statement.execute_update() == 3
        with pytest.raises(adbc_driver_manager.Error) as failed:
            cur.execute("SELECT no_such_column AS tag_e1")
        assert "no_such_column" in str(failed.value)
        cur.adbc_ingest("tag_i1", pa.table({"v": list(range(42))}), mode="create")
        cur.execute("SELECT ? + 1 AS tag_p1", parameters=(41,))
        assert cur.fetchall() == [(42,)]
        with pytest.raises(adbc_driver_manager.Error):
            cur.execute("SELECT count(*) AS tag_o1 FROM other.main.nothing_here")

    rows = {row["sql"]: row for row in history(server.connect(), "tag_")}
    query = rows["SELECT i AS tag_q1 FROM range(1000) t(i)"]
    # The DBAPI runs every statement as a prepared statement.
    assert (query["kind"], query["status"], query["row_count"]) == ("prepared_query", "succeeded", 1000)
    assert query["bytes_sent"] >= 8000, "1000 BIGINTs went out"
    assert (query["user_name"], query["database_name"]) == ("token", "mydb")
    assert query["duration_ms"] >= 0 and query["error"] is None

    created = rows["CREATE TABLE tag_t1 AS SELECT range AS x FROM range(5)"]
    assert created["status"] == "succeeded", "it ran when it was planned, fetched or not"
    update = rows["UPDATE tag_t1 SET x = x + 1 WHERE x < 3"]
    assert (update["kind"], update["status"], update["row_count"]) == ("update", "succeeded", 3)
    failed = rows["SELECT no_such_column AS tag_e1"]
    assert failed["kind"] == "prepare", "it failed as it was prepared"
    assert failed["status"] == "failed" and "no_such_column" in failed["error"], failed
    ingest = rows['INGEST INTO "mydb"."tag_i1" (create)']
    assert (ingest["kind"], ingest["status"], ingest["row_count"]) == ("ingest", "succeeded", 42)
    prepared = rows["SELECT ? + 1 AS tag_p1"]
    assert (prepared["kind"], prepared["status"], prepared["row_count"]) == ("prepared_query", "succeeded", 1)
    other = rows["SELECT count(*) AS tag_o1 FROM other.main.nothing_here"]
    assert other["database_name"] == "mydb", "the client's database, whatever the SQL names"
    assert other["status"] == "failed" and "nothing_here" in other["error"]


def test_each_user_sees_their_own_statements_and_the_token_sees_all(server):
    for user in ("alice", "bob"):
        with server.connect(username=user, password=f"{user}'s password") as conn, conn.cursor() as cur:
            cur.execute(f"SELECT '{user}' AS who_{user}")
            cur.fetchall()
    with server.connect(username="alice", password="alice's password") as conn:
        seen = history(conn, "AS who_")
        assert [(row["user_name"], row["sql"]) for row in seen] == [("alice", "SELECT 'alice' AS who_alice")]
    with server.connect() as conn:
        assert {row["user_name"] for row in history(conn, "AS who_")} == {"alice", "bob"}


def test_the_history_is_read_alone_never_joined_or_written(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS joinable AS SELECT 1 AS id")
        for sql in [
            "SELECT * FROM openduck.main.query_history h JOIN joinable j ON true",
            "SELECT * FROM openduck.main.query_history a, openduck.main.query_history b",
            "DELETE FROM openduck.main.query_history",
            "CREATE TABLE copied AS SELECT * FROM openduck.main.query_history",
        ]:
            with pytest.raises(adbc_driver_manager.Error) as refused:
                cur.execute(sql)
            message = str(refused.value)
            assert "InvalidArgument" in message and "query_history" in message, message
        # SQL over it runs in full: aggregates, filters, CTEs, EXPLAIN.
        cur.execute("""WITH recent AS (SELECT * FROM openduck.main.query_history WHERE kind LIKE '%query')
                       SELECT count(*) > 0, max(start_time) <= now() FROM recent""")
        assert cur.fetchall() == [(True, True)]


def test_secrets_are_not_kept(server):
    with server.connect() as conn, conn.cursor() as cur:
        try:  # whether DuckDB takes it or not, its text must not be kept
            cur.execute("CREATE TEMPORARY SECRET tag_s (TYPE s3, KEY_ID 'AKIA_TAG', SECRET 'hush-hush')")
        except adbc_driver_manager.Error:
            pass
        cur.execute("SELECT sql FROM openduck.main.query_history WHERE sql LIKE 'CREATE%'")
        kept = [row[0] for row in cur.fetchall()]
    assert kept and not any("hush" in sql or "AKIA" in sql for sql in kept), kept


def test_a_bounded_history_keeps_the_newest(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--query-history", "3"]).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            for n in range(6):
                cur.execute(f"SELECT {n} AS n")
                cur.fetchall()
            cur.execute("SELECT sql FROM openduck.main.query_history ORDER BY start_time")
            assert [row[0] for row in cur.fetchall()] == [
                "SELECT 4 AS n",
                "SELECT 5 AS n",
                "SELECT sql FROM openduck.main.query_history ORDER BY start_time",
            ]
    finally:
        server.stop()
