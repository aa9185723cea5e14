//! COPY end to end: the real `tissdb` binary and tokio-postgres's `copy_in` / `copy_out`
//! (which prepare the COPY and run it through the extended protocol).
//!
//! * CSV and text format into a typed table and back out, with HEADER, DELIMITER, NULL
//!   and QUOTE, and values holding commas, quotes, tabs, backslashes and line breaks;
//! * a schemaless collection: header columns become fields, typed without loss, `id`
//!   generated when absent;
//! * bad data: a bad value, a missing or extra column, a duplicate key (in the input or
//!   against stored rows), an unknown table or column, data over `max_copy_size`. Each
//!   fails with PostgreSQL's SQLSTATE, the line in CONTEXT, stores nothing, and the
//!   connection goes on serving;
//! * a load large enough to be written in several WAL batches, and COPY inside a
//!   transaction block that is rolled back.
//!
//! psql's `\copy` (the simple protocol) is in tests/psql/copy.sql.

mod common;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use common::Server;
use futures::{SinkExt, TryStreamExt};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// How long the body of one test may run.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

async fn bounded<F: Future>(what: &str, body: F) -> F::Output {
    common::bounded(what, BODY_TIMEOUT, body).await
}

async fn connect(s: &Server) -> Client {
    common::pg_connect(s, "user=copy_tester").await
}

/// Sends `chunks` as the data of `sql` (a COPY FROM STDIN); the row count or the error.
async fn copy_in(c: &Client, sql: &str, chunks: &[&[u8]]) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in::<_, Bytes>(sql).await?;
    futures::pin_mut!(sink);
    for chunk in chunks {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.finish().await
}

/// Everything a COPY TO STDOUT sends, as text.
async fn copy_out(c: &Client, sql: &str) -> String {
    let stream = c
        .copy_out(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("copy out data");
    String::from_utf8(chunks.concat()).expect("COPY data is UTF-8")
}

/// The SQLSTATE and CONTEXT of a failed COPY.
fn code_and_context(e: &tokio_postgres::Error) -> (SqlState, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    (
        db.code().clone(),
        db.where_().unwrap_or_default().to_string(),
    )
}

/// The message of a server error.
fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| panic!("not a server error: {e}"))
}

/// Rows of a simple query, every value as text (NULL as `NULL`), cells joined by `|`.
async fn rows(c: &Client, sql: &str) -> Vec<String> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

