//! Simple-protocol statements run through templates (`tissdb::query::auto_param`):
//! their literals made parameters, the prepared template kept by the session. Through
//! the wire's simple protocol, with `GET /`'s `template_runs` showing which statements
//! took that way: each answer is still the literal's.

mod common;

use common::{Server, pg_client};
use postgres::SimpleQueryMessage;

fn template_runs(s: &Server) -> u64 {
    let info = s.get("/").json();
    info["template_runs"]
        .as_u64()
        .unwrap_or_else(|| panic!("GET / has no template_runs: {info}"))
}

/// The text rows of a simple query.
fn rows(c: &mut postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    c.simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

fn one(c: &mut postgres::Client, sql: &str) -> Option<String> {
    let r = rows(c, sql);
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r[0][0].clone()
}

#[test]
fn literals_become_parameters_and_each_answer_is_the_literals() {
    let s = Server::start();
    let mut c = pg_client(&s);
    c.batch_execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, brand text, price float8, qty int, note text)",
    )
    .unwrap();
    let before = template_runs(&s);
    for i in 1..=40i64 {
        c.simple_query(&format!(
            "INSERT INTO items (id, brand, price, qty, note) VALUES ({i}, 'b{}', {}.25, {}, 'it''s {i}')",
            i % 4,
            i * 2,
            i % 7
        ))
        .unwrap();
    }
    // The first INSERT of the shape ran as written, the other 39 from its template.
    let after_inserts = template_runs(&s);
    assert_eq!(after_inserts - before, 39);
    for i in [1i64, 17, 40] {
        let r = rows(
            &mut c,
            &format!("SELECT brand, price, qty, note FROM items WHERE id = {i}"),
        );
        let want = vec![
            Some(format!("b{}", i % 4)),
            Some(format!("{}.25", i * 2)),
            Some(format!("{}", i % 7)),
            Some(format!("it's {i}")),
        ];
        assert_eq!(r, vec![want], "id {i}");
    }
    assert_eq!(template_runs(&s) - after_inserts, 2, "point reads by key");
    // A string literal read as the key's type; a missing key; a key that is no number
    // fails as the literal does (22P02) and leaves the session working.
    assert_eq!(
        one(&mut c, "SELECT qty FROM items WHERE id = '17'"),
        Some("3".into())
    );
    assert!(rows(&mut c, "SELECT qty FROM items WHERE id = 999").is_empty());
    let err = c
        .simple_query("SELECT qty FROM items WHERE id = 'x7'")
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22P02"), "{err}");
    assert_eq!(
        one(&mut c, "SELECT qty FROM items WHERE id = 17"),
        Some("3".into())
    );

    // An integer cast to text is a text parameter: `007::text` is '7'.
    c.batch_execute("CREATE TABLE d (id text PRIMARY KEY, b text)")
        .unwrap();
    c.batch_execute("INSERT INTO d VALUES ('7', 'brand_7'), ('8', 'brand_8')")
        .unwrap();
    let before = template_runs(&s);
    for _ in 0..3 {
        assert_eq!(
            one(&mut c, "SELECT b FROM d WHERE id = 007::text"),
            Some("brand_7".into())
        );
        assert_eq!(
            one(
                &mut c,
                "SELECT id FROM d WHERE id = 8::text AND b = 'brand_' || 8::text"
            ),
            Some("8".into())
        );
    }
    assert_eq!(template_runs(&s) - before, 4);

    // UPDATEs and DELETEs by key; one by another column runs as written.
    let before = template_runs(&s);
    for i in 1..=10i64 {
        c.simple_query(&format!("UPDATE items SET qty = qty + {i} WHERE id = {i}"))
            .unwrap();
    }
    for i in 1..=4i64 {
        c.simple_query(&format!(
            "UPDATE items SET note = 'n{i}' WHERE brand = 'b{i}'"
        ))
        .unwrap();
    }
    c.simple_query("DELETE FROM items WHERE id = 39").unwrap();
    c.simple_query("DELETE FROM items WHERE id = 40").unwrap();
    assert_eq!(template_runs(&s) - before, 9 + 1);
    assert_eq!(
        one(&mut c, "SELECT qty FROM items WHERE id = 3"),
        Some("6".into())
    );
    assert_eq!(
        one(&mut c, "SELECT qty FROM items WHERE id = 10"),
        Some("13".into())
    );
    assert_eq!(
        one(&mut c, "SELECT count(*) FROM items WHERE note = 'n1'"),
        Some("10".into())
    );
    assert_eq!(one(&mut c, "SELECT count(*) FROM items"), Some("38".into()));
}

