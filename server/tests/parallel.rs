//! Parallel aggregation end to end, through tokio-postgres against the real binary: an
//! aggregate straight over a full scan of a large table runs its scan in key ranges on
//! worker threads and merges the groups.
//!
//! * every aggregate (count, sum, avg, min, max, bool_and/or, string_agg, array_agg),
//!   with and without GROUP BY, with a scan filter, and over no matching rows, gives
//!   exactly what the serial plan gives (`max_parallel_workers_per_gather = 0`), groups
//!   in the same first-seen order and aggregated lists in the same order;
//! * EXPLAIN ANALYZE shows `Workers Launched` and counts every part's rows under the
//!   scan; inside a transaction, or with the setting at 0, the aggregate runs serially;
//! * with the data in segments as well as the memtable, with several clients at once
//!   (they share the server's worker slots), and over a schemaless collection whose
//!   `id` comes from the key, the answers stay the same;
//! * a GROUP BY whose groups outgrow `query_memory_limit` fails with 53200 either way;
//! * a full scan with a filter (no aggregate over it) runs its parts on worker threads
//!   and gives exactly the serial rows in the serial order, under a LIMIT, a projection
//!   and a join too; an error of a part (22012) comes as it does serially;
//! * a join whose left side is such a scan (inner, left, semi, anti, nested loop, three
//!   tables, under an aggregate, a sort and a LIMIT) joins each part on its thread
//!   against a right side read once, and gives the serial rows in the serial order; a
//!   right side as large as the left is read by the keys of all parts, or whole when
//!   they hold too many;
//! * `count(*)` of a whole table counts keys (in parallel key ranges) and equals
//!   `count(id)` after deletes and updates, inside a transaction with its own pending
//!   inserts and deletes, and serially;
//! * bad values of the setting fail with 22023 and change nothing.

mod common;

use std::time::Duration;

use common::Server;
use tokio_postgres::Client;

/// How long the body of one test may run.
const BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// Rows loaded: above the size at which scans run in parallel (20,000 documents).
const ROWS: u32 = 30_000;

/// Queries whose parallel answers must equal their serial ones, row for row.
const QUERIES: &[&str] = &[
    "SELECT region, count(*), count(note), sum(amount), avg(amount), min(price), max(price), \
     sum(price), avg(price), bool_and(ok), bool_or(ok) FROM sales GROUP BY region",
    "SELECT region, string_agg(id::text, ','), array_agg(amount) FROM sales GROUP BY region",
    "SELECT count(*), sum(amount), avg(price), min(region), max(id) FROM sales",
    "SELECT region, count(*), max(note) FROM sales WHERE amount > 500 GROUP BY region",
    "SELECT count(*), sum(amount) FROM sales WHERE amount > 5000",
    "SELECT region, count(*) FROM sales WHERE amount > 5000 GROUP BY region",
];

async fn connect(s: &Server) -> Client {
    common::pg_connect(s, "user=parallel_tester").await
}

/// Creates `sales` and loads [`ROWS`] rows by COPY. Prices are multiples of 1/4, so
/// their sums are exact in any order of addition.
async fn load(c: &Client) {
    c.batch_execute(
        "CREATE TABLE sales (id integer PRIMARY KEY, region text, amount integer, \
         price float8, note text, ok boolean)",
    )
    .await
    .expect("create table");
    let mut csv = String::new();
    for i in 1..=ROWS {
        let region = if i % 101 == 0 {
            String::new()
        } else {
            format!("r{:02}", (i * 7) % 37)
        };
        let note = if i % 3 == 0 {
            String::new()
        } else {
            format!("n{}", i % 11)
        };
        csv.push_str(&format!(
            "{i},{region},{},{},{note},{}\n",
            i % 1000,
            f64::from(i % 977) * 0.25,
            i % 5 != 0
        ));
    }
    let n = common::copy_csv(c, "COPY sales FROM STDIN (FORMAT csv)", csv).await;
    assert_eq!(n, u64::from(ROWS));
}

/// The rows of `sql` as text, in the order they came.
async fn rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    common::simple_rows(c, sql).await
}

