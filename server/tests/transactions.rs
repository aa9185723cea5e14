//! Transactions end to end: the real `tissdb` binary against real clients (tokio-postgres
//! over the extended and simple protocols, and a raw socket client for ReadyForQuery's
//! status byte and the exact command tags).
//!
//! * atomicity of a block writing a typed table and a schemaless collection, seen from a
//!   second connection; ROLLBACK, the driver's transaction API, a dropped connection;
//! * failed blocks (25P02), savepoints, COMMIT of a failed block, ReadyForQuery I/T/E;
//! * concurrent bank transfers retried on 40001: the total, every balance and a shared
//!   counter come out exact, and readers always see a consistent state;
//! * write skew and lost updates refused with 40001;
//! * READ ONLY (25006) and `SHOW TRANSACTION ISOLATION LEVEL`;
//! * SIGKILL with transactions in flight (with and without memtable flushes): every
//!   acknowledged transaction is there whole, no transaction is there in part, and an
//!   uncommitted one left nothing.
//!
//! The engine-level tests are in tests/transactions.rs, psql's view of transaction
//! blocks (ON_ERROR_ROLLBACK) in tests/psql/transactions.sql.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel, SimpleQueryMessage};

/// How long the body of one test may run (the server's start comes on top, and is
/// itself bounded by the harness).
const BODY_TIMEOUT: Duration = Duration::from_secs(25);

/// Runs `body`, failing the test if it runs longer than [`BODY_TIMEOUT`] (a hang is a
/// failure, not a stuck test run).
async fn bounded<F: Future>(what: &str, body: F) -> F::Output {
    common::bounded(what, BODY_TIMEOUT, body).await
}

// ------------------------------------------------------------------------------------
// tokio-postgres helpers
// ------------------------------------------------------------------------------------

async fn connect(s: &Server) -> Client {
    common::pg_connect(s, "user=txn_tester application_name=txn-tests").await
}

/// The rows of a simple query (every statement of it), as text.
async fn rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    common::simple_rows(c, sql).await
}

/// The rows of a simple query, each as `a|b|c` (NULL as the empty string).
async fn lines(c: &Client, sql: &str) -> Vec<String> {
    rows(c, sql)
        .await
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Like [`lines`], but returns the error.
async fn try_lines(c: &Client, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(c.simple_query(sql)
        .await?
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect())
}

/// The result column names of a simple query.
async fn columns(c: &Client, sql: &str) -> Vec<String> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::RowDescription(cols) => {
                Some(cols.iter().map(|c| c.name().to_string()).collect())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row description"))
}

/// The one row of a simple query, as `a|b|c`.
async fn one(c: &Client, sql: &str) -> String {
    let mut out = lines(c, sql).await;
    assert_eq!(out.len(), 1, "{sql}: expected one row, got {out:?}");
    out.remove(0)
}

/// Runs statements (simple protocol), panicking on an error.
async fn exec(c: &Client, sql: &str) {
    c.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// The SQLSTATE of a server error; panics on any other error.
fn code_of(e: &tokio_postgres::Error) -> SqlState {
    e.code()
        .cloned()
        .unwrap_or_else(|| panic!("not an error from the server: {e:?}"))
}

/// Asserts that `result` is a server error with `code`.
#[track_caller]
fn assert_code<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, tokio_postgres::Error>,
    code: SqlState,
) {
    match result {
        Ok(v) => panic!("{what}: expected SQLSTATE {}, got Ok({v:?})", code.code()),
        Err(e) => assert_eq!(
            code_of(&e),
            code,
            "{what}: expected SQLSTATE {}, got {e:?}",
            code.code()
        ),
    }
}

/// True for the errors a client retries a transaction on.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

// ------------------------------------------------------------------------------------
// A raw protocol client: ReadyForQuery's status and command tags
// ------------------------------------------------------------------------------------

/// What the server answered to one simple Query, up to its ReadyForQuery.
#[derive(Debug, Default)]
struct Reply {
    /// CommandComplete tags, in order.
    tags: Vec<String>,
    /// SQLSTATEs of ErrorResponses.
    errors: Vec<String>,
    /// (severity, SQLSTATE) of NoticeResponses.
    notices: Vec<(String, String)>,
    /// DataRows, as text.
    rows: Vec<Vec<Option<String>>>,
    /// ReadyForQuery's status: I, T or E.
    status: char,
}

struct Raw {
    stream: TcpStream,
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Error or notice fields by their one-byte code.
fn fields(body: &[u8]) -> HashMap<u8, String> {
    body.split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0], String::from_utf8_lossy(&f[1..]).into_owned()))
        .collect()
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let mut raw = Raw { stream };
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for (k, v) in [("user", "raw"), ("database", "tissdb")] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        raw.stream.write_all(&packet).expect("startup");
        let reply = raw.until_ready();
        assert!(reply.errors.is_empty(), "startup failed: {reply:?}");
        assert_eq!(reply.status, 'I', "status after startup");
        raw
    }

    fn read_msg(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head).expect("message header");
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body).expect("message body");
        (head[0], body)
    }

    fn until_ready(&mut self) -> Reply {
        let mut reply = Reply::default();
        loop {
            let (tag, body) = self.read_msg();
            match tag {
                b'Z' => {
                    reply.status = body[0] as char;
                    return reply;
                }
                b'C' => reply.tags.push(
                    String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body)).into_owned(),
                ),
                b'E' => reply
                    .errors
                    .push(fields(&body).remove(&b'C').unwrap_or_default()),
                b'N' => {
                    let f = fields(&body);
                    reply.notices.push((
                        f.get(&b'V').or(f.get(&b'S')).cloned().unwrap_or_default(),
                        f.get(&b'C').cloned().unwrap_or_default(),
                    ));
                }
                b'D' => {
                    let n = i16::from_be_bytes([body[0], body[1]]) as usize;
                    let mut at = 2;
                    let mut row = Vec::with_capacity(n);
                    for _ in 0..n {
                        let len = i32::from_be_bytes([
                            body[at],
                            body[at + 1],
                            body[at + 2],
                            body[at + 3],
                        ]);
                        at += 4;
                        if len < 0 {
                            row.push(None);
                        } else {
                            let end = at + len as usize;
                            row.push(Some(String::from_utf8_lossy(&body[at..end]).into_owned()));
                            at = end;
                        }
                    }
                    reply.rows.push(row);
                }
                _ => {}
            }
        }
    }

    /// Sends one simple Query and reads the answer up to ReadyForQuery.
    fn query(&mut self, sql: &str) -> Reply {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.stream
            .write_all(&frame(b'Q', &body))
            .expect("send Query");
        self.until_ready()
    }

    /// Sends a Query that must succeed with these tags; returns the status.
    #[track_caller]
    fn ok(&mut self, sql: &str, tags: &[&str]) -> char {
        let r = self.query(sql);
        assert!(r.errors.is_empty(), "{sql}: {r:?}");
        assert_eq!(r.tags, tags, "{sql}: {r:?}");
        r.status
    }

    /// Sends a Query that must fail with `code`; returns the status.
    #[track_caller]
    fn fails(&mut self, sql: &str, code: &str) -> char {
        let r = self.query(sql);
        assert_eq!(r.errors, [code], "{sql}: {r:?}");
        r.status
    }
}