/// A string cast with `::` is a text parameter the cast reads: documents inserted with
/// `'...'::jsonb` read back as the literals give them, a jsonb string scalar read once.
#[test]
fn string_casts_are_read_once_by_the_cast() {
    let s = Server::start();
    let mut c = pg_client(&s);
    c.batch_execute("CREATE COLLECTION docs; CREATE INDEX ON docs (brand)")
        .unwrap();
    let before = template_runs(&s);
    let values = [
        r#"{"w": "1g", "d": {"h": 2}, "f": ["a", "it's"]}"#,
        r#""1""#,
        r#""it's""#,
        "[1, 2.5, null]",
        "17",
        "true",
    ];
    for (i, v) in values.iter().enumerate() {
        c.simple_query(&format!(
            "INSERT INTO docs (id, brand, specs, n) VALUES ('{i}', 'b{}', '{}'::jsonb, '{i}'::int) ON CONFLICT DO NOTHING",
            i % 2,
            v.replace('\'', "''"),
        ))
        .unwrap_or_else(|e| panic!("{v}: {e}"));
    }
    assert_eq!(template_runs(&s) - before, values.len() as u64 - 1);
    for (i, v) in values.iter().enumerate() {
        let r = rows(
            &mut c,
            &format!("SELECT specs, n + 1, brand FROM docs WHERE id = '{i}'::text"),
        );
        let want: serde_json::Value = serde_json::from_str(v).unwrap();
        let got: serde_json::Value = serde_json::from_str(r[0][0].as_deref().unwrap()).unwrap();
        assert_eq!(got, want, "id {i}");
        assert_eq!(r[0][1], Some((i + 1).to_string()), "id {i}");
        assert_eq!(r[0][2], Some(format!("b{}", i % 2)), "id {i}");
    }
    // Bad text fails as the literal does and writes nothing, through the template too.
    for bad in [
        "INSERT INTO docs (id, specs) VALUES ('x1', '{\"a\": }'::jsonb)",
        "INSERT INTO docs (id, n) VALUES ('x2', 'five'::int)",
    ] {
        for _ in 0..2 {
            let e = c.simple_query(bad).unwrap_err();
            assert_eq!(e.code().map(|c| c.code()), Some("22P02"), "{bad}: {e}");
        }
    }
    assert_eq!(
        one(&mut c, "SELECT count(*) FROM docs"),
        Some(values.len().to_string())
    );
}

#[test]
fn the_template_follows_the_catalog_and_stays_out_of_what_values_steer() {
    let s = Server::start();
    let mut c = pg_client(&s);
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        .unwrap();
    c.batch_execute("INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)")
        .unwrap();
    assert_eq!(
        one(&mut c, "SELECT v FROM t WHERE id = 1"),
        Some("10".into())
    );
    assert_eq!(
        one(&mut c, "SELECT v FROM t WHERE id = 2"),
        Some("20".into())
    );
    // The table made again with another column type: the template is prepared afresh.
    c.batch_execute("DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY, v text)")
        .unwrap();
    c.batch_execute("INSERT INTO t VALUES (2, 'two')").unwrap();
    assert_eq!(
        one(&mut c, "SELECT v FROM t WHERE id = 2"),
        Some("two".into())
    );

    // Scans, whose plans the values steer, run as written; literals in the select list
    // stay as written (the point read by id around one runs from its template), and the
    // integer division of an integer literal stays one.
    let before = template_runs(&s);
    c.batch_execute("INSERT INTO t VALUES (3, 'three'), (4, 'four')")
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            one(&mut c, "SELECT count(*) FROM t WHERE v > 'g'"),
            Some("2".into())
        );
        assert_eq!(
            one(
                &mut c,
                "SELECT '{\"a\": 1}'::jsonb->>'a' FROM t WHERE id = 3"
            ),
            Some("1".into())
        );
    }
    assert_eq!(
        one(&mut c, "SELECT id FROM t WHERE id * 1.5 = 4.5"),
        Some("3".into())
    );
    assert_eq!(template_runs(&s) - before, 2);
    // Integer literals divide as integers, numeric ones as numerics.
    for _ in 0..3 {
        assert_eq!(
            one(&mut c, "SELECT v FROM t WHERE id = 7 / 2"),
            Some("three".into())
        );
        assert_eq!(
            one(&mut c, "SELECT v FROM t WHERE id = 3 AND 4.5 / 1.5 = 3"),
            Some("three".into())
        );
        assert!(rows(&mut c, "SELECT v FROM t WHERE id = 3 AND 7 / 2 = 3.5").is_empty());
        assert_eq!(
            one(&mut c, "SELECT id / 2 FROM t WHERE id = 3"),
            Some("1".into())
        );
    }

    // In a transaction: its own writes seen, gone after ROLLBACK; after a failure
    // statements are refused (25P02) until it ends.
    c.batch_execute("BEGIN").unwrap();
    c.simple_query("INSERT INTO t VALUES (5, 'five')").unwrap();
    c.simple_query("INSERT INTO t VALUES (6, 'six')").unwrap();
    assert_eq!(
        one(&mut c, "SELECT v FROM t WHERE id = 6"),
        Some("six".into())
    );
    let err = c
        .simple_query("INSERT INTO t VALUES (6, 'again')")
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23505"), "{err}");
    let err = c.simple_query("SELECT v FROM t WHERE id = 5").unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("25P02"), "{err}");
    c.batch_execute("ROLLBACK").unwrap();
    assert!(rows(&mut c, "SELECT v FROM t WHERE id = 5").is_empty());
    assert!(rows(&mut c, "SELECT v FROM t WHERE id = 6").is_empty());
    assert_eq!(
        one(&mut c, "SELECT v FROM t WHERE id = 4"),
        Some("four".into())
    );
}
