"""psycopg2: simple protocol with client-side interpolation, every type, SQLSTATEs,
BEGIN/COMMIT wrapping."""

import psycopg2
import psycopg2.errorcodes
import psycopg2.extras
import pytest

from compat_common import CONNINFO, NAMES, OIDS, VALUES, assert_row_equal, create_types_table_sql

TABLE = "compat_psycopg2_types"
NULLS = {name: None for name in NAMES}

psycopg2.extras.register_uuid()


def adapt(values):
    out = []
    for name, v in values.items():
        if v is not None and name == "c_jsonb":
            v = psycopg2.extras.Json(v)
        elif v is not None and name == "c_bytea":
            v = psycopg2.Binary(v)
        out.append(v)
    return out


def normalise(row):
    row = dict(row)
    if isinstance(row.get("c_bytea"), memoryview):
        row["c_bytea"] = bytes(row["c_bytea"])
    return row


@pytest.fixture(scope="module")
def conn():
    c = psycopg2.connect(CONNINFO)
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(create_types_table_sql(TABLE))
    yield c
    c.close()


def fetch(conn, id_):
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(f"SELECT id, {', '.join(NAMES)} FROM {TABLE} WHERE id = %s", [id_])
        row = cur.fetchone()
        assert row is not None, f"row {id_} not found"
        return normalise(row), cur.description


def test_server_version_says_postgresql(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT version()")
        assert "PostgreSQL" in cur.fetchone()[0]
    assert conn.server_version >= 90000


def test_round_trip_every_type(conn):
    marks = ", ".join(["%s"] * (len(NAMES) + 1))
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {TABLE} (id, {', '.join(NAMES)}) VALUES ({marks})", [1, *adapt(VALUES)])
        cur.execute(f"INSERT INTO {TABLE} (id, {', '.join(NAMES)}) VALUES ({marks})", [2, *adapt(NULLS)])
    row, desc = fetch(conn, 1)
    assert_row_equal(row, VALUES, "row 1:")
    assert {d.name: d.type_code for d in desc[1:]} == OIDS
    row, _ = fetch(conn, 2)
    assert_row_equal(row, NULLS, "row 2 (NULLs):")


def test_executemany(conn):
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {TABLE} (id, c_text, c_int8) VALUES (%s, %s, %s)",
                        [(i, f"row {i}", i * 7) for i in range(10, 20)])
        cur.execute(f"SELECT count(*), sum(c_int8) FROM {TABLE} WHERE id BETWEEN 10 AND 19")
        assert cur.fetchone() == (10, sum(i * 7 for i in range(10, 20)))


def expect_sqlstate(conn, sql, params, code, exc_type):
    with conn.cursor() as cur:
        with pytest.raises(exc_type) as exc:
            cur.execute(sql, params)
    assert exc.value.pgcode == code, f"{sql}: pgcode {exc.value.pgcode}, message {exc.value.pgerror}"
    with conn.cursor() as cur:  # the connection still works
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_sqlstate_syntax_error(conn):
    expect_sqlstate(conn, "SELEC 1", None, "42601", psycopg2.errors.SyntaxError)


def test_sqlstate_undefined_table(conn):
    expect_sqlstate(conn, "SELECT * FROM compat_no_such_table", None, "42P01", psycopg2.errors.UndefinedTable)


def test_sqlstate_unique_violation(conn):
    expect_sqlstate(conn, f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s)", [1, "dup"], "23505",
                    psycopg2.errors.UniqueViolation)


def test_transaction_commit_and_rollback():
    c = psycopg2.connect(CONNINFO)  # not autocommit: psycopg2 sends BEGIN before the first statement
    try:
        with c.cursor() as cur:
            cur.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (300, 'committed')")
        c.commit()
        with c.cursor() as cur:
            cur.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (301, 'rolled back')")
        c.rollback()
        with c.cursor() as cur:
            # An error aborts the transaction; after ROLLBACK the connection works again.
            with pytest.raises(psycopg2.errors.UndefinedTable):
                cur.execute("SELECT * FROM compat_no_such_table")
        c.rollback()
        with c.cursor() as cur:
            cur.execute(f"SELECT id FROM {TABLE} WHERE id >= 300 ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == [300]
        c.commit()
    finally:
        c.close()
