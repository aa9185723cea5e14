-- W2: point SELECT by primary key (rows is passed with pgbench -D rows=N).
\set id random(1, :rows)
SELECT brand, price FROM items WHERE id = :id;
