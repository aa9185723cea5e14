-- D4 (TissDB): GROUP BY a top-level field with the average of a numeric field, over every
-- document.
SELECT category, avg(price) FROM products GROUP BY 1;