// ------------------------------------------------------------------------------------
// Atomicity and visibility
// ------------------------------------------------------------------------------------

async fn bank_setup(c: &Client) {
    exec(
        c,
        "CREATE TABLE accounts (id int PRIMARY KEY, balance int);
         CREATE COLLECTION audit;
         INSERT INTO accounts VALUES (1, 100), (2, 100), (3, 100);
         INSERT INTO audit (id, what, amount) VALUES ('t0', 'opening', 0);",
    )
    .await;
}

/// What a second connection sees of accounts and audit.
async fn state(c: &Client) -> (Vec<String>, Vec<String>) {
    (
        lines(c, "SELECT id, balance FROM accounts ORDER BY id").await,
        lines(c, "SELECT id, what, amount FROM audit ORDER BY id").await,
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_over_a_table_and_a_collection_is_all_or_nothing() {
    let s = Server::start();
    bounded("atomicity", async {
        let mut a = connect(&s).await;
        let b = connect(&s).await;
        bank_setup(&a).await;
        let before = (
            strings(&["1|100", "2|100", "3|100"]),
            strings(&["t0|opening|0"]),
        );
        assert_eq!(state(&b).await, before);

        // A block moving 30 from 1 to 2, with an audit document, over simple queries.
        exec(&a, "BEGIN").await;
        exec(
            &a,
            "UPDATE accounts SET balance = balance - 30 WHERE id = 1",
        )
        .await;
        exec(
            &a,
            "INSERT INTO audit (id, what, amount) VALUES ('t1', 'move 1->2', 30)",
        )
        .await;
        exec(
            &a,
            "UPDATE accounts SET balance = balance + 30 WHERE id = 2",
        )
        .await;
        // The writer sees its own writes; nobody else does before COMMIT.
        assert_eq!(
            state(&a).await,
            (
                strings(&["1|70", "2|130", "3|100"]),
                strings(&["t0|opening|0", "t1|move 1->2|30"])
            )
        );
        assert_eq!(state(&b).await, before, "visible before COMMIT");
        assert_eq!(one(&b, "SELECT count(*) FROM audit").await, "1");
        exec(&a, "COMMIT").await;
        let after_t1 = (
            strings(&["1|70", "2|130", "3|100"]),
            strings(&["t0|opening|0", "t1|move 1->2|30"]),
        );
        assert_eq!(state(&b).await, after_t1, "after COMMIT");

        // ROLLBACK: updates, a delete and inserts into both collections leave nothing.
        exec(
            &a,
            "BEGIN;
             UPDATE accounts SET balance = 0;
             DELETE FROM accounts WHERE id = 3;
             INSERT INTO accounts VALUES (4, 400);
             INSERT INTO audit (id, what, amount) VALUES ('t2', 'wipe', 0);
             DELETE FROM audit WHERE id = 't1';",
        )
        .await;
        assert_eq!(
            state(&a).await,
            (
                strings(&["1|0", "2|0", "4|400"]),
                strings(&["t0|opening|0", "t2|wipe|0"])
            )
        );
        assert_eq!(state(&b).await, after_t1, "visible before ROLLBACK");
        exec(&a, "ROLLBACK").await;
        assert_eq!(
            state(&b).await,
            after_t1,
            "after ROLLBACK (other connection)"
        );
        assert_eq!(
            state(&a).await,
            after_t1,
            "after ROLLBACK (same connection)"
        );

        // The driver's API over the extended protocol: dropped = rolled back.
        let debit = "UPDATE accounts SET balance = balance - $1 WHERE id = $2";
        let credit = "UPDATE accounts SET balance = balance + $1 WHERE id = $2";
        {
            let tx = a.transaction().await.expect("BEGIN");
            assert_eq!(tx.execute(debit, &[&5i32, &2i32]).await.expect(debit), 1);
            assert_eq!(tx.execute(credit, &[&5i32, &3i32]).await.expect(credit), 1);
            let n = tx
                .execute(
                    "INSERT INTO audit (id, what, amount) VALUES ('t3', 'dropped', 5)",
                    &[],
                )
                .await
                .expect("insert t3");
            assert_eq!(n, 1);
            let got: i32 = tx
                .query_one("SELECT balance FROM accounts WHERE id = $1", &[&2i32])
                .await
                .expect("read own write")
                .get(0);
            assert_eq!(got, 125, "the transaction reads its own write");
            assert_eq!(
                state(&b).await,
                after_t1,
                "visible before the driver's commit"
            );
            // Dropped without commit: the driver sends ROLLBACK.
        }
        assert_eq!(
            state(&b).await,
            after_t1,
            "a dropped transaction left writes"
        );
        assert_eq!(state(&a).await, after_t1);

        // ... and committed.
        let tx = a.transaction().await.expect("BEGIN");
        tx.execute(debit, &[&5i32, &2i32]).await.expect(debit);
        tx.execute(credit, &[&5i32, &3i32]).await.expect(credit);
        tx.execute(
            "INSERT INTO audit (id, what, amount) VALUES ('t4', 'move 2->3', 5)",
            &[],
        )
        .await
        .expect("insert t4");
        assert_eq!(state(&b).await, after_t1);
        tx.commit().await.expect("COMMIT");
        let after_t4 = (
            strings(&["1|70", "2|125", "3|105"]),
            strings(&["t0|opening|0", "t1|move 1->2|30", "t4|move 2->3|5"]),
        );
        assert_eq!(state(&b).await, after_t4, "after the driver's commit");

        // A connection that goes away with an open block leaves nothing either.
        let c = connect(&s).await;
        exec(
            &c,
            "BEGIN; UPDATE accounts SET balance = -1 WHERE id = 1;
             INSERT INTO audit (id, what, amount) VALUES ('t5', 'gone', 1)",
        )
        .await;
        drop(c);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            state(&b).await,
            after_t4,
            "a closed connection's block left writes"
        );
    })
    .await;
}

/// A transaction reads the snapshot of its BEGIN: commits made meanwhile by others stay
/// invisible to it (repeatable reads, no phantoms), and it still commits if it only read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_reads_one_snapshot() {
    let s = Server::start();
    bounded("snapshot", async {
        let a = connect(&s).await;
        let b = connect(&s).await;
        bank_setup(&a).await;
        exec(&a, "BEGIN").await;
        assert_eq!(one(&a, "SELECT sum(balance) FROM accounts").await, "300");
        exec(
            &b,
            "UPDATE accounts SET balance = 0 WHERE id = 1;
             INSERT INTO accounts VALUES (9, 5);
             INSERT INTO audit (id, what, amount) VALUES ('x', 'new', 1)",
        )
        .await;
        assert_eq!(one(&a, "SELECT sum(balance) FROM accounts").await, "300");
        assert_eq!(
            one(&a, "SELECT balance FROM accounts WHERE id = 1").await,
            "100"
        );
        assert_eq!(
            one(&a, "SELECT count(*) FROM accounts WHERE id = 9").await,
            "0"
        );
        assert_eq!(one(&a, "SELECT count(*) FROM audit").await, "1");
        exec(&a, "COMMIT").await;
        assert_eq!(one(&a, "SELECT sum(balance) FROM accounts").await, "205");
        assert_eq!(one(&a, "SELECT count(*) FROM audit").await, "2");
    })
    .await;
}

