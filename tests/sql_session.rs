//! TissQL through the engine's Session API (no protocol): the seed's examples and the
//! core semantics.

mod common;

use common::{open, run};
use tissdb::Session;
use tissdb::doc::{Object, Value, json};
use tissdb::query::Outcome;

fn seed_products(s: &mut Session) {
    s.create_collection("products").unwrap();
    let docs = [
        r#"{"id": "product_789", "name": "Wireless Headphones", "brand": "AudioPhonic", "price": 199.99, "is_available": true,
            "specs": {"weight": "250g", "bluetooth_version": 5.2}}"#,
        r#"{"id": "p2", "name": "Smart Watch", "brand": "TechGear", "price": 299.99, "is_available": true}"#,
        r#"{"id": "p3", "name": "Earbuds", "brand": "AudioPhonic", "price": 99, "is_available": false,
            "specs": {"weight": "50g", "bluetooth_version": 5.3}}"#,
        r#"{"id": "p4", "name": "Speaker", "brand": "AudioPhonic", "price": 249.5, "is_available": true}"#,
    ];
    for d in docs {
        let doc: Object = json::parse_document(d.as_bytes(), &Default::default()).unwrap();
        s.insert_document("products", doc).unwrap();
    }
}

#[test]
fn seed_examples() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    seed_products(&mut s);
    assert_eq!(
        run(
            &mut s,
            "SELECT name, price FROM products WHERE brand = 'AudioPhonic' AND price < 200 ORDER BY name"
        ),
        vec!["Earbuds|99", "Wireless Headphones|199.99"]
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT name, specs.bluetooth_version FROM products ORDER BY id"
        ),
        vec![
            "Smart Watch|NULL",
            "Earbuds|5.3",
            "Speaker|NULL",
            "Wireless Headphones|5.2"
        ]
    );
    assert_eq!(
        run(
            &mut s,
            "UPDATE products SET price = 179.99 WHERE id = 'product_789'"
        ),
        vec!["UPDATE 1"]
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT price FROM products WHERE id = 'product_789'"
        ),
        vec!["179.99"]
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT COUNT(*) FROM products WHERE is_available = true"
        ),
        vec!["3"]
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT brand, AVG(price) FROM products GROUP BY brand ORDER BY brand"
        ),
        vec!["AudioPhonic|176.16333333333333", "TechGear|299.99"]
    );
    assert_eq!(
        run(&mut s, "DELETE FROM products WHERE is_available = false"),
        vec!["DELETE 1"]
    );
    assert_eq!(run(&mut s, "SELECT count(*) FROM products"), vec!["3"]);
    assert_eq!(
        run(
            &mut s,
            "UPDATE products SET specs.weight = '260g' WHERE id = 'product_789' RETURNING specs->>'weight'"
        ),
        vec!["260g"]
    );
    let doc = s.get_document("products", "product_789").unwrap().unwrap();
    let Value::Object(specs) = &doc["specs"] else {
        panic!()
    };
    assert_eq!(specs["weight"], Value::String("260g".into()));
    assert_eq!(specs["bluetooth_version"], Value::Float(5.2));
}

