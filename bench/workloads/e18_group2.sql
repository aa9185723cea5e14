-- E18 (group2): an everyday query, against an index on brand and one on qty.
SELECT brand, qty % 10 AS d, count(*) FROM items GROUP BY brand, d ORDER BY brand, d LIMIT 5;
