"""A cluster whose coordinator and executors talk over mutual TLS: queries,
writes and ingest run through it, and an executor refuses every peer that
does not hold a certificate of the cluster's CA. Real etcd, real processes,
the ADBC driver, and pyarrow's Flight client as the peers refused."""

import subprocess

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from certs_harness import make_certs
from cluster_harness import Coordinator, Etcd, Executor, wait_until
from openduck_harness import openduck_bin


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster-pki")
    return {"cluster": make_certs(root / "cluster"), "forged": make_certs(root / "forged")}


def tls_args(certs, cert="server"):
    return [
        "--cluster-tls-cert", str(certs / f"{cert}.pem"),
        "--cluster-tls-key", str(certs / f"{cert}.key"),
        "--cluster-tls-ca", str(certs / "ca.pem"),
    ]


def answers(client: flight.FlightClient) -> bool:
    """Whether the executor answers `client` at all (ListActions needs no ticket)."""
    try:
        return bool(list(client.list_actions(options=flight.FlightCallOptions(timeout=10))))
    except flight.FlightError:
        return False


def test_a_cluster_over_mutual_tls_runs_queries_and_refuses_other_peers(tmp_path, pki):
    cluster, forged = pki["cluster"], pki["forged"]
    etcd = Etcd(tmp_path / "etcd").start()
    executor = coordinator = None
    try:
        executor = Executor(tmp_path / "exec", etcd, "exec-0", ["mydb"], extra_args=tls_args(cluster)).start()
        assert executor.uri.startswith("grpc+tls://127.0.0.1:")
        coordinator = Coordinator(tmp_path / "coordinator", etcd, extra_args=tls_args(cluster, "client")).start()
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: conn.adbc_get_objects(depth="catalogs").read_all().num_rows >= 1, what="the executor")
            cur.execute("CREATE TABLE secrets_in_transit (id INTEGER, word VARCHAR)")
            cur.execute("INSERT INTO secrets_in_transit VALUES (1, 'one'), (2, 'two')")
            cur.adbc_ingest("secrets_in_transit", pa.table({"id": [3], "word": ["three"]}), mode="append")
            cur.execute("SELECT id, word FROM secrets_in_transit WHERE id > ? ORDER BY id", parameters=(1,))
            assert cur.fetchall() == [(2, "two"), (3, "three")]

        address = executor.uri.split("://", 1)[1]
        root = (cluster / "ca.pem").read_bytes()

        def client(certs=None, tls=True):
            if not tls:
                return flight.FlightClient(f"grpc://{address}")
            identity = {}
            if certs is not None:
                identity = {"cert_chain": (certs / "client.pem").read_bytes(),
                            "private_key": (certs / "client.key").read_bytes()}
            return flight.FlightClient(f"grpc+tls://{address}", tls_root_certs=root, **identity)

        # Only a peer with a certificate of the cluster's CA gets an answer.
        assert answers(client(cluster))
        assert not answers(client(tls=False)), "a plain connection was answered"
        assert not answers(client()), "a peer without a certificate was answered"
        assert not answers(client(forged)), "a certificate of another CA was accepted"
    finally:
        for process in (coordinator, executor):
            if process:
                process.stop()
        etcd.stop()


@pytest.mark.parametrize(
    "role, flags, message",
    [
        ("executor", ["--cluster-tls-ca", "ca.pem"], "give the executor --cluster-tls-cert and --cluster-tls-key"),
        ("coordinator", ["--cluster-tls-cert", "client.pem", "--cluster-tls-key", "client.key"],
         "give --cluster-tls-ca too"),
    ],
)
def test_half_a_tls_configuration_is_refused_at_start(tmp_path, pki, role, flags, message):
    certs = pki["cluster"]
    args = [f if f.startswith("--") else str(certs / f) for f in flags]
    if role == "executor":
        args += ["--data-dir", str(tmp_path)]
    done = subprocess.run(
        [openduck_bin(), role, "--etcd", "http://127.0.0.1:1", "--cluster-secret", "a-test-cluster-secret-of-32-bytes!",
         *args],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize("executors_have_the_ca", [True, False])
def test_a_shipped_join_side_crosses_between_executors_over_tls(tmp_path, pki, executors_have_the_ca):
    """With the cluster's CA, an executor fetches a join's small side from
    another over mutual TLS; without it, it cannot check its peer, and the
    coordinator moves the rows itself. The rows are the same either way."""
    certs = pki["cluster"]
    executor_args = tls_args(certs) if executors_have_the_ca else tls_args(certs)[:4]
    coordinator_args = tls_args(certs, "client") if executors_have_the_ca else ["--cluster-tls-ca", str(certs / "ca.pem")]
    etcd = Etcd(tmp_path / "etcd").start()
    processes = []
    try:
        for index, database in enumerate(["facts", "dims"]):
            processes.append(Executor(tmp_path / f"exec-{index}", etcd, f"exec-{index}", [database],
                                      extra_args=executor_args).start())
        coordinator = Coordinator(tmp_path / "coordinator", etcd,
                                  extra_args=[*coordinator_args, "--join-shipping-threshold", "0"]).start()
        processes.append(coordinator)
        sql = ("SELECT d.label, count(*) AS n, sum(f.v) AS total FROM facts.main.f JOIN dims.main.d ON f.k = d.k "
               "GROUP BY d.label ORDER BY d.label")
        with coordinator.connect() as conn, conn.cursor() as cur:
            wait_until(lambda: conn.adbc_get_objects(depth="catalogs").read_all().num_rows >= 2, what="both executors")
            cur.execute("CREATE TABLE facts.main.f AS SELECT range % 100 AS k, range AS v FROM range(20000)")
            cur.execute("CREATE TABLE dims.main.d AS SELECT range AS k, 'label ' || (range % 3) AS label FROM range(10)")
            wait_until(lambda: "Shipped [REMOTE exec-1]" in explain(cur, sql), what="a plan that ships d")
            logged = coordinator.log_path.stat().st_size
            cur.execute(sql)
            assert cur.fetchall() == [
                (f"label {r}", sum(200 for k in range(10) if k % 3 == r),
                 sum(v for v in range(20000) if v % 100 < 10 and (v % 100) % 3 == r))
                for r in range(3)
            ]

        def since():
            return coordinator.log_path.read_bytes()[logged:].decode(errors="replace")

        if executors_have_the_ca:
            wait_until(lambda: "transfer finished" in since(), what="a transfer between executors")
            assert "shipped_to" not in "".join(l for l in since().splitlines() if "bridge finished" in l)
        else:
            wait_until(lambda: any("bridge finished" in l and "shipped_to=exec-0" in l for l in since().splitlines()),
                       what="the rows shipped through the coordinator")
            assert "transfer finished" not in since()
    finally:
        for process in reversed(processes):
            process.stop()
        etcd.stop()


def explain(cur, sql):
    cur.execute(f"EXPLAIN {sql}")
    return "\n".join(row[0] for row in cur.fetchall())
