"""A real openduck cluster for tests and benchmarks: an etcd server from
Debian's etcd-server package, `openduck executor` processes and an
`openduck coordinator`, all on loopback ports, stopped afterwards."""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from openduck_harness import Server, openduck_bin

EXECUTOR_LISTENING = re.compile(
    r"openduck executor \S+ listening on grpc(?:\+tls)?://\S+, advertised as (grpc(?:\+tls)?://\S+)"
)
CLUSTER_SECRET = "a-test-cluster-secret-of-32-bytes!"
LEASE_TTL = "3s"


def free_port() -> int:
    """A port free right now (etcd cannot report a port it picked itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Etcd:
    """One etcd member on loopback with its own data directory."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.binary = shutil.which("etcd") or "/usr/bin/etcd"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.proc = None
        self.log_path = data_dir.parent / "etcd.log"
        self.started = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self):
        if not Path(self.binary).exists():
            raise FileNotFoundError("etcd not found: install Debian's etcd-server package")
        for _ in range(5):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            if self._start_once():
                self.started = True
                return self
            # etcd cannot bind port 0 and say which it got: a free port picked here may
            # be taken by another process before etcd binds it. On a first start, pick
            # others; a restart must keep its URL.
            with open(self.log_path, "rb") as log:
                log.seek(logged)
                raced = b"address already in use" in log.read()
            if self.started or not raced:
                break
            self.client_port, self.peer_port = free_port(), free_port()
        raise AssertionError(f"etcd did not become healthy; log: {self.log_path.read_text()[-2000:]}")

    def _start_once(self) -> bool:
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [
            self.binary,
            "--name", "test",
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"test={peer}",
        ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if b'"health":"true"' in response.read():
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        return False

    def stop(self):
        terminate(self.proc)
        self.proc = None


def terminate(proc, timeout_s=10):
    """SIGTERM, and SIGKILL if `proc` has not exited within `timeout_s`."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cluster_env(etcd: Etcd) -> dict:
    return {
        "OPENDUCK_ETCD": etcd.url,
        "OPENDUCK_CLUSTER_SECRET": CLUSTER_SECRET,
        "OPENDUCK_LEASE_TTL": LEASE_TTL,
    }


class Executor(Server):
    """One `openduck executor`; `uri` is its advertised Flight endpoint."""

    def __init__(self, data_dir: Path, etcd: Etcd, executor_id: str, databases, extra_args=()):
        super().__init__(data_dir, databases=databases, extra_args=extra_args, env=cluster_env(etcd), log_name=executor_id)
        self.executor_id = executor_id
        self.port = 0

    def command(self):
        # A restart keeps the port, as a restarted pod keeps its address.
        args = [openduck_bin(), "executor", "--listen", f"127.0.0.1:{self.port}", "--id", self.executor_id,
                "--data-dir", str(self.data_dir)]
        for name in self.databases:
            args += ["--database", name]
        return args + self.extra_args

    def start(self, args=None):
        from openduck_harness import wait_for_address

        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args or self.command(), stdout=subprocess.PIPE, stderr=log, env=dict(os.environ, **self.env), text=True
        )
        self.uri = wait_for_address(self.proc, self.log_path, EXECUTOR_LISTENING)
        self.port = int(self.uri.rsplit(":", 1)[1])
        return self


class Coordinator(Server):
    """One `openduck coordinator` serving Flight SQL for the cluster."""

    def __init__(self, data_dir: Path, etcd: Etcd, extra_args=()):
        super().__init__(data_dir, extra_args=extra_args, env=cluster_env(etcd), log_name="coordinator")
        self.port = 0

    def command(self):
        # A restart keeps the port, so clients find it where it was.
        return [openduck_bin(), "coordinator", "--listen", f"127.0.0.1:{self.port}"] + self.extra_args

    def start(self, args=None):
        super().start(args)
        self.port = int(self.uri.rsplit(":", 1)[1])
        return self


def wait_until(predicate, timeout_s=20.0, interval_s=0.1, what="condition"):
    """Polls `predicate` until it returns a true value, with a deadline."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - the predicate may fail until ready
            last_error = error
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}; last error: {last_error}")


@contextlib.contextmanager
def placed_cluster(root: Path, placement: dict, tables: dict):
    """A real etcd, one executor per database of `placement` (database:
    its table names) and a coordinator, with each Arrow table of `tables`
    ingested into its database. Yields {"etcd", "executors" (by database),
    "coordinator"}; stops everything on exit."""
    etcd = Etcd(root / "etcd").start()
    executors = {}
    coordinator = None
    try:
        for index, database in enumerate(placement):
            executors[database] = Executor(root / f"exec-{index}", etcd, f"exec-{index}", [database]).start()
        coordinator = Coordinator(root / "coordinator", etcd).start()
        with coordinator.connect() as conn:
            wait_until(
                lambda: len(conn.adbc_get_objects(depth="catalogs").read_all()) >= len(placement),
                what="executors",
            )
            with conn.cursor() as cur:
                for database, names in placement.items():
                    for name in names:
                        cur.adbc_ingest(name, tables[name], mode="create", catalog_name=database)
        yield {"etcd": etcd, "executors": executors, "coordinator": coordinator}
    finally:
        if coordinator:
            coordinator.stop()
        for executor in executors.values():
            executor.stop()
        etcd.stop()
