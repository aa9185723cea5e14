-- W5: GROUP BY aggregate over the whole table (about 50 groups).
SELECT brand, count(*), avg(price) FROM items GROUP BY brand;
