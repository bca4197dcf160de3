"""Placement in the user's DuckDB (the first part of dual execution): a query
whose every table lives in one attachment runs on the service whole, as one
statement, and only its result crosses; anything that would not mean the same
there runs here, as DuckDB planned it. `SET openduck_placement` forces either."""

import json
import re

import duckdb
import pytest
from extension_harness import arrived, attached, over_a_fast_link, placed, service_rows
from openduck_harness import Server
from query_compare import assert_same_rows
from test_types import CASES, create_type_tables

FACTS = """CREATE TABLE facts AS
    SELECT i AS id, i % 10 AS dim, CASE WHEN i % 11 = 0 THEN NULL ELSE i % 97 END AS v,
           (i * 7)::HUGEINT AS big, DATE '2024-01-01' + (i % 30)::INTEGER AS day
    FROM range(200000) r(i)"""
DIMS = "CREATE TABLE dims AS SELECT i AS dim, 'dim ' || i AS name, i % 3 = 0 AS special FROM range(10) r(i)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("placement") / "data", databases=("mydb",)).start()
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute(FACTS)
        cur.execute(DIMS)
        cur.execute("CREATE TABLE zoned AS SELECT [TIMESTAMPTZ '2024-01-01 12:00:00+00'] AS tzs")
        cur.execute("CREATE TABLE listed_ids AS SELECT ['123e4567-e89b-12d3-a456-426614174000'::UUID] AS ids")
        cur.execute("CREATE TABLE collated (name VARCHAR COLLATE NOCASE)")
        cur.execute("INSERT INTO collated VALUES ('Alice'), ('bob')")
        cur.execute("CREATE TABLE clocks AS SELECT * FROM (VALUES (TIMETZ '11:00:00-05'), (TIMETZ '13:00:00+05')) t(t)")
        create_type_tables(cur)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def reference():
    """The same tables in one plain DuckDB: what every answer must equal."""
    con = duckdb.connect()
    con.execute(FACTS)
    con.execute(DIMS)
    yield con
    con.close()


@pytest.fixture
def con(server):
    con = over_a_fast_link(attached(server))
    yield con
    con.close()


def same(con, reference, sql):
    local = sql.replace("{c}", "")
    assert_same_rows(con.sql(sql.replace("{c}", "cloud.")).fetchall(), reference.sql(local).fetchall(), local)


JOIN = """SELECT d.name AS {tag}, count(*) AS n, sum(f.v) AS total, max(f.day) AS last
          FROM {c}facts f JOIN {c}dims d ON f.dim = d.dim
          WHERE NOT d.special GROUP BY d.name ORDER BY d.name"""


def test_a_join_of_one_attachments_tables_runs_there_as_one_statement(server, con, reference):
    sql = JOIN.replace("{tag}", "tag_join")
    same(con, reference, sql)
    shipped, scanned = placed(con, sql.replace("{c}", "cloud."))
    assert scanned == [] and len(shipped) == 1, (shipped, scanned)
    assert "mydb.main.facts" in shipped[0] and "JOIN" in shipped[0], shipped
    # The service received the query once and sent its result: 6 rows, not 200,000.
    ((text, rows),) = arrived(server, "tag_join")
    assert rows == 6, text


