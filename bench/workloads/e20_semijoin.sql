-- E20 (semijoin): an everyday query, against an index on brand and one on qty.
SELECT count(*) FROM items i WHERE EXISTS (SELECT 1 FROM items j WHERE j.id = i.qty + 1);
