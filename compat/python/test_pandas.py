"""pandas over SQLAlchemy (psycopg 3): read_sql of a typed table and of a parameterised
query, to_sql then read_sql_table, SQLSTATEs."""

import datetime as dt
import decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from compat_common import SQLALCHEMY_URL, VALUES, create_types_table_sql

TABLE = "compat_pandas_types"
OUT = "compat_pandas_out"


@pytest.fixture(scope="module")
def engine():
    eng = sa.create_engine(SQLALCHEMY_URL.format(driver="postgresql+psycopg"), poolclass=sa.pool.NullPool)
    with eng.begin() as c:
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {OUT}")
        c.exec_driver_sql(create_types_table_sql(TABLE))
        table = sa.Table(TABLE, sa.MetaData(), autoload_with=c)
        c.execute(table.insert(), {"id": 1, **VALUES})
        c.execute(table.insert(), {"id": 2})
    yield eng
    eng.dispose()


def test_read_sql_every_type(engine):
    df = pd.read_sql(f"SELECT * FROM {TABLE} ORDER BY id", engine)
    assert list(df.columns) == ["id"] + list(VALUES)
    assert len(df) == 2
    assert str(df["id"].dtype) == "int64"
    assert str(df["c_float8"].dtype) == "float64"
    assert str(df["c_timestamptz"].dtype).startswith("datetime64[") and "UTC" in str(df["c_timestamptz"].dtype)
    assert str(df["c_timestamp"].dtype).startswith("datetime64[")
    first = df.iloc[0]
    for name, value in VALUES.items():
        got = first[name]
        if name == "c_timestamptz":
            got = got.to_pydatetime()
        elif name == "c_timestamp":
            got = got.to_pydatetime()
        elif isinstance(value, decimal.Decimal):  # pandas coerces numeric to float
            value = float(value)
        elif isinstance(value, bool):
            got = bool(got)
        elif isinstance(value, int):
            got = int(got)
        assert got == value, f"{name}: got {got!r}, expected {value!r}"
    second = df.iloc[1]
    assert all(pd.isna(second[name]) for name in VALUES), second.to_dict()


def test_read_sql_with_params(engine):
    df = pd.read_sql(sa.text(f"SELECT id, c_text FROM {TABLE} WHERE c_int4 = :v"), engine, params={"v": 2147483647})
    assert df.to_dict("records") == [{"id": 1, "c_text": VALUES["c_text"]}]


def test_to_sql_then_read_sql_table(engine):
    frame = pd.DataFrame({
        "name": ["a", "b", None],
        "qty": [1, 2, 3],
        "price": [1.5, None, 3.25],
        "ok": [True, False, True],
        "at": pd.to_datetime(["2024-01-01T00:00:00Z", "2024-06-30T12:30:00Z", "2025-01-01T23:59:59Z"]),
    })
    frame.to_sql(OUT, engine, index=False, if_exists="replace")
    back = pd.read_sql_table(OUT, engine)
    assert list(back.columns) == list(frame.columns)
    back = back.sort_values("qty").reset_index(drop=True)
    assert back["name"].tolist()[:2] == ["a", "b"] and back["name"].isna().tolist() == [False, False, True]
    assert back["qty"].tolist() == [1, 2, 3]
    assert back["price"].isna().tolist() == [False, True, False]
    assert back["ok"].tolist() == [True, False, True]
    assert back["at"].dt.tz is not None
    assert back["at"].iloc[1].to_pydatetime() == dt.datetime(2024, 6, 30, 12, 30, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("sql, code", [
    ("SELEC 1", "42601"),
    ("SELECT * FROM compat_no_such_table", "42P01"),
    (f"INSERT INTO {TABLE} (id) VALUES (1) RETURNING id", "23505"),
])
def test_sqlstates(engine, sql, code):
    with pytest.raises(pd.errors.DatabaseError) as exc:
        pd.read_sql(sql, engine)
    cause = exc.value.__cause__
    assert isinstance(cause, sa.exc.DBAPIError), repr(exc.value)
    assert cause.orig.sqlstate == code, str(cause)
