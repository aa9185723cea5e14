//! Joins, set operations, subqueries and recursive queries through the engine's
//! `Session`: plan shapes, nested document paths as join keys, limits. Results against
//! PostgreSQL's are in tests/slt (joins, set_ops, subqueries, cte).

mod common;

use common::{open, run};
use tissdb::{Config, Database, Session};

fn setup(s: &mut Session) {
    let out = run(
        s,
        "CREATE TABLE customers (id int PRIMARY KEY, name text, city text);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total int);
         CREATE COLLECTION reviews;
         INSERT INTO customers VALUES (1, 'ann', 'oslo'), (2, 'bob', 'rome'), (3, 'cy', NULL);
         INSERT INTO orders VALUES (10, 1, 100), (11, 1, 50), (12, 2, 70), (13, 9, 5), (14, NULL, 1);",
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
    let c = s.database().catalog().get("reviews").unwrap();
    drop(c);
    for (id, order, stars, customer) in [("r1", 10, 5, 1), ("r2", 12, 3, 2), ("r3", 12, 4, 7)] {
        let doc = serde_json::json!({
            "id": id, "order_ref": order, "stars": stars,
            "customer": {"id": customer, "tier": "gold"}
        });
        let obj = match tissdb::doc::json::from_json(doc).unwrap() {
            tissdb::doc::Value::Object(o) => o,
            other => panic!("{other:?}"),
        };
        s.insert_document("reviews", *obj).unwrap();
    }
}

fn session() -> (tempfile::TempDir, Session) {
    let (dir, db) = open();
    let mut s = Session::new(db);
    setup(&mut s);
    (dir, s)
}

#[test]
fn equi_joins_hash_and_push_conditions_down() {
    let (_d, mut s) = session();
    let plan = run(
        &mut s,
        "EXPLAIN SELECT name, total FROM customers, orders
         WHERE customers.id = orders.customer_id AND total > 60 AND city = 'oslo'",
    )
    .join("\n");
    assert!(plan.contains("Hash Join"), "{plan}");
    assert!(plan.contains("Hash Cond: (id = customer_id)"), "{plan}");
    assert!(plan.contains("Filter: (total > 60)"), "{plan}");
    assert!(plan.contains("Filter: (city = 'oslo')"), "{plan}");
    assert_eq!(
        run(
            &mut s,
            "SELECT name, total FROM customers, orders
             WHERE customers.id = orders.customer_id AND total > 60 AND city = 'oslo'"
        ),
        vec!["ann|100"]
    );
    let plan = run(
        &mut s,
        "EXPLAIN SELECT 1 FROM customers a JOIN customers b ON a.id < b.id",
    )
    .join("\n");
    assert!(plan.contains("Nested Loop Join"), "{plan}");
    assert!(plan.contains("Join Filter: (id < id)"), "{plan}");
    let plan = run(
        &mut s,
        "EXPLAIN SELECT 1 FROM customers c LEFT JOIN orders o ON o.customer_id = c.id",
    )
    .join("\n");
    assert!(plan.contains("Hash Left Join"), "{plan}");
}

#[test]
fn join_keys_may_be_nested_document_paths() {
    let (_d, mut s) = session();
    assert_eq!(
        run(
            &mut s,
            "SELECT r.id, c.name, o.total FROM reviews r
             JOIN customers c ON r.customer.id = c.id
             JOIN orders o ON o.id = r.order_ref
             ORDER BY r.id"
        ),
        vec!["r1|ann|100", "r2|bob|70"]
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT r.id, c.name FROM reviews r LEFT JOIN customers c ON c.id = r.customer.id ORDER BY 1"
        ),
        vec!["r1|ann", "r2|bob", "r3|NULL"]
    );
}

#[test]
fn a_transaction_joins_its_own_pending_writes() {
    let (_d, mut s) = session();
    run(&mut s, "BEGIN; INSERT INTO orders VALUES (15, 3, 9)");
    assert_eq!(
        run(
            &mut s,
            "SELECT c.name, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY 1"
        ),
        vec!["ann|150", "bob|70", "cy|9"]
    );
    run(&mut s, "ROLLBACK");
    assert_eq!(
        run(
            &mut s,
            "SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id"
        ),
        vec!["3"]
    );
}

#[test]
fn ambiguous_and_unknown_names_are_clear_errors() {
    let (_d, mut s) = session();
    for (sql, code) in [
        ("SELECT id FROM customers JOIN orders ON true", "42702"),
        ("SELECT x.id FROM customers JOIN orders ON true", "42P01"),
        ("SELECT * FROM customers JOIN orders USING (nope)", "42703"),
        ("SELECT * FROM (SELECT 1)", "42601"),
        ("SELECT 1 UNION SELECT 1, 2", "42601"),
        ("SELECT (SELECT id FROM orders)", "21000"),
        (
            "SELECT 1 WHERE 1 IN (SELECT id, total FROM orders)",
            "42601",
        ),
        (
            "SELECT * FROM customers c JOIN orders o ON o.nope = c.id",
            "42703",
        ),
    ] {
        let out = run(&mut s, sql);
        assert!(
            out[0].starts_with(&format!("ERROR {code}")),
            "{sql}: {out:?}"
        );
    }
    assert_eq!(run(&mut s, "SELECT count(*) FROM customers"), vec!["3"]);
}

