-- E09 (group_order): an everyday query, against an index on brand and one on qty.
SELECT brand, max(price) FROM items GROUP BY brand ORDER BY 2 DESC LIMIT 5;
