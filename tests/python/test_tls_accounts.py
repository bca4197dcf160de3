"""TLS, mutual TLS, user accounts and message limits, against the real
binary with the ADBC driver, with certificates made by openssl."""

import subprocess

import adbc_driver_flightsql
import adbc_driver_manager
import pyarrow.flight as flight
import pytest

from certs_harness import make_certs
from openduck_harness import Server, openduck_bin

OPTS = adbc_driver_flightsql.DatabaseOptions


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost, and a client certificate."""
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_server(tmp_path, certs, mtls=False):
    args = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]
    if mtls:
        args += ["--tls-client-ca", str(certs / "ca.pem")]
    return Server(tmp_path / "data", extra_args=args).start()


def test_tls(tmp_path, certs):
    server = tls_server(tmp_path, certs)
    try:
        assert server.uri.startswith("grpc+tls://")
        root = (certs / "ca.pem").read_text()
        with server.connect(**{OPTS.TLS_ROOT_CERTS.value: root}) as conn, conn.cursor() as cur:
            cur.execute("SELECT 40 + 2")
            assert cur.fetchone() == (42,)
        # A client that does not trust the CA cannot connect.
        with pytest.raises(adbc_driver_manager.Error):
            with server.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
    finally:
        server.stop()


def test_mutual_tls(tmp_path, certs):
    server = tls_server(tmp_path, certs, mtls=True)
    try:
        root = (certs / "ca.pem").read_text()
        client = {
            OPTS.TLS_ROOT_CERTS.value: root,
            OPTS.MTLS_CERT_CHAIN.value: (certs / "client.pem").read_text(),
            OPTS.MTLS_PRIVATE_KEY.value: (certs / "client.key").read_text(),
        }
        with server.connect(**client) as conn, conn.cursor() as cur:
            cur.execute("SELECT 'mtls'")
            assert cur.fetchone() == ("mtls",)
        with pytest.raises(adbc_driver_manager.Error):
            with server.connect(**{OPTS.TLS_ROOT_CERTS.value: root}) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
    finally:
        server.stop()


def add_user(users, name, password):
    subprocess.run([openduck_bin(), "passwd", "--users", str(users), name], input=password + "\n",
                   text=True, check=True, capture_output=True)


def test_user_accounts_log_in_and_get_expiring_tokens(tmp_path):
    users = tmp_path / "users"
    add_user(users, "alice", "correct horse")
    add_user(users, "bob", "battery staple")
    add_user(users, "alice", "new password")  # changes alice's password
    text = users.read_text()
    assert "correct horse" not in text and "new password" not in text, "stored as salted hashes"
    assert text.count("alice:") == 1

    server = Server(tmp_path / "data", extra_args=["--users", str(users), "--token-ttl", "1h"]).start()
    try:
        with server.connect(username="alice", password="new password") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        for user, password in [("alice", "correct horse"), ("mallory", "new password"), ("bob", "")]:
            with pytest.raises(adbc_driver_manager.Error) as refused:
                with server.connect(username=user, password=password) as conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
            message = str(refused.value)
            assert "UNAUTHENTICATED" in message.upper(), message
            assert "password" not in message.lower() and "user" not in message.lower(), "no hint which part was wrong"

        # Without logging in, calls are refused; a forged token too.
        client = flight.FlightClient(server.uri.replace("grpc://", "grpc+tcp://"))
        with pytest.raises(flight.FlightUnauthenticatedError):
            list(client.list_actions())
        forged = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer odt1.YWxpY2U.99999999999999.AAAA")])
        with pytest.raises(flight.FlightUnauthenticatedError):
            list(client.list_actions(options=forged))
        # Basic login through Handshake returns a bearer token that works.
        token = client.authenticate_basic_token("bob", "battery staple")
        assert token[0] == b"authorization" and token[1].startswith(b"Bearer odt1.")
        actions = list(client.list_actions(options=flight.FlightCallOptions(headers=[token])))
        assert any(action.type == "CancelFlightInfo" for action in actions)
        client.close()
    finally:
        server.stop()


def test_an_oversized_request_is_resource_exhausted(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--max-message-size", "65536"]).start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            with pytest.raises(adbc_driver_manager.Error) as too_big:
                cur.execute("SELECT '" + "x" * 200_000 + "'")
            # The driver names the gRPC code in its message.
            assert "(ResourceExhausted;" in str(too_big.value), str(too_big.value)
            # The connection survives and keeps working.
            cur.execute("SELECT 2")
            assert cur.fetchone() == (2,)
    finally:
        server.stop()
