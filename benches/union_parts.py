"""A UNION ALL across two executors read whole, in one endpoint and in parts, side by
side with embedded DuckDB, in one run.

    make bench-parts      # or: OPENDUCK_BIN=... [OPENDUCK_EXTENSION=...] .venv/bin/python benches/union_parts.py

The streaming benchmark's table (4 columns), half of its rows in database `sales` on one
executor and half in `crm` on another, under a coordinator; the query is
`SELECT * FROM sales.main.big UNION ALL SELECT * FROM crm.main.big`, read into a pyarrow
Table:
- one endpoint: the ADBC driver as it comes: the coordinator runs the union in its
  DataFusion, every row passing it;
- parts: the ADBC driver with the call header `x-openduck-endpoints: all`: one endpoint per
  executor, which the driver reads in parallel straight from the executors;
- extension: the DuckDB extension (when OPENDUCK_EXTENSION names it), `openduck_query`
  of the same text, reading the parts in parallel too;
- embedded: the `duckdb` package holding both halves in one file.
Each side runs several times, interleaved; the best run counts.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from cluster_harness import Coordinator, Etcd, Executor, wait_until  # noqa: E402
from side_by_side import best_times, report  # noqa: E402
from stream_throughput import TABLE_SQL  # noqa: E402

QUERY = "SELECT * FROM sales.main.big UNION ALL SELECT * FROM crm.main.big"
HALF = "CREATE TABLE {database}.main.big AS SELECT * FROM ({table}) WHERE id % 2 = {half}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    table = TABLE_SQL.format(rows=args.rows).strip().removeprefix("CREATE TABLE big AS")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        embedded = duckdb.connect(str(tmp / "embedded.duckdb"))
        for half, database in enumerate(["sales", "crm"]):
            embedded.execute(f"ATTACH '{tmp / database}.duckdb' AS {database}")
            embedded.execute(HALF.format(database=database, table=table, half=half))
        etcd = Etcd(tmp / "etcd").start()
        started = []
        try:
            for index, database in enumerate(["sales", "crm"]):
                started.append(Executor(tmp / f"exec-{index}", etcd, f"exec-{index}", [database]).start())
            coordinator = Coordinator(tmp / "coordinator", etcd).start()
            started.append(coordinator)
            every = {"adbc.flight.sql.rpc.call_header.x-openduck-endpoints": "all"}
            with coordinator.connect() as conn, conn.cursor() as cur, \
                    coordinator.connect(**every) as parts_conn, parts_conn.cursor() as parts:
                wait_until(lambda: len(conn.adbc_get_objects(depth="catalogs").read_all()) >= 2, what="executors")
                for half, database in enumerate(["sales", "crm"]):
                    cur.execute(HALF.format(database=database, table=table, half=half))

                def read(cursor):
                    cursor.execute(QUERY)
                    return cursor.fetch_arrow_table().num_rows

                sides = [("one endpoint", lambda: read(cur)), ("parts", lambda: read(parts))]
                if os.environ.get("OPENDUCK_EXTENSION"):
                    from extension_harness import local_duckdb

                    user = local_duckdb()
                    user.execute(f"ATTACH 'openduck:sales?endpoint={coordinator.uri}' AS sales")
                    text = QUERY.replace("'", "''")
                    sides.append(("extension", lambda: user.execute(
                        f"SELECT * FROM openduck_query('sales', '{text}')").to_arrow_table().num_rows))
                sides.append(("embedded", lambda: embedded.execute(QUERY).to_arrow_table().num_rows))
                best = best_times(args.runs, sides, args.rows)
        finally:
            for process in reversed(started):
                process.stop()
            etcd.stop()

    report(f"rows: {args.rows:,} (half on each of two executors)  columns: 4  runs: {args.runs} (best of each)",
           args.rows, best)


if __name__ == "__main__":
    main()
