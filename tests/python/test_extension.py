"""The DuckDB extension: a user's own DuckDB (the `duckdb` package, 1.5.2)
attaches a database of a real `openduck serve` with ATTACH 'openduck:mydb',
lists its catalog and reads its tables, with columns and filters pushed down
into the SQL the service receives (EXPLAIN ANALYZE shows it)."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from extension_harness import attach, attached, extension_path, local_duckdb, service_rows
from openduck_harness import Server
from test_transactions_ingest import encode_statement_query
from test_types import CASES, ENUM, case_sql, create_type_tables

# Rows with NULLs in every column, for filters whose NULL handling matters.
PEOPLE = """
    CREATE TABLE people AS
    SELECT i AS id,
           CASE WHEN i % 7 = 0 THEN NULL ELSE 'name' || i END AS name,
           CASE WHEN i % 5 = 0 THEN NULL ELSE i % 13 END AS score,
           DATE '2020-01-01' + (i % 400)::INTEGER AS day,
           {'city': 'c' || (i % 3), 'zip': i % 100} AS address,
           (i / 7)::DECIMAL(10, 2) AS amount
    FROM range(3000) r(i)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("ext") / "data", databases=("mydb", "other")).start()
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute(PEOPLE)
        cur.execute("CREATE SCHEMA sales")
        cur.execute("CREATE TABLE sales.\"Odd \"\"Name\" (\"we\"\"ird\" INTEGER, plain VARCHAR)")
        cur.execute("INSERT INTO sales.\"Odd \"\"Name\" VALUES (1, 'one'), (2, NULL)")
        cur.execute("CREATE VIEW adults AS SELECT id, name FROM people WHERE score > 10")
        create_type_tables(cur)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def reference():
    """The same data in a plain DuckDB: what every answer must equal."""
    con = duckdb.connect()
    con.execute(PEOPLE)
    con.execute(ENUM)
    yield con
    con.close()


@pytest.fixture
def con(server):
    con = attached(server)
    yield con
    con.close()


def remote_sql(con, sql):
    """The SQL each scan of `sql` sent to the service, from EXPLAIN ANALYZE."""
    plan = json.loads(con.sql(f"EXPLAIN (ANALYZE, FORMAT json) {sql}").fetchall()[0][1])
    sent, pending = [], [plan]
    while pending:
        node = pending.pop()
        if "Remote SQL" in node.get("extra_info", {}):
            sent.append(node["extra_info"]["Remote SQL"])
        pending.extend(node.get("children", []))
    return sent


def test_the_catalog_lists_schemas_tables_and_views(con):
    tables = con.sql(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'cloud' ORDER BY ALL"
    ).fetchall()
    assert ("main", "people") in tables
    assert ("main", "adults") in tables
    assert ("sales", 'Odd "Name') in tables
    assert ("main", "types_0") in tables
    assert {row[0] for row in con.sql("SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'cloud'").fetchall()} >= {"main", "sales"}

    described = con.sql("DESCRIBE cloud.people").fetchall()
    assert [(row[0], row[1]) for row in described] == [
        ("id", "BIGINT"),
        ("name", "VARCHAR"),
        ("score", "BIGINT"),
        ("day", "DATE"),
        ("address", "STRUCT(city VARCHAR, zip BIGINT)"),
        ("amount", "DECIMAL(10,2)"),
    ]
    columns = con.sql(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = 'cloud' AND table_schema = 'sales' ORDER BY ordinal_position"
    ).fetchall()
    assert columns == [('we"ird',), ("plain",)]
    show = con.sql("SHOW ALL TABLES").fetchall()
    assert any(row[0] == "cloud" and row[2] == "people" for row in show)


def test_not_null_and_primary_keys_are_in_the_catalog(server, con):
    con.execute("CREATE TABLE cloud.keyed (id BIGINT PRIMARY KEY, code VARCHAR NOT NULL, note VARCHAR)")
    described = con.sql("SELECT column_name, \"null\", key FROM (DESCRIBE cloud.keyed)").fetchall()
    assert described == [("id", "NO", "PRI"), ("code", "NO", None), ("note", "YES", None)]
    # Listed from the service (not only as this connection made it), with a key of two columns.
    service_rows(server, "CREATE TABLE paired (b VARCHAR, a INTEGER, note VARCHAR, PRIMARY KEY (a, b))")
    other = attached(server)
    keys = other.sql(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE database_name = 'cloud' AND constraint_type = 'PRIMARY KEY' ORDER BY table_name"
    ).fetchall()
    assert keys == [("keyed", ["id"]), ("paired", ["a", "b"])]
    other.close()
    service_rows(server, "DROP TABLE paired")
    with pytest.raises(duckdb.ConstraintException, match="NOT NULL"):
        con.execute("INSERT INTO cloud.keyed VALUES (1, NULL, 'x')")
    assert service_rows(server, "SELECT count(*) FROM keyed") == [(0,)]
    con.execute("DROP TABLE cloud.keyed")


