"""Copies of local tables kept on the service between queries (dual execution's bridge
up): a query placed on the service over a local table copies it once, and the next
queries over it copy nothing, until the table changes, whoever changes it. Every
answer equals the one a local placement gives."""

import json
import re
from decimal import Decimal
import threading

import duckdb
import pytest
from extension_harness import attach, attached, local_duckdb, placed, service_rows
from openduck_harness import Server

FACTS = """CREATE TABLE facts AS
    SELECT i AS id, i % 10 AS dim, i % 97 AS v FROM range(100000) r(i)"""
SMALL = """CREATE TABLE small AS
    SELECT i AS dim, 'label ' || i AS label, i * 1.5 AS weight, i % 2 = 0 AS even FROM range(2, 7) r(i)"""
LABELS = """SELECT label, count(*) AS n, sum(v) AS total
            FROM cloud.facts JOIN small USING (dim) GROUP BY label ORDER BY label"""
WEIGHTS = """SELECT even, sum(weight) AS w, count(*) AS n
             FROM cloud.facts JOIN small USING (dim) GROUP BY even ORDER BY even"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("kept") / "data", databases=("mydb",)).start()
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute(FACTS)
    yield srv
    srv.stop()


@pytest.fixture
def con(server):
    con = attached(server)
    con.execute(SMALL)
    con.execute("SET openduck_placement = 'remote'")
    yield con
    con.close()


def copies_made(server):
    """How many copies the service has received (its query history's ingests into
    temporary tables)."""
    return service_rows(server, "SELECT count(*) FROM openduck.main.query_history "
                                "WHERE sql LIKE 'INGEST INTO temporary%' AND status = 'succeeded'")[0][0]


def answers(con, sql):
    """The query's rows placed on the service, checked against a local placement."""
    assert placed(con, sql)[0], "not placed on the service"
    remote = con.sql(sql).fetchall()
    con.execute("SET openduck_placement = 'local'")
    try:
        assert remote == con.sql(sql).fetchall(), sql
    finally:
        con.execute("SET openduck_placement = 'remote'")
    return remote


def test_the_next_query_over_a_local_table_copies_nothing(server, con):
    before = copies_made(server)
    first = answers(con, LABELS)
    assert copies_made(server) == before + 1
    assert answers(con, LABELS) == first
    assert copies_made(server) == before + 1
    # EXPLAIN tells that the copy is there already.
    (plan,) = json.loads(con.sql(f"EXPLAIN (FORMAT json) {LABELS}").fetchall()[0][1])
    assert plan["extra_info"]["Copied up"] == "memory.main.small as temp.main.openduck_upload_0 (kept there)", plan
    # And what placement knew of the link: the round trips of the attachment's calls.
    link = plan["extra_info"]["Link measured"]
    assert re.fullmatch(r"\d+\.\d\d ms round trip, (\d+ MB/s|throughput not measured yet)", link), plan


def test_a_copy_grows_to_cover_the_columns_of_each_query(server, con):
    before = copies_made(server)
    answers(con, LABELS)  # dim, label
    answers(con, WEIGHTS)  # dim, weight, even: copied again, with every column either read
    assert copies_made(server) == before + 2
    made = service_rows(server, "SELECT sql FROM openduck.main.query_history WHERE sql LIKE "
                                "'CREATE TEMPORARY TABLE%' ORDER BY sequence DESC LIMIT 1")[0][0]
    assert '"label"' in made and '"weight"' in made, made
    answers(con, LABELS)
    answers(con, WEIGHTS)
    assert copies_made(server) == before + 2


def test_a_changed_table_is_copied_again(server, con):
    answers(con, LABELS)
    changes = [
        "INSERT INTO small VALUES (7, 'label 7', 10.5, false)",
        # Same count of rows, other values: the fingerprint of the rows tells.
        "UPDATE small SET label = 'relabelled' WHERE dim = 3",
        "DELETE FROM small WHERE dim = 2",
        "UPDATE small SET label = upper(label) WHERE dim = 4",
    ]
    for change in changes:
        before = copies_made(server)
        con.execute(change)
        rows = answers(con, LABELS)
        assert copies_made(server) == before + 1, change
        assert rows == answers(con, LABELS)
        assert copies_made(server) == before + 1, change
    assert [row[0] for row in answers(con, LABELS)] == ["LABEL 4", "label 5", "label 6", "label 7", "relabelled"]


