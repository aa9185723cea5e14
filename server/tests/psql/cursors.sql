-- Cursors as Tableau and ODBC clients use them: DECLARE ... CURSOR [WITH HOLD] FOR,
-- FETCH n / NEXT / ALL, CLOSE; a cursor without WITH HOLD ends with its transaction.
CREATE TABLE cur (id int PRIMARY KEY, v text);
INSERT INTO cur SELECT n, 'v' || n FROM generate_series(1, 5) AS n;

BEGIN;
DECLARE c1 CURSOR FOR SELECT id FROM cur ORDER BY id;
FETCH 2 FROM c1;
FETCH NEXT IN c1;
FETCH ALL FROM c1;
FETCH 1 FROM c1;
DECLARE "SQL_CUR1" CURSOR WITH HOLD FOR SELECT v FROM cur ORDER BY id DESC;
COMMIT;
-- The held cursor outlives the transaction (and saw the rows of its snapshot).
INSERT INTO cur VALUES (6, 'v6');
FETCH 2 IN "SQL_CUR1";
FETCH FORWARD 10 IN "SQL_CUR1";
CLOSE "SQL_CUR1";

\set ON_ERROR_STOP 0
-- Outside a block a cursor needs WITH HOLD; c1 ended with its transaction.
DECLARE c2 CURSOR FOR SELECT * FROM cur;
FETCH 1 FROM c1;
FETCH PRIOR FROM c1;
BEGIN;
DECLARE c3 CURSOR FOR SELECT 1;
DECLARE c3 CURSOR FOR SELECT 2;
ROLLBACK;
\set ON_ERROR_STOP 1
DECLARE c4 CURSOR WITH HOLD FOR SELECT count(*) FROM cur;
CLOSE ALL;
SELECT count(*) FROM cur;
