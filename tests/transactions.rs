//! Transactions through the engine's `Session`: atomicity, isolation (snapshots, lost
//! updates, write skew, phantoms), savepoints, limits. The wire and REST front-ends and
//! crashes are tested in server/tests/transactions.rs.

mod common;

use std::sync::Arc;

use common::{open, open_at, run};
use tissdb::{Config, Database, Session};

fn setup(db: &Arc<Database>) -> Session {
    let mut s = Session::new(db.clone());
    let out = run(
        &mut s,
        "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int NOT NULL);
         CREATE COLLECTION audit;
         INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 100), (3, 'cy', 100);",
    );
    assert_eq!(out.last().unwrap(), "INSERT 0 3");
    s
}

fn one(s: &mut Session, sql: &str) -> String {
    let mut out = run(s, sql);
    assert_eq!(out.len(), 1, "{sql}: {out:?}");
    out.remove(0)
}

#[test]
fn commit_makes_writes_to_two_collections_visible_together() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let mut b = Session::new(db.clone());
    run(&mut a, "BEGIN");
    run(
        &mut a,
        "UPDATE accounts SET balance = balance - 30 WHERE id = 1",
    );
    run(
        &mut a,
        "INSERT INTO audit (id, what) VALUES ('t1', 'move 30 from 1 to 2')",
    );
    run(
        &mut a,
        "UPDATE accounts SET balance = balance + 30 WHERE id = 2",
    );
    // The writer sees its own writes, nobody else does.
    assert_eq!(
        one(&mut a, "SELECT sum(balance) FROM accounts WHERE id <= 2"),
        "200"
    );
    assert_eq!(
        one(&mut a, "SELECT balance FROM accounts WHERE id = 1"),
        "70"
    );
    assert_eq!(one(&mut a, "SELECT count(*) FROM audit"), "1");
    assert_eq!(
        one(&mut b, "SELECT balance FROM accounts WHERE id = 1"),
        "100"
    );
    assert_eq!(one(&mut b, "SELECT count(*) FROM audit"), "0");
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    assert_eq!(
        run(
            &mut b,
            "SELECT id, balance FROM accounts ORDER BY id; SELECT what FROM audit"
        ),
        vec!["1|70", "2|130", "3|100", "move 30 from 1 to 2"]
    );
}

#[test]
fn rollback_leaves_nothing() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    run(
        &mut a,
        "BEGIN;
         UPDATE accounts SET balance = 0;
         DELETE FROM accounts WHERE id = 3;
         INSERT INTO accounts VALUES (4, 'dee', 1);
         INSERT INTO audit (id) VALUES ('x');",
    );
    assert_eq!(
        one(&mut a, "SELECT count(*), sum(balance) FROM accounts"),
        "3|1"
    );
    assert_eq!(one(&mut a, "ROLLBACK"), "ROLLBACK");
    assert_eq!(
        one(&mut a, "SELECT count(*), sum(balance) FROM accounts"),
        "3|300"
    );
    assert_eq!(one(&mut a, "SELECT count(*) FROM audit"), "0");
}

#[test]
fn a_transaction_reads_one_snapshot() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let mut b = Session::new(db.clone());
    run(&mut a, "BEGIN");
    assert_eq!(one(&mut a, "SELECT sum(balance) FROM accounts"), "300");
    run(
        &mut b,
        "UPDATE accounts SET balance = 0 WHERE id = 1; INSERT INTO accounts VALUES (9, 'new', 5)",
    );
    assert_eq!(one(&mut a, "SELECT sum(balance) FROM accounts"), "300");
    assert_eq!(
        one(&mut a, "SELECT balance FROM accounts WHERE id = 1"),
        "100"
    );
    assert_eq!(
        one(&mut a, "SELECT count(*) FROM accounts WHERE id = 9"),
        "0"
    );
    // Read-only: commits.
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    assert_eq!(one(&mut a, "SELECT sum(balance) FROM accounts"), "205");
}

