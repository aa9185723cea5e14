//! REST document writes into typed tables (`CREATE TABLE t (...)`), against the real
//! `tissdb` binary: `POST /<t>` and `PUT /<t>/<id>` take a row by column name and store
//! it as SQL INSERT does — the key from the primary key column (or the path), values
//! cast to the column types, defaults, NOT NULL — so SQL over the wire reads what the
//! REST answer echoed. Bad input answers a JSON error with a SQLSTATE and stores nothing.

mod common;

use common::{Resp, Server};
use serde_json::{Value as Json, json};

/// A wire client of `s`.
fn wire(s: &Server) -> postgres::Client {
    postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=tester dbname=tissdb",
            s.pg_port()
        ),
        postgres::NoTls,
    )
    .unwrap_or_else(|e| panic!("connect: {e}; server stderr:\n{}", s.stderr()))
}

/// Every row of `sql` as text cells (simple query protocol), for before/after checks.
fn text_rows(c: &mut postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    c.simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// The SQLSTATE a SQL statement fails with.
fn sql_error(c: &mut postgres::Client, sql: &str) -> String {
    let e = c
        .batch_execute(sql)
        .expect_err(&format!("{sql} should fail"));
    e.code()
        .unwrap_or_else(|| panic!("{sql}: no SQLSTATE in {e}"))
        .code()
        .to_string()
}

const ITEMS: &str = "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, \
                     price float8, qty int DEFAULT 5, tags jsonb)";

/// Asserts a write answered `status` with the document `expected`.
#[track_caller]
fn assert_stored(r: &Resp, status: u16, expected: &Json) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(&r.json(), expected);
}

#[test]
fn post_and_put_store_rows_that_sql_reads() {
    let s = Server::start();
    let mut c = wire(&s);
    c.batch_execute(ITEMS).unwrap();

    // POST: the key column is stored, a text number is cast, the default applied.
    let r = s.post_json("/items", &json!({"id": 5, "name": "x", "price": "2.5"}));
    let five = json!({"id": 5, "name": "x", "price": 2.5, "qty": 5, "tags": null});
    assert_stored(&r, 201, &five);
    assert_eq!(s.get_doc("items", "5"), Some(five.clone()));
    let row = c
        .query_one("SELECT id, name, price, qty FROM items WHERE id = 5", &[])
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 5);
    assert_eq!(row.get::<_, String>(1), "x");
    assert_eq!(row.get::<_, f64>(2), 2.5);
    assert_eq!(row.get::<_, i32>(3), 5);

    // PUT of a new row: the key comes from the path.
    let r = s.put_json("/items/6", &json!({"name": "y", "tags": ["a", 1]}));
    assert_stored(
        &r,
        201,
        &json!({"id": 6, "name": "y", "price": null, "qty": 5, "tags": ["a", 1]}),
    );
    // PUT replacing a row: the whole row, a body key that names the path's row is fine,
    // and a column left out takes its default again.
    c.batch_execute("UPDATE items SET qty = 9 WHERE id = 5")
        .unwrap();
    let r = s.put_json("/items/5", &json!({"id": 5, "name": "z", "price": 3}));
    let five = json!({"id": 5, "name": "z", "price": 3.0, "qty": 5, "tags": null});
    assert_stored(&r, 200, &five);
    assert_eq!(s.get_doc("items", "5"), Some(five));

    // XML: the id attribute and leaf text are cast to the column types too.
    let r = s.post_raw(
        "/items",
        "application/xml",
        r#"<document id="7"><name>w</name><price>1.5</price><qty>2</qty></document>"#,
    );
    assert_eq!(r.status, 201, "{}", r.text);

    assert_eq!(
        text_rows(
            &mut c,
            "SELECT id, name, price, qty, tags FROM items ORDER BY id"
        ),
        vec![
            vec![
                Some("5".into()),
                Some("z".into()),
                Some("3".into()),
                Some("5".into()),
                None
            ],
            vec![
                Some("6".into()),
                Some("y".into()),
                None,
                Some("5".into()),
                Some(r#"["a", 1]"#.into())
            ],
            vec![
                Some("7".into()),
                Some("w".into()),
                Some("1.5".into()),
                Some("2".into()),
                None
            ],
        ]
    );
    // The key column is the key: a lookup by it finds each row, and none is NULL.
    for id in [5, 6, 7] {
        let n: i64 = c
            .query_one("SELECT count(*) FROM items WHERE id = $1", &[&id])
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "id {id}");
    }
    // The listing shows the same rows as SQL.
    let listed: Vec<Json> = s.list_all("items");
    assert_eq!(
        listed.iter().map(|d| d["id"].clone()).collect::<Vec<_>>(),
        vec![json!(5), json!(6), json!(7)]
    );
}