async fn count(c: &Client, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    c.query_one(sql.as_str(), &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The connection still answers after a failed COPY.
async fn still_serving(c: &Client) {
    let one: i32 = c.query_one("SELECT 1::int4", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

const ITEMS: &str = "CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric(10,2), \
                     qty integer NOT NULL DEFAULT 7, note text)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_into_a_typed_table_and_back_out() {
    let s = Server::start();
    bounded("csv round trip", async {
        let c = connect(&s).await;
        c.batch_execute(ITEMS).await.unwrap();
        // Header, quoted commas, doubled quotes, a line break inside quotes, an empty
        // unquoted field (NULL) and a quoted empty one (empty string); the data arrives
        // in chunks that cut records in the middle.
        let data = "id,name,price,qty,note\n\
                    1,\"Widget, large\",19.99,3,\"say \"\"hi\"\"\"\n\
                    2,Gadget,5,4,\"two\nlines\"\n\
                    3,,0.5,5,\"\"\n";
        let (a, b) = data.as_bytes().split_at(37);
        let n = copy_in(
            &c,
            "COPY items FROM STDIN WITH (FORMAT csv, HEADER true)",
            &[a, b],
        )
        .await
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            rows(
                &c,
                "SELECT id, name, price, qty, note, note IS NULL FROM items ORDER BY id"
            )
            .await,
            vec![
                "1|Widget, large|19.99|3|say \"hi\"|f",
                "2|Gadget|5.00|4|two\nlines|f",
                "3|NULL|0.50|5||f",
            ]
        );
        // A column list: the others take their defaults (qty DEFAULT 7) or NULL.
        let n = copy_in(&c, "COPY items (id, name) FROM STDIN CSV", &[b"4,Thing\n"])
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            rows(&c, "SELECT qty, price IS NULL FROM items WHERE id = 4").await,
            vec!["7|t"]
        );
        // Out again, CSV with a header: quoted exactly where needed.
        assert_eq!(
            copy_out(&c, "COPY items TO STDOUT WITH (FORMAT csv, HEADER)").await,
            "id,name,price,qty,note\n\
             1,\"Widget, large\",19.99,3,\"say \"\"hi\"\"\"\n\
             2,Gadget,5.00,4,\"two\nlines\"\n\
             3,,0.50,5,\"\"\n\
             4,Thing,,7,\n"
        );
        // Text format: \N for NULL, escapes for the line break and tabs.
        assert_eq!(
            copy_out(
                &c,
                "COPY (SELECT id, note FROM items ORDER BY id) TO STDOUT"
            )
            .await,
            "1\tsay \"hi\"\n2\ttwo\\nlines\n3\t\n4\t\\N\n"
        );
        // The legacy spelling, another delimiter and quote character.
        assert_eq!(
            copy_out(
                &c,
                "COPY items (id, name) TO STDOUT WITH DELIMITER ';' CSV HEADER QUOTE ''''"
            )
            .await,
            "id;name\n1;Widget, large\n2;Gadget\n3;\n4;Thing\n"
        );
        // What went out comes back in, into a second table, unchanged.
        c.batch_execute(&ITEMS.replace("items", "items2"))
            .await
            .unwrap();
        let csv = copy_out(&c, "COPY items TO STDOUT WITH (FORMAT csv)").await;
        let n = copy_in(
            &c,
            "COPY items2 FROM STDIN WITH (FORMAT csv)",
            &[csv.as_bytes()],
        )
        .await
        .unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            copy_out(&c, "COPY items2 TO STDOUT WITH (FORMAT csv)").await,
            csv
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_format_with_a_delimiter_and_a_null_string() {
    let s = Server::start();
    bounded("text format", async {
        let c = connect(&s).await;
        c.batch_execute("CREATE TABLE t (id integer PRIMARY KEY, a text, b text)")
            .await
            .unwrap();
        // `|` separates, `nil` is NULL, `\|` is a literal bar, `\t` `\n` `\\` escapes,
        // `\N` is just text here; the last line has no line break.
        let data = b"1|x\\|y|nil\n2|tab\\there|back\\\\slash\n3|\\N|line\\nbreak";
        let n = copy_in(
            &c,
            "COPY t FROM STDIN WITH (DELIMITER '|', NULL 'nil')",
            &[data],
        )
        .await
        .unwrap();
        assert_eq!(n, 3);
        let got: Vec<(i32, Option<String>, Option<String>)> = c
            .query("SELECT id, a, b FROM t ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Some("x|y".into()), None),
                (2, Some("tab\there".into()), Some("back\\slash".into())),
                (3, Some("N".into()), Some("line\nbreak".into())),
            ]
        );
        assert_eq!(
            copy_out(&c, "COPY t TO STDOUT WITH (DELIMITER '|', NULL 'nil')").await,
            "1|x\\|y|nil\n2|tab\\there|back\\\\slash\n3|N|line\\nbreak\n"
        );
        // The end-of-data marker ends the data; what follows it is ignored.
        let n = copy_in(&c, "COPY t FROM STDIN", &[b"4\ta\tb\n\\.\n5\tc\td\n"])
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(count(&c, "t").await, 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schemaless_collection_takes_the_header_columns_typed_without_loss() {
    let s = Server::start();
    bounded("schemaless", async {
        let c = connect(&s).await;
        c.batch_execute("CREATE COLLECTION products").await.unwrap();
        let data = "id,name,zip,price,stock,on_sale,released\n\
                    p1,Lamp,02134,1.50,42,true,2023-10-26T10:00:00Z\n\
                    p2,Desk,02139,199.99,0,false,\n";
        let n = copy_in(
            &c,
            "COPY products FROM STDIN WITH (FORMAT csv, HEADER)",
            &[data.as_bytes()],
        )
        .await
        .unwrap();
        assert_eq!(n, 2);
        // zip keeps its leading zero (text), price is numeric, stock an integer,
        // on_sale a boolean, released a timestamp (the empty field is NULL).
        let r = c
            .query_one(
                "SELECT name, zip, price, stock, on_sale, released IS NULL FROM products WHERE id = 'p1'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.get::<_, String>(0), "Lamp");
        assert_eq!(r.get::<_, String>(1), "02134");
        assert_eq!(r.get::<_, f64>(2), 1.5);
        assert_eq!(r.get::<_, i64>(3), 42);
        assert!(r.get::<_, bool>(4));
        assert!(!r.get::<_, bool>(5));
        assert_eq!(
            rows(&c, "SELECT id FROM products WHERE price > 100 AND NOT on_sale").await,
            vec!["p2"]
        );
        // No id column: each row gets a generated UUID; the column list names fields.
        let n = copy_in(
            &c,
            "COPY products (name, stock) FROM STDIN",
            &[b"Chair\t5\nStool\t\\N\n"],
        )
        .await
        .unwrap();
        assert_eq!(n, 2);
        let ids: Vec<String> = c
            .query(
                "SELECT id FROM products WHERE name IN ('Chair', 'Stool')",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.iter().all(|id| common::is_uuid_v4(id)), "{ids:?}");
        assert_eq!(count(&c, "products").await, 4);
        assert_eq!(
            copy_out(&c, "COPY (SELECT id, zip, stock FROM products WHERE id LIKE 'p%' ORDER BY id) TO STDOUT WITH (FORMAT csv)")
                .await,
            "p1,02134,42\np2,02139,0\n"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_names_its_line_and_nothing_is_stored() {
    let s = Server::start();
    bounded("bad rows", async {
        let c = connect(&s).await;
        c.batch_execute(ITEMS).await.unwrap();
        // Line 3 (the header is line 1) has a price that is not a number.
        let data = "id,name,price\n1,a,1.00\n2,b,cheap\n3,c,3.00\n";
        let e = copy_in(
            &c,
            "COPY items (id, name, price) FROM STDIN WITH (FORMAT csv, HEADER)",
            &[data.as_bytes()],
        )
        .await
        .unwrap_err();
        let (code, context) = code_and_context(&e);
        assert_eq!(code, SqlState::INVALID_TEXT_REPRESENTATION, "{e:?}");
        assert_eq!(context, "COPY items, line 3, column price: \"cheap\"");
        assert_eq!(count(&c, "items").await, 0);
        still_serving(&c).await;

        // A missing and an extra column: 22P04, bad COPY file format.
        let e = copy_in(&c, "COPY items (id, name) FROM STDIN", &[b"1\ta\n2\n"])
            .await
            .unwrap_err();
        let (code, context) = code_and_context(&e);
        assert_eq!(code, SqlState::BAD_COPY_FILE_FORMAT);
        assert_eq!(context, "COPY items, line 2");
        assert_eq!(message(&e), "missing data for column \"name\"");
        let e = copy_in(&c, "COPY items (id) FROM STDIN CSV", &[b"1\n2\n3,x\n"])
            .await
            .unwrap_err();
        let (code, context) = code_and_context(&e);
        assert_eq!(code, SqlState::BAD_COPY_FILE_FORMAT);
        assert_eq!(context, "COPY items, line 3");
        // An unterminated quote at the end of the data.
        let e = copy_in(&c, "COPY items (id, name) FROM STDIN CSV", &[b"1,\"open\n"])
            .await
            .unwrap_err();
        assert_eq!(code_and_context(&e).0, SqlState::BAD_COPY_FILE_FORMAT);
        // NOT NULL: a NULL for qty fails on its line.
        let e = copy_in(&c, "COPY items (id, qty) FROM STDIN", &[b"1\t1\n2\t\\N\n"])
            .await
            .unwrap_err();
        let (code, context) = code_and_context(&e);
        assert_eq!(code, SqlState::NOT_NULL_VIOLATION);
        assert_eq!(context, "COPY items, line 2");
        // Not UTF-8.
        let e = copy_in(&c, "COPY items (id, name) FROM STDIN", &[b"1\t\xff\xfe\n"])
            .await
            .unwrap_err();
        assert_eq!(
            code_and_context(&e).0,
            SqlState::CHARACTER_NOT_IN_REPERTOIRE
        );
        assert_eq!(count(&c, "items").await, 0);
        // The client gives up: 57014, nothing stored.
        {
            let sink = c
                .copy_in::<_, Bytes>("COPY items (id) FROM STDIN")
                .await
                .unwrap();
            futures::pin_mut!(sink);
            sink.send(Bytes::from_static(b"1\n2\n")).await.unwrap();
            // Dropped without finish(): tokio-postgres sends CopyFail.
        }
        assert_eq!(count(&c, "items").await, 0);
        still_serving(&c).await;
        // After all that, a good COPY works.
        let n = copy_in(&c, "COPY items (id) FROM STDIN", &[b"1\n2\n"])
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(count(&c, "items").await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_fail_with_23505_and_nothing_is_stored() {
    let s = Server::start();
    bounded("duplicates", async {
        let c = connect(&s).await;
        c.batch_execute(ITEMS).await.unwrap();
        c.batch_execute("CREATE COLLECTION docs").await.unwrap();
        c.batch_execute("INSERT INTO items (id, name) VALUES (10, 'kept')")
            .await
            .unwrap();
        // Twice in the input: the second occurrence's line.
        let e = copy_in(&c, "COPY items (id) FROM STDIN", &[b"1\n2\n1\n3\n"])
            .await
            .unwrap_err();
        let (code, context) = code_and_context(&e);
        assert_eq!(code, SqlState::UNIQUE_VIOLATION);
        assert_eq!(context, "COPY items, line 3");
        // Falling ids, then one of them again (12 and 102 rise by length, then bytes).
        let e = copy_in(&c, "COPY items (id) FROM STDIN", &[b"12\n102\n31\n7\n31\n"])
            .await
            .unwrap_err();
        assert_eq!(
            code_and_context(&e),
            (SqlState::UNIQUE_VIOLATION, "COPY items, line 5".to_string())
        );
        // Against a stored row: found when the data is complete, still nothing written.
        let e = copy_in(&c, "COPY items (id) FROM STDIN", &[b"4\n5\n10\n6\n"])
            .await
            .unwrap_err();
        let (code, context) = code_and_context(&e);
        assert_eq!(code, SqlState::UNIQUE_VIOLATION);
        assert_eq!(context, "COPY items, line 3");
        assert_eq!(
            rows(&c, "SELECT id, name FROM items").await,
            vec!["10|kept"]
        );
        // The same in a schemaless collection, by `id`.
        copy_in(&c, "COPY docs (id, v) FROM STDIN", &[b"a\t1\n"])
            .await
            .unwrap();
        let e = copy_in(&c, "COPY docs (id, v) FROM STDIN", &[b"b\t2\na\t3\n"])
            .await
            .unwrap_err();
        assert_eq!(code_and_context(&e).0, SqlState::UNIQUE_VIOLATION);
        assert_eq!(rows(&c, "SELECT id, v FROM docs").await, vec!["a|1"]);
        still_serving(&c).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tables_columns_and_options_are_refused() {
    let s = Server::start();
    bounded("unknown names", async {
        let c = connect(&s).await;
        c.batch_execute(ITEMS).await.unwrap();
        // Refused before copy mode starts: sent through the simple protocol, since
        // tokio-postgres's copy_in loses its connection when a COPY fails before
        // CopyInResponse (it sends a second Sync; rust-postgres/rust-postgres#1337),
        // against PostgreSQL as well.
        let code = |r: Result<(), tokio_postgres::Error>| r.unwrap_err().code().cloned();
        assert_eq!(
            code(c.batch_execute("COPY nosuch FROM STDIN").await),
            Some(SqlState::UNDEFINED_TABLE)
        );
        assert_eq!(
            code(c.batch_execute("COPY items (id, nope) FROM STDIN").await),
            Some(SqlState::UNDEFINED_COLUMN)
        );
        let e = c.copy_out("COPY nosuch TO STDOUT").await.err().unwrap();
        assert_eq!(e.code(), Some(&SqlState::UNDEFINED_TABLE));
        let e = c
            .copy_out("COPY items (nope) TO STDOUT")
            .await
            .err()
            .unwrap();
        assert_eq!(e.code(), Some(&SqlState::UNDEFINED_COLUMN));
        // Server-side files and binary format are not offered.
        let e = c
            .batch_execute("COPY items FROM '/etc/passwd'")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
        assert_eq!(
            code(
                c.batch_execute("COPY items FROM STDIN WITH (FORMAT binary)")
                    .await
            ),
            Some(SqlState::FEATURE_NOT_SUPPORTED)
        );
        // Bad option values, as PostgreSQL words them.
        let e = c
            .batch_execute("COPY items FROM STDIN WITH (FORMAT csv, DELIMITER ',', QUOTE ',')")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
        assert_eq!(message(&e), "COPY delimiter and quote must be different");
        // COPY to or from the client must be alone in its query string.
        let e = c
            .batch_execute("SELECT 1; COPY items TO STDOUT")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
        still_serving(&c).await;
        assert_eq!(count(&c, "items").await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_load_is_written_in_batches_and_a_rolled_back_copy_leaves_nothing() {
    let s = Server::start();
    bounded("large load", async {
        let c = connect(&s).await;
        c.batch_execute("CREATE TABLE big (id integer PRIMARY KEY, pad text, n integer)")
            .await
            .unwrap();
        // 120k rows of ~100 bytes: more than one WAL batch (8 MiB), sent in 64 KiB chunks.
        let rows_n = 120_000;
        let pad = "x".repeat(80);
        let mut data = String::new();
        for i in 1..=rows_n {
            data.push_str(&format!("{i},{pad},{}\n", i % 97));
        }
        let chunks: Vec<&[u8]> = data.as_bytes().chunks(64 << 10).collect();
        let n = copy_in(&c, "COPY big FROM STDIN CSV", &chunks)
            .await
            .unwrap();
        assert_eq!(n, rows_n);
        let expected_sum: u64 = (1..=rows_n).map(|i| i % 97).sum();
        assert_eq!(
            rows(&c, "SELECT count(*), sum(n), min(id), max(id) FROM big").await,
            vec![format!("{rows_n}|{expected_sum}|1|{rows_n}")]
        );

        // In a transaction block the rows are the transaction's: ROLLBACK drops them.
        c.batch_execute("BEGIN").await.unwrap();
        let n = copy_in(&c, "COPY big FROM STDIN CSV", &[b"-1,a,1\n-2,b,2\n"])
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(count(&c, "big WHERE id < 0").await, 2);
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(count(&c, "big WHERE id < 0").await, 0);
        // A failed COPY fails the block, as any failed statement does.
        c.batch_execute("BEGIN").await.unwrap();
        copy_in(&c, "COPY big FROM STDIN CSV", &[b"-3,a,oops\n"])
            .await
            .unwrap_err();
        let e = c.batch_execute("SELECT 1").await.unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(count(&c, "big").await, rows_n as i64);
    })
    .await;
}

/// A plain table's rows are written in the form they were validated in; a table with
/// an index gets its index entries. Either way the index answers as the table does,
/// whether it was made before the load or after it, and all of it survives kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_feed_indexes_made_before_and_after_them() {
    let mut s = Server::start();
    bounded("indexes", async {
        let c = connect(&s).await;
        c.batch_execute(
            "CREATE TABLE plain (id integer PRIMARY KEY, brand text, n integer DEFAULT 7);
             CREATE TABLE indexed (id integer PRIMARY KEY, brand text, n integer DEFAULT 7);
             CREATE INDEX indexed_brand ON indexed (brand);",
        )
        .await
        .unwrap();
        let mut data = String::new();
        for i in 1..=3000 {
            data.push_str(&format!("{i},b{}\n", i % 30));
        }
        for t in ["plain", "indexed"] {
            let sql = format!("COPY {t} (id, brand) FROM STDIN CSV");
            assert_eq!(copy_in(&c, &sql, &[data.as_bytes()]).await.unwrap(), 3000);
        }
        c.batch_execute("CREATE INDEX plain_brand ON plain (brand)")
            .await
            .unwrap();
    })
    .await;
    s.kill_9();
    s.restart();
    bounded("indexes after kill -9", async {
        let c = connect(&s).await;
        for t in ["plain", "indexed"] {
            let plan = rows(
                &c,
                &format!("EXPLAIN SELECT id FROM {t} WHERE brand = 'b7'"),
            )
            .await;
            assert!(plan.iter().any(|l| l.contains("Index")), "{t}: {plan:?}");
            assert_eq!(
                rows(
                    &c,
                    &format!("SELECT count(*), sum(n), min(id) FROM {t} WHERE brand = 'b7'")
                )
                .await,
                vec!["100|700|7"],
                "{t}"
            );
            assert_eq!(
                rows(&c, &format!("SELECT brand, n FROM {t} WHERE id = 2999")).await,
                vec!["b29|7"],
                "{t}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_data_over_max_copy_size_is_refused_with_54000() {
    let s = Server::start_with_env(&[("TISSDB_MAX_COPY_SIZE", "1000")]);
    bounded("max_copy_size", async {
        let c = connect(&s).await;
        c.batch_execute("CREATE TABLE t (id integer PRIMARY KEY, pad text)")
            .await
            .unwrap();
        let small = "1,a\n2,b\n";
        assert_eq!(
            copy_in(&c, "COPY t FROM STDIN CSV", &[small.as_bytes()])
                .await
                .unwrap(),
            2
        );
        let big: String = (10..200)
            .map(|i| format!("{i},{}\n", "y".repeat(20)))
            .collect();
        let e = copy_in(&c, "COPY t FROM STDIN CSV", &[big.as_bytes()])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::PROGRAM_LIMIT_EXCEEDED));
        assert!(message(&e).contains("max_copy_size"), "{e:?}");
        assert_eq!(count(&c, "t").await, 2);
        still_serving(&c).await;
    })
    .await;
}

/// The segment files in the data directory that the manifest does not name; compaction
/// writes its output before the manifest names it, so this waits a little for those.
async fn files_no_manifest_names(dir: &std::path::Path) -> Vec<String> {
    let mut strays = Vec::new();
    for _ in 0..100 {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("MANIFEST")).unwrap()).unwrap();
        let named: Vec<String> = manifest["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| format!("{:012}.seg", id.as_u64().unwrap()))
            .collect();
        strays = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".seg") && !named.contains(n))
            .collect();
        if strays.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    strays
}

/// `n` CSV rows `id,pad,id % 97` for ids `from..from + n`, ~100 bytes each.
fn padded_rows(from: u64, n: u64) -> String {
    let pad = "p".repeat(80);
    (from..from + n)
        .map(|i| format!("{i},{pad},{}\n", i % 97))
        .collect()
}

/// A COPY into `bulk` of 150k padded rows from id `from`, then `last`, which must fail:
/// its error, and the data sent.
async fn failing_load(c: &Client, from: u64, last: &str) -> (tokio_postgres::Error, String) {
    let mut data = padded_rows(from, 150_000);
    data.push_str(last);
    let chunks: Vec<&[u8]> = data.as_bytes().chunks(64 << 10).collect();
    let e = copy_in(c, "COPY bulk FROM STDIN CSV", &chunks)
        .await
        .unwrap_err();
    (e, data)
}

/// An autocommit COPY into a table without index is a bulk load: its rows become
/// segment files while the data arrives, named by the manifest only once every row is
/// valid. Loads of several runs (above 8 MiB) are checked: all rows readable, a row
/// deleted just before the load (whose tombstone is still in the memtable) loaded again,
/// nothing left of a load that failed or that the client abandoned, a transaction that
/// read the table before a load failing its commit, and all of it after kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_is_all_or_nothing_and_survives_kill_9() {
    let mut s = Server::start();
    let dir = s.data_dir().to_path_buf();
    let rows_n: u64 = 200_000;
    let expected_sum: u64 = (10..10 + rows_n).map(|i| i % 97).sum::<u64>() + 5 + 6;
    let summary = format!("{}|{expected_sum}|5|{}", rows_n + 2, 9 + rows_n);
    bounded("bulk load", async {
        let c = connect(&s).await;
        let other = connect(&s).await;
        c.batch_execute(
            "CREATE TABLE bulk (id integer PRIMARY KEY, pad text, n integer);
             INSERT INTO bulk VALUES (5, 'old', 1), (6, 'kept', 6);
             DELETE FROM bulk WHERE id = 5;",
        )
        .await
        .unwrap();
        // A transaction that reads the table before the load cannot commit after it.
        other.batch_execute("BEGIN").await.unwrap();
        assert_eq!(count(&other, "bulk").await, 1);

        let mut data = padded_rows(10, rows_n);
        data.push_str("5,again,5\n");
        let chunks: Vec<&[u8]> = data.as_bytes().chunks(64 << 10).collect();
        let n = copy_in(&c, "COPY bulk FROM STDIN CSV", &chunks)
            .await
            .unwrap();
        assert_eq!(n, rows_n + 1);
        assert_eq!(
            rows(&c, "SELECT count(*), sum(n), min(id), max(id) FROM bulk").await,
            vec![summary.clone()]
        );
        assert_eq!(
            rows(&c, "SELECT pad, n FROM bulk WHERE id IN (5, 6) ORDER BY id").await,
            vec!["again|5", "kept|6"]
        );
        let e = other
            .batch_execute("INSERT INTO bulk VALUES (1, 'late', 1); COMMIT")
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Some(&SqlState::T_R_SERIALIZATION_FAILURE),
            "{e:?}"
        );
        other.batch_execute("ROLLBACK").await.unwrap();

        // A load that fails on its last row, after several runs were written: nothing of
        // it is stored or left on disk.
        let (e, bad) = failing_load(&c, 1_000_000, "2000000,x,not a number\n").await;
        assert_eq!(
            code_and_context(&e),
            (
                SqlState::INVALID_TEXT_REPRESENTATION,
                "COPY bulk, line 150001, column n: \"not a number\"".to_string()
            )
        );
        // One whose ids collide with stored rows only at the end.
        let (e, _) = failing_load(&c, 3_000_000, "6,dup,1\n").await;
        assert_eq!(code_and_context(&e).0, SqlState::UNIQUE_VIOLATION);
        // One whose ids rise for several runs, then repeat an early one of its own.
        let (e, _) = failing_load(&c, 4_000_000, "4000017,again,1\n").await;
        assert_eq!(
            code_and_context(&e),
            (
                SqlState::UNIQUE_VIOLATION,
                "COPY bulk, line 150001".to_string()
            )
        );
        // One the client abandons halfway (tokio-postgres sends CopyFail).
        {
            let sink = c
                .copy_in::<_, Bytes>("COPY bulk FROM STDIN CSV")
                .await
                .unwrap();
            futures::pin_mut!(sink);
            for chunk in bad.as_bytes().chunks(64 << 10).take(200) {
                sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
            }
        }
        still_serving(&c).await;
        assert_eq!(
            rows(&c, "SELECT count(*), sum(n), min(id), max(id) FROM bulk").await,
            vec![summary.clone()]
        );
        assert_eq!(files_no_manifest_names(&dir).await, Vec::<String>::new());
    })
    .await;
    s.kill_9();
    s.restart();
    bounded("bulk load after kill -9", async {
        let c = connect(&s).await;
        assert_eq!(
            rows(&c, "SELECT count(*), sum(n), min(id), max(id) FROM bulk").await,
            vec![summary.clone()]
        );
        assert_eq!(
            rows(
                &c,
                "SELECT pad, n FROM bulk WHERE id IN (5, 6, 150009) ORDER BY id"
            )
            .await,
            vec![
                "again|5",
                "kept|6",
                &format!("{}|{}", "p".repeat(80), 150009 % 97)
            ]
        );
    })
    .await;
}