#[test]
fn a_lost_update_is_refused_with_40001() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let mut b = Session::new(db.clone());
    run(&mut a, "BEGIN");
    run(&mut b, "BEGIN");
    run(
        &mut a,
        "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
    );
    run(
        &mut b,
        "UPDATE accounts SET balance = balance + 10 WHERE id = 1",
    );
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    let out = one(&mut b, "COMMIT");
    assert!(out.starts_with("ERROR 40001"), "{out}");
    assert_eq!(
        b.transaction_status(),
        tissdb::session::TransactionStatus::Idle
    );
    assert_eq!(
        one(&mut b, "SELECT balance FROM accounts WHERE id = 1"),
        "101"
    );
    // Retried, it commits.
    run(
        &mut b,
        "BEGIN; UPDATE accounts SET balance = balance + 10 WHERE id = 1",
    );
    assert_eq!(one(&mut b, "COMMIT"), "COMMIT");
    assert_eq!(
        one(&mut b, "SELECT balance FROM accounts WHERE id = 1"),
        "111"
    );
}

#[test]
fn write_skew_is_prevented() {
    // On-call doctors: each transaction checks that two are on call, then takes one
    // off. Under snapshot isolation alone both commit and nobody is on call.
    let (_dir, db) = open();
    let mut a = Session::new(db.clone());
    run(
        &mut a,
        "CREATE TABLE doctors (id int PRIMARY KEY, on_call boolean);
         INSERT INTO doctors VALUES (1, true), (2, true)",
    );
    let mut b = Session::new(db.clone());
    run(&mut a, "BEGIN");
    run(&mut b, "BEGIN");
    assert_eq!(
        one(&mut a, "SELECT count(*) FROM doctors WHERE on_call"),
        "2"
    );
    assert_eq!(
        one(&mut b, "SELECT count(*) FROM doctors WHERE on_call"),
        "2"
    );
    run(&mut a, "UPDATE doctors SET on_call = false WHERE id = 1");
    run(&mut b, "UPDATE doctors SET on_call = false WHERE id = 2");
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    let out = one(&mut b, "COMMIT");
    assert!(out.starts_with("ERROR 40001"), "{out}");
    assert_eq!(
        one(&mut b, "SELECT count(*) FROM doctors WHERE on_call"),
        "1"
    );
}

#[test]
fn write_skew_through_point_reads_is_prevented() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let mut b = Session::new(db.clone());
    run(&mut a, "BEGIN");
    run(&mut b, "BEGIN");
    assert_eq!(
        one(
            &mut a,
            "SELECT sum(balance) FROM accounts WHERE id IN (1, 2)"
        ),
        "200"
    );
    assert_eq!(
        one(
            &mut b,
            "SELECT sum(balance) FROM accounts WHERE id IN (1, 2)"
        ),
        "200"
    );
    run(
        &mut a,
        "UPDATE accounts SET balance = balance - 150 WHERE id = 1",
    );
    run(
        &mut b,
        "UPDATE accounts SET balance = balance - 150 WHERE id = 2",
    );
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    assert!(one(&mut b, "COMMIT").starts_with("ERROR 40001"));
}

#[test]
fn a_phantom_insert_conflicts_with_a_scan() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let mut b = Session::new(db.clone());
    run(&mut a, "BEGIN");
    assert_eq!(
        one(&mut a, "SELECT count(*) FROM accounts WHERE balance >= 100"),
        "3"
    );
    run(&mut b, "INSERT INTO accounts VALUES (7, 'eve', 500)");
    run(&mut a, "INSERT INTO audit (id, n) VALUES ('count', 3)");
    assert!(one(&mut a, "COMMIT").starts_with("ERROR 40001"));
    assert_eq!(one(&mut a, "SELECT count(*) FROM audit"), "0");
}

