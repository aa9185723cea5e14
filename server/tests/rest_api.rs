//! The REST API end to end: the real `tissdb` binary over real HTTP.

mod common;

use common::{Server, is_uuid_v4, send, with_id};
use serde_json::{Value as Json, json};

fn seed_json() -> Json {
    json!({"name": "Smart Watch", "brand": "TechGear", "price": 299.99, "is_available": true})
}

fn ids(docs: &[Json]) -> Vec<String> {
    docs.iter()
        .map(|d| d["id"].as_str().expect("string id").to_string())
        .collect()
}

#[test]
fn collection_create_drop_and_listing() {
    let s = Server::start();
    assert!(!s.collections().contains(&"products".to_string()));

    let r = s.put_empty("/products");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!({"collection": "products"}));
    assert!(s.collections().contains(&"products".to_string()));

    s.put_empty("/products").assert_error(409, "42P07");
    // The 409 did not disturb it: still there, still usable.
    s.insert("products", &json!({"id": "a", "n": 1}));

    let r = s.delete("/products");
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    assert!(!s.collections().contains(&"products".to_string()));
    s.delete("/products").assert_error(404, "42P01");
    s.get("/products").assert_error(404, "42P01");
    s.get("/products/a").assert_error(404, "42P01");

    // Made again, it is empty: the old documents went with the drop.
    s.create_collection("products");
    assert_eq!(s.list_all("products"), Vec::<Json>::new());
    assert_eq!(s.get_doc("products", "a"), None);

    // Several collections are listed, each once.
    s.create_collection("orders");
    let names = s.collections();
    assert_eq!(names.iter().filter(|n| *n == "products").count(), 1);
    assert_eq!(names.iter().filter(|n| *n == "orders").count(), 1);

    let info = s.get("/");
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["name"], "TissDB");
    assert_eq!(info.json()["collections"], json!(names.len()));
}

#[test]
fn post_generates_uuid_v4_and_echoes_body() {
    let s = Server::start();
    s.create_collection("products");
    let r = s.post_json("/products", &seed_json());
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        r.text.starts_with("{\"id\":"),
        "the id comes first: {}",
        r.text
    );
    let stored = r.json();
    let id = stored["id"].as_str().expect("a string id").to_string();
    assert!(is_uuid_v4(&id), "generated id {id:?} is not a UUID v4");
    assert_eq!(stored, with_id(&id, &seed_json()));
    assert!(stored["price"].is_f64() && stored["is_available"].is_boolean());

    // Two generated ids differ.
    let other = s.insert("products", &seed_json());
    let other_id = other["id"].as_str().unwrap();
    assert!(is_uuid_v4(other_id));
    assert_ne!(other_id, id);

    let r = s.get(&format!("/products/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), with_id(&id, &seed_json()));
    assert_eq!(s.list_all("products").len(), 2);

    // A generated id, given back by a client, is checked like any other.
    let again = json!({"id": id, "name": "again"});
    let msg = s.post_json("/products", &again).assert_error(409, "23505");
    assert!(msg.contains(&id), "{msg}");
    assert_eq!(s.get_doc("products", &id), Some(with_id(&id, &seed_json())));
    assert_eq!(s.list_all("products").len(), 2);
}

#[test]
fn post_with_given_id_and_duplicate_conflict() {
    let s = Server::start();
    s.create_collection("products");
    let first = json!({"id": "product_123", "name": "Smart Watch", "price": 299.99});
    let r = s.post_json("/products", &first);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), first);

    let second = json!({"id": "product_123", "name": "Impostor", "price": 1});
    let msg = s.post_json("/products", &second).assert_error(409, "23505");
    assert!(msg.contains("product_123"), "{msg}");
    // The first one is untouched.
    assert_eq!(s.get_doc("products", "product_123"), Some(first.clone()));
    assert_eq!(s.list_all("products"), vec![first]);

    // An integer id is taken as its text.
    let r = s.post_json("/products", &json!({"id": 42, "n": 1}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!({"id": "42", "n": 1}));
    assert_eq!(
        s.get_doc("products", "42"),
        Some(json!({"id": "42", "n": 1}))
    );

    // Ids with spaces and non-ASCII text work through percent-encoded paths.
    let odd = json!({"id": "ünï côdé/1", "n": 2});
    s.insert("products", &odd);
    assert_eq!(s.get_doc("products", "ünï côdé/1"), Some(odd));
}

