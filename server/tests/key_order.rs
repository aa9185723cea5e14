//! Tables keyed by integers, read in key order, end to end through the `postgres`
//! client (simple and extended protocol) and REST against the real binary:
//!
//! * `ORDER BY key [DESC] [LIMIT n OFFSET m]` walks the keys (no sort), forwards or
//!   backwards, across the memtable and flushed segments, and gives the rows a sort
//!   would: negative keys, the extremes of int8 and keys of every digit count included;
//! * key ranges (`<`, `<=`, `>`, `>=`, `BETWEEN`, with integers, fractions, NULL,
//!   parameters, bounds past the integers) read only their keys and give the rows the
//!   predicate defines;
//! * `min(key)` and `max(key)` are read from the ends, with or without a filter or a
//!   range, NULL over no row;
//! * inside a transaction its own inserts and deletes are seen in order;
//! * after `kill -9` the order and the keys are as acknowledged;
//! * int2 and int4 keys as well as int8; REST reads and writes such rows by the key as
//!   it is written (`/t/-5`), and messages name keys as users write them;
//! * a join whose outer side has many rows but few distinct keys looks each key up once
//!   in the inner table (the inner scan reads nothing), and falls back to a hash join
//!   beyond the probe's limit, with the same answers.

mod common;

use common::{Server, pg_client};

/// The keys of the main table: negatives, every digit count, the int8 extremes.
fn keys() -> Vec<i64> {
    let mut keys: Vec<i64> = (-300..3000).collect();
    keys.extend([
        i64::MIN,
        i64::MIN + 1,
        -1_000_000_007,
        -99_999,
        10_000,
        99_999,
        100_000,
        1_000_000_000_000,
        i64::MAX - 1,
        i64::MAX,
    ]);
    keys
}

/// The ids a query returns, in order.
fn ids(
    c: &mut postgres::Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Vec<i64> {
    c.query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect()
}

/// The plan's text.
fn plan(c: &mut postgres::Client, sql: &str) -> String {
    c.simple_query(&format!("EXPLAIN {sql}"))
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads the main table in a scattered order (so no write order hides the key order),
/// in batches, with a small memtable: the rows lie in several segments and the memtable.
fn load(c: &mut postgres::Client) -> Vec<i64> {
    c.batch_execute("CREATE TABLE t (id int8 PRIMARY KEY, pad text, grp int4)")
        .unwrap();
    let mut keys = keys();
    // A fixed shuffle: multiply the positions by a number prime to the count.
    let n = keys.len();
    let scattered: Vec<i64> = (0..n).map(|i| keys[(i * 7919) % n]).collect();
    for chunk in scattered.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|k| format!("({k}, '{}', {})", "p".repeat(200), k.rem_euclid(7)))
            .collect();
        c.batch_execute(&format!("INSERT INTO t VALUES {}", values.join(", ")))
            .unwrap();
    }
    keys.sort_unstable();
    keys
}

