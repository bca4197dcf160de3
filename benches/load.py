"""Load: many clients reading and writing one `openduck serve` at once.

    make bench-load       # or: OPENDUCK_BIN=... .venv/bin/python benches/load.py --clients 64 --duration 30

Half the clients write (single-row inserts into a shared table, updates of a
counter row of their own, `adbc_ingest` of 1,000 rows into a table of their
own, and an insert plus an update in one transaction), half read (prepared
point queries, grouped aggregations, filtered scans); see
tests/python/workload.py. Differential storage is on, as by default.

Prints statements per second, p50/p99/max latency per kind, errors by gRPC
status code, and the server's resident memory at the start, middle and end.
At the end the server is stopped and started again on an empty disk, and
every acknowledged write is checked to be there exactly once.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
import workload  # noqa: E402
from openduck_harness import Server  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64, help="clients in all; half write, half read")
    parser.add_argument("--writers", type=int, help="writing clients (default: half of --clients)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for openduck serve")
    args = parser.parse_args()
    writers = args.clients // 2 if args.writers is None else args.writers
    readers = args.clients - writers

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = Server(tmp / "data", extra_args=["--storage", str(tmp / "storage"), *args.server_arg])
        server.start()
        memory = {}

        def sample(phase):
            memory[phase] = workload.rss_mb(server.proc.pid)

        try:
            with server.connect() as conn:
                workload.prepare(conn)
            ledger, outcome, elapsed = workload.run(server, writers, readers, args.duration, sample=sample)
        finally:
            server.stop()
        shutil.rmtree(server.data_dir)
        server.start()
        try:
            with server.connect() as conn:
                checked = ledger.verify(conn)
        finally:
            server.stop()

    total = outcome.statements()
    print(f"load: {writers} writers + {readers} readers for {elapsed:.1f} s against openduck serve")
    print(f"{total} statements, {total / elapsed:.1f} statements/s, {outcome.error_count()} errors")
    print(f"{'kind':<8} {'count':>7} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for kind in workload.READS + workload.WRITES:
        values = outcome.latencies.get(kind, [])
        print(
            f"{kind:<8} {len(values):>7} {workload.percentile(values, 0.5) * 1e3:>9.1f} "
            f"{workload.percentile(values, 0.99) * 1e3:>9.1f} {max(values, default=float('nan')) * 1e3:>9.1f}"
        )
    for kind, codes in sorted(outcome.errors.items()):
        print(f"errors in {kind}: {dict(codes)}")
    for message in outcome.messages[:5]:
        print(f"  e.g. {message[:300]}")
    print("server memory (MB): " + ", ".join(f"{phase} {mb:.0f}" for phase, mb in memory.items()))
    print(f"after a restart on an empty disk: {checked} acknowledged writes all present exactly once")
    return 1 if outcome.error_count() else 0


if __name__ == "__main__":
    sys.exit(main())
