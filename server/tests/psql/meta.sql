-- psql's own behaviour against TissDB: error handling variables, verbosity, transaction
-- blocks, \gset, expanded and CSV output.

\set ON_ERROR_STOP 0
CREATE COLLECTION m;
INSERT INTO m (id, v) VALUES ('a', 1), ('b', 2);

-- An error in the middle: psql reports it and goes on.
SELECT nope FROM m;
\echo ERROR=:ERROR SQLSTATE=:LAST_ERROR_SQLSTATE
SELECT count(*) FROM m;
\echo ERROR=:ERROR ROW_COUNT=:ROW_COUNT

-- Verbose errors carry their SQLSTATE.
\set VERBOSITY verbose
SELECT * FROM no_such_table;
SELECT 1 / 0;
SELECT v FROM m WHERE;
INSERT INTO m (id, v) VALUES ('a', 3);
\set VERBOSITY default
\echo LAST_ERROR_SQLSTATE=:LAST_ERROR_SQLSTATE

-- A transaction block that commits.
BEGIN;
INSERT INTO m (id, v) VALUES ('c', 3);
UPDATE m SET v = v * 10 WHERE id = 'a';
COMMIT;
SELECT id, v FROM m ORDER BY id;

-- A failed block: every statement is refused until it ends; COMMIT then rolls back.
BEGIN;
SELECT v / 0 FROM m;
SELECT 1;
\echo SQLSTATE=:LAST_ERROR_SQLSTATE
COMMIT;
SELECT 1 AS works_again;

-- A read-only block rolled back.
BEGIN;
SELECT count(*) FROM m;
ROLLBACK;

-- \gset, expanded display, CSV output, NULL display.
SELECT count(*) AS n, max(v) AS top FROM m \gset
\echo n=:n top=:top
\x on
SELECT id, v FROM m WHERE id = 'c';
\x off
\pset format csv
SELECT id, v, 'a, "quoted" text' AS t FROM m ORDER BY id;
\pset format aligned
\pset null '(null)'
SELECT id, v, NULL AS nothing FROM m WHERE id = 'a';
SET application_name = 'golden';
SHOW application_name;
DROP COLLECTION m;
