-- W7: a transaction moving one unit between two random rows: BEGIN; UPDATE; UPDATE; COMMIT.
\set a random(1, :rows)
\set b random(1, :rows)
BEGIN;
UPDATE items SET qty = qty - 1 WHERE id = :a;
UPDATE items SET qty = qty + 1 WHERE id = :b;
COMMIT;
