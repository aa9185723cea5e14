"""What every Python suite shares: where the server is, the typed table, its values.

The server comes from the environment that compat/run.sh sets:
COMPAT_HOST, COMPAT_PORT, COMPAT_USER, COMPAT_DBNAME.
"""

import datetime as dt
import decimal
import os
import uuid

HOST = os.environ.get("COMPAT_HOST", "127.0.0.1")
PORT = int(os.environ.get("COMPAT_PORT", "5433"))
USER = os.environ.get("COMPAT_USER", "compat")
DBNAME = os.environ.get("COMPAT_DBNAME", "tissdb")

CONNINFO = f"host={HOST} port={PORT} user={USER} dbname={DBNAME}"
SQLALCHEMY_URL = f"{{driver}}://{USER}@{HOST}:{PORT}/{DBNAME}"

# One column per type of DESIGN.md's type-mapping table, with the OID that a
# PostgreSQL client must see in RowDescription.
COLUMNS = [
    # (name, SQL type, type OID)
    ("c_bool", "boolean", 16),
    ("c_int2", "smallint", 21),
    ("c_int4", "integer", 23),
    ("c_int8", "bigint", 20),
    ("c_float8", "double precision", 701),
    ("c_numeric", "numeric(12,3)", 1700),
    ("c_text", "text", 25),
    ("c_varchar", "varchar(20)", 1043),
    ("c_date", "date", 1082),
    ("c_timestamp", "timestamp", 1114),
    ("c_timestamptz", "timestamptz", 1184),
    ("c_bytea", "bytea", 17),
    ("c_uuid", "uuid", 2950),
    ("c_jsonb", "jsonb", 3802),
]
NAMES = [c[0] for c in COLUMNS]
OIDS = {c[0]: c[2] for c in COLUMNS}

# Extremes where a type has them; text with quotes, a backslash, non-ASCII and a newline.
VALUES = {
    "c_bool": True,
    "c_int2": -32768,
    "c_int4": 2147483647,
    "c_int8": -9223372036854775808,
    "c_float8": 3.141592653589793,
    "c_numeric": decimal.Decimal("-12345.678"),
    "c_text": "h\u00e9llo, 'w\u00f6rld' \"q\" \\ \u2603\nline 2",
    "c_varchar": "abc def",
    "c_date": dt.date(2024, 2, 29),
    "c_timestamp": dt.datetime(2024, 2, 29, 23, 59, 58, 123456),
    "c_timestamptz": dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.timezone.utc),
    "c_bytea": bytes([0, 1, 2, 127, 128, 255, 92, 39]),
    "c_uuid": uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "c_jsonb": {"a": [1, 2.5, "x", None, True], "nested": {"k": "v"}},
}


def create_types_table_sql(table):
    cols = ",\n  ".join(f"{name} {sqltype}" for name, sqltype, _ in COLUMNS)
    return f"CREATE TABLE {table} (\n  id integer PRIMARY KEY,\n  {cols}\n)"


def insert_sql(table, placeholder):
    """INSERT of id and every column; `placeholder(i)` writes the i-th (1-based) marker."""
    marks = ", ".join(placeholder(i) for i in range(1, len(COLUMNS) + 2))
    return f"INSERT INTO {table} (id, {', '.join(NAMES)}) VALUES ({marks})"


def select_sql(table, placeholder):
    return f"SELECT id, {', '.join(NAMES)} FROM {table} WHERE id = {placeholder}"


def assert_row_equal(got, expected, label=""):
    """Compares a fetched row (a dict by column name) with the expected values, naming
    each column that differs."""
    diffs = []
    for name in NAMES:
        g, e = got[name], expected[name]
        if (g is None) != (e is None) or g != e or (e is not None and (not isinstance(g, type(e)) or isinstance(g, bool) != isinstance(e, bool))):
            diffs.append(f"  {name}: got {g!r} ({type(g).__name__}), expected {e!r} ({type(e).__name__})")
    assert not diffs, f"{label} columns differ:\n" + "\n".join(diffs)
