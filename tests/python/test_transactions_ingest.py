"""Bulk ingest, transactions, sessions, schemas without running, partitions
and cancellation through the ADBC Flight SQL driver and pyarrow.flight."""

import time

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from openduck_harness import Server


def people(start, count):
    ids = list(range(start, start + count))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": pa.array([None if i % 3 == 0 else f"n{i}" for i in ids], pa.string()),
        "score": pa.array([i / 4 for i in ids], pa.float64()),
    })


def scalar(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_ingest_in_every_mode(conn):
    with conn.cursor() as cur:
        assert cur.adbc_ingest("people", people(0, 5000), mode="create") == 5000
        # A stream of many batches is appended batch by batch.
        reader = pa.RecordBatchReader.from_batches(
            people(0, 1).schema, (people(5000 + i * 100, 100).to_batches()[0] for i in range(50))
        )
        assert cur.adbc_ingest("people", reader, mode="append") == 5000
        cur.execute("SELECT count(*), sum(id), count(name) FROM people")
        assert cur.fetchone() == (10000, sum(range(10000)), 10000 - len(range(0, 10000, 3)))

        with pytest.raises(adbc_driver_manager.Error) as exists:
            cur.adbc_ingest("people", people(0, 1), mode="create")
        assert "already exists" in str(exists.value).lower()

        assert cur.adbc_ingest("people", people(7, 3), mode="replace") == 3
        cur.execute("SELECT min(id), max(id), count(*) FROM people")
        assert cur.fetchone() == (7, 9, 3)
        assert cur.adbc_ingest("people", people(10, 2), mode="create_append") == 2
        assert cur.adbc_ingest("fresh", people(0, 4), mode="create_append") == 4
        cur.execute("SELECT count(*) FROM people")
        assert cur.fetchone() == (5,)

        with pytest.raises(adbc_driver_manager.Error) as missing:
            cur.adbc_ingest("nobody", people(0, 1), mode="append")
        assert "nobody" in str(missing.value)

        # Round trip: what comes back is what went in.
        cur.execute("SELECT * FROM fresh ORDER BY id")
        assert cur.fetch_arrow_table() == people(0, 4)


def test_ingest_into_another_catalog_schema_and_temporary(server):
    server.stop()
    server.databases = ("mydb", "other")
    server.start()
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA other.staging")
        cur.adbc_ingest("t", people(0, 3), mode="create", catalog_name="other", db_schema_name="staging")
        cur.execute("SELECT count(*) FROM other.staging.t")
        assert cur.fetchone() == (3,)

        cur.adbc_ingest("scratch", people(0, 6), mode="create", temporary=True)
        cur.execute("SELECT count(*) FROM scratch")
        assert cur.fetchone() == (6,)
    # Another connection does not see the temporary table.
    with server.connect() as other, other.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error):
            cur.execute("SELECT count(*) FROM scratch")


