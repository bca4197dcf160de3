"""Ingest throughput: a pyarrow Table written into openduck with the ADBC
Flight SQL driver's bulk ingest, and into embedded DuckDB, side by side in one run.

    make bench            # or: OPENDUCK_BIN=... .venv/bin/python benches/ingest_throughput.py

Prints rows per second for both and their ratio (openduck / embedded). Both
write the same Arrow table (sent as 64K-row batches) into a new table of an
on-disk DuckDB database: openduck through `adbc_ingest(mode="replace")`
(DoPut with CommandStatementIngest, appended as batches arrive), embedded
DuckDB through `CREATE OR REPLACE TABLE ... AS SELECT * FROM arrow_table`.
Each side runs several times, interleaved, and the best run counts.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from openduck_harness import Server  # noqa: E402
from side_by_side import best_times, report  # noqa: E402

BATCH_ROWS = 65_536


def make_table(rows):
    ids = pa.array(range(rows), pa.int64())
    return pa.table({
        "id": ids,
        "doubled": pc.multiply(ids, 2),
        "name": pc.binary_join_element_wise("customer-", pc.cast(pc.bit_wise_and(ids, 0xFFFF), pa.string()), ""),
        "score": pc.divide(pc.cast(pc.bit_wise_and(ids, 1023), pa.float64()), 10.0),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    table = make_table(args.rows)
    batches = table.to_batches(max_chunksize=BATCH_ROWS)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        embedded = duckdb.connect(str(tmp / "embedded.duckdb"))
        server = Server(tmp / "served").start()
        try:
            with server.connect() as conn, conn.cursor() as cur:

                def via_openduck():
                    reader = pa.RecordBatchReader.from_batches(table.schema, batches)
                    cur.adbc_ingest("ingested", reader, mode="replace")
                    cur.execute("SELECT count(*) FROM ingested")
                    return cur.fetchone()[0]

                def via_embedded():
                    arrow_table = pa.Table.from_batches(batches)  # noqa: F841 (read by DuckDB by name)
                    embedded.execute("CREATE OR REPLACE TABLE ingested AS SELECT * FROM arrow_table")
                    return embedded.execute("SELECT count(*) FROM ingested").fetchone()[0]

                sides = [("openduck", via_openduck), ("embedded", via_embedded)]
                best = best_times(args.runs, sides, args.rows)
        finally:
            server.stop()

    header = f"rows: {args.rows:,}  columns: 4  batches of {BATCH_ROWS:,}  runs: {args.runs} (best of each)"
    report(header, args.rows, best)


if __name__ == "__main__":
    main()
