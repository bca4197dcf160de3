"""The DuckDB extension against a service with TLS and with user accounts:
a private CA from a secret or OPENDUCK_CA, a user name and password from a
secret, neither the password nor a token ever shown."""

import os
import subprocess
import sys
import textwrap

import duckdb
import pyarrow.flight as flight
import pytest
from cluster_harness import wait_until
from extension_harness import extension_path, local_duckdb
from openduck_harness import Server
from test_tls_accounts import add_user, certs  # noqa: F401 - certs is a fixture

PASSWORD = "correct-h0rse-battery"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):  # noqa: F811 - the fixture imported above
    args = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]
    srv = Server(tmp_path_factory.mktemp("ext-tls") / "data", extra_args=args).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ext-accounts")
    users = directory / "users"
    add_user(users, "alice", PASSWORD)
    srv = Server(directory / "data", extra_args=["--users", str(users)]).start()
    yield srv
    srv.stop()


def test_tls_with_the_ca_from_a_secret(tls_server, certs):  # noqa: F811
    assert tls_server.uri.startswith("grpc+tls://")
    con = local_duckdb()
    con.execute(f"CREATE SECRET tls (TYPE openduck, CA '{certs / 'ca.pem'}', SCOPE '{tls_server.uri}')")
    con.execute(f"ATTACH 'openduck:mydb?endpoint={tls_server.uri}' AS cloud")
    con.execute("CREATE TABLE cloud.secure AS SELECT range AS i FROM range(100)")
    assert con.sql("SELECT count(*), sum(i) FROM cloud.secure").fetchall() == [(100, 4950)]
    con.close()


def attach_in_a_process(uri, **env):
    """ATTACHes `uri`'s mydb from a fresh Python process with `env` added (the system's
    CA store is read from the environment then); returns the process."""
    script = f"""
        import duckdb
        con = duckdb.connect(config={{"allow_unsigned_extensions": "true"}})
        con.execute("LOAD '{extension_path()}'")
        con.execute("ATTACH 'openduck:mydb?endpoint={uri}' AS cloud")
        print(con.sql("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'cloud'").fetchone()[0])
    """
    environment = {k: v for k, v in os.environ.items() if k not in ("OPENDUCK_CA", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          env={**environment, **env}, timeout=120)


def test_tls_without_a_ca_trusts_the_systems_store(tls_server, certs, tmp_path):  # noqa: F811
    # SSL_CERT_FILE stands in for /etc/ssl/certs: the service's CA in it, the attach works.
    done = attach_in_a_process(tls_server.uri, SSL_CERT_FILE=str(certs / "ca.pem"))
    assert done.returncode == 0, done.stderr
    # A store without it: refused, naming the endpoint and how to name a CA.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
         "-keyout", "/dev/null", "-out", str(tmp_path / "other.pem")],
        capture_output=True, text=True, check=True,
    )
    done = attach_in_a_process(tls_server.uri, SSL_CERT_FILE=str(tmp_path / "other.pem"))
    assert done.returncode != 0
    assert tls_server.uri in done.stderr and "no CA of the system's store signed" in done.stderr, done.stderr
    # No store at all (a machine without CA certificates): said so.
    (tmp_path / "empty").mkdir()
    done = attach_in_a_process(tls_server.uri, SSL_CERT_FILE=str(tmp_path / "missing.pem"),
                               SSL_CERT_DIR=str(tmp_path / "empty"))
    assert done.returncode != 0
    assert "the system's CA store is empty" in done.stderr, done.stderr


def test_a_ca_that_did_not_sign_the_certificate_is_refused_clearly(tls_server):
    # A CA that did not sign the server's certificate: the connection fails, naming the endpoint.
    con = local_duckdb()
    other_ca = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
         "-keyout", "/dev/null"],
        capture_output=True, text=True, check=True,
    ).stdout
    con.execute(f"CREATE SECRET wrong (TYPE openduck, CA '{other_ca}')")
    with pytest.raises(duckdb.Error, match=tls_server.uri.replace("+", r"\+")):
        con.execute(f"ATTACH 'openduck:mydb?endpoint={tls_server.uri}' AS cloud")
    con.close()


def test_tls_with_the_ca_from_the_environment(tls_server, certs):  # noqa: F811
    script = f"""
        import duckdb
        con = duckdb.connect(config={{"allow_unsigned_extensions": "true"}})
        con.execute("LOAD '{extension_path()}'")
        con.execute("ATTACH 'openduck:mydb?endpoint={tls_server.uri}' AS cloud")
        con.execute("CREATE OR REPLACE TABLE cloud.from_env AS SELECT 42 AS answer")
        print(con.sql("SELECT answer FROM cloud.from_env").fetchone()[0])
    """
    env = dict(os.environ, OPENDUCK_CA=str(certs / "ca.pem"))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42"]


def test_a_user_logs_in_with_name_and_password(accounts_server):
    con = local_duckdb()
    uri = accounts_server.uri
    con.execute(f"CREATE SECRET alice (TYPE openduck, USER 'alice', PASSWORD '{PASSWORD}', SCOPE '{uri}')")
    con.execute(f"ATTACH 'openduck:mydb?endpoint={uri}' AS cloud")
    con.execute("CREATE TABLE cloud.mine AS SELECT 1 AS x")
    assert con.sql("SELECT x FROM cloud.mine").fetchall() == [(1,)]
    shown = str(con.sql("SELECT * FROM duckdb_secrets()").fetchall()) + str(
        con.sql("SELECT * FROM duckdb_databases()").fetchall()
    )
    assert PASSWORD not in shown and "odt1." not in shown
    con.close()


