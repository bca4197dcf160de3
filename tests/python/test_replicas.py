"""Read replicas in a real cluster (etcd, a writer executor, replica
executors, a coordinator) over shared storage. Fencing of a writer that lost
its claim is tested against etcd in `storage/tests/fencing.rs`."""

import re
import threading
import time

import adbc_driver_manager
import pytest

from cluster_harness import Coordinator, Etcd, Executor, wait_until

REPLICA_INTERVAL = "200ms"


@pytest.fixture
def cluster(tmp_path):
    etcd = Etcd(tmp_path / "etcd").start()
    bucket = str(tmp_path / "bucket")
    started = []

    def executor(name, *args):
        process = Executor(tmp_path / name, etcd, name, [], extra_args=["--storage", bucket, *args]).start()
        started.append(process)
        return process

    try:
        writer = executor("writer", "--database", "mydb", "--log", "info,openduck_executor=debug")
        coordinator = Coordinator(tmp_path / "coordinator", etcd).start()
        started.append(coordinator)
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: scalar(conn, "SELECT 1") == 1, what="the writer registered")
            # Every row pair sums to zero: a reader that saw half a write would see otherwise.
            cur.execute("CREATE TABLE mydb.main.pairs (v BIGINT)")
        yield {"etcd": etcd, "writer": writer, "coordinator": coordinator, "executor": executor, "root": tmp_path}
    finally:
        for process in reversed(started):
            if process.proc is not None:
                process.stop()
        etcd.stop()


