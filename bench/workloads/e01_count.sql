-- E01 (count): an everyday query, against an index on brand and one on qty.
SELECT count(*) FROM items;