#[test]
fn integer_keys_are_read_in_key_order() {
    let mut server = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "256KiB")]);
    let mut c = pg_client(&server);
    let sorted = load(&mut c);
    let desc: Vec<i64> = sorted.iter().rev().copied().collect();

    // Whole orders, and pages of them.
    assert_eq!(ids(&mut c, "SELECT id FROM t ORDER BY id", &[]), sorted);
    assert_eq!(ids(&mut c, "SELECT id FROM t ORDER BY id DESC", &[]), desc);
    assert_eq!(
        ids(&mut c, "SELECT id FROM t ORDER BY id DESC LIMIT 10", &[]),
        desc[..10]
    );
    assert_eq!(
        ids(
            &mut c,
            "SELECT id FROM t ORDER BY id LIMIT 5 OFFSET 2000",
            &[]
        ),
        sorted[2000..2005]
    );
    assert_eq!(
        ids(
            &mut c,
            "SELECT id FROM t ORDER BY id DESC LIMIT 3 OFFSET 2500",
            &[]
        ),
        desc[2500..2503]
    );
    // A filter on another column keeps the order.
    let grp3: Vec<i64> = desc
        .iter()
        .copied()
        .filter(|k| k.rem_euclid(7) == 3)
        .collect();
    assert_eq!(
        ids(
            &mut c,
            "SELECT id FROM t WHERE grp = 3 ORDER BY id DESC LIMIT 20",
            &[]
        ),
        grp3[..20]
    );
    let backward = plan(&mut c, "SELECT id FROM t ORDER BY id DESC LIMIT 10");
    assert!(
        backward.contains("Key Range Scan Backward on t"),
        "{backward}"
    );
    assert!(!backward.contains("Sort"), "{backward}");
    let extremes = plan(&mut c, "SELECT max(id), min(id) FROM t");
    assert!(
        extremes.contains("Shortcut: the first key from each end of the scan"),
        "{extremes}"
    );
    let other = plan(&mut c, "SELECT max(id), min(grp) FROM t");
    assert!(!other.contains("Shortcut"), "{other}");
    assert!(!plan(&mut c, "SELECT id FROM t ORDER BY id").contains("Sort"));

    // Ranges, against the predicate computed here.
    let within = |lo: Option<(i64, bool)>, hi: Option<(i64, bool)>| -> Vec<i64> {
        sorted
            .iter()
            .copied()
            .filter(|k| lo.is_none_or(|(l, incl)| if incl { *k >= l } else { *k > l }))
            .filter(|k| hi.is_none_or(|(h, incl)| if incl { *k <= h } else { *k < h }))
            .collect()
    };
    let cases: &[(&str, Vec<i64>)] = &[
        (
            "id BETWEEN 1000 AND 1200",
            within(Some((1000, true)), Some((1200, true))),
        ),
        ("id > 2990", within(Some((2990, false)), None)),
        ("id >= 2990", within(Some((2990, true)), None)),
        ("id < -250", within(None, Some((-250, false)))),
        ("-250 >= id", within(None, Some((-250, true)))),
        (
            "id > -10.5 AND id < 7.5",
            within(Some((-10, true)), Some((7, true))),
        ),
        (
            "id >= 9.2 AND id <= 11.0",
            within(Some((10, true)), Some((11, true))),
        ),
        ("id > 100 AND id < 50", Vec::new()),
        ("id BETWEEN 5 AND 5", vec![5]),
        ("id < 100000000000000000000", sorted.clone()),
        ("id > 100000000000000000000", Vec::new()),
        (
            "id >= -100000000000000000000.5 AND id < -299",
            within(None, Some((-299, false))),
        ),
        ("id > 9223372036854775806", vec![i64::MAX]),
        ("id < -9223372036854775807", vec![i64::MIN]),
        ("id >= NULL", Vec::new()),
        (
            "id < 'NaN'::float8 AND id > 2995",
            within(Some((2995, false)), None),
        ),
        (
            "id > 5 AND id > 2000 AND id <= 2003",
            within(Some((2000, false)), Some((2003, true))),
        ),
        // The bounds' conjuncts are applied by the range; the others still filter.
        (
            "id % 7 = 0 AND id >= 1000 AND id < 1100",
            within(Some((1000, true)), Some((1100, false)))
                .into_iter()
                .filter(|k| k % 7 == 0)
                .collect(),
        ),
    ];
    for (cond, want) in cases {
        let sql = format!("SELECT id FROM t WHERE {cond} ORDER BY id");
        assert_eq!(&ids(&mut c, &sql, &[]), want, "{sql}");
        let sql = format!("SELECT id FROM t WHERE {cond} ORDER BY id DESC");
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(ids(&mut c, &sql, &[]), rev, "{sql}");
        let count: i64 = c
            .query_one(&format!("SELECT count(*) FROM t WHERE {cond}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(count as usize, want.len(), "count where {cond}");
    }
    let ranged = plan(
        &mut c,
        "SELECT sum(grp) FROM t WHERE id BETWEEN 1000 AND 1200",
    );
    assert!(ranged.contains("Key Range Scan on t"), "{ranged}");
    assert!(
        ranged.contains("Key Cond: id >= 1000 AND id <= 1200"),
        "{ranged}"
    );
    // Parameters, typed int8 and float8, and NULL.
    let statement = c
        .prepare("SELECT id FROM t WHERE id >= $1 AND id < $2 ORDER BY id DESC")
        .unwrap();
    let got: Vec<i64> = c
        .query(&statement, &[&-5i64, &5i64])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(got, (-5..5).rev().collect::<Vec<_>>());
    assert_eq!(
        ids(
            &mut c,
            "SELECT id FROM t WHERE id > $1::float8 ORDER BY id",
            &[&2997.5f64]
        ),
        vec![
            2998,
            2999,
            10_000,
            99_999,
            100_000,
            1_000_000_000_000,
            i64::MAX - 1,
            i64::MAX
        ]
    );
    let none: Option<i64> = None;
    assert!(ids(&mut c, "SELECT id FROM t WHERE id <= $1", &[&none]).is_empty());

    // min and max of the key.
    let extremes = |c: &mut postgres::Client, sql: &str| -> (Option<i64>, Option<i64>) {
        let r = c
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        (r.get(0), r.get(1))
    };
    assert_eq!(
        extremes(&mut c, "SELECT min(id), max(id) FROM t"),
        (Some(i64::MIN), Some(i64::MAX))
    );
    assert_eq!(
        extremes(
            &mut c,
            "SELECT max(id), min(id) FROM t WHERE id BETWEEN -7 AND 2500"
        ),
        (Some(2500), Some(-7))
    );
    assert_eq!(
        extremes(
            &mut c,
            "SELECT min(id), max(id) FROM t WHERE grp = 5 AND id < 3000"
        ),
        (
            sorted.iter().copied().find(|k| k.rem_euclid(7) == 5),
            sorted
                .iter()
                .copied()
                .filter(|k| *k < 3000 && k.rem_euclid(7) == 5)
                .max()
        )
    );
    assert_eq!(
        extremes(
            &mut c,
            "SELECT min(id), max(id) FROM t WHERE id > 5000 AND id < 9000"
        ),
        (None, None)
    );

    // A transaction sees its own writes in order; others do not.
    c.batch_execute(
        "BEGIN; INSERT INTO t VALUES (9223372036854775000, 'x', 1), (-5000, 'y', 1); \
         DELETE FROM t WHERE id = 9223372036854775807 OR id = 2999",
    )
    .unwrap();
    assert_eq!(
        ids(
            &mut c,
            "SELECT id FROM t WHERE id > 1000000000000 ORDER BY id DESC",
            &[]
        ),
        vec![i64::MAX - 1, 9_223_372_036_854_775_000]
    );
    assert_eq!(
        ids(
            &mut c,
            "SELECT id FROM t WHERE id BETWEEN -5001 AND -299 ORDER BY id DESC",
            &[]
        ),
        vec![-299, -300, -5000]
    );
    assert_eq!(
        extremes(&mut c, "SELECT max(id), min(id) FROM t WHERE id < 100000"),
        (Some(99_999), Some(i64::MIN))
    );
    let mut other = pg_client(&server);
    assert_eq!(
        ids(&mut other, "SELECT id FROM t ORDER BY id DESC LIMIT 1", &[]),
        vec![i64::MAX]
    );
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(
        ids(&mut c, "SELECT id FROM t ORDER BY id DESC LIMIT 2", &[]),
        desc[..2]
    );

    // Acknowledged writes, in order after kill -9.
    c.batch_execute("DELETE FROM t WHERE id = 0; INSERT INTO t VALUES (-1000000, 'z', 1)")
        .unwrap();
    drop((c, other));
    server.kill_9();
    server.restart();
    let mut c = pg_client(&server);
    let mut after: Vec<i64> = sorted.iter().copied().filter(|k| *k != 0).collect();
    after.push(-1_000_000);
    after.sort_unstable();
    assert_eq!(ids(&mut c, "SELECT id FROM t ORDER BY id", &[]), after);
    after.reverse();
    assert_eq!(ids(&mut c, "SELECT id FROM t ORDER BY id DESC", &[]), after);
}

#[test]
fn small_integer_keys_rest_and_messages() {
    let server = Server::start();
    let mut c = pg_client(&server);
    c.batch_execute(
        "CREATE TABLE s (id int2 PRIMARY KEY, v text); \
         CREATE TABLE m (id int4 PRIMARY KEY, s_id int2 REFERENCES s (id)); \
         INSERT INTO s SELECT g, 'v' || g FROM generate_series(-40, 40) g; \
         INSERT INTO m SELECT g * 1000, (g % 40)::int2 FROM generate_series(-30, 30) g",
    )
    .unwrap();
    let small: Vec<i64> = c
        .query(
            "SELECT id::int8 FROM s WHERE id >= -3 ORDER BY id DESC LIMIT 4",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(small, vec![40, 39, 38, 37]);
    let r = c
        .query_one("SELECT min(id), max(id) FROM m WHERE id < 0", &[])
        .unwrap();
    assert_eq!((r.get::<_, i32>(0), r.get::<_, i32>(1)), (-30_000, -1000));
    let mid: Vec<i32> = c
        .query(
            "SELECT id FROM m WHERE id BETWEEN -2500 AND 2500 ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(mid, vec![-2000, -1000, 0, 1000, 2000]);

    // Messages name the key as written.
    let e = c
        .batch_execute("INSERT INTO s VALUES (-7, 'again')")
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("23505"));
    let msg = e.as_db_error().unwrap().message().to_string();
    assert!(msg.contains("Key (id)=(-7) already exists"), "{msg}");
    let e = c.batch_execute("DELETE FROM s WHERE id = -3").unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("23503"));
    let detail = e
        .as_db_error()
        .unwrap()
        .detail()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        detail,
        "Key (id)=(-3) is still referenced from table \"m\"."
    );
    let e = c
        .batch_execute("INSERT INTO m VALUES (99, 41)")
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("23503"));

    // REST: by the key as written; a path that is no key of the table is not found.
    let doc = server.get("/s/-7").json();
    assert_eq!(doc["id"], -7);
    assert_eq!(doc["v"], "v-7");
    server.get("/s/07").assert_error(404, "02000");
    server.get("/s/x").assert_error(404, "02000");
    let page = server.get("/s?limit=3&after=-38").json();
    let listed: Vec<i64> = page["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![-37, -36, -35]);
    assert_eq!(page["next_after"], "-35");
    server.get("/s?after=abc").assert_error(400, "22023");
    let put = server.put_json("/s/-41", &serde_json::json!({"v": "new"}));
    assert_eq!(put.status, 201, "{}", put.text);
    let first: i64 = c
        .query_one("SELECT min(id)::int8 FROM s", &[])
        .unwrap()
        .get(0);
    assert_eq!(first, -41);
    let posted = server.post_json("/s", &serde_json::json!({"id": -42, "v": "posted"}));
    assert_eq!(posted.status, 201, "{}", posted.text);
    assert_eq!(posted.json()["id"], -42);
    server
        .post_json("/s", &serde_json::json!({"id": -42, "v": "twice"}))
        .assert_error(409, "23505");
    assert_eq!(server.delete("/s/-42").status, 200);
    server.delete("/s/-42").assert_error(404, "02000");
    let count: i64 = c
        .query_one("SELECT count(*) FROM s WHERE id < -40", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

/// A join whose outer side has thousands of rows but few distinct keys looks each key
/// up once in the inner table instead of reading it whole (the inner scan reads no
/// row); with more distinct keys than a probe takes it reads the inner table and
/// hashes it. Both give the rows computed here, for semi-, anti-, inner and left joins,
/// with NULL keys and keys the inner table lacks.
#[test]
fn outer_sides_with_few_keys_probe_each_key_once() {
    let server = Server::start();
    let mut c = pg_client(&server);
    c.batch_execute(
        "CREATE TABLE inner_t (id int8 PRIMARY KEY, w int4); \
         INSERT INTO inner_t SELECT g, g % 3 FROM generate_series(1, 3000) g; \
         CREATE TABLE outer_t (id int8 PRIMARY KEY, few int4, many int4); \
         INSERT INTO outer_t SELECT g, CASE WHEN g % 97 = 0 THEN NULL ELSE g % 40 * 100 END, g \
           FROM generate_series(1, 5000) g",
    )
    .unwrap();
    // few: 0, 100, ..., 3900 (and NULL); the inner ids run 1..=3000.
    let few = |g: i64| (g % 97 != 0).then_some(g % 40 * 100);
    let present = |k: i64| (1..=3000).contains(&k);
    let count = |c: &mut postgres::Client, sql: &str| -> i64 {
        c.query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    };
    let outer = 1..=5000i64;
    let semi = outer
        .clone()
        .filter(|g| few(*g).is_some_and(present))
        .count() as i64;
    let anti = outer.clone().count() as i64 - semi;
    let left_nulls = anti;
    let weight: i64 = outer
        .clone()
        .filter_map(few)
        .filter(|k| present(*k))
        .map(|k| k % 3)
        .sum();
    let cases = [
        (
            "SELECT count(*) FROM outer_t o WHERE EXISTS (SELECT 1 FROM inner_t i WHERE i.id = o.few)",
            semi,
        ),
        (
            "SELECT count(*) FROM outer_t o WHERE NOT EXISTS (SELECT 1 FROM inner_t i WHERE i.id = o.few)",
            anti,
        ),
        (
            "SELECT sum(i.w) FROM outer_t o JOIN inner_t i ON i.id = o.few",
            weight,
        ),
        (
            "SELECT count(*) FROM outer_t o LEFT JOIN inner_t i ON i.id = o.few WHERE i.id IS NULL",
            left_nulls,
        ),
    ];
    for (sql, want) in &cases {
        assert_eq!(count(&mut c, sql), *want, "{sql}");
        let analyzed = plan(&mut c, &format!("ANALYZE {sql}"));
        assert!(
            analyzed.contains("Index Probe: inner_t by key"),
            "{analyzed}"
        );
        assert!(
            analyzed.contains("Seq Scan on inner_t  (actual rows=0 "),
            "{sql}: the inner table is read whole\n{analyzed}"
        );
    }
    // Thousands of distinct keys: the inner table is read and hashed; same answers.
    let many =
        "SELECT count(*) FROM outer_t o WHERE EXISTS (SELECT 1 FROM inner_t i WHERE i.id = o.many)";
    assert_eq!(count(&mut c, many), 3000);
    let analyzed = plan(&mut c, &format!("ANALYZE {many}"));
    assert!(
        analyzed.contains("Seq Scan on inner_t  (actual rows=3000 "),
        "{analyzed}"
    );
}

/// A few rows of a key range joined to a large table by an indexed column: the
/// planner counts the rows in the range (not a third of the table), puts them on the
/// outer side however the join is written, and looks their keys up in the index, the
/// large table never read whole; where the inner side reads only the index's column
/// and the key, its rows come from the index entries alone. The answers are the ones
/// computed here.
#[test]
fn key_ranges_counted_by_the_planner_probe_an_index_of_the_other_side() {
    let server = Server::start();
    let mut c = pg_client(&server);
    c.batch_execute(
        "CREATE TABLE items (id int8 PRIMARY KEY, qty int4, price float8); \
         INSERT INTO items SELECT g, g % 500, g * 0.5 FROM generate_series(1, 20000) g; \
         CREATE INDEX items_qty ON items (qty)",
    )
    .unwrap();
    // For a.id in 1..50: the b rows whose qty is a.id.
    let pairs: Vec<(i64, i64)> = (1..50i64)
        .flat_map(|a| {
            (1..=20000i64)
                .filter(move |g| g % 500 == a)
                .map(move |b| (a, b))
        })
        .collect();
    let want_ids: i64 = pairs.iter().map(|(a, b)| a * 100_000 + b).sum();
    let want_price: f64 = pairs.iter().map(|(_, b)| *b as f64 * 0.5).sum();
    let cases = [
        (
            "SELECT count(*), sum(a.id * 100000 + b.id)::int8 FROM items a JOIN items b ON a.id = b.qty WHERE a.id < 50",
            format!("{} {want_ids}", pairs.len()),
        ),
        (
            "SELECT count(*), sum(a.id * 100000 + b.id)::int8 FROM items b JOIN items a ON b.qty = a.id WHERE a.id BETWEEN 1 AND 49",
            format!("{} {want_ids}", pairs.len()),
        ),
        (
            "SELECT count(*), sum(b.price) FROM items a, items b WHERE a.id = b.qty AND a.id <= 49 AND a.id > 0",
            format!("{} {want_price}", pairs.len()),
        ),
    ];
    for (sql, want) in &cases {
        let row = c
            .query_one(*sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let got = if sql.contains("price") {
            format!("{} {}", row.get::<_, i64>(0), row.get::<_, f64>(1))
        } else {
            format!("{} {}", row.get::<_, i64>(0), row.get::<_, i64>(1))
        };
        assert_eq!(&got, want, "{sql}");
        let analyzed = plan(&mut c, &format!("ANALYZE {sql}"));
        assert!(
            analyzed.contains("Index Probe: items by index items_qty"),
            "{sql}\n{analyzed}"
        );
        assert!(
            analyzed.contains("Seq Scan on items  (actual rows=0 "),
            "{sql}: the large side is read whole\n{analyzed}"
        );
    }
    // A range holding most of the table is no outer side to probe from.
    let wide = "SELECT count(*) FROM items a JOIN items b ON a.id = b.qty WHERE a.id < 15000";
    assert!(!plan(&mut c, wide).contains("Index Probe"), "{wide}");
}