// ------------------------------------------------------------------------------------
// Failed blocks, savepoints, ReadyForQuery
// ------------------------------------------------------------------------------------

/// ReadyForQuery's status and the command tags through a block, an error, a savepoint
/// that recovers it, and the COMMIT of a failed block (which answers ROLLBACK).
#[test]
fn ready_for_query_status_through_failed_blocks_and_savepoints() {
    let s = Server::start();
    let mut r = Raw::connect(s.pg_port());
    assert_eq!(
        r.ok(
            "CREATE TABLE t (id int PRIMARY KEY, v text)",
            &["CREATE TABLE"]
        ),
        'I'
    );
    assert_eq!(r.ok("BEGIN", &["BEGIN"]), 'T');
    assert_eq!(
        r.ok("INSERT INTO t VALUES (1, 'one')", &["INSERT 0 1"]),
        'T'
    );
    assert_eq!(r.ok("SAVEPOINT s1", &["SAVEPOINT"]), 'T');
    assert_eq!(
        r.ok("INSERT INTO t VALUES (2, 'undone')", &["INSERT 0 1"]),
        'T'
    );
    assert_eq!(r.fails("SELECT 1 / 0", "22012"), 'E');
    assert_eq!(r.fails("SELECT 1", "25P02"), 'E');
    assert_eq!(r.fails("INSERT INTO t VALUES (3, 'no')", "25P02"), 'E');
    // Recovers the block, undoing what followed the savepoint.
    assert_eq!(r.ok("ROLLBACK TO SAVEPOINT s1", &["ROLLBACK"]), 'T');
    let sel = r.query("SELECT id, v FROM t ORDER BY id");
    assert_eq!(
        sel.rows,
        [[Some("1".into()), Some("one".into())]],
        "{sel:?}"
    );
    assert_eq!(sel.status, 'T');
    // A duplicate key fails the block too; ROLLBACK TO recovers it again.
    assert_eq!(r.fails("INSERT INTO t VALUES (1, 'dup')", "23505"), 'E');
    assert_eq!(r.ok("ROLLBACK TO s1", &["ROLLBACK"]), 'T');
    assert_eq!(
        r.ok("INSERT INTO t VALUES (4, 'four')", &["INSERT 0 1"]),
        'T'
    );
    assert_eq!(r.ok("RELEASE SAVEPOINT s1", &["RELEASE"]), 'T');
    // Released: gone.
    assert_eq!(r.fails("ROLLBACK TO SAVEPOINT s1", "3B001"), 'E');
    assert_eq!(r.fails("RELEASE SAVEPOINT s1", "25P02"), 'E');
    // COMMIT of a failed block rolls back and says so.
    assert_eq!(r.ok("COMMIT", &["ROLLBACK"]), 'I');
    assert!(
        r.query("SELECT id FROM t").rows.is_empty(),
        "a failed block wrote something"
    );

    // The same block without the stray ROLLBACK TO: committed.
    assert_eq!(
        r.ok(
            "BEGIN; INSERT INTO t VALUES (1, 'one'); SAVEPOINT s1; INSERT INTO t VALUES (2, 'two')",
            &["BEGIN", "INSERT 0 1", "SAVEPOINT", "INSERT 0 1"]
        ),
        'T'
    );
    assert_eq!(r.fails("SELECT 1 / 0", "22012"), 'E');
    assert_eq!(r.ok("ROLLBACK TO SAVEPOINT s1", &["ROLLBACK"]), 'T');
    assert_eq!(
        r.ok("INSERT INTO t VALUES (3, 'three')", &["INSERT 0 1"]),
        'T'
    );
    assert_eq!(r.ok("COMMIT", &["COMMIT"]), 'I');
    let sel = r.query("SELECT id FROM t ORDER BY id");
    assert_eq!(
        sel.rows,
        [[Some("1".to_string())], [Some("3".to_string())]],
        "{sel:?}"
    );

    // Nested savepoints: rolling back to the outer one forgets the inner one.
    r.ok(
        "BEGIN; SAVEPOINT a; INSERT INTO t VALUES (10, 'x'); SAVEPOINT b; INSERT INTO t VALUES (11, 'y')",
        &["BEGIN", "SAVEPOINT", "INSERT 0 1", "SAVEPOINT", "INSERT 0 1"],
    );
    assert_eq!(r.ok("ROLLBACK TO SAVEPOINT a", &["ROLLBACK"]), 'T');
    assert_eq!(r.fails("ROLLBACK TO SAVEPOINT b", "3B001"), 'E');
    assert_eq!(r.ok("ROLLBACK TO SAVEPOINT a", &["ROLLBACK"]), 'T');
    assert_eq!(r.ok("ROLLBACK", &["ROLLBACK"]), 'I');

    // Savepoints outside a block: 25P01; the session stays idle.
    assert_eq!(r.fails("SAVEPOINT x", "25P01"), 'I');
    assert_eq!(r.fails("ROLLBACK TO SAVEPOINT x", "25P01"), 'I');
    // An error in a multi-statement query inside a block fails the block.
    assert_eq!(r.fails("BEGIN; SELECT 1 / 0", "22012"), 'E');
    assert_eq!(r.ok("ROLLBACK", &["ROLLBACK"]), 'I');
    let sel = r.query("SELECT count(*) FROM t");
    assert_eq!(sel.rows, [[Some("2".to_string())]], "{sel:?}");
}

