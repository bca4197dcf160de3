"""The Helm chart (helm/openduck): it lints, every values file renders
manifests that Kubernetes' own schemas accept, the values schema rejects
nonsense, and what it renders forms a working cluster when its pods' commands
run as local processes (helm_harness.SimulatedInstall)."""

import json
import subprocess

import adbc_driver_flightsql.dbapi as flight_sql
import kubernetes_validate
import pytest

from cluster_harness import wait_until
from helm_harness import CHART, KUBE_VERSION, RenderError, SimulatedInstall, find, helm, render
from storage_harness import BUCKET, MotoS3
from telemetry_harness import sample, scrape

TOKEN = "a-token-given-in-values-0123456789"

# Small requests so that nothing here depends on the machine's size.
SMALL = {
    "coordinator": {"resources": {"requests": {"cpu": "10m", "memory": "64Mi"}}},
    "executors": {"resources": {"requests": {"cpu": "10m", "memory": "128Mi"}}, "memoryLimit": "512MB",
                  "statementTimeout": "5m", "idleTransactionTimeout": "2m",
                  "ingestIdleTimeout": "90s"},
}

VARIANTS = {
    "defaults": {},
    "external-etcd": {
        "etcd": {"enabled": False, "endpoints": ["http://etcd-a.infra:2379", "http://etcd-b.infra:2379"]},
        "auth": {"token": TOKEN},
    },
    "s3": {
        "storage": {"type": "s3", "s3": {"bucket": "lake", "prefix": "prod/openduck", "endpoint": "http://minio.infra:9000",
                                         "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "s3-secret-in-values"}},
    },
    "tls-users": {
        "networkPolicy": {"clients": [{"namespaceSelector": {"matchLabels": {"team": "bi"}}},
                                      {"ipBlock": {"cidr": "10.20.0.0/16"}}],
                          "metricsScrapers": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
        "tls": {"enabled": True, "secretName": "openduck-tls", "clientCA": True},
        "auth": {"users": "alice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\n"},
        "shutdownGrace": "1m",
    },
    "cluster-tls": {
        "clusterTls": {"enabled": True, "secretName": "openduck-cluster-tls"},
    },
    "replicas": {
        "etcd": {"members": 3},
        "coordinator": {"replicas": 2},
        "storage": {"type": "s3", "s3": {"bucket": "lake", "credentialsSecret": "lake-credentials"}},
        "executors": {"groups": [
            {"name": "writer", "databases": ["mydb", "sales"]},
            {"name": "readers", "count": 2, "replicas": ["mydb"]},
        ]},
    },
}


def merged(*layers):
    out = {}
    for layer in layers:
        for key, value in layer.items():
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def container(obj):
    (only,) = obj["spec"]["template"]["spec"]["containers"]
    return only


def env_of(obj):
    return {var["name"]: var for var in container(obj).get("env", [])}


def test_chart_lints_strictly(tmp_path):
    for name, values in VARIANTS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(values))
        done = subprocess.run([helm(), "lint", "--strict", CHART, "--values", path], capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_renders_manifests_kubernetes_accepts(tmp_path, variant):
    objects = render(VARIANTS[variant], tmp_path)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "StatefulSet", "Service", "Secret", "PodDisruptionBudget", "ServiceAccount"} <= kinds
    for obj in objects:
        # Strict: a field Kubernetes does not know fails, as the API server would refuse it.
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values, complaint", [
    ({"etcd": {"members": 2}}, "etcd.members"),
    ({"storage": {"type": "gcs"}}, "storage.type"),
    ({"coordinator": {"replicas": 0}}, "coordinator.replicas"),
    ({"clusterSecret": {"value": "short"}}, "clusterSecret.value"),
    ({"shutdownGrace": "soon"}, "shutdownGrace"),
    ({"unknownKey": 1}, "unknownKey"),
    ({"executors": {"groups": [{"name": "Main", "databases": ["mydb"]}]}}, "groups.0.name"),
    ({"executors": {"groups": [{"name": "main", "databases": ["my db"]}]}}, "databases.0"),
    ({"executors": {"groups": [{"name": "main", "count": 2, "databases": ["mydb"]}]}}, "exactly one pod"),
    ({"executors": {"groups": [{"name": "a", "databases": ["mydb"]}, {"name": "b", "databases": ["mydb"]}]}},
     "one writer"),
    ({"executors": {"groups": [{"name": "w", "databases": ["mydb"]}, {"name": "r", "replicas": ["mydb"]}]}},
     "storage.type to s3"),
    ({"storage": {"type": "s3", "s3": {"bucket": "b"}},
      "executors": {"groups": [{"name": "r", "replicas": ["other"]}]}}, "no executor group writes other"),
    ({"executors": {"groups": [{"name": "empty"}]}}, "hosts nothing"),
    ({"etcd": {"enabled": False}}, "etcd.endpoints"),
    ({"storage": {"type": "s3"}}, "storage.s3.bucket"),
    ({"tls": {"enabled": True}}, "tls.secretName"),
    ({"clusterTls": {"enabled": True}}, "clusterTls.secretName"),
    ({"clusterTls": {"enabled": True, "secretName": "s"}, "executors": {"healthPort": 7879}}, "executors.healthPort"),
    ({"executors": {"port": 9000}, "metrics": {"port": 9000}}, "metrics.port 9000 is taken"),
    ({"logFormat": "xml"}, "logFormat"),
    ({"executors": {"statementTimeout": "soon"}}, "statementTimeout"),
    ({"executors": {"idleTransactionTimeout": "soon"}}, "idleTransactionTimeout"),
    ({"executors": {"ingestIdleTimeout": "1 minute"}}, "ingestIdleTimeout"),
    ({"networkPolicy": {"clients": [{}]}}, "networkPolicy.clients.0"),
    ({"networkPolicy": {"clients": [{"ipBlock": {}}]}}, "cidr"),
    ({"etcd": {"enabled": False, "endpoints": ["https://etcd:2379"]}}, "etcd.endpoints.0"),
    ({"executors": {"groups": [{"name": "a", "databases": ["one"]}, {"name": "a", "databases": ["two"]}]}},
     "two executor groups are named a"),
    ({"fullnameOverride": "a-rather-long-release-name-for-openduck",
      "executors": {"groups": [{"name": "analytics-warehouse", "databases": ["x"]}]}}, "more than Kubernetes allows"),
])
def test_values_that_make_no_sense_are_rejected(tmp_path, values, complaint):
    with pytest.raises(RenderError) as refused:
        render(values, tmp_path)
    assert complaint in str(refused.value)


