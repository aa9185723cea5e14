// node-postgres (`pg`) against a running server: parameterised queries (extended
// protocol), simple queries, named prepared statements, every type of DESIGN.md's table,
// SQLSTATEs, transactions. Prints one line per check; exits 1 if any failed.
//
// Server: COMPAT_HOST, COMPAT_PORT, COMPAT_USER, COMPAT_DBNAME (set by compat/run.sh).
'use strict';
process.env.TZ = 'UTC'; // pg parses date and timestamp (without zone) in local time
const assert = require('node:assert/strict');
const { Client } = require('pg');

// int8 and numeric arrive as strings by default (they do not fit a JS number); keep that.
const TABLE = 'compat_node_types';
const COLUMNS = [
  // name, SQL type, OID, value sent, value expected back
  ['c_bool', 'boolean', 16, true, true],
  ['c_int2', 'smallint', 21, -32768, -32768],
  ['c_int4', 'integer', 23, 2147483647, 2147483647],
  ['c_int8', 'bigint', 20, '-9223372036854775808', '-9223372036854775808'],
  ['c_float8', 'double precision', 701, 3.141592653589793, 3.141592653589793],
  ['c_numeric', 'numeric(12,3)', 1700, '-12345.678', '-12345.678'],
  ['c_text', 'text', 25, "h\u00e9llo, 'w\u00f6rld' \"q\" \\ \u2603\nline 2", "h\u00e9llo, 'w\u00f6rld' \"q\" \\ \u2603\nline 2"],
  ['c_varchar', 'varchar(20)', 1043, 'abc def', 'abc def'],
  ['c_date', 'date', 1082, '2024-02-29', new Date('2024-02-29T00:00:00Z')],
  ['c_timestamp', 'timestamp', 1114, '2024-02-29 23:59:58.123', new Date('2024-02-29T23:59:58.123Z')],
  ['c_timestamptz', 'timestamptz', 1184, new Date('2024-02-29T23:59:58.123Z'), new Date('2024-02-29T23:59:58.123Z')],
  ['c_bytea', 'bytea', 17, Buffer.from([0, 1, 2, 127, 128, 255, 92, 39]), Buffer.from([0, 1, 2, 127, 128, 255, 92, 39])],
  ['c_uuid', 'uuid', 2950, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  ['c_jsonb', 'jsonb', 3802, JSON.stringify({ a: [1, 2.5, 'x', null, true], nested: { k: 'v' } }), { a: [1, 2.5, 'x', null, true], nested: { k: 'v' } }],
];
const NAMES = COLUMNS.map((c) => c[0]);

function config() {
  return {
    host: process.env.COMPAT_HOST || '127.0.0.1',
    port: Number(process.env.COMPAT_PORT || 5433),
    user: process.env.COMPAT_USER || 'compat',
    database: process.env.COMPAT_DBNAME || 'tissdb',
  };
}

const checks = [];
function check(name, fn) { checks.push([name, fn]); }

async function expectSqlstate(client, sql, params, code) {
  let err = null;
  try { await client.query(sql, params); } catch (e) { err = e; }
  assert.ok(err, `${sql} did not fail`);
  assert.equal(err.code, code, `${sql}: SQLSTATE ${err.code}, message ${err.message}`);
  const r = await client.query('SELECT 1 AS one');
  assert.equal(r.rows[0].one, 1);
}

check('server version says PostgreSQL', async (c) => {
  const r = await c.query('SELECT version() AS v'); // simple protocol (no parameters)
  assert.match(r.rows[0].v, /PostgreSQL/);
});

check('create the typed table', async (c) => {
  await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await c.query(`CREATE TABLE ${TABLE} (id integer PRIMARY KEY, ${COLUMNS.map((x) => `${x[0]} ${x[1]}`).join(', ')})`);
});

check('parameterised insert and select round-trip every type', async (c) => {
  const marks = NAMES.map((_, i) => `$${i + 2}`).join(', ');
  const insert = `INSERT INTO ${TABLE} (id, ${NAMES.join(', ')}) VALUES ($1, ${marks})`;
  const ins = await c.query(insert, [1, ...COLUMNS.map((x) => x[3])]);
  assert.equal(ins.rowCount, 1);
  await c.query(insert, [2, ...COLUMNS.map(() => null)]);
  const r = await c.query(`SELECT id, ${NAMES.join(', ')} FROM ${TABLE} WHERE id = $1`, [1]);
  assert.equal(r.rows.length, 1);
  assert.deepEqual(Object.fromEntries(r.fields.slice(1).map((f) => [f.name, f.dataTypeID])),
    Object.fromEntries(COLUMNS.map((x) => [x[0], x[2]])));
  for (const [name, , , , expected] of COLUMNS) {
    assert.deepEqual(r.rows[0][name], expected, `column ${name}`);
  }
  const nulls = await c.query(`SELECT id, ${NAMES.join(', ')} FROM ${TABLE} WHERE id = $1`, [2]);
  for (const name of NAMES) assert.equal(nulls.rows[0][name], null, `column ${name} of the NULL row`);
});

check('simple-protocol select returns the same values', async (c) => {
  const r = await c.query(`SELECT id, ${NAMES.join(', ')} FROM ${TABLE} WHERE id = 1`);
  for (const [name, , , , expected] of COLUMNS) assert.deepEqual(r.rows[0][name], expected, `column ${name}`);
});

check('rowMode array and parameters in WHERE with several types', async (c) => {
  const r = await c.query({
    text: `SELECT id FROM ${TABLE} WHERE c_bool = $1 AND c_int8 = $2 AND c_text = $3 AND c_uuid = $4`,
    values: [true, '-9223372036854775808', COLUMNS[6][3], COLUMNS[12][3]],
    rowMode: 'array',
  });
  assert.deepEqual(r.rows, [[1]]);
});

check('named prepared statement executed 8 times', async (c) => {
  for (let i = 10; i < 18; i++) {
    await c.query({ name: 'compat_ins', text: `INSERT INTO ${TABLE} (id, c_text, c_int4) VALUES ($1, $2, $3)`, values: [i, `row ${i}`, i * 2] });
  }
  for (let i = 10; i < 18; i++) {
    const r = await c.query({ name: 'compat_sel', text: `SELECT c_text, c_int4 FROM ${TABLE} WHERE id = $1`, values: [i] });
    assert.deepEqual(r.rows, [{ c_text: `row ${i}`, c_int4: i * 2 }]);
  }
});

check('SQLSTATE 42601 for a syntax error', (c) => expectSqlstate(c, 'SELEC 1', [], '42601'));
check('SQLSTATE 42601 for a syntax error (extended protocol)', (c) => expectSqlstate(c, 'SELEC $1', [1], '42601'));
check('SQLSTATE 42P01 for an unknown table', (c) => expectSqlstate(c, 'SELECT * FROM compat_no_such_table WHERE 1 = $1', [1], '42P01'));
check('SQLSTATE 23505 for a duplicate key', (c) => expectSqlstate(c, `INSERT INTO ${TABLE} (id, c_text) VALUES ($1, $2)`, [1, 'dup'], '23505'));

check('transaction commit and rollback', async (c) => {
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${TABLE} (id, c_text) VALUES ($1, $2)`, [500, 'committed']);
  await c.query('COMMIT');
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${TABLE} (id, c_text) VALUES ($1, $2)`, [501, 'rolled back']);
  await c.query('ROLLBACK');
  const r = await c.query(`SELECT id FROM ${TABLE} WHERE id >= $1 ORDER BY id`, [500]);
  assert.deepEqual(r.rows.map((x) => x.id), [500]);
});

async function main() {
  const client = new Client(config());
  await client.connect();
  let failed = 0;
  for (const [name, fn] of checks) {
    try {
      await fn(client);
      console.log(`ok   ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}\n     ${String(e && e.message || e).split('\n').join('\n     ')}`);
    }
  }
  await client.end();
  console.log(`${checks.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log(`FAIL connect: ${e.message}`); process.exit(1); });