/// PostgreSQL runs the statements of one simple Query message as one implicit
/// transaction (unless they contain BEGIN/COMMIT): an error in a later statement undoes
/// the earlier ones.
#[test]
fn a_multi_statement_query_is_one_implicit_transaction() {
    let s = Server::start();
    let mut r = Raw::connect(s.pg_port());
    r.ok("CREATE TABLE imp (id int PRIMARY KEY)", &["CREATE TABLE"]);
    let reply = r.query("INSERT INTO imp VALUES (1); INSERT INTO imp VALUES (2); SELECT 1 / 0");
    assert_eq!(reply.tags, ["INSERT 0 1", "INSERT 0 1"], "{reply:?}");
    assert_eq!(reply.errors, ["22012"], "{reply:?}");
    assert_eq!(reply.status, 'I');
    let sel = r.query("SELECT count(*) FROM imp");
    assert_eq!(
        sel.rows,
        [[Some("0".to_string())]],
        "the inserts before the error in the same Query message were kept (PostgreSQL rolls \
         the whole implicit transaction back)"
    );
}

/// COMMIT or ROLLBACK outside a block, and BEGIN inside one, succeed with a WARNING
/// notice in PostgreSQL (25P01 and 25001).
#[test]
fn stray_transaction_commands_warn_like_postgres() {
    let s = Server::start();
    let mut r = Raw::connect(s.pg_port());
    for (sql, tag) in [("COMMIT", "COMMIT"), ("ROLLBACK", "ROLLBACK")] {
        let reply = r.query(sql);
        assert!(reply.errors.is_empty(), "{sql}: {reply:?}");
        assert_eq!(reply.tags, [tag], "{sql}: {reply:?}");
        assert_eq!(reply.status, 'I');
        assert_eq!(
            reply.notices,
            [("WARNING".to_string(), "25P01".to_string())],
            "{sql} outside a block: PostgreSQL warns \"there is no transaction in progress\""
        );
    }
    assert_eq!(r.ok("BEGIN", &["BEGIN"]), 'T');
    let reply = r.query("BEGIN");
    assert_eq!(reply.tags, ["BEGIN"], "{reply:?}");
    assert_eq!(reply.status, 'T');
    assert_eq!(
        reply.notices,
        [("WARNING".to_string(), "25001".to_string())],
        "BEGIN inside a block: PostgreSQL warns \"there is already a transaction in progress\""
    );
    assert_eq!(r.ok("ROLLBACK", &["ROLLBACK"]), 'I');
}

/// The same through tokio-postgres (extended protocol for the statements): 25P02 after an
/// error, ROLLBACK TO SAVEPOINT recovers, COMMIT of a failed block writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_blocks_through_the_driver() {
    let s = Server::start();
    bounded("failed blocks", async {
        let mut c = connect(&s).await;
        let other = connect(&s).await;
        exec(&c, "CREATE TABLE t (id int PRIMARY KEY, v int)").await;
        let insert = c
            .prepare("INSERT INTO t (id, v) VALUES ($1, $2)")
            .await
            .expect("prepare INSERT");

        // An error fails the block: every statement is refused with 25P02.
        exec(&c, "BEGIN").await;
        c.execute(&insert, &[&1i32, &10i32])
            .await
            .expect("insert 1");
        assert_code(
            "division by zero",
            c.query("SELECT 1 / $1::int", &[&0i32]).await,
            SqlState::DIVISION_BY_ZERO,
        );
        assert_code(
            "prepared insert after the error",
            c.execute(&insert, &[&2i32, &20i32]).await,
            SqlState::IN_FAILED_SQL_TRANSACTION,
        );
        assert_code(
            "simple SELECT after the error",
            c.simple_query("SELECT 1").await,
            SqlState::IN_FAILED_SQL_TRANSACTION,
        );
        // COMMIT of a failed block: no error, nothing written.
        c.batch_execute("COMMIT")
            .await
            .expect("COMMIT of a failed block answers ROLLBACK, not an error");
        assert_eq!(one(&c, "SELECT count(*) FROM t").await, "0");
        assert_eq!(one(&other, "SELECT count(*) FROM t").await, "0");

        // ROLLBACK TO SAVEPOINT recovers a failed block.
        exec(&c, "BEGIN").await;
        c.execute(&insert, &[&1i32, &10i32])
            .await
            .expect("insert 1");
        exec(&c, "SAVEPOINT before_dup").await;
        c.execute(&insert, &[&2i32, &20i32])
            .await
            .expect("insert 2");
        assert_code(
            "duplicate key",
            c.execute(&insert, &[&1i32, &11i32]).await,
            SqlState::UNIQUE_VIOLATION,
        );
        assert_code(
            "after the duplicate",
            c.query_one("SELECT count(*) FROM t", &[]).await,
            SqlState::IN_FAILED_SQL_TRANSACTION,
        );
        exec(&c, "ROLLBACK TO SAVEPOINT before_dup").await;
        c.execute(&insert, &[&3i32, &30i32])
            .await
            .expect("insert 3");
        assert_eq!(lines(&c, "SELECT id FROM t ORDER BY id").await, ["1", "3"]);
        assert_eq!(one(&other, "SELECT count(*) FROM t").await, "0");
        exec(&c, "COMMIT").await;
        assert_eq!(
            lines(&other, "SELECT id, v FROM t ORDER BY id").await,
            ["1|10", "3|30"]
        );

        // The driver's nested transactions are savepoints.
        let mut tx = c.transaction().await.expect("BEGIN");
        tx.execute(&insert, &[&4i32, &40i32])
            .await
            .expect("insert 4");
        {
            let sp = tx.savepoint("inner").await.expect("SAVEPOINT");
            sp.execute(&insert, &[&5i32, &50i32])
                .await
                .expect("insert 5");
            assert_code(
                "duplicate inside the savepoint",
                sp.execute(&insert, &[&4i32, &0i32]).await,
                SqlState::UNIQUE_VIOLATION,
            );
            // Dropped: ROLLBACK TO SAVEPOINT.
        }
        tx.execute(&insert, &[&6i32, &60i32])
            .await
            .expect("insert 6");
        {
            let sp = tx.savepoint("kept").await.expect("SAVEPOINT");
            sp.execute(&insert, &[&7i32, &70i32])
                .await
                .expect("insert 7");
            sp.commit().await.expect("RELEASE");
        }
        tx.commit().await.expect("COMMIT");
        assert_eq!(
            lines(&other, "SELECT id FROM t ORDER BY id").await,
            ["1", "3", "4", "6", "7"]
        );
    })
    .await;
}

/// PostgreSQL refuses to parse a new statement in a failed block (25P02 for the Parse
/// message itself, except for ROLLBACK/COMMIT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_in_a_failed_block_is_refused() {
    let s = Server::start();
    bounded("parse in a failed block", async {
        let c = connect(&s).await;
        exec(&c, "CREATE TABLE t (id int PRIMARY KEY, v int)").await;
        exec(&c, "BEGIN").await;
        assert_code(
            "division by zero",
            c.simple_query("SELECT 1 / 0").await,
            SqlState::DIVISION_BY_ZERO,
        );
        assert_code(
            "Parse of a new statement in the failed block",
            c.prepare("SELECT v FROM t").await,
            SqlState::IN_FAILED_SQL_TRANSACTION,
        );
        exec(&c, "ROLLBACK").await;
        c.prepare("SELECT v FROM t")
            .await
            .expect("Parse after ROLLBACK");
    })
    .await;
}