def test_rows_equal_the_same_query_on_a_local_duckdb(con, reference):
    for sql in [
        "SELECT * FROM {t} ORDER BY id",
        "SELECT count(*) FROM {t}",
        "SELECT score, count(*), sum(amount) FROM {t} GROUP BY score ORDER BY score NULLS FIRST",
        "SELECT address.city, max(day) FROM {t} GROUP BY ALL ORDER BY 1",
    ]:
        got = con.sql(sql.format(t="cloud.people")).fetchall()
        want = reference.sql(sql.format(t="people")).fetchall()
        assert got == want, sql
    assert con.sql('SELECT * FROM cloud.sales."Odd ""Name" ORDER BY 1').fetchall() == [(1, "one"), (2, None)]
    assert con.sql("SELECT count(*) FROM cloud.adults").fetchone() == reference.sql(
        "SELECT count(*) FROM people WHERE score > 10"
    ).fetchone()


FILTERS = [
    # (predicate, what the service must receive in its WHERE clause, or None
    # when the filter has no exact rendering and must stay in the user's DuckDB)
    ("id = 42", '("id" = 42)'),
    ("id <> 42 AND id < 100", '("id" <> 42) AND ("id" < 100)'),
    ("score >= 12", '("score" >= 12)'),
    ("name = 'it''s'", "(\"name\" = 'it''s')"),
    ("id IN (1, 7, 2999, 5000)", '("id" IN (1, 7, 2999, 5000))'),
    ("id NOT IN (1, 2, 3) AND id < 6", '("id" NOT IN (1, 2, 3))'),
    ("score IS NULL", '("score" IS NULL)'),
    ("name IS NOT NULL AND id < 10", '("name" IS NOT NULL) AND ("id" < 10)'),
    ("score IS NULL OR id = 3", '(("score" IS NULL) OR ("id" = 3))'),
    ("day BETWEEN DATE '2020-02-01' AND DATE '2020-02-03'", "\"day\" >= '2020-02-01'::DATE AND"),
    ("(score = 1 OR score = 2) AND id < 300", '(("score" = 1) OR ("score" = 2))'),
    ("address.city = 'c1' AND id < 20", "(struct_extract(\"address\", 'city') = 'c1')"),
    ("amount > 400.5", '("amount" > 400.50)'),
    ("name LIKE 'name1%'", "prefix(\"name\", 'name1')"),
    ("name LIKE '%1_'", "(\"name\" LIKE '%1_')"),
    ("name ILIKE 'NAME2%' AND id < 300", "(\"name\" ILIKE 'NAME2%')"),
    ("NOT (id > 5)", '("id" <= 5)'),
    ("id % 7 = 3 AND score = 3", '(("id" % 7) = 3)'),
    ("day + INTERVAL 1 DAY > TIMESTAMP '2020-03-01'", "((\"day\" + '1 day'::INTERVAL) > '2020-03-01 00:00:00'::TIMESTAMP)"),
    ("md5(name) LIKE 'a%'", None),
]


@pytest.mark.parametrize("predicate,pushed", FILTERS)
def test_filters_are_pushed_down_and_exact(con, reference, predicate, pushed):
    sql = "SELECT id, name FROM {t} WHERE " + predicate + " ORDER BY id"
    got = con.sql(sql.format(t="cloud.people")).fetchall()
    want = reference.sql(sql.format(t="people")).fetchall()
    assert got == want
    (sent,) = remote_sql(con, sql.format(t="cloud.people"))
    if pushed is None:
        assert "WHERE" not in sent, sent
    else:
        assert "WHERE" in sent and pushed in sent, sent


def test_scans_of_one_table_under_other_filters_stay_apart(con, reference):
    # DuckDB shares equal subplans; two scans of `people` that differ only in
    # the filters the service runs must not be taken for one (TPC-H q22).
    codes = "('name1', 'name2', 'name3', 'name4', 'name5', 'name6', 'name7')"
    sql = f"""SELECT count(*), sum(amount) FROM {{t}}
              WHERE substring(name, 1, 5) IN {codes}
                AND amount > (SELECT avg(amount) FROM {{t}} WHERE amount > 100 AND substring(name, 1, 5) IN {codes})"""
    assert con.sql(sql.format(t="cloud.people")).fetchall() == reference.sql(sql.format(t="people")).fetchall()


def test_only_the_columns_a_query_needs_are_fetched(con):
    (sent,) = remote_sql(con, "SELECT name FROM cloud.people WHERE id < 5")
    # The filter runs on the service, so its column need not come back.
    assert sent == 'SELECT "name" FROM "mydb"."main"."people" WHERE ("id" < 5)', sent
    (sent,) = remote_sql(con, "SELECT name FROM cloud.people WHERE md5(name) LIKE 'a%'")
    assert sent == 'SELECT "name" FROM "mydb"."main"."people"', sent
    # A count scans no column (placed here: on its own, the service would count).
    con.execute("SET openduck_placement = 'local'")
    (sent,) = remote_sql(con, "SELECT count(*) FROM cloud.people")
    assert sent == 'SELECT NULL FROM "mydb"."main"."people"', sent