#[test]
fn get_missing_document_is_404_json() {
    let s = Server::start();
    s.create_collection("products");
    let msg = s.get("/products/nope").assert_error(404, "02000");
    assert!(msg.contains("nope"), "{msg}");
    s.get("/nosuch/nope").assert_error(404, "42P01");
}

/// A plain `GET /<c>/<id>` is answered without the router; the same request spelled so
/// that only the router takes it (a percent escape, a query string) answers the same.
#[test]
fn plain_and_routed_document_reads_answer_alike() {
    let s = Server::start();
    s.create_collection("products");
    let doc = json!({"id": "p1", "name": "Smart Watch", "specs": {"w": [1, 2.5, "x"]}});
    s.insert("products", &doc);
    for accept in ["application/json", "application/xml"] {
        let plain = s.get_accept("/products/p1", accept);
        assert_eq!(plain.status, 200, "{}", plain.text);
        for routed in ["/products/p%31", "/products/p1?expand=", "/products/%70%31"] {
            let r = s.get_accept(routed, accept);
            assert_eq!(
                (r.status, &r.content_type, &r.text),
                (plain.status, &plain.content_type, &plain.text),
                "GET {routed} ({accept})"
            );
        }
    }
    assert_eq!(s.get("/products/p1").json(), doc);
    // Missing documents and collections, and names the router keeps for itself.
    s.get("/products/p2").assert_error(404, "02000");
    s.get("/products/p%32").assert_error(404, "02000");
    s.get("/nosuch/p1").assert_error(404, "42P01");
    s.get("/products/p1/").assert_error(404, "02000");
    let r = s.get("/products/_index");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["indexes"].is_array(), "{}", r.text);
}

/// `POST /<c>` and `POST /<c>/_query` skip the router when their paths are plain; a
/// percent-escaped path takes the router to the same handlers. Both must answer alike,
/// errors included, and write the same.
#[test]
fn plain_and_routed_posts_answer_alike() {
    let s = Server::start();
    s.create_collection("products");
    for (n, path) in ["/products", "/product%73", "/%70roducts"]
        .iter()
        .enumerate()
    {
        let id = format!("w{n}");
        let doc = json!({"id": id, "name": "Smart Watch", "specs": {"w": [1, 2.5, "x"]}});
        let r = s.post_json(path, &doc);
        assert_eq!(r.status, 201, "POST {path}: {}", r.text);
        assert_eq!(r.json(), doc, "POST {path}");
        // The same id again: 409, and the first stays.
        let again = json!({"id": id, "name": "other"});
        s.post_json(path, &again).assert_error(409, "23505");
        assert_eq!(s.get_doc("products", &id), Some(doc));
        // A generated id, an XML document, an NDJSON import.
        let r = s.post_json(path, &json!({"n": n}));
        assert_eq!(r.status, 201, "POST {path}: {}", r.text);
        assert!(is_uuid_v4(r.json()["id"].as_str().unwrap()), "{}", r.text);
        let r = s.post_raw(
            path,
            "application/xml",
            format!("<document id=\"x{n}\"><n>{n}</n></document>"),
        );
        assert_eq!(r.status, 201, "POST {path} (XML): {}", r.text);
        assert_eq!(
            s.get_doc("products", &format!("x{n}")),
            Some(json!({"id": format!("x{n}"), "n": n}))
        );
        let r = s.post_raw(
            path,
            "application/x-ndjson",
            format!("{{\"id\": \"i{n}a\"}}\n{{\"id\": \"i{n}b\"}}\n"),
        );
        assert_eq!(
            (r.status, r.json()["imported"].clone()),
            (201, json!(2)),
            "{}",
            r.text
        );
        // Bad bodies: nothing written.
        s.post_raw(path, "application/json", "{\"id\": \"bad\", ")
            .assert_error(400, "22032");
        s.post_raw(path, "text/plain", "{}")
            .assert_error(415, "0A000");
        s.post_raw(path, "application/json", "  ")
            .assert_error(400, "22P02");
        assert_eq!(s.get_doc("products", "bad"), None);
    }
    assert_eq!(s.list_all("products").len(), 15);
    s.post_json("/nosuch", &json!({"a": 1}))
        .assert_error(404, "42P01");
    s.post_json("/nosuc%68", &json!({"a": 1}))
        .assert_error(404, "42P01");

    let query =
        json!({"query": "SELECT id, specs.w FROM products WHERE id = $1", "params": ["w1"]});
    let plain = s.post_json("/products/_query", &query);
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert_eq!(
        plain.json(),
        json!([{"id": "w1", "specs": {"w": [1, 2.5, "x"]}}])
    );
    for routed in ["/product%73/_query", "/%70roducts/_query"] {
        let r = s.post_json(routed, &query);
        assert_eq!(
            (r.status, &r.text),
            (plain.status, &plain.text),
            "POST {routed}"
        );
    }
    for path in ["/products/_query", "/product%73/_query"] {
        s.post_json(path, &json!({"query": "SELECT nosuch("}))
            .assert_error(400, "42601");
        s.post_raw(path, "application/json", "{")
            .assert_error(400, "22032");
    }
    s.post_json("/nosuch/_query", &query)
        .assert_error(404, "42P01");
}

