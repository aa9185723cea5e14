//! Secondary indexes end to end, against the real `tissdb` binary: the REST endpoints
//! (`POST/GET /<c>/_index`, `DELETE /<c>/_index/<name>`, `GET /<c>/_index/_check`),
//! unique indexes, bad input, SIGKILL during writes and right after (or during) an index
//! build, and `CREATE/DROP INDEX` over the PostgreSQL wire protocol with query results
//! compared against a model while the indexed data changes.
//!
//! After every crash, `GET /<c>/_index/_check` compares each index with the documents
//! entry by entry; its entry counts must equal the number of documents listed.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Resp, Server, http_client};
use serde_json::{Value as Json, json};

// ------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------

fn post_index(s: &Server, collection: &str, body: &Json) -> Resp {
    s.post_json(&format!("/{collection}/_index"), body)
}

/// Creates an index, asserting 201; returns the answer.
#[track_caller]
fn create_index(s: &Server, collection: &str, body: &Json) -> Json {
    let r = post_index(s, collection, body);
    assert_eq!(
        r.status, 201,
        "POST /{collection}/_index {body}: {}",
        r.text
    );
    r.json()
}

/// `GET /<c>/_index`, asserting 200: the `indexes` array.
#[track_caller]
fn list_indexes(s: &Server, collection: &str) -> Vec<Json> {
    let r = s.get(&format!("/{collection}/_index"));
    assert_eq!(r.status, 200, "GET /{collection}/_index: {}", r.text);
    r.json()["indexes"]
        .as_array()
        .unwrap_or_else(|| panic!("no indexes array in {}", r.text))
        .clone()
}

#[track_caller]
fn index_names(s: &Server, collection: &str) -> Vec<String> {
    let mut names: Vec<String> = list_indexes(s, collection)
        .iter()
        .map(|i| i["name"].as_str().expect("index name").to_string())
        .collect();
    names.sort();
    names
}

/// `GET /<c>/_index/_check`, asserting 200: (name, entries), sorted by name.
#[track_caller]
fn check(s: &Server, collection: &str) -> Vec<(String, u64)> {
    let r = s.get(&format!("/{collection}/_index/_check"));
    assert_eq!(
        r.status,
        200,
        "GET /{collection}/_index/_check: {}\nserver log:\n{}",
        r.text,
        common::truncate(&s.all_stderr())
    );
    let mut out: Vec<(String, u64)> = r.json()["indexes"]
        .as_array()
        .unwrap_or_else(|| panic!("no indexes array in {}", r.text))
        .iter()
        .map(|i| {
            (
                i["name"].as_str().expect("name").to_string(),
                i["entries"].as_u64().expect("entries"),
            )
        })
        .collect();
    out.sort();
    out
}

/// Asserts the check passes and every index of `collection` has exactly one entry per
/// listed document; returns the documents.
#[track_caller]
fn assert_indexes_match(s: &Server, collection: &str, expected_indexes: &[&str]) -> Vec<Json> {
    let report = check(s, collection);
    let docs = s.list_all(collection);
    let mut want: Vec<(String, u64)> = expected_indexes
        .iter()
        .map(|n| (n.to_string(), docs.len() as u64))
        .collect();
    want.sort();
    assert_eq!(report, want, "index entries vs {} documents", docs.len());
    docs
}

/// `POST /<c>/_query`, asserting 200.
#[track_caller]
fn query(s: &Server, collection: &str, sql: &str, params: Json) -> Json {
    let r = s.post_json(
        &format!("/{collection}/_query"),
        &json!({"query": sql, "params": params}),
    );
    assert_eq!(r.status, 200, "{sql}: {}", r.text);
    r.json()
}

fn brand_of(n: usize) -> String {
    format!("b{}", n % 7)
}

/// A document of the write stream; `version` changes what a replacement stores.
fn stream_doc(id: &str, n: usize, version: usize) -> Json {
    let mut doc = json!({
        "id": id,
        "brand": brand_of(n + version),
        "price": ((n * 13 + version) % 50) as f64 + 0.5,
        "code": id,
        "payload": "x".repeat(40 + (n * 31 + version) % 300),
    });
    // Nested value present, missing, or under something that is not an object.
    match (n + version) % 4 {
        0 | 1 => {
            doc["specs"] = json!({"bluetooth_version": ((n + version) % 5) as f64 / 10.0 + 5.0})
        }
        2 => doc["specs"] = json!("no specs object"),
        _ => {}
    }
    doc
}

/// Inserts many documents with a few multi-row SQL INSERTs (far faster than one POST
/// each): ids `<prefix>00000`...
fn bulk_insert(s: &Server, collection: &str, prefix: &str, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|n| {
                format!(
                    "('{prefix}{n:05}', '{}', {}, '{{\"bluetooth_version\": {}}}'::jsonb)",
                    brand_of(*n),
                    (n % 50) as f64 + 0.5,
                    (n % 5) as f64 / 10.0 + 5.0
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO {collection} (id, brand, price, specs) VALUES {}",
            values.join(", ")
        );
        let out = query(s, collection, &sql, json!([]));
        assert_eq!(out["affected"], json!(chunk.len()), "{out}");
    }
}

// ------------------------------------------------------------------------------------
// 1. REST round trip
// ------------------------------------------------------------------------------------