#[test]
fn tables_types_and_errors() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    let mut out = run(
        &mut s,
        "CREATE TABLE t (id integer PRIMARY KEY, name text NOT NULL, qty int DEFAULT 5, price numeric, at timestamptz);
         INSERT INTO t (id, name, price, at) VALUES (1, 'a', 1.50, '2023-10-26 10:00:00+00'), (2, 'b', NULL, NULL) RETURNING id, qty;
         SELECT id, name, qty, price, at FROM t ORDER BY id;
         SELECT * FROM t WHERE id = 2;",
    );
    out.extend(run(&mut s, "INSERT INTO t (id, name) VALUES (1, 'dup')"));
    assert_eq!(out[0], "CREATE TABLE");
    assert_eq!(&out[1..3], ["1|5", "2|5"]);
    assert_eq!(
        &out[3..5],
        ["1|a|5|1.50|2023-10-26 10:00:00+00", "2|b|5|NULL|NULL"]
    );
    assert_eq!(out[5], "2|b|5|NULL|NULL");
    assert!(out[6].starts_with("ERROR 23505"), "{out:?}");
    let errors = [
        ("SELEKT 1", "42601"),
        ("SELECT * FROM nope", "42P01"),
        ("SELECT nope FROM t", "42703"),
        ("SELECT 1/0", "22012"),
        ("SELECT 'x'::int", "22P02"),
        ("INSERT INTO t (id) VALUES (3)", "23502"),
        ("SELECT name + 1 FROM t", "42883"),
        ("SELECT name, count(*) FROM t", "42803"),
        ("SELECT * FROM t FOR UPDATE", "0A000"),
    ];
    for (sql, code) in errors {
        let out = run(&mut s, sql);
        assert!(
            out[0].starts_with(&format!("ERROR {code}")),
            "{sql}: {out:?}"
        );
    }
    // The session still works and nothing changed.
    assert_eq!(run(&mut s, "SELECT count(*) FROM t"), vec!["2"]);
}

#[test]
fn null_logic_aggregates_and_ordering() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    let out = run(
        &mut s,
        "SELECT NULL AND false, NULL OR true, NULL = NULL, 1 IN (2, NULL), 3 BETWEEN 1 AND 5;
         CREATE COLLECTION e;
         INSERT INTO e (id, x) VALUES ('a', 3), ('b', NULL), ('c', 1);
         SELECT count(*), sum(x), avg(x), min(x), max(x) FROM e WHERE x > 100;
         SELECT id FROM e ORDER BY x;
         SELECT id FROM e ORDER BY x DESC;
         SELECT id FROM e ORDER BY x NULLS FIRST LIMIT 2 OFFSET 1;
         SELECT count(x), count(*) FROM e;",
    );
    assert_eq!(
        out,
        vec![
            "f|t|NULL|NULL|t",
            "CREATE COLLECTION",
            "INSERT 0 3",
            "0|NULL|NULL|NULL|NULL",
            "c",
            "a",
            "b",
            "b",
            "a",
            "c",
            "c",
            "a",
            "2|3",
        ]
    );
}

#[test]
fn explain_names_the_access_path() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    seed_products(&mut s);
    let plan = run(&mut s, "EXPLAIN SELECT name FROM products WHERE id = 'p2'").join("\n");
    assert!(plan.contains("Key Lookup on products"), "{plan}");
    let plan = run(
        &mut s,
        "EXPLAIN SELECT brand, count(*) FROM products WHERE price > 100 GROUP BY brand",
    )
    .join("\n");
    assert!(
        plan.contains("HashAggregate") && plan.contains("Seq Scan on products"),
        "{plan}"
    );
}

#[test]
fn prepared_statements_infer_parameter_types() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    seed_products(&mut s);
    let p = s
        .prepare(
            "SELECT name, price FROM products WHERE price < $1 AND brand = $2 ORDER BY price",
            &[],
        )
        .unwrap();
    assert_eq!(
        p.param_types,
        vec![tissdb::query::SqlType::Float8, tissdb::query::SqlType::Text]
    );
    assert_eq!(p.columns.len(), 2);
    assert_eq!(p.columns[1].ty, tissdb::query::SqlType::Float8);
    let out = s
        .execute(
            &p,
            &[Value::Float(200.0), Value::String("AudioPhonic".into())],
        )
        .unwrap();
    let Outcome::Rows { rows, .. } = out else {
        panic!()
    };
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0][1],
        Value::Float(99.0),
        "an integer price comes out as float8"
    );
}

#[test]
fn vacuum_compacts_and_checks_the_name() {
    let (_dir, db) = open();
    let mut s = Session::new(db.clone());
    seed_products(&mut s);
    assert_eq!(
        run(&mut s, "DELETE FROM products WHERE id = 'p2'"),
        vec!["DELETE 1"]
    );
    assert_eq!(run(&mut s, "VACUUM products"), vec!["VACUUM"]);
    assert_eq!(
        db.storage().segment_sizes().len(),
        1,
        "one segment after a full compaction"
    );
    assert_eq!(run(&mut s, "SELECT count(*) FROM products"), vec!["3"]);
    assert!(run(&mut s, "VACUUM nope")[0].starts_with("ERROR 42P01"));
}