def test_the_rows_an_insert_or_create_table_as_writes_here_are_computed_there(server, con, reference):
    """INSERT INTO a table of this session SELECT ... over the attachment's tables, and
    CREATE TABLE AS: the SELECT runs on the service, cast to the table's types there,
    and only its rows come down."""
    sql = JOIN.replace("{tag}", "tag_insert")
    con.execute("CREATE TABLE summary (name VARCHAR, n INTEGER, total DOUBLE, last VARCHAR)")
    con.execute("CREATE TABLE summary_ref (name VARCHAR, n INTEGER, total DOUBLE, last VARCHAR)")
    insert = "INSERT INTO summary " + sql.replace("{c}", "cloud.")
    shipped, scanned = placed(con, insert)
    assert scanned == [] and len(shipped) == 1 and "CAST(" in shipped[0], (shipped, scanned)
    con.execute(insert)
    reference.execute("CREATE TABLE summary_ref (name VARCHAR, n INTEGER, total DOUBLE, last VARCHAR)")
    reference.execute("INSERT INTO summary_ref " + sql.replace("{c}", ""))
    assert_same_rows(con.sql("SELECT * FROM summary").fetchall(),
                     reference.sql("SELECT * FROM summary_ref").fetchall(), insert)
    reference.execute("DROP TABLE summary_ref")
    ((text, rows),) = arrived(server, "tag_insert")
    assert rows == 6 and "JOIN" in text, text

    create = "CREATE TABLE summary_copy AS " + JOIN.replace("{tag}", "tag_create").replace("{c}", "cloud.")
    shipped, scanned = placed(con, create)
    assert scanned == [] and len(shipped) == 1, (shipped, scanned)
    con.execute(create)
    assert_same_rows(con.sql("SELECT * FROM summary_copy").fetchall(),
                     reference.sql(JOIN.replace("{tag}", "tag_create").replace("{c}", "")).fetchall(), create)
    assert [row[1] for row in con.sql("DESCRIBE summary_copy").fetchall()] == ["VARCHAR", "BIGINT", "HUGEINT", "DATE"]
    ((text, rows),) = arrived(server, "tag_create")
    assert rows == 6, text


def test_an_insert_whose_rows_are_not_its_selects_alone_runs_here(con, reference):
    con.execute("CREATE TABLE by_name (dim BIGINT, name VARCHAR)")
    for sql in [
        # (Aggregates, which alone would run there.)
        "INSERT INTO by_name BY NAME SELECT min(name) AS name, dim FROM cloud.dims WHERE dim < 3 GROUP BY dim",
        "WITH d AS (SELECT dim, min(name) AS name FROM cloud.dims WHERE dim < 3 GROUP BY dim) "
        "INSERT INTO by_name SELECT * FROM d",
        # Rows of VALUES take the table's types here (and DEFAULT), not as the service would.
        "INSERT INTO by_name VALUES (DEFAULT, 'x'), ((SELECT max(dim) FROM cloud.dims), 'y')",
    ]:
        shipped, _ = placed(con, sql)
        assert shipped == [], (sql, shipped)
        con.execute(sql)
    assert sorted(con.sql("SELECT * FROM by_name").fetchall(), key=str) == sorted(
        reference.sql("SELECT dim, name FROM dims WHERE dim < 3").fetchall() * 2 + [(None, "x"), (9, "y")], key=str)


def test_placed_local_the_same_query_scans_both_tables(server, con, reference):
    con.execute("SET openduck_placement = 'local'")
    sql = JOIN.replace("{tag}", "tag_local")
    same(con, reference, sql)
    shipped, scanned = placed(con, sql.replace("{c}", "cloud."))
    assert shipped == [] and sorted(scanned) == ['"mydb"."main"."dims"', '"mydb"."main"."facts"'], (shipped, scanned)
    assert arrived(server, "tag_local") == []


def test_a_filtered_scan_stays_a_scan_unless_placed_remote(con, reference):
    sql = "SELECT id, v FROM {c}facts WHERE v = 3 ORDER BY id"
    same(con, reference, sql)
    assert placed(con, sql.replace("{c}", "cloud.")) == ([], ['"mydb"."main"."facts"'])
    con.execute("SET openduck_placement = 'remote'")
    same(con, reference, sql)
    (shipped,), scanned = placed(con, sql.replace("{c}", "cloud."))
    assert scanned == [] and "ORDER BY id" in shipped


