-- E19 (point_star): an everyday query, against an index on brand and one on qty.
SELECT * FROM items WHERE id = 77777;
