//! Scans over cached blocks whose documents share one layout (the same field names in
//! the same order), end to end through tokio-postgres against the real binary: a scan
//! maps such a block's fields to its columns by position, once per block, so blocks of
//! different layouts, and blocks of no one layout, must each give their own fields.
//!
//! A schemaless collection is written in chunks under a small memtable, each chunk in
//! its own segments: fields a, b, c in that order; the same fields as c, a, b; fields
//! b and d only; rows alternating between a, b, c in two orders; and rows alternating
//! between two sets of fields (the last two, blocks with no layout). Scans serial and in parallel parts, projections in both field orders,
//! filters, aggregates and `SELECT *` give exactly the documents the test wrote, and
//! after a `kill -9` and a restart too (blocks read from disk and cached anew).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Server;
use tokio_postgres::Client;

const BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// Documents per chunk: five chunks, together above the size at which scans run in
/// parallel (20,000 documents).
const CHUNK: u32 = 6_000;

/// One document: its optional fields a, b, c, d.
#[derive(Clone, Debug, Default)]
struct Doc {
    a: Option<i64>,
    b: Option<String>,
    c: Option<i64>,
    d: Option<bool>,
}

/// The INSERT of documents `ids` in the field order `fields`, and the documents.
fn insert(fields: &[&str], ids: impl Iterator<Item = u32>) -> (String, Vec<(String, Doc)>) {
    let mut values = Vec::new();
    let mut docs = Vec::new();
    for i in ids {
        let id = format!("k{i:06}");
        let mut doc = Doc::default();
        let mut row = vec![format!("'{id}'")];
        for f in fields {
            row.push(match *f {
                "a" => {
                    doc.a = Some(i64::from(i % 997));
                    (i % 997).to_string()
                }
                "b" => {
                    doc.b = Some(format!("s{}", i % 13));
                    format!("'s{}'", i % 13)
                }
                "c" => {
                    doc.c = Some(i64::from(i) * 3);
                    (i * 3).to_string()
                }
                _ => {
                    doc.d = Some(i % 2 == 0);
                    (i % 2 == 0).to_string()
                }
            });
        }
        values.push(format!("({})", row.join(", ")));
        docs.push((id, doc));
    }
    let sql = format!(
        "INSERT INTO things (id, {}) VALUES {}",
        fields.join(", "),
        values.join(", ")
    );
    (sql, docs)
}

fn text<T: ToString>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(ToString::to_string)
}

/// The row `SELECT id, a, b, c, d` gives for document `d` under `id`.
fn id_a_b_c_d(id: &str, d: &Doc) -> Vec<Option<String>> {
    vec![
        Some(id.to_string()),
        text(&d.a),
        text(&d.b),
        text(&d.c),
        flag(&d.d),
    ]
}

/// A boolean as the server writes it in text.
fn flag(v: &Option<bool>) -> Option<String> {
    v.map(|b| if b { "t" } else { "f" }.to_string())
}

async fn rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    common::simple_rows(c, sql).await
}

