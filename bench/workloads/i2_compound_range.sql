-- I2: the seed's compound query shape on the index (brand, price): equality on the
-- first field, a range on the second (up to 2% of one brand's rows).
\set b random(10, 49)
\set p random(100, 2000)
SELECT id, price FROM items WHERE brand = 'brand_' || :b::text AND price < :p / 100.0;
