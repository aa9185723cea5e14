-- E17 (arith): an everyday query, against an index on brand and one on qty.
SELECT sum(price * qty), avg(price + 1) FROM items;
