-- E04 (topn): an everyday query, against an index on brand and one on qty.
SELECT id, price FROM items ORDER BY price DESC LIMIT 10;