def test_a_hash_joins_keys_bound_the_scan_of_its_probe_side(con, reference):
    # DuckDB derives the build side's key range (and, for few keys, their list) when the
    # build finishes, before the probe side's scan begins: the service gets them.
    con.execute("SET openduck_placement = 'local'")
    reference.execute("CREATE OR REPLACE TABLE wanted AS SELECT 40 + 7 * range AS id FROM range(4)")
    con.execute("CREATE TABLE wanted AS SELECT 40 + 7 * range AS id FROM range(4)")
    sql = "SELECT p.id, p.name, p.score FROM {t} p JOIN wanted USING (id) ORDER BY id"
    assert con.sql(sql.format(t="cloud.people")).fetchall() == reference.sql(sql.format(t="people")).fetchall()
    (sent,) = remote_sql(con, sql.format(t="cloud.people"))
    assert '"id" IN (' in sent and '"id" >= 40 AND "id" <= 61' in sent, sent

    # Many keys: the range alone, with a filter of the query's own kept next to it.
    con.execute("CREATE TABLE many AS SELECT 1000 + range AS id FROM range(200)")
    reference.execute("CREATE OR REPLACE TABLE many AS SELECT 1000 + range AS id FROM range(200)")
    sql = "SELECT count(*), sum(p.score) FROM {t} p JOIN many USING (id) WHERE p.id % 2 = 0"
    assert con.sql(sql.format(t="cloud.people")).fetchall() == reference.sql(sql.format(t="people")).fetchall()
    sent = [s for s in remote_sql(con, sql.format(t="cloud.people")) if "people" in s]
    assert len(sent) == 1 and '"id" >= 1000 AND "id" <= 1199' in sent[0] and "% 2" in sent[0], sent

    # A left join keeps every row of its left side: nothing may bound that scan.
    sql = "SELECT count(*), count(w.id) FROM {t} p LEFT JOIN wanted w USING (id)"
    assert con.sql(sql.format(t="cloud.people")).fetchall() == reference.sql(sql.format(t="people")).fetchall()
    sent = [s for s in remote_sql(con, sql.format(t="cloud.people")) if "people" in s]
    assert sent == ['SELECT "id" FROM "mydb"."main"."people"'], sent


def last_scan_of_people(server):
    """The newest statement over `people` the service received, and the rows it sent."""
    ((sent, rows),) = service_rows(server, """SELECT sql, row_count FROM openduck.main.query_history
                                              WHERE sql LIKE '%"people"%' AND sql NOT LIKE '%query_history%'
                                              ORDER BY sequence DESC LIMIT 1""")
    return sent, rows


@pytest.mark.parametrize("sql,tail", [
    # A LIMIT (with its OFFSET) right above the scan, through projections.
    ("SELECT id, name FROM {t} WHERE score = 3 LIMIT 4 OFFSET 2", ' WHERE ("score" = 3) LIMIT 6'),
    ("SELECT id * 2 AS twice FROM {t} LIMIT 3", " LIMIT 3"),
    # ORDER BY ... LIMIT (a top-N): the keys go along, with the NULL order DuckDB bound spelled out.
    ("SELECT id, score FROM {t} ORDER BY score DESC, id LIMIT 5",
     ' ORDER BY "score" DESC NULLS LAST, "id" ASC NULLS LAST LIMIT 5'),
    ("SELECT name, amount + 1 AS more FROM {t} WHERE day > DATE '2020-06-01' ORDER BY name NULLS FIRST LIMIT 2 OFFSET 1",
     ' ORDER BY "name" ASC NULLS FIRST LIMIT 3'),
])
def test_a_limit_over_a_scan_asks_the_service_for_that_many_rows(server, con, reference, sql, tail):
    # Placed here: on its own, the whole query would run there.
    con.execute("SET openduck_placement = 'local'")
    got = con.sql(sql.format(t="cloud.people")).fetchall()
    if "ORDER BY" in sql:
        assert got == reference.sql(sql.format(t="people")).fetchall()
    else:
        # Any rows the filter keeps, as many as asked.
        want = reference.sql(sql.split(" LIMIT")[0].format(t="people")).fetchall()
        assert len(got) == len(reference.sql(sql.format(t="people")).fetchall()) and set(got) <= set(want)
    # What the service received and sent (EXPLAIN ANALYZE does not show a scan that a
    # LIMIT stopped early): as many rows as the limit reads.
    sent, rows = last_scan_of_people(server)
    assert sent.endswith(tail), sent
    assert rows == int(tail.rsplit(" ", 1)[1]), (sent, rows)


@pytest.mark.parametrize("sql", [
    # A filter that stays here: the service's first rows need not pass it.
    "SELECT id FROM {t} WHERE md5(name) LIKE 'a%' LIMIT 3",
    # A key computed here.
    "SELECT id FROM {t} ORDER BY id % 13, id LIMIT 3",
    # A join between the limit and the scan.
    "SELECT p.id FROM {t} p JOIN range(3000) r(id) USING (id) ORDER BY p.id LIMIT 3",
])
def test_a_limit_the_service_cannot_apply_alone_reads_every_row(server, con, reference, sql):
    con.execute("SET openduck_placement = 'local'")
    assert con.sql(sql.format(t="cloud.people")).fetchall() == reference.sql(sql.format(t="people")).fetchall()
    sent, _ = last_scan_of_people(server)
    assert "LIMIT" not in sent, sent


def test_a_table_merely_mentioning_collate_keeps_its_filters_pushed(server, con):
    # Only a VARCHAR of a table declared with a COLLATE clause is compared otherwise there.
    service_rows(server, "CREATE TABLE loans (collateral INTEGER, note VARCHAR DEFAULT 'collateral')")
    service_rows(server, "INSERT INTO loans VALUES (1, 'a'), (5, 'b')")
    con.execute("CALL openduck_refresh()")
    (sent,) = remote_sql(con, "SELECT note FROM cloud.loans WHERE collateral > 2 AND note = 'b'")
    assert '("collateral" > 2)' in sent and "\"note\" = 'b'" in sent, sent
    service_rows(server, "DROP TABLE loans")


