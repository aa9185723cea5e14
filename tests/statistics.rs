//! Per-collection document counts (exact, kept with every write, durable like the data)
//! as the catalogs show them, and the join order the planner picks from them.

mod common;

use common::{open, open_at, run};
use tissdb::Session;

fn count(s: &mut Session, table: &str) -> (String, String) {
    let reltuples = run(
        s,
        &format!(
            "SELECT reltuples::int8 FROM pg_class WHERE relname = '{table}' AND relkind = 'r'"
        ),
    );
    let live = run(
        s,
        &format!("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = '{table}'"),
    );
    (reltuples.join(","), live.join(","))
}

fn counted(n: i64) -> (String, String) {
    (n.to_string(), n.to_string())
}

#[test]
fn document_counts_follow_every_kind_of_write() {
    let (_d, db) = open();
    let mut s = Session::new(db.clone());
    run(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, v int);
         CREATE COLLECTION docs;",
    );
    assert_eq!(count(&mut s, "t"), counted(0));
    run(
        &mut s,
        "INSERT INTO t SELECT g, g FROM generate_series(1, 100) g",
    );
    assert_eq!(count(&mut s, "t"), counted(100));
    // Updates change no count; deletes and upserts do what they do.
    run(&mut s, "UPDATE t SET v = v + 1 WHERE id <= 50");
    assert_eq!(count(&mut s, "t"), counted(100));
    run(&mut s, "DELETE FROM t WHERE id > 90");
    assert_eq!(count(&mut s, "t"), counted(90));
    run(
        &mut s,
        "INSERT INTO t VALUES (1, 0), (500, 0) ON CONFLICT DO NOTHING",
    );
    assert_eq!(count(&mut s, "t"), counted(91));
    // A failed statement and a rolled-back transaction count nothing; a committed one
    // counts its net change.
    let dup = run(&mut s, "INSERT INTO t VALUES (600, 1), (1, 1)");
    assert!(dup[0].starts_with("ERROR 23505"), "{dup:?}");
    run(
        &mut s,
        "BEGIN; INSERT INTO t VALUES (700, 1); DELETE FROM t WHERE id = 2; ROLLBACK",
    );
    assert_eq!(count(&mut s, "t"), counted(91));
    run(
        &mut s,
        "BEGIN; INSERT INTO t VALUES (700, 1), (701, 1); DELETE FROM t WHERE id = 2;
         DELETE FROM t WHERE id = 700; COMMIT",
    );
    assert_eq!(count(&mut s, "t"), counted(91));
    assert_eq!(run(&mut s, "SELECT count(*) FROM t"), vec!["91"]);
    // Schemaless documents, through SQL and the document API.
    run(
        &mut s,
        r#"INSERT INTO docs VALUES ('{"id": "a", "x": 1}'), ('{"id": "b", "x": 2}')"#,
    );
    let doc = match tissdb::doc::json::from_json(serde_json::json!({"x": 3})).unwrap() {
        tissdb::doc::Value::Object(o) => o,
        other => panic!("{other:?}"),
    };
    s.insert_document("docs", *doc).unwrap();
    assert_eq!(count(&mut s, "docs"), counted(3));
    // Dropped and created again: a new collection starts at 0.
    run(&mut s, "DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY)");
    assert_eq!(count(&mut s, "t"), counted(0));
}

#[test]
fn document_counts_survive_a_crash_and_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_at(dir.path());
        let mut s = Session::new(db.clone());
        run(
            &mut s,
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT g, 'x' FROM generate_series(1, 300) g;",
        );
        // Part of the writes flushed into a segment (counts into the manifest), the rest
        // only in the WAL when the process goes away without closing.
        db.storage().flush().unwrap();
        run(
            &mut s,
            "DELETE FROM t WHERE id <= 20; INSERT INTO t VALUES (1000, 'y')",
        );
        assert_eq!(count(&mut s, "t"), counted(281));
        // Dropped without close: the WAL holds what was not flushed.
        drop(s);
        drop(db);
    }
    let db = open_at(dir.path());
    let mut s = Session::new(db.clone());
    assert_eq!(count(&mut s, "t"), counted(281));
    assert_eq!(run(&mut s, "SELECT count(*) FROM t"), vec!["281"]);
    // After a flush and a clean reopen too, and the flushed bytes show as the size.
    db.storage().flush().unwrap();
    assert_eq!(count(&mut s, "t"), counted(281));
    let size = run(
        &mut s,
        "SELECT pg_relation_size('t') > 0, relpages > 0 FROM pg_class WHERE relname = 't'",
    );
    assert_eq!(size, vec!["t|t"]);
    db.close().unwrap();
    drop(s);
    drop(db);
    let db = open_at(dir.path());
    let mut s = Session::new(db);
    assert_eq!(count(&mut s, "t"), counted(281));
}

