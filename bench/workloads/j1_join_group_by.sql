-- J1: equi-join of all orders with their customers (hash join; no index on
-- orders.customer_id), aggregated per region so the result is small (10 rows).
SELECT c.region, count(*), sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region;
