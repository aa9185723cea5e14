//! Answers encoded as the engine makes them (`tissdb_wire::streamed`), end to end
//! through tokio-postgres against the real binary:
//!
//! * a large answer of every common type arrives whole, in order, each value as the
//!   test computed it, in binary (tokio-postgres) and text (the simple protocol), and in
//!   pieces through a portal with a row limit; two queries in one Query message (whose
//!   answers are never streamed) each get their own;
//! * integers of a schemaless field that also holds fractions come as the column's
//!   float type;
//! * a statement that fails after thousands of its rows were encoded answers the error
//!   alone (no row), fails its transaction as any error does, and the connection and
//!   the server serve on;
//! * a prepared statement whose column changed type since Describe (the engine converts
//!   such an answer before it is sent) is refused with 22P02 where a value does not fit.

mod common;

use std::time::Duration;

use common::{Server, bounded, pg_connect};
use tokio_postgres::SimpleQueryMessage;

/// How long the body of one test may run.
const BODY_TIMEOUT: Duration = Duration::from_secs(120);

const ROWS: i32 = 20_000;

/// Row `i`'s values: (id, f, n as text, t, b, j as text).
fn expected(i: i32) -> (i32, f64, String, String, bool, serde_json::Value) {
    (
        i,
        f64::from(i) * 0.25,
        format!("{}.{:02}", i / 7, i % 100),
        format!("name {i} {}", "x".repeat((i % 13) as usize)),
        i % 3 == 0,
        serde_json::json!({"i": i, "tags": [i % 5, "t"]}),
    )
}

async fn load(c: &tokio_postgres::Client) {
    c.batch_execute(
        "CREATE TABLE wide (id integer PRIMARY KEY, f float8, n numeric, t text, b boolean, j jsonb)",
    )
    .await
    .expect("create");
    for chunk in (1..=ROWS).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|&i| {
                let (id, f, n, t, b, j) = expected(i);
                format!("({id}, {f}, {n}, '{t}', {b}, '{j}')")
            })
            .collect();
        c.batch_execute(&format!("INSERT INTO wide VALUES {}", values.join(",")))
            .await
            .expect("insert");
    }
}