#[test]
fn a_cancel_flag_set_during_a_statement_stops_it_with_57014() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    let values: Vec<String> = (0..3000).map(|i| format!("({i})")).collect();
    run(
        &mut s,
        &format!(
            "CREATE TABLE slow (id integer PRIMARY KEY); INSERT INTO slow VALUES {}",
            values.join(", ")
        ),
    );
    let flag = s.cancel_flag();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let started = std::time::Instant::now();
    let out = run(
        &mut s,
        "SELECT count(*) FROM slow WHERE length(replace(repeat('ab', 100000 + id), 'a', 'cd')) > 0",
    );
    canceller.join().unwrap();
    assert!(
        out[0].starts_with("ERROR 57014"),
        "{out:?} after {:?}",
        started.elapsed()
    );
    // The next statement runs normally.
    assert_eq!(run(&mut s, "SELECT count(*) FROM slow"), vec!["3000"]);
}

#[test]
fn prepared_writes_keep_their_plan_only_when_nothing_can_change_it() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    run(
        &mut s,
        "CREATE TABLE t (id integer PRIMARY KEY, n integer, at timestamptz)",
    );
    let insert = s
        .prepare("INSERT INTO t (id, n) VALUES ($1, $2)", &[])
        .unwrap();
    for i in 0..3 {
        s.execute(&insert, &[Value::Int(i), Value::Int(i * 10)])
            .unwrap();
    }
    assert!(
        insert.plan_cache.is_kept(),
        "a single-row INSERT keeps its plan"
    );
    // A failed execution leaves the kept plan working.
    assert!(s.execute(&insert, &[Value::Int(1), Value::Int(0)]).is_err());
    s.execute(&insert, &[Value::Int(3), Value::Int(30)])
        .unwrap();

    let bump = s
        .prepare("UPDATE t SET n = n + 1 WHERE id = $1", &[])
        .unwrap();
    s.execute(&bump, &[Value::Int(2)]).unwrap();
    assert!(bump.plan_cache.is_kept(), "an UPDATE by key keeps its plan");
    s.execute(&bump, &[Value::Int(2)]).unwrap();
    assert_eq!(run(&mut s, "SELECT n FROM t WHERE id = 2"), vec!["22"]);

    // A subquery in the WHERE is run once at planning: its plan is not kept.
    let above = s
        .prepare(
            "UPDATE t SET n = n + 1 WHERE n > (SELECT min(n) FROM t) AND id = $1",
            &[],
        )
        .unwrap();
    s.execute(&above, &[Value::Int(3)]).unwrap();
    assert!(!above.plan_cache.is_kept());
    // Nor is one calling a function.
    let stamp = s
        .prepare("UPDATE t SET at = now() WHERE id = $1", &[])
        .unwrap();
    s.execute(&stamp, &[Value::Int(1)]).unwrap();
    assert!(!stamp.plan_cache.is_kept());
    // Inside a transaction, a plan nothing pending can change is kept (a typed table,
    // by key), and runs on the transaction's own writes.
    let remove = s.prepare("DELETE FROM t WHERE id = $1", &[]).unwrap();
    run(&mut s, "BEGIN");
    s.execute(&bump, &[Value::Int(3)]).unwrap();
    assert!(bump.plan_cache.is_kept());
    s.execute(&bump, &[Value::Int(3)]).unwrap();
    assert_eq!(run(&mut s, "SELECT n FROM t WHERE id = 3"), vec!["33"]);
    s.execute(&remove, &[Value::Int(0)]).unwrap();
    assert!(remove.plan_cache.is_kept());
    s.execute(&remove, &[Value::Int(0)]).unwrap();
    run(&mut s, "COMMIT");
    s.execute(&remove, &[Value::Int(1)]).unwrap();
    assert!(remove.plan_cache.is_kept());
    assert_eq!(
        run(&mut s, "SELECT id, n FROM t ORDER BY id"),
        vec!["2|22", "3|33"]
    );
    // Not one over a schemaless collection, whose columns pending writes may widen.
    s.create_collection("docs").unwrap();
    run(&mut s, "INSERT INTO docs (id, n) VALUES ('a', 1)");
    let set = s
        .prepare("UPDATE docs SET n = $2 WHERE id = $1", &[])
        .unwrap();
    run(&mut s, "BEGIN");
    s.execute(&set, &[Value::String("a".into()), Value::Int(5)])
        .unwrap();
    assert!(!set.plan_cache.is_kept());
    run(&mut s, "COMMIT");
    assert_eq!(run(&mut s, "SELECT n FROM docs"), vec!["5"]);
}

