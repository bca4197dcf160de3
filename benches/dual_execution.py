"""Dual execution: TPC-H split between the user's DuckDB and the service, in one run.

    make bench-dual        # or: OPENDUCK_BIN=... OPENDUCK_EXTENSION=... .venv/bin/python benches/dual_execution.py --scale 1

Generates TPC-H with tpchgen-cli. lineitem, orders and partsupp go to an
`openduck serve` (or the tables --remote names); customer, nation, region, part and
supplier (the others) stay in the user's DuckDB (the Python package with the extension, the attachment on its
search path after its own tables). Each of the 22 queries runs three ways,
interleaved, best of --runs:

  dual      the extension as it places queries (SET openduck_placement = 'auto')
  scans     the same extension placed local: every remote table scanned, with
            filters and columns pushed down (what scan-only extensions give)
  embedded  one local DuckDB holding every table

It prints per-query seconds, the ratios dual/embedded and scans/dual, where
dual ran each query, and the rows and bytes the service sent down and the rows
copied up (from the service's query_history). Copies of local tables stay on
the service between queries, so dual's first run of a query (`1st dual`, and
the rows it copied up) is printed too: it pays for the copies the queries
before it did not leave there.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from extension_harness import local_duckdb, placed, service_rows  # noqa: E402
from openduck_harness import Server  # noqa: E402
from tpch_distributed import QUERIES as QUERY_DIR  # noqa: E402
from tpch_distributed import generate  # noqa: E402

REMOTE = ("lineitem", "orders", "partsupp")


def moved(server, since):
    """Rows and bytes the service sent, and rows it took in, in statements after
    sequence number `since`; and the newest sequence number."""
    rows = service_rows(server, f"""
        SELECT sql, coalesce(row_count, 0), coalesce(bytes_sent, 0), sequence
        FROM openduck.main.query_history WHERE sequence > {since}""")
    down_rows = down_bytes = up_rows = 0
    newest = since
    for sql, count, sent, sequence in rows:
        newest = max(newest, sequence)
        if "query_history" in sql:
            continue
        if sql.startswith("INGEST"):
            up_rows += count
        elif sql.startswith("SELECT") or sql.startswith("WITH"):
            down_rows += count
            down_bytes += sent
    return down_rows, down_bytes, up_rows, newest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1", help="TPC-H scale factor")
    parser.add_argument("--runs", type=int, default=3, help="runs of each query on each side; the best counts")
    parser.add_argument("--queries", nargs="*", help="only these queries (q01 ... q22)")
    parser.add_argument("--remote", default=",".join(REMOTE),
                        help="the tables on the service, comma-separated (the rest stay in the user's DuckDB)")
    args = parser.parse_args()
    remote = tuple(args.remote.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tables = generate(args.scale, tmp / "tpch")
        server = Server(tmp / "served", databases=["tpch"]).start()
        try:
            with server.connect() as conn, conn.cursor() as cur:
                for name in remote:
                    cur.adbc_ingest(name, tables[name], mode="create")
            embedded = duckdb.connect()
            user = local_duckdb()
            user.execute(f"ATTACH 'openduck:tpch?endpoint={server.uri}' AS tpch")
            for name, table in tables.items():
                embedded.register("incoming", table)
                embedded.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
                embedded.unregister("incoming")
                if name not in remote:
                    user.register("incoming", table)
                    user.execute(f"CREATE TABLE memory.main.{name} AS SELECT * FROM incoming")
                    user.unregister("incoming")
            user.execute("SET search_path = 'memory.main,tpch.main'")

            def timed(con, sql):
                start = time.perf_counter()
                rows = con.execute(sql).fetchall()
                return time.perf_counter() - start, len(rows)

            names = args.queries or sorted(path.stem for path in QUERY_DIR.glob("q*.sql"))
            print(f"TPC-H SF{args.scale}: {', '.join(remote)} on the service, the rest in the user's DuckDB; "
                  f"best of {args.runs}")
            print(f"{'query':>5} {'dual s':>8} {'1st dual':>8} {'scans s':>8} {'embedded s':>10} {'dual/emb':>9} "
                  f"{'scans/dual':>10}  {'dual ran':<22} {'down rows':>10} {'down MB':>8} {'1st up rows':>11} "
                  f"{'scans down MB':>13}")
            totals = {"dual": 0.0, "scans": 0.0, "embedded": 0.0}
            first_total = 0.0
            _, _, _, since = moved(server, 0)
            for query in names:
                sql = (QUERY_DIR / f"{query}.sql").read_text()
                best = {side: float("inf") for side in totals}
                traffic = {}
                # The first dual run of each query makes the copies of local tables it
                # needs that earlier queries did not leave on the service; later runs
                # find them kept there.
                first = first_up = None
                for _ in range(args.runs):
                    for side in totals:
                        if side == "embedded":
                            seconds, _ = timed(embedded, sql)
                        else:
                            user.execute(f"SET openduck_placement = '{'auto' if side == 'dual' else 'local'}'")
                            seconds, _ = timed(user, sql)
                            *traffic[side], since = moved(server, since)
                            if side == "dual" and first is None:
                                first, first_up = seconds, traffic[side][2]
                        best[side] = min(best[side], seconds)
                user.execute("SET openduck_placement = 'auto'")
                shipped, _ = placed(user, sql)
                where = ("service, copied up" if shipped and "openduck_upload_" in shipped[0]
                         else "service" if shipped else "here, over scans")
                for side in totals:
                    totals[side] += best[side]
                first_total += first
                down_rows, down_bytes, _ = traffic["dual"]
                print(f"{query:>5} {best['dual']:8.3f} {first:8.3f} {best['scans']:8.3f} {best['embedded']:10.3f} "
                      f"{best['dual'] / best['embedded']:9.2f} {best['scans'] / best['dual']:10.2f}  {where:<22} "
                      f"{down_rows:>10,} {down_bytes / 1e6:8.1f} {first_up:>11,} {traffic['scans'][1] / 1e6:13.1f}")
            print(f"{'total':>5} {totals['dual']:8.3f} {first_total:8.3f} {totals['scans']:8.3f} "
                  f"{totals['embedded']:10.3f} {totals['dual'] / totals['embedded']:9.2f} "
                  f"{totals['scans'] / totals['dual']:10.2f}")
            print(f"goal: dual within 1.3x of embedded (is {totals['dual'] / totals['embedded']:.2f}x; first runs "
                  f"{first_total / totals['embedded']:.2f}x), at least 3x faster than scans "
                  f"(is {totals['scans'] / totals['dual']:.2f}x)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
