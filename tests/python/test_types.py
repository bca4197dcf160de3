"""Every DuckDB type with an Arrow mapping round-trips: same Arrow type and the
same values (NULLs included) as the duckdb package gives for the same SQL."""

import math

import duckdb
import pyarrow as pa
import pytest

ENUM = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')"

CASES = {
    "TINYINT": ["-128", "127"],
    "SMALLINT": ["-32768", "32767"],
    "INTEGER": ["-2147483648", "2147483647"],
    "BIGINT": ["-9223372036854775808", "9223372036854775807"],
    "UTINYINT": ["0", "255"],
    "USMALLINT": ["0", "65535"],
    "UINTEGER": ["0", "4294967295"],
    "UBIGINT": ["0", "18446744073709551615"],
    "HUGEINT": ["-12345678901234567890123456789", "99999999999999999999999999999999999999"],
    "DECIMAL(4,1)": ["-999.9", "0.1"],
    "DECIMAL(9,4)": ["12345.6789", "-0.0001"],
    "DECIMAL(18,6)": ["123456789012.345678", "-1"],
    "DECIMAL(38,10)": ["1234567890123456789012345678.0123456789", "-0.0000000001"],
    "FLOAT": ["1.5", "'NaN'", "'inf'", "'-inf'", "-0.0"],
    "DOUBLE": ["3.141592653589793", "'NaN'", "'infinity'", "'-infinity'", "1e308"],
    "VARCHAR": ["'grüße'", "'世界'", "''", "'🦆 quack'"],
    "BLOB": ["'\\xAA\\x00\\xFF'::BLOB", "''::BLOB"],
    "BOOLEAN": ["true", "false"],
    "DATE": ["'2024-02-29'", "'1970-01-01'", "'1492-10-12'"],
    "TIME": ["'12:34:56.789123'", "'00:00:00'", "'23:59:59.999999'"],
    "TIMESTAMP": ["'2024-01-01 12:00:00.123456'", "'1900-01-01 00:00:00'"],
    "TIMESTAMP_S": ["'2024-01-01 12:00:01'"],
    "TIMESTAMP_MS": ["'2024-01-01 12:00:00.123'"],
    "TIMESTAMP_NS": ["'2024-01-01 12:00:00.123456789'"],
    "TIMESTAMPTZ": ["'2024-01-01 12:00:00+02'", "'1999-12-31 23:59:59+00'"],
    "INTERVAL": ["INTERVAL 1 MONTH", "INTERVAL '1 day 2 hours 3 microseconds'", "INTERVAL (-5) YEAR"],
    "UUID": ["'123e4567-e89b-12d3-a456-426614174000'", "'00000000-0000-0000-0000-000000000000'"],
    "mood": ["'sad'", "'happy'"],
    "INTEGER[]": ["[1, 2, NULL]", "[]"],
    "VARCHAR[][]": ["[['a'], [], NULL]"],
    "STRUCT(a INTEGER, b VARCHAR)": ["{'a': 1, 'b': 'x'}", "{'a': NULL, 'b': NULL}"],
    "MAP(VARCHAR, INTEGER)": ["MAP {'k': 1, 'j': NULL}", "MAP {}"],
}


def case_sql(type_name, literals):
    rows = ", ".join(f"(({literal})::{type_name})" for literal in literals + ["NULL"])
    return f"SELECT v FROM (VALUES {rows}) t(v)"


def create_type_tables(cur):
    """One table `types_<index>` per type of CASES, column `v`, through cursor `cur`."""
    cur.execute(ENUM)
    for index, type_name in enumerate(CASES):
        cur.execute(f"CREATE TABLE types_{index} AS {case_sql(type_name, CASES[type_name])}")


def same(a, b):
    """Equality for float lists where NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def reference():
    db = duckdb.connect()
    db.execute(ENUM)
    return db


@pytest.mark.parametrize("type_name", list(CASES))
def test_type_round_trips(conn, reference, type_name):
    sql = case_sql(type_name, CASES[type_name])
    want = reference.sql(sql).arrow()
    if isinstance(want, pa.RecordBatchReader):
        want = want.read_all()
    with conn.cursor() as cur:
        cur.execute(ENUM)
        cur.execute(sql)
        got = cur.fetch_arrow_table()
    got_type, want_type = got.schema.field("v").type, want.schema.field("v").type
    got_column, want_column = got.column("v"), want.column("v")
    if pa.types.is_timestamp(want_type) and want_type.tz == "Etc/UTC":
        # The duckdb package (built with ICU) names the session's zone; the
        # executor's DuckDB has no ICU and reports UTC. Same instants.
        assert got_type == pa.timestamp(want_type.unit, tz="UTC"), type_name
        want_column = want_column.cast(got_type)
    else:
        assert got_type == want_type, type_name
    assert len(got_column) == len(CASES[type_name]) + 1
    assert got_column[len(got_column) - 1].as_py() is None, "the NULL row stays NULL"
    if pa.types.is_floating(want_type):
        got_values, want_values = got_column.to_pylist(), want_column.to_pylist()
        assert same(got_values, want_values), f"{type_name}: {got_values!r} != {want_values!r}"
    else:
        assert got_column.combine_chunks().equals(want_column.combine_chunks()), (
            f"{type_name}: {got_column} != {want_column}"
        )
