-- E13 (in_list): an everyday query, against an index on brand and one on qty.
SELECT brand, count(*) FROM items WHERE brand IN ('brand_01','brand_02','brand_03') GROUP BY brand;
