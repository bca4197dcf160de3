"""The metadata walk of the Flight SQL JDBC driver (ArrowDatabaseMetadata),
played with raw pyarrow.flight calls: every SqlInfo key it reads must be
present with the value type the Flight SQL specification gives (a missing
integer or boolean key crashes the driver), then catalogs, schemas and tables."""

import pyarrow as pa
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
        cur.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR, amount DECIMAL(12, 3))")
        cur.execute("CREATE TABLE child (id INTEGER, parent_id INTEGER REFERENCES parent (id))")
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
    row = tables.column("table_name").to_pylist().index("parent")
    parent = pa.ipc.read_schema(pa.py_buffer(tables.column("table_schema")[row].as_py()))
    amount = parent.field("amount").metadata
    assert amount[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == b"DECIMAL(12, 3)"
    assert amount[b"ARROW:FLIGHT:SQL:PRECISION"] == b"12"
    assert amount[b"ARROW:FLIGHT:SQL:SCALE"] == b"3"
    for key in ["IS_AUTO_INCREMENT", "IS_CASE_SENSITIVE", "IS_READ_ONLY", "IS_SEARCHABLE", "REMARKS"]:
        assert f"ARROW:FLIGHT:SQL:{key}".encode() in amount, key
    assert parent.field("name").metadata[b"ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE"] == b"1"

    # Keys: table = field 3 of GetPrimaryKeys / GetImportedKeys / GetExportedKeys.
    pks, _ = fetch(client, command("CommandGetPrimaryKeys", field(3, b"parent")))
    assert pks.schema.names == ["catalog_name", "db_schema_name", "table_name", "column_name", "key_sequence", "key_name"]
    assert pks.column("column_name").to_pylist() == ["id"]
    imported, _ = fetch(client, command("CommandGetImportedKeys", field(3, b"child")))
    assert imported.schema.names == [
        "pk_catalog_name", "pk_db_schema_name", "pk_table_name", "pk_column_name",
        "fk_catalog_name", "fk_db_schema_name", "fk_table_name", "fk_column_name",
        "key_sequence", "fk_key_name", "pk_key_name", "update_rule", "delete_rule",
    ]
    assert imported.column("pk_table_name").to_pylist() == ["parent"]
    assert imported.column("fk_column_name").to_pylist() == ["parent_id"]
    exported, _ = fetch(client, command("CommandGetExportedKeys", field(3, b"parent")))
    assert exported.column("fk_table_name").to_pylist() == ["child"]
    # GetCrossReference: pk_table = field 3, fk_table = field 6.
    cross, _ = fetch(client, command("CommandGetCrossReference", field(3, b"parent") + field(6, b"child")))
    assert cross.num_rows == 1
    none, _ = fetch(client, command("CommandGetCrossReference", field(3, b"child") + field(6, b"parent")))
    assert none.num_rows == 0

    xdbc, _ = fetch(client, command("CommandGetXdbcTypeInfo"))
    names = xdbc.column("type_name").to_pylist()
    for name in ["BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "VARCHAR", "BLOB", "DATE", "TIMESTAMP"]:
        assert name in names
    types, _ = fetch(client, command("CommandGetTableTypes"))
    assert types.column("table_type").to_pylist() == ["TABLE", "VIEW"]
