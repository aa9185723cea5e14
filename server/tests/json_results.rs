//! json and jsonb result columns written from the documents' binary encoding without
//! decoding them (`Column::json_encoded`), over the wire and in REST `_query` answers:
//! `SELECT *` and `SELECT doc` by key and by scan, from the memtable, from segments and
//! from a transaction's own writes, in text and binary formats (JSON, CSV and XML over
//! REST), must answer exactly what the decoding path answers (a query with ORDER BY,
//! whose sort takes values decoded).
//!
//! Each test starts its own `tissdb serve` (tests/common) and talks to it with
//! tokio-postgres, the blocking `postgres` client, and reqwest.

mod common;

use std::collections::BTreeMap;

use common::Server;
use serde_json::{Value as Json, json};

/// Documents whose nested values cover what a JSON writer can get wrong: escapes and
/// control characters, non-ASCII text, empty containers, deep nesting, numbers of every
/// kind, nested nulls, and top-level fields that hold JSON null, a scalar, or nothing.
fn documents() -> Vec<Json> {
    vec![
        json!({"id": "a", "name": "plain", "specs": {"weight": "250g", "dims": {"w": 40, "h": 44.5}},
               "tags": ["x", "y"], "extra": {"k": null}}),
        json!({"id": "b", "name": "escapes",
               "specs": {"quote\"d": "back\\slash \"q\" nl\n tab\t cr\r ctl\u{1} bell\u{7} del\u{7f}",
                         "unicode": "é ü 中文 😀", "empty_s": ""},
               "tags": [], "extra": {}}),
        json!({"id": "c", "name": "numbers",
               "specs": {"int": -9007199254740993_i64, "float": 0.1, "big": 1e300, "small": -2.5e-7,
                         "whole": 3.0, "bools": [true, false, null]},
               "tags": [[1, [2, [3, [4, {"deep": [5]}]]]]], "extra": null}),
        json!({"id": "d", "name": "scalar in a json column", "specs": "just text",
               "tags": 42, "extra": true}),
        json!({"id": "e", "name": "missing fields"}),
        json!({"id": "f", "name": "reviews", "specs": {"reviews": [
            {"id": "rev_1", "rating": 5, "comment": "Amazing sound quality!"},
            {"id": "rev_2", "rating": 4, "comment": "Very comfortable."}]},
               "tags": ["audio"], "extra": [{}, [], {"a": [{}]}]}),
    ]
}

/// Rows as `id -> column -> text` (None for NULL), from the simple protocol.
type TextRows = BTreeMap<String, BTreeMap<String, Option<String>>>;

async fn text_rows(client: &tokio_postgres::Client, sql: &str) -> TextRows {
    let mut out = TextRows::new();
    for message in client.simple_query(sql).await.expect(sql) {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            let columns: BTreeMap<String, Option<String>> = row
                .columns()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name().to_string(), row.get(i).map(str::to_string)))
                .collect();
            let id = columns["id"].clone().expect("an id");
            out.insert(id, columns);
        }
    }
    out
}

/// Rows of a prepared statement run once per id, their columns read as text.
async fn prepared_text_rows(client: &tokio_postgres::Client, sql: &str, ids: &[&str]) -> TextRows {
    let statement = client.prepare(sql).await.expect(sql);
    let mut out = TextRows::new();
    for id in ids {
        // The text the server wrote (the simple protocol; the literal becomes a
        // parameter of a prepared template), keyed by the row's id.
        out.extend(text_rows(client, &sql.replace("$1", &format!("'{id}'"))).await);
        // And through the prepared statement, in binary: the same JSON.
        let row = client
            .query_one(&statement, &[id])
            .await
            .unwrap_or_else(|e| panic!("{sql} with {id}: {e}"));
        for (i, column) in row.columns().iter().enumerate() {
            if matches!(
                *column.type_(),
                tokio_postgres::types::Type::JSONB | tokio_postgres::types::Type::JSON
            ) {
                let binary: Option<Json> = row.get(i);
                let text = out[*id][column.name()].clone();
                let from_text = text.map(|t| serde_json::from_str::<Json>(&t).expect(&t));
                assert_eq!(binary, from_text, "{sql} {id} column {}", column.name());
            }
        }
    }
    out
}