/// Inside a block, a schemaless collection's columns include the fields the block itself
/// wrote first (it reads its own writes); other sessions see them only once committed,
/// and a rolled back block adds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_reads_the_new_fields_it_wrote() {
    let s = Server::start();
    bounded("new fields in a block", async {
        let a = connect(&s).await;
        let b = connect(&s).await;
        exec(
            &a,
            "CREATE COLLECTION notes; INSERT INTO notes (id, title) VALUES ('n0', 'old')",
        )
        .await;
        let star = "SELECT * FROM notes ORDER BY id";

        // Rolled back: the field it wrote never becomes a column.
        exec(
            &a,
            "BEGIN; INSERT INTO notes (id, ghost) VALUES ('g', 1); ROLLBACK",
        )
        .await;
        assert_eq!(columns(&b, star).await, ["id", "title"]);

        // New fields by INSERT and by UPDATE.
        exec(&a, "BEGIN").await;
        exec(
            &a,
            "INSERT INTO notes (id, title, body) VALUES ('n1', 'new', 'text')",
        )
        .await;
        exec(&a, "UPDATE notes SET stars = 5 WHERE id = 'n0'").await;
        // Not committed: another session has neither the rows nor the columns.
        assert_eq!(columns(&b, star).await, ["id", "title"]);
        assert_eq!(lines(&b, star).await, ["n0|old"]);
        // The block itself reads them.
        let own = try_lines(&a, "SELECT id, title, body, stars FROM notes ORDER BY id")
            .await
            .unwrap_or_else(|e| {
                panic!("the block cannot read the fields (body, stars) it wrote itself: {e:?}")
            });
        assert_eq!(own, ["n0|old||5", "n1|new|text|"]);
        // Its own new fields are columns of SELECT * too, after the old ones.
        let in_block = columns(&a, star).await;
        assert_eq!(in_block[..2], ["id", "title"], "SELECT * in the block");
        let mut new_fields = in_block[2..].to_vec();
        new_fields.sort();
        assert_eq!(new_fields, ["body", "stars"], "SELECT * in the block");
        exec(&a, "COMMIT").await;
        // Committed: everybody has them, in the order the block showed them.
        let committed = columns(&b, star).await;
        assert_eq!(
            committed, in_block,
            "the columns of SELECT * differ in the block and after its commit"
        );
        assert_eq!(
            lines(&b, "SELECT id, title, body, stars FROM notes ORDER BY id").await,
            ["n0|old||5", "n1|new|text|"]
        );
    })
    .await;
}

// ------------------------------------------------------------------------------------
// Serializability under concurrency
// ------------------------------------------------------------------------------------

const ACCOUNTS: i32 = 50;
const START_BALANCE: i32 = 1000;
const TASKS: usize = 8;
const TRANSFERS_PER_TASK: usize = 40;

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The transfers task `t` commits, in order: (from, to, amount) with from != to; the
/// same on every run.
fn planned_transfers(t: usize) -> Vec<(i32, i32, i32)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1000_0000_01B3));
    (0..TRANSFERS_PER_TASK)
        .map(|_| {
            let from = (rng.next() % ACCOUNTS as u64) as i32 + 1;
            let to =
                ((from as u64 + rng.next() % (ACCOUNTS as u64 - 1)) % ACCOUNTS as u64) as i32 + 1;
            let amount = (rng.next() % 100) as i32 + 1;
            (from, to, amount)
        })
        .collect()
}

