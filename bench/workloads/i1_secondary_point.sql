-- I1: point lookup by a secondary field (price has ~1 row per value at 100k rows,
-- ~10 at 1M), run once before and once after `CREATE INDEX ON items (price)`.
\set p random(1, 99999)
SELECT id, brand FROM items WHERE price = :p / 100.0;
