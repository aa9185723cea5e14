-- E03 (count_range_sel): an everyday query, against an index on brand and one on qty.
SELECT count(*) FROM items WHERE qty < 10;
