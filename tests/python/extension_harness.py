"""The openduck DuckDB extension in the `duckdb` package: where the built file
is, a DuckDB connection that loads it, and the service's own view of what it did."""

import json
import os
from pathlib import Path

import duckdb


def extension_path() -> str:
    """$OPENDUCK_EXTENSION (the Makefile sets it), else the build's output."""
    path = os.environ.get("OPENDUCK_EXTENSION") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/openduck/target"))
        / "extension"
        / "openduck.duckdb_extension"
    )
    if not Path(path).exists():
        raise FileNotFoundError(f"openduck extension not found at {path}; run make build or set OPENDUCK_EXTENSION")
    return path


def local_duckdb(**config) -> duckdb.DuckDBPyConnection:
    """A user's DuckDB with the extension loaded (unsigned extensions must be
    allowed when the connection opens)."""
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", **config})
    con.execute(f"LOAD '{extension_path()}'")
    return con


def attach(con, server, database="mydb", alias="cloud", scheme="openduck"):
    """ATTACH `database` of `server` in `con` as `alias`."""
    con.execute(f"ATTACH '{scheme}:{database}?endpoint={server.uri}' AS {alias}")


def attached(server, database="mydb", alias="cloud") -> duckdb.DuckDBPyConnection:
    """A user's DuckDB with the extension loaded and `database` of `server` attached."""
    con = local_duckdb()
    attach(con, server, database, alias)
    return con


def service_rows(server, sql):
    """Rows of `sql` read straight from the service (ADBC), not through the extension."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(row.values()) for row in cur.fetch_arrow_table().to_pylist()]


def placed(con, sql):
    """Where `sql` runs, from its EXPLAIN in `con`: the SQL of each query shipped to
    the service whole, and the service's tables scanned here."""
    plan = json.loads(con.sql(f"EXPLAIN (FORMAT json) {sql}").fetchall()[0][1])
    shipped, scanned, pending = [], [], list(plan)
    while pending:
        node = pending.pop()
        if node["name"] == "OPENDUCK_REMOTE_QUERY":
            shipped.append(node["extra_info"]["Remote SQL"])
        elif node["name"] == "OPENDUCK_SCAN":
            scanned.append(node["extra_info"]["Table"])
        pending.extend(node.get("children", []))
    return shipped, scanned
