-- E07 (distinct): an everyday query, against an index on brand and one on qty.
SELECT DISTINCT brand FROM items;