#[test]
fn bad_writes_to_a_table_are_refused_and_store_nothing() {
    let s = Server::start();
    let mut c = wire(&s);
    c.batch_execute(ITEMS).unwrap();
    s.insert("items", &json!({"id": 1, "name": "one", "price": 1.5}));
    let all = "SELECT id, name, price, qty, tags FROM items ORDER BY id";
    let before = text_rows(&mut c, all);

    let cases: Vec<(&str, &str, Json, u16, &str)> = vec![
        // A value the column's type refuses, as text and as another JSON type.
        (
            "POST",
            "/items",
            json!({"id": 2, "name": "a", "price": "abc"}),
            400,
            "22P02",
        ),
        (
            "POST",
            "/items",
            json!({"id": 2, "name": "a", "qty": {"n": 1}}),
            400,
            "42846",
        ),
        (
            "POST",
            "/items",
            json!({"id": 2, "name": "a", "qty": 1e12}),
            400,
            "22003",
        ),
        // A field that is no column (names are case-sensitive, as quoted SQL names).
        (
            "POST",
            "/items",
            json!({"id": 2, "name": "a", "colour": "red"}),
            400,
            "42703",
        ),
        (
            "POST",
            "/items",
            json!({"id": 2, "Name": "a"}),
            400,
            "42703",
        ),
        // NOT NULL, missing or null; the key missing (the table generates none).
        ("POST", "/items", json!({"id": 2}), 400, "23502"),
        (
            "POST",
            "/items",
            json!({"id": 2, "name": null}),
            400,
            "23502",
        ),
        ("POST", "/items", json!({"name": "a"}), 400, "23502"),
        // The key taken.
        (
            "POST",
            "/items",
            json!({"id": 1, "name": "a"}),
            409,
            "23505",
        ),
        // PUT: a body key naming another row; a path that is no key of the table.
        (
            "PUT",
            "/items/1",
            json!({"id": 2, "name": "a"}),
            400,
            "22023",
        ),
        ("PUT", "/items/abc", json!({"name": "a"}), 400, "22P02"),
        ("PUT", "/items/01", json!({"name": "a"}), 400, "22023"),
        // PUT of a bad row over an existing one leaves it as it was.
        (
            "PUT",
            "/items/1",
            json!({"name": "a", "price": "abc"}),
            400,
            "22P02",
        ),
        ("PUT", "/items/1", json!({"price": 2}), 400, "23502"),
        (
            "PUT",
            "/items/1",
            json!({"name": "a", "extra": 1}),
            400,
            "42703",
        ),
    ];
    for (method, path, body, status, code) in &cases {
        let r = match *method {
            "POST" => s.post_json(path, body),
            _ => s.put_json(path, body),
        };
        let msg = r.assert_error(*status, code);
        assert!(!msg.is_empty(), "{method} {path} {body}");
        assert_eq!(
            text_rows(&mut c, all),
            before,
            "{method} {path} {body} changed the table"
        );
    }
    // The REST codes are the ones SQL gives for the same rows.
    for (sql, rest_code) in [
        (
            "INSERT INTO items (id, name, price) VALUES (2, 'a', 'abc')",
            "22P02",
        ),
        (
            "INSERT INTO items (id, name, qty) VALUES (2, 'a', '{\"n\": 1}'::jsonb)",
            "42846",
        ),
        ("INSERT INTO items (id) VALUES (2)", "23502"),
        ("INSERT INTO items (id, name) VALUES (1, 'a')", "23505"),
    ] {
        assert_eq!(sql_error(&mut c, sql), rest_code, "{sql}");
    }
    // The server still serves, and a good write still goes through.
    let r = s.post_json("/items", &json!({"id": 2, "name": "two"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        text_rows(&mut c, "SELECT count(*) FROM items"),
        vec![vec![Some("2".into())]]
    );
}

#[test]
fn generated_keys_other_key_columns_and_tables_without_a_key() {
    let s = Server::start();
    let mut c = wire(&s);
    c.batch_execute(
        "CREATE TABLE tokens (token uuid PRIMARY KEY DEFAULT gen_random_uuid(), label text);
         CREATE TABLE skus (sku text PRIMARY KEY, n int);
         CREATE TABLE logs (msg text NOT NULL)",
    )
    .unwrap();

    // A generated key: the default makes it, and the answer's id is that key.
    let r = s.post_json("/tokens", &json!({"label": "a"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json()["token"].as_str().expect("token").to_string();
    assert!(common::is_uuid_v4(&token), "{token}");
    assert_eq!(r.json()["id"], json!(token));
    let label: String = c
        .query_one(
            "SELECT label FROM tokens WHERE token = $1::text::uuid",
            &[&token],
        )
        .unwrap()
        .get(0);
    assert_eq!(label, "a");

    // A key column not named id: the document's id is its value; PUT fills it in.
    let r = s.post_json("/skus", &json!({"sku": "a1", "n": 1}));
    assert_stored(&r, 201, &json!({"id": "a1", "sku": "a1", "n": 1}));
    let r = s.put_json("/skus/a1", &json!({"n": "2"}));
    assert_stored(&r, 200, &json!({"id": "a1", "sku": "a1", "n": 2}));
    s.put_json("/skus/a1", &json!({"sku": "b1", "n": 3}))
        .assert_error(400, "22023");
    // The id a GET shows is the key: a row read over REST writes back as it came,
    // and an id naming another key is refused.
    let shown = s.get("/skus/a1");
    assert_eq!(shown.status, 200, "{}", shown.text);
    let r = s.put_json("/skus/a1", &shown.json());
    assert_stored(&r, 200, &json!({"id": "a1", "sku": "a1", "n": 2}));
    s.post_json("/skus", &json!({"id": "zz", "sku": "a2"}))
        .assert_error(400, "22023");
    assert_eq!(
        text_rows(&mut c, "SELECT sku, n FROM skus"),
        vec![vec![Some("a1".into()), Some("2".into())]]
    );

    // No primary key: a generated document id, or the path's on PUT.
    let r = s.post_json("/logs", &json!({"msg": "hi"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert!(common::is_uuid_v4(&id), "{id}");
    let r = s.put_json(&format!("/logs/{id}"), &json!({"msg": "hello"}));
    assert_stored(&r, 200, &json!({"id": id, "msg": "hello"}));
    let r = s.put_json(&format!("/logs/{id}"), &json!({"id": id, "msg": "hello"}));
    assert_stored(&r, 200, &json!({"id": id, "msg": "hello"}));
    s.put_json(&format!("/logs/{id}"), &json!({"id": "other", "msg": "x"}))
        .assert_error(400, "22023");
    s.post_json("/logs", &json!({})).assert_error(400, "23502");
    assert_eq!(
        text_rows(&mut c, "SELECT msg FROM logs"),
        vec![vec![Some("hello".into())]]
    );
}

#[test]
fn writes_in_a_rest_transaction_are_shaped_the_same() {
    let s = Server::start();
    let mut c = wire(&s);
    c.batch_execute(ITEMS).unwrap();
    let txn = s.begin_transaction();
    let in_txn = |method: reqwest::Method, path: &str, body: &Json| {
        common::send(
            s.client()
                .request(method, s.url(path))
                .header("Content-Type", "application/json")
                .header("X-Transaction-ID", &txn)
                .body(body.to_string()),
        )
    };
    let r = in_txn(
        reqwest::Method::POST,
        "/items",
        &json!({"id": 1, "name": "a", "price": "0.5"}),
    );
    assert_stored(
        &r,
        201,
        &json!({"id": 1, "name": "a", "price": 0.5, "qty": 5, "tags": null}),
    );
    in_txn(
        reqwest::Method::POST,
        "/items",
        &json!({"id": 2, "name": "b", "price": "x"}),
    )
    .assert_error(400, "22P02");
    in_txn(
        reqwest::Method::PUT,
        "/items/3",
        &json!({"id": 4, "name": "b"}),
    )
    .assert_error(400, "22023");
    let r = in_txn(reqwest::Method::PUT, "/items/3", &json!({"name": "c"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.post_json("/_transaction/commit", &json!({"transaction_id": txn}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        text_rows(&mut c, "SELECT id, name, price, qty FROM items ORDER BY id"),
        vec![
            vec![
                Some("1".into()),
                Some("a".into()),
                Some("0.5".into()),
                Some("5".into())
            ],
            vec![Some("3".into()), Some("c".into()), None, Some("5".into())],
        ]
    );
}