@pytest.mark.parametrize("sql", [
    # CTEs, subqueries in FROM and WHERE (correlated too), windows, set operations,
    # NOT IN with NULLs, integer division, DISTINCT, LIMIT: the service's DuckDB means
    # by each what this one does.
    "WITH big AS (SELECT dim, sum(v) AS s FROM {c}facts GROUP BY dim) SELECT * FROM big WHERE s > 1000 ORDER BY dim",
    "SELECT name FROM {c}dims d WHERE EXISTS (SELECT 1 FROM {c}facts f WHERE f.dim = d.dim AND f.v > 95) ORDER BY 1",
    "SELECT dim, v, row_number() OVER (PARTITION BY dim ORDER BY id DESC) AS r FROM {c}facts QUALIFY r <= 2 "
    "ORDER BY dim, r",
    "SELECT dim FROM {c}facts WHERE id < 50 UNION SELECT dim + 100 FROM {c}dims ORDER BY 1",
    "SELECT count(*) FROM {c}facts WHERE v NOT IN (SELECT v FROM {c}facts WHERE id < 30)",
    "SELECT count(*) FROM {c}facts WHERE dim NOT IN (SELECT dim FROM {c}dims WHERE NOT special)",
    "SELECT id // 7, id / 7, v % 5 FROM {c}facts ORDER BY id LIMIT 5",
    "SELECT DISTINCT day FROM (SELECT id, day FROM {c}facts WHERE id % 3 = 0) t ORDER BY day DESC LIMIT 3",
    "SELECT (SELECT max(id) FROM {c}facts f WHERE f.dim = d.dim) AS m, name FROM {c}dims d ORDER BY 1",
])
def test_shipped_queries_give_a_local_duckdbs_rows(con, reference, sql):
    same(con, reference, sql)
    shipped, scanned = placed(con, sql.replace("{c}", "cloud."))
    assert len(shipped) == 1 and scanned == [], (shipped, scanned)


@pytest.mark.parametrize("setup,sql", [
    # A macro exists only here.
    ("CREATE MACRO twice(x) AS x * 2", "SELECT twice(dim), count(*) FROM cloud.facts GROUP BY 1 ORDER BY 1"),
    # A view of this session over the attachment's table.
    ("CREATE VIEW mine AS SELECT * FROM cloud.facts WHERE v = 1", "SELECT count(*) FROM mine JOIN cloud.dims USING (dim)"),
    # The session's time zone and today are its own.
    ("SET TimeZone = 'Asia/Tokyo'", "SELECT count(*) FROM cloud.facts WHERE day < current_date"),
    # A setting that changes what ORDER BY means.
    ("SET default_null_order = 'nulls_first'", "SELECT v, count(*) FROM cloud.facts GROUP BY v ORDER BY v LIMIT 3"),
    # A table function reads this machine.
    (None, "SELECT count(*) FROM cloud.facts JOIN range(5) r(dim) USING (dim)"),
    # A CTE named like a table of the attachment: its scope decides which is meant.
    ("USE cloud", "WITH dims AS (SELECT 1 AS dim) SELECT (SELECT count(*) FROM dims), count(*) FROM facts"),
    ("USE cloud", "WITH x AS (WITH dims AS (SELECT 99 AS dim) SELECT dim FROM dims) "
                  "SELECT count(*) FROM facts JOIN x USING (dim)"),
    # Values with time zones inside a list.
    (None, "SELECT count(*), max(tzs[1]::VARCHAR) FROM cloud.zoned"),
    # A cast to a type of this session.
    ("CREATE TYPE size AS ENUM ('small', 'large')", "SELECT count(*) FROM cloud.facts WHERE (CASE WHEN v > 50 THEN 'large' ELSE 'small' END)::size = 'large'"),
    # A collation on the service, which its listing does not show.
    (None, "SELECT count(*) FROM cloud.collated WHERE name = 'alice'"),
    # TIMETZ arrives as TIME: the service orders by the instant, here by the clock.
    (None, "SELECT min(t) FROM cloud.clocks"),
    # Row ids are this side's.
    (None, "SELECT count(*), max(rowid) FROM cloud.facts"),
    # PIVOT is not followed by the rewrite.
    (None, "PIVOT cloud.facts ON dim IN (1, 2) USING count(*) GROUP BY day ORDER BY day LIMIT 2"),
])
def test_what_would_not_mean_the_same_there_runs_here(con, setup, sql):
    if setup:
        con.execute(setup)
    con.execute("SET openduck_placement = 'remote'")
    want = con.sql(sql).fetchall()
    shipped, scanned = placed(con, sql)
    assert shipped == [] and scanned, (shipped, scanned)
    con.execute("SET openduck_placement = 'local'")
    assert con.sql(sql).fetchall() == want