/// One task's transfers, each retried on 40001/40P01 until it commits; returns the number
/// of retries.
async fn transfer_task(c: Client, t: usize) -> usize {
    let debit = c
        .prepare("UPDATE accounts SET balance = balance - $1 WHERE id = $2")
        .await
        .expect("prepare debit");
    let credit = c
        .prepare("UPDATE accounts SET balance = balance + $1 WHERE id = $2")
        .await
        .expect("prepare credit");
    let bump = c
        .prepare("UPDATE counters SET n = n + 1 WHERE id = 1")
        .await
        .expect("prepare bump");
    let mut retries = 0;
    for (k, (from, to, amount)) in planned_transfers(t).into_iter().enumerate() {
        loop {
            let attempt = async {
                c.batch_execute("BEGIN").await?;
                let n = c.execute(&debit, &[&amount, &from]).await?;
                assert_eq!(n, 1, "debit of account {from}");
                let n = c.execute(&credit, &[&amount, &to]).await?;
                assert_eq!(n, 1, "credit of account {to}");
                let n = c.execute(&bump, &[]).await?;
                assert_eq!(n, 1, "counter");
                c.execute(
                    &format!(
                        "INSERT INTO transfers (id, task, k, src, dst, amount) \
                         VALUES ('t{t}-{k:03}', {t}, {k}, {from}, {to}, {amount})"
                    ),
                    &[],
                )
                .await?;
                c.batch_execute("COMMIT").await
            }
            .await;
            match attempt {
                Ok(()) => break,
                Err(e) if is_retryable(&e) => {
                    retries += 1;
                    assert!(
                        retries < 5000,
                        "task {t}: more than 5000 retries (livelock?): {e:?}"
                    );
                    // After a failed COMMIT the session is idle already; after a failed
                    // statement the block must be ended.
                    c.batch_execute("ROLLBACK").await.expect("ROLLBACK");
                }
                Err(e) => panic!("task {t}, transfer {k}: {e:?}"),
            }
        }
    }
    retries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_keep_every_balance_exact() {
    let s = Server::start();
    bounded("bank transfers", async {
        let setup = connect(&s).await;
        let values: Vec<String> = (1..=ACCOUNTS)
            .map(|i| format!("({i}, {START_BALANCE})"))
            .collect();
        exec(
            &setup,
            &format!(
                "CREATE TABLE accounts (id int PRIMARY KEY, balance int);
                 INSERT INTO accounts VALUES {};
                 CREATE TABLE counters (id int PRIMARY KEY, n int);
                 INSERT INTO counters VALUES (1, 0), (2, 0);
                 CREATE COLLECTION transfers;",
                values.join(", ")
            ),
        )
        .await;
        let total = (ACCOUNTS * START_BALANCE).to_string();

        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let c = connect(&s).await;
            let done = done.clone();
            let total = total.clone();
            tokio::spawn(async move {
                let (mut autocommit_sums, mut blocks, mut last_n) = (0usize, 0usize, 0i64);
                while !done.load(Ordering::Relaxed) || blocks == 0 {
                    assert_eq!(
                        one(&c, "SELECT sum(balance) FROM accounts").await,
                        total,
                        "autocommit sum"
                    );
                    autocommit_sums += 1;
                    // Inside a block: two sums, the counter and the transfer log, all of
                    // one snapshot.
                    exec(&c, "BEGIN").await;
                    let first = one(&c, "SELECT sum(balance) FROM accounts").await;
                    let n: i64 = one(&c, "SELECT n FROM counters WHERE id = 1")
                        .await
                        .parse()
                        .expect("n");
                    let logged: i64 = one(&c, "SELECT count(*) FROM transfers")
                        .await
                        .parse()
                        .expect("count");
                    let second = one(&c, "SELECT sum(balance) FROM accounts").await;
                    let n_again = one(&c, "SELECT n FROM counters WHERE id = 1").await;
                    exec(&c, "COMMIT").await;
                    assert_eq!(first, total, "first sum in a block");
                    assert_eq!(second, total, "second sum in the same block");
                    assert_eq!(n, logged, "counter and transfer log of one snapshot");
                    assert_eq!(n_again, n.to_string(), "the counter moved inside a block");
                    assert!(n >= last_n, "the counter went back from {last_n} to {n}");
                    last_n = n;
                    blocks += 1;
                }
                (autocommit_sums, blocks)
            })
        };

        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let c = connect(&s).await;
            tasks.push(tokio::spawn(transfer_task(c, t)));
        }
        let mut retries = 0;
        for task in tasks {
            retries += task.await.expect("transfer task panicked");
        }
        done.store(true, Ordering::Relaxed);
        let (sums, blocks) = reader.await.expect("reader panicked");
        eprintln!(
            "{} transfers committed, {retries} retries; reader: {sums} autocommit sums, {blocks} blocks",
            TASKS * TRANSFERS_PER_TASK
        );

        // Every balance is what the committed transfers make it.
        let mut expected: BTreeMap<i32, i64> =
            (1..=ACCOUNTS).map(|i| (i, START_BALANCE as i64)).collect();
        for t in 0..TASKS {
            for (from, to, amount) in planned_transfers(t) {
                *expected.get_mut(&from).unwrap() -= amount as i64;
                *expected.get_mut(&to).unwrap() += amount as i64;
            }
        }
        let expected: Vec<String> = expected
            .iter()
            .map(|(id, b)| format!("{id}|{b}"))
            .collect();
        assert_eq!(
            lines(&setup, "SELECT id, balance FROM accounts ORDER BY id").await,
            expected,
            "balances"
        );
        assert_eq!(one(&setup, "SELECT sum(balance) FROM accounts").await, total);
        let committed = TASKS * TRANSFERS_PER_TASK;
        assert_eq!(
            lines(&setup, "SELECT id, n FROM counters ORDER BY id").await,
            [format!("1|{committed}"), "2|0".to_string()],
            "the counter lost updates"
        );
        assert_eq!(
            one(&setup, "SELECT count(*) FROM transfers").await,
            committed.to_string()
        );
        for t in 0..TASKS {
            assert_eq!(
                one(
                    &setup,
                    &format!("SELECT count(*) FROM transfers WHERE task = {t}")
                )
                .await,
                TRANSFERS_PER_TASK.to_string(),
                "transfers logged by task {t}"
            );
        }
    })
    .await;
}

/// On-call doctors: each transaction sees two on call and takes a different one off.
/// Under snapshot isolation both would commit and nobody would be on call; serializable
/// refuses the second COMMIT with 40001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_skew_is_refused_over_the_wire() {
    let s = Server::start();
    bounded("write skew", async {
        let a = connect(&s).await;
        let b = connect(&s).await;
        exec(
            &a,
            "CREATE TABLE doctors (id int PRIMARY KEY, name text, on_call boolean);
             INSERT INTO doctors VALUES (1, 'alice', true), (2, 'bob', true);",
        )
        .await;
        let count = "SELECT count(*) FROM doctors WHERE on_call";
        let off = "UPDATE doctors SET on_call = false WHERE id = $1";
        exec(&a, "BEGIN").await;
        exec(&b, "BEGIN").await;
        let n: i64 = a.query_one(count, &[]).await.expect(count).get(0);
        assert_eq!(n, 2);
        let n: i64 = b.query_one(count, &[]).await.expect(count).get(0);
        assert_eq!(n, 2);
        assert_eq!(a.execute(off, &[&1i32]).await.expect(off), 1);
        assert_eq!(b.execute(off, &[&2i32]).await.expect(off), 1);
        exec(&a, "COMMIT").await;
        assert_code(
            "second COMMIT",
            b.batch_execute("COMMIT").await,
            SqlState::T_R_SERIALIZATION_FAILURE,
        );
        // b is out of its block and nothing of it was written.
        assert_eq!(one(&b, count).await, "1");
        assert_eq!(
            lines(&b, "SELECT name, on_call FROM doctors ORDER BY id").await,
            ["alice|f", "bob|t"]
        );
        // Retried, b now sees one doctor on call and leaves things alone.
        exec(&b, "BEGIN").await;
        assert_eq!(one(&b, count).await, "1");
        exec(&b, "COMMIT").await;
    })
    .await;
}

/// Two blocks increment the same counter from the same snapshot: the second COMMIT
/// fails with 40001 (through the driver's transaction API) instead of losing the first
/// update; the retry then counts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_update_is_refused_and_the_retry_counts() {
    let s = Server::start();
    bounded("lost update", async {
        let mut a = connect(&s).await;
        let mut b = connect(&s).await;
        exec(
            &a,
            "CREATE TABLE counters (id int PRIMARY KEY, n int); INSERT INTO counters VALUES (1, 0)",
        )
        .await;
        let bump = "UPDATE counters SET n = n + $1 WHERE id = 1";
        let ta = a.transaction().await.expect("BEGIN a");
        let tb = b.transaction().await.expect("BEGIN b");
        ta.execute(bump, &[&1i32]).await.expect("bump a");
        tb.execute(bump, &[&10i32]).await.expect("bump b");
        ta.commit().await.expect("COMMIT a");
        assert_code(
            "COMMIT b",
            tb.commit().await,
            SqlState::T_R_SERIALIZATION_FAILURE,
        );
        assert_eq!(one(&b, "SELECT n FROM counters").await, "1");
        let tb = b.transaction().await.expect("BEGIN b again");
        tb.execute(bump, &[&10i32]).await.expect("bump b again");
        tb.commit().await.expect("COMMIT b again");
        assert_eq!(one(&a, "SELECT n FROM counters").await, "11");
    })
    .await;
}

