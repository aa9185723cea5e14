-- E15 (range_noidx): an everyday query, against an index on brand and one on qty.
SELECT id FROM items WHERE price BETWEEN 10 AND 10.5;
