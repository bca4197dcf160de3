"""Comparing openduck's rows for a query with one DuckDB's: table names
qualified for a placement of tables over executors, and rows that must be
equal up to the rounding of fractional numbers."""

from decimal import Decimal

import pytest
import sqlglot
from sqlglot import exp


def qualified(sql: str, database_of: dict[str, str]) -> str:
    """`sql` with every table of `database_of` named db.main.table (sqlglot
    parses it, so columns and CTEs named like tables stay as they are)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name in database_of and name not in ctes and not table.args.get("db"):
            table.set("db", exp.to_identifier("main"))
            table.set("catalog", exp.to_identifier(database_of[name]))
    return tree.sql(dialect="duckdb")


def normalized(rows):
    return [tuple(float(v) if isinstance(v, (Decimal, float)) else v for v in row) for row in rows]


def order_of(sql: str):
    """How the rows of `sql` are ordered: `None` when they are not, else the
    positions of the ORDER BY keys among its columns (every column when a
    key is not one of them); and the LIMIT, if a constant one."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    order = tree.args.get("order")
    limit = tree.args.get("limit")
    limit = int(limit.expression.this) if limit and isinstance(limit.expression, exp.Literal) else None
    if not order:
        return None, limit
    names = [select.alias_or_name.lower() for select in tree.selects]
    positions = []
    for key in order.expressions:
        key = key.this
        if isinstance(key, exp.Column) and key.name.lower() in names:
            positions.append(names.index(key.name.lower()))
        elif isinstance(key, exp.Literal) and key.is_int:
            positions.append(int(key.this) - 1)
        else:
            return list(range(len(names))), limit
    return positions, limit


def rounded(value):
    """A value as a sort or group key: fractions to 9 significant digits, so
    that sums added up in another order compare equal."""
    return float(f"{value:.9g}") if isinstance(value, float) else value


def assert_same_rows(actual, expected, sql):
    """The rows of `sql` from openduck (`actual`) are DuckDB's (`expected`):
    the same multiset, and where `sql` orders them, in the same order of its
    ORDER BY keys. Rows that tie on every key may come in any order, and
    under a LIMIT the last tie may be cut at different rows."""
    actual, expected = normalized(actual), normalized(expected)
    assert len(actual) == len(expected), (len(actual), len(expected))
    keys, limit = order_of(sql)
    if keys is None:
        runs = [(actual, expected)]
    else:
        key = lambda row: tuple(rounded(row[k]) for k in keys)  # noqa: E731
        assert [key(row) for row in actual] == [key(row) for row in expected]
        starts = [i for i in range(len(expected)) if i == 0 or key(expected[i]) != key(expected[i - 1])]
        bounds = list(zip(starts, starts[1:] + [len(expected)]))
        if bounds and limit is not None and len(expected) >= limit:
            # The LIMIT may have cut the last tie at other rows.
            bounds.pop()
        runs = [(actual[a:b], expected[a:b]) for a, b in bounds]
    for got_rows, want_rows in runs:
        by_value = lambda row: repr(tuple(rounded(v) for v in row))  # noqa: E731
        for got, want in zip(sorted(got_rows, key=by_value), sorted(want_rows, key=by_value)):
            assert len(got) == len(want)
            for g, w in zip(got, want):
                if isinstance(w, float) and g is not None:
                    assert g == pytest.approx(w, rel=1e-6, abs=1e-6), (got, want)
                else:
                    assert g == w, (got, want)


def rows_of(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(row.values()) for row in cur.fetch_arrow_table().to_pylist()]
