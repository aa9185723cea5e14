-- J2: a selective join: the orders of one random customer (about 10 rows). Run once
-- before and once after `CREATE INDEX ON orders (customer_id)` (customers passed with -D).
\set id random(1, :customers)
SELECT sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = :id;