def test_commit_and_rollback_with_autocommit_off(server):
    with server.connect() as setup, setup.cursor() as cur:
        cur.execute("CREATE TABLE ledger (x INTEGER)")
    # DBAPI's default: autocommit off, so statements wait for commit().
    with server.connect(autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ledger VALUES (1), (2)")
            cur.adbc_ingest("ledger", pa.table({"x": pa.array([3], pa.int32())}), mode="append")
            cur.execute("SELECT count(*) FROM ledger")
            assert cur.fetchone() == (3,)
            with server.connect() as outside:
                assert scalar(outside, "SELECT count(*) FROM ledger") == 0
            conn.rollback()
            cur.execute("SELECT count(*) FROM ledger")
            assert cur.fetchone() == (0,)

            cur.execute("INSERT INTO ledger VALUES (10)")
            cur.executemany("INSERT INTO ledger VALUES (?)", [(20,), (30,)])
            conn.commit()
        with server.connect() as outside:
            assert scalar(outside, "SELECT sum(x) FROM ledger") == 60


def test_a_dropped_connection_rolls_back_its_transaction(server):
    with server.connect() as setup, setup.cursor() as cur:
        cur.execute("CREATE TABLE ledger (x INTEGER)")
    conn = server.connect(autocommit=False)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO ledger VALUES (1)")
    conn.close()
    # The server notices the closed connection and rolls back; poll for it.
    deadline = time.monotonic() + 10
    with server.connect() as outside:
        while True:
            with outside.cursor() as cur:
                cur.execute("INSERT INTO ledger VALUES (2)")
            if scalar(outside, "SELECT count(*) FROM ledger") == 1:
                break
            assert time.monotonic() < deadline, "the write of the closed connection became visible"
            time.sleep(0.05)
        assert scalar(outside, "SELECT sum(x) FROM ledger") == 2


def test_current_catalog_and_schema_are_session_options(server):
    server.stop()
    server.databases = ("mydb", "other")
    server.start()
    with server.connect() as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE other.main.only_here AS SELECT 42 AS x")
            cur.execute("CREATE SCHEMA mydb.reports")
            cur.execute("CREATE TABLE mydb.reports.r AS SELECT 7 AS y")
        assert conn.adbc_current_catalog == "mydb"
        conn.adbc_current_catalog = "other"
        assert conn.adbc_current_catalog == "other"
        assert scalar(conn, "SELECT x FROM only_here") == 42
        conn.adbc_current_catalog = "mydb"
        conn.adbc_current_db_schema = "reports"
        assert conn.adbc_current_db_schema == "reports"
        assert scalar(conn, "SELECT y FROM r") == 7
        with pytest.raises(adbc_driver_manager.Error):
            conn.adbc_current_catalog = "no_such_db"
    # Options belong to their connection.
    with server.connect() as fresh:
        assert fresh.adbc_current_catalog == "mydb"


def test_execute_schema_and_partitions(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT range AS id, 'x' || range AS s FROM range(1000)")
        schema = cur.adbc_execute_schema("SELECT id, s, id * 2.5 AS f FROM t")
        assert schema.names == ["id", "s", "f"]
        assert schema.field("id").type == pa.int64()
        assert schema.field("s").type == pa.string()

        partitions, schema = cur.adbc_execute_partitions("SELECT sum(id) AS total FROM t")
        assert len(partitions) == 1
        cur.adbc_read_partition(partitions[0])
        assert cur.fetchone() == (sum(range(1000)),)


def test_results_never_carry_view_types(server):
    """DuckDB emits Arrow view types when asked to; the server casts them to
    the classic types older drivers read. A transaction keeps the setting on
    the session's connection for the query that follows it."""
    with server.connect(autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SET produce_arrow_string_view = true")
        cur.execute("SET arrow_output_version = '1.5'")
        cur.execute("SELECT 'a much longer string than twelve bytes' AS s, ['x', 'y'] AS l, 'x'::BLOB AS b")
        table = cur.fetch_arrow_table()
        conn.rollback()
    assert table.schema.field("s").type == pa.string()
    assert table.schema.field("l").type == pa.list_(pa.string())
    assert table.schema.field("b").type == pa.binary()
    assert table.column("s").to_pylist() == ["a much longer string than twelve bytes"]


def raw_client(server):
    return flight.FlightClient(server.uri.replace("grpc://", "grpc+tcp://"))


def test_cancel_flight_info_and_cancel_query(server):
    """CancelFlightInfo through pyarrow.flight's raw actions (no driver wraps
    it); the Rust integration tests check that a running query stops. Here:
    the result codes, and a malformed request."""
    client = raw_client(server)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(encode_statement_query("SELECT 42")))
    # CancelFlightInfoRequest{info = 1}; pyarrow has no wrapper for it.
    results = list(client.do_action(flight.Action("CancelFlightInfo", field(1, info.serialize()))))
    assert [r.body.to_pybytes() for r in results] == [b"\x08\x01"], "CancelFlightInfoResult{CANCELLED}"
    # A statement that already ran when planned cannot be cancelled.
    ddl = client.get_flight_info(flight.FlightDescriptor.for_command(encode_statement_query("CREATE TABLE t (x INT)")))
    results = list(client.do_action(flight.Action("CancelFlightInfo", field(1, ddl.serialize()))))
    assert [r.body.to_pybytes() for r in results] == [b"\x08\x03"], "CancelFlightInfoResult{NOT_CANCELLABLE}"
    with pytest.raises(pa.ArrowInvalid):
        list(client.do_action(flight.Action("CancelFlightInfo", b"\xff\xff")))
    client.close()


def test_queries_start_when_planned_and_wait_for_their_ticket(tmp_path):
    """On `openduck serve` a query starts when its FlightInfo is asked for and
    waits for its ticket, at most half the pool's connections at a time (the
    rest run when redeemed, as before). More FlightInfos than may wait,
    redeemed in reverse order, each give their own rows; a cancelled one gives
    none; a ticket redeemed twice runs again. A write that sqlparser reads as
    a query still runs once, when planned."""
    server = Server(tmp_path / "data", extra_args=["--max-connections", "4"], env={"OPENDUCK_LOG": "info"}).start()
    try:
        client = raw_client(server)

        def info(sql):
            return client.get_flight_info(flight.FlightDescriptor.for_command(encode_statement_query(sql)))

        def rows(info):
            return client.do_get(info.endpoints[0].ticket).read_all()

        infos = [info(f"SELECT {n} AS n, range AS r FROM range({n})") for n in range(12)]
        assert rows(infos[0]).num_rows == 0
        cancel = flight.Action("CancelFlightInfo", field(1, infos[1].serialize()))
        assert [r.body.to_pybytes() for r in client.do_action(cancel)] == [b"\x08\x01"]
        with pytest.raises(flight.FlightCancelledError):
            rows(infos[1])
        for n in range(11, 1, -1):
            table = rows(infos[n])
            assert table.column("r").to_pylist() == list(range(n))
            assert set(table.column("n").to_pylist()) <= {n}
        assert rows(infos[7]).column("r").to_pylist() == list(range(7))
        started = server.log_path.read_text().count("streaming a query started at planning")
        assert started == 1, f"{started} queries streamed from their start at planning; only the first could"

        rows(info("CREATE TABLE t (x INTEGER)"))
        insert = info("WITH c AS (SELECT 1 AS x) INSERT INTO t SELECT x FROM c")
        assert rows(insert).to_pylist() == [{"Count": 1}]
        with pytest.raises(KeyError, match="already fetched"):
            rows(insert)
        assert rows(info("SELECT count(*) AS n FROM t")).to_pylist() == [{"n": 1}]
        client.close()
    finally:
        server.stop()


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload


def encode_statement_query(sql):
    """A Flight SQL CommandStatementQuery packed in google.protobuf.Any, by hand:
    field 1 (query) of the command, inside field 1 (type_url) and 2 (value)."""
    command = field(1, sql.encode())
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return field(1, type_url) + field(2, command)