#[test]
fn prepared_selects_keep_their_plan_only_when_nothing_can_change_it() {
    let (_dir, db) = open();
    let mut s = Session::new(db);
    seed_products(&mut s);
    let by_id = s
        .prepare("SELECT name FROM products WHERE id = $1", &[])
        .unwrap();
    let name = |s: &mut Session, p: &tissdb::session::Prepared, id: &str| -> Vec<Value> {
        match s.execute(p, &[Value::String(id.into())]).unwrap() {
            Outcome::Rows { rows, .. } => rows.into_iter().map(|r| r[0].clone()).collect(),
            other => panic!("{other:?}"),
        }
    };
    assert!(!by_id.plan_cache.is_kept());
    assert_eq!(
        name(&mut s, &by_id, "p2"),
        vec![Value::String("Smart Watch".into())]
    );
    assert!(
        by_id.plan_cache.is_kept(),
        "an autocommit point read keeps its plan"
    );
    assert_eq!(
        name(&mut s, &by_id, "p3"),
        vec![Value::String("Earbuds".into())]
    );

    // Function calls may give another answer with the same catalog: never kept.
    let clock = s.prepare("SELECT now()", &[]).unwrap();
    s.execute(&clock, &[]).unwrap();
    s.execute(&clock, &[]).unwrap();
    assert!(!clock.plan_cache.is_kept());

    // Inside a transaction, pending writes change what binding sees: not kept.
    let in_txn = s
        .prepare("SELECT name FROM products WHERE brand = $1", &[])
        .unwrap();
    run(&mut s, "BEGIN");
    s.execute(&in_txn, &[Value::String("TechGear".into())])
        .unwrap();
    assert!(!in_txn.plan_cache.is_kept());
    run(&mut s, "COMMIT");

    // A plan made over an index is not used once the index is gone. (Enough other
    // brands that the planner picks the index.)
    let values: Vec<String> = (0..300)
        .map(|i| format!("('x{i}', 'Gadget {i}', 'Brand{}')", i % 50))
        .collect();
    run(
        &mut s,
        &format!(
            "INSERT INTO products (id, name, brand) VALUES {}",
            values.join(", ")
        ),
    );
    run(&mut s, "CREATE INDEX products_brand ON products (brand)");
    let plan = run(
        &mut s,
        "EXPLAIN SELECT name FROM products WHERE brand = 'AudioPhonic'",
    );
    assert!(plan.iter().any(|l| l.contains("Index Scan")), "{plan:?}");
    let by_brand = s
        .prepare(
            "SELECT name FROM products WHERE brand = $1 ORDER BY name",
            &[],
        )
        .unwrap();
    let names = |s: &mut Session| match s
        .execute(&by_brand, &[Value::String("AudioPhonic".into())])
        .unwrap()
    {
        Outcome::Rows { rows, .. } => rows.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(names(&mut s), 3);
    assert!(
        by_brand.plan_cache.is_kept(),
        "a plan over the index is kept"
    );
    run(&mut s, "DROP INDEX products_brand");
    run(
        &mut s,
        "INSERT INTO products (id, name, brand) VALUES ('p5', 'Tuner', 'AudioPhonic')",
    );
    assert_eq!(
        names(&mut s),
        4,
        "the plan over the dropped index was not kept"
    );
}
