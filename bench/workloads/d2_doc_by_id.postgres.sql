-- D2 (PostgreSQL): read a whole document by id (rows is passed with pgbench -D rows=N).
\set id random(1, :rows)
SELECT doc FROM products WHERE id = :id::text;
