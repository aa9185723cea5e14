-- rest suite, wire side of GET and QUERY: TissDB's point SELECT of a whole document by
-- id over the PostgreSQL protocol (rows is passed with pgbench -D rows=N).
\set id random(1, :rows)
SELECT * FROM docs WHERE id = :id::text;
