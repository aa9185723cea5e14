-- E06 (pk_range): an everyday query, against an index on brand and one on qty.
SELECT sum(price) FROM items WHERE id BETWEEN 1000 AND 3000;
