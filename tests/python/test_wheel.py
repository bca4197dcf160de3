"""The Python package: the wheel scripts/build-wheel makes (clients/python, with the
extension inside), installed with pip into a fresh virtual environment, connects to a
real `openduck serve` with `openduck.connect()`."""

import glob
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from openduck_harness import Server

TOKEN = "wheel-t0ken-s3cret"


def wheel_path() -> str:
    """$OPENDUCK_WHEEL (the Makefile sets it), else the build's output."""
    path = os.environ.get("OPENDUCK_WHEEL")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/openduck/target"))
        found = sorted(glob.glob(f"{target}/wheels/openduck-*.whl"))
        path = found[-1] if found else ""
    if not path or not Path(path).exists():
        raise FileNotFoundError("openduck wheel not found; run scripts/build-wheel or set OPENDUCK_WHEEL")
    return path


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    """A fresh virtualenv's Python with the wheel (and the duckdb it requires) installed."""
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", wheel_path()], check=True, timeout=600)
    return python


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("wheel-server") / "data", token=TOKEN).start()
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE events AS SELECT range AS id, range % 7 AS kind FROM range(1000)")
    yield srv
    srv.stop()


def run(python, script, env=None):
    """Runs `script` in the fresh environment, out of the repository (nothing of it importable)."""
    done = subprocess.run(
        [python, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env=dict(os.environ, **(env or {})),
    )
    return done


def test_connect_attaches_the_database_and_uses_it(python, server):
    done = run(
        python,
        f"""
        import json, openduck
        con = openduck.connect("mydb", endpoint={server.uri!r}, token={TOKEN!r})
        counted = con.sql("SELECT count(*), sum(id) FROM events WHERE kind = 3").fetchall()
        con.execute("CREATE TABLE written AS SELECT range AS n FROM range(10)")
        shown = con.sql("SELECT path FROM duckdb_databases() WHERE database_name = 'mydb'").fetchall()
        secrets = con.sql("SELECT secret_string FROM duckdb_secrets()").fetchall()
        print(json.dumps({{"counted": counted, "current": con.sql("SELECT current_database()").fetchone()[0],
                          "shown": str(shown), "secrets": str(secrets), "file": openduck.extension_path()}}))
        """,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["counted"] == [[sum(1 for i in range(1000) if i % 7 == 3), sum(i for i in range(1000) if i % 7 == 3)]]
    assert result["current"] == "mydb"
    assert "site-packages/openduck/openduck.duckdb_extension" in result["file"]
    assert TOKEN not in result["shown"] and TOKEN not in result["secrets"]
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM written")
        assert cur.fetchone() == (10,)


def test_defaults_come_from_the_environment(python, server):
    script = """
        import openduck
        con = openduck.connect("mydb", alias="cloud", read_only=True)
        print(con.sql("SELECT count(*) FROM cloud.events").fetchone()[0])
        try:
            con.execute("DELETE FROM cloud.events")
        except Exception as error:
            print(type(error).__name__)
        """
    done = run(python, script, env={"OPENDUCK_ENDPOINT": server.uri, "OPENDUCK_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    count, refused = done.stdout.split()
    assert count == "1000"
    assert "Exception" in refused


def test_a_wrong_token_or_database_is_a_clear_error(python, server):
    done = run(
        python,
        f"""
        import duckdb, openduck
        for database, token in [("mydb", "wrong"), ("nope", {TOKEN!r})]:
            try:
                openduck.connect(database, endpoint={server.uri!r}, token=token)
                print("connected")
            except duckdb.Error as error:
                print(type(error).__name__, "|", error)
        """,
    )
    assert done.returncode == 0, done.stderr
    wrong_token, unknown = done.stdout.strip().splitlines()
    assert "authentication failed" in wrong_token and "wrong" not in wrong_token.split("|")[1]
    assert "nope" in unknown and "not found" in unknown