/// ReadyForQuery after a COMMIT that failed with 40001 is 'I': the block is over.
#[test]
fn a_commit_refused_with_40001_ends_the_block() {
    let s = Server::start();
    let mut a = Raw::connect(s.pg_port());
    let mut b = Raw::connect(s.pg_port());
    a.ok(
        "CREATE TABLE c (id int PRIMARY KEY, n int); INSERT INTO c VALUES (1, 0)",
        &["CREATE TABLE", "INSERT 0 1"],
    );
    assert_eq!(a.ok("BEGIN", &["BEGIN"]), 'T');
    assert_eq!(b.ok("BEGIN", &["BEGIN"]), 'T');
    a.ok("UPDATE c SET n = n + 1 WHERE id = 1", &["UPDATE 1"]);
    b.ok("UPDATE c SET n = n + 1 WHERE id = 1", &["UPDATE 1"]);
    assert_eq!(a.ok("COMMIT", &["COMMIT"]), 'I');
    assert_eq!(b.fails("COMMIT", "40001"), 'I');
    let sel = b.query("SELECT n FROM c");
    assert_eq!(sel.rows, [[Some("1".to_string())]], "{sel:?}");
    assert_eq!(sel.status, 'I');
}

// ------------------------------------------------------------------------------------
// READ ONLY, isolation level
// ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_level_and_read_only_blocks() {
    let s = Server::start();
    bounded("read only", async {
        let mut c = connect(&s).await;
        exec(
            &c,
            "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)",
        )
        .await;
        assert_eq!(
            one(&c, "SHOW TRANSACTION ISOLATION LEVEL").await,
            "serializable"
        );
        assert_eq!(one(&c, "SHOW transaction_isolation").await, "serializable");
        exec(&c, "BEGIN").await;
        assert_eq!(
            one(&c, "SHOW TRANSACTION ISOLATION LEVEL").await,
            "serializable"
        );
        assert_eq!(one(&c, "SHOW transaction_read_only").await, "off");
        exec(&c, "COMMIT").await;

        // START TRANSACTION READ ONLY: reads work, every kind of write fails with 25006
        // and fails the block.
        for write in [
            "INSERT INTO t VALUES (2, 0)",
            "UPDATE t SET v = 3 WHERE id = 1",
            "DELETE FROM t",
        ] {
            exec(&c, "START TRANSACTION READ ONLY").await;
            assert_eq!(one(&c, "SHOW transaction_read_only").await, "on");
            assert_eq!(one(&c, "SELECT count(*) FROM t").await, "1");
            assert_code(
                write,
                c.execute(write, &[]).await,
                SqlState::READ_ONLY_SQL_TRANSACTION,
            );
            assert_code(
                "after the refused write",
                c.simple_query("SELECT 1").await,
                SqlState::IN_FAILED_SQL_TRANSACTION,
            );
            exec(&c, "ROLLBACK").await;
        }
        assert_eq!(one(&c, "SHOW transaction_read_only").await, "off");
        assert_eq!(lines(&c, "SELECT id FROM t").await, ["1"]);

        // The driver's builder: START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY.
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .read_only(true)
            .start()
            .await
            .expect("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY");
        let n: i64 = tx
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .expect("read")
            .get(0);
        assert_eq!(n, 1);
        assert_code(
            "write in the driver's read-only transaction",
            tx.execute("INSERT INTO t VALUES ($1, 0)", &[&5i32]).await,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        );
        tx.rollback().await.expect("ROLLBACK");

        // A read-write block after them writes.
        let tx = c
            .build_transaction()
            .read_only(false)
            .start()
            .await
            .expect("START TRANSACTION READ WRITE");
        tx.execute("INSERT INTO t VALUES ($1, 0)", &[&5i32])
            .await
            .expect("insert");
        tx.commit().await.expect("COMMIT");
        assert_eq!(lines(&c, "SELECT id FROM t ORDER BY id").await, ["1", "5"]);
    })
    .await;
}

// ------------------------------------------------------------------------------------
// SIGKILL with transactions in flight
// ------------------------------------------------------------------------------------

const CRASH_WRITERS: usize = 4;

/// The id of part `part` (a, b or c) of transaction `n` of writer `t` in round `round`.
fn crash_id(round: usize, t: usize, n: usize, part: char) -> String {
    format!("r{round}-t{t}-{n:05}-{part}")
}

/// Parses a `crash_id` back into ((round, t, n), part).
fn parse_crash_id(id: &str) -> Option<((usize, usize, usize), char)> {
    let mut it = id.split('-');
    let round = it.next()?.strip_prefix('r')?.parse().ok()?;
    let t = it.next()?.strip_prefix('t')?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    let part = it.next()?;
    if it.next().is_some() || part.len() != 1 {
        return None;
    }
    Some(((round, t, n), part.chars().next()?))
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect()
}

/// What a crash round did: per writer, how many transactions were acknowledged (they
/// are numbered 0.. in order, so 0..acked[t] were acknowledged and at most transaction
/// acked[t] was in flight at the kill).
struct Round {
    round: usize,
    acked: Vec<usize>,
}

