"""The metadata walk of the Flight SQL JDBC driver (ArrowDatabaseMetadata),
played with raw pyarrow.flight calls: every SqlInfo key it reads must be
present with the value type the Flight SQL specification gives (a missing
integer or boolean key crashes the driver), then catalogs, schemas and tables."""

import pyarrow.flight as flight
import pytest

from test_transactions_ingest import field, varint

STRING, BOOL, BIGINT, INT32, STRING_LIST, INT_MAP = range(6)

# key -> the union member the specification gives it.
JDBC_SQL_INFO = {
    0: STRING, 1: STRING, 2: STRING, 3: BOOL, 4: BOOL, 5: BOOL, 8: INT32, 9: BOOL,
    500: BOOL, 501: BOOL, 502: BOOL, 503: INT32, 504: STRING, 505: INT32, 506: BOOL,
    507: INT32, 508: STRING_LIST, 509: STRING_LIST, 510: STRING_LIST, 511: STRING_LIST,
    512: STRING_LIST, 513: STRING, 514: STRING, 515: BOOL, 516: BOOL, 517: INT_MAP,
    518: BOOL, 519: BOOL, 520: BOOL, 521: BOOL, 522: INT32, 523: BOOL, 524: BOOL,
    525: INT32, 526: INT32, 527: BOOL, 528: INT32, 529: STRING, 530: STRING, 531: STRING,
    532: BOOL, 533: INT32, 534: INT32, 535: INT32, 536: BOOL, 537: BOOL, 538: INT32,
    539: BOOL, 540: INT32, **{key: BIGINT for key in range(541, 556)}, 556: BOOL,
    557: BIGINT, 558: BIGINT, 559: BIGINT, 560: BIGINT, 561: BIGINT, 562: INT32,
    563: BOOL, 564: INT32, 565: BOOL, 566: BOOL, 567: INT32, 568: INT32, 569: INT32,
    570: INT32, 571: INT32, 572: BOOL, 573: BOOL, 574: BOOL, 575: BOOL, 576: BOOL,
}


def command(name, body=b""):
    type_url = f"type.googleapis.com/arrow.flight.protocol.sql.{name}".encode()
    return field(1, type_url) + field(2, body)


def fetch(client, cmd):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    return client.do_get(info.endpoints[0].ticket).read_all(), info


@pytest.fixture
def client(server):
    c = flight.FlightClient(server.uri.replace("grpc://", "grpc+tcp://"))
    yield c
    c.close()


def sql_info(client, keys=()):
    packed = b"".join(varint(k) for k in keys)
    table, _ = fetch(client, command("CommandGetSqlInfo", field(1, packed) if keys else b""))
    names = table.column("info_name").to_pylist()
    values = table.column("value").combine_chunks()
    return {name: (values.type_codes[i].as_py(), values[i].as_py()) for i, name in enumerate(names)}


def test_every_key_the_jdbc_driver_reads_has_its_type(client):
    info = sql_info(client)
    missing = sorted(set(JDBC_SQL_INFO) - set(info))
    assert not missing, f"SqlInfo keys missing: {missing}"
    wrong = {k: (info[k][0], want) for k, want in JDBC_SQL_INFO.items() if info[k][0] != want}
    assert not wrong, f"SqlInfo keys with the wrong value type (got, want): {wrong}"
    assert info[0][1] == "openduck"
    assert info[563][1] is True, "transactions are supported"
    assert info[504][1] == '"'


def test_unknown_keys_are_ignored(client):
    info = sql_info(client, [0, 99_999, 563])
    assert set(info) == {0, 563}


def test_the_metadata_walk(client, conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR)")
    catalogs, _ = fetch(client, command("CommandGetCatalogs"))
    assert catalogs.column("catalog_name").to_pylist() == ["mydb"]
    schemas, _ = fetch(client, command("CommandGetDbSchemas"))
    assert ("mydb", "main") in zip(schemas.column("catalog_name").to_pylist(), schemas.column("db_schema_name").to_pylist())
    # include_schema = true (field 5)
    tables, info = fetch(client, command("CommandGetTables", bytes([5 << 3, 1])))
    assert tables.schema.names == [
        "catalog_name", "db_schema_name", "table_name", "table_type", "table_schema",
    ]
    assert "parent" in tables.column("table_name").to_pylist()
    types, _ = fetch(client, command("CommandGetTableTypes"))
    assert types.column("table_type").to_pylist() == ["TABLE", "VIEW"]