def test_row_ids_of_the_services_tables_are_null(con):
    # A scan has no row ids to give (DuckDB's Arrow conversion leaves them unwritten).
    assert con.sql("SELECT count(*), count(rowid), max(rowid) FROM cloud.people").fetchall() == [(3000, 0, None)]
    assert con.sql("SELECT rowid, id FROM cloud.people WHERE id < 2 ORDER BY id").fetchall() == [(None, 0), (None, 1)]


def test_the_services_query_history_shows_what_was_pushed_down(con):
    """The service's own record of what it received: the filtered scan sent
    only the filter's rows of the one column asked for, the whole scan all."""
    assert len(con.sql("SELECT name FROM cloud.people WHERE id < 5").fetchall()) == 5
    assert len(con.sql("SELECT name, score FROM cloud.people").fetchall()) == 3000
    history = con.sql("""
        SELECT sql, row_count, bytes_sent, status FROM openduck_query('cloud',
            'SELECT sql, row_count, bytes_sent, status, start_time FROM openduck.main.query_history')
        ORDER BY start_time DESC""").fetchall()
    newest = {}
    for sql, rows, sent, status in history:
        newest.setdefault(sql, (rows, sent, status))
    filtered = newest['SELECT "name" FROM "mydb"."main"."people" WHERE ("id" < 5)']
    whole = newest['SELECT "name", "score" FROM "mydb"."main"."people"']
    assert filtered[0] == 5 and filtered[2] == "succeeded", filtered
    assert whole[0] == 3000 and whole[2] == "succeeded", whole
    assert 0 < filtered[1] < whole[1] / 20, (filtered, whole)


def assert_reads_as_reference(con, reference, table, sql, type_name):
    """Column `v` of `table` reads in the attachment as `sql` does in a plain DuckDB."""
    want = reference.sql(sql)
    got = con.sql(f"SELECT v FROM {table}")
    # Exact, also where the wire carries another type (UUID and ENUM as VARCHAR, HUGEINT as
    # DECIMAL(38,0)): the service names each column's type, and the scan casts back.
    assert [str(t) for t in got.types] == [str(want.types[0])], type_name
    # Compared as DuckDB prints them, which needs no Python time zone module.
    got_rows = con.sql(f"SELECT v::VARCHAR FROM {table}").fetchall()
    want_rows = reference.sql(f"SELECT v::VARCHAR FROM ({sql})").fetchall()
    assert sorted(got_rows, key=repr) == sorted(want_rows, key=repr), type_name


@pytest.mark.parametrize("index,type_name", list(enumerate(CASES)))
def test_every_type_reads_as_the_duckdb_package_reads_it(con, reference, index, type_name):
    sql = case_sql(type_name, CASES[type_name])
    assert_reads_as_reference(con, reference, f"cloud.types_{index}", sql, type_name)


def test_openduck_query_runs_sql_verbatim_in_the_attached_database(con):
    rows = con.sql(
        "SELECT * FROM openduck_query('cloud', 'SELECT current_database() AS db, count(*) AS n FROM people')"
    ).fetchall()
    assert rows == [("mydb", 3000)]
    with pytest.raises(duckdb.BinderException, match="not an openduck attachment"):
        con.sql("SELECT * FROM openduck_query('memory', 'SELECT 1')")
    with pytest.raises(duckdb.Error, match="nope"):
        con.sql("SELECT * FROM openduck_query('cloud', 'SELECT * FROM nope')").fetchall()


def test_two_databases_side_by_side_and_the_od_scheme(server):
    con = local_duckdb()
    attach(con, server, "mydb", "a")
    attach(con, server, "other", "b", scheme="od")
    assert con.sql("SELECT count(*) FROM a.people").fetchone() == (3000,)
    tables = con.sql("SELECT table_name FROM duckdb_tables() WHERE database_name = 'b'").fetchall()
    assert tables == []
    con.close()


def databases(con):
    """The user's DuckDB's attached databases: name to (path, read-only)."""
    rows = con.sql("SELECT database_name, path, readonly FROM duckdb_databases() WHERE NOT internal").fetchall()
    return {name: (path, readonly) for name, path, readonly in rows}


def test_without_as_an_attachment_is_named_after_its_database(server):
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}'")
    con.execute(f"ATTACH IF NOT EXISTS 'openduck:mydb?endpoint={server.uri}'")
    assert databases(con)["mydb"] == (f"{server.uri}/mydb", False)
    assert con.sql("SELECT count(*) FROM mydb.people").fetchone() == (3000,)
    # An alias is kept, also one that looks like the name DuckDB would derive from the path.
    con.execute(f"ATTACH 'openduck:other?endpoint={server.uri}' AS \"127\"")
    assert databases(con)["127"] == (f"{server.uri}/other", False)
    con.close()


