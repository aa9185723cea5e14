//! REST transactions end to end (`/_transaction/begin|commit|rollback` and the
//! `X-Transaction-ID` header) against the real `tissdb` binary over real HTTP.

mod common;

use std::time::Duration;

use common::{Resp, Server, send};
use serde_json::{Value as Json, json};

const HEADER: &str = "X-Transaction-ID";

fn in_txn(s: &Server, txn: &str, method: &str, path: &str, body: Option<&Json>) -> Resp {
    let url = s.url(path);
    let req = match method {
        "GET" => s.client().get(url),
        "POST" => s.client().post(url),
        "PUT" => s.client().put(url),
        "DELETE" => s.client().delete(url),
        other => panic!("method {other}"),
    }
    .header(HEADER, txn);
    let req = match body {
        Some(b) => req
            .header("Content-Type", "application/json")
            .body(b.to_string()),
        None => req,
    };
    send(req)
}

fn end(s: &Server, what: &str, txn: &str) -> Resp {
    s.post_json(
        &format!("/_transaction/{what}"),
        &json!({ "transaction_id": txn }),
    )
}

fn balance(s: &Server, id: &str) -> i64 {
    s.get_doc("accounts", id).expect("account")["balance"]
        .as_i64()
        .expect("balance")
}

fn setup(s: &Server) {
    s.create_collection("accounts");
    s.create_collection("audit");
    s.insert("accounts", &json!({"id": "a", "balance": 100}));
    s.insert("accounts", &json!({"id": "b", "balance": 100}));
}

