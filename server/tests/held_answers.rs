//! Answers held back and sent together (`tissdb_wire::outbox`), end to end through
//! tokio-postgres against the real binary: many connections share the server's
//! connection threads, so the extended-protocol answers of one wake-up are held and
//! leave in one submission when the thread sleeps.
//!
//! * 16 clients at once, each running prepared point reads of its own rows, every
//!   client's queries pipelined four at a time, and simple-protocol reads: each answer
//!   reaches its own client and query, in order, with the right row;
//! * answers longer than the most a connection holds (64 KiB) and short ones, mixed on
//!   the same connections, arrive whole;
//! * a client that drops its connection with answers in flight leaves the others'
//!   answers untouched, and the server keeps serving;
//! * REST: 16 keep-alive connections reading their own documents at once (GET and
//!   `_query`) each get their own.

mod common;

use std::time::Duration;

use common::{Server, bounded, pg_connect};
use futures::future::try_join_all;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::ToSql;

/// How long the body of one test may run.
const BODY_TIMEOUT: Duration = Duration::from_secs(120);

const CLIENTS: usize = 16;
const ROWS_PER_CLIENT: i64 = 50;

async fn load(server: &Server) {
    let client = pg_connect(server, "user=tester").await;
    client
        .batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, owner int, v text)")
        .await
        .expect("create");
    let insert = client
        .prepare("INSERT INTO t (id, owner, v) VALUES ($1, $2, $3)")
        .await
        .expect("prepare");
    for owner in 0..CLIENTS as i32 {
        for n in 0..ROWS_PER_CLIENT {
            let id = i64::from(owner) * 1000 + n;
            let v = format!("row {id} of client {owner}");
            client
                .execute(&insert, &[&id, &owner, &v])
                .await
                .expect("insert");
        }
    }
}

