-- COPY through psql: \copy from a file and to stdout (psql sends COPY ... FROM STDIN /
-- TO STDOUT over the simple protocol and moves the data itself), COPY FROM STDIN with
-- the data inline in the script, and the errors a bad file gets. Compared with
-- PostgreSQL 15 running the same script (CREATE TABLE for the collection): the same
-- output, but for the duplicate key's DETAIL (TissDB puts the key in the message), the
-- LOCATION lines, and COPY to a server file, which TissDB refuses.

CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric(10,2),
                    qty integer NOT NULL DEFAULT 7, note text);

-- CSV with a header; quoted commas, quotes and a line break; NULL and empty string.
\copy items from 'copy_items.csv' with (format csv, header true)
\echo ROW_COUNT=:ROW_COUNT
SELECT id, name, price, qty, note, note IS NULL AS note_null FROM items ORDER BY id;

-- Out again, in CSV and in text format (\N for NULL, \n escaped).
\copy items to stdout with (format csv, header)
\copy items to stdout
\copy (SELECT id, name FROM items WHERE price < 10 ORDER BY id) to stdout with csv header delimiter ';'
COPY items (id, note) TO STDOUT;

-- Data inline in the script, text format, as a dump writes it.
COPY items (id, name, qty) FROM stdin;
4	tab\there	8
5	\N	9
\.
SELECT id, name, qty FROM items WHERE id > 3 ORDER BY id;

\set ON_ERROR_STOP 0
\set VERBOSITY verbose
-- A bad value on line 3: the error names the line and nothing of the file is stored.
\copy items (id, name, price, qty, note) from 'copy_bad.csv' csv
-- A key that is already stored.
\copy items from 'copy_items.csv' csv header
COPY nosuch FROM STDIN;
COPY items (nope) TO STDOUT;
COPY items TO '/tmp/items.csv';
\set ON_ERROR_STOP 1
\set VERBOSITY default
SELECT count(*) FROM items;

-- A schemaless collection: the header names the fields, typed without loss
-- (zip 02134 stays text), and ids are generated.
CREATE COLLECTION products;
\copy products from 'copy_products.csv' csv header
SELECT sku, title, zip, price, in_stock, length(id) AS id_length FROM products ORDER BY sku;
SELECT sku FROM products WHERE price > 100 AND NOT in_stock;
\copy (SELECT sku, zip, price FROM products ORDER BY sku) to stdout csv
