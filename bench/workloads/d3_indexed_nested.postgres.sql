-- D3 (PostgreSQL): filter on the indexed top-level field (index on (doc->>'brand')),
-- project a nested field, LIMIT 10.
\set b random(10, 49)
SELECT doc->'specs'->>'weight' FROM products WHERE doc->>'brand' = 'brand_' || :b::text LIMIT 10;