/// Runs `body` for `clients` connections at once, each with its own client and index,
/// and waits for all of them (a panic in one fails the test).
async fn each_client<F, Fut>(server: &Server, clients: i32, body: F)
where
    F: Fn(i32, tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut tasks = Vec::new();
    for owner in 0..clients {
        let client = pg_connect(server, "user=tester").await;
        tasks.push(tokio::spawn(body(owner, client)));
    }
    for task in tasks {
        task.await.expect("a client's reads");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pipelined_point_reads_each_get_their_own_answer() {
    let server = Server::start();
    bounded("held answers", BODY_TIMEOUT, async {
        load(&server).await;
        each_client(&server, CLIENTS as i32, |owner, client| async move {
            let read = client
                .prepare("SELECT id, owner, v FROM t WHERE id = $1")
                .await
                .expect("prepare");
            for round in 0..20i64 {
                // Four queries in flight on the connection at once (pipelined).
                let ids: Vec<i64> = (0..4)
                    .map(|k| i64::from(owner) * 1000 + (round * 4 + k) % ROWS_PER_CLIENT)
                    .collect();
                let params: Vec<[&(dyn ToSql + Sync); 1]> =
                    ids.iter().map(|id| [id as _]).collect();
                let rows = try_join_all(params.iter().map(|p| client.query_one(&read, p)))
                    .await
                    .expect("point reads");
                for (id, row) in ids.iter().zip(rows) {
                    assert_eq!(row.get::<_, i64>(0), *id, "the row asked for");
                    assert_eq!(row.get::<_, i32>(1), owner);
                    assert_eq!(
                        row.get::<_, String>(2),
                        format!("row {id} of client {owner}")
                    );
                }
                // The simple protocol's answers are held the same way.
                let id = ids[0];
                let messages = client
                    .simple_query(&format!("SELECT v FROM t WHERE id = {id}"))
                    .await
                    .expect("simple query");
                let values: Vec<String> = messages
                    .iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                        _ => None,
                    })
                    .collect();
                assert_eq!(values, [format!("row {id} of client {owner}")]);
            }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_and_short_answers_mixed_arrive_whole() {
    let server = Server::start();
    bounded("long answers", BODY_TIMEOUT, async {
        load(&server).await;
        each_client(&server, 8, |owner, client| async move {
            // About 800 rows of ~120 bytes: well over 64 KiB per answer.
            let long = client
                .prepare("SELECT id, v || repeat('x', 80) FROM t ORDER BY id")
                .await
                .expect("prepare");
            let short = client
                .prepare("SELECT v FROM t WHERE id = $1")
                .await
                .expect("prepare");
            // One value longer than the most a connection holds.
            let wide = client
                .prepare("SELECT repeat(v, 5000) FROM t WHERE id = $1")
                .await
                .expect("prepare");
            let id = i64::from(owner) * 1000 + 7;
            let v = format!("row {id} of client {owner}");
            let param: [&(dyn ToSql + Sync); 1] = [&id];
            for _ in 0..6 {
                let (rows, one, big) = tokio::join!(
                    client.query(&long, &[]),
                    client.query_one(&short, &param),
                    client.query_one(&wide, &param)
                );
                let big: String = big.expect("wide answer").get(0);
                assert!(big.len() > 64 << 10);
                assert_eq!(big, v.repeat(5000));
                let rows = rows.expect("long answer");
                assert_eq!(rows.len(), CLIENTS * ROWS_PER_CLIENT as usize);
                for (row, next) in rows.iter().zip(rows.iter().skip(1)) {
                    assert!(row.get::<_, i64>(0) < next.get::<_, i64>(0), "in order");
                }
                let first: String = rows[0].get(1);
                assert_eq!(first, format!("row 0 of client 0{}", "x".repeat(80)));
                assert_eq!(one.expect("short answer").get::<_, String>(0), v);
            }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_gone_with_answers_in_flight_leaves_the_others_whole() {
    let server = Server::start();
    bounded("clients leaving", BODY_TIMEOUT, async {
        load(&server).await;
        each_client(&server, 8, |owner, client| async move {
            let read = client
                .prepare("SELECT v FROM t WHERE id = $1")
                .await
                .expect("prepare");
            let id = i64::from(owner) * 1000 + 3;
            let param: [&(dyn ToSql + Sync); 1] = [&id];
            for round in 0..30 {
                if owner % 2 == 1 && round == 10 {
                    // Queries sent, connection dropped before their answers.
                    let mut pending = Box::pin(try_join_all(
                        (0..4).map(|_| client.query_one(&read, &param)),
                    ));
                    let _ = futures::poll!(pending.as_mut());
                    drop(pending);
                    drop(client);
                    return;
                }
                let row = client.query_one(&read, &param).await.expect("point read");
                assert_eq!(
                    row.get::<_, String>(0),
                    format!("row {id} of client {owner}")
                );
            }
        })
        .await;
        let client = pg_connect(&server, "user=tester").await;
        let n: i64 = client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .expect("still serving")
            .get(0);
        assert_eq!(n, CLIENTS as i64 * ROWS_PER_CLIENT);
    })
    .await;
}

#[test]
fn concurrent_rest_reads_each_get_their_own_document() {
    let server = Server::start();
    let http = common::http_client();
    let created = http
        .put(server.url("/docs"))
        .send()
        .expect("create collection");
    assert_eq!(created.status().as_u16(), 201);
    for owner in 0..CLIENTS {
        for n in 0..10 {
            let doc = serde_json::json!({"id": format!("d{owner}-{n}"), "owner": owner, "n": n});
            let posted = http
                .post(server.url("/docs"))
                .json(&doc)
                .send()
                .expect("post");
            assert_eq!(posted.status().as_u16(), 201);
        }
    }
    let base = server.base_url();
    let readers: Vec<_> = (0..CLIENTS)
        .map(|owner| {
            let base = base.clone();
            std::thread::spawn(move || {
                // One keep-alive connection per reader.
                let http = common::http_client();
                for round in 0..60 {
                    let n = round % 10;
                    let got = http
                        .get(format!("{base}/docs/d{owner}-{n}"))
                        .send()
                        .expect("get");
                    assert_eq!(got.status().as_u16(), 200);
                    let doc: serde_json::Value = got.json().expect("a JSON document");
                    assert_eq!(doc["id"], format!("d{owner}-{n}"));
                    assert_eq!(doc["owner"], owner);
                    assert_eq!(doc["n"], n);
                    // A read through `_query` (a POST) is held the same way.
                    let query = serde_json::json!({
                        "query": "SELECT n, owner FROM docs WHERE id = $1",
                        "params": [format!("d{owner}-{n}")],
                    });
                    let got = http
                        .post(format!("{base}/docs/_query"))
                        .json(&query)
                        .send()
                        .expect("_query");
                    assert_eq!(got.status().as_u16(), 200);
                    let rows: serde_json::Value = got.json().expect("JSON rows");
                    assert_eq!(rows, serde_json::json!([{"n": n, "owner": owner}]));
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().expect("a reader's documents");
    }
}
