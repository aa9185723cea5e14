//! Imports and exports over REST, end to end through the real binary: `POST /<c>` and
//! `POST /<c>/_import` with CSV, NDJSON, JSON arrays and `<documents>` XML (all or
//! none), and `GET /<c>` / `POST /<c>/_query` with `Accept: text/csv` and XML.

mod common;

use common::{Resp, Server, send};
use serde_json::{Value as Json, json};

fn query(s: &Server, collection: &str, sql: &str) -> Json {
    let r = s.post_json(&format!("/{collection}/_query"), &json!({ "query": sql }));
    assert_eq!(r.status, 200, "{sql}: {}", r.text);
    r.json()
}

fn query_accept(s: &Server, collection: &str, sql: &str, accept: &str) -> Resp {
    send(
        s.client()
            .post(s.url(&format!("/{collection}/_query")))
            .header("Content-Type", "application/json")
            .header("Accept", accept)
            .body(json!({ "query": sql }).to_string()),
    )
}

#[track_caller]
fn assert_imported(r: &Resp, n: u64) {
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["imported"], json!(n), "{}", r.text);
}

#[test]
fn csv_import_types_cells_without_loss() {
    let s = Server::start();
    s.create_collection("people");
    let csv = "id,zip,price,qty,ok,name,note,at,tags\n\
               p1,02134,1.50,3,true,\"Smith, Jane\",\"said \"\"hi\"\"\nthen left\",2023-10-26T10:00:00Z,\"[1,\"\"x\"\"]\"\n\
               p2,10001,2,-7,false,Bob,\"\",,\n\
               p3,\"42\",1e3,NA,TRUE,,\"[1, 2]\",x,\n";
    assert_imported(&s.post_raw("/people", "text/csv", csv), 3);
    assert_eq!(
        s.get_doc("people", "p1"),
        Some(json!({
            "id": "p1", "zip": "02134", "price": 1.5, "qty": 3, "ok": true,
            "name": "Smith, Jane", "note": "said \"hi\"\nthen left",
            "at": {"$date": "2023-10-26T10:00:00Z"}, "tags": [1, "x"]
        }))
    );
    // A quoted empty cell is the empty string, an unquoted one no field (NULL).
    assert_eq!(
        s.get_doc("people", "p2"),
        Some(
            json!({"id": "p2", "zip": 10001, "price": 2, "qty": -7, "ok": false, "name": "Bob", "note": ""})
        )
    );
    // Quoted cells are text; 1e3, NA, TRUE and JSON with spaces stay text.
    assert_eq!(
        s.get_doc("people", "p3"),
        Some(
            json!({"id": "p3", "zip": "42", "price": "1e3", "qty": "NA", "ok": "TRUE", "note": "[1, 2]", "at": "x"})
        )
    );
    // The numbers are numbers to SQL too.
    assert_eq!(
        query(&s, "people", "SELECT id FROM people WHERE price < 2"),
        json!([{"id": "p1"}])
    );
}

#[test]
fn ndjson_json_array_and_xml_imports() {
    let s = Server::start();
    s.create_collection("items");
    let nd = "{\"id\": \"n1\", \"v\": 1}\n\n{\"v\": {\"deep\": [1, 2]}}\r\n";
    assert_imported(&s.post_raw("/items", "application/x-ndjson", nd), 2);
    let arr =
        json!([{"id": "j1", "v": "x"}, {"id": "j2", "when": {"$date": "2024-01-02T03:04:05Z"}}]);
    assert_imported(&s.post_json("/items", &arr), 2);
    let xml = r#"<?xml version="1.0"?>
<documents>
  <document id="x1"><zip>02134</zip><price>1.50</price></document>
  <document id="x2"><tags><tag>a</tag><tag>b</tag></tags></document>
</documents>"#;
    assert_imported(&s.post_raw("/items", "application/xml", xml), 2);
    // The same bodies at _import; a single object there is an import of one.
    assert_imported(
        &s.post_json("/items/_import", &json!({"id": "one", "v": 1})),
        1,
    );
    let docs = s.list_all("items");
    assert_eq!(docs.len(), 7);
    assert_eq!(s.get_doc("items", "n1"), Some(json!({"id": "n1", "v": 1})));
    let generated: Vec<&Json> = docs
        .iter()
        .filter(|d| d.get("v") == Some(&json!({"deep": [1, 2]})))
        .collect();
    assert_eq!(generated.len(), 1, "the NDJSON line without id got one");
    assert!(common::is_uuid_v4(generated[0]["id"].as_str().unwrap()));
    assert_eq!(
        s.get_doc("items", "j2"),
        Some(json!({"id": "j2", "when": {"$date": "2024-01-02T03:04:05Z"}}))
    );
    assert_eq!(
        s.get_doc("items", "x1"),
        Some(json!({"id": "x1", "zip": "02134", "price": 1.5}))
    );
    assert_eq!(
        s.get_doc("items", "x2"),
        Some(json!({"id": "x2", "tags": ["a", "b"]}))
    );
    // One JSON object or one XML document at POST /<c> keeps the one-document answer.
    let r = s.post_json("/items", &json!({"id": "single", "a": 1}));
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!({"id": "single", "a": 1}));
    let r = s.post_raw(
        "/items",
        "application/xml",
        "<document id=\"sx\"><a>1</a></document>",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!({"id": "sx", "a": 1}));
}