#[test]
fn limits_stop_runaway_recursion_and_oversized_joins() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(Config {
        data_dir: dir.path().to_path_buf(),
        max_recursion_iterations: 50,
        query_memory_limit: 64 << 10,
        ..Config::default()
    })
    .unwrap();
    let mut s = Session::new(db);
    setup(&mut s);
    let out = run(
        &mut s,
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x FROM n) SELECT count(*) FROM n",
    );
    assert!(
        out[0].starts_with("ERROR 54000") && out[0].contains("max_recursion_iterations (50)"),
        "{out:?}"
    );
    // UNION stops at rows already seen: the same cycle ends.
    assert_eq!(
        run(
            &mut s,
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION SELECT x FROM n) SELECT count(*) FROM n"
        ),
        vec!["1"]
    );
    assert_eq!(
        run(
            &mut s,
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50) SELECT max(x) FROM n"
        ),
        vec!["50"]
    );
    // A join whose inner side outgrows query_memory_limit.
    run(
        &mut s,
        "CREATE TABLE big (id int PRIMARY KEY, pad text);
         INSERT INTO big SELECT x, repeat('p', 2000) FROM (WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 40) SELECT x FROM g) AS t",
    );
    assert_eq!(run(&mut s, "SELECT count(*) FROM big"), vec!["40"]);
    let out = run(
        &mut s,
        "SELECT count(*) FROM big a JOIN big b ON a.pad = b.pad JOIN big c ON true",
    );
    assert!(out[0].starts_with("ERROR 53200"), "{out:?}");
    assert_eq!(run(&mut s, "SELECT count(*) FROM customers"), vec!["3"]);
}

#[test]
fn small_outer_sides_probe_the_inner_side_by_key_or_index() {
    let (_d, db) = open();
    let mut s = Session::new(db);
    run(
        &mut s,
        "CREATE TABLE cust (id int PRIMARY KEY, region text);
         CREATE TABLE ord (id int PRIMARY KEY, cust_id int, total int)",
    );
    let custs: Vec<String> = (1..=300).map(|i| format!("({i}, 'r{}')", i % 7)).collect();
    run(
        &mut s,
        &format!("INSERT INTO cust VALUES {}", custs.join(",")),
    );
    let ords: Vec<String> = (1..=3000)
        .map(|i| format!("({i}, {}, {})", (i * 7919) % 320, i % 97))
        .collect();
    run(
        &mut s,
        &format!("INSERT INTO ord VALUES {}", ords.join(",")),
    );
    // A schemaless inner side: documents with fields the joins below do not read.
    run(&mut s, "CREATE COLLECTION notes");
    let notes: Vec<String> = (1..=900)
        .map(|i| {
            format!(
                "('n{i}', {}, 't{}', '{{\"len\": {i}, \"pad\": \"{}\"}}'::jsonb, 'x{i}')",
                i % 310,
                i % 5,
                "p".repeat(i % 40)
            )
        })
        .collect();
    run(
        &mut s,
        &format!(
            "INSERT INTO notes (id, cust, tag, body, extra) VALUES {}",
            notes.join(",")
        ),
    );
    let queries = [
        // Small outer side (one region's customers), inner side probed by index.
        "SELECT c.id, count(*), sum(o.total) FROM cust c JOIN ord o ON o.cust_id = c.id WHERE c.region = 'r3' GROUP BY c.id ORDER BY c.id",
        // The probed side's own filter on a column the output does not show.
        "SELECT c.id, o.id FROM cust c JOIN ord o ON o.cust_id = c.id WHERE c.region = 'r2' AND o.total > 50 ORDER BY 1, 2",
        // A schemaless side probed by its index: a filtered field and a nested one read.
        "SELECT c.id, n.id, n.body.len FROM cust c JOIN notes n ON n.cust = c.id WHERE c.region = 'r4' AND n.tag = 't1' ORDER BY 1, 2",
        "SELECT c.id, o.id FROM cust c LEFT JOIN ord o ON o.cust_id = c.id WHERE c.id > 290 ORDER BY 1, 2",
        // Large outer side (3000 orders): the full hash join.
        "SELECT count(*), sum(c.id) FROM ord o JOIN cust c ON c.id = o.cust_id",
        // Outer side of orders, inner side customers probed by their key.
        "SELECT o.id, c.region FROM ord o JOIN cust c ON c.id = o.cust_id WHERE o.total = 5 ORDER BY 1",
    ];
    let before: Vec<Vec<String>> = queries.iter().map(|q| run(&mut s, q)).collect();
    run(
        &mut s,
        "CREATE INDEX ON ord (cust_id); CREATE INDEX ON notes (cust)",
    );
    for q in &queries[..2] {
        let plan = run(&mut s, &format!("EXPLAIN {q}")).join("\n");
        assert!(
            plan.contains("Index Probe: ord by index ord_cust_id_idx"),
            "{plan}"
        );
    }
    let plan = run(&mut s, &format!("EXPLAIN {}", queries[2])).join("\n");
    assert!(
        plan.contains("Index Probe: notes by index notes_cust_idx"),
        "{plan}"
    );
    let plan = run(&mut s, &format!("EXPLAIN {}", queries[5])).join("\n");
    assert!(plan.contains("Index Probe: cust by key"), "{plan}");
    for (q, want) in queries.iter().zip(&before) {
        let got = run(&mut s, q);
        assert!(
            !got.is_empty() && !got[0].starts_with("ERROR"),
            "{q}: {got:?}"
        );
        assert_eq!(&got, want, "{q}");
    }
    // In a transaction that wrote the orders, the index lacks them: no probe, same rows.
    run(&mut s, "BEGIN; INSERT INTO ord VALUES (5001, 298, 7)");
    let got = run(&mut s, queries[3]);
    assert!(got.contains(&"298|5001".to_string()), "{got:?}");
    run(&mut s, "ROLLBACK");
    // `c.id = 42` and `o.cust_id = c.id` give `o.cust_id = 42`: the orders side reads
    // the index range of 42 only.
    let plan = run(
        &mut s,
        "EXPLAIN SELECT sum(o.total) FROM cust c JOIN ord o ON o.cust_id = c.id WHERE c.id = 42",
    )
    .join("\n");
    assert!(
        plan.contains("Index Scan using ord_cust_id_idx on ord"),
        "{plan}"
    );
    assert!(plan.contains("Key Lookup on cust"), "{plan}");
    // The probe reads only the matching orders.
    let analyzed = run(&mut s, &format!("EXPLAIN ANALYZE {}", queries[0])).join("\n");
    assert!(analyzed.contains("Index Probe"), "{analyzed}");
}