def test_a_uuid_inside_a_list_is_a_uuid_here_and_there(con):
    # Its exact type here too: compared as UUIDs (case does not count) wherever it runs.
    sql = "SELECT max(ids[1])::VARCHAR FROM cloud.listed_ids WHERE ids[1] = '123E4567-E89B-12D3-A456-426614174000'"
    answers = {}
    for placement in ["remote", "local"]:
        con.execute(f"SET openduck_placement = '{placement}'")
        answers[placement] = con.sql(sql).fetchall()
    assert answers["remote"] == answers["local"] == [("123e4567-e89b-12d3-a456-426614174000",)]
    con.execute("SET openduck_placement = 'remote'")
    shipped, scanned = placed(con, sql)
    assert len(shipped) == 1 and scanned == [], (shipped, scanned)


@pytest.mark.parametrize("sql,want", [
    ("SELECT count(*) FROM cloud.collated WHERE name = 'alice'", [(0,)]),
    # The same through a join, whose key bounds are not sent for such a column either.
    ("SELECT count(*) FROM cloud.collated JOIN (VALUES ('alice'), ('Bob')) v(n) ON name = n", [(0,)]),
    # Under a LIMIT: the service's first row need not be one the filter here keeps.
    ("SELECT name FROM cloud.collated WHERE name = 'bob' LIMIT 1", [("bob",)]),
])
def test_columns_of_another_type_there_are_filtered_here(con, sql, want):
    for placement in ["remote", "local"]:
        con.execute(f"SET openduck_placement = '{placement}'")
        assert con.sql(sql).fetchall() == want, (placement, sql)


def test_prepared_parameters_run_here_with_their_values(con, reference):
    sql = "SELECT dim, count(*) FROM {c}facts WHERE v > $1 GROUP BY dim ORDER BY dim"
    got = con.execute(sql.replace("{c}", "cloud."), [90]).fetchall()
    assert got == reference.execute(sql.replace("{c}", ""), [90]).fetchall()


def test_unqualified_names_after_use_are_the_services(con, reference):
    con.execute("USE cloud")
    sql = "SELECT name, count(*) FROM facts JOIN dims USING (dim) GROUP BY name ORDER BY name"
    assert con.sql(sql).fetchall() == reference.sql(sql).fetchall()
    (shipped,), _ = placed(con, sql)
    assert "mydb.main.facts" in shipped and "mydb.main.dims" in shipped, shipped


def test_a_shipped_query_sees_the_transactions_own_writes(server, con):
    con.execute("BEGIN")
    con.execute("INSERT INTO cloud.dims VALUES (42, 'dim 42', false)")
    sql = "SELECT count(*), max(name) FROM cloud.dims WHERE dim > 5 LIMIT 1"
    assert placed(con, sql)[0], "not shipped"
    assert con.sql(sql).fetchall() == [(5, "dim 9")]
    con.execute("ROLLBACK")
    assert con.sql(sql).fetchall() == [(4, "dim 9")]
    assert service_rows(server, "SELECT count(*) FROM dims") == [(10,)]


# Columns of these types run here: time zones are the session's. (UUID, HUGEINT and
# ENUM, which the wire carries as other types, have their exact types here too.)
STAY_HERE = {"TIMESTAMPTZ"}