async fn plan(c: &Client, sql: &str) -> String {
    rows(c, &format!("EXPLAIN ANALYZE {sql}"))
        .await
        .into_iter()
        .map(|r| r.into_iter().flatten().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether this machine (the server's) has the cores for a worker thread.
fn has_worker_cores() -> bool {
    std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
}

/// The answers of [`QUERIES`] run serially.
async fn serial_answers(c: &Client) -> Vec<Vec<Vec<Option<String>>>> {
    serial_rows(c, QUERIES).await
}

/// The rows of each of `queries`, run with `max_parallel_workers_per_gather = 0`.
async fn serial_rows(c: &Client, queries: &[&str]) -> Vec<Vec<Vec<Option<String>>>> {
    c.batch_execute("SET max_parallel_workers_per_gather = 0")
        .await
        .expect("set 0");
    let mut out = Vec::new();
    for q in queries {
        out.push(rows(c, q).await);
    }
    c.batch_execute("RESET max_parallel_workers_per_gather")
        .await
        .expect("reset");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_aggregates_equal_serial_ones() {
    let server = Server::start();
    common::bounded("parallel aggregates", BODY_TIMEOUT, async {
        let c = connect(&server).await;
        load(&c).await;
        let serial = serial_answers(&c).await;
        // The answers are not trivial: 38 groups (one of them NULL), every row counted.
        assert_eq!(serial[0].len(), 38);
        assert!(serial[0].iter().any(|r| r[0].is_none()));
        assert_eq!(serial[2][0][0].as_deref(), Some("30000"));
        assert_eq!(serial[4], vec![vec![Some("0".to_string()), None]]);
        assert!(serial[5].is_empty());
        for (q, want) in QUERIES.iter().zip(&serial) {
            assert_eq!(&rows(&c, q).await, want, "parallel answer of {q}");
        }

        // EXPLAIN ANALYZE shows the worker and counts both parts' rows under the scan.
        let analyzed = plan(&c, QUERIES[0]).await;
        if has_worker_cores() {
            assert!(analyzed.contains("Workers Launched: 1"), "{analyzed}");
        }
        assert!(
            analyzed.contains(&format!("actual rows={ROWS} ")),
            "{analyzed}"
        );
        // Serial when the setting says so, and inside a transaction.
        c.batch_execute("SET max_parallel_workers_per_gather = 0")
            .await
            .unwrap();
        let analyzed = plan(&c, QUERIES[0]).await;
        assert!(!analyzed.contains("Workers Launched"), "{analyzed}");
        c.batch_execute("RESET max_parallel_workers_per_gather; BEGIN")
            .await
            .unwrap();
        let analyzed = plan(&c, QUERIES[0]).await;
        assert!(!analyzed.contains("Workers Launched"), "{analyzed}");
        assert_eq!(rows(&c, QUERIES[0]).await, serial[0]);
        c.batch_execute("COMMIT").await.unwrap();

        // Several clients at once share the worker slots; every answer stays exact.
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let client = connect(&server).await;
            let want = serial.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..2 {
                    for (q, w) in QUERIES.iter().zip(&want) {
                        assert_eq!(&rows(&client, q).await, w, "concurrent {q}");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("concurrent client");
        }
    })
    .await;
}

/// Filtered scans without an aggregate over them: the rows, in order, of each.
const FILTERED: &[&str] = &[
    "SELECT id, region, amount FROM sales WHERE amount > 900",
    "SELECT * FROM sales WHERE note = 'n3' AND ok",
    "SELECT id, price * 2 FROM sales WHERE price BETWEEN 10 AND 10.5",
    "SELECT id FROM sales WHERE amount > 10 LIMIT 3",
    "SELECT id, note FROM sales WHERE region LIKE 'r1%' AND amount < 40 ORDER BY amount, id DESC LIMIT 7",
    "SELECT count(DISTINCT region) FROM sales WHERE amount > 100",
    "SELECT a.id, b.id FROM sales a JOIN sales b ON b.id = a.amount WHERE a.amount < 20 AND b.ok",
    // Top-N sorts cut by key range: ties (many rows per amount) in scan order.
    "SELECT id, amount FROM sales ORDER BY amount DESC LIMIT 25",
    "SELECT region, id FROM sales WHERE ok ORDER BY region NULLS FIRST, amount LIMIT 40 OFFSET 5",
    "SELECT id, price * 2 FROM sales ORDER BY price, id DESC LIMIT 7",
    // DISTINCT grouped in parallel parts (first-seen order); under a LIMIT it streams.
    "SELECT DISTINCT region FROM sales",
    "SELECT DISTINCT amount % 7, ok, price = 1 FROM sales WHERE amount > 20",
    "SELECT DISTINCT region FROM sales LIMIT 4",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_filtered_scans_give_the_serial_rows_in_order() {
    // A small memtable: the parts cut segments as well as the memtable.
    let server = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "512KiB")]);
    common::bounded("parallel filtered scans", BODY_TIMEOUT, async {
        let c = connect(&server).await;
        load(&c).await;
        c.batch_execute("UPDATE sales SET amount = 950 WHERE id % 1000 = 11")
            .await
            .expect("update");
        let serial = serial_rows(&c, FILTERED).await;
        // Not trivial: hundreds of rows in key order, and a LIMIT that stops early.
        assert!(serial[0].len() > 2000, "{}", serial[0].len());
        assert!(serial[0].iter().any(|r| r[2].as_deref() == Some("950")));
        // In key order (integer keys order as integers).
        let ids: Vec<i64> = serial[0]
            .iter()
            .map(|r| r[0].as_deref().unwrap().parse().unwrap())
            .collect();
        assert!(ids.is_sorted(), "a scan gives its keys' order");
        assert_eq!(serial[3].len(), 3);
        assert!(!serial[6].is_empty());
        assert_eq!(serial[10].len(), 38, "37 regions and NULL");
        assert!(serial[11].len() > 14, "{}", serial[11].len());
        assert_eq!(serial[12], serial[10][..4]);
        for (q, want) in FILTERED.iter().zip(&serial) {
            assert_eq!(&rows(&c, q).await, want, "parallel rows of {q}");
        }
        let analyzed = plan(&c, FILTERED[0]).await;
        if has_worker_cores() {
            assert!(analyzed.contains("Workers Launched: 1"), "{analyzed}");
        }
        assert!(
            analyzed.contains(&format!("actual rows={} ", serial[0].len())),
            "{analyzed}"
        );
        // An error in a part comes as it does serially; the server serves on.
        for setting in ["0", "2"] {
            c.batch_execute(&format!("SET max_parallel_workers_per_gather = {setting}"))
                .await
                .unwrap();
            let e = c
                .simple_query("SELECT id FROM sales WHERE 10 / (amount - 990) > 0")
                .await
                .expect_err("division by zero");
            assert_eq!(e.code().map(|c| c.code()), Some("22012"), "{e}");
        }
        assert_eq!(rows(&c, FILTERED[0]).await, serial[0]);
    })
    .await;
}

/// Joins whose left side is the large `sales`: the rows, in order, of each.
const JOINS: &[&str] = &[
    "SELECT s.id, s.amount, r.zone FROM sales s JOIN regions r ON r.name = s.region \
     WHERE s.amount < 300",
    "SELECT s.id, r.zone FROM sales s LEFT JOIN regions r ON r.name = s.region AND r.zone > 2 \
     WHERE s.amount > 900",
    "SELECT id, region FROM sales s WHERE EXISTS \
     (SELECT 1 FROM regions r WHERE r.name = s.region AND r.zone = 3)",
    "SELECT id FROM sales s WHERE NOT EXISTS (SELECT 1 FROM regions r WHERE r.name = s.region) \
     AND s.amount < 500",
    // No equality: a nested loop per left row.
    "SELECT s.id, r.name FROM sales s JOIN regions r \
     ON s.amount > r.zone * 330 AND s.amount < r.zone * 330 + 3",
    "SELECT r.zone, count(*), sum(s.amount), max(s.note), string_agg(s.id::text, ',') \
     FROM sales s JOIN regions r ON r.name = s.region GROUP BY r.zone",
    "SELECT s.id, r.zone, z.label FROM sales s JOIN regions r ON r.name = s.region \
     JOIN zones z ON z.zone = r.zone WHERE s.amount BETWEEN 100 AND 120",
    "SELECT s.id, r.zone FROM sales s JOIN regions r ON r.name = s.region \
     ORDER BY s.amount DESC, s.id LIMIT 9",
    "SELECT s.id FROM sales s JOIN regions r ON r.name = s.region LIMIT 5",
    // The right side is as large as the left: read by the left side's keys (1,000 of
    // them over both parts), or whole when the parts hold more than 1,024 keys between
    // them (1,500) or each (30,000).
    "SELECT count(*) FROM sales a WHERE EXISTS (SELECT 1 FROM sales b WHERE b.id = a.amount + 1)",
    "SELECT DISTINCT r.zone, s.ok FROM sales s JOIN regions r ON r.name = s.region",
    "SELECT count(*), sum(a.amount) FROM sales a WHERE EXISTS \
     (SELECT 1 FROM sales b WHERE b.id = a.id / 20)",
    "SELECT count(*), sum(b.price), max(a.note) FROM sales a JOIN sales b ON b.id = a.id",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_joins_give_the_serial_rows_in_order() {
    let server = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "512KiB")]);
    common::bounded("parallel joins", BODY_TIMEOUT, async {
        let c = connect(&server).await;
        load(&c).await;
        // Regions r00..r29 (r30..r36 and the empty region have none), in zones 0..4.
        c.batch_execute(
            "CREATE TABLE regions (name text PRIMARY KEY, zone integer); \
             CREATE TABLE zones (zone integer PRIMARY KEY, label text); \
             INSERT INTO zones VALUES (0, 'north'), (1, 'east'), (2, 'south'), (3, 'west'), \
             (4, 'centre')",
        )
        .await
        .expect("create");
        for i in 0..30 {
            c.batch_execute(&format!(
                "INSERT INTO regions VALUES ('r{i:02}', {})",
                i % 5
            ))
            .await
            .expect("insert region");
        }
        let serial = serial_rows(&c, JOINS).await;
        assert!(serial[0].len() > 3000, "{}", serial[0].len());
        assert!(
            serial[1].iter().any(|r| r[1].is_none()) && serial[1].iter().any(|r| r[1].is_some()),
            "a left join pads some rows"
        );
        assert!(!serial[2].is_empty() && !serial[3].is_empty() && !serial[4].is_empty());
        assert_eq!(serial[5].len(), 5);
        assert!(!serial[6].is_empty());
        assert_eq!((serial[7].len(), serial[8].len()), (9, 5));
        for (q, want) in JOINS.iter().zip(&serial) {
            assert_eq!(&rows(&c, q).await, want, "parallel rows of {q}");
        }
        // The join ran its parts on a worker, and counts every part's rows.
        let analyzed = plan(&c, JOINS[0]).await;
        if has_worker_cores() {
            assert!(analyzed.contains("Workers Launched: 1"), "{analyzed}");
        }
        assert!(
            analyzed.contains(&format!("actual rows={} ", serial[0].len())),
            "{analyzed}"
        );
        assert_eq!(serial[10].len(), 10);
        assert_eq!(serial[11][0][0].as_deref(), Some("29981"));
        assert_eq!(serial[12][0][0].as_deref(), Some("30000"));
        // A right side as large as the left is probed by the keys of both parts.
        let probed = plan(&c, JOINS[9]).await;
        assert!(probed.contains("Index Probe"), "{probed}");
        if has_worker_cores() {
            assert!(probed.contains("Workers Launched: 1"), "{probed}");
        }
        // Inside a transaction the join runs serially, with the same rows.
        c.batch_execute("BEGIN").await.unwrap();
        assert_eq!(rows(&c, JOINS[0]).await, serial[0]);
        assert!(!plan(&c, JOINS[0]).await.contains("Workers Launched"));
        c.batch_execute("COMMIT").await.unwrap();
        // An error in a part comes as it does serially; the server serves on.
        for setting in ["0", "2"] {
            c.batch_execute(&format!("SET max_parallel_workers_per_gather = {setting}"))
                .await
                .unwrap();
            let e = c
                .simple_query(
                    "SELECT s.id FROM sales s JOIN regions r ON r.name = s.region \
                     WHERE 10 / (s.amount - 990) > 0",
                )
                .await
                .expect_err("division by zero");
            assert_eq!(e.code().map(|c| c.code()), Some("22012"), "{e}");
        }
        assert_eq!(rows(&c, JOINS[5]).await, serial[5]);
    })
    .await;
}

/// The one value of a one-row, one-column answer.
async fn one(c: &Client, sql: &str) -> String {
    let rows = rows(c, sql).await;
    assert_eq!(rows.len(), 1, "{sql}");
    rows[0][0].clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_of_whole_tables_count_what_the_statement_sees() {
    let server = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "512KiB")]);
    common::bounded("counts", BODY_TIMEOUT, async {
        let c = connect(&server).await;
        load(&c).await;
        assert_eq!(one(&c, "SELECT count(*) FROM sales").await, ROWS.to_string());
        // Deleted rows (tombstones over segments) and updated ones (two versions).
        c.batch_execute(
            "DELETE FROM sales WHERE id % 7 = 0; UPDATE sales SET amount = 1 WHERE id % 5 = 1",
        )
        .await
        .expect("delete and update");
        let left = (1..=ROWS).filter(|i| i % 7 != 0).count().to_string();
        assert_eq!(one(&c, "SELECT count(*) FROM sales").await, left);
        assert_eq!(one(&c, "SELECT count(id) FROM sales").await, left);
        let both = rows(&c, "SELECT count(*), count(*) AS again FROM sales").await;
        assert_eq!(both, vec![vec![Some(left.clone()), Some(left.clone())]]);
        // Inside a transaction: its own inserts and deletes count, nobody else's yet.
        let other = connect(&server).await;
        c.batch_execute(
            "BEGIN; INSERT INTO sales (id) VALUES (100001), (100002), (100003), (100004), (100005); \
             DELETE FROM sales WHERE id IN (1, 2, 3)",
        )
        .await
        .expect("transaction");
        let inside = (left.parse::<usize>().unwrap() + 5 - 3).to_string();
        assert_eq!(one(&c, "SELECT count(*) FROM sales").await, inside);
        assert_eq!(one(&other, "SELECT count(*) FROM sales").await, left);
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(one(&c, "SELECT count(*) FROM sales").await, left);
        // Serially, and under EXPLAIN ANALYZE (which reads the scan), the same.
        c.batch_execute("SET max_parallel_workers_per_gather = 0")
            .await
            .unwrap();
        assert_eq!(one(&c, "SELECT count(*) FROM sales").await, left);
        let analyzed = plan(&c, "SELECT count(*) FROM sales").await;
        assert!(
            analyzed.contains(&format!("actual rows={left} ")),
            "{analyzed}"
        );
        // An empty table counts 0.
        c.batch_execute("CREATE TABLE nothing (id int PRIMARY KEY)")
            .await
            .unwrap();
        assert_eq!(one(&c, "SELECT count(*) FROM nothing").await, "0");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_scans_cut_segments_and_keep_the_memory_limit() {
    // A small memtable puts most rows in segments; a small memory limit makes a GROUP BY
    // of every id too big.
    let server = Server::start_with_env(&[
        ("TISSDB_MEMTABLE_SIZE", "256KiB"),
        ("TISSDB_QUERY_MEMORY_LIMIT", "1MiB"),
    ]);
    common::bounded("parallel segments", BODY_TIMEOUT, async {
        let c = connect(&server).await;
        load(&c).await;
        // Some rows changed after the load, so a newer version shadows an older one in
        // another source.
        c.batch_execute("UPDATE sales SET amount = amount + 1 WHERE id % 1000 = 7")
            .await
            .expect("update");
        let serial = serial_answers(&c).await;
        for (q, want) in QUERIES.iter().zip(&serial) {
            assert_eq!(&rows(&c, q).await, want, "parallel answer of {q}");
        }
        let analyzed = plan(&c, QUERIES[0]).await;
        if has_worker_cores() {
            assert!(analyzed.contains("Workers Launched: 1"), "{analyzed}");
        }
        for setting in ["0", "2"] {
            c.batch_execute(&format!("SET max_parallel_workers_per_gather = {setting}"))
                .await
                .unwrap();
            let e = c
                .simple_query("SELECT id, count(*) FROM sales GROUP BY id")
                .await
                .expect_err("groups over the memory limit");
            assert_eq!(e.code().map(|c| c.code()), Some("53200"), "{e}");
            let e = c
                .simple_query("SELECT DISTINCT id, note FROM sales")
                .await
                .expect_err("distinct rows over the memory limit");
            assert_eq!(e.code().map(|c| c.code()), Some("53200"), "{e}");
            // Rows seen again hold no memory: 30,000 rows of 38 regions fit.
            assert_eq!(
                rows(&c, "SELECT DISTINCT region FROM sales").await.len(),
                38
            );
        }
        // The server goes on serving.
        assert_eq!(rows(&c, QUERIES[2]).await, serial[2]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_aggregate_in_parallel_with_their_ids() {
    let server = Server::start();
    common::bounded("parallel documents", BODY_TIMEOUT, async {
        let c = connect(&server).await;
        c.batch_execute("CREATE COLLECTION gadgets").await.unwrap();
        // Ids are text, so key order is not numeric order: min(id) and max(id) come
        // from the keys of whichever part holds them.
        let mut csv = String::from("id,category,price,stock\n");
        for i in 1..=25_000u32 {
            csv.push_str(&format!(
                "g{i},c{},{}.5,{}\n",
                i % 13,
                i % 700,
                if i % 9 == 0 {
                    String::new()
                } else {
                    (i % 40).to_string()
                }
            ));
        }
        let n = common::copy_csv(&c, "COPY gadgets FROM STDIN (FORMAT csv, HEADER)", csv).await;
        assert_eq!(n, 25_000);
        let q = "SELECT category, count(*), count(stock), min(id), max(id), avg(price), \
                 sum(stock) FROM gadgets GROUP BY category";
        let serial = serial_rows(&c, &[q]).await.remove(0);
        assert_eq!(serial.len(), 13);
        assert_eq!(
            serial
                .iter()
                .find(|r| r[0].as_deref() == Some("c1"))
                .unwrap()[3]
                .as_deref(),
            Some("g1")
        );
        assert_eq!(rows(&c, q).await, serial);
        let analyzed = plan(&c, q).await;
        if has_worker_cores() {
            assert!(analyzed.contains("Workers Launched: 1"), "{analyzed}");
        }
        assert!(analyzed.contains("actual rows=25000 "), "{analyzed}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_worker_counts_are_refused() {
    let server = Server::start();
    common::bounded("bad settings", BODY_TIMEOUT, async {
        let c = connect(&server).await;
        c.batch_execute("SET max_parallel_workers_per_gather = 1")
            .await
            .unwrap();
        for bad in ["'many'", "-1", "65", "1.5"] {
            let e = c
                .batch_execute(&format!("SET max_parallel_workers_per_gather = {bad}"))
                .await
                .expect_err(bad);
            assert_eq!(e.code().map(|c| c.code()), Some("22023"), "{bad}: {e}");
            let db = e.as_db_error().expect("a server error");
            assert!(
                db.message().contains("max_parallel_workers_per_gather"),
                "{}",
                db.message()
            );
        }
        let shown = rows(&c, "SHOW max_parallel_workers_per_gather").await;
        assert_eq!(shown, vec![vec![Some("1".to_string())]]);
        c.batch_execute("RESET max_parallel_workers_per_gather")
            .await
            .unwrap();
        let shown = rows(&c, "SHOW max_parallel_workers_per_gather").await;
        assert_eq!(shown, vec![vec![Some("2".to_string())]]);
    })
    .await;
}