#[test]
fn put_replaces_documents() {
    let s = Server::start();
    s.create_collection("products");
    let v1 = json!({"name": "A", "old_field": 1, "tags": ["x"]});
    let r = s.put_json("/products/p1", &v1);
    assert_eq!(r.status, 201, "a PUT that creates answers 201: {}", r.text);
    assert_eq!(r.json(), with_id("p1", &v1));
    assert_eq!(s.get_doc("products", "p1"), Some(with_id("p1", &v1)));

    let v2 = json!({"name": "B", "price": 10.5});
    let r = s.put_json("/products/p1", &v2);
    assert_eq!(r.status, 200, "a PUT that replaces answers 200: {}", r.text);
    assert_eq!(r.json(), with_id("p1", &v2));
    let got = s.get_doc("products", "p1").unwrap();
    assert_eq!(got, with_id("p1", &v2));
    assert!(got.get("old_field").is_none() && got.get("tags").is_none());

    // A body id equal to the path's is fine.
    let v3 = json!({"id": "p1", "name": "C"});
    let r = s.put_json("/products/p1", &v3);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get_doc("products", "p1"), Some(v3.clone()));

    // A body id that differs is refused, and nothing changes.
    let msg = s
        .put_json("/products/p1", &json!({"id": "p2", "name": "D"}))
        .assert_error(400, "22023");
    assert!(msg.contains("p2"), "{msg}");
    assert_eq!(s.get_doc("products", "p1"), Some(v3.clone()));
    assert_eq!(s.get_doc("products", "p2"), None);
    assert_eq!(s.list_all("products"), vec![v3.clone()]);

    // The same rules for XML bodies: the root's id attribute must match the path...
    let r = s.put_raw(
        "/products/p1",
        "application/xml",
        "<document id=\"zzz\"><name>E</name></document>",
    );
    r.assert_error(400, "22023");
    assert_eq!(s.get_doc("products", "p1"), Some(v3));
    // ...and without one, the path's id is used.
    let r = s.put_raw(
        "/products/p1",
        "application/xml",
        "<document><name>F</name><n>7</n></document>",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        s.get_doc("products", "p1"),
        Some(json!({"id": "p1", "name": "F", "n": 7}))
    );
}

