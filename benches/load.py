"""Load: many clients reading and writing one `openduck serve`, or a cluster, at once.

    make bench-load       # or: OPENDUCK_BIN=... .venv/bin/python benches/load.py --clients 64 --duration 30
    .venv/bin/python benches/load.py --shape cluster

`--shape cluster` runs the same load against a coordinator in front of three
executors: the writer of the database and two read replicas following it
through the same storage, registered in a real etcd; reads are spread over
the three.

Half the clients write (single-row inserts into a shared table, updates of a
counter row of their own, `adbc_ingest` of 1,000 rows into a table of their
own, and an insert plus an update in one transaction), half read (prepared
point queries, grouped aggregations, filtered scans); see
tests/python/workload.py. Differential storage is on, as by default.

Prints statements per second, p50/p99/max latency per kind, errors by gRPC
status code, and the server's resident memory at the start, middle and end.
At the end the server is stopped and started again on an empty disk, and
every acknowledged write is checked to be there exactly once (in a cluster,
the writer is started again on an empty disk, from storage).
"""

import argparse
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
import workload  # noqa: E402
from cluster_harness import Coordinator, Etcd, Executor, wait_until  # noqa: E402
from openduck_harness import Server  # noqa: E402


@contextlib.contextmanager
def serve(tmp, server_args):
    """One `openduck serve`; yields (the server clients use, the processes
    by name, a function that restarts it on an empty disk)."""
    server = Server(tmp / "data", extra_args=["--storage", str(tmp / "storage"), *server_args])
    server.start()

    def restart_empty():
        server.stop()
        shutil.rmtree(server.data_dir)
        server.start()

    try:
        yield server, {"serve": server}, restart_empty
    finally:
        server.stop()


@contextlib.contextmanager
def cluster(tmp, server_args):
    """etcd, a writer of mydb, two replicas and a coordinator."""
    etcd = Etcd(tmp / "etcd").start()
    storage = ["--storage", str(tmp / "storage")]
    writer = Executor(tmp / "writer", etcd, "writer", ["mydb"], extra_args=[*storage, *server_args])
    replicas = [
        Executor(tmp / f"replica-{n}", etcd, f"replica-{n}", [], extra_args=[*storage, "--replica", "mydb"])
        for n in (1, 2)
    ]
    coordinator = Coordinator(tmp / "coordinator", etcd)
    processes = {"writer": writer, "replica-1": replicas[0], "replica-2": replicas[1], "coordinator": coordinator}
    try:
        writer.start()
        coordinator.start()
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: cur.execute("SELECT 1") or True, what="the writer to register")
        for replica in replicas:
            replica.start()
        wait_until(lambda: all('replicas=["mydb"]' in last_line_about(coordinator.log_path, r.executor_id)
                               for r in replicas),
                   timeout_s=60, what="the replicas to serve mydb")

        def restart_empty():
            for process in (coordinator, *replicas, writer):
                process.stop()
            shutil.rmtree(writer.data_dir)
            writer.start()
            coordinator.start()
            with coordinator.connect() as conn, conn.cursor() as cur:
                wait_until(lambda: cur.execute("SELECT 1") or True, what="the writer to register again")

        yield coordinator, processes, restart_empty
    finally:
        for process in processes.values():
            if process.proc is not None:
                process.stop()
        etcd.stop()


def answers(conn, sql):
    """Whether `sql` runs (on whichever server it is routed to)."""
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
            cur.fetchall()
            return True
        except Exception:  # noqa: BLE001 - a replica behind answers NotFound
            return False


def last_line_about(log_path, executor_id):
    """The coordinator's last log line about `executor_id` joining or changing."""
    lines = [line for line in log_path.read_text().splitlines() if f"executor={executor_id} " in line]
    return lines[-1] if lines else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64, help="clients in all; half write, half read")
    parser.add_argument("--writers", type=int, help="writing clients (default: half of --clients)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--shape", choices=("serve", "cluster"), default="serve",
                        help="one openduck serve, or a coordinator with a writer and two replicas")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra flag for openduck serve (or the cluster's writer)")
    args = parser.parse_args()
    writers = args.clients // 2 if args.writers is None else args.writers
    readers = args.clients - writers

    with tempfile.TemporaryDirectory() as tmp:
        shape = serve if args.shape == "serve" else cluster
        with shape(Path(tmp), args.server_arg) as (server, processes, restart_empty):
            memory = {name: {} for name in processes}

            def sample(phase):
                for name, process in processes.items():
                    memory[name][phase] = workload.rss_mb(process.proc.pid)

            with server.connect() as conn:
                workload.prepare(conn)
                # Every server has the tables (replicas follow within a second or so).
                wait_until(lambda: all(answers(conn, "SELECT count(*) FROM facts") for _ in processes),
                           timeout_s=60, what="every server to have the prepared tables")
            ledger, outcome, elapsed = workload.run(server, writers, readers, args.duration, sample=sample)
            restart_empty()
            with server.connect() as conn:
                checked = ledger.verify(conn)

    total = outcome.statements()
    against = "openduck serve" if args.shape == "serve" else "a coordinator, a writer and two replicas"
    print(f"load: {writers} writers + {readers} readers for {elapsed:.1f} s against {against}")
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
    for name, phases in memory.items():
        print(f"{name} memory (MB): " + ", ".join(f"{phase} {mb:.0f}" for phase, mb in phases.items()))
    print(f"after a restart on an empty disk: {checked} acknowledged writes all present exactly once")
    return 1 if outcome.error_count() else 0


if __name__ == "__main__":
    sys.exit(main())
