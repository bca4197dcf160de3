"""Telemetry against real receivers: `/metrics` checked by promtool and
scraped by a real Prometheus, OTLP traces and metrics received by a real
gRPC collector, JSON logs that carry trace ids. The values must match what
ran."""

import json
import subprocess

import pyarrow as pa
import pytest

from cluster_harness import Coordinator, Etcd, Executor, free_port, wait_until
from openduck_harness import Server
from telemetry_harness import OtlpCollector, Prometheus, sample, scrape

SERVER_KIND, CLIENT_KIND = 2, 3  # OTLP's SpanKind


def fetched(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def test_metrics_count_what_ran_pass_promtool_and_reach_prometheus(tmp_path):
    metrics = f"127.0.0.1:{free_port()}"
    server = Server(tmp_path / "data", extra_args=["--metrics-listen", metrics]).start()
    prometheus = None
    try:
        rows = 0
        with server.connect() as conn, conn.cursor() as cur:
            rows += len(fetched(cur, "CREATE TABLE t AS SELECT range AS id FROM range(1000)"))
            for _ in range(3):
                rows += len(fetched(cur, "SELECT id FROM t WHERE id < 100"))
            with pytest.raises(Exception, match="no_such_table"):
                cur.execute("SELECT * FROM no_such_table")
        text = scrape(metrics)

        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr + text

        # The ADBC driver prepares each new statement (the same SQL again
        # reuses it), then asks for its FlightInfo and fetches; the bad one
        # fails at the prepare, with NOT_FOUND.
        assert sample(text, "openduck_calls_total", method="DoAction", kind="prepare", code="OK") == 2
        assert sample(text, "openduck_calls_total", method="DoAction", kind="prepare", code="NOT_FOUND") == 1
        assert sample(text, "openduck_calls_total", method="GetFlightInfo", kind="prepared_query", code="OK") == 4
        # (and one fetch of the driver's own metadata query when it connects)
        assert sample(text, "openduck_calls_total", method="DoGet", kind="fetch", code="OK") >= 4
        assert sample(text, "openduck_call_duration_seconds_count", method="DoGet", code="OK") >= 4
        assert sample(text, "openduck_rows_streamed_total", receiver="client") == rows == 301
        assert sample(text, "openduck_bytes_streamed_total", receiver="client") > rows * 8
        assert sample(text, "openduck_storage_uploaded_bytes_total", database="mydb") > 0
        assert sample(text, "openduck_storage_publish_duration_seconds_count", database="mydb") >= 1
        assert sample(text, "openduck_connections_open", server="flight_sql") is not None
        assert sample(text, "openduck_executor_connections_in_use") is not None

        prometheus = Prometheus(tmp_path / "prometheus", [metrics]).start()
        promql = 'openduck_calls_total{method="GetFlightInfo",kind="prepared_query",code="OK"}'
        scraped = wait_until(lambda: prometheus.query(promql), timeout_s=30, what="Prometheus to scrape openduck")
        assert float(scraped[0]["value"][1]) == 4
    finally:
        if prometheus:
            prometheus.stop()
        server.stop()


@pytest.fixture
def traced_cluster(tmp_path):
    """Two executors (sales, crm) and a coordinator exporting to a collector,
    the coordinator logging JSON."""
    collector = OtlpCollector().start()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    etcd = Etcd(tmp_path / "etcd").start()
    started = []
    try:
        for index, database in enumerate(["sales", "crm"]):
            executor = Executor(tmp_path / f"exec-{index}", etcd, f"exec-{index}", [database])
            executor.env.update(otel)
            started.append(executor.start())
        coordinator = Coordinator(tmp_path / "coordinator", etcd, extra_args=["--log-format", "json"])
        coordinator.env.update(otel)
        started.append(coordinator.start())
        with coordinator.connect() as conn:
            wait_until(lambda: len(conn.adbc_get_objects(depth="catalogs").read_all()) >= 2, what="executors")
            with conn.cursor() as cur:
                orders = pa.table({"o_id": list(range(100)), "o_cust": [i % 10 for i in range(100)]})
                customers = pa.table({"c_id": list(range(10)), "c_name": [f"c{i}" for i in range(10)]})
                cur.adbc_ingest("orders", orders, mode="create", catalog_name="sales")
                cur.adbc_ingest("customers", customers, mode="create", catalog_name="crm")
        yield {"collector": collector, "coordinator": coordinator}
    finally:
        for process in reversed(started):
            process.stop()
        etcd.stop()
        collector.stop()


def test_a_query_across_two_executors_is_one_trace(traced_cluster):
    collector, coordinator = traced_cluster["collector"], traced_cluster["coordinator"]
    with coordinator.connect() as conn, conn.cursor() as cur:
        rows = fetched(cur, "SELECT c.c_name, count(*) FROM crm.main.customers c "
                            "JOIN sales.main.orders o ON o.o_cust = c.c_id GROUP BY c.c_name")
    assert len(rows) == 10

    def the_trace():
        spans = collector.spans()
        for root in spans:
            if root["service"] == "openduck-coordinator" and root["name"] == "GetFlightInfo" and not root["parent"]:
                trace = [s for s in spans if s["trace_id"] == root["trace_id"]]
                served = [s for s in trace if s["service"] == "openduck-executor" and s["kind"] == SERVER_KIND]
                if len(served) >= 2:
                    return root, trace, served
        return None

    # One statement, one trace: planning (GetFlightInfo), then the fetch
    # (DoGet, linked through the ticket), and each fragment on its executor.
    root, trace, served = wait_until(the_trace, what="a trace spanning both executors")
    by_id = {span["span_id"]: span for span in trace}
    names = {(span["service"], span["name"]) for span in trace}
    assert {("openduck-coordinator", "route"), ("openduck-coordinator", "plan")} <= names, names
    (fetch,) = [s for s in trace if s["service"] == "openduck-coordinator" and s["name"] == "DoGet"
                and s["kind"] == SERVER_KIND]
    assert fetch["parent"] == root["span_id"]
    executors = set()
    for span in served:
        assert span["name"] == "DoGet"
        executors.add(span["attributes"]["openduck.executor"])
        # The executor's span is a child of the coordinator's call to it,
        # itself inside the client's DoGet on the coordinator.
        caller = by_id[span["parent"]]
        assert caller["service"] == "openduck-coordinator" and caller["kind"] == CLIENT_KIND
        assert caller["attributes"]["openduck.executor"] == span["attributes"]["openduck.executor"]
        ancestor = caller
        while ancestor["parent"] and ancestor is not fetch:
            ancestor = by_id[ancestor["parent"]]
        assert ancestor is fetch
    assert executors == {"exec-0", "exec-1"}
    assert fetch["attributes"]["rpc.grpc.status_code"] == 0

    # The coordinator's JSON log line about this query carries its trace id.
    lines = [json.loads(line) for line in coordinator.log_path.read_text().splitlines() if line.startswith("{")]
    running = [line for line in lines if line.get("message") == "executing a query across executors"]
    assert running and running[-1]["trace_id"] == root["trace_id"]

    # Metrics over OTLP agree with what ran.
    def exported():
        points = collector.metric_points("openduck_rows_streamed")
        return points.get(("openduck-coordinator", (("receiver", "client"),)))

    assert wait_until(exported, what="rows streamed over OTLP") == 10
    calls = collector.metric_points("openduck_calls")
    key = ("openduck-coordinator", (("code", "OK"), ("kind", "fetch"), ("method", "DoGet")))
    assert calls.get(key, 0) >= 1
