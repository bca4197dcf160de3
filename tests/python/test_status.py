"""`openduck status` against a real cluster: what etcd says about its
executors and databases."""

import json
import subprocess

from cluster_harness import Etcd, Executor, wait_until
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
