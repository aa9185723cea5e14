-- numeric(p, s) rounds to its scale and refuses values over its precision, on INSERT,
-- on UPDATE and in casts, as in PostgreSQL. The golden file is PostgreSQL 15's output.

CREATE TABLE prices (id integer PRIMARY KEY, p numeric(5,2));
INSERT INTO prices (id, p) VALUES (1, 12.5), (2, 1.005), (3, 7);
SELECT id, p FROM prices ORDER BY id;
UPDATE prices SET p = p / 3 WHERE id = 1 RETURNING id, p;
SELECT 12.5::numeric(10,2) AS a, 1.005::numeric(10,2) AS b, 2::numeric(4,1) AS c;
\set ON_ERROR_STOP 0
\set VERBOSITY terse
INSERT INTO prices (id, p) VALUES (4, 12345.6);
\echo :LAST_ERROR_SQLSTATE
UPDATE prices SET p = p * 1000;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT id, p FROM prices ORDER BY id;
DROP TABLE prices;
