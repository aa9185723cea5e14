-- The seed's TissQL examples on the seed's example documents.
--
-- The XML document of the seed (product_789) written as SQL, then the seed's JSON
-- document (Smart Watch) and three more. The six statements are the seed's, with ORDER BY
-- added where SQL leaves the order open; a check of the stored data follows each write.

CREATE COLLECTION products;

INSERT INTO products (id, name, brand, price, is_available, release_date, specs, reviews)
VALUES (
  'product_789', 'Wireless Headphones', 'AudioPhonic', 199.99, true,
  '2023-10-26T10:00:00Z'::timestamptz,
  '{"weight": "250g", "bluetooth_version": 5.2,
    "features": ["Noise Cancellation", "24-hour Battery", "Water Resistant"]}'::jsonb,
  '[{"id": "rev_1", "rating": 5, "comment": "Amazing sound quality!"},
    {"id": "rev_2", "rating": 4, "comment": "Very comfortable."}]'::jsonb
);

INSERT INTO products (id, name, brand, price, is_available) VALUES
  ('product_790', 'Smart Watch', 'TechGear', 299.99, true),
  ('product_791', 'Earbuds', 'AudioPhonic', 99, false),
  ('product_792', 'Speaker', 'AudioPhonic', 249.5, true),
  ('product_793', 'Fitness Band', 'TechGear', 49.95, false);

-- Every field of the seed document reads back with its type.
SELECT id, name, brand, price, is_available, release_date FROM products ORDER BY id;
SELECT specs.weight, specs.bluetooth_version, specs->'features' AS features,
       specs->'features'->>2 AS third_feature, reviews->1->>'comment' AS second_comment
  FROM products WHERE id = 'product_789';

-- Select
SELECT name, price FROM products WHERE brand = 'AudioPhonic' AND price < 200 ORDER BY name;

-- Projection: a field path, NULL where a document has no specs.
SELECT name, specs.bluetooth_version FROM products ORDER BY name;

-- Update
UPDATE products SET price = 179.99 WHERE id = 'product_789';
SELECT id, price, specs->>'weight' AS weight FROM products ORDER BY id;

-- Delete
DELETE FROM products WHERE is_available = false;
SELECT id, name, is_available FROM products ORDER BY id;

-- Aggregates
SELECT COUNT(*) FROM products WHERE is_available = true;
SELECT brand, AVG(price) FROM products GROUP BY brand ORDER BY brand;

DROP COLLECTION products;
