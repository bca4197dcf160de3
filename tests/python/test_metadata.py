"""ADBC's metadata calls: get_info, get_objects, get_table_schema, table types."""

import pyarrow as pa


def setup(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE readings (sensor VARCHAR, taken_at TIMESTAMP, value DOUBLE)")
        cur.execute("CREATE VIEW hot AS SELECT * FROM readings WHERE value > 30")
        cur.execute("CREATE SCHEMA archive")
        cur.execute("CREATE TABLE archive.old_readings (sensor VARCHAR)")


def test_get_info(conn):
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "openduck"
    assert info["vendor_version"]
    assert info["vendor_arrow_version"] == "58.4"


def test_get_objects_lists_catalogs_schemas_tables_and_columns(conn):
    setup(conn)
    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    catalog = next(c for c in objects if c["catalog_name"] == "mydb")
    schemas = {s["db_schema_name"]: s for s in catalog["catalog_db_schemas"]}
    assert {"main", "archive"} <= set(schemas)
    tables = {t["table_name"]: t for t in schemas["main"]["db_schema_tables"]}
    assert tables["readings"]["table_type"] == "TABLE"
    assert tables["hot"]["table_type"] == "VIEW"
    columns = [c["column_name"] for c in tables["readings"]["table_columns"]]
    assert columns == ["sensor", "taken_at", "value"]

    filtered = conn.adbc_get_objects(depth="tables", table_name_filter="%readings").read_all().to_pylist()
    names = sorted(
        t["table_name"]
        for c in filtered
        for s in c["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    )
    assert names == ["old_readings", "readings"]


def test_get_table_schema_and_types(conn):
    setup(conn)
    schema = conn.adbc_get_table_schema("readings")
    assert schema == pa.schema(
        [("sensor", pa.string()), ("taken_at", pa.timestamp("us")), ("value", pa.float64())]
    )
    assert sorted(conn.adbc_get_table_types()) == ["TABLE", "VIEW"]