/// Runs `CRASH_WRITERS` writers committing 3-document transactions and one connection
/// holding an open block with uncommitted `open-*` documents (each document padded with
/// `pad` bytes), then SIGKILLs the server mid-stream: after 1 s and 20 acknowledged
/// transactions (and, if `until_flushed`, once a memtable was flushed to a segment file),
/// or after 12 s at the latest.
async fn crash_round(s: &mut Server, round: usize, pad: usize, until_flushed: bool) -> Round {
    let killed = Arc::new(AtomicBool::new(false));
    let acked_total = Arc::new(AtomicUsize::new(0));
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();

    // The open block: started first, it keeps adding uncommitted documents until the
    // kill.
    let open = {
        let c = connect(s).await;
        let killed = killed.clone();
        let unexpected = unexpected.clone();
        exec(&c, "BEGIN").await;
        tokio::spawn(async move {
            let mut k = 0;
            loop {
                let sql = format!(
                    "INSERT INTO crash (id, part, pad) VALUES ('open-{round}-{k:05}', 'open', '{}')",
                    "o".repeat(pad)
                );
                if let Err(e) = c.batch_execute(&sql).await {
                    if !killed.load(Ordering::SeqCst) {
                        unexpected
                            .lock()
                            .unwrap()
                            .push(format!("open block: {e:?}"));
                    }
                    return k;
                }
                k += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let mut writers = Vec::new();
    for t in 0..CRASH_WRITERS {
        let c = connect(s).await;
        let (killed, acked_total, unexpected) =
            (killed.clone(), acked_total.clone(), unexpected.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let attempt = async {
                    c.batch_execute("BEGIN").await?;
                    // Text parameters (a schemaless collection types its parameters
                    // text), numbers as literals.
                    let insert = format!(
                        "INSERT INTO crash (id, round, task, n, part, pad) \
                         VALUES ($1, {round}, {t}, {n}, $2, $3)"
                    );
                    for part in ['a', 'b', 'c'] {
                        let id = crash_id(round, t, n, part);
                        let pad_text = format!("{part}{}", "x".repeat(pad));
                        c.execute(&insert, &[&id, &part.to_string(), &pad_text])
                            .await?;
                    }
                    c.batch_execute("COMMIT").await
                }
                .await;
                match attempt {
                    Ok(()) => {
                        n += 1;
                        acked_total.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        if !killed.load(Ordering::SeqCst) {
                            unexpected
                                .lock()
                                .unwrap()
                                .push(format!("writer {t}, transaction {n}: {e:?}"));
                        }
                        return n;
                    }
                }
            }
        }));
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(12);
    let min_run = Duration::from_secs(1);
    loop {
        let ran = started.elapsed() >= min_run;
        let enough = acked_total.load(Ordering::SeqCst) >= 20;
        let flushed = !until_flushed || !segment_files(s.data_dir()).is_empty();
        if (ran && enough && flushed) || Instant::now() >= deadline {
            break;
        }
        if !unexpected.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.store(true, Ordering::SeqCst);
    s.kill_9();

    let mut acked = Vec::new();
    for w in writers {
        acked.push(w.await.expect("writer panicked"));
    }
    let open_inserts = open.await.expect("open block panicked");
    let unexpected = unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "errors before the kill: {unexpected:#?}\nstderr:\n{}",
        s.stderr()
    );
    if until_flushed {
        assert!(
            !segment_files(s.data_dir()).is_empty(),
            "no segment was flushed before the kill (small memtable)"
        );
    }
    let total: usize = acked.iter().sum();
    eprintln!(
        "round {round}: {total} transactions acknowledged before SIGKILL ({acked:?}); \
         the open block had {open_inserts} uncommitted inserts"
    );
    assert!(
        total >= 1,
        "no transaction was acknowledged; stderr:\n{}",
        s.stderr()
    );
    assert!(open_inserts >= 1, "the open block inserted nothing");
    Round { round, acked }
}

/// After a restart: every acknowledged transaction is there whole, any other one present
/// is the one that was in flight and is whole too, no `open-*` document exists, and every
/// document's fields match its id.
async fn check_rounds(s: &Server, rounds: &[Round]) {
    let c = connect(s).await;
    let docs = rows(&c, "SELECT id, round, task, n, part, pad FROM crash").await;
    let mut found: BTreeMap<(usize, usize, usize), BTreeSet<char>> = BTreeMap::new();
    for row in &docs {
        let id = row[0].clone().expect("id");
        assert!(
            !id.starts_with("open-"),
            "a document of the uncommitted block survived the crash: {row:?}"
        );
        let ((round, t, n), part) =
            parse_crash_id(&id).unwrap_or_else(|| panic!("unknown document {row:?}"));
        assert_eq!(row[1], Some(round.to_string()), "round of {id}");
        assert_eq!(row[2], Some(t.to_string()), "task of {id}");
        assert_eq!(row[3], Some(n.to_string()), "n of {id}");
        assert_eq!(row[4], Some(part.to_string()), "part of {id}");
        let pad = row[5].clone().unwrap_or_default();
        assert!(
            pad.starts_with(part) && pad[1..].bytes().all(|b| b == b'x'),
            "torn pad of {id}"
        );
        assert!(found.entry((round, t, n)).or_default().insert(part));
    }
    let whole: BTreeSet<char> = ['a', 'b', 'c'].into();
    for ((round, t, n), parts) in &found {
        assert_eq!(
            parts, &whole,
            "transaction r{round}-t{t}-{n} is there in part"
        );
    }
    for r in rounds {
        for (t, &acked) in r.acked.iter().enumerate() {
            for n in 0..acked {
                assert!(
                    found.contains_key(&(r.round, t, n)),
                    "acknowledged transaction r{}-t{t}-{n} lost ({} acknowledged by writer {t})",
                    r.round,
                    acked
                );
            }
            // Nothing beyond the one in flight.
            for (round, t2, n) in found.keys() {
                if *round == r.round && *t2 == t {
                    assert!(
                        *n <= acked,
                        "transaction r{round}-t{t}-{n} exists though writer {t} never got past \
                         {acked}"
                    );
                }
            }
        }
    }
    let acked: usize = rounds.iter().flat_map(|r| &r.acked).sum();
    assert!(found.len() >= acked && found.len() <= acked + rounds.len() * CRASH_WRITERS);
    assert_eq!(docs.len(), found.len() * 3);
}

/// The server keeps working after a crash: a new block commits and is read back.
async fn still_works(s: &Server, tag: &str) {
    let c = connect(s).await;
    exec(
        &c,
        &format!("BEGIN; INSERT INTO after_crash (id) VALUES ('{tag}-1'), ('{tag}-2'); COMMIT"),
    )
    .await;
    assert_eq!(
        one(
            &c,
            &format!("SELECT count(*) FROM after_crash WHERE id LIKE '{tag}-%'")
        )
        .await,
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_keeps_acknowledged_transactions_whole_and_drops_open_ones() {
    let mut s = Server::start();
    bounded("crash", async {
        let c = connect(&s).await;
        exec(&c, "CREATE COLLECTION crash; CREATE COLLECTION after_crash").await;
        drop(c);
        let first = crash_round(&mut s, 1, 20, false).await;
        s.restart();
        let mut rounds = vec![first];
        check_rounds(&s, &rounds).await;
        still_works(&s, "one").await;
        // A second crash on the recovered database.
        rounds.push(crash_round(&mut s, 2, 20, false).await);
        s.restart();
        check_rounds(&s, &rounds).await;
        still_works(&s, "two").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_with_memtable_flushes_keeps_transactions_whole() {
    let mut s = Server::start_with_env(&[
        ("TISSDB_MEMTABLE_SIZE", "64KiB"),
        ("TISSDB_BLOCK_SIZE", "4KiB"),
    ]);
    bounded("crash with flushes", async {
        let c = connect(&s).await;
        exec(&c, "CREATE COLLECTION crash; CREATE COLLECTION after_crash").await;
        drop(c);
        // ~1.2 KiB per transaction: a 64 KiB memtable fills every ~50 transactions.
        let first = crash_round(&mut s, 1, 400, true).await;
        s.restart();
        let mut rounds = vec![first];
        check_rounds(&s, &rounds).await;
        let before = segment_files(s.data_dir()).len();
        rounds.push(crash_round(&mut s, 2, 400, false).await);
        s.restart();
        check_rounds(&s, &rounds).await;
        still_works(&s, "flushed").await;
        eprintln!(
            "{before} segment files after round 1, {} after round 2",
            segment_files(s.data_dir()).len()
        );
    })
    .await;
}