#[test]
fn a_transfer_commits_atomically_across_collections() {
    let s = Server::start();
    setup(&s);
    let t = s.begin_transaction();
    let r = in_txn(&s, &t, "PUT", "/accounts/a", Some(&json!({"balance": 60})));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = in_txn(&s, &t, "PUT", "/accounts/b", Some(&json!({"balance": 140})));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = in_txn(
        &s,
        &t,
        "POST",
        "/audit",
        Some(&json!({"id": "move1", "amount": 40})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // Inside: its own writes, by id, by listing and by query.
    let r = in_txn(&s, &t, "GET", "/accounts/a", None);
    assert_eq!(r.json()["balance"], 60);
    let r = in_txn(&s, &t, "GET", "/audit", None);
    assert_eq!(r.json()["documents"].as_array().unwrap().len(), 1);
    let r = in_txn(
        &s,
        &t,
        "POST",
        "/accounts/_query",
        Some(&json!({"query": "SELECT CAST(sum(balance) AS int8) AS total FROM accounts"})),
    );
    assert_eq!(r.json(), json!([{"total": 200}]));
    // Outside: nothing yet.
    assert_eq!(balance(&s, "a"), 100);
    assert_eq!(s.get_doc("audit", "move1"), None);
    let r = end(&s, "commit", &t);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["committed"], true);
    assert_eq!((balance(&s, "a"), balance(&s, "b")), (60, 140));
    assert_eq!(s.get_doc("audit", "move1").unwrap()["amount"], 40);
    // The id is gone.
    end(&s, "commit", &t).assert_error(404, "25P01");
    in_txn(&s, &t, "GET", "/accounts/a", None).assert_error(404, "25P01");
}

#[test]
fn rollback_forgets_everything_and_sql_writes_join_the_transaction() {
    let s = Server::start();
    setup(&s);
    let t = s.begin_transaction();
    let r = in_txn(
        &s,
        &t,
        "POST",
        "/accounts/_query",
        Some(&json!({"query": "UPDATE accounts SET balance = 0"})),
    );
    assert_eq!(r.json()["affected"], 2, "{}", r.text);
    let r = in_txn(&s, &t, "DELETE", "/accounts/a", None);
    assert_eq!(r.status, 200, "{}", r.text);
    in_txn(&s, &t, "GET", "/accounts/a", None).assert_error(404, "02000");
    // The header may also name the transaction to end.
    let r = send(
        s.client()
            .post(s.url("/_transaction/rollback"))
            .header(HEADER, &t),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["rolled_back"], true);
    assert_eq!((balance(&s, "a"), balance(&s, "b")), (100, 100));
}

#[test]
fn a_conflicting_commit_gets_409_40001_and_writes_nothing() {
    let s = Server::start();
    setup(&s);
    let t1 = s.begin_transaction();
    let t2 = s.begin_transaction();
    assert_eq!(
        in_txn(&s, &t1, "GET", "/accounts/a", None).json()["balance"],
        100
    );
    assert_eq!(
        in_txn(&s, &t2, "GET", "/accounts/a", None).json()["balance"],
        100
    );
    in_txn(
        &s,
        &t1,
        "PUT",
        "/accounts/a",
        Some(&json!({"balance": 101})),
    );
    in_txn(
        &s,
        &t2,
        "PUT",
        "/accounts/a",
        Some(&json!({"balance": 110})),
    );
    in_txn(&s, &t2, "PUT", "/accounts/b", Some(&json!({"balance": 0})));
    assert_eq!(end(&s, "commit", &t1).status, 200);
    let msg = end(&s, "commit", &t2).assert_error(409, "40001");
    assert!(msg.contains("retry"), "{msg}");
    assert_eq!((balance(&s, "a"), balance(&s, "b")), (101, 100));
}

#[test]
fn a_failed_request_leaves_the_transaction_usable() {
    let s = Server::start();
    setup(&s);
    let t = s.begin_transaction();
    in_txn(
        &s,
        &t,
        "POST",
        "/accounts",
        Some(&json!({"id": "a", "balance": 1})),
    )
    .assert_error(409, "23505");
    in_txn(
        &s,
        &t,
        "POST",
        "/accounts/_query",
        Some(&json!({"query": "SELECT 1/0 AS x"})),
    )
    .assert_error(400, "22012");
    in_txn(
        &s,
        &t,
        "POST",
        "/accounts/_query",
        Some(&json!({"query": "COMMIT"})),
    )
    .assert_error(400, "25001");
    let r = in_txn(
        &s,
        &t,
        "POST",
        "/accounts",
        Some(&json!({"id": "c", "balance": 5})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(end(&s, "commit", &t).status, 200);
    assert_eq!(balance(&s, "c"), 5);
}

#[test]
fn unknown_ids_and_bad_requests() {
    let s = Server::start();
    setup(&s);
    in_txn(&s, "no-such-id", "GET", "/accounts/a", None).assert_error(404, "25P01");
    in_txn(
        &s,
        "no-such-id",
        "PUT",
        "/accounts/a",
        Some(&json!({"balance": 0})),
    )
    .assert_error(404, "25P01");
    end(&s, "commit", "no-such-id").assert_error(404, "25P01");
    end(&s, "rollback", "no-such-id").assert_error(404, "25P01");
    s.post_raw("/_transaction/commit", "application/json", "")
        .assert_error(400, "22023");
    s.post_raw("/_transaction/commit", "application/json", "{oops")
        .assert_error(400, "22032");
    s.post_json("/_transaction/commit", &json!({"id": 1}))
        .assert_error(400, "22023");
    // Nothing changed, and the server still serves.
    assert_eq!(balance(&s, "a"), 100);
}

#[test]
fn an_idle_transaction_expires_and_is_rolled_back() {
    let s = Server::start_with_env(&[("TISSDB_TRANSACTION_IDLE_TIMEOUT", "1")]);
    setup(&s);
    let t = s.begin_transaction();
    in_txn(&s, &t, "PUT", "/accounts/a", Some(&json!({"balance": 0})));
    // Used within the timeout, it lives on.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        in_txn(&s, &t, "GET", "/accounts/a", None).json()["balance"],
        0
    );
    std::thread::sleep(Duration::from_millis(2500));
    in_txn(&s, &t, "GET", "/accounts/a", None).assert_error(404, "25P01");
    end(&s, "commit", &t).assert_error(404, "25P01");
    assert_eq!(balance(&s, "a"), 100);
    assert!(
        s.all_stderr()
            .contains("rolled back an idle REST transaction"),
        "the reaper logs what it rolls back"
    );
}

#[test]
fn a_transaction_over_its_size_limit_fails_clearly() {
    let s = Server::start_with_env(&[("TISSDB_MAX_TRANSACTION_SIZE", "1000")]);
    setup(&s);
    let t = s.begin_transaction();
    let big = "x".repeat(2000);
    in_txn(
        &s,
        &t,
        "POST",
        "/audit",
        Some(&json!({"id": "big", "pad": big})),
    )
    .assert_error(413, "54000");
    // Small writes still fit; the transaction commits them.
    let r = in_txn(&s, &t, "POST", "/audit", Some(&json!({"id": "small"})));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(end(&s, "commit", &t).status, 200);
    assert!(s.get_doc("audit", "small").is_some());
    assert_eq!(s.get_doc("audit", "big"), None);
}
