-- W4: SELECT with a filter on a secondary-indexed column (items_brand), LIMIT 10.
\set b random(10, 49)
SELECT id, price FROM items WHERE brand = 'brand_' || :b::text LIMIT 10;
