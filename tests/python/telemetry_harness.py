"""Real receivers of openduck's telemetry: an OTLP/gRPC collector in this
process (grpcio and the OpenTelemetry protos from PyPI) and a Prometheus
server (Debian's prometheus package) that scrapes `/metrics`."""

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from cluster_harness import free_port, terminate


class OtlpCollector(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    """Receives OTLP traces and metrics on a loopback port and keeps them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.trace_requests = []
        self.metric_requests = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop(grace=None)

    def Export(self, request, context):  # noqa: N802 - the gRPC method's name
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.trace_requests.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()
            self.metric_requests.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    def spans(self):
        """Every span received: dicts with service, name, kind, trace and span ids, parent, attributes."""
        out = []
        with self.lock:
            requests = list(self.trace_requests)
        for request in requests:
            for resource_spans in request.resource_spans:
                service = attribute(resource_spans.resource.attributes, "service.name")
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        out.append({
                            "service": service,
                            "name": span.name,
                            "kind": span.kind,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": {a.key: value_of(a.value) for a in span.attributes},
                        })
        return out

    def metric_points(self, name):
        """The latest value of each data point of metric `name` (sums and
        gauges), by service and attributes."""
        latest = {}
        with self.lock:
            requests = list(self.metric_requests)
        for request in requests:
            for resource_metrics in request.resource_metrics:
                service = attribute(resource_metrics.resource.attributes, "service.name")
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        if metric.name != name:
                            continue
                        data = metric.sum if metric.HasField("sum") else metric.gauge
                        for point in data.data_points:
                            key = (service, tuple(sorted((a.key, value_of(a.value)) for a in point.attributes)))
                            value = point.as_int if point.HasField("as_int") else point.as_double
                            latest[key] = value
        return latest


def attribute(attributes, key):
    for item in attributes:
        if item.key == key:
            return value_of(item.value)
    return None


def value_of(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Prometheus:
    """A Prometheus server scraping `targets` every half second."""

    def __init__(self, root: Path, targets):
        self.root = root
        self.targets = targets
        self.port = free_port()
        self.proc = None

    def start(self):
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms"},
            "scrape_configs": [{"job_name": "openduck", "static_configs": [{"targets": self.targets}]}],
        }))
        self.log = open(self.root / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=self.log,
        )
        return self

    def query(self, promql):
        """The result vector of an instant query."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=2) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def stop(self):
        if self.proc is not None:
            terminate(self.proc)
            self.log.close()
            self.proc = None


def scrape(address):
    """The text a /metrics endpoint serves."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.read().decode()


def sample(text, name, **labels):
    """The value of the sample `name{labels}` in exposition text (labels
    given must match; others may be present), summed over matches."""
    total = None
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        present = dict(part.split("=", 1) for part in label_text.rstrip("}").split(",") if part)
        if all(present.get(k) == f'"{v}"' for k, v in labels.items()):
            total = (total or 0) + float(value)
    return total