def test_values_that_trade_columns_are_a_change(con):
    # Of two columns of one type, values that swap places or pairs of equal values
    # make another row: the fingerprint mixes the columns in order.
    con.execute("CREATE TABLE bounds AS SELECT 2 AS dim, 10 AS lo, 20 AS hi")
    sql = ("SELECT count(*), sum(f.id) FROM cloud.facts f JOIN bounds b ON f.dim = b.dim "
           "AND f.v BETWEEN b.lo AND b.hi")
    assert answers(con, sql) != [(0, None)]
    con.execute("UPDATE bounds SET lo = hi, hi = lo")
    assert answers(con, sql) == [(0, None)]
    con.execute("UPDATE bounds SET lo = 5, hi = 5")
    five = answers(con, sql)
    con.execute("UPDATE bounds SET lo = 7, hi = 7")
    assert answers(con, sql) != five


def test_wide_numbers_duckdb_hashes_alike_are_a_change(con):
    # DuckDB's own hash XORs the halves of a 128-bit integer: 0 and -1 hash alike.
    con.execute("CREATE TABLE amounts AS SELECT 3 AS dim, 0::HUGEINT AS h, 0::DECIMAL(38, 2) AS d")
    sql = "SELECT DISTINCT h, d FROM cloud.facts JOIN amounts USING (dim)"
    assert answers(con, sql) == [(0, Decimal("0.00"))]
    con.execute("UPDATE amounts SET h = -1, d = -0.01")
    assert answers(con, sql) == [(-1, Decimal("-0.01"))]


def test_a_change_of_another_connection_or_of_this_transaction_is_seen(server, con):
    answers(con, LABELS)
    other = con.cursor()
    other.execute("UPDATE small SET label = 'from elsewhere' WHERE dim = 5")
    other.close()
    assert "from elsewhere" in [row[0] for row in answers(con, LABELS)]

    con.execute("BEGIN")
    con.execute("DELETE FROM small WHERE dim = 5")
    assert "from elsewhere" not in [row[0] for row in answers(con, LABELS)]
    con.execute("ROLLBACK")
    # The copy of the rolled back transaction's rows is not the table's any more.
    assert "from elsewhere" in [row[0] for row in answers(con, LABELS)]


def test_with_the_setting_off_every_query_copies(server, con):
    con.execute("SET openduck_keep_copies = false")
    before = copies_made(server)
    answers(con, LABELS)
    answers(con, LABELS)
    assert copies_made(server) == before + 2


def test_copies_beyond_the_limit_go_once_a_query_is_done(server, con):
    with pytest.raises(duckdb.Error, match="must have a number"):
        con.execute("SET openduck_kept_copies_limit = 'lots'")
    con.execute("SET openduck_kept_copies_limit = '1KB'")
    con.execute("CREATE TABLE padded AS SELECT i AS dim, repeat('x', 500) AS pad FROM range(2, 7) r(i)")
    padded = "SELECT count(*), max(pad) FROM cloud.facts JOIN padded USING (dim)"
    before = copies_made(server)
    answers(con, LABELS)  # about 100 bytes: kept
    answers(con, LABELS)
    assert copies_made(server) == before + 1
    # 2,500 bytes: once the query is done, the copies go, the one used longest ago first.
    answers(con, padded)
    answers(con, LABELS)
    assert copies_made(server) == before + 3
    answers(con, LABELS)
    assert copies_made(server) == before + 3


def test_queries_of_several_connections_at_once_give_their_answers(server, con):
    want = answers(con, LABELS)
    failures = []

    def run():
        cursor = con.cursor()
        try:
            cursor.execute("SET openduck_placement = 'remote'")
            for _ in range(5):
                got = cursor.sql(LABELS).fetchall()
                if got != want:
                    failures.append(got)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            cursor.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a query hung"
    assert failures == []


def test_copies_lost_with_a_restart_of_the_service_are_made_again(tmp_path):
    srv = Server(tmp_path / "data", databases=("mydb",)).start()
    try:
        with srv.connect() as conn, conn.cursor() as cur:
            cur.execute(FACTS)
        con = local_duckdb()
        attach(con, srv)
        con.execute(SMALL)
        con.execute("SET openduck_placement = 'remote'")
        first = answers(con, LABELS)
        port = srv.uri.rsplit(":", 1)[1]
        srv.stop()
        srv.start([arg.replace("127.0.0.1:0", f"127.0.0.1:{port}") for arg in srv.command()])
        assert answers(con, LABELS) == first
        # And kept again from then on.
        before = copies_made(srv)
        assert answers(con, LABELS) == first
        assert copies_made(srv) == before
        con.close()
    finally:
        srv.stop()
