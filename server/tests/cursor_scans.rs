//! Scans read through storage cursors, end to end through tokio-postgres against the
//! real binary: every answer below is computed by the test from the rows it wrote.
//!
//! The table is bulk loaded by COPY (its rows go straight into segments), then changed
//! by UPDATE, DELETE and INSERT under a small memtable (newer versions and tombstones in
//! later segments and in the memtable, over the loaded ones), so a scan merges sources
//! that hold the same keys. Over it:
//!
//! * aggregates with and without GROUP BY, with a filter and over a key range, serial
//!   (`max_parallel_workers_per_gather = 0`, their rows lent by the cursor) and in
//!   parallel parts, give the sums, counts and extremes of the rows the test kept;
//! * a filtered scan gives exactly the rows that pass, in key order; projections of
//!   lent rows (columns moved out, values computed) and a top-N sort over them give
//!   the rows the test computes;
//! * scans backward (`ORDER BY id DESC`, `max(id)`) give the newest version of each
//!   kept row in descending key order, at any limit;
//! * `count(*)` over an index's ranges (counted leaf by leaf) gives the number of kept
//!   rows that pass, before and after more rows go into the index, and grouped by the
//!   index's field (each group's entries past its first counted leaf by leaf), the
//!   number of each group's;
//! * `count(*)` alone (keys counted, no document read) gives the number of kept rows,
//!   serial and in parallel parts, and inside a transaction its own writes count;
//! * inside a transaction that wrote rows in the table, the scan sees its own writes;
//! * a schemaless collection's `id` (from the key) is filled where a filter reads it;
//! * an error of one row (22012) ends the statement alone, in both modes, and the
//!   server goes on serving.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Server;
use tokio_postgres::Client;

const BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// Rows loaded: above the size at which scans run in parallel (20,000 documents).
const ROWS: i64 = 24_000;

/// One row of `t`: its group and number.
#[derive(Clone, Debug)]
struct Kept {
    grp: String,
    n: i64,
}

/// A condition on `n` as SQL and as the test computes it.
type Cond = (&'static str, fn(i64) -> bool);

async fn rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    common::simple_rows(c, sql).await
}