@pytest.mark.parametrize("index,type_name", list(enumerate(CASES)))
def test_every_type_comes_back_as_a_scan_gives_it(con, index, type_name):
    sql = f"SELECT DISTINCT v FROM cloud.types_{index}"
    con.execute("SET openduck_placement = 'remote'")
    remote = con.sql(sql)
    remote_types, remote_rows = remote.types, con.sql(f"SELECT v::VARCHAR FROM ({sql})").fetchall()
    assert bool(placed(con, sql)[0]) == (type_name not in STAY_HERE), type_name
    con.execute("SET openduck_placement = 'local'")
    local = con.sql(sql)
    assert remote_types == local.types, type_name
    local_rows = con.sql(f"SELECT v::VARCHAR FROM ({sql})").fetchall()
    assert sorted(remote_rows, key=repr) == sorted(local_rows, key=repr), type_name


def test_a_column_the_wire_carries_as_another_type_is_cast_back(con, reference):
    # HUGEINT travels as DECIMAL(38,0) and UUID as VARCHAR; the query's own types
    # are the ones DuckDB bound it to here.
    sql = """SELECT id::HUGEINT * 3 AS b, ('00000000-0000-0000-0000-' || lpad(id::VARCHAR, 12, '0'))::UUID AS u
             FROM {c}facts ORDER BY id DESC LIMIT 3"""
    got = con.sql(sql.replace("{c}", "cloud."))
    assert [str(t) for t in got.types] == ["HUGEINT", "UUID"]
    assert got.fetchall() == reference.sql(sql.replace("{c}", "")).fetchall()
    assert placed(con, sql.replace("{c}", "cloud."))[0], "not shipped"


SMALL = "CREATE TABLE small AS SELECT i AS dim, 'label ' || i AS label FROM range(2, 7) r(i)"
UP_JOIN = """SELECT label AS {tag}, count(*) AS n, sum(v) AS total
             FROM {c}facts JOIN small USING (dim) GROUP BY label ORDER BY label"""


def test_a_small_local_table_goes_up_and_the_large_remote_one_stays(server, con, reference):
    con.execute(SMALL)
    reference.execute(f"CREATE OR REPLACE TEMP TABLE small AS {SMALL.split(' AS ', 1)[1]}")
    sql = UP_JOIN.replace("{tag}", "tag_up")
    same(con, reference, sql)
    (shipped,), scanned = placed(con, sql.replace("{c}", "cloud."))
    assert scanned == [] and '"temp".main.openduck_upload_0 AS small' in shipped, shipped
    # 5 rows went up, 5 came down; the 200,000 rows of facts never left the service.
    ((text, rows),) = arrived(server, "tag_up")
    assert rows == 5, text
    (plan,) = json.loads(con.sql(f"EXPLAIN (FORMAT json) {sql.replace('{c}', 'cloud.')}").fetchall()[0][1])
    # The copy stays there for the next query (test_kept_copies.py).
    assert plan["extra_info"]["Copied up"] == "memory.main.small as temp.main.openduck_upload_0 (kept there)", plan
    same(con, reference, sql)


def test_a_slow_link_changes_where_a_mixed_query_runs(con):
    # Placement weighs time over the attachment's link: with round trips of 2 s, a
    # copy's three take longer than reading facts' rows down; with bytes slow as well,
    # copying the 5 rows of `small` up is faster again.
    con.execute(SMALL)
    sql = UP_JOIN.replace("{tag}", "tag_link").replace("{c}", "cloud.")
    assert placed(con, sql)[0], "not placed on the service over a fast link"
    # A large result measures the link's throughput; EXPLAIN shows what was measured.
    con.execute("SET openduck_placement = 'local'")
    assert len(con.execute("SELECT * FROM cloud.facts").fetchall()) == 200000
    con.execute("SET openduck_placement = 'remote'")
    (plan,) = json.loads(con.sql(f"EXPLAIN (FORMAT json) {sql}").fetchall()[0][1])
    assert re.fullmatch(r"\d+\.\d\d ms round trip, \d+ MB/s", plan["extra_info"]["Link measured"]), plan
    con.execute("RESET openduck_placement")
    con.execute("SET openduck_link_round_trip_ms = 2000")
    assert placed(con, sql) == ([], ['"mydb"."main"."facts"'])
    con.execute("SET openduck_link_megabytes_per_second = 0.01")
    assert placed(con, sql)[0], "not placed on the service over a slow link"
    for bad in ["0", "-1", "'nan'", "'inf'"]:
        with pytest.raises(duckdb.Error, match="must be positive and finite"):
            con.execute(f"SET openduck_link_round_trip_ms = {bad}")


