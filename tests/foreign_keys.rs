//! Foreign keys through the engine's `Session`: the race between a transaction adding a
//! reference and another deleting the referenced document (exactly one commits), racing
//! autocommit writers, definitions kept across a reopen, the document API and COPY, and
//! the errors' DETAIL lines. Results against PostgreSQL's are in
//! tests/slt/foreign_keys.slt.

mod common;

use std::sync::{Arc, Barrier};

use common::{open, open_at, run};
use tissdb::doc::{Object, Value};
use tissdb::query::Outcome;
use tissdb::{Database, Session};

fn setup(db: &Arc<Database>) -> Session {
    let mut s = Session::new(db.clone());
    let out = run(
        &mut s,
        "CREATE TABLE customers (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, total int);
         INSERT INTO customers VALUES (1, 'ann'), (2, 'bob');",
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
    s
}

/// The one value of a one-row, one-column query.
fn scalar(s: &mut Session, sql: &str) -> Value {
    match s.execute_batch(sql).pop().expect("a result").expect(sql) {
        Outcome::Rows { rows, .. } => rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .expect("a value"),
        other => panic!("{other:?}"),
    }
}

fn one(s: &mut Session, sql: &str) -> Result<Outcome, tissdb::Error> {
    s.execute_batch(sql).pop().expect("a result")
}

/// No order names a customer that does not exist.
fn assert_no_dangling(s: &mut Session) {
    assert_eq!(
        scalar(
            s,
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id
             WHERE o.customer_id IS NOT NULL AND c.id IS NULL"
        ),
        Value::Int(0)
    );
}

#[test]
fn errors_carry_postgres_message_and_detail() {
    let (_d, db) = open();
    let mut s = setup(&db);
    let e = one(&mut s, "INSERT INTO orders VALUES (10, 9, 1)").unwrap_err();
    assert_eq!(e.sqlstate().code(), "23503");
    assert_eq!(
        e.to_string(),
        "insert or update on table \"orders\" violates foreign key constraint \"orders_customer_id_fkey\""
    );
    assert_eq!(
        e.detail(),
        Some("Key (customer_id)=(9) is not present in table \"customers\".")
    );
    one(&mut s, "INSERT INTO orders VALUES (10, 1, 1)").unwrap();
    let e = one(&mut s, "DELETE FROM customers WHERE id = 1").unwrap_err();
    assert_eq!(e.sqlstate().code(), "23503");
    assert_eq!(
        e.to_string(),
        "update or delete on table \"customers\" violates foreign key constraint \"orders_customer_id_fkey\" on table \"orders\""
    );
    assert_eq!(
        e.detail(),
        Some("Key (id)=(1) is still referenced from table \"orders\".")
    );
    let e = one(&mut s, "DROP TABLE customers").unwrap_err();
    assert_eq!(e.sqlstate().code(), "2BP01");
    assert_eq!(
        e.to_string(),
        "cannot drop table customers because other objects depend on it"
    );
    assert_eq!(
        e.detail(),
        Some("constraint orders_customer_id_fkey on table orders depends on table customers")
    );
    assert_eq!(
        e.hint(),
        Some("Use DROP ... CASCADE to drop the dependent objects too.")
    );
    let e = one(
        &mut s,
        "CREATE TABLE bad (id int PRIMARY KEY, c text REFERENCES customers)",
    )
    .unwrap_err();
    assert_eq!(e.sqlstate().code(), "42804");
    assert_eq!(
        e.to_string(),
        "foreign key constraint \"bad_c_fkey\" cannot be implemented"
    );
    assert_eq!(
        e.detail(),
        Some("Key columns \"c\" and \"id\" are of incompatible types: text and integer.")
    );
    // DROP ... CASCADE says what it dropped, as PostgreSQL's NOTICE does.
    one(&mut s, "DROP TABLE customers CASCADE").unwrap();
    let notices = s.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(
        notices[0].message,
        "drop cascades to constraint orders_customer_id_fkey on table orders"
    );
    one(&mut s, "INSERT INTO orders VALUES (11, 9, 1)").unwrap();
}

/// A transaction inserting a referencing row and another deleting the referenced row,
/// both open at once: exactly one of them commits, whichever commits first.
#[test]
fn a_reference_and_a_delete_of_its_target_never_both_commit() {
    for insert_first in [true, false] {
        let (_d, db) = open();
        let mut setup_session = setup(&db);
        let mut a = Session::new(db.clone());
        let mut b = Session::new(db.clone());
        one(&mut a, "BEGIN").unwrap();
        one(&mut b, "BEGIN").unwrap();
        one(&mut a, "INSERT INTO orders VALUES (10, 1, 5)").unwrap();
        one(&mut b, "DELETE FROM customers WHERE id = 1").unwrap();
        let (first, second) = if insert_first {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        one(first, "COMMIT").expect("the first commit succeeds");
        let e = one(second, "COMMIT").expect_err("the second commit fails");
        assert_eq!(e.sqlstate().code(), "40001", "{e}");
        let orders = scalar(&mut setup_session, "SELECT count(*) FROM orders");
        let customer = scalar(
            &mut setup_session,
            "SELECT count(*) FROM customers WHERE id = 1",
        );
        if insert_first {
            assert_eq!((orders, customer), (Value::Int(1), Value::Int(1)));
        } else {
            assert_eq!((orders, customer), (Value::Int(0), Value::Int(0)));
        }
        assert_no_dangling(&mut setup_session);
    }
}

/// The same race with one side outside a transaction: the autocommit write goes first,
/// the transaction's commit fails.
#[test]
fn a_transaction_loses_to_an_autocommit_write_of_the_same_reference() {
    let (_d, db) = open();
    let mut check = setup(&db);
    let mut t = Session::new(db.clone());
    let mut other = Session::new(db.clone());
    one(&mut t, "BEGIN").unwrap();
    one(&mut t, "INSERT INTO orders VALUES (10, 1, 5)").unwrap();
    // Nothing references customer 1 outside the transaction yet: the delete goes through.
    one(&mut other, "DELETE FROM customers WHERE id = 1").unwrap();
    let e = one(&mut t, "COMMIT").unwrap_err();
    assert_eq!(e.sqlstate().code(), "40001", "{e}");
    assert_no_dangling(&mut check);
    // The other way round: the transaction deletes, an autocommit insert references.
    one(&mut t, "BEGIN").unwrap();
    one(&mut t, "DELETE FROM customers WHERE id = 2").unwrap();
    one(&mut other, "INSERT INTO orders VALUES (11, 2, 5)").unwrap();
    let e = one(&mut t, "COMMIT").unwrap_err();
    assert_eq!(e.sqlstate().code(), "40001", "{e}");
    assert_eq!(
        scalar(&mut check, "SELECT count(*) FROM customers WHERE id = 2"),
        Value::Int(1)
    );
    assert_no_dangling(&mut check);
}

/// Many autocommit writers adding references while others delete the referenced rows:
/// whatever interleaving happens, no reference is left dangling.
#[test]
fn racing_autocommit_writers_leave_no_dangling_reference() {
    const CUSTOMERS: i64 = 200;
    let (_d, db) = open();
    let mut s = Session::new(db.clone());
    run(
        &mut s,
        "CREATE TABLE customers (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, total int);
         CREATE TABLE notes (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE);",
    );
    for c in 0..CUSTOMERS {
        one(
            &mut s,
            &format!("INSERT INTO customers VALUES ({c}, 'c{c}')"),
        )
        .unwrap();
    }
    let barrier = Arc::new(Barrier::new(3));
    let mut handles = Vec::new();
    for worker in 0..2i64 {
        let db = db.clone();
        let barrier = barrier.clone();
        handles.push(std::thread::spawn(move || {
            let mut s = Session::new(db);
            barrier.wait();
            for c in 0..CUSTOMERS {
                let id = worker * 1000 + c;
                // Either outcome is fine; a dangling reference is not.
                let _ = one(&mut s, &format!("INSERT INTO orders VALUES ({id}, {c}, 1)"));
                let _ = one(&mut s, &format!("INSERT INTO notes VALUES ({id}, {c})"));
            }
        }));
    }
    {
        let db = db.clone();
        let barrier = barrier.clone();
        handles.push(std::thread::spawn(move || {
            let mut s = Session::new(db);
            barrier.wait();
            for c in 0..CUSTOMERS {
                let _ = one(&mut s, &format!("DELETE FROM customers WHERE id = {c}"));
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_no_dangling(&mut s);
    assert_eq!(
        scalar(
            &mut s,
            "SELECT count(*) FROM notes n LEFT JOIN customers c ON c.id = n.customer_id
             WHERE c.id IS NULL"
        ),
        Value::Int(0)
    );
}

#[test]
fn definitions_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_at(dir.path());
        let mut s = setup(&db);
        run(
            &mut s,
            "CREATE TABLE lines (id int PRIMARY KEY, order_id int,
                CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE);
             CREATE TABLE audit (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE SET NULL);
             INSERT INTO orders VALUES (10, 1, 5);
             INSERT INTO lines VALUES (1, 10);",
        );
        db.close().unwrap();
    }
    let db = open_at(dir.path());
    let mut s = Session::new(db.clone());
    let e = one(&mut s, "INSERT INTO orders VALUES (11, 9, 1)").unwrap_err();
    assert_eq!(e.sqlstate().code(), "23503");
    assert_eq!(
        run(
            &mut s,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE contype = 'f' ORDER BY conname"
        ),
        vec![
            "audit_customer_id_fkey|FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE SET NULL",
            "lines_order|FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE CASCADE",
            "orders_customer_id_fkey|FOREIGN KEY (customer_id) REFERENCES customers(id)",
        ]
    );
    one(&mut s, "DELETE FROM orders WHERE id = 10").unwrap();
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM lines"), Value::Int(0));
    // A DROP ... CASCADE is kept too.
    one(&mut s, "DROP TABLE orders CASCADE").unwrap();
    db.close().unwrap();
    drop(s);
    drop(db);
    let db = open_at(dir.path());
    let mut s = Session::new(db);
    one(&mut s, "INSERT INTO lines VALUES (2, 12345)").unwrap();
    assert_eq!(
        scalar(
            &mut s,
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
        ),
        Value::Int(1)
    );
}

fn object(json: serde_json::Value) -> Object {
    match tissdb::doc::json::from_json(json).unwrap() {
        Value::Object(o) => *o,
        other => panic!("{other:?}"),
    }
}

/// The document API (what REST calls) and COPY go through the same checks and actions.
#[test]
fn document_api_and_copy_are_checked() {
    let (_d, db) = open();
    let mut s = setup(&db);
    run(
        &mut s,
        "CREATE TABLE notes (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE, body text);",
    );
    let e = s
        .insert_document(
            "orders",
            object(serde_json::json!({"id": 10, "customer_id": 7, "total": 1})),
        )
        .unwrap_err();
    assert_eq!(e.sqlstate().code(), "23503");
    let e = s
        .import_documents(
            "orders",
            vec![
                object(serde_json::json!({"id": 10, "customer_id": 1, "total": 1})),
                object(serde_json::json!({"id": 11, "customer_id": 8, "total": 1})),
            ],
        )
        .unwrap_err();
    assert_eq!(e.error.sqlstate().code(), "23503");
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM orders"), Value::Int(0));
    s.import_documents(
        "notes",
        vec![
            object(serde_json::json!({"id": 1, "customer_id": 2, "body": "x"})),
            object(serde_json::json!({"id": 2, "customer_id": 2, "body": "y"})),
        ],
    )
    .unwrap();
    // Deleting a document by id cascades.
    s.delete_document("customers", "2").unwrap();
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM notes"), Value::Int(0));
    // COPY: one bad row fails the whole load.
    let out = run(
        &mut s,
        "COPY orders FROM STDIN;\n20\t1\t5\n21\t99\t5\n\\.\n",
    );
    assert!(out[0].starts_with("ERROR 23503"), "{out:?}");
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM orders"), Value::Int(0));
    let out = run(
        &mut s,
        "COPY orders FROM STDIN;\n20\t1\t5\n21\t\\N\t5\n\\.\n",
    );
    assert_eq!(out, vec!["COPY 2"]);
    // Inside a transaction, the checks see the transaction's own writes.
    let out = run(
        &mut s,
        "BEGIN;
         INSERT INTO customers VALUES (5, 'eve');
         INSERT INTO orders VALUES (30, 5, 1);
         DELETE FROM orders WHERE id = 30;
         DELETE FROM customers WHERE id = 5;
         COMMIT;",
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
    assert_no_dangling(&mut s);
}

/// ON DELETE SET NULL on a NOT NULL column fails the delete, as in PostgreSQL.
#[test]
fn set_null_on_a_not_null_column_fails_the_delete() {
    let (_d, db) = open();
    let mut s = setup(&db);
    run(
        &mut s,
        "CREATE TABLE strict_notes (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE SET NULL);
         INSERT INTO strict_notes VALUES (1, 1);",
    );
    let e = one(&mut s, "DELETE FROM customers WHERE id = 1").unwrap_err();
    assert_eq!(e.sqlstate().code(), "23502");
    assert_eq!(
        scalar(&mut s, "SELECT count(*) FROM customers"),
        Value::Int(2)
    );
}

/// With an index on the referencing column, the references of a deleted document are
/// found through it (the same answers as a scan), in and out of transactions, and for
/// documents written through the document API too.
#[test]
fn an_index_on_the_referencing_column_finds_the_references() {
    let (_d, db) = open();
    let mut s = setup(&db);
    let out = run(
        &mut s,
        "CREATE INDEX orders_customer ON orders (customer_id);
         CREATE TABLE notes (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE);
         CREATE INDEX notes_customer ON notes (customer_id);
         INSERT INTO orders VALUES (10, 1, 5);
         INSERT INTO notes VALUES (1, 2), (2, 2);",
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
    s.insert_document(
        "customers",
        object(serde_json::json!({"id": 3, "name": "cy"})),
    )
    .unwrap();
    s.insert_document(
        "orders",
        object(serde_json::json!({"id": 11, "customer_id": 3, "total": 1})),
    )
    .unwrap();
    let e = one(&mut s, "DELETE FROM customers WHERE id = 1").unwrap_err();
    assert_eq!(e.sqlstate().code(), "23503");
    let e = s.delete_document("customers", "3").unwrap_err();
    assert_eq!(e.sqlstate().code(), "23503");
    assert_eq!(
        e.detail(),
        Some("Key (id)=(3) is still referenced from table \"orders\".")
    );
    one(&mut s, "BEGIN").unwrap();
    let e = one(&mut s, "DELETE FROM customers WHERE id = 1").unwrap_err();
    assert_eq!(e.sqlstate().code(), "23503");
    one(&mut s, "ROLLBACK").unwrap();
    one(&mut s, "DELETE FROM customers WHERE id = 2").unwrap();
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM notes"), Value::Int(0));
    assert_eq!(
        scalar(&mut s, "SELECT count(*) FROM customers"),
        Value::Int(2)
    );
}
