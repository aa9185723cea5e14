-- E10 (filter_noidx): an everyday query, against an index on brand and one on qty.
SELECT count(*) FROM items WHERE price > 500 AND qty < 500;
