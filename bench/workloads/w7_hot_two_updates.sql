-- W7 hot: the same transaction between two of only 10 rows (contention; conflicts retried).
\set a random(1, 10)
\set b random(1, 10)
BEGIN;
UPDATE items SET qty = qty - 1 WHERE id = :a;
UPDATE items SET qty = qty + 1 WHERE id = :b;
COMMIT;