def test_a_remote_table_its_filters_make_small_comes_down(server, con, reference):
    # Unfiltered, facts would move more than `small`; the service counts what the
    # filter leaves (50 rows), and that comes down instead.
    con.execute(SMALL)
    reference.execute(f"CREATE OR REPLACE TEMP TABLE small AS {SMALL.split(' AS ', 1)[1]}")
    sql = "SELECT label, count(*) FROM {c}facts JOIN small USING (dim) WHERE id < 50 GROUP BY label ORDER BY label"
    same(con, reference, sql)
    assert placed(con, sql.replace("{c}", "cloud.")) == ([], ['"mydb"."main"."facts"'])
    probe = 'SELECT count(*) FROM "mydb"."main"."facts" WHERE ("id" < CAST(50 AS BIGINT))'
    probes = [count for text, count in arrived(server, probe)]
    assert probes and set(probes) == {1}, probes


def test_only_the_columns_a_query_reads_are_copied(server, con):
    con.execute("CREATE TABLE wide AS SELECT i AS dim, 'x' || i AS label, repeat('unused', 10) AS filler "
                "FROM range(10) r(i)")
    con.execute("SELECT label AS tag_narrow, count(*) FROM cloud.facts JOIN wide USING (dim) GROUP BY label").fetchall()
    con.execute("SELECT wide.*, 1 AS tag_wide FROM cloud.facts JOIN wide USING (dim) LIMIT 1").fetchall()
    made = [text for text, _ in arrived(server, "CREATE TEMPORARY TABLE")]
    assert '("dim" BIGINT, "label" VARCHAR)' in "".join(made), made
    # A `*` may expand to every column: all are copied.
    assert '("dim" BIGINT, "label" VARCHAR, "filler" VARCHAR)' in "".join(made), made


def test_only_the_rows_a_query_keeps_are_copied(server, con, reference):
    con.execute(SMALL)
    reference.execute(f"CREATE OR REPLACE TEMP TABLE small AS {SMALL.split(' AS ', 1)[1]}")
    con.execute("SET openduck_placement = 'remote'")
    for tag, where, copied in [
        # The filter drops rows of `small` on their own: one row is copied.
        ("tag_kept", "WHERE label = 'label 3'", 1),
        # Under a LEFT JOIN, dropping a row of `small` early would make its matches
        # NULL-extended rows, which this filter keeps: every row is copied.
        ("tag_outer", "WHERE label IS NULL OR label = 'label 3'", 5),
    ]:
        join = "LEFT JOIN" if tag == "tag_outer" else "JOIN"
        sql = f"SELECT count(*) AS {tag}, count(label) FROM {{c}}facts {join} small USING (dim) {where}"
        same(con, reference, sql)
        ingests = [count for text, count in arrived(server, "INGEST INTO temporary")]
        assert ingests[-1] == copied, (tag, ingests)


def test_a_filter_that_could_fail_is_not_run_early(con):
    # Copying `coded` through its filters would cast 'abc' (a row the join drops first)
    # and fail; such filters are left to the service, which runs them in the plan's order.
    con.execute("CREATE TABLE coded AS SELECT * FROM (VALUES (1, 'int', '7'), (2, 'txt', 'abc')) t(dim, kind, code)")
    sql = ("SELECT count(*) FROM cloud.facts f JOIN coded c ON f.dim = c.dim AND c.kind = 'int' "
           "WHERE CAST(c.code AS INTEGER) > 5")
    con.execute("SET openduck_placement = 'remote'")
    assert "openduck_upload_0" in placed(con, sql)[0][0]
    got = con.sql(sql).fetchall()
    con.execute("SET openduck_placement = 'local'")
    assert got == con.sql(sql).fetchall() == [(20000,)]