/// Asserts `got == want`, showing the first row that differs (not thousands of rows).
fn same_rows(got: &[Vec<Option<String>>], want: &[Vec<Option<String>>], label: &str) {
    if let Some(i) = (0..got.len().max(want.len())).find(|i| got.get(*i) != want.get(*i)) {
        panic!(
            "{label}: row {i} of {} (want {}): got {:?}, want {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

async fn check_scans(c: &Client, kept: &BTreeMap<String, Doc>, label: &str) {
    for workers in ["0", "2"] {
        let label = format!("{label}, workers {workers}");
        c.batch_execute(&format!("SET max_parallel_workers_per_gather = {workers}"))
            .await
            .unwrap();
        // Both field orders asked for: every block gives its own fields, in the
        // columns that name them.
        let got = rows(c, "SELECT id, a, b, c, d FROM things ORDER BY id").await;
        let want: Vec<Vec<Option<String>>> = kept.iter().map(|(id, d)| id_a_b_c_d(id, d)).collect();
        same_rows(&got, &want, &label);
        let got = rows(
            c,
            "SELECT c, d, b, a FROM things WHERE c % 7 = 1 ORDER BY id",
        )
        .await;
        let want: Vec<Vec<Option<String>>> = kept
            .values()
            .filter(|d| d.c.is_some_and(|c| c % 7 == 1))
            .map(|d| vec![text(&d.c), flag(&d.d), text(&d.b), text(&d.a)])
            .collect();
        assert!(want.len() > 1000, "{label}: {} rows", want.len());
        same_rows(&got, &want, &label);
        // Aggregates over a filter: the values each block holds under each name.
        let got = rows(
            c,
            "SELECT count(*), count(a), sum(a), count(c), sum(c), count(d) FROM things WHERE b <> 's3'",
        )
        .await;
        let passing: Vec<&Doc> = kept
            .values()
            .filter(|d| d.b.as_deref().is_some_and(|b| b != "s3"))
            .collect();
        let count = |f: fn(&Doc) -> bool| Some(passing.iter().filter(|d| f(d)).count().to_string());
        let sum = |f: fn(&Doc) -> Option<i64>| {
            Some(passing.iter().filter_map(|d| f(d)).sum::<i64>().to_string())
        };
        let want = vec![vec![
            Some(passing.len().to_string()),
            count(|d| d.a.is_some()),
            sum(|d| d.a),
            count(|d| d.c.is_some()),
            sum(|d| d.c),
            count(|d| d.d.is_some()),
        ]];
        assert_eq!(got, want, "{label}");
    }
    // Whole documents: each with the fields it was written with, and no others.
    let got = rows(
        c,
        "SELECT id, a, b, c, d FROM (SELECT * FROM things) s WHERE id BETWEEN 'k011990' AND 'k012010' ORDER BY id",
    )
    .await;
    let want: Vec<Vec<Option<String>>> = kept
        .range("k011990".to_string()..="k012010".to_string())
        .map(|(id, d)| id_a_b_c_d(id, d))
        .collect();
    assert_eq!(want.len(), 21, "{label}");
    same_rows(&got, &want, label);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_of_each_layout_give_their_own_fields() {
    let mut server = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "256KiB")]);
    let mut kept: BTreeMap<String, Doc> = BTreeMap::new();
    common::bounded("block layouts", BODY_TIMEOUT, async {
        let c = common::pg_connect(&server, "user=layout_tester").await;
        c.batch_execute("CREATE COLLECTION things").await.unwrap();
        let chunks: [&[&str]; 3] = [&["a", "b", "c"], &["c", "a", "b"], &["b", "d"]];
        for (n, fields) in chunks.iter().enumerate() {
            let first = n as u32 * CHUNK;
            for part in 0..CHUNK / 500 {
                let from = first + part * 500;
                let (sql, docs) = insert(fields, from..from + 500);
                c.batch_execute(&sql).await.unwrap();
                kept.extend(docs);
            }
        }
        // Blocks of no one layout: rows alternate between the same fields in two
        // orders, then between two sets of fields.
        let mixed: [[&[&str]; 2]; 2] = [
            [&["b", "a", "c"], &["a", "c", "b"]],
            [&["a", "b"], &["d", "c"]],
        ];
        for (n, [even, odd]) in mixed.iter().enumerate() {
            let first = (3 + n as u32) * CHUNK;
            for part in 0..CHUNK / 500 {
                let from = first + part * 500;
                let (sql, docs) = insert(even, (from..from + 500).step_by(2));
                c.batch_execute(&sql).await.unwrap();
                kept.extend(docs);
                let (sql, docs) = insert(odd, (from + 1..from + 500).step_by(2));
                c.batch_execute(&sql).await.unwrap();
                kept.extend(docs);
            }
        }
        assert_eq!(kept.len(), 5 * CHUNK as usize);
        check_scans(&c, &kept, "written").await;
    })
    .await;
    // Killed: what was written comes back from the segments and the log, its blocks
    // read from disk and cached anew.
    server.kill_9();
    server.restart();
    common::bounded("block layouts after a restart", BODY_TIMEOUT, async {
        let c = common::pg_connect(&server, "user=layout_tester").await;
        check_scans(&c, &kept, "restarted").await;
    })
    .await;
}
