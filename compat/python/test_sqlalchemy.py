"""SQLAlchemy 2 (through psycopg 3 and psycopg2, as Superset uses it): first-connect
queries, Inspector reflection of a table made with CREATE TABLE ... PRIMARY KEY and
CREATE INDEX and of one with a foreign key, Core round trips of every type, SQLSTATEs."""

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from compat_common import NAMES, SQLALCHEMY_URL, VALUES, assert_row_equal, create_types_table_sql

DRIVERS = ["postgresql+psycopg", "postgresql+psycopg2"]
ITEMS = "compat_sa_items"
ORDERS = "compat_sa_orders"
TYPES = "compat_sa_types"


@pytest.fixture(scope="module", params=DRIVERS)
def engine(request):
    eng = sa.create_engine(SQLALCHEMY_URL.format(driver=request.param), poolclass=sa.pool.NullPool)
    with eng.begin() as c:
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {ORDERS}")
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {ITEMS}")
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {TYPES}")
        c.exec_driver_sql(
            f"CREATE TABLE {ITEMS} (id integer PRIMARY KEY, name varchar(40) NOT NULL, "
            "price numeric(10,2), created timestamptz, tags jsonb)"
        )
        c.exec_driver_sql(f"CREATE INDEX {ITEMS}_name_idx ON {ITEMS} (name)")
        c.exec_driver_sql(
            f"CREATE TABLE {ORDERS} (id integer PRIMARY KEY, "
            f"item_id integer REFERENCES {ITEMS} ON DELETE CASCADE, qty integer)"
        )
        c.exec_driver_sql(create_types_table_sql(TYPES))
    yield eng
    eng.dispose()


def test_first_connect_detects_server_version(engine):
    with engine.connect() as c:
        assert c.dialect.server_version_info[0] >= 9
        assert c.execute(sa.text("SELECT 1 AS one")).scalar() == 1
        assert c.dialect.default_schema_name == "public"


def test_inspector_table_names(engine):
    names = sa.inspect(engine).get_table_names()
    assert ITEMS in names and TYPES in names, names


def test_inspector_has_table(engine):
    insp = sa.inspect(engine)
    assert insp.has_table(ITEMS)
    assert not insp.has_table("compat_no_such_table")


def test_inspector_columns(engine):
    cols = sa.inspect(engine).get_columns(ITEMS)
    assert [c["name"] for c in cols] == ["id", "name", "price", "created", "tags"]
    by_name = {c["name"]: c for c in cols}
    assert isinstance(by_name["id"]["type"], sa.INTEGER)
    assert by_name["id"]["nullable"] is False
    assert isinstance(by_name["name"]["type"], sa.VARCHAR) and by_name["name"]["type"].length == 40
    assert by_name["name"]["nullable"] is False
    price = by_name["price"]["type"]
    assert isinstance(price, sa.NUMERIC) and (price.precision, price.scale) == (10, 2)
    assert by_name["price"]["nullable"] is True
    assert isinstance(by_name["created"]["type"], sa.TIMESTAMP) and by_name["created"]["type"].timezone is True
    assert isinstance(by_name["tags"]["type"], pg.JSONB)


def test_inspector_columns_of_every_type(engine):
    cols = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns(TYPES)}
    expected = {
        "c_bool": sa.BOOLEAN, "c_int2": sa.SMALLINT, "c_int4": sa.INTEGER, "c_int8": sa.BIGINT,
        "c_float8": pg.DOUBLE_PRECISION, "c_numeric": sa.NUMERIC, "c_text": sa.TEXT,
        "c_varchar": sa.VARCHAR, "c_date": sa.DATE, "c_timestamp": sa.TIMESTAMP,
        "c_timestamptz": sa.TIMESTAMP, "c_bytea": pg.BYTEA, "c_uuid": sa.UUID, "c_jsonb": pg.JSONB,
    }
    wrong = {n: repr(cols.get(n)) for n, t in expected.items() if not isinstance(cols.get(n), t)}
    assert not wrong, f"reflected types: {wrong}"
    assert cols["c_timestamp"].timezone is False and cols["c_timestamptz"].timezone is True


def test_inspector_pk_constraint(engine):
    pk = sa.inspect(engine).get_pk_constraint(ITEMS)
    assert pk["constrained_columns"] == ["id"], pk


def test_inspector_indexes(engine):
    indexes = sa.inspect(engine).get_indexes(ITEMS)
    mine = [i for i in indexes if i["name"] == f"{ITEMS}_name_idx"]
    assert len(mine) == 1, indexes
    assert mine[0]["column_names"] == ["name"] and not mine[0]["unique"], mine[0]


def test_inspector_foreign_keys_unique_and_check_constraints_are_empty(engine):
    insp = sa.inspect(engine)
    assert insp.get_foreign_keys(ITEMS) == []
    assert insp.get_unique_constraints(ITEMS) == []
    assert insp.get_check_constraints(ITEMS) == []


def test_inspector_foreign_keys(engine):
    insp = sa.inspect(engine)
    assert insp.get_foreign_keys(ORDERS) == [{
        "name": f"{ORDERS}_item_id_fkey",
        "constrained_columns": ["item_id"],
        "referred_schema": None,
        "referred_table": ITEMS,
        "referred_columns": ["id"],
        "options": {"ondelete": "CASCADE"},
        "comment": None,
    }]
    table = sa.Table(ORDERS, sa.MetaData(), autoload_with=engine)
    assert [fk.target_fullname for fk in table.foreign_keys] == [f"{ITEMS}.id"]


def test_core_round_trip_every_type(engine):
    table = sa.Table(TYPES, sa.MetaData(), autoload_with=engine)
    with engine.begin() as c:
        c.execute(table.delete())
        c.execute(table.insert(), {"id": 1, **VALUES})
        c.execute(table.insert(), {"id": 2})
    with engine.connect() as c:
        rows = c.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    assert [r["id"] for r in rows] == [1, 2]
    assert_row_equal(dict(rows[0]), VALUES, "row 1:")
    assert_row_equal(dict(rows[1]), {n: None for n in NAMES}, "row 2 (NULLs):")


def sqlstate(exc):
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


@pytest.mark.parametrize("sql, code", [
    ("SELEC 1", "42601"),
    ("SELECT * FROM compat_no_such_table", "42P01"),
    (f"INSERT INTO {ITEMS} (id, name) VALUES (7, 'a'); INSERT INTO {ITEMS} (id, name) VALUES (7, 'b')", "23505"),
    (f"INSERT INTO {ORDERS} (id, item_id) VALUES (1, 424242)", "23503"),
])
def test_sqlstates(engine, sql, code):
    with engine.connect() as c:
        with pytest.raises(sa.exc.DBAPIError) as exc:
            for statement in sql.split("; "):
                c.exec_driver_sql(statement)
        assert sqlstate(exc.value) == code, str(exc.value)
