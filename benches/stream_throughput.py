"""Streaming throughput: a 10-million-row table read through openduck with the
ADBC Flight SQL driver, and through embedded DuckDB, side by side in one run.

    make bench            # or: OPENDUCK_BIN=... .venv/bin/python benches/stream_throughput.py

Prints rows per second for both and their ratio (openduck / embedded). Both
read the same rows from an on-disk DuckDB database into a pyarrow Table
(ADBC's fetch_arrow_table against duckdb's to_arrow_table); each side runs
several times, interleaved, and the best run counts.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from openduck_harness import Server  # noqa: E402
from side_by_side import best_times, report  # noqa: E402

TABLE_SQL = """
CREATE TABLE big AS
SELECT range AS id,
       range * 2 AS doubled,
       'customer-' || (range % 100000) AS name,
       (range % 997) / 10.0 AS score
FROM range({rows})
"""
QUERY = "SELECT * FROM big"


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

                def via_openduck():
                    cur.execute(QUERY)
                    return cur.fetch_arrow_table().num_rows

                def via_embedded():
                    # to_arrow_table is duckdb 1.5's name for fetch_arrow_table.
                    return embedded.execute(QUERY).to_arrow_table().num_rows

                sides = [("openduck", via_openduck), ("embedded", via_embedded)]
                best = best_times(args.runs, sides, args.rows)
        finally:
            server.stop()

    report(f"rows: {args.rows:,}  columns: 4  runs: {args.runs} (best of each)", args.rows, best)


if __name__ == "__main__":
    main()