def test_attach_without_a_database_attaches_every_one_under_its_own_name(server):
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:other?endpoint={server.uri}'")
    con.execute(f"ATTACH 'openduck:?endpoint={server.uri}'")
    assert databases(con) == {
        "memory": (None, False),
        "mydb": (f"{server.uri}/mydb", False),
        "other": (f"{server.uri}/other", False),
    }
    assert con.sql("SELECT count(*) FROM mydb.people").fetchone() == (3000,)
    con.execute("CREATE TABLE other.made_here AS SELECT 1 AS x")
    assert service_rows(server, "SELECT x FROM other.main.made_here") == [(1,)]
    con.execute("DROP TABLE other.made_here")
    with pytest.raises(duckdb.BinderException, match="every database of .* is attached already"):
        con.execute(f"ATTACH 'openduck:?endpoint={server.uri}'")
    # IF NOT EXISTS: nothing to do, and nothing changes; once one is missing (detached
    # here), it attaches that one, also next to a local database named "openduck".
    con.execute(f"ATTACH IF NOT EXISTS 'openduck:?endpoint={server.uri}'")
    assert set(databases(con)) == {"memory", "mydb", "other"}
    con.execute("DETACH other")
    con.execute("ATTACH ':memory:' AS openduck")
    con.execute(f"ATTACH IF NOT EXISTS 'openduck:?endpoint={server.uri}'")
    assert databases(con)["other"] == (f"{server.uri}/other", False)
    con.close()

    read_only = local_duckdb()
    read_only.execute(f"ATTACH 'od:?endpoint={server.uri}' (READ_ONLY)")
    assert {name: mode for name, (_, mode) in databases(read_only).items()} == {
        "memory": False,
        "mydb": True,
        "other": True,
    }
    read_only.close()


def test_attach_without_a_database_refuses_an_alias_and_a_taken_name(server):
    con = local_duckdb()
    with pytest.raises(duckdb.BinderException, match="under its own name.*ATTACH 'openduck:mydb' AS x"):
        con.execute(f"ATTACH 'openduck:?endpoint={server.uri}' AS x")
    con.execute("ATTACH ':memory:' AS other")
    for if_not_exists in ("", "IF NOT EXISTS "):
        with pytest.raises(duckdb.BinderException, match='database "other": another database of that name'):
            con.execute(f"ATTACH {if_not_exists}'openduck:?endpoint={server.uri}'")
    # Nothing was attached: the names are checked before the first database is.
    assert set(databases(con)) == {"memory", "other"}
    con.close()


def test_a_read_only_attachment_refuses_writes(server):
    con = local_duckdb()
    con.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}' AS ro (READ_ONLY)")
    assert con.sql("SELECT count(*) FROM ro.people").fetchone() == (3000,)
    for sql in ["CREATE TABLE ro.nope (x INT)", "INSERT INTO ro.people SELECT * FROM ro.people LIMIT 1", "DROP TABLE ro.people"]:
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            con.execute(sql)
    assert service_rows(server, "SELECT count(*) FROM people") == [(3000,)]
    con.close()


def test_a_snapshot_attaches_read_only_with_its_rows_then(server, con):
    con.execute("CREATE TABLE cloud.travel AS SELECT range AS i FROM range(3)")
    (snapshot,) = service_rows(
        server, "SELECT snapshot FROM openduck.main.snapshots WHERE database = 'mydb' ORDER BY created_at DESC LIMIT 1"
    )[0]
    con.execute("INSERT INTO cloud.travel VALUES (3)")
    con.execute("CREATE TABLE cloud.later (x INTEGER)")
    con.execute(f"ATTACH 'openduck:mydb@{snapshot}?endpoint={server.uri}' AS old")
    assert con.sql("SELECT count(*), max(i) FROM old.travel").fetchall() == [(3, 2)]
    assert con.sql("SELECT count(*), max(i) FROM cloud.travel").fetchall() == [(4, 3)]
    tables = {row[0] for row in con.sql("SELECT table_name FROM duckdb_tables() WHERE database_name = 'old'").fetchall()}
    assert "travel" in tables and "later" not in tables
    assert con.sql("SELECT readonly FROM duckdb_databases() WHERE database_name = 'old'").fetchone() == (True,)
    with pytest.raises(duckdb.Error, match="read-only"):
        con.execute("INSERT INTO old.travel VALUES (9)")
    then = con.sql(f"""FROM openduck_query('cloud', 'SELECT count(*) FROM "mydb@{snapshot}".main.travel')""")
    assert then.fetchone() == (3,)
    with pytest.raises(duckdb.Error, match="(?i)snapshot"):
        con.execute(f"ATTACH 'openduck:mydb@ffffffffffff?endpoint={server.uri}' AS nowhere")
    con.execute("DETACH old")
    con.execute("DROP TABLE cloud.travel")
    con.execute("DROP TABLE cloud.later")


def test_an_unknown_database_or_table_is_a_clear_error(server, con):
    other = local_duckdb()
    with pytest.raises(duckdb.Error, match='database "nowhere" not found.*it hosts: '):
        attach(other, server, "nowhere", "x")
    other.close()
    with pytest.raises(duckdb.CatalogException, match="missing"):
        con.sql("SELECT * FROM cloud.missing")