#[test]
fn concurrent_writes_to_one_id_are_serialized() {
    let s = Server::start();
    s.create_collection("products");
    let url = s.url("/products");
    // Eight clients POST the same id at once: exactly one wins.
    let statuses: Vec<(u16, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let url = url.clone();
                scope.spawn(move || {
                    let c = common::http_client();
                    let r = send(
                        c.post(&url)
                            .header("Content-Type", "application/json")
                            .body(json!({"id": "contested", "writer": t}).to_string()),
                    );
                    (r.status, t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = statuses
        .iter()
        .filter(|(st, _)| *st == 201)
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(winners.len(), 1, "statuses: {statuses:?}");
    assert!(
        statuses.iter().all(|(st, _)| *st == 201 || *st == 409),
        "{statuses:?}"
    );
    assert_eq!(
        s.get_doc("products", "contested"),
        Some(json!({"id": "contested", "writer": winners[0]}))
    );

    // Eight clients PUT a new id at once: exactly one creates it (201), the rest replace.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let url = format!("{url}/fresh");
                scope.spawn(move || {
                    let c = common::http_client();
                    send(
                        c.put(&url)
                            .header("Content-Type", "application/json")
                            .body(json!({"writer": t}).to_string()),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|st| **st == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|st| **st == 200).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(s.list_all("products").len(), 2);
}

#[test]
fn delete_documents() {
    let s = Server::start();
    s.create_collection("products");
    s.insert("products", &json!({"id": "a", "n": 1}));
    s.insert("products", &json!({"id": "b", "n": 2}));

    let r = s.delete("/products/a");
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    if r.status == 200 {
        assert_eq!(r.json(), json!({"deleted": "a"}));
    }
    s.get("/products/a").assert_error(404, "02000");
    s.delete("/products/a").assert_error(404, "02000");
    assert_eq!(s.list_all("products"), vec![json!({"id": "b", "n": 2})]);

    // The id can be used again after the delete.
    s.insert("products", &json!({"id": "a", "n": 3}));
    assert_eq!(s.get_doc("products", "a"), Some(json!({"id": "a", "n": 3})));
}

#[test]
fn list_pages_in_id_order() {
    let s = Server::start();
    s.create_collection("products");
    for id in ["d05", "d01", "d04", "d02", "d03"] {
        s.insert(
            "products",
            &json!({"id": id, "n": id[1..].parse::<i64>().unwrap()}),
        );
    }

    let r = s.get("/products");
    assert_eq!(r.status, 200, "{}", r.text);
    let page = r.json();
    assert_eq!(
        ids(page["documents"].as_array().unwrap()),
        ["d01", "d02", "d03", "d04", "d05"]
    );
    assert_eq!(page["next_after"], Json::Null);
    assert_eq!(page["documents"][2], json!({"id": "d03", "n": 3}));

    let p1 = s.get("/products?limit=2").json();
    assert_eq!(ids(p1["documents"].as_array().unwrap()), ["d01", "d02"]);
    assert_eq!(p1["next_after"], "d02");
    let p2 = s.get("/products?limit=2&after=d02").json();
    assert_eq!(ids(p2["documents"].as_array().unwrap()), ["d03", "d04"]);
    assert_eq!(p2["next_after"], "d04");
    let p3 = s.get("/products?limit=2&after=d04").json();
    assert_eq!(ids(p3["documents"].as_array().unwrap()), ["d05"]);
    assert_eq!(p3["next_after"], Json::Null);

    // `after` need not be an existing id.
    let p = s.get("/products?limit=2&after=d025").json();
    assert_eq!(ids(p["documents"].as_array().unwrap()), ["d03", "d04"]);
    let p = s.get("/products?after=d05").json();
    assert_eq!(p["documents"], json!([]));
    assert_eq!(p["next_after"], Json::Null);

    // The listing follows deletes and replaces.
    s.delete("/products/d03");
    s.put_json("/products/d01", &json!({"n": 100}));
    let all = s.list_all("products");
    assert_eq!(ids(&all), ["d01", "d02", "d04", "d05"]);
    assert_eq!(all[0], json!({"id": "d01", "n": 100}));

    s.get("/products?limit=0").assert_error(400, "22023");
    s.get("/products?limit=abc").assert_error(400, "22023");
    s.get("/products?color=red").assert_error(400, "22023");
}

#[test]
fn xml_seed_document_reads_back_typed() {
    let s = Server::start();
    s.create_collection("products");
    let r = s.post_raw("/products", "application/xml", common::SEED_XML);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), common::seed_doc(199.99));

    let got = s
        .get_doc("products", "product_789")
        .expect("the XML document");
    assert_eq!(got, common::seed_doc(199.99));
    // The types, one by one (serde_json's equality already tells 5 from 5.0).
    assert!(got["price"].is_f64());
    assert_eq!(got["price"].as_f64(), Some(199.99));
    assert_eq!(got["is_available"], Json::Bool(true));
    assert_eq!(
        got["release_date"],
        json!({"$date": "2023-10-26T10:00:00Z"})
    );
    assert!(got["specs"]["bluetooth_version"].is_f64());
    assert_eq!(got["specs"]["bluetooth_version"].as_f64(), Some(5.2));
    assert_eq!(got["specs"]["weight"], "250g");
    assert_eq!(got["specs"]["features"].as_array().unwrap().len(), 3);
    let reviews = got["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 2);
    assert!(reviews[0]["rating"].is_i64());
    assert_eq!(reviews[1]["id"], "rev_2");
    assert_eq!(reviews[1]["comment"], "Very comfortable.");

    // As XML.
    let r = s.get_accept("/products/product_789", "application/xml");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.contains("xml"), "{}", r.content_type);
    assert!(r.text.contains("<document"), "{}", r.text);
    assert!(r.text.contains("product_789"), "{}", r.text);
    assert!(r.text.contains("Wireless Headphones"), "{}", r.text);
    assert!(
        serde_json::from_str::<Json>(&r.text).is_err(),
        "asked for XML, got JSON"
    );

    // Round trip: the XML answer posted to another collection is the same document.
    s.create_collection("copies");
    let r2 = s.post_raw("/copies", "application/xml", r.text.clone());
    assert_eq!(r2.status, 201, "posting back {}: {}", r.text, r2.text);
    assert_eq!(
        s.get_doc("copies", "product_789"),
        Some(common::seed_doc(199.99)),
        "XML written by the server read back differently:\n{}",
        r.text
    );

    // XML answers to writes, and text/xml as a request type.
    let r = send(
        s.client()
            .post(s.url("/copies"))
            .header("Content-Type", "text/xml")
            .header("Accept", "application/xml")
            .body(common::SEED_XML.replace("product_789", "product_790")),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.content_type.contains("xml"), "{}", r.content_type);
    assert!(r.text.contains("product_790"), "{}", r.text);
    let mut expected = common::seed_doc(199.99);
    expected["id"] = json!("product_790");
    assert_eq!(s.get_doc("copies", "product_790"), Some(expected));

    // The listing as XML holds both documents and reads back the same way.
    let r = s.get_accept("/copies", "application/xml");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("<documents"), "{}", r.text);
    assert_eq!(
        r.text.matches("Wireless Headphones").count(),
        2,
        "{}",
        r.text
    );
}

#[test]
fn compaction_keeps_data_readable() {
    let s = Server::start();
    s.create_collection("products");
    s.create_collection("other");
    let mut expected = Vec::new();
    for i in 0..60 {
        let doc = json!({"id": format!("p{i:03}"), "n": i, "name": format!("item {i}"),
            "tags": ["a", i], "specs": {"w": i as f64 + 0.5}});
        s.insert("products", &doc);
        expected.push(doc);
    }
    s.insert("other", &json!({"id": "o1", "x": true}));
    s.post_raw("/products", "application/xml", common::SEED_XML);
    // Documents whose XML looks like the entries a compaction cuts its blocks at: fields
    // named like entries, text holding their start tags, an id that needs escaping.
    let tricky = [
        json!({"id": "p0005", "document": {"id": "p002", "document": 1}, "tombstone": null,
            "said": "<document id=\"p002\"/> id=\"p002\"> <tombstone id=\"p003\"/>"}),
        json!({"id": "q\" id=\"<&>", "n": 1, "document": [{"id": "x"}, {"id": "y"}]}),
    ];
    for doc in &tricky {
        s.insert("products", doc);
    }

    let body = s.compact("products");
    assert!(body["segments"].as_u64().is_some_and(|n| n >= 1), "{body}");

    for doc in &expected {
        assert_eq!(
            s.get_doc("products", doc["id"].as_str().unwrap()).as_ref(),
            Some(doc)
        );
    }
    assert_eq!(
        s.get_doc("products", "product_789"),
        Some(common::seed_doc(199.99))
    );
    assert_eq!(s.list_all("products").len(), 63);
    assert_eq!(
        s.get_doc("other", "o1"),
        Some(json!({"id": "o1", "x": true}))
    );

    // Writes after a compaction, and a second compaction over them.
    s.delete("/products/p000");
    s.put_json("/products/p001", &json!({"n": -1}));
    s.compact("products");
    assert_eq!(s.get_doc("products", "p000"), None);
    assert_eq!(
        s.get_doc("products", "p001"),
        Some(json!({"id": "p001", "n": -1}))
    );
    assert_eq!(s.list_all("products").len(), 62);
    // The second compaction cut the first one's blocks into entries and copied them.
    for doc in tricky.iter().chain(&expected[2..]) {
        assert_eq!(
            s.get_doc("products", doc["id"].as_str().unwrap()).as_ref(),
            Some(doc)
        );
    }
    let listed = s.list_all("products");
    assert!(listed.contains(&tricky[0]) && listed.contains(&tricky[1]));

    send(s.client().post(s.url("/nosuch/_compact"))).assert_error(404, "42P01");
}

#[test]
fn data_survives_clean_restart() {
    let mut s = Server::start();
    s.create_collection("products");
    s.create_collection("empty_one");
    let watch = s.insert("products", &seed_json());
    let watch_id = watch["id"].as_str().unwrap().to_string();
    s.post_raw("/products", "application/xml", common::SEED_XML);
    s.insert("products", &json!({"id": "gone", "n": 1}));
    s.insert("products", &json!({"id": "changed", "v": 1}));
    s.delete("/products/gone");
    s.put_json("/products/changed", &json!({"v": 2}));
    let before = s.list_all("products");
    assert_eq!(before.len(), 3);

    s.terminate();
    s.restart();

    assert_eq!(s.list_all("products"), before);
    assert_eq!(s.get_doc("products", &watch_id), Some(watch));
    assert_eq!(
        s.get_doc("products", "product_789"),
        Some(common::seed_doc(199.99))
    );
    assert_eq!(s.get_doc("products", "gone"), None);
    assert_eq!(
        s.get_doc("products", "changed"),
        Some(json!({"id": "changed", "v": 2}))
    );
    let names = s.collections();
    assert!(names.contains(&"products".to_string()) && names.contains(&"empty_one".to_string()));

    // And it keeps working: the duplicate check sees the recovered data.
    s.post_json("/products", &json!({"id": "changed"}))
        .assert_error(409, "23505");
    s.insert("products", &json!({"id": "new", "n": 2}));
    s.terminate();
    s.restart();
    assert_eq!(s.list_all("products").len(), 4);
}

#[test]
fn unknown_routes_and_wrong_methods_answer_json() {
    let s = Server::start();
    s.create_collection("products");
    s.get("/products/a/b").assert_error(404, "02000");
    // Errors are JSON even when XML is asked for.
    s.get_accept("/products/nope", "application/xml")
        .assert_error(404, "02000");
    s.get_accept("/nosuch", "application/xml")
        .assert_error(404, "42P01");
    s.get("/products?limit=10001").assert_error(400, "22023");
    s.get("/products/%FF").assert_error(400, "22P02");
    s.get("/a/b/c/d").assert_error(404, "02000");

    let r = send(s.client().patch(s.url("/products")));
    r.assert_error(405, "0A000");
    let r = send(s.client().post(s.url("/_collections")));
    r.assert_error(405, "0A000");
    let r = send(s.client().patch(s.url("/products/x")));
    r.assert_error(405, "0A000");
    let r = send(s.client().get(s.url("/products/_compact")));
    assert!(
        r.status == 405 || r.status == 400,
        "GET /products/_compact: {} {}",
        r.status,
        r.text
    );
    r.json();
    // None of this created anything.
    assert_eq!(s.list_all("products"), Vec::<Json>::new());
}

/// Values of every JSON-expressible type, and the markers for the others.
fn typed_doc() -> Json {
    json!({
        "id": "typed",
        "big": i64::MAX,
        "small": i64::MIN,
        "zero": 0,
        "one_float": 1.0,
        "tenth": 0.1,
        "neg": -2.5,
        "tiny": 1e-300,
        "huge": 1.5e300,
        "t": true,
        "f": false,
        "nothing": null,
        "empty_array": [],
        "empty_object": {},
        "nested": [[{"a": [{"b": null, "c": [1, 2.0, "3"]}]}], [], [[[]]]],
        "objects": [{"k": 1}, {"k": "1"}, {"k": 1.0}],
        "unicode": "héllo wörld — 日本語 🎉 \"quoted\" \\ back\nslash\ttab",
        "control": "bell\u{0007}nul-free\u{0001}",
        "digits_text": "02134",
        "number_text": "42",
        "bool_text": "true",
        "date": {"$date": "2023-10-26T10:00:00Z"},
        "date_micro": {"$date": "1969-07-20T20:17:40.123456Z"},
        "bin": {"$binary": "AAEC"},
        "bin_empty": {"$binary": ""},
        "deep": {"a": {"b": {"c": {"d": {"e": "f"}}}}},
        "marker_like": {"$object": {"$date": "not a date"}},
        "unicode key ünï": 1
    })
}

#[test]
fn types_round_trip_through_json() {
    let s = Server::start();
    s.create_collection("types");
    let doc = typed_doc();
    let r = s.post_json("/types", &doc);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), doc);

    let r = s.get("/types/typed");
    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json();
    assert_eq!(got, doc);
    // serde_json compares numbers by kind; spell the critical ones out anyway.
    assert_eq!(got["big"].as_i64(), Some(i64::MAX));
    assert_eq!(got["small"].as_i64(), Some(i64::MIN));
    assert!(got["one_float"].is_f64() && !got["one_float"].is_i64());
    assert!(r.text.contains("\"one_float\":1.0"), "{}", r.text);
    assert!(r.text.contains("\"big\":9223372036854775807"), "{}", r.text);
    assert_eq!(got["tenth"].as_f64(), Some(0.1));
    assert!(got["zero"].is_i64());
    assert_eq!(got["digits_text"], "02134");
    assert_eq!(got["bin"], json!({"$binary": "AAEC"}));

    // The field order is kept (id first, then the order they were sent in).
    // The field order is kept: id first, then the fields in the order they were sent.
    let positions: Vec<usize> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(|k| format!("{}:", Json::String(k.clone())))
        .filter(|k| r.text.matches(k.as_str()).count() == 1)
        .map(|k| r.text.find(&k).unwrap())
        .collect();
    assert!(positions.len() > 10, "{}", r.text);
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "field order not kept: sent {doc}, got {}",
        r.text
    );

    // Still the same after a flush to a segment and a restart.
    s.compact("types");
    assert_eq!(s.get_doc("types", "typed"), Some(doc.clone()));
    let mut s = s;
    s.terminate();
    s.restart();
    assert_eq!(s.get_doc("types", "typed"), Some(doc));
}