#[test]
fn a_bad_row_stores_nothing_and_is_named() {
    let s = Server::start();
    s.create_collection("c");
    s.insert("c", &json!({"id": "keep", "n": 0}));
    let before = s.list_all("c");

    // A malformed NDJSON line: 22032 naming line 3 (document 2; line 2 is blank).
    let r = s.post_raw(
        "/c",
        "application/x-ndjson",
        "{\"id\": \"a\"}\n\n{\"id\": \"b\",}\n{\"id\": \"c\"}\n",
    );
    let msg = r.assert_error(400, "22032");
    assert!(msg.contains("line 3"), "{msg}");
    assert_eq!(r.json()["error"]["line"], json!(3));
    assert_eq!(r.json()["error"]["row"], json!(2));

    // A duplicate id inside the input: 23505, the second occurrence named.
    let r = s.post_raw("/c", "text/csv", "id,n\na,1\nb,2\na,3\n");
    let msg = r.assert_error(409, "23505");
    assert!(msg.contains("line 4") && msg.contains("\"a\""), "{msg}");
    assert_eq!(r.json()["error"]["row"], json!(3));

    // An id already stored.
    let r = s.post_json("/c/_import", &json!([{"id": "new1"}, {"id": "keep"}]));
    let msg = r.assert_error(409, "23505");
    assert!(msg.contains("document 2") && msg.contains("keep"), "{msg}");

    // A CSV row with too many cells, malformed quoting, an element that is not a document.
    let r = s.post_raw("/c", "text/csv", "id,n\nx,1\ny,2,3\n");
    let msg = r.assert_error(400, "22P04");
    assert!(msg.contains("line 3"), "{msg}");
    s.post_raw("/c", "text/csv", "id,n\nx,\"1\n")
        .assert_error(400, "22P04");
    let r = s.post_json("/c", &json!([{"id": "ok"}, 5]));
    let msg = r.assert_error(400, "22P02");
    assert!(msg.contains("document 2"), "{msg}");
    // Bad XML and a bad id.
    s.post_raw(
        "/c",
        "application/xml",
        "<documents><document id=\"a\"><x></document></documents>",
    )
    .assert_error(400, "2200M");
    s.post_raw("/c", "text/csv", "id,n\n_bad,1\n")
        .assert_error(400, "22P02");

    assert_eq!(
        s.list_all("c"),
        before,
        "nothing of any failed import was stored"
    );
}