def test_an_unreachable_service_fails_at_attach_naming_it(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    con = local_duckdb()
    started = time.monotonic()
    with pytest.raises(duckdb.IOException, match=f"grpc://127.0.0.1:{port}"):
        con.execute(f"ATTACH 'openduck:mydb?endpoint=grpc://127.0.0.1:{port}' AS cloud")
    assert time.monotonic() - started < 30
    with pytest.raises(duckdb.Error, match="unknown ATTACH option"):
        con.execute("ATTACH 'openduck:mydb?colour=red' AS cloud")
    con.close()


def test_tokens_from_a_secret_or_the_environment_never_shown(tmp_path):
    token = "s3cr3t-t0ken"
    srv = Server(tmp_path / "data", token=token).start()
    try:
        con = local_duckdb()
        with pytest.raises(duckdb.Error, match="authentication failed") as refused:
            attach(con, srv)
        assert token not in str(refused.value)

        con.execute(f"CREATE SECRET cloud_token (TYPE openduck, TOKEN '{token}', SCOPE '{srv.uri}')")
        attach(con, srv)
        assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'cloud'").fetchone() == (0,)
        for table in ["duckdb_secrets()", "duckdb_databases()"]:
            shown = str(con.sql(f"SELECT * FROM {table}").fetchall())
            assert token not in shown, table
        con.close()

        # The variable, in a process of its own (the core reads it at ATTACH).
        script = (
            "from extension_harness import local_duckdb\n"
            "con = local_duckdb()\n"
            f"con.execute(\"ATTACH 'openduck:mydb' AS cloud\")\n"
            "print(con.sql(\"SELECT count(*) FROM duckdb_tables() WHERE database_name = 'cloud'\").fetchall())\n"
        )
        env = dict(os.environ, OPENDUCK_TOKEN=token, OPENDUCK_ENDPOINT=srv.uri)
        env["PYTHONPATH"] = os.path.dirname(__file__)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        env["OPENDUCK_TOKEN"] = "wrong"
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "authentication failed" in done.stderr, done.stderr
    finally:
        srv.stop()


def test_install_once_then_attach_loads_it(server, tmp_path):
    directory = str(tmp_path / "extensions")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "extension_directory": directory})
    con.execute(f"INSTALL '{extension_path()}'")
    con.close()
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "extension_directory": directory})
    # Without AS: the ATTACH that loads the extension names the attachment after its database too.
    con.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}'")
    assert con.sql("SELECT count(*) FROM mydb.people").fetchone() == (3000,)
    assert con.sql("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'openduck'").fetchone() == (True,)
    con.close()


def test_a_large_scan_streams(con):
    rows = con.sql("SELECT count(*), sum(i) FROM openduck_query('cloud', 'SELECT * FROM range(2000000) t(i)')")
    assert rows.fetchone() == (2000000, 1999999000000)
    arrow = con.sql("SELECT * FROM cloud.people").arrow()
    table = arrow.read_all() if isinstance(arrow, pa.RecordBatchReader) else arrow
    assert table.num_rows == 3000


def test_scans_carry_the_services_row_estimates(con):
    plan = json.loads(con.sql("EXPLAIN (FORMAT json) SELECT * FROM cloud.people").fetchall()[0][1])
    scan = plan[0]
    while scan["name"] != "OPENDUCK_SCAN":
        (scan,) = scan["children"]
    assert scan["extra_info"]["Estimated Cardinality"] == "3000"


def test_refresh_shows_tables_made_and_dropped_elsewhere(server, con):
    con.sql("SELECT count(*) FROM cloud.people").fetchall()  # the catalog is listed
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE later AS SELECT 1 AS one")
    with pytest.raises(duckdb.CatalogException, match="later"):
        con.sql("SELECT * FROM cloud.later")
    assert con.sql("CALL openduck_refresh()").fetchall() == [("cloud",)]
    assert con.sql("SELECT * FROM cloud.later").fetchall() == [(1,)]

    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE later")
    # Still listed until the next refresh: the service's error says what happened.
    with pytest.raises(duckdb.Error, match="later"):
        con.sql("SELECT * FROM cloud.later").fetchall()
    con.sql("CALL openduck_refresh()").fetchall()
    with pytest.raises(duckdb.CatalogException, match="later"):
        con.sql("SELECT * FROM cloud.later")


def answers_within(server, seconds):
    """Whether the server answers a trivial query within `seconds`."""
    client = flight.FlightClient(server.uri.replace("grpc://", "grpc+tcp://"))
    options = flight.FlightCallOptions(timeout=seconds)
    try:
        descriptor = flight.FlightDescriptor.for_command(encode_statement_query("SELECT 42 AS answer"))
        info = client.get_flight_info(descriptor, options)
        return client.do_get(info.endpoints[0].ticket, options).read_all().column(0).to_pylist() == [42]
    except flight.FlightError:
        return False
    finally:
        client.close()


def test_interrupting_a_query_cancels_it_on_the_service(tmp_path):
    # One connection on the service: while the query holds it, nothing else is
    # answered; it is answered again only if the interrupt cancelled the query.
    srv = Server(tmp_path / "data", extra_args=["--max-connections", "1"]).start()
    try:
        con = local_duckdb()
        attach(con, srv)
        forever = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"
        errors = []

        def run():
            try:
                con.sql(f"SELECT * FROM openduck_query('cloud', '{forever}')").fetchall()
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 30
        while answers_within(srv, 0.5):  # until the query holds the one connection
            assert time.monotonic() < deadline, "the query never started"
        con.interrupt()
        worker.join(timeout=30)
        assert not worker.is_alive(), "the interrupt did not end the query"
        assert len(errors) == 1 and isinstance(errors[0], duckdb.InterruptException), errors
        assert answers_within(srv, 20), "the service still runs the interrupted query"
        con.close()
    finally:
        srv.stop()