#[test]
fn types_round_trip_through_xml() {
    let s = Server::start();
    s.create_collection("types");
    s.create_collection("from_xml");
    let doc = typed_doc();
    s.insert("types", &doc);
    let r = s.get_accept("/types/typed", "application/xml");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.contains("xml"));
    let back = s.post_raw("/from_xml", "application/xml", r.text.clone());
    assert_eq!(
        back.status, 201,
        "posting back:\n{}\n-> {}",
        r.text, back.text
    );
    assert_eq!(
        s.get_doc("from_xml", "typed"),
        Some(doc),
        "XML form:\n{}",
        r.text
    );
}

/// `_query` reuses a statement it prepared before (outside transactions), and prepares it
/// again once the catalog changed: `SELECT *` takes in a field first seen after the
/// first run, a plan over a dropped index is not used, and parameters still count.
#[test]
fn repeated_queries_follow_the_catalog() {
    let s = Server::start();
    let query = |sql: &str, params: Json| {
        let r = s.post_json("/docs/_query", &json!({"query": sql, "params": params}));
        assert_eq!(r.status, 200, "{sql}: {}", r.text);
        r.json()
    };
    assert_eq!(s.put_empty("/docs").status, 201);
    for i in 0..300 {
        let r = s.post_json(
            "/docs",
            &json!({"id": format!("d{i}"), "tag": format!("t{}", i % 30), "n": i}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let by_id = "SELECT * FROM docs WHERE id = $1";
    assert_eq!(
        query(by_id, json!(["d7"])),
        json!([{"id": "d7", "tag": "t7", "n": 7}])
    );
    let r = s.post_json("/docs", &json!({"id": "d1000", "tag": "t7", "extra": true}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        query(by_id, json!(["d7"])),
        json!([{"id": "d7", "tag": "t7", "n": 7, "extra": null}]),
        "a new field is a new column of SELECT *"
    );

    let by_tag = "SELECT count(*) AS c FROM docs WHERE tag = $1";
    query("CREATE INDEX docs_tag ON docs (tag)", json!([]));
    assert_eq!(query(by_tag, json!(["t7"])), json!([{"c": 11}]));
    assert_eq!(query(by_tag, json!(["t7"])), json!([{"c": 11}]));
    query("DROP INDEX docs_tag", json!([]));
    let r = s.post_json("/docs", &json!({"id": "d1001", "tag": "t7"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(query(by_tag, json!(["t7"])), json!([{"c": 12}]));

    let r = s.post_json("/docs/_query", &json!({"query": by_tag, "params": []}));
    r.assert_error(400, "22023");
}