def scalar(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def served_by(log_path, since):
    """How many statements an executor's log says it ran after byte `since`."""
    return len(re.findall(r"connection ready", log_path.read_text()[since:]))


def test_replicas_follow_the_writer_and_share_the_reads(cluster):
    coordinator = cluster["coordinator"]
    replica = cluster["executor"]("replica-1", "--replica", "mydb", "--replica-interval", REPLICA_INTERVAL,
                                  "--log", "info,openduck_executor=debug")
    writer = cluster["writer"]
    with coordinator.connect() as conn, conn.cursor() as cur:
        # The replica registers as a reader of mydb.
        wait_until(lambda: "executor joined executor=replica-1" in coordinator.log_path.read_text(),
                   what="the replica to join")
        errors = []
        stop = threading.Event()

        def read_forever():
            with coordinator.connect() as reader:
                while not stop.is_set():
                    try:
                        rows, total = [
                            scalar(reader, "SELECT count(*) FROM mydb.main.pairs"),
                            scalar(reader, "SELECT coalesce(sum(v), 0) FROM mydb.main.pairs"),
                        ]
                        if rows % 2 or total:
                            errors.append((rows, total))
                    except adbc_driver_manager.Error as error:
                        errors.append(str(error))

        readers = [threading.Thread(target=read_forever) for _ in range(2)]
        for thread in readers:
            thread.start()
        mark = len(replica.log_path.read_text())
        writer_mark = len(writer.log_path.read_text())
        try:
            lags = []
            for n in range(1, 9):
                cur.execute(f"INSERT INTO mydb.main.pairs VALUES ({n}), (-{n})")
                written = time.monotonic()
                # Every reader (writer or replica, at random) sees the write
                # within a bounded lag; each read here is a new client.
                def everywhere():
                    for _ in range(4):
                        with coordinator.connect() as fresh:
                            if scalar(fresh, "SELECT count(*) FROM mydb.main.pairs") != 2 * n:
                                return False
                    return True

                wait_until(everywhere, timeout_s=10, interval_s=0.02, what=f"write {n} everywhere")
                lags.append(time.monotonic() - written)
        finally:
            stop.set()
            for thread in readers:
                thread.join()
        assert not errors, errors[:5]
        assert max(lags) < 5, lags
        assert served_by(replica.log_path, mark) > 0, "the replica answered none of the reads"
        assert served_by(writer.log_path, writer_mark) > 0, "the writer answered none of the reads"
        log = replica.log_path.read_text()
        assert "replica moved to a new snapshot" in log

        # Writes go to the writer, never to a replica (which would refuse them
        # as read-only), however the reads around them are spread.
        for n in range(100, 106):
            cur.execute(f"INSERT INTO mydb.main.pairs VALUES ({n}), (-{n})")
            scalar(conn, "SELECT count(*) FROM mydb.main.pairs")


def test_a_replica_fetches_only_changed_blocks_and_serves_while_the_writer_is_gone(cluster):
    coordinator, writer = cluster["coordinator"], cluster["writer"]
    with coordinator.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE mydb.main.big AS SELECT range AS x, md5(range::VARCHAR) AS s FROM range(300000)")
    replica = cluster["executor"]("replica-2", "--replica", "mydb", "--replica-interval", REPLICA_INTERVAL)
    with coordinator.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO mydb.main.pairs VALUES (1), (-1)")
        log = wait_until(lambda: re.search(r"replica moved to a new snapshot.*fetched_blocks=(\d+).*kept_blocks=(\d+)",
                                           replica.log_path.read_text()), what="the replica to move")
        fetched, kept = int(log.group(1)), int(log.group(2))
        assert kept > fetched, f"fetched {fetched} blocks, kept {kept}"

        writer.kill()
        # Reads still work, from the replica alone, before and after the writer is dropped.
        wait_until(lambda: scalar(conn, "SELECT count(*) FROM mydb.main.big") == 300000, timeout_s=20,
                   what="reads served by the replica")
        wait_until(lambda: 'executor left executor="writer"' in coordinator.log_path.read_text(),
                   what="the coordinator to drop the writer")
        assert scalar(conn, "SELECT count(*) FROM mydb.main.big") == 300000
        with pytest.raises(adbc_driver_manager.Error, match="no executor serves"):
            cur.execute("INSERT INTO mydb.main.pairs VALUES (2), (-2)")


def etcd_delete(etcd, key):
    """Deletes a key through etcd's JSON gateway, as an expired lease would."""
    import base64
    import json
    import urllib.request

    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    request = urllib.request.Request(f"{etcd.url}/v3/kv/deleterange", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_a_writer_that_lost_its_claim_refuses_the_write_and_every_later_one(cluster, tmp_path):
    coordinator, etcd = cluster["coordinator"], cluster["etcd"]
    release = tmp_path / "release"
    # A writer that pauses right before it moves the head.
    cluster["writer"].stop()
    old = Executor(tmp_path / "old", etcd, "old", ["mydb"],
                   extra_args=["--storage", str(tmp_path / "bucket")])
    old.env = dict(old.env, OPENDUCK_PAUSE_AT="before-head-update", OPENDUCK_PAUSE_UNTIL=str(release))
    old.start()
    successor = None
    try:
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: scalar(conn, "SELECT count(*) FROM mydb.main.pairs") == 0, what="old serves")
            outcome = {}

            def write():
                with coordinator.connect() as writer_conn, writer_conn.cursor() as writer_cur:
                    try:
                        writer_cur.execute("INSERT INTO mydb.main.pairs VALUES (7), (-7)")
                        outcome["ok"] = True
                    except adbc_driver_manager.Error as error:
                        outcome["error"] = str(error)

            paused_write = threading.Thread(target=write)
            paused_write.start()
            wait_until(lambda: "OPENDUCK_PAUSE_AT: holding here" in old.log_path.read_text(), what="old to pause")
            # Its claim goes (as when its lease expires) and another executor takes over.
            etcd_delete(etcd, "/openduck/writers/mydb")
            successor = Executor(tmp_path / "successor", etcd, "successor", ["mydb"],
                                 extra_args=["--storage", str(tmp_path / "bucket")]).start()
            release.touch()
            paused_write.join(timeout=60)
            assert "error" in outcome, outcome
            assert "writes refused" in outcome["error"] or "writer claim" in outcome["error"], outcome

            # Still listed (its record outlives the claim here), it refuses every later write.
            with pytest.raises(adbc_driver_manager.Error, match="lost its writer claim"):
                cur.execute("INSERT INTO mydb.main.pairs VALUES (9), (-9)")
            # Its record goes too, as with its lease; the successor serves every
            # acknowledged write and none of the refused ones.
            etcd_delete(etcd, "/openduck/executors/old")
            wait_until(lambda: "executor left executor=\"old\"" in coordinator.log_path.read_text(),
                       what="the coordinator to drop old")
            cur.execute("INSERT INTO mydb.main.pairs VALUES (8), (-8)")
            assert scalar(conn, "SELECT count(*) FROM mydb.main.pairs WHERE v = 8") == 1
            assert scalar(conn, "SELECT count(*) FROM mydb.main.pairs WHERE v IN (7, 9)") == 0
        assert "writer fenced: refusing writes from now on" in old.log_path.read_text()
    finally:
        if successor is not None:
            successor.stop()
        old.kill()
