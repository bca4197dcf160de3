"""Deployments with differential storage, for the storage suite: the same
tests run against local-filesystem storage (embedded `openduck serve`) and
against an S3-compatible server (moto, on loopback) with heads in etcd
(`openduck executor` + `openduck coordinator`)."""

import os
import shutil
import subprocess
from pathlib import Path

from cluster_harness import Coordinator, Etcd, Executor, cluster_env, wait_until
from openduck_harness import Server, openduck_bin

BUCKET = "openduck-test"


class MotoS3:
    """moto's S3 server on a free loopback port, with one bucket."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self):
        import boto3

        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.env = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
        self.client = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="test", aws_secret_access_key="test",
            region_name="us-east-1",
        )
        self.client.create_bucket(Bucket=BUCKET)
        return self

    def stop(self):
        self.server.stop()


class Deployment:
    """A writer of database `mydb` (and any others) over differential
    storage, reached through Flight SQL, that tests can kill, wipe and
    restart; plus the storage commands of the CLI on the same storage."""

    kind = ""

    def __init__(self, root: Path):
        self.root = root
        self.databases = ["mydb"]

    def restart_writer(self, crash_at=None, wipe=False):
        """Kills the writer (if running), optionally empties its local disk,
        and starts it again, optionally armed to crash at `crash_at`."""
        self.writer.kill()
        if wipe:
            shutil.rmtree(self.writer.data_dir, ignore_errors=True)
        self.writer.databases = list(self.databases)
        self.writer.env = dict(self.base_env, **({"OPENDUCK_CRASH_AT": crash_at} if crash_at else {}))
        self.writer.start()
        self.wait_ready()
        return self

    def wait_ready(self):
        def ready():
            with self.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone()[0] == 1

        wait_until(ready, timeout_s=30, what=f"the {self.kind} writer to serve")

    def writer_exited(self, timeout_s=30):
        wait_until(lambda: self.writer.proc.poll() is not None, timeout_s=timeout_s, what="the writer to die")
        self.writer.proc.stdout.close()
        self.writer.proc = None

    def admin(self, *args, crash_at=None, check=True):
        env = dict(os.environ, **self.admin_env)
        if crash_at:
            env["OPENDUCK_CRASH_AT"] = crash_at
        result = subprocess.run(
            [openduck_bin(), *args, *self.admin_args], env=env, capture_output=True, text=True, timeout=120,
        )
        if check:
            assert result.returncode == 0, f"openduck {' '.join(args)} failed: {result.stderr}"
        return result


class LocalDeployment(Deployment):
    kind = "local"

    def __init__(self, root: Path):
        super().__init__(root)
        self.bucket = root / "bucket"
        self.base_env = {}
        self.admin_env = {}
        self.admin_args = ["--storage", str(self.bucket)]
        self.writer = Server(root / "data", databases=self.databases, extra_args=["--storage", str(self.bucket)])

    def start(self):
        self.writer.start()
        return self

    def connect(self):
        return self.writer.connect()

    def objects(self, kind):
        return sorted(p.name for p in (self.bucket / kind).iterdir()) if (self.bucket / kind).exists() else []

    def corrupt_manifest(self, snapshot):
        path = self.bucket / "snapshots" / f"{snapshot}.json"
        data = bytearray(path.read_bytes())
        data[5] ^= 1
        path.write_bytes(bytes(data))

    def stop(self):
        self.writer.stop()


class S3Deployment(Deployment):
    kind = "s3"

    def __init__(self, root: Path):
        super().__init__(root)
        self.s3 = MotoS3().start()
        self.etcd = Etcd(root / "etcd").start()
        self.url = f"s3://{BUCKET}/cluster1"
        self.base_env = dict(self.s3.env)
        self.admin_env = dict(self.s3.env)
        self.admin_args = ["--storage", self.url, "--etcd", self.etcd.url]
        self.writer = Executor(root / "data", self.etcd, "exec-writer", self.databases, extra_args=["--storage", self.url])
        self.writer.env = dict(self.writer.env, **self.base_env)
        self.base_env = dict(self.writer.env)
        self.coordinator = Coordinator(root / "coordinator", self.etcd)
        self.extra = []

    def start(self):
        self.writer.start()
        self.coordinator.start()
        self.wait_ready()
        return self

    def connect(self):
        return self.coordinator.connect()

    def executor(self, executor_id, databases=(), extra_args=()):
        """Another executor of the cluster, on the same storage."""
        executor = Executor(self.root / executor_id, self.etcd, executor_id, list(databases),
                            extra_args=["--storage", self.url, *extra_args])
        executor.env = dict(executor.env, **self.s3.env)
        self.extra.append(executor)
        return executor

    def objects(self, kind):
        listing = self.s3.client.list_objects_v2(Bucket=BUCKET, Prefix=f"cluster1/{kind}/")
        return sorted(item["Key"].rsplit("/", 1)[1] for item in listing.get("Contents", []))

    def corrupt_manifest(self, snapshot):
        key = f"cluster1/snapshots/{snapshot}.json"
        data = bytearray(self.s3.client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        data[5] ^= 1
        self.s3.client.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))

    def stop(self):
        for process in [*self.extra, self.coordinator, self.writer]:
            if process.proc is not None:
                process.stop()
        self.etcd.stop()
        self.s3.stop()


def snapshot_ids(deployment, database="mydb"):
    """The snapshot ids `openduck snapshot list` prints, newest first."""
    out = deployment.admin("snapshot", "list", database).stdout.splitlines()
    return [line.split()[0] for line in out[1:] if line.strip()]


__all__ = ["LocalDeployment", "S3Deployment", "snapshot_ids", "cluster_env"]