#[test]
fn typed_table_rows_are_cast_or_refused_whole() {
    let s = Server::start();
    s.create_collection("t");
    query(
        &s,
        "t",
        "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, qty int DEFAULT 5, price numeric, zip text)",
    );
    let csv = "id,name,price,zip\n1,apple,1.50,02134\n2,pear,,00001\n";
    assert_imported(&s.post_raw("/items", "text/csv", csv), 2);
    assert_eq!(
        query(
            &s,
            "items",
            "SELECT id, name, qty, price::text AS p, zip FROM items ORDER BY id"
        ),
        json!([
            {"id": 1, "name": "apple", "qty": 5, "p": "1.50", "zip": "02134"},
            {"id": 2, "name": "pear", "qty": 5, "p": null, "zip": "00001"}
        ])
    );
    // A conversion error: 22P02 naming the row; nothing of the import stored.
    let r = s.post_raw("/items", "text/csv", "id,name\n3,plum\nfour,fig\n");
    let msg = r.assert_error(400, "22P02");
    assert!(msg.contains("line 3"), "{msg}");
    // NOT NULL, an unknown column, a duplicate key against the stored rows.
    let msg = s
        .post_json(
            "/items/_import",
            &json!([{"id": 5, "name": "kiwi"}, {"id": 6}]),
        )
        .assert_error(400, "23502");
    assert!(msg.contains("document 2"), "{msg}");
    s.post_raw(
        "/items",
        "application/x-ndjson",
        "{\"id\": 7, \"name\": \"a\", \"colour\": \"red\"}\n",
    )
    .assert_error(400, "42703");
    s.post_raw("/items", "text/csv", "id,name\n8,fig\n1,again\n")
        .assert_error(409, "23505");
    assert_eq!(
        query(&s, "items", "SELECT count(*) AS n FROM items"),
        json!([{"n": 2}])
    );
}

#[test]
fn csv_export_round_trips() {
    let s = Server::start();
    s.create_collection("src");
    let docs = json!([
        {"id": "a", "zip": "02134", "price": 1.5, "code": "42", "empty": "", "big": 1e300,
         "note": "x, \"y\"\nz", "nested": {"k": [1, "two", null]}, "when": {"$date": "2023-10-26T10:00:00Z"},
         "n": {"$numeric": "12.50"}, "bin": {"$binary": "AAEC/w=="}},
        {"id": "b, with comma", "price": 2, "flag": true, "arr": [], "json_like": "[1, 2]"},
        {"id": "c", "obj_text": "{\"a\": 1}"}
    ]);
    assert_imported(&s.post_json("/src", &docs), 3);
    let r = s.get_accept("/src", "text/csv");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
    assert!(
        r.text.starts_with(
            "id,zip,price,code,empty,big,note,nested,when,n,bin,flag,arr,json_like,obj_text\n"
        ),
        "{}",
        r.text
    );
    s.create_collection("dst");
    assert_imported(&s.post_raw("/dst", "text/csv", r.text.clone()), 3);
    assert_eq!(s.list_all("dst"), s.list_all("src"), "CSV:\n{}", r.text);
    // Paging as the JSON listing does, with the next `after` in a header.
    let page = s
        .client()
        .get(s.url("/src?limit=2"))
        .header("Accept", "text/csv")
        .send()
        .unwrap();
    let next = page
        .headers()
        .get("x-next-after")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(next, "b%2C%20with%20comma");
    let rest = s.get_accept(&format!("/src?limit=2&after={next}"), "text/csv");
    assert_eq!(
        rest.text.lines().nth(1),
        Some("c,,,,,,,,,,,,,,\"{\"\"a\"\": 1}\"")
    );
}

#[test]
fn xml_export_round_trips() {
    let s = Server::start();
    s.create_collection("src");
    let docs = json!([
        {"id": "a", "zip": "02134", "code": "42", "price": 1.5, "one": [1], "empty": {}, "s": "",
         "when": {"$date": "2023-10-26T10:00:00Z"}, "n": {"$numeric": "12.50"}},
        {"id": "b", "specs": {"features": ["x", "y"], "w": "250g"}}
    ]);
    assert_imported(&s.post_json("/src", &docs), 2);
    let r = s.get_accept("/src", "application/xml");
    assert_eq!(r.status, 200);
    assert!(r.text.contains("<documents"), "{}", r.text);
    s.create_collection("dst");
    assert_imported(&s.post_raw("/dst", "application/xml", r.text.clone()), 2);
    assert_eq!(s.list_all("dst"), s.list_all("src"), "XML:\n{}", r.text);
}

