-- W3: UPDATE one row by primary key, autocommit.
\set id random(1, :rows)
UPDATE items SET qty = qty + 1 WHERE id = :id;