#[test]
fn disjoint_transactions_both_commit() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let mut b = Session::new(db.clone());
    run(
        &mut a,
        "BEGIN; UPDATE accounts SET balance = 1 WHERE id = 1",
    );
    run(
        &mut b,
        "BEGIN; UPDATE accounts SET balance = 2 WHERE id = 2",
    );
    assert_eq!(one(&mut b, "COMMIT"), "COMMIT");
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    assert_eq!(one(&mut a, "SELECT sum(balance) FROM accounts"), "103");
}

#[test]
fn savepoints_undo_part_of_a_transaction() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let out = run(
        &mut a,
        "BEGIN;
         UPDATE accounts SET balance = 1 WHERE id = 1;
         SAVEPOINT s1;
         UPDATE accounts SET balance = 2 WHERE id = 2;
         DELETE FROM accounts WHERE id = 1;
         ROLLBACK TO SAVEPOINT s1;
         SELECT id, balance FROM accounts ORDER BY id;
         SAVEPOINT s2;
         INSERT INTO accounts VALUES (5, 'e', 5);
         RELEASE SAVEPOINT s2;
         COMMIT;",
    );
    assert_eq!(
        out,
        vec![
            "BEGIN",
            "UPDATE 1",
            "SAVEPOINT",
            "UPDATE 1",
            "DELETE 1",
            "ROLLBACK",
            "1|1",
            "2|100",
            "3|100",
            "SAVEPOINT",
            "INSERT 0 1",
            "RELEASE",
            "COMMIT"
        ]
    );
    assert_eq!(one(&mut a, "SELECT sum(balance) FROM accounts"), "206");
    // An error fails the block; ROLLBACK TO SAVEPOINT recovers it.
    let out = run(&mut a, "BEGIN; SAVEPOINT p; SELECT 1/0");
    assert!(out.last().unwrap().starts_with("ERROR 22012"), "{out:?}");
    assert!(one(&mut a, "SELECT 1").starts_with("ERROR 25P02"));
    assert_eq!(one(&mut a, "ROLLBACK TO SAVEPOINT p"), "ROLLBACK");
    run(&mut a, "UPDATE accounts SET balance = 0 WHERE id = 5");
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    assert_eq!(
        one(&mut a, "SELECT balance FROM accounts WHERE id = 5"),
        "0"
    );
    // Errors: unknown savepoint, savepoints outside a block.
    assert!(one(&mut a, "SAVEPOINT x").starts_with("ERROR 25P01"));
    run(&mut a, "BEGIN");
    assert!(one(&mut a, "ROLLBACK TO SAVEPOINT nope").starts_with("ERROR 3B001"));
    assert_eq!(one(&mut a, "COMMIT"), "ROLLBACK");
}

#[test]
fn several_statements_in_one_query_are_one_implicit_transaction() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let out = run(
        &mut a,
        "UPDATE accounts SET balance = 0 WHERE id = 1; INSERT INTO audit (id) VALUES ('x'); SELECT 1/0",
    );
    assert_eq!(out[..2], ["UPDATE 1", "INSERT 0 1"]);
    assert!(out[2].starts_with("ERROR 22012"), "{out:?}");
    assert_eq!(
        a.transaction_status(),
        tissdb::session::TransactionStatus::Idle
    );
    assert_eq!(
        run(
            &mut a,
            "SELECT balance FROM accounts WHERE id = 1; SELECT count(*) FROM audit"
        ),
        vec!["100", "0"]
    );
    // Without an error, all of it stays.
    run(
        &mut a,
        "UPDATE accounts SET balance = 0 WHERE id = 1; INSERT INTO audit (id) VALUES ('x')",
    );
    assert_eq!(
        one(&mut a, "SELECT count(*) FROM audit WHERE id = 'x'"),
        "1"
    );
    assert_eq!(
        one(&mut a, "SELECT balance FROM accounts WHERE id = 1"),
        "0"
    );
}

