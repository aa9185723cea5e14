-- E08 (count_distinct): an everyday query, against an index on brand and one on qty.
SELECT count(DISTINCT brand) FROM items;
