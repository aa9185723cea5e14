-- W1: single-row INSERT, autocommit. Ids far above the loaded range so they never
-- collide with the data set; a rare duplicate between random draws is skipped.
\set id random(1000001, 2000000000)
INSERT INTO items (id, brand, price, qty) VALUES (:id, 'b1', 1.5, 1) ON CONFLICT DO NOTHING;