def selects_pod(selector, workload):
    labels = workload["spec"]["template"]["metadata"]["labels"]
    matches = all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        matches = matches and labels.get(expression["key"]) in expression["values"]
    return matches


def policies(objects):
    return {obj["metadata"]["name"].removeprefix("rel-openduck-"): obj["spec"] for obj in find(objects, "NetworkPolicy")}


def test_network_policies_admit_only_what_each_component_needs(tmp_path):
    release = {"app.kubernetes.io/name": "openduck", "app.kubernetes.io/instance": "rel"}
    coordinators = {**release, "app.kubernetes.io/component": "coordinator"}
    objects = render(VARIANTS["replicas"], tmp_path)
    policy = policies(objects)
    assert set(policy) == {"coordinator", "executor", "etcd"}

    # Every executor pod is selected, and its Flight port admits coordinators only.
    executors = policy["executor"]["podSelector"]
    assert executors["matchLabels"] == release
    (groups,) = executors["matchExpressions"]
    assert groups["values"] == ["executor-writer", "executor-readers"]
    for workload in find(objects, "StatefulSet"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        selected = labels.get("app.kubernetes.io/component") in groups["values"]
        assert selected == workload["metadata"]["name"].startswith("rel-openduck-executor-"), workload["metadata"]["name"]
    flight, metrics = policy["executor"]["ingress"]
    assert flight == {"ports": [{"port": "flight", "protocol": "TCP"}],
                      "from": [{"podSelector": {"matchLabels": coordinators}}]}
    # Every port a policy names is a port of every pod it selects.
    workloads = find(objects, "StatefulSet") + find(objects, "Deployment")
    for name, spec in policy.items():
        selected = [w for w in workloads if selects_pod(spec["podSelector"], w)]
        assert selected, f"policy {name} selects no pod"
        for workload in selected:
            named = {port["name"] for port in container(workload)["ports"]}
            for rule in spec["ingress"]:
                assert {p["port"] for p in rule["ports"]} <= named, (name, workload["metadata"]["name"], named)
    assert metrics == {"ports": [{"port": "metrics", "protocol": "TCP"}]}

    # The bundled etcd admits this release's pods only; coordinators admit anyone by default.
    (etcd,) = policy["etcd"]["ingress"]
    assert etcd["from"] == [{"podSelector": {"matchLabels": release}}]
    assert {p["port"] for p in etcd["ports"]} == {"client", "peer"}
    assert all("from" not in rule for rule in policy["coordinator"]["ingress"])

    # Restricted clients and scrapers; no etcd policy for an external etcd; none when disabled.
    policy = policies(render(VARIANTS["tls-users"], tmp_path))
    flight_sql, metrics = policy["coordinator"]["ingress"]
    assert flight_sql["from"] == VARIANTS["tls-users"]["networkPolicy"]["clients"]
    assert metrics["from"] == policy["executor"]["ingress"][1]["from"]
    assert "etcd" not in policies(render(VARIANTS["external-etcd"], tmp_path))
    # With --direct-results clients fetch from executors: those clients are admitted too.
    direct = merged(VARIANTS["tls-users"], {"coordinator": {"extraArgs": ["--direct-results=true"]}})
    flight = policies(render(direct, tmp_path))["executor"]["ingress"][0]
    assert flight["from"] == [{"podSelector": {"matchLabels": coordinators}}, *direct["networkPolicy"]["clients"]]
    anyone = {"coordinator": {"extraEnv": [{"name": "OPENDUCK_DIRECT_RESULTS", "value": "true"}]}}
    assert "from" not in policies(render(anyone, tmp_path))["executor"]["ingress"][0]
    assert not policies(render({"networkPolicy": {"enabled": False}}, tmp_path))


def test_executors_advertise_their_stable_pod_names(tmp_path):
    objects = render(VARIANTS["replicas"], tmp_path)
    for group, count in [("writer", 1), ("readers", 2)]:
        name = f"rel-openduck-executor-{group}"
        stateful = find(objects, "StatefulSet", name)
        headless = find(objects, "Service", name)
        assert stateful["spec"]["serviceName"] == name and headless["spec"]["clusterIP"] == "None"
        assert stateful["spec"]["replicas"] == count
        args = container(stateful)["args"]
        assert f"--advertise=$(POD_NAME).{name}.$(POD_NAMESPACE).svc.cluster.local:7879" in args
        assert env_of(stateful)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        [claim] = stateful["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
        assert env_of(stateful)["OPENDUCK_STORAGE"]["value"] == "s3://lake/openduck"
    assert "--database=sales" in container(find(objects, "StatefulSet", "rel-openduck-executor-writer"))["args"]
    assert "--replica=mydb" in container(find(objects, "StatefulSet", "rel-openduck-executor-readers"))["args"]
    etcd = find(objects, "StatefulSet", "rel-openduck-etcd")
    assert etcd["spec"]["replicas"] == 3
    assert len(etcd["spec"]["volumeClaimTemplates"]) == 1
    assert env_of(find(objects, "Deployment", "rel-openduck-coordinator"))["OPENDUCK_ETCD"]["value"].count("http://") == 3
    assert find(objects, "PodDisruptionBudget", "rel-openduck-etcd")["spec"]["maxUnavailable"] == 1


def test_pods_run_unprivileged_with_probes_and_a_matching_grace_period(tmp_path):
    objects = render(VARIANTS["tls-users"], tmp_path)
    for workload in find(objects, "StatefulSet") + find(objects, "Deployment"):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        c = container(workload)
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["readinessProbe"] and c["livenessProbe"]
        if c["command"][0] == "openduck":
            # 1m of --shutdown-grace, and 15 s more before Kubernetes kills the pod.
            assert env_of(workload)["OPENDUCK_SHUTDOWN_GRACE"]["value"] == "1m"
            assert pod["terminationGracePeriodSeconds"] == 75
    executor = container(find(objects, "StatefulSet", "rel-openduck-executor-main"))
    assert executor["readinessProbe"]["grpc"]["port"] == 7879
    coordinator = container(find(objects, "Deployment", "rel-openduck-coordinator"))
    # Kubernetes' gRPC probes cannot speak TLS.
    assert coordinator["readinessProbe"] == {"tcpSocket": {"port": 7878}, "periodSeconds": 5}
    assert "--tls-client-ca=/etc/openduck/tls/ca.crt" in coordinator["args"]
    assert env_of(find(objects, "Deployment", "rel-openduck-coordinator"))["OPENDUCK_SHUTDOWN_DELAY"]["value"] == "5s"
    assert "--users=/etc/openduck/users/users" in coordinator["args"]
    # Users only: no token is made up for clients.
    assert "OPENDUCK_TOKEN" not in env_of(find(objects, "Deployment", "rel-openduck-coordinator"))
    assert not find(objects, "Secret", None) or all(o["metadata"]["name"] != "rel-openduck-token"
                                                   for o in find(objects, "Secret"))


@pytest.mark.parametrize("mutual", [True, False])
def test_cluster_tls_mounts_the_certificates_and_probes_the_port(tmp_path, mutual):
    values = merged(VARIANTS["cluster-tls"], {"clusterTls": {"mutual": mutual}})
    objects = render(values, tmp_path)
    coordinator = find(objects, "Deployment", "rel-openduck-coordinator")
    executor = find(objects, "StatefulSet", "rel-openduck-executor-main")
    cert, key, ca = (f"--cluster-tls-{flag}=/etc/openduck/cluster-tls/{file}"
                     for flag, file in [("cert", "tls.crt"), ("key", "tls.key"), ("ca", "ca.crt")])
    # The coordinator checks executors against the CA, and presents its
    # certificate only when executors require one; executors always serve
    # TLS, and require coordinators' certificates when mutual.
    assert ca in container(coordinator)["args"]
    assert (cert in container(coordinator)["args"]) == mutual
    assert cert in container(executor)["args"] and key in container(executor)["args"]
    assert (ca in container(executor)["args"]) == mutual
    for workload in (coordinator, executor):
        [mount] = [m for m in container(workload)["volumeMounts"] if m["name"] == "cluster-tls"]
        assert mount["mountPath"] == "/etc/openduck/cluster-tls" and mount["readOnly"] is True
        [volume] = [v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == "cluster-tls"]
        assert volume["secret"]["secretName"] == "openduck-cluster-tls"
    # Kubernetes' gRPC probes cannot speak TLS: they ask the plain health port.
    assert "--health-listen=0.0.0.0:7880" in container(executor)["args"]
    for probe in ("readinessProbe", "startupProbe", "livenessProbe"):
        assert container(executor)[probe]["grpc"] == {"port": 7880}
    # A coordinator that presents no certificate gets no key.
    [volume] = [v for v in coordinator["spec"]["template"]["spec"]["volumes"] if v["name"] == "cluster-tls"]
    assert ("items" not in volume["secret"]) == mutual


def test_secrets_are_generated_or_given_and_only_ever_referenced(tmp_path):
    generated = render({}, tmp_path)
    secret = find(generated, "Secret", "rel-openduck-cluster")
    assert len(subprocess.run(["base64", "-d"], input=secret["data"]["cluster-secret"], capture_output=True,
                              text=True).stdout) == 48
    assert "token" in find(generated, "Secret", "rel-openduck-token")["data"]

    given = render(merged(VARIANTS["s3"], {"auth": {"token": TOKEN}}), tmp_path)
    text_outside_secrets = json.dumps([o for o in given if o["kind"] != "Secret"])
    for value in [TOKEN, "s3-secret-in-values", "AKIDEXAMPLE"]:
        assert value not in text_outside_secrets
    executor = env_of(find(given, "StatefulSet", "rel-openduck-executor-main"))
    assert executor["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "rel-openduck-s3"
    assert executor["AWS_ALLOW_HTTP"]["value"] == "true"
    assert executor["OPENDUCK_STORAGE"]["value"] == "s3://lake/prod/openduck"

    existing = render({"auth": {"existingSecret": "mine"}, "clusterSecret": {"existingSecret": "ours"}}, tmp_path)
    assert not find(existing, "Secret")
    coordinator = env_of(find(existing, "Deployment", "rel-openduck-coordinator"))
    assert coordinator["OPENDUCK_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mine"
    assert coordinator["OPENDUCK_CLUSTER_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "ours"


def query(endpoint, token, sql):
    with flight_sql.connect(endpoint, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"},
                            autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else None


def wait_for_database(endpoint, token, database):
    """Pods are ready before every coordinator has seen every executor's
    record (they follow etcd's watch): a client of a new install waits for
    the database it needs, as one after `helm install --wait` would."""
    def catalogs():
        with flight_sql.connect(endpoint, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"},
                                autocommit=True) as conn:
            return conn.adbc_get_objects(depth="catalogs").read_all().column("catalog_name").to_pylist()

    wait_until(lambda: database in catalogs(), what=f"{endpoint} to serve {database}")


@pytest.fixture
def install(tmp_path):
    installs = []

    def make(values, **kwargs):
        simulated = SimulatedInstall(render(merged(SMALL, values), tmp_path), tmp_path / "cluster", **kwargs)
        installs.append(simulated)
        return simulated.start()

    yield make
    for simulated in installs:
        simulated.stop()


def test_simulated_install_of_the_defaults_serves_queries(install):
    cluster = install({})
    token = cluster.secret("rel-openduck-token")["token"].decode()
    endpoint = cluster.endpoint("rel-openduck", 7878)
    wait_for_database(endpoint, token, "mydb")
    # Every openduck pod serves metrics on the port its annotations name.
    coordinator = cluster.pod("rel-openduck-coordinator-0")
    annotations = coordinator.workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    metrics = f"127.0.0.1:{coordinator.port(int(annotations['prometheus.io/port']))}"

    def queries_planned():
        return sample(scrape(metrics), "openduck_calls_total", method="GetFlightInfo", kind="prepared_query",
                      code="OK")

    before = queries_planned() or 0
    query(endpoint, token, "CREATE TABLE events AS SELECT range AS id FROM range(1000)")
    assert query(endpoint, token, "SELECT count(*), sum(id) FROM mydb.events") == [(1000, 499500)]
    with pytest.raises(flight_sql.Error, match="(?i)unauthenticated|token"):
        query(endpoint, "wrong", "SELECT 1")
    assert queries_planned() == before + 2
    executor = cluster.pod("rel-openduck-executor-main-0")
    assert sample(scrape(f"127.0.0.1:{executor.port(9464)}"), "openduck_storage_uploaded_bytes_total") > 0
    # SIGTERM drains every openduck process and each exits cleanly, as a rolling update would.
    codes = cluster.stop()
    assert {name: code for name, code in codes.items() if "etcd" not in name} == {
        "rel-openduck-coordinator-0": 0, "rel-openduck-executor-main-0": 0}, codes


def test_simulated_install_with_three_etcd_members_s3_and_read_replicas(install, tmp_path):
    s3 = MotoS3().start()
    try:
        values = merged(VARIANTS["replicas"], {
            "storage": {"s3": {"bucket": BUCKET, "endpoint": s3.endpoint}},
            "auth": {"token": TOKEN},
        })
        credentials = {"lake-credentials": {"AWS_ACCESS_KEY_ID": b"test", "AWS_SECRET_ACCESS_KEY": b"test"}}
        cluster = install(values, secrets=credentials)
        first, second = (cluster.pod_endpoint(f"rel-openduck-coordinator-{i}", 7878) for i in range(2))
        for endpoint in (first, second):
            for database in ("sales", "mydb"):
                wait_for_database(endpoint, TOKEN, database)
        query(first, TOKEN, "CREATE TABLE sales.main.orders AS SELECT range AS id, range % 7 AS store FROM range(5000)")
        assert query(second, TOKEN, "SELECT count(*) FROM sales.main.orders") == [(5000,)]
        # Both replicas registered as readers of mydb, once they had opened it
        # from the snapshots the writer published to the bucket.
        for coordinator in ("rel-openduck-coordinator-0", "rel-openduck-coordinator-1"):
            log = cluster.tail(cluster.pod(coordinator), 1_000_000)
            for ordinal in range(2):
                # A replica names mydb in the registry only once it serves it.
                name = f"executor=rel-openduck-executor-readers-{ordinal} "
                assert any(name in line and 'replicas=["mydb"]' in line for line in log.splitlines())
        assert s3.client.list_objects_v2(Bucket=BUCKET, Prefix="openduck/").get("KeyCount", 0) > 0
        query(first, TOKEN, "CREATE TABLE mydb.main.t AS SELECT 42 AS answer")
        # Reads of mydb are spread over the writer and the replicas; each sees
        # the write once its replica has followed (about a second).
        wait_until(lambda: all(query(second, TOKEN, "SELECT count(*) FROM mydb.main.t") == [(1,)] for _ in range(6)),
                   timeout_s=20, what="the replicas to follow the write")
        codes = cluster.stop()
        assert all(code == 0 for name, code in codes.items() if "etcd" not in name), codes
    finally:
        s3.stop()


@pytest.mark.parametrize("extra, complaint", [
    ({"extraEnv": [{"name": "OPENDUCK_NO_SUCH_SETTING", "value": "1"}]}, "reads no ['OPENDUCK_NO_SUCH_SETTING']"),
    ({"extraArgs": ["--no-such-flag"]}, "--no-such-flag"),
])
def test_a_setting_the_binary_does_not_know_fails_the_simulated_install(tmp_path, extra, complaint):
    objects = render(merged(SMALL, {"coordinator": extra}), tmp_path)
    cluster = SimulatedInstall(objects, tmp_path / "cluster")
    try:
        with pytest.raises(AssertionError) as failed:
            cluster.start(timeout_s=30)
        assert complaint in str(failed.value)
    finally:
        cluster.stop()
