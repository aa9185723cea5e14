-- A table with declared column types: constraints, defaults, RETURNING, UPDATE and
-- DELETE, aggregates, and EXPLAIN of a key lookup and of a sequential scan.

CREATE TABLE items (
  id integer PRIMARY KEY,
  name text NOT NULL,
  qty integer DEFAULT 1,
  price numeric(10,2),
  added timestamptz
) WITH (format = 'csv');

INSERT INTO items (id, name, qty, price, added) VALUES
  (1, 'bolt', 100, 0.25, '2024-01-02 03:04:05+00'),
  (2, 'nut', 250, 0.10, '2024-01-03 00:00:00+00'),
  (3, 'washer', NULL, 0.05, NULL)
RETURNING id, name, qty;

-- The default fills qty; numeric keeps its scale.
INSERT INTO items (id, name, price) VALUES (4, 'gear', 12.50) RETURNING *;

-- A duplicate key, skipped.
INSERT INTO items (id, name) VALUES (4, 'duplicate') ON CONFLICT DO NOTHING;

SELECT * FROM items ORDER BY id;

-- NULL + 10 stays NULL; the row still counts as updated.
UPDATE items SET qty = qty + 10 WHERE price < 1;
UPDATE items SET price = price * 2 WHERE id = 4 RETURNING id, name, price;
DELETE FROM items WHERE qty IS NULL RETURNING id, name;

SELECT count(*), sum(qty), avg(price), min(price), max(price) FROM items;
SELECT qty > 100 AS big, count(*) FROM items GROUP BY qty > 100 ORDER BY big;
SELECT name, qty FROM items WHERE qty BETWEEN 2 AND 200 ORDER BY qty DESC;
SELECT name FROM items ORDER BY name LIMIT 2 OFFSET 1;
SELECT DISTINCT qty >= 100 AS many FROM items ORDER BY many;

EXPLAIN SELECT name FROM items WHERE id = 2;
EXPLAIN SELECT name FROM items WHERE qty > 5;

-- A table stored as XML blocks, with a jsonb column.
CREATE TABLE notes (id text PRIMARY KEY, body jsonb, stars smallint) WITH (format = 'xml');
INSERT INTO notes (id, body, stars) VALUES
  ('n1', '{"title": "first", "tags": ["a", "b"]}'::jsonb, 3),
  ('n2', '{"title": "second", "tags": []}'::jsonb, 5);
SELECT id, body->>'title' AS title, jsonb_typeof(body->'tags') AS tags, stars FROM notes ORDER BY id;
SELECT sum(stars), avg(stars) FROM notes;

DROP TABLE items;
DROP TABLE IF EXISTS notes;