#[tokio::test]
async fn json_columns_read_from_their_encoding_answer_as_decoded_ones() {
    let server = Server::start();
    let client = common::pg_connect(&server, "user=tester").await;
    client
        .batch_execute("CREATE COLLECTION docs")
        .await
        .expect("create");
    for doc in documents() {
        let resp = server.post_json("/docs", &doc);
        assert_eq!(resp.status, 201, "{}", resp.text);
    }
    let ids = ["a", "b", "c", "d", "e", "f"];
    let check = |stage: &'static str| {
        let client = &client;
        async move {
            // The reference: a sort at the root takes its values decoded.
            let decoded = text_rows(client, "SELECT * FROM docs ORDER BY id").await;
            assert_eq!(decoded.len(), ids.len(), "{stage}");
            assert_eq!(
                decoded["b"]["specs"]
                    .as_deref()
                    .map(|t| serde_json::from_str::<Json>(t).expect(t)),
                Some(documents()[1]["specs"].clone()),
                "{stage}: the reference itself"
            );
            assert_eq!(decoded["c"]["extra"], None, "{stage}: JSON null is NULL");
            assert_eq!(
                decoded["e"]["specs"], None,
                "{stage}: a missing field is NULL"
            );
            let scanned = text_rows(client, "SELECT * FROM docs").await;
            assert_eq!(scanned, decoded, "{stage}: full scan");
            let limited = text_rows(client, "SELECT * FROM docs LIMIT 100").await;
            assert_eq!(limited, decoded, "{stage}: scan under LIMIT");
            let by_key = prepared_text_rows(client, "SELECT * FROM docs WHERE id = $1", &ids).await;
            assert_eq!(by_key, decoded, "{stage}: key lookups");
            let some = prepared_text_rows(
                client,
                "SELECT id, tags, specs, extra FROM docs WHERE id = $1",
                &ids,
            )
            .await;
            for (id, row) in &some {
                for (name, value) in row {
                    assert_eq!(value, &decoded[id][name], "{stage}: {id}.{name}");
                }
            }
            // A column that an expression or the filter also reads comes decoded to them.
            let mixed = "SELECT id, specs, specs->'dims' AS dims, jsonb_typeof(tags) AS t, tags \
                         FROM docs WHERE tags IS NOT NULL";
            let mixed_decoded = text_rows(client, &format!("{mixed} ORDER BY id")).await;
            assert_eq!(text_rows(client, mixed).await, mixed_decoded, "{stage}");
            assert_eq!(mixed_decoded.len(), 5, "{stage}");
            assert_eq!(
                mixed_decoded["a"]["dims"].as_deref(),
                Some(r#"{"w": 40, "h": 44.5}"#),
                "{stage}"
            );
            assert_eq!(
                mixed_decoded["d"]["t"].as_deref(),
                Some("number"),
                "{stage}"
            );
            assert_eq!(mixed_decoded["b"]["t"].as_deref(), Some("array"), "{stage}");
        }
    };
    check("memtable").await;
    client.batch_execute("VACUUM docs").await.expect("vacuum");
    check("segments").await;
    check("segments, blocks cached").await;

    // A transaction's own writes, decoded from its pending documents.
    client
        .batch_execute(
            r#"BEGIN; INSERT INTO docs (id, specs, tags)
               VALUES ('g', '{"n": {"m": [1, "two\""]}}'::jsonb, '[]'::jsonb)"#,
        )
        .await
        .expect("insert in a transaction");
    let row = client
        .query_one(
            "SELECT specs::text, tags::text FROM docs WHERE id = 'g'",
            &[],
        )
        .await
        .expect("decoded");
    let encoded = text_rows(&client, "SELECT * FROM docs WHERE id = 'g'").await;
    assert_eq!(
        encoded["g"]["specs"].as_deref(),
        Some(row.get::<_, &str>(0))
    );
    assert_eq!(encoded["g"]["tags"].as_deref(), Some(row.get::<_, &str>(1)));
    assert_eq!(
        encoded["g"]["specs"].as_deref(),
        Some(r#"{"n": {"m": [1, "two\""]}}"#)
    );
    client.batch_execute("ROLLBACK").await.expect("rollback");
    assert!(
        text_rows(&client, "SELECT * FROM docs WHERE id = 'g'")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn typed_json_and_jsonb_columns_answer_in_both_formats() {
    let server = Server::start();
    let client = common::pg_connect(&server, "user=tester").await;
    client
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, doc jsonb, raw json, note text);
             INSERT INTO t VALUES
               (1, '{\"a\": [1, 2.5, \"x\\ty\"], \"b\": {}}', '[true, null]', 'one'),
               (2, NULL, '\"text\"', 'two'),
               (3, '7', '{\"k\": \"v\"}', NULL)",
        )
        .await
        .expect("setup");
    let decoded = text_rows(&client, "SELECT * FROM t ORDER BY id").await;
    let encoded = text_rows(&client, "SELECT * FROM t").await;
    assert_eq!(encoded, decoded);
    assert_eq!(
        encoded["1"]["doc"].as_deref(),
        Some(r#"{"a": [1, 2.5, "x\ty"], "b": {}}"#)
    );
    assert_eq!(encoded["2"]["doc"], None);
    assert_eq!(encoded["3"]["doc"].as_deref(), Some("7"));
    assert_eq!(encoded["2"]["raw"].as_deref(), Some(r#""text""#));
    // Binary results: jsonb with its version byte, json without; tokio-postgres reads
    // both into JSON values.
    let statement = client
        .prepare("SELECT doc, raw FROM t WHERE id = $1")
        .await
        .expect("prepare");
    let expected = [
        (
            1,
            Some(json!({"a": [1, 2.5, "x\ty"], "b": {}})),
            json!([true, null]),
        ),
        (2, None, json!("text")),
        (3, Some(json!(7)), json!({"k": "v"})),
    ];
    for (id, doc, raw) in expected {
        let row = client
            .query_one(&statement, &[&id])
            .await
            .expect("read by key");
        assert_eq!(row.get::<_, Option<Json>>(0), doc, "doc of {id}");
        assert_eq!(row.get::<_, Json>(1), raw, "raw of {id}");
    }
    // A filter on the json column reads it decoded, and answers the same text.
    let filtered = text_rows(&client, "SELECT * FROM t WHERE doc IS NOT NULL").await;
    assert_eq!(filtered.len(), 2);
    assert_eq!(filtered["1"], decoded["1"]);
    assert_eq!(filtered["3"], decoded["3"]);
}

/// A statement described while a field held text only, run after the field took a
/// nested value, answers in the columns it was described with (the plan's json column
/// decoded back for it), and a new statement in json.
#[test]
fn a_statement_described_before_a_field_widened_keeps_its_columns() {
    let server = Server::start();
    let mut client = common::pg_client(&server);
    client
        .batch_execute("CREATE COLLECTION w; INSERT INTO w (id, f) VALUES ('1', 'text')")
        .expect("setup");
    let statement = client
        .prepare("SELECT * FROM w WHERE id = $1")
        .expect("prepare");
    let before = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect::<Vec<_>>();
    client
        .batch_execute("INSERT INTO w (id, f) VALUES ('2', '{\"n\": [1, \"x\"]}'::jsonb)")
        .expect("widen");
    let fresh = client
        .prepare("SELECT * FROM w WHERE id = $1")
        .expect("prepare again");
    let f_type = |s: &postgres::Statement| {
        s.columns()
            .iter()
            .find(|c| c.name() == "f")
            .map(|c| c.type_().clone())
    };
    assert_eq!(f_type(&fresh), Some(postgres::types::Type::JSONB));
    let row = client.query_one(&fresh, &[&"2"]).expect("fresh statement");
    assert_eq!(row.get::<_, Json>("f"), json!({"n": [1, "x"]}));
    match client.query(&statement, &[&"2"]) {
        Ok(rows) => {
            // Answered in the described types: the text column holds the JSON text.
            assert_eq!(rows.len(), 1);
            let types: Vec<_> = rows[0]
                .columns()
                .iter()
                .map(|c| c.type_().clone())
                .collect();
            assert_eq!(types, before);
            let f: String = rows[0].get("f");
            assert_eq!(
                serde_json::from_str::<Json>(&f).expect(&f),
                json!({"n": [1, "x"]})
            );
        }
        // Or refused as PostgreSQL refuses a plan whose result changed.
        Err(e) => assert_eq!(e.code().map(|c| c.code()), Some("0A000"), "{e}"),
    }
    // The server keeps serving.
    let row = client.query_one(&fresh, &[&"1"]).expect("after");
    assert_eq!(row.get::<_, Json>("f"), json!("text"));
}

/// REST `_query` answers written with json columns from their encoding (JSON) and
/// decoded (CSV, XML, nested paths) match the decoding path's answers byte for byte, in
/// a request of its own and inside a REST transaction; typed values nested in a document
/// keep their markers.
#[test]
fn rest_query_answers_match_the_decoding_path() {
    let server = Server::start();
    server.create_collection("docs");
    let mut docs = documents();
    docs.push(
        json!({"id": "t", "name": "typed", "specs": {"when": {"$date": "2024-01-02T03:04:05Z"},
                     "nan": {"$float": "NaN"}, "bytes": {"$binary": "AAEC"}}}),
    );
    for doc in &docs {
        let resp = server.post_json("/docs", doc);
        assert_eq!(resp.status, 201, "{}", resp.text);
    }
    let query = |sql: &str, accept: &str, transaction: Option<&str>| {
        let mut request = server
            .client()
            .post(server.url("/docs/_query"))
            .header("Content-Type", "application/json")
            .header("Accept", accept)
            .body(json!({ "query": sql }).to_string());
        if let Some(t) = transaction {
            request = request.header("X-Transaction-ID", t);
        }
        let resp = common::send(request);
        assert_eq!(resp.status, 200, "{sql} ({accept}): {}", resp.text);
        resp.text
    };
    let check = |transaction: Option<&str>| {
        for id in ["a", "b", "c", "d", "e", "f", "t"] {
            let encoded = format!("SELECT * FROM docs WHERE id = '{id}'");
            // A sort at the root takes its values decoded.
            let decoded = format!("{encoded} ORDER BY id");
            for accept in ["application/json", "text/csv", "application/xml"] {
                assert_eq!(
                    query(&encoded, accept, transaction),
                    query(&decoded, accept, transaction),
                    "{id} as {accept}"
                );
            }
            // A projected path nests its value: that answer decodes first.
            let nested = format!("SELECT specs.dims, specs, tags FROM docs WHERE id = '{id}'");
            assert_eq!(
                query(&nested, "application/json", transaction),
                query(
                    &format!("{nested} ORDER BY 1"),
                    "application/json",
                    transaction
                ),
                "{id} nested"
            );
        }
    };
    check(None);
    // The typed values nested in `t` and the escapes in `b` come back as stored.
    for (id, at) in [("t", 6), ("b", 1)] {
        let sql = format!("SELECT * FROM docs WHERE id = '{id}'");
        let text = query(&sql, "application/json", None);
        let rows: Json = serde_json::from_str(&text).expect(&text);
        assert_eq!(rows[0]["specs"], docs[at]["specs"], "{text}");
        assert_eq!(rows[0]["tags"], docs[at]["tags"], "{text}");
    }
    check(Some(&server.begin_transaction()));
}