/// Loads `customers` (30 rows) and `orders` (3000 rows) and a 3-row `regions`.
fn join_data(s: &mut Session) {
    let out = run(
        s,
        "CREATE TABLE regions (id int PRIMARY KEY, name text);
         CREATE TABLE customers (id int PRIMARY KEY, region int, name text);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total int);
         INSERT INTO regions VALUES (1, 'north'), (2, 'south'), (3, 'east');
         INSERT INTO customers SELECT g, g % 3 + 1, 'c' || g FROM generate_series(1, 30) g;
         INSERT INTO orders SELECT g, g % 30 + 1, g % 7 FROM generate_series(1, 3000) g;",
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
}

fn plan(s: &mut Session, sql: &str) -> String {
    run(s, &format!("EXPLAIN {sql}")).join("\n")
}

#[test]
fn the_smaller_side_of_a_join_is_hashed_whatever_the_written_order() {
    let (_d, db) = open();
    let mut s = Session::new(db);
    join_data(&mut s);
    let q = "SELECT c.name, sum(o.total) FROM orders o JOIN customers c ON o.customer_id = c.id
             GROUP BY c.name ORDER BY c.name LIMIT 3";
    let written_well = plan(&mut s, q);
    let q2 = "SELECT c.name, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id
             GROUP BY c.name ORDER BY c.name LIMIT 3";
    let reordered = plan(&mut s, q2);
    // Written either way, the 30 customers are hashed, not the 3000 orders: the
    // second plan has the join turned around (and a projection putting the columns
    // back in the written order).
    for p in [&written_well, &reordered] {
        let scans: Vec<&str> = p.lines().filter(|l| l.contains("Seq Scan")).collect();
        assert_eq!(scans.len(), 2, "{p}");
        assert!(
            scans[0].contains("orders") && scans[1].contains("customers"),
            "{p}"
        );
    }
    let projections = |p: &str| p.matches("Project").count();
    assert_eq!(
        projections(&reordered),
        projections(&written_well) + 1,
        "{reordered}"
    );
    // Same answers, columns in the written order.
    assert_eq!(run(&mut s, q), run(&mut s, q2));
    assert_eq!(
        run(
            &mut s,
            "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id = 31"
        ),
        vec!["2|3|c2|31|2|3"]
    );
}

#[test]
fn three_collections_join_from_the_smallest_along_their_conditions() {
    let (_d, db) = open();
    let mut s = Session::new(db);
    join_data(&mut s);
    // Written as orders x customers x regions with the WHERE linking them: the plan
    // starts from regions (3 rows, one pinned by name), then customers, then orders.
    let q = "SELECT r.name, count(*), sum(o.total) FROM orders o, customers c, regions r
             WHERE o.customer_id = c.id AND c.region = r.id AND r.name = 'south'
             GROUP BY r.name";
    let p = plan(&mut s, q);
    assert!(p.contains("Project"), "{p}");
    assert!(!p.contains("Nested Loop"), "no cross product: {p}");
    let expected = run(
        &mut s,
        "SELECT 'south', count(*), sum(o.total) FROM orders o
         WHERE o.customer_id IN (SELECT id FROM customers WHERE region = 2)",
    );
    assert_eq!(run(&mut s, q), expected);
    assert_eq!(run(&mut s, q)[0].split('|').nth(1), Some("1000"));
    // A condition with a correlated subquery stays above, on the written columns.
    let q = "SELECT c.id, o.id FROM orders o, customers c
             WHERE o.customer_id = c.id AND o.id < 40
               AND o.total = (SELECT max(o2.total) FROM orders o2 WHERE o2.customer_id = c.id AND o2.id < 40)
             ORDER BY 1, 2";
    let got = run(&mut s, q);
    assert_eq!(got.len(), 30, "{got:?}");
    assert!(got.contains(&"6|5".to_string()), "{got:?}");
}
