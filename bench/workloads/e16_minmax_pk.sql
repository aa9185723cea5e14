-- E16 (minmax_pk): an everyday query, against an index on brand and one on qty.
SELECT max(id), min(id) FROM items;
