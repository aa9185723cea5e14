-- Secondary indexes from psql: creating them (single-field, compound, nested path,
-- unique), the plans that use them, pg_indexes, and dropping them.

CREATE COLLECTION products;
INSERT INTO products (id, name, brand, price, is_available, specs) VALUES
  ('product_789', 'Wireless Headphones', 'AudioPhonic', 199.99, true,
   '{"weight": "250g", "bluetooth_version": 5.2}'::jsonb),
  ('product_790', 'Smart Watch', 'TechGear', 299.99, true, NULL),
  ('product_791', 'Earbuds', 'AudioPhonic', 99, false,
   '{"weight": "50g", "bluetooth_version": 5.3}'::jsonb),
  ('product_792', 'Speaker', 'AudioPhonic', 249.5, true, NULL),
  ('product_793', 'Fitness Band', 'TechGear', 49.95, false, NULL);

CREATE INDEX ON products (brand, price);
CREATE INDEX products_bt ON products (specs.bluetooth_version);
CREATE UNIQUE INDEX products_name ON products (name);
CREATE INDEX IF NOT EXISTS products_bt ON products (price);

SELECT tablename, indexname, indexdef FROM pg_indexes ORDER BY indexname;

-- The seed's compound example: equality on brand, range on price. On five documents a
-- full scan costs less than fetching through the index, and the planner says so.
EXPLAIN SELECT name, price FROM products WHERE brand = 'AudioPhonic' AND price < 200;
SELECT name, price FROM products WHERE brand = 'AudioPhonic' AND price < 200 ORDER BY price;

-- The index gives the order: no sort for ORDER BY ... LIMIT.
EXPLAIN SELECT name, price FROM products WHERE brand = 'AudioPhonic' ORDER BY price DESC LIMIT 2;
SELECT name, price FROM products WHERE brand = 'AudioPhonic' ORDER BY price DESC LIMIT 2;

-- A nested path, and an index-only answer (no document is read, which wins even here).
SELECT id FROM products WHERE specs.bluetooth_version = 5.3;
EXPLAIN SELECT id, price FROM products WHERE brand = 'TechGear';

-- The unique index refuses a second 'Earbuds'; nothing is stored.
\set ON_ERROR_STOP 0
INSERT INTO products (id, name) VALUES ('product_794', 'Earbuds');
SELECT count(*) FROM products;
\set ON_ERROR_STOP 1

DROP INDEX products_name;
DROP INDEX IF EXISTS products_name;
SELECT indexname FROM pg_catalog.pg_indexes WHERE tablename = 'products' ORDER BY 1;
