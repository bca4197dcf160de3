"""The DuckDB extension's scan throughput: a 10-million-row table of an
`openduck serve` read into the user's DuckDB through ATTACH, against the same
rows through the ADBC Flight SQL driver and against embedded DuckDB, side by
side in one run.

    make bench        # or: OPENDUCK_BIN=... OPENDUCK_EXTENSION=... .venv/bin/python benches/extension_scan.py

Sides: the extension into a table of the user's DuckDB (CREATE TABLE local AS
SELECT * FROM cloud.big) and into a pyarrow Table (what ADBC gives), the ADBC
driver into a pyarrow Table, embedded DuckDB into a table of its own. Runs are
interleaved and the best of each counts. The goal: the extension's pyarrow
read at least as fast as the ADBC driver's.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from extension_harness import local_duckdb  # noqa: E402
from openduck_harness import Server  # noqa: E402
from side_by_side import best_times, report  # noqa: E402
from stream_throughput import TABLE_SQL  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        embedded = duckdb.connect(str(tmp / "embedded.duckdb"))
        embedded.execute(TABLE_SQL.format(rows=args.rows))
        server = Server(tmp / "served").start()
        try:
            with server.connect() as conn, conn.cursor() as cur:
                cur.execute(TABLE_SQL.format(rows=args.rows))
                user = local_duckdb()
                user.execute(f"ATTACH 'openduck:mydb?endpoint={server.uri}' AS cloud")

                def via_extension():
                    user.execute("CREATE OR REPLACE TABLE local AS SELECT * FROM cloud.big")
                    return user.sql("SELECT count(*) FROM local").fetchone()[0]

                def via_extension_arrow():
                    return user.execute("SELECT * FROM cloud.big").to_arrow_table().num_rows

                def via_adbc():
                    cur.execute("SELECT * FROM big")
                    return cur.fetch_arrow_table().num_rows

                def via_embedded():
                    embedded.execute("CREATE OR REPLACE TABLE local AS SELECT * FROM big")
                    return embedded.sql("SELECT count(*) FROM local").fetchone()[0]

                sides = [
                    ("extension table", via_extension),
                    ("extension arrow", via_extension_arrow),
                    ("adbc arrow", via_adbc),
                    ("embedded", via_embedded),
                ]
                best = best_times(args.runs, sides, args.rows)
                user.close()
        finally:
            server.stop()

    report(f"rows: {args.rows:,}  columns: 4  runs: {args.runs} (best of each)", args.rows, best)


if __name__ == "__main__":
    main()