def test_a_wrong_password_fails_at_attach(accounts_server):
    con = local_duckdb()
    uri = accounts_server.uri
    con.execute(f"CREATE SECRET alice (TYPE openduck, USER 'alice', PASSWORD 'not-it', SCOPE '{uri}')")
    with pytest.raises(duckdb.Error, match="authentication failed") as refused:
        con.execute(f"ATTACH 'openduck:mydb?endpoint={uri}' AS cloud")
    assert "not-it" not in str(refused.value)
    with pytest.raises(duckdb.Error, match="needs its PASSWORD"):
        con.execute("CREATE SECRET half (TYPE openduck, USER 'alice')")
    con.close()


def test_mutual_tls_with_a_client_certificate(tmp_path, certs):  # noqa: F811
    args = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
            "--tls-client-ca", str(certs / "ca.pem")]
    srv = Server(tmp_path / "data", extra_args=args).start()
    try:
        con = local_duckdb()
        con.execute(f"CREATE SECRET ca_only (TYPE openduck, CA '{certs / 'ca.pem'}', SCOPE '{srv.uri}')")
        # Without a client certificate the service refuses the connection.
        with pytest.raises(duckdb.Error, match=srv.uri.replace("+", r"\+")):
            con.execute(f"ATTACH 'openduck:mydb?endpoint={srv.uri}' AS cloud")
        key = (certs / "client.key").read_text()
        con.execute(
            f"CREATE OR REPLACE SECRET ca_only (TYPE openduck, CA '{certs / 'ca.pem'}', "
            f"CERT '{certs / 'client.pem'}', KEY '{key}', SCOPE '{srv.uri}')"
        )
        con.execute(f"ATTACH 'openduck:mydb?endpoint={srv.uri}' AS cloud")
        assert con.sql("SELECT * FROM openduck_query('cloud', 'SELECT 7 AS seven')").fetchall() == [(7,)]
        assert "PRIVATE KEY" not in str(con.sql("SELECT * FROM duckdb_secrets()").fetchall())
        con.close()
    finally:
        srv.stop()


def test_a_login_outlives_its_tokens(tmp_path):
    users = tmp_path / "users"
    add_user(users, "alice", PASSWORD)
    server = Server(tmp_path / "data", extra_args=["--users", str(users), "--token-ttl", "2s"]).start()
    try:
        con = local_duckdb()
        uri = server.uri
        con.execute(f"CREATE SECRET alice (TYPE openduck, USER 'alice', PASSWORD '{PASSWORD}', SCOPE '{uri}')")
        con.execute(f"ATTACH 'openduck:mydb?endpoint={uri}' AS cloud")
        con.execute("CREATE TABLE cloud.kept AS SELECT 1 AS x")
        client = flight.FlightClient(uri)

        def tokens_issued_now_expire():
            """A token issued now expires after every token the extension holds: once
            the service refuses it, it refuses those too."""
            options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("alice", PASSWORD)])

            def refused():
                try:
                    list(client.list_actions(options=options))
                    return False
                except flight.FlightUnauthenticatedError:
                    return True

            wait_until(refused, timeout_s=30, interval_s=0.1, what="a token to expire")

        tokens_issued_now_expire()
        # Queries, writes (SQL and bulk ingest) and transactions go on, each token
        # renewed before it expires.
        assert con.sql("SELECT x FROM cloud.kept").fetchall() == [(1,)]
        con.execute("INSERT INTO cloud.kept VALUES (2)")
        con.execute("INSERT INTO cloud.kept SELECT 3")
        con.execute("BEGIN")
        con.execute("UPDATE cloud.kept SET x = x + 10")
        con.execute("INSERT INTO cloud.kept VALUES (20)")
        tokens_issued_now_expire()
        # A bulk ingest is the first call after the expiry: it cannot be repeated, so
        # only the renewal ahead of time keeps it going.
        con.execute("INSERT INTO cloud.kept VALUES (30)")
        con.execute("DELETE FROM cloud.kept WHERE x >= 20")
        con.execute("COMMIT")
        tokens_issued_now_expire()
        assert con.sql("SELECT x FROM cloud.kept ORDER BY x").fetchall() == [(11,), (12,), (13,)]
        client.close()
        # A service started again refuses every token it issued before. The second
        # time, the extension's token (good for an hour by its clock) is refused at
        # its first use, and the extension logs in again and runs the call again.
        server.extra_args = ["--users", str(users), "--token-ttl", "1h"]
        port = uri.rsplit(":", 1)[1]
        for _ in range(2):
            server.stop()
            server.start([arg.replace("127.0.0.1:0", f"127.0.0.1:{port}") for arg in server.command()])
            assert server.uri == uri
            assert con.sql("SELECT count(*) FROM cloud.kept").fetchall() == [(3,)]
        con.close()
    finally:
        server.stop()
