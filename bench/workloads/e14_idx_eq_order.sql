-- E14 (idx_eq_order): an everyday query, against an index on brand and one on qty.
SELECT * FROM items WHERE qty = 7 ORDER BY id LIMIT 20;
