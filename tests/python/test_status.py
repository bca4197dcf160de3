"""`openduck status` against a real cluster: what etcd says about its
executors and databases."""

import json
import subprocess

from cluster_harness import Coordinator, Etcd, Executor, wait_until
from openduck_harness import openduck_bin


def status(etcd, *args):
    done = subprocess.run([openduck_bin(), "status", "--etcd", etcd.url, *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_lists_executors_databases_roles_and_heads(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    executors = []
    try:
        for index, databases in enumerate([["sales"], ["crm", "web"]]):
            executors.append(Executor(tmp_path / f"exec-{index}", etcd, f"exec-{index}", databases).start())
        report = json.loads(status(etcd, "--format", "json"))
        by_id = {executor["id"]: executor for executor in report["executors"]}
        assert by_id["exec-0"]["databases"] == {"sales": "writer"}
        assert by_id["exec-1"]["databases"] == {"crm": "writer", "web": "writer"}
        assert by_id["exec-0"]["endpoint"] == executors[0].uri
        assert set(report["databases"]) == {"sales", "crm", "web"}
        for name, writer in [("sales", "exec-0"), ("crm", "exec-1"), ("web", "exec-1")]:
            assert report["databases"][name]["writer"] == writer
            # Each opened database published a first snapshot, its head in etcd.
            assert len(report["databases"][name]["head"]) >= 16

        table = status(etcd)
        assert "executors: 2" in table and "databases: 3" in table
        assert any(line.split()[:2] == ["crm", "exec-1"] for line in table.splitlines())

        # An executor that stops leaves the registry; its database keeps its head.
        executors[0].stop()
        wait_until(lambda: "exec-0" not in status(etcd), what="exec-0 to leave")
        report = json.loads(status(etcd, "--format", "json"))
        assert report["databases"]["sales"]["writer"] is None and report["databases"]["sales"]["head"]
    finally:
        for executor in executors:
            executor.stop()
        etcd.stop()


def test_status_reports_load_and_where_each_replica_stands(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    bucket = str(tmp_path / "bucket")
    started = []
    try:
        started.append(Executor(tmp_path / "writer", etcd, "writer", ["mydb"], extra_args=["--storage", bucket]).start())
        started.append(Executor(tmp_path / "replica", etcd, "replica", [],
                                extra_args=["--storage", bucket, "--replica", "mydb",
                                            "--replica-interval", "200ms"]).start())
        coordinator = Coordinator(tmp_path / "coordinator", etcd).start()
        started.append(coordinator)

        def loads_reported():
            report = json.loads(status(etcd, "--format", "json"))
            ids = {executor["id"] for executor in report["executors"]}
            reported = all(executor["sessions_open"] is not None for executor in report["executors"])
            return report if ids == {"writer", "replica"} and reported else None

        # Executors report their load at each lease renewal (every few seconds).
        report = wait_until(loads_reported, what="both executors to report their load")
        by_id = {executor["id"]: executor for executor in report["executors"]}
        assert by_id["replica"]["databases"] == {"mydb": "replica"}
        for executor in report["executors"]:
            assert executor["statements_running"] >= 0 and executor["capacity"] == 16
            assert executor["sessions_open"] >= 0

        # A write moves the head; the replica follows and reports it serves it.
        first_head = report["databases"]["mydb"]["head"]
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: cur.execute("SELECT 1") or True, what="the coordinator to know mydb's writer")
            cur.execute("CREATE TABLE mydb.main.t AS SELECT 1 AS x")

        def replica_at_new_head():
            database = json.loads(status(etcd, "--format", "json"))["databases"]["mydb"]
            replicas = database["replicas"]
            return (database["head"] != first_head and len(replicas) == 1
                    and replicas[0] == {"executor": "replica", "snapshot": database["head"], "lag_seconds": 0})

        wait_until(replica_at_new_head, what="the replica to report it serves the new head")
        table = status(etcd)
        assert "replica (at head)" in table, table
    finally:
        for process in reversed(started):
            process.stop()
        etcd.stop()