#[test]
fn a_transaction_reads_the_new_fields_it_wrote() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    let mut b = Session::new(db.clone());
    run(&mut a, "INSERT INTO audit (id, what) VALUES ('a', 'x')");
    run(
        &mut a,
        "BEGIN; INSERT INTO audit (id, extra) VALUES ('b', 7)",
    );
    assert_eq!(
        run(&mut a, "SELECT id, what, extra FROM audit ORDER BY id"),
        vec!["a|x|NULL", "b|NULL|7"]
    );
    assert!(one(&mut b, "SELECT extra FROM audit").starts_with("ERROR 42703"));
    run(&mut a, "COMMIT");
    assert_eq!(one(&mut b, "SELECT sum(extra) FROM audit"), "7");
}

#[test]
fn a_failed_block_commits_nothing() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    run(
        &mut a,
        "BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1",
    );
    assert!(one(&mut a, "INSERT INTO accounts VALUES (1, 'dup', 0)").starts_with("ERROR 23505"));
    assert!(one(&mut a, "SELECT 1").starts_with("ERROR 25P02"));
    assert_eq!(one(&mut a, "COMMIT"), "ROLLBACK");
    assert_eq!(
        one(&mut a, "SELECT balance FROM accounts WHERE id = 1"),
        "100"
    );
}

#[test]
fn read_only_transactions_refuse_writes() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    run(&mut a, "START TRANSACTION READ ONLY");
    assert_eq!(one(&mut a, "SHOW transaction_read_only"), "on");
    assert!(one(&mut a, "DELETE FROM accounts").starts_with("ERROR 25006"));
    run(&mut a, "ROLLBACK");
    assert_eq!(
        one(&mut a, "SHOW TRANSACTION ISOLATION LEVEL"),
        "serializable"
    );
    assert_eq!(one(&mut a, "SELECT count(*) FROM accounts"), "3");
}

#[test]
fn indexes_are_bypassed_for_collections_the_transaction_wrote() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    run(
        &mut a,
        "CREATE INDEX ON accounts (owner); SET enable_seqscan = off",
    );
    run(
        &mut a,
        "BEGIN; UPDATE accounts SET owner = 'zed' WHERE id = 1",
    );
    let plan = run(
        &mut a,
        "EXPLAIN SELECT id FROM accounts WHERE owner = 'zed'",
    )
    .join("\n");
    assert!(plan.contains("Seq Scan"), "{plan}");
    assert_eq!(
        one(&mut a, "SELECT id FROM accounts WHERE owner = 'zed'"),
        "1"
    );
    assert_eq!(
        run(&mut a, "SELECT id FROM accounts WHERE owner = 'ann'"),
        Vec::<String>::new()
    );
    run(&mut a, "COMMIT");
    let plan = run(
        &mut a,
        "EXPLAIN SELECT id FROM accounts WHERE owner = 'zed'",
    )
    .join("\n");
    assert!(plan.contains("Index"), "{plan}");
    assert_eq!(
        one(&mut a, "SELECT id FROM accounts WHERE owner = 'zed'"),
        "1"
    );
}

#[test]
fn a_snapshot_older_than_an_index_is_read_by_scanning() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    run(
        &mut a,
        "CREATE INDEX ON accounts (owner); SET enable_seqscan = off",
    );
    let mut b = Session::new(db.clone());
    run(&mut a, "BEGIN READ ONLY");
    assert_eq!(
        one(&mut a, "SELECT id FROM accounts WHERE owner = 'bob'"),
        "2"
    );
    // Another session renames bob: the index now says 'rob', the snapshot still 'bob'.
    run(&mut b, "UPDATE accounts SET owner = 'rob' WHERE id = 2");
    let plan = run(
        &mut a,
        "EXPLAIN SELECT id FROM accounts WHERE owner = 'bob'",
    )
    .join("\n");
    assert!(plan.contains("Seq Scan"), "{plan}");
    assert_eq!(
        one(&mut a, "SELECT id FROM accounts WHERE owner = 'bob'"),
        "2"
    );
    assert_eq!(
        run(&mut a, "SELECT id FROM accounts WHERE owner = 'rob'"),
        Vec::<String>::new()
    );
    assert_eq!(one(&mut a, "COMMIT"), "COMMIT");
    assert_eq!(
        one(&mut a, "SELECT id FROM accounts WHERE owner = 'rob'"),
        "2"
    );
}