#[test]
fn query_answers_csv_and_xml_on_request() {
    let s = Server::start();
    s.create_collection("p");
    assert_imported(
        &s.post_raw(
            "/p",
            "text/csv",
            "id,brand,price\na,X,1.50\nb,\"Y, Z\",2.25\n",
        ),
        2,
    );
    let sql = "SELECT id, brand, price FROM p ORDER BY id";
    let r = query_accept(&s, "p", sql, "text/csv");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("text/csv"));
    assert_eq!(r.text, "id,brand,price\na,X,1.5\nb,\"Y, Z\",2.25\n");
    let r = query_accept(&s, "p", sql, "application/xml");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("application/xml"));
    assert!(
        r.text.contains("<brand>Y, Z</brand>") && r.text.contains("<price>2.25</price>"),
        "{}",
        r.text
    );
    // The XML rows import back, their id column as the key.
    s.create_collection("q");
    assert_imported(&s.post_raw("/q", "application/xml", r.text), 2);
    assert_eq!(
        s.get_doc("q", "b"),
        Some(json!({"id": "b", "brand": "Y, Z", "price": 2.25}))
    );
    // JSON stays the default; a statement without rows answers JSON whatever Accept says.
    assert_eq!(
        query(&s, "p", "SELECT count(*) AS n FROM p"),
        json!([{"n": 2}])
    );
    let r = query_accept(&s, "p", "UPDATE p SET price = 3 WHERE id = 'a'", "text/csv");
    assert_eq!(r.json()["affected"], json!(1));
}

#[test]
fn limits_unknown_collections_and_media_types() {
    let s = Server::start_with_env(&[
        ("TISSDB_MAX_IMPORT_SIZE", "4KiB"),
        ("TISSDB_MAX_BODY_SIZE", "1KiB"),
    ]);
    s.create_collection("c");
    // Under max_import_size but over max_body_size: an import is fine...
    let mut csv = String::from("id,pad\n");
    for i in 0..40 {
        csv.push_str(&format!("r{i},{}\n", "x".repeat(50)));
    }
    assert!(csv.len() > 1024 && csv.len() < 4096);
    assert_imported(&s.post_raw("/c", "text/csv", csv.clone()), 40);
    // ...a single document that size is not.
    let big = json!({"id": "big", "pad": "y".repeat(2000)});
    let msg = s.post_json("/c", &big).assert_error(413, "54000");
    assert!(msg.contains("max_body_size"), "{msg}");
    // Over max_import_size: 413 naming the setting, nothing stored.
    let mut huge = String::from("id,pad\n");
    for i in 0..100 {
        huge.push_str(&format!("h{i},{}\n", "x".repeat(50)));
    }
    let r = send(
        common::one_shot_client()
            .post(s.url("/c/_import"))
            .header("Content-Type", "text/csv")
            .body(huge),
    );
    let msg = r.assert_error(413, "54000");
    assert!(msg.contains("max_import_size"), "{msg}");
    assert_eq!(s.list_all("c").len(), 40);

    s.post_raw("/nope", "text/csv", "id\na\n")
        .assert_error(404, "42P01");
    s.post_raw("/nope/_import", "application/x-ndjson", "{}\n")
        .assert_error(404, "42P01");
    s.get_accept("/nope", "text/csv").assert_error(404, "42P01");
    s.post_raw("/c", "text/plain", "id\na\n")
        .assert_error(415, "0A000");
    s.post_raw("/c", "text/csv", "").assert_error(400, "22P04");
    // An empty list imports nothing and says so.
    assert_imported(&s.post_json("/c", &json!([])), 0);
    assert_imported(&s.post_raw("/c", "text/csv", "id,pad\n"), 0);
}

#[test]
fn import_inside_a_rest_transaction() {
    let s = Server::start();
    s.create_collection("c");
    let t = s.begin_transaction();
    let r = send(
        s.client()
            .post(s.url("/c/_import"))
            .header("X-Transaction-ID", &t)
            .header("Content-Type", "text/csv")
            .body("id,n\na,1\nb,2\n"),
    );
    assert_imported(&r, 2);
    assert_eq!(s.list_all("c").len(), 0, "not visible before COMMIT");
    let r = send(
        s.client()
            .post(s.url("/_transaction/commit"))
            .header("X-Transaction-ID", &t),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.list_all("c").len(), 2);
}