def test_the_copy_is_what_this_transaction_sees(con):
    con.execute(SMALL)
    con.execute("BEGIN")
    con.execute("INSERT INTO small VALUES (7, 'label 7')")
    con.execute("DELETE FROM small WHERE dim = 2")
    sql = UP_JOIN.replace("{tag}", "tag_tx").replace("{c}", "cloud.")
    assert placed(con, sql)[0], "not shipped"
    got = con.sql(sql).fetchall()
    con.execute("SET openduck_placement = 'local'")
    assert got == con.sql(sql).fetchall() and [row[0] for row in got] == [f"label {i}" for i in range(3, 8)]
    con.execute("ROLLBACK")


def test_a_large_local_table_stays_and_the_small_remote_one_comes_down(con):
    con.execute("CREATE TABLE many AS SELECT i AS id, i % 10 AS dim FROM range(100000) r(i)")
    sql = "SELECT name, count(*) FROM many JOIN cloud.dims USING (dim) GROUP BY name ORDER BY name"
    assert placed(con, sql) == ([], ['"mydb"."main"."dims"'])
    want = con.sql(sql).fetchall()
    # Forced, it goes up all the same, with the same answer.
    con.execute("SET openduck_placement = 'remote'")
    (shipped,), _ = placed(con, sql)
    assert "openduck_upload_0 AS many" in shipped, shipped
    assert con.sql(sql).fetchall() == want


def test_values_the_wire_retypes_compare_as_their_own_types_in_every_placement(con):
    # The ENUM orders sad < ok < happy and UUIDs ignore case, on the service and here
    # alike (as VARCHAR, 'happy' < 'sad' and case would count).
    mood = list(CASES).index("mood")
    uuid = list(CASES).index("UUID")
    for sql, want in [(f"SELECT max(v) FROM cloud.types_{mood}", [("happy",)]),
                      (f"SELECT v FROM cloud.types_{mood} ORDER BY v LIMIT 1", [("sad",)]),
                      (f"SELECT count(*) FROM cloud.types_{uuid} WHERE v = '123E4567-E89B-12D3-A456-426614174000'", [(1,)])]:
        con.execute("SET openduck_placement = 'remote'")
        assert placed(con, sql)[0] != [], sql
        assert con.sql(sql).fetchall() == want, sql
        con.execute("SET openduck_placement = 'local'")
        assert con.sql(sql).fetchall() == want, sql


def test_a_local_table_with_a_collation_is_not_copied(con):
    con.execute("CREATE TABLE nocase AS SELECT 3 AS dim, 'Red'::VARCHAR COLLATE NOCASE AS color")
    sql = "SELECT count(*) FROM cloud.facts JOIN nocase USING (dim) WHERE color = 'red'"
    con.execute("SET openduck_placement = 'remote'")
    assert placed(con, sql) == ([], ['"mydb"."main"."facts"'])
    assert con.sql(sql).fetchall() == [(20000,)]


def test_a_local_table_with_a_type_of_this_session_is_not_copied(con):
    con.execute("CREATE TYPE color AS ENUM ('red', 'green')")
    con.execute("CREATE TABLE painted AS SELECT 3 AS dim, 'red'::color AS color")
    sql = "SELECT color, count(*) FROM cloud.facts JOIN painted USING (dim) GROUP BY color"
    con.execute("SET openduck_placement = 'remote'")
    shipped, scanned = placed(con, sql)
    assert shipped == [] and scanned == ['"mydb"."main"."facts"'], (shipped, scanned)
    assert con.sql(sql).fetchall() == [("red", 20000)]


def test_the_setting_takes_only_its_three_values(con):
    with pytest.raises(duckdb.InvalidInputException, match="'auto', 'local' or 'remote'"):
        con.execute("SET openduck_placement = 'everywhere'")
    assert con.sql("SELECT current_setting('openduck_placement')").fetchone() == ("auto",)
