"""The Helm chart under test: `helm template` renders it, and `SimulatedInstall`
runs what it renders as local processes, as a kubelet would run the pods.

No Kubernetes API server can run here, so the install is simulated, but from
the rendered objects only: every pod of every StatefulSet and Deployment
becomes a process started with exactly its container's command, arguments
and environment (`$(VAR)` expanded as Kubernetes does, values from
`fieldRef` and from the rendered Secrets), its volumes become directories,
and the names of the cluster's DNS (pods of a headless Service, Services)
become loopback ports. A flag or variable the chart passes that the binary
does not know fails the install, as it would fail the pod."""

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from openduck_harness import openduck_bin

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "openduck"
KUBE_VERSION = "1.30.0"


@cache
def helm() -> str:
    """The helm binary: OPENDUCK_HELM, or the one scripts/install-helm fetches."""
    if os.environ.get("OPENDUCK_HELM"):
        return os.environ["OPENDUCK_HELM"]
    done = subprocess.run([sys.executable, REPO / "scripts" / "install-helm"], check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


class RenderError(Exception):
    """helm refused the values (the schema, or a check of the templates)."""


def render(values: dict, tmp_path: Path, release="rel", namespace="ns") -> list:
    """The objects `helm template` renders for `values`."""
    values_file = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    done = subprocess.run(
        [helm(), "template", release, CHART, "--namespace", namespace, "--kube-version", KUBE_VERSION,
         "--values", values_file],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RenderError(done.stderr)
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def find(objects, kind, name=None):
    """The rendered objects of `kind` (and `name`)."""
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if name is not None:
        assert len(found) == 1, f"no single {kind} {name} among {[o['metadata']['name'] for o in objects]}"
        return found[0]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@cache
def known_variables(subcommand: str) -> frozenset:
    """The OPENDUCK_* variables `openduck <subcommand>` reads (from its --help)."""
    text = subprocess.run([openduck_bin(), subcommand, "--help"], check=True, capture_output=True, text=True).stdout
    return frozenset(re.findall(r"\[env: (OPENDUCK_[A-Z0-9_]+)", text))


@dataclass
class Pod:
    name: str
    workload: dict
    spec: dict
    hostnames: list = field(default_factory=list)
    ports: dict = field(default_factory=dict)  # container port -> loopback port
    dir: Path = None
    proc: subprocess.Popen = None
    log: Path = None

    @property
    def container(self) -> dict:
        (container,) = self.spec["containers"]
        return container

    def port(self, port) -> int:
        """The loopback port standing for container port `port` (a number or a name)."""
        if isinstance(port, str):
            (port,) = [p["containerPort"] for p in self.container.get("ports", []) if p.get("name") == port]
        return self.ports[port]


class SimulatedInstall:
    """The rendered chart's pods as processes; `start()` starts them all at
    once and waits for their readiness probes; `stop()` sends SIGTERM and
    waits as long as the pod's terminationGracePeriodSeconds."""

    def __init__(self, objects, root: Path, namespace="ns", cluster_domain="cluster.local", secrets=None, env=None):
        self.objects = objects
        self.root = root
        self.namespace = namespace
        self.domain = cluster_domain
        self.extra_env = env or {}
        self.secrets = {s["metadata"]["name"]: decode(s) for s in find(objects, "Secret")}
        self.secrets.update(secrets or {})
        self.pods = []
        for workload in find(objects, "StatefulSet") + find(objects, "Deployment"):
            for ordinal in range(workload["spec"].get("replicas", 1)):
                self.pods.append(self._pod(workload, ordinal))
        self.hosts = {}  # DNS name -> (pod, port map by service port or None for pod DNS)
        for pod in self.pods:
            for host in pod.hostnames:
                self.hosts[host] = (pod, None)
        for service in find(objects, "Service"):
            pods = [p for p in self.pods if selects(service, p)]
            if not pods:
                continue
            ports = {p["port"]: p.get("targetPort", p["port"]) for p in service["spec"]["ports"]}
            for host in self.dns(service["metadata"]["name"]):
                self.hosts[host] = (pods[0], ports)

    def dns(self, name):
        return [name, f"{name}.{self.namespace}", f"{name}.{self.namespace}.svc", f"{name}.{self.namespace}.svc.{self.domain}"]

    def _pod(self, workload, ordinal) -> Pod:
        name = f"{workload['metadata']['name']}-{ordinal}"
        pod = Pod(name=name, workload=workload, spec=workload["spec"]["template"]["spec"], dir=self.root / name)
        if workload["kind"] == "StatefulSet":
            pod.hostnames = [f"{name}.{host}" for host in self.dns(workload["spec"]["serviceName"])]
        for port in pod.container.get("ports", []):
            pod.ports[port["containerPort"]] = free_port()
        return pod

    # -- what a kubelet does ------------------------------------------------

    def _volumes(self, pod: Pod) -> dict:
        """mountPath -> local directory, with secret volumes written out."""
        claims = {t["metadata"]["name"] for t in pod.workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in pod.spec.get("volumes", [])}
        mounts = {}
        for mount in pod.container.get("volumeMounts", []):
            name = mount["name"]
            if name in claims:
                local = self.root / "pvc" / f"{name}-{pod.name}"
            elif "emptyDir" in volumes[name]:
                local = pod.dir / "volumes" / name
            elif "secret" in volumes[name]:
                local = pod.dir / "volumes" / name
                local.mkdir(parents=True, exist_ok=True)
                secret = volumes[name]["secret"]
                data = self.secret(secret["secretName"])
                items = secret.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    (local / item["path"]).write_bytes(data[item["key"]])
            else:
                raise AssertionError(f"pod {pod.name}: volume {name} is of a kind the simulation lacks: {volumes[name]}")
            local.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = local
        return mounts

    def secret(self, name) -> dict:
        assert name in self.secrets, f"Secret {name} is neither rendered nor given to the simulation"
        return self.secrets[name]

    def _environment(self, pod: Pod) -> dict:
        env = {}
        for var in pod.container.get("env", []):
            if "value" in var:
                value = expand(str(var["value"]), env)
            else:
                source = var["valueFrom"]
                if "fieldRef" in source:
                    value = {"metadata.name": pod.name, "metadata.namespace": self.namespace,
                             "status.podIP": "127.0.0.1"}[source["fieldRef"]["fieldPath"]]
                elif "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    value = self.secret(ref["name"])[ref["key"]].decode()
                else:
                    raise AssertionError(f"pod {pod.name}: {var['name']} comes from {source}, which the simulation lacks")
            env[var["name"]] = value
        return env

    def _localize(self, pod: Pod, text: str, mounts: dict) -> str:
        """Cluster addresses and mount paths in `text` as this machine has them."""
        def listen(match):
            return f"127.0.0.1:{pod.port(int(match.group(1)))}"

        text = re.sub(r"0\.0\.0\.0:(\d+)", listen, text)
        for host in sorted(self.hosts, key=len, reverse=True):
            def address(match, host=host):
                target, ports = self.hosts[host]
                port = int(match.group(1))
                return f"127.0.0.1:{target.port(ports[port] if ports else port)}"

            text = re.sub(rf"(?<![\w.-]){re.escape(host)}:(\d+)", address, text)
            # A DNS name left without a port could not be mapped (a bare short
            # name may be any word, such as a token naming its Service).
            assert "." not in host or not re.search(rf"(?<![\w.-]){re.escape(host)}(?![\w.-])", text), \
                f"pod {pod.name}: {host} without a port in {text!r}"
        if mounts:
            # One pass, longest first: a local directory may itself start with a mount path (/tmp).
            paths = "|".join(re.escape(path) for path in sorted(mounts, key=len, reverse=True))
            text = re.sub(rf"(?<![\w/])({paths})(?=/|$|[,:])", lambda m: str(mounts[m.group(1)]), text)
        return text

    def _command(self, pod: Pod, env: dict) -> list:
        container = pod.container
        argv = [expand(a, env) for a in container.get("command", []) + container.get("args", [])]
        assert argv, f"pod {pod.name}: the container names no command"
        program = {"openduck": openduck_bin(), "etcd": shutil.which("etcd") or "/usr/bin/etcd"}.get(argv[0])
        assert program, f"pod {pod.name}: no local program stands for {argv[0]}"
        if argv[0] == "openduck":
            unknown = {n for n in env if n.startswith("OPENDUCK_")} - known_variables(argv[1])
            assert not unknown, f"pod {pod.name}: `openduck {argv[1]}` reads no {sorted(unknown)}"
        return [program, *argv[1:]]

    def _launch(self, pod: Pod):
        pod.dir.mkdir(parents=True, exist_ok=True)
        mounts = self._volumes(pod)
        env = self._environment(pod)
        argv = [self._localize(pod, arg, mounts) for arg in self._command(pod, env)]
        env = {name: self._localize(pod, value, mounts) for name, value in env.items()}
        pod.log = pod.dir / "log"
        log = open(pod.log, "ab")
        process_env = {"PATH": os.environ["PATH"], **env, **self.extra_env}
        pod.proc = subprocess.Popen(argv, env=process_env, stdout=log, stderr=subprocess.STDOUT, cwd=pod.dir,
                                    start_new_session=True)
        log.close()

    def _ready(self, pod: Pod) -> bool:
        probe = pod.container.get("readinessProbe") or pod.container.get("startupProbe")
        if not probe:
            return True
        try:
            if "grpc" in probe:
                return grpc_serving(pod.port(probe["grpc"]["port"]))
            if "httpGet" in probe:
                url = f"http://127.0.0.1:{pod.port(probe['httpGet']['port'])}{probe['httpGet'].get('path', '/')}"
                with urllib.request.urlopen(url, timeout=2) as response:
                    return 200 <= response.status < 400
            if "tcpSocket" in probe:
                socket.create_connection(("127.0.0.1", pod.port(probe["tcpSocket"]["port"])), timeout=2).close()
                return True
        except OSError:
            return False
        raise AssertionError(f"pod {pod.name}: a probe of a kind the simulation lacks: {probe}")

    def start(self, timeout_s=90):
        """Starts every pod at once, as Kubernetes does, dependents first
        (coordinators, then executors, then etcd) so that each must wait for
        what it needs; returns once every readiness probe passes."""
        for pod in sorted(self.pods, key=wave, reverse=True):
            self._launch(pod)
        deadline = time.monotonic() + timeout_s
        for pod in sorted(self.pods, key=wave):
            while not self._ready(pod):
                if pod.proc.poll() is not None:
                    raise AssertionError(f"pod {pod.name} exited with {pod.proc.returncode}:\n{self.tail(pod)}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"pod {pod.name} not ready within {timeout_s} s:\n{self.tail(pod)}")
                time.sleep(0.1)
        return self

    def endpoint(self, service: str, port: int, scheme="grpc") -> str:
        """The address of a Service (or a pod's DNS name), as a client URI."""
        pod, ports = self.hosts[service]
        return f"{scheme}://127.0.0.1:{pod.port(ports[port] if ports else port)}"

    def pod_endpoint(self, name: str, port: int, scheme="grpc") -> str:
        """The address of one pod's container port, as a client URI."""
        return f"{scheme}://127.0.0.1:{self.pod(name).port(port)}"

    def pod(self, name) -> Pod:
        (pod,) = [p for p in self.pods if p.name == name]
        return pod

    def tail(self, pod: Pod, size=3000) -> str:
        return pod.log.read_text(errors="replace")[-size:] if pod.log and pod.log.exists() else ""

    def stop(self) -> dict:
        """SIGTERM to every pod (coordinators first, etcd last), then SIGKILL
        after its grace period; returns each pod's exit code."""
        codes = {}
        for pod in sorted(self.pods, key=wave, reverse=True):
            if pod.proc is None:
                continue
            if pod.proc.poll() is None:
                pod.proc.send_signal(signal.SIGTERM)
                try:
                    pod.proc.wait(timeout=pod.spec.get("terminationGracePeriodSeconds", 30))
                except subprocess.TimeoutExpired:
                    os.killpg(pod.proc.pid, signal.SIGKILL)
                    pod.proc.wait()
            codes[pod.name] = pod.proc.returncode
        return codes


def wave(pod: Pod) -> int:
    """What a pod depends on: etcd (0) nothing, executors (1) etcd,
    coordinators (2) both."""
    if pod.container.get("command", [""])[0] == "etcd":
        return 0
    return 1 if pod.workload["kind"] == "StatefulSet" else 2


def decode(secret: dict) -> dict:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def selects(service: dict, pod: Pod) -> bool:
    labels = pod.workload["spec"]["template"]["metadata"].get("labels", {})
    selector = service["spec"].get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def expand(text: str, env: dict) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables are replaced, others left as written."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def grpc_serving(port: int) -> bool:
    """Whether grpc.health.v1 answers SERVING for the server as a whole, as a
    Kubernetes gRPC probe asks."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
        try:
            # HealthCheckRequest{service: ""} is the empty message; the answer
            # SERVING is field 1 (status) = 1.
            return check(b"", timeout=2) == b"\x08\x01"
        except grpc.RpcError:
            return False
