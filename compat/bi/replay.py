"""Replays one BI tool's catalog queries (compat/bi/<tool>.sql) against a server, each
statement on its own through psycopg 3 (extended protocol, as pgjdbc and Npgsql use it),
and checks that each succeeds and that the annotated results are sensible.

File format: statements end with a line that ends in `;`. Comment lines before a
statement may carry directives:
    -- @name <label>               how the statement is reported
    -- @expect-row col=value ...   some row has all these column values (text compare;
                                   booleans as t/f, NULL as empty; shell quoting)
    -- @expect-rows >=N | N        the number of rows
    -- @expect-columns a,b,...     the result has these columns (in this order)
Placeholders, filled in before a statement is sent:
    {{table}}       the test table, compat_bi_items
    {{table_oid}}   its OID in pg_class           {{public_oid}}  the OID of schema public
    {{dbname}}      current_database()

Server: COMPAT_HOST, COMPAT_PORT, COMPAT_USER, COMPAT_DBNAME. Exits 1 if any statement
failed.
"""

import os
import re
import shlex
import sys

import psycopg

TABLE = "compat_bi_items"
SETUP = [
    f"DROP TABLE IF EXISTS {TABLE}",
    f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name varchar(40) NOT NULL, price numeric(10,2), "
    "created timestamptz, tags jsonb)",
    f"CREATE INDEX {TABLE}_name_idx ON {TABLE} (name)",
    f"INSERT INTO {TABLE} (id, name, price, created, tags) VALUES "
    "(1, 'alpha', 1.50, '2024-01-01T00:00:00Z', '[\"a\"]'), (2, 'beta', 20.00, '2024-06-30T12:00:00Z', '{\"k\": 1}'), "
    "(3, 'gamma', NULL, NULL, NULL)",
]


def conninfo():
    return (f"host={os.environ.get('COMPAT_HOST', '127.0.0.1')} port={os.environ.get('COMPAT_PORT', '5433')} "
            f"user={os.environ.get('COMPAT_USER', 'compat')} dbname={os.environ.get('COMPAT_DBNAME', 'tissdb')}")


def parse(path):
    """Yields (line number, directives, sql) for each statement of the file."""
    directives, lines, start = [], [], None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            stripped = line.strip()
            if not lines:
                if stripped.startswith("-- @"):
                    directives.append(stripped[3:].strip())
                    continue
                if not stripped or stripped.startswith("--"):
                    continue
                start = number
            lines.append(line.rstrip("\n"))
            if stripped.endswith(";"):
                sql = "\n".join(lines).rstrip()[:-1]
                yield start, directives, sql
                directives, lines = [], []
    if lines:
        yield start, directives, "\n".join(lines)


def text(value):
    if isinstance(value, bool):
        return "t" if value else "f"
    return "" if value is None else str(value)


def check(directives, columns, rows):
    """Returns a list of problems with the result."""
    problems = []
    for d in directives:
        kind, _, arg = d.partition(" ")
        if kind == "@expect-row":
            wanted = dict(pair.split("=", 1) for pair in shlex.split(arg))
            missing = [c for c in wanted if c not in columns]
            if missing:
                problems.append(f"no column {missing} in {columns}")
                continue
            if not any(all(text(row[columns.index(c)]) == v for c, v in wanted.items()) for row in rows):
                shown = [{c: text(r[columns.index(c)]) for c in wanted} for r in rows[:20]]
                problems.append(f"no row with {wanted}; rows: {shown}")
        elif kind == "@expect-rows":
            m = re.fullmatch(r"(>=)?\s*(\d+)", arg.strip())
            n = int(m.group(2))
            if (len(rows) < n) if m.group(1) else (len(rows) != n):
                problems.append(f"{len(rows)} rows, expected {arg.strip()}")
        elif kind == "@expect-columns":
            wanted = [c.strip() for c in arg.split(",")]
            if columns[: len(wanted)] != wanted:
                problems.append(f"columns {columns}, expected {wanted}")
        elif kind != "@name":
            problems.append(f"unknown directive {d!r}")
    return problems


def main(path):
    tool = os.path.basename(path)
    failed = passed = 0
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        for sql in SETUP:
            conn.execute(sql)
        values = {"table": TABLE, "dbname": conn.execute("SELECT current_database()").fetchone()[0]}
        for key, sql in [
            ("table_oid", f"SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                          f"ON n.oid = c.relnamespace WHERE c.relname = '{TABLE}' AND n.nspname = 'public'"),
            ("public_oid", "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public'"),
        ]:
            try:
                row = conn.execute(sql).fetchone()
                values[key] = str(row[0]) if row else "0"
            except psycopg.Error as e:
                values[key] = "0"
                print(f"note: looking up {{{{{key}}}}} failed ({e.sqlstate}: {e}); using 0")
        for line, directives, sql in parse(path):
            name = next((d[6:] for d in directives if d.startswith("@name ")), sql.split("\n")[0][:70])
            sql = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], sql)
            try:
                cur = conn.execute(sql)
                columns = [d.name for d in cur.description] if cur.description else []
                rows = cur.fetchall() if cur.description else []
                problems = check(directives, columns, rows)
            except psycopg.Error as e:
                problems = [f"ERROR {e.sqlstate}: {str(e).strip()}"]
            except Exception as e:  # a result psycopg cannot decode, for instance
                problems = [f"{type(e).__name__}: {e}"]
            if problems:
                failed += 1
                print(f"FAIL {tool}:{line} {name}")
                for p in problems:
                    print("     " + p.replace("\n", "\n     "))
                print("     SQL: " + " ".join(sql.split())[:600])
            else:
                passed += 1
                print(f"ok   {tool}:{line} {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
