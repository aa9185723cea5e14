//! `POST /_graph/<g>/_match` end to end: a property graph over collections, pattern
//! matches over REST, checked against the same question asked with SQL joins, and bad
//! requests answered with JSON errors.

mod common;

use common::Server;
use serde_json::{Value as Json, json};

fn sql(s: &Server, collection: &str, query: &str) -> Json {
    let r = s.post_json(&format!("/{collection}/_query"), &json!({ "query": query }));
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    r.json()
}

fn setup(s: &Server) {
    s.create_collection("people");
    s.create_collection("follows");
    for (id, name) in [("ann", "Ann"), ("bob", "Bob"), ("cy", "Cy"), ("dee", "Dee")] {
        s.insert("people", &json!({"id": id, "name": name}));
    }
    for (i, (a, b)) in [("ann", "bob"), ("bob", "cy"), ("cy", "ann"), ("cy", "dee")]
        .iter()
        .enumerate()
    {
        s.insert(
            "follows",
            &json!({"id": format!("f{i}"), "src": a, "dst": b}),
        );
    }
    sql(
        s,
        "people",
        "CREATE PROPERTY GRAPH net VERTEX TABLES (people LABEL person)
         EDGE TABLES (follows SOURCE KEY (src) REFERENCES people (id)
                      DESTINATION KEY (dst) REFERENCES people (id))",
    );
}

#[test]
fn pattern_matches_over_rest_agree_with_sql() {
    let s = Server::start();
    setup(&s);
    let r = s.post_json(
        "/_graph/net/_match",
        &json!({
            "match": "(a IS person)-[IS follows]->(b IS person)",
            "where": "a.name <> 'Dee'",
            "columns": ["a.name AS follower", "b.name AS followed"]
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mut got: Vec<(String, String)> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["follower"].as_str().unwrap().into(),
                o["followed"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = sql(
        &s,
        "people",
        "SELECT a.name AS x, b.name AS y FROM people a JOIN follows f ON f.src = a.id JOIN people b ON b.id = f.dst",
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|o| (o["x"].as_str().unwrap().into(), o["y"].as_str().unwrap().into()))
    .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(got.len(), 4);

    // Who Ann reaches in 1 to 3 hops, distinct.
    let r = s.post_json(
        "/_graph/net/_match",
        &json!({
            "match": "(a IS person)-[IS follows]->{1,3}(b IS person)",
            "where": "a.id = 'ann'",
            "columns": ["b.id AS reached"]
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mut reached: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["reached"].as_str().unwrap().to_string())
        .collect();
    reached.sort();
    reached.dedup();
    assert_eq!(reached, ["ann", "bob", "cy", "dee"]);
}

#[test]
fn bad_graph_requests_get_json_errors() {
    let s = Server::start();
    setup(&s);
    let cols = json!(["a.id"]);
    s.post_json(
        "/_graph/nope/_match",
        &json!({"match": "(a IS person)", "columns": cols}),
    )
    .assert_error(404, "42704");
    s.post_json(
        "/_graph/net/_match",
        &json!({"match": "(a IS robot)", "columns": cols}),
    )
    .assert_error(404, "42704");
    s.post_json("/_graph/net/_match", &json!({"columns": cols}))
        .assert_error(400, "22023");
    s.post_json(
        "/_graph/net/_match",
        &json!({"match": "(a IS person)", "columns": []}),
    )
    .assert_error(400, "22023");
    s.post_json(
        "/_graph/net/_match",
        &json!({"match": "(a IS person)", "columns": cols, "limit": 3}),
    )
    .assert_error(400, "22023");
    s.post_json(
        "/_graph/net/_match",
        &json!({"match": "(a IS person)) AS g; DROP TABLE people; --", "columns": cols}),
    )
    .assert_error(400, "22023");
    s.post_raw("/_graph/net/_match", "application/json", "{nope")
        .assert_error(400, "22032");
    // Nothing changed; the graph still answers.
    let r = s.post_json(
        "/_graph/net/_match",
        &json!({"match": "(a IS person)", "columns": ["a.id"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json().as_array().unwrap().len(), 4);
}

#[test]
fn references_expand_over_rest_and_join_in_sql() {
    let s = Server::start();
    s.create_collection("customers");
    s.create_collection("orders");
    s.insert(
        "customers",
        &json!({"id": "c1", "name": "Ann", "city": "Oslo"}),
    );
    s.insert(
        "orders",
        &json!({"id": "o1", "total": 30, "customer": {"$ref": "customers/c1"}}),
    );
    s.insert(
        "orders",
        &json!({"id": "o2", "total": 5, "customer": {"$ref": "customers/gone"}}),
    );
    // Stored as written.
    let raw = s.get_doc("orders", "o1").unwrap();
    assert_eq!(raw["customer"], json!({"$ref": "customers/c1"}));
    let r = s.get("/orders/o1?expand=customer");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"id": "o1", "total": 30, "customer": {"id": "c1", "name": "Ann", "city": "Oslo"}})
    );
    // A dangling reference expands to null; a field that is no reference stays.
    let r = s.get("/orders/o2?expand=customer,total");
    assert_eq!(r.json()["customer"], Json::Null);
    assert_eq!(r.json()["total"], 5);
    s.get("/orders/o1?expand_all=1").assert_error(400, "22023");
    // Followed in SQL with a join on the reference's id.
    let rows = sql(
        &s,
        "orders",
        "SELECT o.id, c.name, ref_collection(o.customer) AS coll FROM orders o
         LEFT JOIN customers c ON c.id = ref_id(o.customer) ORDER BY o.id",
    );
    assert_eq!(
        rows,
        json!([
            {"id": "o1", "name": "Ann", "coll": "customers"},
            {"id": "o2", "name": null, "coll": "customers"}
        ])
    );
}