#[test]
fn a_unique_violation_surfaces_at_commit_and_writes_nothing() {
    let (_dir, db) = open();
    let mut a = setup(&db);
    run(&mut a, "CREATE UNIQUE INDEX ON accounts (owner)");
    run(
        &mut a,
        "BEGIN; UPDATE accounts SET balance = 0 WHERE id = 3; UPDATE accounts SET owner = 'ann' WHERE id = 2",
    );
    assert!(one(&mut a, "COMMIT").starts_with("ERROR 23505"));
    assert_eq!(one(&mut a, "SELECT sum(balance) FROM accounts"), "300");
}

#[test]
fn limits_on_size_and_duration() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(Config {
        data_dir: dir.path().to_path_buf(),
        max_transaction_size: 2000,
        max_transaction_duration: 1,
        ..Config::default()
    })
    .unwrap();
    let mut a = setup(&db);
    run(&mut a, "BEGIN");
    let out = one(
        &mut a,
        "INSERT INTO audit (id, pad) SELECT 'x', repeat('p', 5000)",
    );
    assert!(
        out.starts_with("ERROR 54000") && out.contains("max_transaction_size"),
        "{out}"
    );
    run(
        &mut a,
        "ROLLBACK; BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1",
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = one(&mut a, "SELECT 1");
    assert!(out.starts_with("ERROR 25P04"), "{out}");
    assert_eq!(one(&mut a, "COMMIT"), "ROLLBACK");
    assert_eq!(
        one(&mut a, "SELECT balance FROM accounts WHERE id = 1"),
        "100"
    );
}

#[test]
fn committed_transactions_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_at(dir.path());
        let mut a = setup(&db);
        run(
            &mut a,
            "BEGIN; UPDATE accounts SET balance = 50 WHERE id = 1; INSERT INTO audit (id) VALUES ('a'); COMMIT;
             BEGIN; UPDATE accounts SET balance = 0 WHERE id = 2;",
        );
        // The open transaction is dropped with the session.
    }
    let db = open_at(dir.path());
    let mut a = Session::new(db);
    assert_eq!(
        run(
            &mut a,
            "SELECT id, balance FROM accounts ORDER BY id; SELECT count(*) FROM audit"
        ),
        vec!["1|50", "2|100", "3|100", "1"]
    );
}

#[test]
fn concurrent_transfers_keep_the_total() {
    let (_dir, db) = open();
    let mut s = Session::new(db.clone());
    run(
        &mut s,
        "CREATE TABLE acct (id int PRIMARY KEY, balance int)",
    );
    let values: Vec<String> = (0..20).map(|i| format!("({i}, 1000)")).collect();
    run(
        &mut s,
        &format!("INSERT INTO acct VALUES {}", values.join(",")),
    );
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut s = Session::new(db);
                let mut rng = t as u64 * 7919 + 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let (mut committed, mut retried) = (0, 0);
                while committed < 60 {
                    let from = next() % 20;
                    let to = (from + 1 + next() % 19) % 20;
                    let amount = next() % 50;
                    let out = run(
                        &mut s,
                        &format!(
                            "BEGIN;
                             UPDATE acct SET balance = balance - {amount} WHERE id = {from};
                             UPDATE acct SET balance = balance + {amount} WHERE id = {to};
                             COMMIT"
                        ),
                    );
                    match out.last().map(String::as_str) {
                        Some("COMMIT") => committed += 1,
                        Some(e) if e.starts_with("ERROR 40001") => retried += 1,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                retried
            })
        })
        .collect();
    // A reader sums while the transfers run: always the same total.
    let mut reader = Session::new(db.clone());
    for _ in 0..50 {
        assert_eq!(one(&mut reader, "SELECT sum(balance) FROM acct"), "20000");
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        one(&mut reader, "SELECT sum(balance), count(*) FROM acct"),
        "20000|20"
    );
}