def test_create_insert_and_drop_through_the_attachment(server, con):
    con.execute("CREATE TABLE cloud.written (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO cloud.written VALUES (1, 'one'), (2, NULL)")
    inserted = con.execute("INSERT INTO cloud.written SELECT range, 'n' || range FROM range(10, 200010)").fetchall()
    assert inserted == [(200000,)]
    expected = [(200002, 1 + 2 + sum(range(10, 200010)))]
    assert service_rows(server, "SELECT count(*), sum(id) FROM written") == expected
    assert con.sql("SELECT count(*), sum(id) FROM cloud.written").fetchall() == expected
    plan = con.sql("EXPLAIN INSERT INTO cloud.written SELECT 3, 'x'").fetchall()[0][1]
    assert "OPENDUCK_INSERT" in plan

    with pytest.raises(duckdb.CatalogException, match="already exists"):
        con.execute("CREATE TABLE cloud.written (x INTEGER)")
    con.execute("CREATE TABLE IF NOT EXISTS cloud.written (x INTEGER)")
    con.execute("DROP TABLE cloud.written")
    with pytest.raises(duckdb.CatalogException):
        con.sql("SELECT * FROM cloud.written")
    assert service_rows(server, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'written'") == [(0,)]


def test_a_failed_insert_leaves_nothing_on_the_service(server, con):
    con.execute("CREATE TABLE cloud.all_or_nothing (i BIGINT)")
    failing = "INSERT INTO cloud.all_or_nothing SELECT CASE WHEN range = 150000 THEN error('boom') ELSE range END FROM range(200000)"
    with pytest.raises(duckdb.InvalidInputException, match="boom"):
        con.execute(failing)
    assert service_rows(server, "SELECT count(*) FROM all_or_nothing") == [(0,)]
    # Nothing of the cut-off ingest stays open on the service to hold back
    # the next write (its publication waited for the open transaction).
    con.execute("INSERT INTO cloud.all_or_nothing VALUES (7)")
    assert service_rows(server, "SELECT count(*), sum(i) FROM all_or_nothing") == [(1, 7)]


def test_an_insert_is_cut_off_only_when_its_rows_stop_coming(tmp_path):
    """The service cuts off an ingest whose client sends nothing for its idle
    limit (it holds DuckDB's threads meanwhile). An ingest starts there with its
    first batch, so a local query that takes longer than the limit before its
    first row lands; one that stops half way is cut off whole."""
    srv = Server(tmp_path / "data", databases=("mydb",), extra_args=["--ingest-idle-timeout", "500ms"]).start()
    try:
        con = attached(srv)

        def after_a_while(value):
            time.sleep(1.5)
            return value

        con.create_function("after_a_while", after_a_while, ["BIGINT"], "BIGINT", side_effects=True)
        con.execute("CREATE TABLE cloud.late (v BIGINT)")
        assert con.execute("INSERT INTO cloud.late SELECT after_a_while(42)").fetchall() == [(1,)]
        assert service_rows(srv, "SELECT v FROM late") == [(42,)]

        stalling = "INSERT INTO cloud.late SELECT CASE WHEN range = 5000 THEN after_a_while(range) ELSE range END FROM range(10000)"
        with pytest.raises(duckdb.Error, match="ingest-idle-timeout") as cut_off:
            con.execute(stalling)
        assert "DeadlineExceeded" in str(cut_off.value) or "deadline" in str(cut_off.value).lower(), cut_off.value
        assert service_rows(srv, "SELECT count(*) FROM late") == [(1,)]
        con.execute("INSERT INTO cloud.late SELECT range FROM range(3)")
        assert service_rows(srv, "SELECT count(*) FROM late") == [(4,)]
        con.close()
    finally:
        srv.stop()


def test_insert_with_a_column_list_takes_the_services_defaults(server, con):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE SEQUENCE ticket START 1000")
        cur.execute(
            "CREATE TABLE tickets (id BIGINT DEFAULT nextval('ticket'), title VARCHAR, "
            "state VARCHAR DEFAULT 'open', seen BIGINT)"
        )
    con.execute("CALL openduck_refresh()")
    con.execute("INSERT INTO cloud.tickets (title) VALUES ('first'), ('second')")
    con.execute("INSERT INTO cloud.tickets (seen, title, state) SELECT range, 'bulk' || range, 'closed' FROM range(2)")
    con.execute("INSERT INTO cloud.tickets VALUES (7, 'all', 'given', 9)")
    # Only defaults: the row is made on the service.
    assert con.execute("INSERT INTO cloud.tickets DEFAULT VALUES").fetchall() == [(1,)]
    assert service_rows(server, "SELECT id, title, state, seen FROM tickets ORDER BY id") == [
        (7, "all", "given", 9),
        (1000, "first", "open", None),
        (1001, "second", "open", None),
        (1002, "bulk0", "closed", 0),
        (1003, "bulk1", "closed", 1),
        (1004, None, "open", None),
    ]


@pytest.mark.parametrize(
    "sql,refusal",
    [
        ("CREATE SEQUENCE cloud.s", "not supported through an attachment yet"),
    ],
)
def test_writes_not_supported_yet_are_refused_clearly(con, sql, refusal):
    with pytest.raises(duckdb.NotImplementedException, match=refusal):
        con.execute(sql)
    assert con.sql("SELECT count(*) FROM cloud.people").fetchone() == (3000,)


@pytest.mark.parametrize("index,type_name", list(enumerate(CASES)))
def test_every_type_written_reads_back_the_same(con, index, type_name):
    if type_name == "mood":
        con.execute(ENUM)
    sql = case_sql(type_name, CASES[type_name])
    con.execute(f"CREATE TABLE cloud.written_{index} AS {sql}")
    got = con.sql(f"SELECT v::VARCHAR FROM cloud.written_{index}").fetchall()
    want = con.sql(f"SELECT v::VARCHAR FROM ({sql})").fetchall()
    assert sorted(got, key=repr) == sorted(want, key=repr), type_name


def test_copy_a_whole_database_to_the_service_and_back(server, con):
    con.execute("ATTACH ':memory:' AS laptop")
    con.execute("CREATE SCHEMA laptop.copied")
    con.execute("CREATE TABLE laptop.copied.numbers AS SELECT range AS n, range::VARCHAR AS s FROM range(5000)")
    con.execute("CREATE TABLE laptop.copied.empty (x DATE)")
    con.execute("ATTACH 'openduck:other?endpoint=" + server.uri + "' AS elsewhere")
    con.execute("COPY FROM DATABASE laptop TO elsewhere")
    assert service_rows(server, "SELECT count(*), sum(n) FROM other.copied.numbers") == [(5000, sum(range(5000)))]
    con.execute("ATTACH ':memory:' AS back")
    con.execute("COPY FROM DATABASE elsewhere TO back")
    assert con.sql("SELECT count(*), max(s) FROM back.copied.numbers").fetchall() == [(5000, "999")]
    assert con.sql("SELECT count(*) FROM back.copied.empty").fetchall() == [(0,)]
    con.execute("DROP SCHEMA elsewhere.copied CASCADE")


# Types the wire carries as others (UUID and ENUM as VARCHAR, HUGEINT as DECIMAL(38,0))
# inside lists, arrays, structs and maps.
NESTED = {
    "UUID[]": ["['123e4567-e89b-12d3-a456-426614174000'::UUID, NULL]", "[]"],
    "HUGEINT[2]": ["[-170141183460469231731687303715884105727, 1]"],
    "STRUCT(u UUID, \"Big One\" UHUGEINT)": ["{'u': '00000000-0000-0000-0000-000000000001', 'Big One': 1}"],
    "MAP(VARCHAR, HUGEINT[])": ["MAP {'k': [99999999999999999999999999999999999999, NULL]}"],
    "mood[]": ["['sad', 'happy']"],
    "STRUCT(m mood, l UUID[])[]": ["[{'m': 'ok', 'l': ['123e4567-e89b-12d3-a456-426614174000']}]"],
}


def test_types_the_wire_changes_are_exact_inside_nested_types(server, reference):
    with server.connect() as conn, conn.cursor() as cur:
        for index, type_name in enumerate(NESTED):
            cur.execute(f"CREATE OR REPLACE TABLE nested_{index} AS {case_sql(type_name, NESTED[type_name])}")
    con = attached(server)
    try:
        for index, type_name in enumerate(NESTED):
            sql = case_sql(type_name, NESTED[type_name])
            assert_reads_as_reference(con, reference, f"cloud.nested_{index}", sql, type_name)
            # A filter on the column counts the same rows.
            assert con.sql(f"SELECT count(*) FROM cloud.nested_{index} WHERE v IS NOT NULL").fetchall() == \
                reference.sql(f"SELECT count(*) FROM ({sql}) WHERE v IS NOT NULL").fetchall(), type_name
    finally:
        con.close()


def test_an_attachment_keeps_its_database_when_the_service_restarts(tmp_path):
    """The attached database is where unqualified names resolve (openduck_query,
    transactions), on every connection and after a restart of the service."""
    srv = Server(tmp_path / "data", databases=("mydb", "other")).start()
    try:
        with srv.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE other.main.t AS SELECT 1 AS id")
        con = local_duckdb()
        attach(con, srv, database="other")
        here = "SELECT * FROM openduck_query('cloud', 'SELECT current_database(), count(*) FROM t')"
        assert con.sql(here).fetchall() == [("other", 1)]
        # The same address, as a restarted service (a pod behind its Service) has.
        port = srv.uri.rsplit(":", 1)[1]
        srv.stop()
        srv.start([arg.replace("127.0.0.1:0", f"127.0.0.1:{port}") for arg in srv.command()])
        assert con.sql(here).fetchall() == [("other", 1)]
        con.execute("BEGIN")
        con.execute("INSERT INTO cloud.t VALUES (2)")
        assert con.sql(here).fetchall() == [("other", 2)]
        con.execute("COMMIT")
        assert service_rows(srv, "SELECT count(*) FROM other.main.t") == [(2,)]
        con.close()
    finally:
        srv.stop()
