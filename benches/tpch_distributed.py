"""TPC-H across three executors, against one embedded DuckDB, in one run.

    make bench-tpch        # or: OPENDUCK_BIN=... .venv/bin/python benches/tpch_distributed.py --scale 1

Generates TPC-H with tpchgen-cli, starts etcd, three `openduck executor`
processes and an `openduck coordinator` on loopback, and spreads the tables
as the distributed tests do (lineitem and orders on one executor; customer,
nation and region on a second; part, partsupp and supplier on a third), or
with `--placement lineitem-alone` as they do not (lineitem alone; orders and
customer on a second; the rest on a third). The
same tables go into one in-process DuckDB (the Python package, the same
DuckDB version). Each of the 22 queries runs on both, interleaved, best of
--runs; the script prints per-query seconds, their ratio (openduck /
embedded), and the Arrow bytes that crossed from executors to the
coordinator or, for a join's small side shipped to its large side, from
executor to executor (the coordinator's "bridge finished" and "transfer
finished" log lines). A query
whose tables all live on one executor runs there verbatim and streams to
the client directly: it moves nothing through the coordinator.
"""

import argparse
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from cluster_harness import Coordinator, Etcd, Executor, wait_until  # noqa: E402
from query_compare import qualified  # noqa: E402
from test_distributed import PLACEMENT  # noqa: E402

QUERIES = Path(__file__).resolve().parent / "tpch"
# Which executor (database) holds which tables: the distributed tests' placement,
# and a second one they do not use, to keep the planner general.
PLACEMENTS = {
    "tests": PLACEMENT,
    "lineitem-alone": {
        "facts": ["lineitem"],
        "sales": ["orders", "customer"],
        "reference": ["nation", "region", "part", "partsupp", "supplier"],
    },
}
MOVED = re.compile(r"(?:bridge|transfer) finished .*?rows=(\d+) bytes=(\d+)")


def generate(scale, out):
    tpchgen = Path(sys.executable).parent / "tpchgen-cli"
    subprocess.run([str(tpchgen), "parquet", "-s", str(scale), f"--output-dir={out}"], check=True)
    tables = {}
    for path in sorted(Path(out).glob("*.parquet")):
        table = pq.read_table(path)
        schema = pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema])
        # Batches the driver can send whole (it refuses messages over 16 MiB).
        tables[path.stem] = pa.Table.from_batches(table.cast(schema).to_batches(max_chunksize=65536))
    return tables


def embedded_tpch(scale, tmp):
    """TPC-H at `scale` generated under `tmp`: its Arrow tables, and one on-disk
    embedded DuckDB holding them all."""
    started = time.perf_counter()
    tables = generate(scale, tmp / "tpch")
    print(f"generated TPC-H SF{scale} in {time.perf_counter() - started:.1f} s")
    embedded = duckdb.connect(str(tmp / "embedded.duckdb"))
    for name, table in tables.items():
        embedded.register(f"{name}_arrow", table)
        embedded.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
        embedded.unregister(f"{name}_arrow")
    return tables, embedded


class Tally:
    """Per-query best times of openduck and embedded DuckDB, summed, and their ratios."""

    def __init__(self):
        self.ratios = []
        self.total = {"openduck": 0.0, "embedded": 0.0}

    def add(self, best):
        """Counts one query's best times; returns its ratio (openduck / embedded)."""
        ratio = best["openduck"] / best["embedded"]
        self.ratios.append(ratio)
        for side in self.total:
            self.total[side] += best[side]
        return ratio

    def report(self, goals=""):
        geomean = math.exp(sum(math.log(r) for r in self.ratios) / len(self.ratios))
        print(f"\ntotal: openduck {self.total['openduck']:.2f} s, embedded {self.total['embedded']:.2f} s")
        print(
            f"ratio (openduck / embedded DuckDB time): total {self.total['openduck'] / self.total['embedded']:.2f}, "
            f"geometric mean {geomean:.2f}, highest {max(self.ratios):.2f}{goals}"
        )


def moved_since(log_path, offset):
    text = Path(log_path).read_text()
    rows = bytes_ = 0
    for match in MOVED.finditer(text[offset:]):
        rows += int(match.group(1))
        bytes_ += int(match.group(2))
    return rows, bytes_, len(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--placement", choices=sorted(PLACEMENTS), default="tests",
                        help="which executor holds which tables")
    args = parser.parse_args()
    placement = PLACEMENTS[args.placement]
    database_of = {table: db for db, tables in placement.items() for table in tables}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tables, embedded = embedded_tpch(args.scale, tmp)

        etcd = Etcd(tmp / "etcd").start()
        processes = []
        try:
            print(f"placement: {placement}")
            for index, database in enumerate(placement):
                processes.append(Executor(tmp / f"exec-{index}", etcd, f"exec-{index}", [database]).start())
            coordinator = Coordinator(tmp / "coordinator", etcd).start()
            processes.append(coordinator)
            with coordinator.connect() as conn, conn.cursor() as cur:
                wait_until(lambda: len(conn.adbc_get_objects(depth="catalogs").read_all()) >= len(placement), what="executors")
                started = time.perf_counter()
                for name, database in database_of.items():
                    cur.adbc_ingest(name, tables[name], mode="create", catalog_name=database)
                print(f"loaded the executors in {time.perf_counter() - started:.1f} s\n")

                print(f"{'query':>5}  {'openduck s':>10}  {'embedded s':>10}  {'ratio':>6}  {'moved MB':>9}  {'rows moved':>11}")
                tally = Tally()
                for path in sorted(QUERIES.glob("q*.sql")):
                    sql = path.read_text()
                    distributed_sql = qualified(sql, database_of)
                    best = {"openduck": math.inf, "embedded": math.inf}
                    offset = len(coordinator.log_path.read_text())
                    for run in range(args.runs):
                        start = time.perf_counter()
                        cur.execute(distributed_sql)
                        ours = cur.fetch_arrow_table().num_rows
                        best["openduck"] = min(best["openduck"], time.perf_counter() - start)
                        if run == 0:
                            rows_moved, bytes_moved, offset = moved_since(coordinator.log_path, offset)
                        start = time.perf_counter()
                        theirs = embedded.execute(sql).to_arrow_table().num_rows
                        best["embedded"] = min(best["embedded"], time.perf_counter() - start)
                        assert ours == theirs, f"{path.stem}: {ours} rows against {theirs}"
                    ratio = tally.add(best)
                    print(
                        f"{path.stem:>5}  {best['openduck']:>10.3f}  {best['embedded']:>10.3f}  {ratio:>6.2f}  "
                        f"{bytes_moved / 1e6:>9.1f}  {rows_moved:>11,}"
                    )
                tally.report()
        finally:
            for process in reversed(processes):
                process.stop()
            etcd.stop()


if __name__ == "__main__":
    main()
