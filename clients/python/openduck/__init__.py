"""openduck from your own DuckDB.

`connect()` opens a DuckDB connection with the openduck extension (shipped in this
package) loaded and a database of an openduck service attached, so its tables read and
write like local ones: scans take their filters to the service, writes stream to it.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

__all__ = ["connect", "extension_path"]


def extension_path() -> str:
    """Where the packaged `openduck.duckdb_extension` is."""
    return str(Path(__file__).with_name("openduck.duckdb_extension"))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(
    database: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    alias: str | None = None,
    read_only: bool = False,
    config: dict | None = None,
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with `database` of the service attached as
    `alias` (default: its own name) and made the default, like `USE`.

    `endpoint` (`grpc://host:port`) defaults to `OPENDUCK_ENDPOINT`, then to
    `grpc://127.0.0.1:7878`; `token` to `OPENDUCK_TOKEN`. The token goes into a temporary
    DuckDB secret scoped to the endpoint, which DuckDB redacts. `config` is passed to
    `duckdb.connect`. Raises `duckdb.Error` when the service cannot be reached, refuses
    the token, or does not host `database`.
    """
    if not database or "?" in database:
        raise ValueError("connect() needs a database name (options are keyword arguments)")
    settings = dict(config or {})
    # The extension is not signed by DuckDB: allow unsigned extensions for this connection.
    settings["allow_unsigned_extensions"] = "true"
    con = duckdb.connect(config=settings)
    try:
        con.execute(f"LOAD {_literal(extension_path())}")
        endpoint = endpoint or os.environ.get("OPENDUCK_ENDPOINT")
        token = token or os.environ.get("OPENDUCK_TOKEN")
        if token:
            scope = f", SCOPE {_literal(endpoint)}" if endpoint else ""
            con.execute(f"CREATE TEMPORARY SECRET openduck_token (TYPE openduck, TOKEN {_literal(token)}{scope})")
        path = f"openduck:{database}" + (f"?endpoint={endpoint}" if endpoint else "")
        name = _identifier(alias or database)
        options = " (READ_ONLY)" if read_only else ""
        con.execute(f"ATTACH {_literal(path)} AS {name}{options}")
        con.execute(f"USE {name}")
    except BaseException:
        con.close()
        raise
    return con
