"""asyncpg: every statement a named prepared statement, binary results, parameter types
inferred by the server, type introspection (set_type_codec on jsonb, an int8[] result)."""

import asyncio
import json

import asyncpg
import pytest

from compat_common import DBNAME, HOST, NAMES, OIDS, PORT, USER, VALUES, assert_row_equal, create_types_table_sql

TABLE = "compat_asyncpg_types"
NULLS = {name: None for name in NAMES}


def run(coro):
    return asyncio.run(coro)


async def connect(json_codec=True):
    conn = await asyncpg.connect(host=HOST, port=PORT, user=USER, database=DBNAME)
    if json_codec:
        # Looks up jsonb in pg_type (introspection) and decodes it as JSON.
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


@pytest.fixture(scope="module", autouse=True)
def table():
    async def setup():
        conn = await connect(json_codec=False)
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await conn.execute(create_types_table_sql(TABLE))
        await conn.close()

    run(setup())


def test_server_version_says_postgresql():
    async def go():
        conn = await connect(json_codec=False)
        try:
            assert "PostgreSQL" in await conn.fetchval("SELECT version()")
            assert conn.get_server_version().major >= 9
        finally:
            await conn.close()

    run(go())


def test_round_trip_every_type_with_inferred_parameter_types():
    async def go():
        conn = await connect()
        try:
            marks = ", ".join(f"${i}" for i in range(1, len(NAMES) + 2))
            insert = f"INSERT INTO {TABLE} (id, {', '.join(NAMES)}) VALUES ({marks})"
            await conn.execute(insert, 1, *VALUES.values())
            await conn.execute(insert, 2, *NULLS.values())
            stmt = await conn.prepare(f"SELECT id, {', '.join(NAMES)} FROM {TABLE} WHERE id = $1")
            types = {a.name: a.type.oid for a in stmt.get_attributes()}
            assert {n: types[n] for n in NAMES} == OIDS
            assert [t.oid for t in stmt.get_parameters()] == [23], "id = $1 should take an int4"
            row = await stmt.fetchrow(1)
            assert_row_equal(dict(row), VALUES, "row 1:")
            row = await stmt.fetchrow(2)
            assert_row_equal(dict(row), NULLS, "row 2 (NULLs):")
        finally:
            await conn.close()

    run(go())


def test_jsonb_without_codec_is_text():
    async def go():
        conn = await connect(json_codec=False)
        try:
            value = await conn.fetchval(f"SELECT c_jsonb FROM {TABLE} WHERE id = 1")
            assert isinstance(value, str)
            assert json.loads(value) == VALUES["c_jsonb"]
        finally:
            await conn.close()

    run(go())


def test_array_and_text_results_need_introspection():
    async def go():
        conn = await connect(json_codec=False)
        try:
            # int8[] is not among asyncpg's built-in codecs: it introspects pg_type.
            value = await conn.fetchval("SELECT ARRAY[1, 2, 9223372036854775807]::int8[]")
            assert value == [1, 2, 9223372036854775807]
            row = await conn.fetchrow(f"SELECT c_text, c_int8 FROM {TABLE} WHERE id = $1", 1)
            assert row["c_text"] == VALUES["c_text"] and row["c_int8"] == VALUES["c_int8"]
            value = await conn.fetchval("SELECT $1::int8[]", [5, 6])
            assert value == [5, 6]
        finally:
            await conn.close()

    run(go())


def test_executemany_and_repeated_prepared_statement():
    async def go():
        conn = await connect()
        try:
            await conn.executemany(f"INSERT INTO {TABLE} (id, c_text, c_int8) VALUES ($1, $2, $3)",
                                   [(i, f"row {i}", i * 3) for i in range(10, 20)])
            stmt = await conn.prepare(f"SELECT c_text FROM {TABLE} WHERE id = $1")
            for i in range(10, 20):
                assert await stmt.fetchval(i) == f"row {i}"
        finally:
            await conn.close()

    run(go())


async def expect_sqlstate(sql, args, code, exc_type):
    conn = await connect(json_codec=False)
    try:
        with pytest.raises(exc_type) as exc:
            await conn.execute(sql, *args)
        assert exc.value.sqlstate == code
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


def test_sqlstate_syntax_error():
    run(expect_sqlstate("SELEC 1", [], "42601", asyncpg.PostgresSyntaxError))


def test_sqlstate_undefined_table():
    run(expect_sqlstate("SELECT * FROM compat_no_such_table", [], "42P01", asyncpg.UndefinedTableError))


def test_sqlstate_unique_violation():
    run(expect_sqlstate(f"INSERT INTO {TABLE} (id, c_text) VALUES ($1, $2)", [1, "dup"], "23505",
                        asyncpg.UniqueViolationError))


def test_transaction_commit_and_rollback():
    async def go():
        conn = await connect()
        try:
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (400, 'committed')")
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await conn.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (401, 'rolled back')")
                    raise RuntimeError("roll back")
            ids = [r["id"] for r in await conn.fetch(f"SELECT id FROM {TABLE} WHERE id >= 400 ORDER BY id")]
            assert ids == [400]
        finally:
            await conn.close()

    run(go())