#[tokio::test]
async fn large_answers_arrive_whole_in_every_protocol() {
    let server = Server::start();
    bounded("large answers", BODY_TIMEOUT, async {
        let mut c = pg_connect(&server, "").await;
        load(&c).await;
        let sql = "SELECT id, f, n::text, t, b, j FROM wide ORDER BY id";
        // Binary, through the extended protocol.
        let rows = c.query(sql, &[]).await.expect("select");
        assert_eq!(rows.len(), ROWS as usize);
        for (row, i) in rows.iter().zip(1..) {
            let (id, f, n, t, b, j) = expected(i);
            assert_eq!(row.get::<_, i32>(0), id);
            assert_eq!(row.get::<_, f64>(1), f, "row {i}");
            assert_eq!(row.get::<_, String>(2), n, "row {i}");
            assert_eq!(row.get::<_, String>(3), t, "row {i}");
            assert_eq!(row.get::<_, bool>(4), b, "row {i}");
            assert_eq!(row.get::<_, serde_json::Value>(5), j, "row {i}");
        }
        // Text, through the simple protocol: the same values.
        let text: Vec<_> = c
            .simple_query(sql)
            .await
            .expect("simple")
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(text.len(), ROWS as usize);
        for (row, i) in text.iter().zip(1..) {
            let (_, f, n, t, b, _) = expected(i);
            assert_eq!(row.get(1).map(str::parse::<f64>), Some(Ok(f)), "row {i}");
            assert_eq!(row.get(2), Some(n.as_str()), "row {i}");
            assert_eq!(row.get(3), Some(t.as_str()), "row {i}");
            assert_eq!(row.get(4), Some(if b { "t" } else { "f" }), "row {i}");
        }
        // A command and two queries in one Query message: each answer whole, in its own
        // columns.
        let messages = c
            .simple_query("SET application_name = 'batch'; SELECT id, t FROM wide WHERE id > 19990 ORDER BY id; \
                 SELECT count(*), sum(id) FROM wide")
            .await
            .expect("batch");
        let answers: Vec<Vec<Vec<String>>> = messages
            .split(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
            .map(|part| {
                part.iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).unwrap_or("").to_string()).collect())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let first: Vec<Vec<String>> = (19991..=ROWS).map(|i| vec![i.to_string(), expected(i).3]).collect();
        assert!(answers[0].is_empty(), "{:?}", answers[0]);
        assert_eq!(answers[1], first);
        let total = i64::from(ROWS) * i64::from(ROWS + 1) / 2;
        assert_eq!(answers[2], [vec![ROWS.to_string(), total.to_string()]]);
        // In pieces: a portal read 3,000 rows at a time gives the same rows.
        let tx = c.transaction().await.expect("begin");
        let stmt = tx
            .prepare("SELECT id, t FROM wide WHERE id > $1 ORDER BY id")
            .await
            .expect("prepare");
        let portal = tx.bind(&stmt, &[&100i32]).await.expect("bind");
        let mut seen = Vec::new();
        loop {
            let piece = tx.query_portal(&portal, 3000).await.expect("fetch");
            assert!(piece.len() <= 3000);
            if piece.is_empty() {
                break;
            }
            seen.extend(
                piece
                    .iter()
                    .map(|r| (r.get::<_, i32>(0), r.get::<_, String>(1))),
            );
        }
        tx.commit().await.expect("commit");
        let want: Vec<_> = (101..=ROWS).map(|i| (i, expected(i).3)).collect();
        assert_eq!(seen, want);
        // An answer of no columns, and an empty one.
        assert_eq!(
            c.query("SELECT FROM wide WHERE id < 4", &[])
                .await
                .expect("none")
                .len(),
            3
        );
        assert!(
            c.query("SELECT id FROM wide WHERE id < 0", &[])
                .await
                .expect("empty")
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn schemaless_integers_come_as_the_columns_float_type() {
    let server = Server::start();
    bounded("schemaless floats", BODY_TIMEOUT, async {
        let c = pg_connect(&server, "").await;
        c.batch_execute("CREATE COLLECTION prices")
            .await
            .expect("create");
        let values: Vec<String> = (0..3000)
            .map(|i| match i % 2 {
                0 => format!("('p{i:04}', {i})"),
                _ => format!("('p{i:04}', {i}.5)"),
            })
            .collect();
        c.batch_execute(&format!(
            "INSERT INTO prices (id, price) VALUES {}",
            values.join(",")
        ))
        .await
        .expect("insert");
        let rows = c
            .query("SELECT id, price FROM prices ORDER BY id", &[])
            .await
            .expect("select");
        assert_eq!(rows.len(), 3000);
        for (row, i) in rows.iter().zip(0..) {
            let want = if i % 2 == 0 {
                f64::from(i)
            } else {
                f64::from(i) + 0.5
            };
            assert_eq!(row.get::<_, f64>(1), want, "{}", row.get::<_, String>(0));
        }
    })
    .await;
}

#[tokio::test]
async fn a_statement_failing_midway_answers_its_error_alone() {
    let server = Server::start();
    bounded("failing midway", BODY_TIMEOUT, async {
        let mut c = pg_connect(&server, "").await;
        load(&c).await;
        // Row 15,000 divides by zero, after 14,999 rows were made.
        let failing = "SELECT id, t, 10 / (id - 15000) FROM wide ORDER BY id";
        let e = c.query(failing, &[]).await.expect_err("division by zero");
        assert_eq!(e.code().map(|c| c.code()), Some("22012"), "{e}");
        // The same through the simple protocol.
        let e = c.simple_query(failing).await.expect_err("division by zero");
        assert_eq!(e.code().map(|c| c.code()), Some("22012"), "{e}");
        // The next statement's answer is its own.
        let rows = c
            .query("SELECT id FROM wide WHERE id <= 3 ORDER BY id", &[])
            .await
            .expect("after");
        assert_eq!(
            rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // In a transaction the error fails it, as any error does.
        let tx = c.transaction().await.expect("begin");
        tx.execute("UPDATE wide SET t = 'changed' WHERE id = 1", &[])
            .await
            .expect("update");
        let e = tx.query(failing, &[]).await.expect_err("division by zero");
        assert_eq!(e.code().map(|c| c.code()), Some("22012"), "{e}");
        let e = tx
            .query("SELECT 1", &[])
            .await
            .expect_err("failed transaction");
        assert_eq!(e.code().map(|c| c.code()), Some("25P02"), "{e}");
        tx.rollback().await.expect("rollback");
        let t: String = c
            .query_one("SELECT t FROM wide WHERE id = 1", &[])
            .await
            .expect("t")
            .get(0);
        assert_eq!(t, expected(1).3);
        // Another connection saw nothing of it.
        let other = pg_connect(&server, "").await;
        let n: i64 = other
            .query_one("SELECT count(*) FROM wide", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, i64::from(ROWS));
    })
    .await;
}

#[tokio::test]
async fn prepared_columns_that_changed_type_answer_as_described() {
    let server = Server::start();
    bounded("changed columns", BODY_TIMEOUT, async {
        let c = pg_connect(&server, "").await;
        c.batch_execute("CREATE COLLECTION m; INSERT INTO m (id, v) VALUES ('a', 1), ('b', 2)")
            .await
            .expect("setup");
        let stmt = c
            .prepare("SELECT id, v FROM m ORDER BY id")
            .await
            .expect("prepare");
        let described = stmt.columns()[1].type_().clone();
        let rows = c.query(&stmt, &[]).await.expect("before");
        assert_eq!(rows.len(), 2);
        // A document whose v is text: the collection's v column changes type.
        c.batch_execute("INSERT INTO m (id, v) VALUES ('c', 'three')")
            .await
            .expect("insert");
        // Not sent as a bigint: refused with 22P02, naming the value.
        let e = c
            .query(&stmt, &[])
            .await
            .expect_err("a text value in a bigint column");
        assert_eq!(e.code().map(|c| c.code()), Some("22P02"), "{e}");
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(
            message.contains("three") && message.contains("\"v\""),
            "{message}"
        );
        assert_eq!(described, tokio_postgres::types::Type::INT8);
        // The connection serves on; a fresh statement reads all three.
        let rows = c
            .query("SELECT id, v::text FROM m ORDER BY id", &[])
            .await
            .expect("after");
        assert_eq!(rows.len(), 3);
    })
    .await;
}
