-- E02 (count_range_all): an everyday query, against an index on brand and one on qty.
SELECT count(*) FROM items WHERE qty >= 0;
