-- Transaction blocks through psql: ON_ERROR_ROLLBACK (psql wraps each statement of a
-- block in its own savepoint, which it does only while ReadyForQuery says 'T'), failed
-- blocks, savepoints by hand, READ ONLY and the isolation level. The script runs
-- unchanged on PostgreSQL 15, which prints exactly the same. Errors whose wording is
-- TissDB's own are shown by their SQLSTATE only (VERBOSITY sqlstate).

\set ON_ERROR_STOP 0
CREATE TABLE tx (id integer PRIMARY KEY, note text);

-- ON_ERROR_ROLLBACK: a failing statement is undone alone, the block goes on, and COMMIT
-- keeps every good row.
\set ON_ERROR_ROLLBACK on
BEGIN;
INSERT INTO tx VALUES (1, 'before the error');
SELECT 1 / 0;
INSERT INTO tx VALUES (2, 'after the error');
\set VERBOSITY sqlstate
INSERT INTO tx VALUES (1, 'duplicate key');
\set VERBOSITY default
UPDATE tx SET note = note || ', updated' WHERE id = 2;
COMMIT;
SELECT * FROM tx ORDER BY id;
\set ON_ERROR_ROLLBACK off

-- Without it, an error fails the whole block: later statements are refused and COMMIT
-- rolls back.
BEGIN;
INSERT INTO tx VALUES (4, 'lost');
SELECT 1 / 0;
INSERT INTO tx VALUES (5, 'refused');
\echo SQLSTATE=:LAST_ERROR_SQLSTATE
COMMIT;
SELECT count(*) AS after_failed_block FROM tx WHERE id >= 4;

-- Savepoints by hand: ROLLBACK TO undoes what followed (and forgets later savepoints),
-- RELEASE forgets one, ROLLBACK TO recovers a failed block.
BEGIN;
INSERT INTO tx VALUES (10, 'kept');
SAVEPOINT a;
INSERT INTO tx VALUES (11, 'undone');
UPDATE tx SET note = 'changed, then undone' WHERE id = 1;
SAVEPOINT b;
DELETE FROM tx WHERE id = 2;
ROLLBACK TO SAVEPOINT a;
SELECT id, note FROM tx ORDER BY id;
SAVEPOINT c;
INSERT INTO tx VALUES (12, 'undone with a');
RELEASE SAVEPOINT c;
ROLLBACK TO SAVEPOINT b;
SELECT 1;
ROLLBACK TO SAVEPOINT a;
INSERT INTO tx VALUES (13, 'after recovery');
SAVEPOINT d;
UPDATE tx SET note = 'released, kept' WHERE id = 10;
RELEASE d;
COMMIT;
SELECT id, note FROM tx ORDER BY id;

-- A read-only block refuses writes (25006).
START TRANSACTION READ ONLY;
SHOW transaction_read_only;
SELECT count(*) FROM tx;
\set VERBOSITY sqlstate
INSERT INTO tx VALUES (20, 'read only');
\set VERBOSITY default
ROLLBACK;
SHOW transaction_read_only;

-- Serializable, as asked for (TissDB runs every transaction so).
BEGIN ISOLATION LEVEL SERIALIZABLE;
SHOW TRANSACTION ISOLATION LEVEL;
SELECT count(*) FROM tx;
COMMIT;

DROP TABLE tx;
