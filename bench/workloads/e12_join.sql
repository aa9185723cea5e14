-- E12 (join): an everyday query, against an index on brand and one on qty.
SELECT a.id, b.id FROM items a JOIN items b ON a.id = b.qty WHERE a.id < 50;
