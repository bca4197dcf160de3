"""Launching the real `openduck` binary for tests and benchmarks.

The binary comes from $OPENDUCK_BIN (the Makefile sets it); servers listen on
port 0, report their address on stdout, and are stopped with SIGTERM.
"""

import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"openduck listening on (grpc(?:\+tls)?://\S+)")
START_DEADLINE_S = 60


def openduck_bin() -> str:
    path = os.environ.get("OPENDUCK_BIN") or str(ROOT / "target" / "debug" / "openduck")
    if not Path(path).exists():
        raise FileNotFoundError(f"openduck binary not found at {path}; build it or set OPENDUCK_BIN")
    return path


class Server:
    """One `openduck serve` process over a data directory."""

    def __init__(self, data_dir: Path, token=None, databases=("mydb",), extra_args=(), env=None, log_name=None):
        self.data_dir = data_dir
        self.token = token
        self.databases = list(databases)
        self.extra_args = list(extra_args)
        self.env = env
        self.proc = None
        self.uri = None
        self.log_path = data_dir.parent / f"{log_name or data_dir.name}-server.log"

    def command(self):
        args = [openduck_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)]
        for name in self.databases:
            args += ["--database", name]
        if self.token:
            args += ["--token", self.token]
        return args + self.extra_args

    def start(self, args=None):
        log = open(self.log_path, "ab")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(
            args or self.command(), stdout=subprocess.PIPE, stderr=log, env=env, text=True
        )
        self.uri = wait_for_address(self.proc, self.log_path)
        return self

    def kill(self):
        """SIGKILL: the process dies at once, as in a crash."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def stop(self):
        """SIGTERM, then insist on a clean exit (databases checkpointed)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("openduck did not stop within 30 s of SIGTERM")
        finally:
            self.proc.stdout.close()
            self.proc = None
        assert code == 0, f"openduck exited with {code}; log: {self.log_path.read_text()[-2000:]}"

    def restart(self):
        self.stop()
        return self.start()

    def connect(self, autocommit=True, **db_kwargs):
        """An ADBC DBAPI connection. DBAPI connections start with autocommit
        off when the server supports transactions (openduck does); most tests
        want each statement to commit, so autocommit is on unless asked."""
        if self.token and "username" not in db_kwargs:
            db_kwargs.setdefault("adbc.flight.sql.authorization_header", f"Bearer {self.token}")
        return flight_sql.connect(self.uri, db_kwargs=db_kwargs, autocommit=autocommit)


def wait_for_address(proc, log_path, pattern=LISTENING) -> str:
    """Reads stdout until the `listening on` line, polling with a deadline."""
    deadline = time.monotonic() + START_DEADLINE_S
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.2):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            match = pattern.search(line)
            if match:
                return match.group(1)
    finally:
        selector.close()
    proc.kill()
    proc.wait()
    raise AssertionError(f"openduck did not report its address; log: {Path(log_path).read_text()[-2000:]}")
