-- D3 (TissDB): filter on the indexed top-level field (index on (brand)), project a nested
-- field by its path, LIMIT 10.
\set b random(10, 49)
SELECT specs.weight FROM products WHERE brand = 'brand_' || :b::text LIMIT 10;
