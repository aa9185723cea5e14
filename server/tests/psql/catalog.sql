-- psql's meta-commands and the catalog queries behind them, on a typed table with a
-- secondary index and on a schemaless collection whose nested fields are columns.
-- The table parts print what PostgreSQL 15 prints (owner aside: TissDB's one role is
-- tissdb).

CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2) DEFAULT 0, tags jsonb);
CREATE INDEX items_name ON items (name);
CREATE COLLECTION products;
INSERT INTO products (id, name, price, specs) VALUES ('p1', 'Watch', 299.99, '{"weight": "250g", "bluetooth_version": 5.2}'::jsonb);

\dt
\d
\d items
\d+ items
\di
\dn
\l
\du
\d products

-- A new field is a column as soon as it is written.
INSERT INTO products (id, name, specs) VALUES ('p2', 'Phone', '{"weight": "180g", "battery": {"mah": 4500}}'::jsonb);
SELECT column_name, data_type, ordinal_position, is_nullable
  FROM information_schema.columns WHERE table_name = 'products' ORDER BY ordinal_position;
SELECT id, "specs.weight", "specs.battery.mah" FROM products ORDER BY id;

-- Catalog queries with the executor's full SQL: joins, regclass casts, arrays.
SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.oid = 'items'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT 'items'::regclass::oid = (SELECT oid FROM pg_class WHERE relname = 'items') AS same_oid;
SELECT i.indisprimary, i.indisunique, pg_get_indexdef(i.indexrelid) AS def
  FROM pg_index i WHERE i.indrelid = 'items'::regclass ORDER BY 1 DESC, 3;
SELECT typname, typarray, typinput = 'array_in'::regproc AS is_array_input
  FROM pg_type WHERE oid IN (23, 1007, 3802) ORDER BY oid;
SELECT current_schemas(true), current_schemas(false)[1] AS first, array_to_string(ARRAY['a', 'b'], '-') AS joined;
SELECT n FROM generate_series(1, 3) AS n WHERE n = ANY (ARRAY[1, 3]);
SELECT count(*) AS keywords FROM pg_get_keywords() WHERE word <> ALL ('{select,from}'::text[]) AND catcode = 'R';
SELECT relname FROM pg_class WHERE relname OPERATOR(pg_catalog.~) '^(item.*)$' COLLATE pg_catalog.default ORDER BY 1;
SELECT quote_ident('Mixed Case'), parse_ident('public."Mixed Case"'), pg_size_pretty(123456789::bigint);
SELECT string_agg(relname, ',' ORDER BY relname DESC) FROM pg_class WHERE relnamespace = 'public'::regnamespace;
SHOW search_path;
SELECT current_setting('server_version_num')::int >= 150000 AS modern;

\x
SELECT * FROM pg_database;
\x

-- Bad input gets a clear error, and the session goes on.
\set ON_ERROR_STOP 0
SELECT 'no_such_table'::regclass;
SELECT current_setting('no_such_setting');
SELECT 'x' ~ '(';
SELECT '{1,2'::int[];
\set ON_ERROR_STOP 1
SELECT count(*) > 0 AS still_serving FROM pg_namespace;

-- A table declared without a primary key shows no key index or constraint.
CREATE TABLE nokey (a int, b text);
\d nokey
SELECT count(*) AS constraints FROM pg_constraint WHERE conrelid = 'nokey'::regclass;

-- Foreign keys: psql lists them under the referencing table ("Foreign-key constraints")
-- and the referenced one ("Referenced by"); violations carry PostgreSQL's DETAIL.
CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers, referrer_id integer, note text,
  CONSTRAINT orders_referrer FOREIGN KEY (referrer_id) REFERENCES customers (id) ON DELETE SET NULL);
\d orders
\d customers
INSERT INTO customers VALUES (1, 'ann'), (2, 'bob');
INSERT INTO orders VALUES (10, 1, 2, 'first');
\set ON_ERROR_STOP 0
INSERT INTO orders VALUES (11, 9, NULL, 'x');
UPDATE orders SET referrer_id = 7 WHERE id = 10;
DELETE FROM customers WHERE id = 1;
DROP TABLE customers;
\set ON_ERROR_STOP 1
DELETE FROM customers WHERE id = 2;
SELECT id, customer_id, referrer_id FROM orders;
DROP TABLE customers CASCADE;
\d orders
