"""Differential storage, measured in one run against the real binary:

    make bench-storage     # or: OPENDUCK_BIN=... .venv/bin/python benches/storage.py

Prints
- bytes uploaded per snapshot against bytes changed, for updates of 1% and
  10% of the rows of a database of at least 1 GB;
- clone time for databases of about 10 MB and 1 GB: `openduck clone` (in
  storage) and `CREATE DATABASE ... FROM` (in storage, plus a local copy to
  attach);
- catch-up time after each update: incremental hydration of the previous
  snapshot's file (what a read replica does) against full hydration of the
  new snapshot into an empty file.

`openduck serve` runs with local-filesystem storage in a temporary directory.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from openduck_harness import Server, openduck_bin  # noqa: E402

MB = 1 << 20


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cli(*args) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([openduck_bin(), *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip()


def timed_sql(conn, sql) -> float:
    start = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(sql)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-rows", type=int, default=46_000_000, help="rows of the big database (about 1.07 GB)")
    parser.add_argument("--small-rows", type=int, default=400_000, help="rows of the small database (about 10 MB)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bucket, data = root / "bucket", root / "data"
        storage = ["--storage", str(bucket)]
        server = Server(data, databases=["big", "small"], extra_args=storage).start()
        try:
            with server.connect() as conn:
                for db, rows in (("big", args.big_rows), ("small", args.small_rows)):
                    timed_sql(conn, f"CREATE TABLE {db}.main.t AS SELECT range AS id, md5(range::VARCHAR) AS s, "
                                    f"random() AS x FROM range({rows})")
                size = {db: (data / f"{db}.duckdb").stat().st_size for db in ("big", "small")}
                print(f"databases: big {size['big'] / MB:,.0f} MB ({args.big_rows:,} rows), "
                      f"small {size['small'] / MB:,.1f} MB ({args.small_rows:,} rows)")
                if size["big"] < 1 << 30:
                    print("  (big is under 1 GB: raise --big-rows)")

                print("\nsnapshot uploads (update of a contiguous share of the rows, then one snapshot)")
                print(f"{'change':>8} {'changed MB':>11} {'uploaded MB':>12} {'uploaded/changed':>17} "
                      f"{'full MB':>8}   catch-up: {'incremental':>11} {'full':>8} {'ratio':>6}")
                previous = root / "replica.duckdb"
                cli("snapshot", "export", "big@latest", "--to", str(previous), "--data-dir", str(data), *storage)
                for share in (0.01, 0.10):
                    before = tree_bytes(bucket / "layers")
                    limit = int(args.big_rows * share)
                    timed_sql(conn, f"UPDATE big.main.t SET s = md5(s), x = x + 1 WHERE id < {limit}")
                    uploaded = tree_bytes(bucket / "layers") - before
                    changed = size["big"] * share
                    incremental, out = cli("snapshot", "export", "big@latest", "--to", str(previous), "--incremental",
                                           "--data-dir", str(data), *storage)
                    fresh = root / f"fresh{int(share * 100)}.duckdb"
                    full, _ = cli("snapshot", "export", "big@latest", "--to", str(fresh), "--data-dir", str(data), *storage)
                    fresh.unlink()
                    print(f"{share:>8.0%} {changed / MB:>11,.1f} {uploaded / MB:>12,.1f} {uploaded / changed:>17.2f} "
                          f"{size['big'] / MB:>8,.0f}   catch-up: {incremental:>10.2f}s {full:>7.2f}s "
                          f"{full / incremental:>5.1f}x")
                    print(f"{'':>8} ({out.split(': ', 1)[1]})")

                print("\nclones")
                print(f"{'database':>9} {'size MB':>8} {'openduck clone':>15} {'CREATE DATABASE FROM':>21} {'bytes stored':>13}")
                for db in ("small", "big"):
                    stored = tree_bytes(bucket)
                    in_storage, _ = cli("clone", db, f"{db}_cli", "--data-dir", str(data), *storage)
                    in_sql = timed_sql(conn, f"CREATE DATABASE {db}_sql FROM {db}")
                    added = tree_bytes(bucket) - stored
                    print(f"{db:>9} {size[db] / MB:>8,.1f} {in_storage:>14.3f}s {in_sql:>20.3f}s {added:>13,}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
