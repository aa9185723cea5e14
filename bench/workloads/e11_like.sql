-- E11 (like): an everyday query, against an index on brand and one on qty.
SELECT avg(qty) FROM items WHERE brand LIKE 'brand_1%';
