"""End-to-end fixtures: the real `openduck` binary, driven by real clients."""

import pytest

from openduck_harness import Server


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


@pytest.fixture
def conn(server):
    with server.connect() as connection:
        yield connection
