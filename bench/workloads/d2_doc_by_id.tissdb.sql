-- D2 (TissDB): read a whole document by id: SELECT * gives id and every top-level field
-- (objects and arrays as jsonb); TissQL has no single-value whole-document form.
\set id random(1, :rows)
SELECT * FROM products WHERE id = :id::text;
