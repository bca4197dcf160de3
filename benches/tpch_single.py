"""TPC-H on one `openduck serve` against one embedded DuckDB, in one run (P1).

    make bench-single      # or: OPENDUCK_BIN=... .venv/bin/python benches/tpch_single.py --scale 1

Generates TPC-H with tpchgen-cli and loads every table into one `openduck
serve` (through ADBC bulk ingest) and into one in-process DuckDB (the Python
package, the same DuckDB version). Each of the 22 queries runs on both,
interleaved, best of --runs:

  openduck  the ADBC Flight SQL driver: cursor.execute + fetch_arrow_table
  embedded  duckdb: execute + to_arrow_table

and the script prints per-query seconds and their ratio, and where the time
between the client's call and DuckDB's first row goes, measured with a plain
Flight client (pyarrow.flight) on the same queries:

  info      GetFlightInfo: one round trip, the server's routing, and DuckDB
            preparing the statement and starting it (the server starts a
            query when it is planned; its rows wait for the DoGet)
  first     DoGet until the first batch: one round trip, the server's checks
            and the rest of DuckDB's work until it has rows to send
  rest      the remaining batches
  prepare   embedded DuckDB's PREPARE of the same statement (parse, bind,
            optimize): what each prepare on the server costs
  trivial   info + fetch of `SELECT 1`: the fixed price of a statement

The best of --runs counts for each.
"""

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.flight as flight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from openduck_harness import Server  # noqa: E402
from test_transactions_ingest import encode_statement_query  # noqa: E402
from tpch_distributed import QUERIES, Tally, embedded_tpch  # noqa: E402


def statement_query(sql):
    """GetFlightInfo's descriptor for a Flight SQL statement."""
    return flight.FlightDescriptor.for_command(encode_statement_query(sql))


def phases(client, sql):
    """Seconds of GetFlightInfo, of DoGet until the first batch, and of the
    rest of the stream; and the rows."""
    start = time.perf_counter()
    info = client.get_flight_info(statement_query(sql))
    planned = time.perf_counter()
    reader = client.do_get(info.endpoints[0].ticket)
    rows = 0
    first = None
    for chunk in reader:
        if first is None:
            first = time.perf_counter()
        rows += chunk.data.num_rows
    end = time.perf_counter()
    first = first or end
    return (planned - start, first - planned, end - first), rows


def prepare_seconds(con, sql):
    start = time.perf_counter()
    con.execute(f"PREPARE openduck_bench AS {sql}")
    seconds = time.perf_counter() - start
    con.execute("DEALLOCATE openduck_bench")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1", help="TPC-H scale factor")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tables, embedded = embedded_tpch(args.scale, tmp)

        server = Server(tmp / "data", databases=("tpch",)).start()
        try:
            with server.connect() as conn, conn.cursor() as cur:
                started = time.perf_counter()
                for name, table in tables.items():
                    cur.adbc_ingest(name, table, mode="create")
                print(f"loaded the server in {time.perf_counter() - started:.1f} s\n")
                client = flight.connect(server.uri)
                try:
                    run(args.runs, cur, client, embedded)
                finally:
                    client.close()
        finally:
            server.stop()


def run(runs, cur, client, embedded):
    ms = 1000
    trivial = min(sum(phases(client, "SELECT 1")[0]) for _ in range(10))
    print(f"a statement's fixed price (GetFlightInfo + DoGet of SELECT 1): {trivial * ms:.1f} ms\n")
    print(
        f"{'query':>5}  {'openduck s':>10}  {'embedded s':>10}  {'ratio':>6}  "
        f"{'info ms':>8}  {'first ms':>8}  {'rest ms':>8}  {'prepare ms':>10}"
    )
    tally = Tally()
    for path in sorted(QUERIES.glob("q*.sql")):
        sql = path.read_text()
        best = {"openduck": math.inf, "embedded": math.inf}
        split = [math.inf] * 3
        prepare = math.inf
        for _ in range(runs):
            start = time.perf_counter()
            cur.execute(sql)
            ours = cur.fetch_arrow_table().num_rows
            best["openduck"] = min(best["openduck"], time.perf_counter() - start)

            start = time.perf_counter()
            theirs = embedded.execute(sql).to_arrow_table().num_rows
            best["embedded"] = min(best["embedded"], time.perf_counter() - start)
            assert ours == theirs, f"{path.stem}: {ours} rows against {theirs}"

            seconds, rows = phases(client, sql)
            assert rows == theirs, f"{path.stem}: {rows} rows through Flight against {theirs}"
            split = [min(a, b) for a, b in zip(split, seconds)]
            prepare = min(prepare, prepare_seconds(embedded, sql))
        ratio = tally.add(best)
        print(
            f"{path.stem:>5}  {best['openduck']:>10.3f}  {best['embedded']:>10.3f}  {ratio:>6.2f}  "
            f"{split[0] * ms:>8.1f}  {split[1] * ms:>8.1f}  {split[2] * ms:>8.1f}  {prepare * ms:>10.1f}"
        )
    tally.report(" (goals: total 1.10, each 1.25)")


if __name__ == "__main__":
    main()