#[test]
fn correlated_exists_and_in_become_semi_and_anti_joins() {
    let (_d, mut s) = session();
    let plan = run(
        &mut s,
        "EXPLAIN SELECT name FROM customers c
         WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.total > 60)",
    )
    .join("\n");
    assert!(plan.contains("Hash Semi Join"), "{plan}");
    assert!(plan.contains("Filter: (total > 60)"), "{plan}");
    assert!(!plan.contains("SubPlan"), "{plan}");
    let plan = run(
        &mut s,
        "EXPLAIN SELECT id FROM orders o
         WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)",
    )
    .join("\n");
    assert!(plan.contains("Hash Anti Join"), "{plan}");
    assert!(plan.contains("Index Probe: customers by key"), "{plan}");
    assert_eq!(
        run(
            &mut s,
            "SELECT id FROM orders o
             WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id) ORDER BY id"
        ),
        vec!["13", "14"]
    );
    // IN with a correlated condition: a semi-join on the IN's equality plus the rest.
    let q = "SELECT name FROM customers c
             WHERE c.id IN (SELECT customer_id FROM orders o WHERE o.total >= c.id * 60) ORDER BY 1";
    let plan = run(&mut s, &format!("EXPLAIN {q}")).join("\n");
    assert!(plan.contains("Hash Semi Join"), "{plan}");
    assert!(plan.contains("Join Filter"), "{plan}");
    assert_eq!(run(&mut s, q), vec!["ann"]);
    // Not decorrelated: NOT IN (NULL rules), a subquery under OR, an aggregate.
    for q in [
        "SELECT name FROM customers c WHERE c.id NOT IN (SELECT customer_id FROM orders o WHERE o.total > c.id)",
        "SELECT name FROM customers c WHERE c.city = 'x' OR EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)",
        "SELECT name FROM customers c WHERE 1 < (SELECT count(*) FROM orders o WHERE o.customer_id = c.id)",
    ] {
        let plan = run(&mut s, &format!("EXPLAIN {q}")).join("\n");
        assert!(!plan.contains("Semi") && !plan.contains("Anti"), "{plan}");
    }
    assert_eq!(
        run(
            &mut s,
            "SELECT name FROM customers c WHERE 1 < (SELECT count(*) FROM orders o WHERE o.customer_id = c.id)"
        ),
        vec!["ann"]
    );
}

#[test]
fn explain_analyze_counts_rows_inside_a_recursive_union() {
    let (_d, mut s) = session();
    let out = run(
        &mut s,
        "EXPLAIN ANALYZE WITH RECURSIVE r(n) AS
           (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
    );
    let line = |what: &str| {
        out.iter()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what}: {out:#?}"))
            .clone()
    };
    // Summed over the rounds: the work table gave 5 rows (1..5 over five rounds), the
    // filter kept 4, the anchor's Values 1, the union 5.
    assert!(
        line("Recursive Union").contains("actual rows=5"),
        "{out:#?}"
    );
    assert!(line("Values").contains("actual rows=1"), "{out:#?}");
    assert!(line("Filter  (").contains("actual rows=4"), "{out:#?}");
    assert!(line("WorkTable Scan").contains("actual rows=5"), "{out:#?}");
}
