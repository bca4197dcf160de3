"""openduck's container image (Containerfile, scripts/build-image): built
offline with podman from the binary the build made, run as a container with
its port published on loopback, queried with the ADBC driver, stopped with
SIGTERM, and started again on the same volume."""

import json
import os
import subprocess
import uuid

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from cluster_harness import wait_until
from helm_harness import REPO
from openduck_harness import openduck_bin

TOKEN = "image-test-token-0123456789"
ENV = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(REPO / "scripts" / "containers.conf"))}


def podman(*args, check=True):
    done = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def image():
    tag = f"localhost/openduck:test-{uuid.uuid4().hex[:8]}"
    subprocess.run([REPO / "scripts" / "build-image", tag], env={**ENV, "OPENDUCK_BIN": openduck_bin()}, check=True,
                   capture_output=True, timeout=600)
    yield tag
    podman("rmi", "--force", tag, check=False)


@pytest.fixture
def containers():
    started = []

    def run(*args):
        name = f"openduck-test-{uuid.uuid4().hex[:8]}"
        podman("run", "--detach", "--name", name, *args)
        started.append(name)
        return name

    yield run
    for name in started:
        podman("rm", "--force", "--time", "0", name, check=False)


def published_port(container) -> int:
    # "7878/tcp -> 127.0.0.1:41234"
    line = podman("port", container, "7878/tcp").stdout.strip().splitlines()[0]
    return int(line.rsplit(":", 1)[1])


def query(port, sql):
    with flight_sql.connect(f"grpc://127.0.0.1:{port}",
                            db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {TOKEN}"},
                            autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else None


def test_the_image_runs_unprivileged_from_scratch(image):
    (config,) = json.loads(podman("image", "inspect", image).stdout)
    assert config["Config"]["User"] == "65532:65532"
    assert config["Config"]["Entrypoint"] == ["/usr/local/bin/openduck"]
    assert "/var/lib/openduck" in config["Config"]["Volumes"]
    # FROM scratch: one layer, the binary and what it links.
    assert config["Size"] < 400 * 1024 * 1024, config["Size"]


def test_the_image_serves_flight_sql_and_keeps_its_data_across_restarts(image, containers):
    volume = f"openduck-test-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", volume)
    try:
        run = ["--publish", "127.0.0.1::7878", "--env", f"OPENDUCK_TOKEN={TOKEN}",
               "--volume", f"{volume}:/var/lib/openduck", "--read-only", image]
        first = containers(*run)
        port = published_port(first)
        wait_until(lambda: query(port, "SELECT 1") == [(1,)], timeout_s=60, what="the container to serve")
        query(port, "CREATE TABLE kept AS SELECT range AS id FROM range(100)")
        assert "65532" in podman("top", first, "user").stdout or "openduck" in podman("top", first, "user").stdout
        # SIGTERM (what `podman stop` and Kubernetes send) drains and exits cleanly.
        podman("stop", "--time", "30", first)
        state = json.loads(podman("inspect", first).stdout)[0]["State"]
        assert state["ExitCode"] == 0, podman("logs", first).stderr[-2000:]

        second = containers(*run)
        port = published_port(second)
        wait_until(lambda: query(port, "SELECT 1") == [(1,)], timeout_s=60, what="the second container to serve")
        assert query(port, "SELECT count(*), sum(id) FROM kept") == [(100, 4950)]
    finally:
        podman("volume", "rm", "--force", volume, check=False)


def test_the_image_refuses_to_listen_openly_without_credentials(image):
    done = podman("run", "--rm", image, check=False)
    assert done.returncode != 0
    assert "token" in done.stderr.lower(), done.stderr