#[test]
fn rest_create_list_check_drop_round_trip() {
    let s = Server::start();
    s.create_collection("items");
    for i in 0..30 {
        let mut doc = json!({
            "id": format!("i{i:02}"),
            "brand": brand_of(i),
            "price": i as f64 * 1.5,
        });
        if i % 3 != 0 {
            doc["specs"] = json!({"bluetooth_version": 5.0 + (i % 3) as f64 / 10.0});
        }
        s.insert("items", &doc);
    }

    // Nothing yet.
    assert_eq!(list_indexes(&s, "items"), Vec::<Json>::new());
    assert_eq!(check(&s, "items"), vec![]);

    // Default names: <collection>_<fields>_idx, dots as underscores.
    let compound = create_index(&s, "items", &json!({"fields": ["brand", "price"]}));
    assert_eq!(
        compound,
        json!({"name": "items_brand_price_idx", "collection": "items",
               "fields": ["brand", "price"], "unique": false})
    );
    let nested = create_index(&s, "items", &json!({"field": "specs.bluetooth_version"}));
    assert_eq!(
        nested,
        json!({"name": "items_specs_bluetooth_version_idx", "collection": "items",
               "fields": ["specs.bluetooth_version"], "unique": false})
    );
    // A given name, unique (prices are distinct).
    let by_price = create_index(
        &s,
        "items",
        &json!({"field": "price", "name": "by_price", "unique": true}),
    );
    assert_eq!(
        by_price,
        json!({"name": "by_price", "collection": "items", "fields": ["price"], "unique": true})
    );
    // The same fields again: the default name gets a number, as PostgreSQL's does.
    let again = create_index(&s, "items", &json!({"fields": ["brand", "price"]}));
    assert_eq!(again["name"], json!("items_brand_price_idx1"));

    let mut listed = list_indexes(&s, "items");
    listed.sort_by_key(|i| i["name"].as_str().unwrap_or("").to_string());
    assert_eq!(
        listed,
        vec![
            json!({"name": "by_price", "fields": ["price"], "unique": true,
                   "definition": "CREATE UNIQUE INDEX by_price ON public.items USING btree (price)"}),
            json!({"name": "items_brand_price_idx", "fields": ["brand", "price"], "unique": false,
                   "definition": "CREATE INDEX items_brand_price_idx ON public.items USING btree (brand, price)"}),
            json!({"name": "items_brand_price_idx1", "fields": ["brand", "price"], "unique": false,
                   "definition": "CREATE INDEX items_brand_price_idx1 ON public.items USING btree (brand, price)"}),
            json!({"name": "items_specs_bluetooth_version_idx", "fields": ["specs.bluetooth_version"], "unique": false,
                   "definition": "CREATE INDEX items_specs_bluetooth_version_idx ON public.items USING btree (specs.bluetooth_version)"}),
        ]
    );

    // Every document has one entry in every index (missing values too).
    let all = [
        "by_price",
        "items_brand_price_idx",
        "items_brand_price_idx1",
        "items_specs_bluetooth_version_idx",
    ];
    assert_eq!(assert_indexes_match(&s, "items", &all).len(), 30);

    // Writes after creation are maintained: inserts, replaces, deletes.
    for i in 30..40 {
        s.insert(
            "items",
            &json!({"id": format!("i{i:02}"), "brand": "new", "price": i as f64 * 1.5,
                    "specs": {"bluetooth_version": 6.0}}),
        );
    }
    for i in (0..40).step_by(4) {
        let r = s.put_json(
            &format!("/items/i{i:02}"),
            &json!({"brand": "replaced", "price": 1000.0 + i as f64}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for i in (1..40).step_by(5) {
        let r = s.delete(&format!("/items/i{i:02}"));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let docs = assert_indexes_match(&s, "items", &all);
    assert_eq!(docs.len(), 40 - 8);

    // The document routes still work beside the index routes.
    assert_eq!(
        s.get_doc("items", "i02"),
        Some(json!({"id": "i02", "brand": "b2", "price": 3.0,
                    "specs": {"bluetooth_version": 5.2}}))
    );

    // Drop: 200 like a document DELETE, then gone; a second drop is 404.
    let r = s.delete("/items/_index/items_brand_price_idx1");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"dropped": "items_brand_price_idx1"}));
    let r = s.delete("/items/_index/items_brand_price_idx1");
    r.assert_error(404, "42704");
    assert_eq!(
        index_names(&s, "items"),
        [
            "by_price",
            "items_brand_price_idx",
            "items_specs_bluetooth_version_idx"
        ]
    );
    assert_indexes_match(
        &s,
        "items",
        &[
            "by_price",
            "items_brand_price_idx",
            "items_specs_bluetooth_version_idx",
        ],
    );

    // An index of another collection cannot be dropped through this one.
    s.create_collection("other");
    create_index(&s, "other", &json!({"field": "x", "name": "other_x"}));
    s.delete("/items/_index/other_x").assert_error(404, "42704");
    assert_eq!(index_names(&s, "other"), ["other_x"]);
    assert_eq!(index_names(&s, "items").len(), 3);

    // The indexes survive a clean restart, and still match.
    let mut s = s;
    s.terminate();
    s.restart();
    assert_eq!(
        index_names(&s, "items"),
        [
            "by_price",
            "items_brand_price_idx",
            "items_specs_bluetooth_version_idx"
        ]
    );
    assert_indexes_match(
        &s,
        "items",
        &[
            "by_price",
            "items_brand_price_idx",
            "items_specs_bluetooth_version_idx",
        ],
    );

    // Dropping the collection drops its indexes: their names are free again.
    assert_eq!(s.delete("/other").status, 200);
    s.create_collection("other");
    assert_eq!(list_indexes(&s, "other"), Vec::<Json>::new());
    create_index(&s, "other", &json!({"field": "x", "name": "other_x"}));
}

// ------------------------------------------------------------------------------------
// 2. Unique indexes
// ------------------------------------------------------------------------------------

#[test]
fn unique_index_refuses_duplicates_and_leaves_nothing_behind() {
    let s = Server::start();
    s.create_collection("users");
    for doc in [
        json!({"id": "a", "email": "x@example.com"}),
        json!({"id": "b", "email": "x@example.com"}),
        json!({"id": "c", "email": "y@example.com"}),
        json!({"id": "d"}),
        json!({"id": "e", "email": null}),
    ] {
        s.insert("users", &doc);
    }
    let before = s.list_all("users");

    // Over existing duplicates: 409, and no trace of the index.
    let r = post_index(
        &s,
        "users",
        &json!({"field": "email", "name": "users_email_key", "unique": true}),
    );
    r.assert_error(409, "23505");
    assert_eq!(list_indexes(&s, "users"), Vec::<Json>::new());
    assert_eq!(check(&s, "users"), vec![]);
    assert_eq!(s.list_all("users"), before);
    // The name is free: a non-unique index of that name builds.
    let plain = create_index(
        &s,
        "users",
        &json!({"field": "email", "name": "users_email_key"}),
    );
    assert_eq!(plain["unique"], json!(false));
    assert_indexes_match(&s, "users", &["users_email_key"]);
    assert_eq!(s.delete("/users/_index/users_email_key").status, 200);

    // Without the duplicate it builds.
    assert_eq!(s.delete("/users/b").status, 200);
    create_index(
        &s,
        "users",
        &json!({"field": "email", "name": "users_email_key", "unique": true}),
    );
    assert_indexes_match(&s, "users", &["users_email_key"]);
    let before = s.list_all("users");

    // A duplicate insert is 409 23505 and not stored.
    let r = s.post_json("/users", &json!({"id": "f", "email": "x@example.com"}));
    r.assert_error(409, "23505");
    assert_eq!(s.get_doc("users", "f"), None);
    // A replace that would duplicate is refused; the old document stays.
    let r = s.put_json("/users/c", &json!({"email": "x@example.com"}));
    r.assert_error(409, "23505");
    assert_eq!(
        s.get_doc("users", "c"),
        Some(json!({"id": "c", "email": "y@example.com"}))
    );
    // A replace under a new id (an insert by PUT) is refused too.
    s.put_json("/users/g", &json!({"email": "y@example.com"}))
        .assert_error(409, "23505");
    assert_eq!(s.get_doc("users", "g"), None);
    // SQL writes get the same answer.
    let r = s.post_json(
        "/users/_query",
        &json!({"query": "INSERT INTO users (id, email) VALUES ('h', 'y@example.com')"}),
    );
    r.assert_error(409, "23505");
    let r = s.post_json(
        "/users/_query",
        &json!({"query": "UPDATE users SET email = 'x@example.com' WHERE id = 'c'"}),
    );
    r.assert_error(409, "23505");
    assert_eq!(s.list_all("users"), before);
    assert_indexes_match(&s, "users", &["users_email_key"]);

    // A document may keep its own value when it is replaced.
    let r = s.put_json(
        "/users/a",
        &json!({"email": "x@example.com", "name": "Ann"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // NULL and missing values repeat freely.
    s.insert("users", &json!({"id": "m1"}));
    s.insert("users", &json!({"id": "m2"}));
    s.insert("users", &json!({"id": "n1", "email": null}));
    s.insert("users", &json!({"id": "n2", "email": null}));
    // A value freed by a delete or a replace can be taken again.
    let r = s.put_json("/users/c", &json!({"email": "z@example.com"}));
    assert_eq!(r.status, 200, "{}", r.text);
    s.insert("users", &json!({"id": "p", "email": "y@example.com"}));
    assert_eq!(s.delete("/users/a").status, 200);
    s.insert("users", &json!({"id": "q", "email": "x@example.com"}));
    let docs = assert_indexes_match(&s, "users", &["users_email_key"]);
    assert_eq!(docs.len(), 9, "{docs:?}");

    // A compound unique index: a NULL in any field makes an entry that never collides.
    create_index(
        &s,
        "users",
        &json!({"fields": ["org", "login"], "name": "users_org_login", "unique": true}),
    );
    s.insert("users", &json!({"id": "o1", "org": "acme", "login": "ann"}));
    s.insert("users", &json!({"id": "o2", "org": "acme", "login": "bob"}));
    s.insert("users", &json!({"id": "o3", "org": "acme"}));
    s.insert("users", &json!({"id": "o4", "org": "acme"}));
    s.post_json(
        "/users",
        &json!({"id": "o5", "org": "acme", "login": "ann"}),
    )
    .assert_error(409, "23505");
    assert_eq!(s.get_doc("users", "o5"), None);
    assert_indexes_match(&s, "users", &["users_email_key", "users_org_login"]);
}

// ------------------------------------------------------------------------------------
// 3. Bad input
// ------------------------------------------------------------------------------------

fn pg_connect(s: &Server) -> postgres::Client {
    common::pg_client(s)
}

#[track_caller]
fn db_code(e: &postgres::Error) -> String {
    e.as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {e}"))
        .code()
        .code()
        .to_string()
}

#[test]
fn bad_index_requests_are_refused_and_change_nothing() {
    let s = Server::start();
    s.create_collection("items");
    for i in 0..10 {
        s.insert(
            "items",
            &json!({"id": format!("i{i}"), "brand": brand_of(i), "price": i}),
        );
    }
    create_index(&s, "items", &json!({"field": "brand", "name": "by_brand"}));
    let docs = s.list_all("items");
    let indexes = list_indexes(&s, "items");
    let unchanged = |what: &str| {
        assert_eq!(s.list_all("items"), docs, "after {what}: documents changed");
        assert_eq!(
            list_indexes(&s, "items"),
            indexes,
            "after {what}: indexes changed"
        );
        assert_indexes_match(&s, "items", &["by_brand"]);
    };

    // Missing collection.
    post_index(&s, "nope", &json!({"field": "a"})).assert_error(404, "42P01");
    s.get("/nope/_index").assert_error(404, "42P01");
    s.get("/nope/_index/_check").assert_error(404, "42P01");
    s.delete("/nope/_index/by_brand").assert_error(404, "42P01");
    assert!(!s.collections().contains(&"nope".to_string()));
    unchanged("a missing collection");

    // Names taken: by an index (of this or another collection) or by a collection.
    post_index(&s, "items", &json!({"field": "price", "name": "by_brand"}))
        .assert_error(409, "42P07");
    s.create_collection("other");
    post_index(&s, "other", &json!({"field": "price", "name": "by_brand"}))
        .assert_error(409, "42P07");
    post_index(&s, "items", &json!({"field": "price", "name": "other"})).assert_error(409, "42P07");
    assert_eq!(list_indexes(&s, "other"), Vec::<Json>::new());
    unchanged("a duplicate name");

    // Unknown index.
    s.delete("/items/_index/no_such_index")
        .assert_error(404, "42704");
    unchanged("dropping an unknown index");

    // Bad bodies: 400 with a JSON error, never a half-made index.
    let bodies: Vec<(&str, &str)> = vec![
        ("{}", "22023"),
        (r#"{"name": "x"}"#, "22023"),
        (r#"{"field": "a", "fields": ["b"]}"#, "22023"),
        (r#"{"fields": []}"#, "22023"),
        (r#"{"fields": ["a", 1]}"#, "22023"),
        (r#"{"fields": [["a"]]}"#, "22023"),
        (r#"{"fields": "a"}"#, "22023"),
        (r#"{"field": 7}"#, "22023"),
        (r#"{"field": ["a"]}"#, "22023"),
        (r#"{"field": "a", "unique": "yes"}"#, "22023"),
        (r#"{"field": "a", "name": 5}"#, "22023"),
        (r#"{"field": "a", "colour": "red"}"#, "22023"),
        (r#"["a"]"#, "22023"),
        (r#""brand""#, "22023"),
        (r#"{"field": ""}"#, "22023"),
        (r#"{"field": "a..b"}"#, "22023"),
        (r#"{"field": ".a"}"#, "22023"),
        (r#"{"field": "id"}"#, "22023"),
        (r#"{"field": "a""#, "22032"),
        ("", "22032"),
        ("not json", "22032"),
        (r#"{"field": "a", "name": "1bad"}"#, "42602"),
        (r#"{"field": "a", "name": "_x"}"#, "42602"),
    ];
    for (body, code) in bodies {
        let r = s.post_raw("/items/_index", "application/json", body);
        assert_eq!(r.status, 400, "body {body:?}: {}", r.text);
        r.assert_error_body(code);
        unchanged(body);
    }
    // An XML body is not an index request.
    let r = s.post_raw("/items/_index", "application/xml", "<field>a</field>");
    r.assert_error(415, "0A000");
    // Methods the index routes do not have.
    assert_eq!(s.put_empty("/items/_index").status, 405);
    assert_eq!(s.get("/items/_index/by_brand").status, 405);
    unchanged("refused methods");

    // Over the wire.
    let mut client = pg_connect(&s);
    let e = client.batch_execute("DROP INDEX nope").unwrap_err();
    assert_eq!(db_code(&e), "42704", "{e}");
    client
        .batch_execute("DROP INDEX IF EXISTS nope")
        .expect("DROP INDEX IF EXISTS of an unknown index");
    let e = client
        .batch_execute("CREATE INDEX by_brand ON items (price)")
        .unwrap_err();
    assert_eq!(db_code(&e), "42P07", "{e}");
    let e = client
        .batch_execute("CREATE INDEX ON nope (a)")
        .unwrap_err();
    assert_eq!(db_code(&e), "42P01", "{e}");
    // The same connection keeps working.
    let n: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .expect("count")
        .get(0);
    assert_eq!(n, 10);
    unchanged("bad SQL");
}

// ------------------------------------------------------------------------------------
// 4. Crashes
// ------------------------------------------------------------------------------------

const STREAM_INDEXES: [&str; 3] = [
    "by_code",
    "items_brand_price_idx",
    "items_specs_bluetooth_version_idx",
];

/// Four writers insert, replace (PUT) and delete their own documents until the server is
/// killed with SIGKILL once `kill_after` writes were acknowledged.
fn write_stream_then_kill(s: &mut Server, round: usize, kill_after: usize) -> usize {
    let base = s.url("/items");
    let acked = AtomicUsize::new(0);
    // Writers that ran out of work (not those cut off by the kill).
    let finished = AtomicUsize::new(0);
    const WRITERS: usize = 4;
    const OPS: usize = 1500;
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (base, acked, finished) = (&base, &acked, &finished);
            scope.spawn(move || {
                let client = http_client();
                let mut live: Vec<(String, usize)> = Vec::new();
                let mut next = 0usize;
                let mut cut_off = false;
                for op in 0..OPS {
                    let choice = if live.len() < 5 { 0 } else { op % 5 };
                    let result = match choice {
                        0..=2 => {
                            let id = format!("r{round}w{w}-{next:05}");
                            let doc = stream_doc(&id, next, 0);
                            next += 1;
                            let r = client.post(base.as_str()).json(&doc).send();
                            r.map(|r| (r.status().as_u16(), 201, Some((id, next - 1))))
                        }
                        3 => {
                            let (id, n) = live[(op * 7) % live.len()].clone();
                            let doc = stream_doc(&id, n, op);
                            let r = client.put(format!("{base}/{id}")).json(&doc).send();
                            r.map(|r| (r.status().as_u16(), 200, None))
                        }
                        _ => {
                            let at = (op * 11) % live.len();
                            let (id, _) = live.swap_remove(at);
                            let r = client.delete(format!("{base}/{id}")).send();
                            r.map(|r| (r.status().as_u16(), 200, None))
                        }
                    };
                    match result {
                        Ok((status, want, added)) if status == want => {
                            live.extend(added);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        // Cut off by the kill.
                        Err(_) => {
                            cut_off = true;
                            break;
                        }
                        Ok((status, want, _)) => {
                            panic!("writer {w} op {op}: status {status}, expected {want}")
                        }
                    }
                }
                if !cut_off {
                    finished.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(12);
        while acked.load(Ordering::Relaxed) < kill_after
            && finished.load(Ordering::Relaxed) < WRITERS
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        s.kill_9();
    });
    let acked = acked.load(Ordering::Relaxed);
    assert_eq!(
        finished.load(Ordering::Relaxed),
        0,
        "writers ran out of work before the kill ({acked} writes): the kill was not mid-stream"
    );
    acked
}

#[test]
fn sigkill_during_writes_leaves_indexes_matching_the_documents() {
    // A small memtable: flushes to segments happen during the stream too.
    let mut s = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "64KiB")]);
    s.create_collection("items");
    bulk_insert(&s, "items", "seed", 300);
    create_index(&s, "items", &json!({"fields": ["brand", "price"]}));
    create_index(&s, "items", &json!({"field": "specs.bluetooth_version"}));
    // Every stream document has a distinct code: a unique index maintained by the stream
    // (the seed documents have none, so NULL entries repeat).
    create_index(
        &s,
        "items",
        &json!({"field": "code", "name": "by_code", "unique": true}),
    );
    assert_indexes_match(&s, "items", &STREAM_INDEXES);

    for round in 0..2 {
        let acked = write_stream_then_kill(&mut s, round, 2500);
        assert!(
            acked > 100,
            "round {round}: only {acked} writes before the kill"
        );
        s.restart();
        assert_eq!(
            index_names(&s, "items"),
            {
                let mut v = STREAM_INDEXES.to_vec();
                v.sort();
                v
            },
            "round {round}"
        );
        let docs = assert_indexes_match(&s, "items", &STREAM_INDEXES);
        assert!(docs.len() > 300, "round {round}: {} documents", docs.len());

        // What an equality query over the indexed field finds is what the documents hold.
        for brand in ["b0", "b3", "b6"] {
            let mut want: Vec<String> = docs
                .iter()
                .filter(|d| d["brand"] == json!(brand))
                .map(|d| d["id"].as_str().expect("id").to_string())
                .collect();
            want.sort();
            let got: Vec<String> = query(
                &s,
                "items",
                "SELECT id FROM items WHERE brand = $1 ORDER BY id",
                json!([brand]),
            )
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect();
            assert_eq!(got, want, "round {round}: brand {brand}");
        }
        // The unique index still refuses a duplicate after recovery.
        let taken = docs
            .iter()
            .find_map(|d| d["code"].as_str())
            .expect("a stream document survived");
        s.post_json("/items", &json!({"id": "dup", "code": taken}))
            .assert_error(409, "23505");
    }
}

#[test]
fn sigkill_right_after_an_index_build() {
    let mut s = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "256KiB")]);
    s.create_collection("big");
    bulk_insert(&s, "big", "d", 3000);

    let created = create_index(&s, "big", &json!({"fields": ["brand", "price"]}));
    assert_eq!(created["name"], json!("big_brand_price_idx"));
    let nested = create_index(&s, "big", &json!({"field": "specs.bluetooth_version"}));
    assert_eq!(nested["name"], json!("big_specs_bluetooth_version_idx"));
    s.kill_9();
    s.restart();
    let all = ["big_brand_price_idx", "big_specs_bluetooth_version_idx"];
    assert_eq!(index_names(&s, "big"), all);
    let docs = assert_indexes_match(&s, "big", &all);
    assert_eq!(docs.len(), 3000);

    // Writes after the recovery keep the indexes in step, across another crash.
    for i in 0..20 {
        s.insert(
            "big",
            &json!({"id": format!("extra{i:02}"), "brand": "b1", "price": 1.5,
                    "specs": {"bluetooth_version": 9.9}}),
        );
    }
    for i in (0..3000).step_by(150) {
        assert_eq!(s.delete(&format!("/big/d{i:05}")).status, 200);
    }
    s.kill_9();
    s.restart();
    let docs = assert_indexes_match(&s, "big", &all);
    assert_eq!(docs.len(), 3000 + 20 - 20);
    let b1 = query(
        &s,
        "big",
        "SELECT count(*) AS n FROM big WHERE brand = 'b1'",
        json!([]),
    );
    let want = docs.iter().filter(|d| d["brand"] == json!("b1")).count();
    assert_eq!(b1, json!([{"n": want}]));
}

/// Kills the server while `POST /big/_index` builds `name`, `delay` after sending it.
/// Returns the status of the build request, if it got one.
fn kill_during_build(s: &mut Server, name: &str, delay: Duration) -> Option<u16> {
    let url = s.url("/big/_index");
    std::thread::scope(|scope| {
        let builder = scope.spawn(|| {
            http_client()
                .post(&url)
                .json(&json!({"field": "specs.bluetooth_version", "name": name}))
                .send()
                .map(|r| r.status().as_u16())
                .ok()
        });
        std::thread::sleep(delay);
        s.kill_9();
        builder.join().expect("builder thread")
    })
}

#[test]
fn sigkill_during_an_index_build() {
    let mut s = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "256KiB")]);
    s.create_collection("big");
    bulk_insert(&s, "big", "d", 3000);
    create_index(&s, "big", &json!({"fields": ["brand", "price"]}));
    // Killed while a build runs (or just after, on a fast machine): afterwards the index
    // is either complete or absent, and its name is usable.
    for (attempt, delay_ms) in [0u64, 1, 3, 10, 30].into_iter().enumerate() {
        let name = format!("mid{attempt}");
        let outcome = kill_during_build(&mut s, &name, Duration::from_millis(delay_ms));
        s.restart();
        let names = index_names(&s, "big");
        if outcome == Some(201) {
            assert!(names.contains(&name), "acknowledged {name} lost: {names:?}");
        }
        let mut expected = vec!["big_brand_price_idx"];
        if !names.contains(&name) {
            // Nothing of it remains, so the name can be used again.
            assert_eq!(names, ["big_brand_price_idx"]);
            create_index(
                &s,
                "big",
                &json!({"field": "specs.bluetooth_version", "name": name}),
            );
        }
        expected.push(&name);
        let docs = assert_indexes_match(&s, "big", &expected);
        assert_eq!(docs.len(), 3000, "attempt {attempt} ({outcome:?})");
        assert_eq!(s.delete(&format!("/big/_index/{name}")).status, 200);
    }
}

/// The state `sigkill_during_an_index_build` runs into, made deterministically: the file
/// of an index no catalog entry names, cut short before its superblock was written.
/// An index built while other connections update, delete and insert documents of the
/// collection matches the documents entry by entry: a build takes a batch's scanned
/// values as they are only while nothing was written since its snapshot, and reads the
/// documents again under their key locks once something was. Several builds run one
/// after another while the writers go on, and a last one with none, so both ways are
/// taken.
#[test]
fn indexes_built_while_documents_change_match_them() {
    let s = Server::start();
    let mut client = pg_connect(&s);
    client
        .batch_execute("CREATE COLLECTION live")
        .expect("create collection");
    bulk_insert(&s, "live", "d", 20_000);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = std::sync::Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let stop = stop.clone();
            let writes = writes.clone();
            let mut c = pg_connect(&s);
            std::thread::spawn(move || {
                let mut n = w * 7919;
                while !stop.load(Ordering::Relaxed) {
                    n = (n * 31 + 17) % 20_000;
                    let id = format!("d{n:05}");
                    match n % 5 {
                        0 => c.execute("DELETE FROM live WHERE id = $1", &[&id]),
                        1 => c.execute(
                            "INSERT INTO live (id, brand, price) VALUES ($1, 'new', 1.5) \
                             ON CONFLICT (id) DO NOTHING",
                            &[&id],
                        ),
                        _ => c.execute(
                            "UPDATE live SET brand = $2, price = price + 1 WHERE id = $1",
                            &[&id, &format!("w{}", n % 11)],
                        ),
                    }
                    .expect("write during the build");
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let began = Instant::now();
    while writes.load(Ordering::Relaxed) < 50 && began.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = writes.load(Ordering::Relaxed);
    for i in 0..4 {
        client
            .batch_execute(&format!("CREATE INDEX live_brand_{i} ON live (brand)"))
            .expect("create index while writing");
    }
    let during = writes.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    assert!(during >= 10, "{during} writes during the builds");
    client
        .batch_execute("CREATE INDEX live_price ON live (price)")
        .expect("create index at rest");
    assert_indexes_match(
        &s,
        "live",
        &[
            "live_brand_0",
            "live_brand_1",
            "live_brand_2",
            "live_brand_3",
            "live_price",
        ],
    );
}

#[test]
fn torn_file_of_an_unfinished_index_does_not_stop_a_restart() {
    let mut s = Server::start();
    s.create_collection("items");
    s.insert("items", &json!({"id": "a", "brand": "b1"}));
    create_index(&s, "items", &json!({"field": "brand"}));
    s.kill_9();
    // What BTree::create leaves when killed after creating the file (empty), or after
    // writing the zeroed superblock page but before the superblock itself.
    std::fs::write(s.data_dir().join("index-00000077.btree"), b"").expect("write");
    std::fs::write(s.data_dir().join("index-00000078.btree"), vec![0u8; 8192]).expect("write");
    s.restart();
    assert_eq!(index_names(&s, "items"), ["items_brand_idx"]);
    assert_indexes_match(&s, "items", &["items_brand_idx"]);
    assert!(!s.data_dir().join("index-00000077.btree").exists());
    assert!(!s.data_dir().join("index-00000078.btree").exists());
}

/// A named index whose file is lost or unreadable is rebuilt from the data at open.
#[test]
fn an_unreadable_index_file_is_rebuilt_from_the_data() {
    let mut s = Server::start();
    s.create_collection("items");
    for i in 0..50 {
        s.insert(
            "items",
            &json!({"id": format!("d{i:02}"), "brand": format!("b{}", i % 5)}),
        );
    }
    create_index(&s, "items", &json!({"field": "brand"}));
    s.kill_9();
    let files: Vec<_> = std::fs::read_dir(s.data_dir())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".btree"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::write(&files[0], vec![0u8; 8192]).expect("write");
    s.restart();
    assert_indexes_match(&s, "items", &["items_brand_idx"]);
    let checked = s.get("/items/_index/_check").json();
    assert_eq!(checked["indexes"][0]["entries"], 50, "{checked}");
    assert!(s.all_stderr().contains("rebuilding an index"));
}

// ------------------------------------------------------------------------------------
// 5. SQL over the wire
// ------------------------------------------------------------------------------------

/// A minimal simple-query client, for the exact CommandComplete tags.
struct RawPg {
    stream: TcpStream,
}

impl RawPg {
    fn connect(port: u16) -> RawPg {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut raw = RawPg { stream };
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for s in ["user", "raw", "database", "tissdb", ""] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
        let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        raw.stream.write_all(&packet).expect("startup");
        raw.until_ready();
        raw
    }

    fn until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut msgs = Vec::new();
        loop {
            let mut head = [0u8; 5];
            self.stream.read_exact(&mut head).expect("message header");
            let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; len - 4];
            self.stream.read_exact(&mut body).expect("message body");
            let done = head[0] == b'Z';
            msgs.push((head[0], body));
            if done {
                return msgs;
            }
        }
    }

    /// The CommandComplete tags of `sql`, or the SQLSTATE of its error.
    fn tags(&mut self, sql: &str) -> Result<Vec<String>, String> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(&body);
        self.stream.write_all(&msg).expect("query");
        let msgs = self.until_ready();
        if let Some((_, e)) = msgs.iter().find(|(t, _)| *t == b'E') {
            let code = e
                .split(|b| *b == 0)
                .find(|f| f.first() == Some(&b'C'))
                .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
                .unwrap_or_default();
            return Err(code);
        }
        Ok(msgs
            .iter()
            .filter(|(t, _)| *t == b'C')
            .map(|(_, b)| String::from_utf8_lossy(b.strip_suffix(&[0]).unwrap_or(b)).into_owned())
            .collect())
    }
}

/// The ids with `brand`, by the simple and the extended protocol (which must agree).
fn ids_with_brand(client: &mut postgres::Client, brand: &str) -> Vec<String> {
    let simple: Vec<String> = client
        .simple_query(&format!(
            "SELECT id FROM items WHERE brand = '{brand}' ORDER BY id"
        ))
        .expect("simple select")
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    let extended: Vec<String> = client
        .query(
            "SELECT id FROM items WHERE brand = $1 ORDER BY id",
            &[&brand],
        )
        .expect("extended select")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert_eq!(
        simple, extended,
        "simple vs extended protocol, brand {brand}"
    );
    simple
}

/// Asserts the queries by brand answer what the model holds.
#[track_caller]
fn assert_model(client: &mut postgres::Client, model: &BTreeMap<String, String>, when: &str) {
    for brand in ["x", "y", "z", "w"] {
        let want: Vec<String> = model
            .iter()
            .filter(|(_, b)| *b == brand)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(ids_with_brand(client, brand), want, "{when}: brand {brand}");
    }
    // A range over the indexed field, and a compound-prefix-friendly condition.
    let want: Vec<String> = model
        .iter()
        .filter(|(_, b)| b.as_str() >= "y")
        .map(|(id, _)| id.clone())
        .collect();
    let got: Vec<String> = client
        .query("SELECT id FROM items WHERE brand >= 'y' ORDER BY id", &[])
        .expect("range select")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert_eq!(got, want, "{when}: brand >= 'y'");
}

#[test]
fn sql_create_drop_index_and_queries_agree_with_a_model() {
    let s = Server::start();
    let mut client = pg_connect(&s);
    let mut raw = RawPg::connect(s.pg_port());
    client
        .batch_execute("CREATE COLLECTION items")
        .expect("create collection");
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let values: Vec<String> = (0..60)
        .map(|i| {
            let brand = ["x", "y", "z"][i % 3];
            model.insert(format!("r{i:03}"), brand.to_string());
            format!("('r{i:03}', '{brand}', {i})")
        })
        .collect();
    client
        .batch_execute(&format!(
            "INSERT INTO items (id, brand, n) VALUES {}",
            values.join(", ")
        ))
        .expect("insert");
    assert_model(&mut client, &model, "before any index");

    assert_eq!(
        raw.tags("CREATE INDEX items_brand_idx ON items (brand)"),
        Ok(vec!["CREATE INDEX".to_string()])
    );
    // IF NOT EXISTS on a taken name: no error, and the existing index is left as it is.
    assert_eq!(
        raw.tags("CREATE UNIQUE INDEX IF NOT EXISTS items_brand_idx ON items (brand)"),
        Ok(vec!["CREATE INDEX".to_string()])
    );
    assert_eq!(
        raw.tags("CREATE UNIQUE INDEX IF NOT EXISTS items_n_key ON items (n)"),
        Ok(vec!["CREATE INDEX".to_string()])
    );
    assert_eq!(
        raw.tags("CREATE INDEX ON items (brand, n)"),
        Ok(vec!["CREATE INDEX".to_string()])
    );
    let listed = list_indexes(&s, "items");
    let unique_of = |name: &str| {
        listed
            .iter()
            .find(|i| i["name"] == json!(name))
            .unwrap_or_else(|| panic!("{name} not in {listed:?}"))["unique"]
            .clone()
    };
    assert_eq!(unique_of("items_brand_idx"), json!(false));
    assert_eq!(unique_of("items_n_key"), json!(true));
    assert_eq!(unique_of("items_brand_n_idx"), json!(false));
    let all = ["items_brand_idx", "items_brand_n_idx", "items_n_key"];
    assert_model(&mut client, &model, "after CREATE INDEX");

    // Updates move documents between brands.
    let n = client
        .execute(
            "UPDATE items SET brand = 'x' WHERE n < 20 AND brand = 'y'",
            &[],
        )
        .expect("update");
    let moved: Vec<String> = model
        .iter()
        .filter(|(id, b)| *b == "y" && id[1..].parse::<usize>().unwrap() < 20)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(n as usize, moved.len());
    for id in moved {
        model.insert(id, "x".into());
    }
    client
        .execute(
            "UPDATE items SET brand = $1 WHERE id = $2",
            &[&"w", &"r005"],
        )
        .expect("update one");
    model.insert("r005".into(), "w".into());
    assert_model(&mut client, &model, "after UPDATE");

    // Deletes.
    let n = client
        .execute("DELETE FROM items WHERE brand = 'z' AND n > 30", &[])
        .expect("delete");
    let gone: Vec<String> = model
        .iter()
        .filter(|(id, b)| *b == "z" && id[1..].parse::<usize>().unwrap() > 30)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(n as usize, gone.len());
    for id in gone {
        model.remove(&id);
    }
    assert_model(&mut client, &model, "after DELETE");

    // The unique index refuses duplicates over the wire; nothing changes.
    let e = client
        .execute(
            "INSERT INTO items (id, brand, n) VALUES ('dup', 'x', 1)",
            &[],
        )
        .unwrap_err();
    assert_eq!(db_code(&e), "23505", "{e}");
    let e = client
        .execute("UPDATE items SET n = 1 WHERE id = 'r002'", &[])
        .unwrap_err();
    assert_eq!(db_code(&e), "23505", "{e}");
    assert_model(&mut client, &model, "after refused duplicates");
    assert_indexes_match(&s, "items", &all);
    assert_eq!(s.list_all("items").len(), model.len());

    // Drop, and the answers stay the same without the index.
    assert_eq!(
        raw.tags("DROP INDEX items_brand_idx"),
        Ok(vec!["DROP INDEX".to_string()])
    );
    assert_eq!(
        raw.tags("DROP INDEX IF EXISTS items_brand_idx"),
        Ok(vec!["DROP INDEX".to_string()])
    );
    assert_eq!(
        raw.tags("DROP INDEX items_brand_idx"),
        Err("42704".to_string())
    );
    assert_model(&mut client, &model, "after DROP INDEX");
    assert_indexes_match(&s, "items", &["items_brand_n_idx", "items_n_key"]);
}

/// The first column of every row `sql` (a simple query, e.g. EXPLAIN) returns.
fn simple_lines(client: &mut postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// EXPLAIN and EXPLAIN ANALYZE over the wire name the index and report actual rows per
/// operator; `enable_indexscan = off` gives the full scan with the same rows.
#[test]
fn explain_analyze_over_the_wire() {
    let s = Server::start();
    let mut client = pg_connect(&s);
    client
        .batch_execute("CREATE COLLECTION items; CREATE INDEX items_n ON items (n)")
        .expect("setup");
    let values: Vec<String> = (0..300).map(|i| format!("('d{i}', {})", i % 100)).collect();
    client
        .batch_execute(&format!(
            "INSERT INTO items (id, n) VALUES {}",
            values.join(", ")
        ))
        .expect("insert");
    let plan = simple_lines(
        &mut client,
        "EXPLAIN ANALYZE SELECT id FROM items WHERE n = 7",
    )
    .join("\n");
    assert!(
        plan.contains("Index Only Scan using items_n on items"),
        "{plan}"
    );
    assert!(plan.contains("actual rows=3"), "{plan}");
    assert!(plan.contains("Execution Time:"), "{plan}");
    let rows = |client: &mut postgres::Client| -> Vec<String> {
        let mut ids: Vec<String> = client
            .query("SELECT id FROM items WHERE n = 7", &[])
            .expect("select")
            .iter()
            .map(|r| r.get(0))
            .collect();
        ids.sort();
        ids
    };
    let indexed = rows(&mut client);
    assert_eq!(indexed, ["d107", "d207", "d7"]);
    client
        .batch_execute("SET enable_indexscan = off")
        .expect("set");
    let plan = simple_lines(&mut client, "EXPLAIN SELECT id FROM items WHERE n = 7").join("\n");
    assert!(plan.contains("Seq Scan on items"), "{plan}");
    assert_eq!(rows(&mut client), indexed);
}

/// On a skewed column (one value in nearly every row), an equality on a rare or absent
/// value still reads the index: the distinct counts alone would estimate half the rows
/// for it and pick a full scan, which for `LIMIT 10` reads the whole table when nothing
/// matches. A frequent value with a LIMIT may take either path; its rows must be right.
#[test]
fn rare_values_of_a_skewed_column_use_the_index() {
    let s = Server::start();
    let mut client = pg_connect(&s);
    client
        .batch_execute(
            "CREATE TABLE tickets (id integer PRIMARY KEY, status text, x integer); \
             INSERT INTO tickets SELECT i, CASE WHEN i % 1000 = 0 THEN 'closed' ELSE 'open' END, i \
             FROM generate_series(1, 3000) i; \
             CREATE INDEX tickets_status ON tickets (status)",
        )
        .expect("setup");
    let explain = |client: &mut postgres::Client, sql: &str| {
        simple_lines(client, &format!("EXPLAIN ANALYZE {sql}")).join("\n")
    };
    for (sql, expected) in [
        (
            "SELECT id, x FROM tickets WHERE status = 'closed' LIMIT 10",
            vec![1000, 2000, 3000],
        ),
        (
            "SELECT id, x FROM tickets WHERE status = 'closed'",
            vec![1000, 2000, 3000],
        ),
        (
            "SELECT id, x FROM tickets WHERE status = 'reopened' LIMIT 10",
            vec![],
        ),
        (
            "SELECT id, x FROM tickets WHERE status = 'reopened'",
            vec![],
        ),
    ] {
        let plan = explain(&mut client, sql);
        assert!(
            plan.contains("Index Scan using tickets_status on tickets"),
            "{sql}:\n{plan}"
        );
        assert!(
            plan.contains(&format!("actual rows={}", expected.len())),
            "{sql}:\n{plan}"
        );
        let mut ids: Vec<i32> = client
            .query(sql, &[])
            .expect("select")
            .iter()
            .map(|r| r.get(0))
            .collect();
        ids.sort();
        assert_eq!(ids, expected, "{sql}");
    }
    let open: Vec<(i32, String)> = client
        .query(
            "SELECT id, status FROM tickets WHERE status = 'open' LIMIT 10",
            &[],
        )
        .expect("select")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(open.len(), 10);
    assert!(open.iter().all(|(id, s)| s == "open" && id % 1000 != 0));
}

/// A nested field path has the type observed for the field (text, a number) and an index
/// on the path serves a filter on it, over the wire: the plan names the index, the rows
/// equal the full scan's, and the values come back as text and numbers, not JSON.
#[test]
fn nested_paths_are_typed_and_use_their_index() {
    let s = Server::start();
    let mut client = pg_connect(&s);
    client
        .batch_execute(
            "CREATE COLLECTION gear; \
             INSERT INTO gear (id, specs) SELECT i::text, \
               jsonb_build_object('weight', (i % 50)::text || 'g', 'bt', i % 40) \
             FROM generate_series(1, 2000) i; \
             CREATE INDEX gear_weight ON gear (specs.weight); \
             CREATE INDEX gear_bt ON gear (specs.bt)",
        )
        .expect("setup");
    let plan = |client: &mut postgres::Client, sql: &str| {
        simple_lines(client, &format!("EXPLAIN {sql}")).join("\n")
    };
    let by_weight = "SELECT id, specs.weight, specs.bt FROM gear WHERE specs.weight = '7g'";
    let by_bt = "SELECT id, specs.weight, specs.bt FROM gear WHERE specs.bt = 7";
    let p = plan(&mut client, by_weight);
    assert!(p.contains("Index Scan using gear_weight"), "{p}");
    let p = plan(&mut client, by_bt);
    assert!(p.contains("Index Scan using gear_bt"), "{p}");
    let rows = |client: &mut postgres::Client, sql: &str| -> Vec<(String, String, i64)> {
        let mut rows: Vec<(String, String, i64)> = client
            .query(sql, &[])
            .expect("select")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        rows.sort();
        rows
    };
    let indexed_weight = rows(&mut client, by_weight);
    let indexed_bt = rows(&mut client, by_bt);
    assert_eq!(indexed_weight.len(), 40);
    assert!(indexed_weight.iter().all(|(_, w, _)| w == "7g"));
    assert_eq!(indexed_bt.len(), 50);
    assert!(indexed_bt.iter().all(|(_, _, bt)| *bt == 7));
    client
        .batch_execute("SET enable_indexscan = off")
        .expect("set");
    assert!(plan(&mut client, by_weight).contains("Seq Scan on gear"));
    assert_eq!(rows(&mut client, by_weight), indexed_weight);
    assert_eq!(rows(&mut client, by_bt), indexed_bt);
}

/// Index-only scans of a table answer as full scans do: the rows the bounds give are
/// the rows that pass the filter (NULLs, NaN, negatives, the ends of a range, an IN
/// list, a filter with a part no bound applies), whichever of the entry's columns the
/// query reads; DISTINCT values and `count(DISTINCT)` read from an index's leading
/// fields are the full scan's, and a transaction that wrote the table sees its writes.
#[test]
fn index_only_scans_of_a_table_answer_as_full_scans() {
    let s = Server::start();
    let mut client = pg_connect(&s);
    client
        .batch_execute(
            "CREATE TABLE m (id int8 PRIMARY KEY, q int4, f float8, t text); \
             INSERT INTO m SELECT i, CASE WHEN i % 17 = 0 THEN NULL ELSE i % 50 - 20 END, \
               CASE WHEN i % 13 = 0 THEN 'NaN'::float8 WHEN i % 11 = 0 THEN NULL ELSE (i % 40) * 0.5 - 3 END, \
               't' || (i % 9) FROM generate_series(-500, 1500) i; \
             CREATE INDEX m_q ON m (q); CREATE INDEX m_f ON m (f); CREATE INDEX m_qt ON m (q, t)",
        )
        .expect("setup");
    let queries = [
        "SELECT count(*) FROM m WHERE q < 10",
        "SELECT count(*) FROM m WHERE q >= -20 AND q <= -15",
        "SELECT count(*) FROM m WHERE q BETWEEN 3 AND 3",
        "SELECT count(*) FROM m WHERE q IN (1, 5, 29, 77)",
        "SELECT count(*) FROM m WHERE q > 0 AND q % 2 = 0",
        "SELECT count(*) FROM m WHERE q IS NULL",
        "SELECT count(*) FROM m WHERE f > 10",
        "SELECT count(*) FROM m WHERE f < 0.5",
        "SELECT count(*) FROM m WHERE f >= 'NaN'::float8",
        "SELECT q, count(*) FROM m WHERE q < -10 GROUP BY q ORDER BY q",
        "SELECT id, q FROM m WHERE q = 7 ORDER BY id",
        "SELECT id FROM m WHERE q = 29 AND t = 't4' ORDER BY id",
        "SELECT t, count(*) FROM m WHERE q = 11 AND t > 't5' GROUP BY t ORDER BY t",
        "SELECT sum(q), min(id), max(id) FROM m WHERE q > 25",
        // The filter's column read by the query too, or only another one.
        "SELECT q FROM m WHERE q > 26 ORDER BY q",
        "SELECT count(t), min(t) FROM m WHERE q BETWEEN 3 AND 9",
        // Counts grouped by leading index fields, counted from the entries.
        "SELECT t, q, count(*) FROM m WHERE q IN (1, 5, 29) GROUP BY t, q ORDER BY q, t",
        "SELECT q, count(*), count(*) FROM m WHERE q IN (3, 1, 3) GROUP BY q ORDER BY q",
        "SELECT q, count(*) FROM m WHERE q IS NULL GROUP BY q",
        "SELECT q, count(*) FROM m WHERE q < 0 GROUP BY q HAVING count(*) > 40 ORDER BY 2, 1",
    ];
    let answer =
        |client: &mut postgres::Client, sql: &str| -> Vec<String> { simple_lines_all(client, sql) };
    let plan_of = |client: &mut postgres::Client, sql: &str| {
        simple_lines(client, &format!("EXPLAIN {sql}")).join("\n")
    };
    // ANALYZE is accepted as PostgreSQL's clients send it (the statistics it would
    // gather are kept by every write): the same plans follow.
    for analyze in ["ANALYZE m", "ANALYZE m (q, t)", "ANALYZE"] {
        let tag = client
            .simple_query(analyze)
            .unwrap_or_else(|e| panic!("{analyze}: {e}"))
            .into_iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::CommandComplete(n) => Some(n),
                _ => None,
            });
        assert_eq!(tag, Some(0), "{analyze}");
    }
    let mut indexed = Vec::new();
    for sql in queries {
        let plan = plan_of(&mut client, sql);
        assert!(plan.contains("Index Only Scan"), "{sql}: {plan}");
        indexed.push(answer(&mut client, sql));
    }
    // Not trivial: the counts differ, and NaN counts above every number.
    assert_ne!(indexed[0], indexed[1]);
    assert_eq!(
        answer(
            &mut client,
            "SELECT count(*) FROM m WHERE f = 'NaN'::float8"
        ),
        indexed[8]
    );
    client
        .batch_execute("SET enable_indexscan = off")
        .expect("set");
    for (sql, want) in queries.iter().zip(&indexed) {
        assert!(plan_of(&mut client, sql).contains("Seq Scan"), "{sql}");
        assert_eq!(&answer(&mut client, sql), want, "{sql}");
    }
    // Distinct values read from an index's leading fields, one entry per value, answer
    // as the full scan does (NULL a value of DISTINCT, not counted by count(DISTINCT)).
    let distinct = [
        "SELECT DISTINCT q FROM m ORDER BY q",
        "SELECT DISTINCT t, q FROM m ORDER BY q, t",
        "SELECT count(DISTINCT q), count(DISTINCT q) FROM m",
        "SELECT DISTINCT t FROM m ORDER BY t",
    ];
    let by_scan: Vec<Vec<String>> = distinct
        .iter()
        .map(|sql| answer(&mut client, sql))
        .collect();
    assert_eq!(by_scan[0].len(), 100, "{:?}", by_scan[0]);
    assert!(
        by_scan[0].iter().any(|v| v.is_empty() || v == "NULL"),
        "{:?}",
        by_scan[0]
    );
    assert_eq!(by_scan[2], vec!["99\t99".to_string()]);
    client
        .batch_execute("SET enable_indexscan = on")
        .expect("set");
    let with_index: Vec<Vec<String>> = distinct
        .iter()
        .map(|sql| answer(&mut client, sql))
        .collect();
    assert_eq!(with_index, by_scan);
    // Plain EXPLAIN says how the executor answers (and only where it does so).
    let shown = plan_of(&mut client, distinct[2]);
    assert!(
        shown.contains("Shortcut: distinct values read from index m_q, one entry per value"),
        "{shown}"
    );
    let shown = plan_of(&mut client, distinct[1]);
    assert!(shown.contains("read from index m_qt"), "{shown}");
    assert!(!plan_of(&mut client, distinct[3]).contains("Shortcut"));
    let shown = plan_of(&mut client, "SELECT count(*) FROM m WHERE q < 10");
    assert!(
        shown.contains("Shortcut: counted from the index's pages"),
        "{shown}"
    );
    let shown = plan_of(
        &mut client,
        "SELECT q, count(*) FROM m WHERE q < -10 GROUP BY q",
    );
    assert!(shown.contains("one entry read per group"), "{shown}");
    client
        .batch_execute("SET enable_indexscan = off")
        .expect("set");
    assert!(!plan_of(&mut client, distinct[2]).contains("Shortcut"));

    // A count from the index's entries alone sees the transaction's own writes, as the
    // full scan does, and none once they are rolled back.
    let count = "SELECT count(*) FROM m WHERE q BETWEEN 3 AND 3";
    let before = &indexed[2];
    client
        .batch_execute(
            "SET enable_indexscan = on; BEGIN; \
             INSERT INTO m VALUES (5000, 3, 1, 'x'), (5001, 3, NULL, NULL); \
             DELETE FROM m WHERE id = 3",
        )
        .expect("writes");
    let inside = answer(&mut client, count);
    assert_ne!(&inside, before);
    client
        .batch_execute("SET enable_indexscan = off")
        .expect("set");
    assert_eq!(answer(&mut client, count), inside);
    client
        .batch_execute("ROLLBACK; SET enable_indexscan = on")
        .expect("rollback");
    assert_eq!(&answer(&mut client, count), before);
    // Inside a transaction that wrote the table, distinct values include its writes
    // (its view is not the index's: the rows are scanned), and not after its rollback.
    let distinct_q = "SELECT count(DISTINCT q) FROM m";
    client
        .batch_execute("BEGIN; INSERT INTO m VALUES (6000, 500, 0, 'y')")
        .expect("insert");
    assert_eq!(answer(&mut client, distinct_q), vec!["100".to_string()]);
    client.batch_execute("ROLLBACK").expect("rollback");
    assert_eq!(answer(&mut client, distinct_q), vec!["99".to_string()]);
}

/// Every column of every row of a simple-protocol query, tab-joined, one line a row.
fn simple_lines_all(client: &mut postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("\t"),
            ),
            _ => None,
        })
        .collect()
}

/// `GROUP BY k, ... ORDER BY k, ... LIMIT n` over a table with an index on `k` reads
/// the rows of the first n values of `k` only (EXPLAIN ANALYZE counts them), and gives
/// the first n rows of the full ordered answer: ascending and descending, with OFFSET,
/// NULL keys, text and integer keys; plain EXPLAIN notes it on the sort. Where that
/// shortcut does not hold (a filter, HAVING, NULLs first) the answers are right as well
/// and EXPLAIN notes nothing.
#[test]
fn ordered_group_by_with_limit_reads_the_first_groups_only() {
    let s = Server::start();
    let mut client = pg_connect(&s);
    client
        .batch_execute(
            "CREATE TABLE g (id int8 PRIMARY KEY, k text, n int4, v int4); \
             INSERT INTO g SELECT i, CASE WHEN i % 23 = 0 THEN NULL ELSE 'k' || (i % 40 + 10) END, \
               i % 7, i FROM generate_series(1, 4000) i; \
             CREATE INDEX g_k ON g (k); CREATE INDEX g_n ON g (n)",
        )
        .expect("setup");
    let narrowed = [
        ("k, v % 3 AS d, count(*), sum(v)", "k, d", "k, d", "LIMIT 5"),
        (
            "k, v % 3 AS d, count(*), sum(v)",
            "k, d",
            "k, d",
            "LIMIT 4 OFFSET 5",
        ),
        (
            "k, v % 3 AS d, count(*)",
            "k, d",
            "k DESC NULLS LAST, d DESC",
            "LIMIT 7",
        ),
        ("n, v % 5 AS d, min(v)", "n, d", "n, d", "LIMIT 2"),
        ("k, count(*)", "k", "k", "LIMIT 3"),
    ];
    let others = [
        // A filter: a value may have no row left.
        ("k, count(*)", "k", "k", "LIMIT 3", "WHERE v > 3990"),
        // HAVING: a value's groups may all go.
        ("k, count(*)", "k HAVING min(v) > 30", "k", "LIMIT 3", ""),
        // NULLs first: the NULL group comes before every value.
        ("k, count(*)", "k", "k NULLS FIRST", "LIMIT 3", ""),
        ("k, count(*)", "k", "k DESC", "LIMIT 2", ""),
    ];
    let lines = |client: &mut postgres::Client, sql: &str| simple_lines_all(client, sql);
    for (select, group, order, limit) in narrowed {
        let full = format!("SELECT {select} FROM g GROUP BY {group} ORDER BY {order}");
        let all = lines(&mut client, &full);
        let (n, skip) = match limit.split_once(" OFFSET ") {
            Some((l, o)) => (
                l.trim_start_matches("LIMIT ").parse::<usize>().unwrap(),
                o.parse::<usize>().unwrap(),
            ),
            None => (limit.trim_start_matches("LIMIT ").parse().unwrap(), 0),
        };
        let want: Vec<String> = all.iter().skip(skip).take(n).cloned().collect();
        assert_eq!(want.len(), n, "{full}");
        let sql = format!("{full} {limit}");
        assert_eq!(lines(&mut client, &sql), want, "{sql}");
        let analyzed = simple_lines(&mut client, &format!("EXPLAIN ANALYZE {sql}")).join("\n");
        let scanned: u64 = analyzed
            .split("on g  (actual rows=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("{analyzed}"));
        assert!(scanned < 2000, "{sql}: read {scanned} rows\n{analyzed}");
        // Plain EXPLAIN says so, naming the index it walks.
        let explained = simple_lines(&mut client, &format!("EXPLAIN {sql}")).join("\n");
        let index = if select.starts_with('n') {
            "g_n"
        } else {
            "g_k"
        };
        assert!(
            explained.contains(&format!(
                "Shortcut: only the rows of the first groups, read through index {index}"
            )),
            "{sql}\n{explained}"
        );
    }
    for (select, group, order, limit, filter) in others {
        let full = format!("SELECT {select} FROM g {filter} GROUP BY {group} ORDER BY {order}");
        let all = lines(&mut client, &full);
        let n: usize = limit.trim_start_matches("LIMIT ").parse().unwrap();
        let sql = format!("{full} {limit}");
        assert_eq!(lines(&mut client, &sql), all[..n.min(all.len())], "{sql}");
        let explained = simple_lines(&mut client, &format!("EXPLAIN {sql}")).join("\n");
        assert!(!explained.contains("first groups"), "{sql}\n{explained}");
    }
}
