-- D4 (PostgreSQL): GROUP BY a top-level field with the average of a numeric field, over
-- every document.
SELECT doc->>'category', avg((doc->>'price')::float8) FROM products GROUP BY 1;
