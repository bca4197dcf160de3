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


def over_a_fast_link(con):
    """`con` with a fast link assumed, not the one measured: where a mixed query runs
    must not depend on how loaded the machine running the tests is."""
    con.execute("SET openduck_link_round_trip_ms = 0.1")
    con.execute("SET openduck_link_megabytes_per_second = 500")
    return con


def arrived(server, tag):
    """Statements the service received whose text holds `tag`, with the rows each
    sent back (its query_history)."""
    rows = service_rows(server, "SELECT sql, row_count FROM openduck.main.query_history "
                                "WHERE status = 'succeeded' ORDER BY sequence")
    return [(sql, count) for sql, count in rows if tag in sql and "query_history" not in sql]


def placement(con, sql):
    """Where the parts of `sql` run, from its EXPLAIN in `con`: the SQL of the query
    shipped to the service whole ("whole"), of each subquery shipped there on its own
    from a query that runs here ("subqueries"), and the service's tables scanned here
    ("scanned")."""
    plan = json.loads(con.sql(f"EXPLAIN (FORMAT json) {sql}").fetchall()[0][1])
    parts, pending = {"whole": [], "subqueries": [], "scanned": []}, list(plan)
    while pending:
        node = pending.pop()
        if node["name"] == "OPENDUCK_REMOTE_QUERY":
            part = "subqueries" if "subquery" in node["extra_info"]["Placement"] else "whole"
            parts[part].append(node["extra_info"]["Remote SQL"])
        elif node["name"] == "OPENDUCK_SCAN":
            parts["scanned"].append(node["extra_info"]["Table"])
        pending.extend(node.get("children", []))
    return parts


def placed(con, sql):
    """Where `sql` runs, from its EXPLAIN in `con`: the SQL of the query shipped to the
    service whole, and the service's tables scanned here."""
    parts = placement(con, sql)
    return parts["whole"], parts["scanned"]
