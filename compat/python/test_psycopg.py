"""psycopg 3: extended protocol, text and binary parameters and results, server-side
prepared statements after repeated execution, SQLSTATEs, transactions."""

import psycopg
import psycopg.errors
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from compat_common import CONNINFO, NAMES, OIDS, VALUES, assert_row_equal, create_types_table_sql

TABLE = "compat_psycopg_types"
NULLS = {name: None for name in NAMES}


def params(values):
    return [Jsonb(v) if name == "c_jsonb" and v is not None else v for name, v in values.items()]


@pytest.fixture(scope="module")
def conn():
    with psycopg.connect(CONNINFO, autocommit=True, row_factory=dict_row) as c:
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        c.execute(create_types_table_sql(TABLE))
        yield c


def insert(conn, id_, values, marker="%s", binary=False):
    marks = ", ".join([marker] * (len(NAMES) + 1))
    conn.cursor().execute(
        f"INSERT INTO {TABLE} (id, {', '.join(NAMES)}) VALUES ({marks})",
        [id_, *params(values)],
        binary=binary,
    )


def fetch(conn, id_, binary=False, marker="%s"):
    cur = conn.cursor()
    cur.execute(f"SELECT id, {', '.join(NAMES)} FROM {TABLE} WHERE id = {marker}", [id_], binary=binary)
    row = cur.fetchone()
    assert row is not None, f"row {id_} not found"
    return row, cur.description


def test_server_version_says_postgresql(conn):
    version = conn.execute("SELECT version()").fetchone()["version"]
    assert "PostgreSQL" in version
    assert conn.info.server_version >= 90000, conn.info.server_version


def test_text_params_round_trip_every_type(conn):
    insert(conn, 1, VALUES)
    insert(conn, 2, NULLS)
    row, desc = fetch(conn, 1)
    assert_row_equal(row, VALUES, "text row 1:")
    assert {d.name: d.type_code for d in desc[1:]} == OIDS
    row, _ = fetch(conn, 2)
    assert_row_equal(row, NULLS, "text row 2 (NULLs):")


def test_binary_params_and_results_round_trip_every_type(conn):
    insert(conn, 3, VALUES, marker="%b", binary=True)
    insert(conn, 4, NULLS, marker="%b", binary=True)
    row, desc = fetch(conn, 3, binary=True, marker="%b")
    assert_row_equal(row, VALUES, "binary row 3:")
    assert {d.name: d.type_code for d in desc[1:]} == OIDS
    row, _ = fetch(conn, 4, binary=True, marker="%b")
    assert_row_equal(row, NULLS, "binary row 4 (NULLs):")
    # The row written with text parameters reads back the same in binary, and the reverse.
    row, _ = fetch(conn, 1, binary=True, marker="%b")
    assert_row_equal(row, VALUES, "row 1 read in binary:")
    row, _ = fetch(conn, 3)
    assert_row_equal(row, VALUES, "row 3 read as text:")


def test_prepared_statement_after_threshold(conn):
    conn.execute(f"DELETE FROM {TABLE} WHERE id >= 100")
    conn.prepare_threshold = 2
    try:
        query = f"SELECT id, c_text, c_int8 FROM {TABLE} WHERE id = %s"
        for i in range(100, 108):
            conn.execute(f"INSERT INTO {TABLE} (id, c_text, c_int8) VALUES (%s, %s, %s)", [i, f"row {i}", i * 1000])
        for i in range(100, 108):
            row = conn.execute(query, [i]).fetchone()
            assert row == {"id": i, "c_text": f"row {i}", "c_int8": i * 1000}, f"execution {i - 99}: {row}"
        # psycopg keeps the names of the statements it prepared on the server.
        names = getattr(getattr(conn, "_prepared", None), "_names", None)
        if names is not None:
            assert len(names) >= 1, "psycopg prepared nothing on the server"
        # Explicit prepare=True, in binary, many times.
        for i in range(100, 108):
            row = conn.execute(query, [i], prepare=True, binary=True).fetchone()
            assert row == {"id": i, "c_text": f"row {i}", "c_int8": i * 1000}
    finally:
        conn.prepare_threshold = 5


def test_sqlstate_syntax_error(conn):
    with pytest.raises(psycopg.errors.SyntaxError) as exc:
        conn.execute("SELEC 1")
    assert exc.value.sqlstate == "42601"
    assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}


def test_sqlstate_undefined_table(conn):
    with pytest.raises(psycopg.errors.UndefinedTable) as exc:
        conn.execute("SELECT * FROM compat_no_such_table")
    assert exc.value.sqlstate == "42P01"


def test_sqlstate_unique_violation(conn):
    with pytest.raises(psycopg.errors.UniqueViolation) as exc:
        conn.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s)", [1, "duplicate"])
    assert exc.value.sqlstate == "23505"
    row, _ = fetch(conn, 1)
    assert row["c_text"] == VALUES["c_text"], "the failed insert changed the row"


def test_transaction_commit_and_rollback():
    with psycopg.connect(CONNINFO) as c:  # not autocommit: psycopg sends BEGIN
        c.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s)", [200, "committed"])
        c.commit()
        c.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s)", [201, "rolled back"])
        c.rollback()
        with c.transaction():
            c.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s)", [202, "in a block"])
        ids = [r[0] for r in c.execute(f"SELECT id FROM {TABLE} WHERE id >= 200 ORDER BY id")]
        assert ids == [200, 202]
