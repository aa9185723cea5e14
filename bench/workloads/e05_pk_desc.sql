-- E05 (pk_desc): an everyday query, against an index on brand and one on qty.
SELECT id, brand FROM items ORDER BY id DESC LIMIT 10;