fn text(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

/// `count(*), sum(n), min(n), max(n)` of `rows`.
fn totals<'a>(rows: impl Iterator<Item = &'a Kept>) -> Vec<Option<String>> {
    let n: Vec<i64> = rows.map(|k| k.n).collect();
    vec![
        text(n.len()),
        text(n.iter().sum::<i64>()),
        n.iter().min().map(|v| v.to_string()),
        n.iter().max().map(|v| v.to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_scans_see_the_newest_version_of_each_row() {
    let server = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "256KiB")]);
    common::bounded("cursor scans", BODY_TIMEOUT, async {
        let c = common::pg_connect(&server, "user=cursor_tester").await;
        c.batch_execute("CREATE TABLE t (id integer PRIMARY KEY, grp text, n integer)")
            .await
            .unwrap();
        let mut kept: BTreeMap<i64, Kept> = BTreeMap::new();
        let mut csv = String::new();
        for i in 1..=ROWS {
            let k = Kept {
                grp: format!("g{}", i % 7),
                n: i % 1000,
            };
            csv.push_str(&format!("{i},{},{}\n", k.grp, k.n));
            kept.insert(i, k);
        }
        let n = common::copy_csv(&c, "COPY t FROM STDIN (FORMAT csv)", csv).await;
        assert_eq!(n, ROWS as u64);
        // Newer versions, tombstones and new keys over the loaded rows, in several
        // statements so that the memtable flushes between them.
        c.batch_execute("UPDATE t SET n = n + 5000 WHERE id % 3 = 0")
            .await
            .unwrap();
        c.batch_execute("DELETE FROM t WHERE id % 11 = 0")
            .await
            .unwrap();
        c.batch_execute("UPDATE t SET grp = 'moved' WHERE id % 13 = 0")
            .await
            .unwrap();
        for chunk in 0..4 {
            let values: Vec<String> = (0..250)
                .map(|j| {
                    let i = ROWS + 1 + chunk * 250 + j;
                    format!("({i}, 'new', {})", i % 50)
                })
                .collect();
            c.batch_execute(&format!("INSERT INTO t VALUES {}", values.join(",")))
                .await
                .unwrap();
        }
        for (i, k) in kept.iter_mut() {
            if i % 3 == 0 {
                k.n += 5000;
            }
            if i % 13 == 0 {
                k.grp = "moved".into();
            }
        }
        kept.retain(|i, _| i % 11 != 0);
        for i in ROWS + 1..=ROWS + 1000 {
            kept.insert(
                i,
                Kept {
                    grp: "new".into(),
                    n: i % 50,
                },
            );
        }

        for workers in ["0", "2"] {
            c.batch_execute(&format!("SET max_parallel_workers_per_gather = {workers}"))
                .await
                .unwrap();
            let whole = rows(&c, "SELECT count(*), sum(n), min(n), max(n) FROM t").await;
            assert_eq!(whole, vec![totals(kept.values())], "workers {workers}");
            // count(*) alone counts keys, reading no document.
            let counted = rows(&c, "SELECT count(*) FROM t").await;
            assert_eq!(counted, vec![vec![text(kept.len())]], "workers {workers}");
            let filtered = rows(
                &c,
                "SELECT count(*), sum(n), min(n), max(n) FROM t WHERE n > 4990 AND grp <> 'g2'",
            )
            .await;
            assert_eq!(
                filtered,
                vec![totals(
                    kept.values().filter(|k| k.n > 4990 && k.grp != "g2")
                )],
                "workers {workers}"
            );
            let ranged = rows(
                &c,
                "SELECT count(*), sum(n), min(n), max(n) FROM t WHERE id BETWEEN 100 AND 20000",
            )
            .await;
            assert_eq!(
                ranged,
                vec![totals(kept.range(100..=20000).map(|(_, k)| k))],
                "workers {workers}"
            );
            let grouped = rows(
                &c,
                "SELECT grp, count(*), sum(n), min(n), max(n) FROM t GROUP BY grp ORDER BY grp",
            )
            .await;
            let mut groups: BTreeMap<&str, Vec<&Kept>> = BTreeMap::new();
            for k in kept.values() {
                groups.entry(k.grp.as_str()).or_default().push(k);
            }
            let want: Vec<Vec<Option<String>>> = groups
                .iter()
                .map(|(g, ks)| {
                    let mut row = vec![text(g)];
                    row.extend(totals(ks.iter().copied()));
                    row
                })
                .collect();
            assert_eq!(grouped, want, "workers {workers}");
            // A filtered scan: the rows that pass, in key order.
            let passing = rows(&c, "SELECT id, grp, n FROM t WHERE n BETWEEN 5990 AND 5999").await;
            let want: Vec<Vec<Option<String>>> = kept
                .iter()
                .filter(|(_, k)| (5990..=5999).contains(&k.n))
                .map(|(i, k)| vec![text(i), text(&k.grp), text(k.n)])
                .collect();
            assert!(want.len() > 20, "{} rows", want.len());
            assert_eq!(passing, want, "workers {workers}");
            // Computed columns of lent rows, and a top-N sort of them.
            let computed = rows(&c, "SELECT id, n * 2, grp || '!' FROM t WHERE id < 200").await;
            let want: Vec<Vec<Option<String>>> = kept
                .range(..200)
                .map(|(i, k)| vec![text(i), text(k.n * 2), text(format!("{}!", k.grp))])
                .collect();
            assert_eq!(computed, want, "workers {workers}");
            let top = rows(&c, "SELECT id, n FROM t ORDER BY n DESC, id LIMIT 5").await;
            let mut by_n: Vec<(&i64, &Kept)> = kept.iter().collect();
            by_n.sort_by(|a, b| b.1.n.cmp(&a.1.n).then(a.0.cmp(b.0)));
            let want: Vec<Vec<Option<String>>> = by_n
                .iter()
                .take(5)
                .map(|(i, k)| vec![text(i), text(k.n)])
                .collect();
            assert_eq!(top, want, "workers {workers}");
            // Backward, in parts growing from a few entries of each source: the
            // newest version of each key, deleted keys left out, at any length.
            let desc: Vec<Vec<Option<String>>> = kept
                .iter()
                .rev()
                .map(|(i, k)| vec![text(i), text(&k.grp), text(k.n)])
                .collect();
            for limit in [1, 10, 17, 100, 2000] {
                let got = rows(
                    &c,
                    &format!("SELECT id, grp, n FROM t ORDER BY id DESC LIMIT {limit}"),
                )
                .await;
                assert_eq!(got, desc[..limit], "limit {limit}, workers {workers}");
            }
            let below: Vec<Vec<Option<String>>> = kept
                .range(..=12345)
                .rev()
                .take(700)
                .map(|(i, k)| vec![text(i), text(&k.grp), text(k.n)])
                .collect();
            let got = rows(
                &c,
                "SELECT id, grp, n FROM t WHERE id <= 12345 ORDER BY id DESC LIMIT 700",
            )
            .await;
            assert_eq!(got, below, "workers {workers}");
            let got = rows(&c, "SELECT id FROM t ORDER BY id DESC").await;
            assert_eq!(got.len(), kept.len());
            assert!(
                got.iter()
                    .zip(kept.keys().rev())
                    .all(|(r, i)| r[0] == text(i))
            );
            let got = rows(&c, "SELECT max(id), min(id) FROM t WHERE id < 23100").await;
            let under: Vec<&i64> = kept.range(..23100).map(|(i, _)| i).collect();
            assert_eq!(
                got,
                vec![vec![text(under[under.len() - 1]), text(under[0])]]
            );
            // One row's error ends the statement alone.
            let e = c
                .simple_query("SELECT sum(100 / (n - 5999)) FROM t")
                .await
                .expect_err("division by zero at id 999");
            assert_eq!(e.code().map(|c| c.code()), Some("22012"), "{e}");
        }

        // Counts over an index's ranges (counted by leaf, many leaves in batches),
        // before and after more rows go into the index.
        c.batch_execute("CREATE INDEX t_n ON t (n); SET enable_seqscan = off")
            .await
            .unwrap();
        let conds: [Cond; 5] = [
            ("n < 500", |n| n < 500),
            ("n >= 5000", |n| n >= 5000),
            ("n BETWEEN 100 AND 199", |n| (100..=199).contains(&n)),
            ("n > 5990", |n| n > 5990),
            ("n IN (1, 2, 777)", |n| [1, 2, 777].contains(&n)),
        ];
        for round in 0..2 {
            for (cond, pass) in &conds {
                let plan = rows(&c, &format!("EXPLAIN SELECT count(*) FROM t WHERE {cond}")).await;
                assert!(
                    format!("{plan:?}").contains("Index Only Scan using t_n"),
                    "{cond}: {plan:?}"
                );
                let got = rows(&c, &format!("SELECT count(*) FROM t WHERE {cond}")).await;
                let want = kept.values().filter(|k| pass(k.n)).count();
                assert_eq!(got, vec![vec![text(want)]], "{cond}, round {round}");
            }
            let values: Vec<String> = (0..300)
                .map(|j| {
                    let i = ROWS + 2000 + round * 300 + j;
                    kept.insert(
                        i,
                        Kept {
                            grp: "later".into(),
                            n: i % 600,
                        },
                    );
                    format!("({i}, 'later', {})", i % 600)
                })
                .collect();
            c.batch_execute(&format!("INSERT INTO t VALUES {}", values.join(",")))
                .await
                .unwrap();
        }
        // Counts grouped by an index's field: each group's first entry read, the
        // rest (thousands of entries, many leaves) counted where they lie.
        c.batch_execute("CREATE INDEX t_grp ON t (grp)")
            .await
            .unwrap();
        for (cond, pass) in [
            ("WHERE grp >= 'a'", (|g| g >= "a") as fn(&str) -> bool),
            ("WHERE grp IN ('g1', 'g5', 'new', 'nope')", |g| {
                ["g1", "g5", "new"].contains(&g)
            }),
            ("WHERE grp > 'g3'", |g| g > "g3"),
        ] {
            let sql = format!("SELECT grp, count(*) FROM t {cond} GROUP BY grp ORDER BY grp");
            let plan = rows(&c, &format!("EXPLAIN {sql}")).await;
            assert!(
                format!("{plan:?}").contains("Index Only Scan using t_grp"),
                "{sql}: {plan:?}"
            );
            let mut want: BTreeMap<&str, usize> = BTreeMap::new();
            for k in kept.values().filter(|k| pass(&k.grp)) {
                *want.entry(k.grp.as_str()).or_default() += 1;
            }
            let want: Vec<Vec<Option<String>>> =
                want.iter().map(|(g, n)| vec![text(g), text(n)]).collect();
            assert!(want.iter().any(|r| r[1] > text(1000)), "{want:?}");
            assert_eq!(rows(&c, &sql).await, want, "{sql}");
        }
        c.batch_execute("DROP INDEX t_n; DROP INDEX t_grp; SET enable_seqscan = on")
            .await
            .unwrap();

        // A transaction's own writes: its scans see them (and nothing else changes).
        c.batch_execute(
            "BEGIN; UPDATE t SET n = -1 WHERE id = 5; DELETE FROM t WHERE id = 7; \
             INSERT INTO t VALUES (0, 'txn', 42)",
        )
        .await
        .unwrap();
        let mut inside = kept.clone();
        if let Some(k) = inside.get_mut(&5) {
            k.n = -1;
        }
        inside.remove(&7);
        inside.insert(
            0,
            Kept {
                grp: "txn".into(),
                n: 42,
            },
        );
        let seen = rows(&c, "SELECT count(*), sum(n), min(n), max(n) FROM t").await;
        assert_eq!(seen, vec![totals(inside.values())]);
        let counted = rows(&c, "SELECT count(*) FROM t").await;
        assert_eq!(counted, vec![vec![text(inside.len())]]);
        c.batch_execute("ROLLBACK").await.unwrap();
        let after = rows(&c, "SELECT count(*), sum(n), min(n), max(n) FROM t").await;
        assert_eq!(after, vec![totals(kept.values())]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collections_ids_come_from_the_keys_under_a_filter() {
    let server = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "256KiB")]);
    common::bounded("cursor ids", BODY_TIMEOUT, async {
        let c = common::pg_connect(&server, "user=cursor_tester").await;
        c.batch_execute("CREATE COLLECTION things").await.unwrap();
        let mut csv = String::from("id,size\n");
        for i in 0..3000u32 {
            csv.push_str(&format!("t{i:04},{}\n", i % 10));
        }
        let n = common::copy_csv(&c, "COPY things FROM STDIN (FORMAT csv, HEADER)", csv).await;
        assert_eq!(n, 3000);
        c.batch_execute("DELETE FROM things WHERE id LIKE 't0%5'")
            .await
            .unwrap();
        for workers in ["0", "2"] {
            c.batch_execute(&format!("SET max_parallel_workers_per_gather = {workers}"))
                .await
                .unwrap();
            let got = rows(
                &c,
                "SELECT id, size FROM things WHERE id LIKE 't0%' AND size >= 8",
            )
            .await;
            let want: Vec<Vec<Option<String>>> = (0..1000u32)
                .filter(|i| i % 10 >= 8 && i % 10 != 5)
                .map(|i| vec![text(format!("t{i:04}")), text(i % 10)])
                .collect();
            assert_eq!(got, want, "workers {workers}");
            let counted = rows(
                &c,
                "SELECT count(*), max(id) FROM things WHERE id < 't1000' AND size = 4",
            )
            .await;
            assert_eq!(counted, vec![vec![text(100), text("t0994")]]);
        }
    })
    .await;
}
