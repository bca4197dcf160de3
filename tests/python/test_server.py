"""The server as users run it: restarts, tokens, refusals, environment
variables, and the `openduck query` client."""

import subprocess

import adbc_driver_manager
import pytest

from openduck_harness import Server, openduck_bin


def test_data_survives_a_restart(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept AS SELECT range AS i, 'row ' || range AS label FROM range(5000)")
            cur.executemany("INSERT INTO kept VALUES (?, ?)", [(-1, "first"), (-2, "second")])
        server.restart()
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), min(i), max(label) FROM kept")
            assert cur.fetchone() == (5002, -2, "second")
    finally:
        server.stop()


def test_several_databases(tmp_path):
    server = Server(tmp_path / "data", databases=("mydb", "sales")).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE sales.main.orders AS SELECT 1 AS id, 10 AS amount")
            cur.execute("SELECT amount FROM sales.main.orders")
            assert cur.fetchall() == [(10,)]
            catalogs = [c["catalog_name"] for c in conn.adbc_get_objects(depth="catalogs").read_all().to_pylist()]
            assert sorted(catalogs) == ["mydb", "sales"]
    finally:
        server.stop()
    assert (tmp_path / "data" / "sales.duckdb").exists()


def test_token_authentication(tmp_path):
    server = Server(tmp_path / "data", token="open-sesame").start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        with server.connect(username="analyst", password="open-sesame") as conn, conn.cursor() as cur:
            cur.execute("SELECT 2")
            assert cur.fetchone() == (2,)
        for kwargs in ({"username": "analyst", "password": "wrong"},
                       {"adbc.flight.sql.authorization_header": "Bearer wrong"}):
            with pytest.raises(adbc_driver_manager.Error) as refused:
                with server.connect(**kwargs) as conn, conn.cursor() as cur:
                    cur.execute("SELECT 3")
            assert "UNAUTHENTICATED" in str(refused.value).upper()
    finally:
        server.stop()


def test_refuses_a_public_address_without_a_token(tmp_path):
    result = subprocess.run(
        [openduck_bin(), "serve", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "--token" in result.stderr and "0.0.0.0:0" in result.stderr


def test_flags_come_from_the_environment(tmp_path):
    env = {
        "OPENDUCK_LISTEN": "127.0.0.1:0",
        "OPENDUCK_DATA_DIR": str(tmp_path / "envdata"),
        "OPENDUCK_DATABASE": "alpha,beta",
        "OPENDUCK_TOKEN": "from-env",
    }
    server = Server(tmp_path / "envdata", token="from-env", env=env)
    server.start(args=[openduck_bin()])
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone() == ("alpha",)
    finally:
        server.stop()
    assert (tmp_path / "envdata" / "beta.duckdb").exists()


def test_query_command(server):
    def query(*args):
        return subprocess.run(
            [openduck_bin(), "query", "--endpoint", server.uri, *args],
            capture_output=True, text=True, timeout=60,
        )

    assert query("CREATE TABLE q AS SELECT range AS n, 'v' || range AS s FROM range(3)").returncode == 0
    csv = query("--format", "csv", "SELECT n, s FROM q ORDER BY n")
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == ["n,s", "0,v0", "1,v1", "2,v2"]
    json_lines = query("--format", "json", "SELECT n FROM q WHERE n = 2")
    assert json_lines.stdout.strip() == '{"n":2}'
    table = query("SELECT 'duck' AS animal")
    assert "| animal |" in table.stdout and "| duck   |" in table.stdout
    failed = query("SELECT * FROM nope")
    assert failed.returncode != 0 and "nope" in failed.stderr
