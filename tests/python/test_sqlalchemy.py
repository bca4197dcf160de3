"""flightsql-dbapi under SQLAlchemy, the way Superset uses it: create an
engine from a URL, list tables and columns with the inspector, and read a
query into pandas. (flightsql-dbapi pins SQLAlchemy below 2.0, which
pandas' read_sql no longer accepts; Superset builds its frames from the
fetched rows, as here.)"""

import flightsql.sqlalchemy  # noqa: F401  registers datafusion+flightsql://, as Superset's engine spec does
import pandas as pd
import sqlalchemy
from sqlalchemy import inspect, text


def engine_for(server):
    host_port = server.uri.split("://", 1)[1]
    # feature-sqlalchemy-primary-keys=on makes the dialect ask GetPrimaryKeys.
    url = f"datafusion+flightsql://{host_port}?insecure=true&feature-sqlalchemy-primary-keys=on"
    return sqlalchemy.create_engine(url)


def test_superset_walk(server, conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, region VARCHAR, amount DOUBLE, day DATE)")
        cur.execute("INSERT INTO sales SELECT i, 'r' || (i % 3), i * 1.5, DATE '2026-01-01' + i::INTEGER FROM range(30) t(i)")
        cur.execute("CREATE VIEW big_sales AS SELECT * FROM sales WHERE amount > 20")

    engine = engine_for(server)
    inspector = inspect(engine)
    assert "main" in inspector.get_schema_names()
    tables = inspector.get_table_names(schema="main")
    assert "sales" in tables and "big_sales" in tables
    columns = {c["name"]: c for c in inspector.get_columns("sales", schema="main")}
    assert list(columns) == ["id", "region", "amount", "day"]
    assert isinstance(columns["amount"]["type"], sqlalchemy.types.Float)
    assert inspector.get_pk_constraint("sales", schema="main")["constrained_columns"] == ["id"]

    # As Superset does: run through the engine, build the frame from the rows.
    with engine.connect() as connection:
        result = connection.execute(
            text("SELECT region, sum(amount) AS total, count(*) AS n FROM sales GROUP BY region ORDER BY region")
        )
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    assert frame["region"].tolist() == ["r0", "r1", "r2"]
    assert frame["n"].tolist() == [10, 10, 10]
    assert frame["total"].sum() == sum(i * 1.5 for i in range(30))
    engine.dispose()
