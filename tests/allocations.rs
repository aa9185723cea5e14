//! Heap allocations of the executor's scan-filter-aggregate path, counted by dhat's
//! allocator: a full scan that filters and aggregates allocates per block, per group and
//! per statement, not per row (rows, their strings and keys are reused: see
//! `tissdb::storage::recycle`), whether the rows are in the memtable or in segments.
//! (Not yet so: a filter on a nested field, `specs.weight = ...`, which decodes the
//! whole `specs` object of each document.)

mod common;

use tissdb::Session;
use tissdb::query::Outcome;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const ROWS: usize = 20_000;

fn execute(s: &mut Session, sql: &str) {
    for r in s.execute_batch(sql) {
        r.unwrap();
    }
}

/// Heap blocks allocated while `sql` runs (after one warm-up run), and its row count.
fn allocations_of(s: &mut Session, sql: &str) -> (u64, usize) {
    let run = |s: &mut Session| match s.execute_batch(sql).pop().unwrap().unwrap() {
        Outcome::Rows { rows, .. } => rows.len(),
        other => panic!("{other:?}"),
    };
    run(s);
    let before = dhat::HeapStats::get().total_blocks;
    let rows = run(s);
    (dhat::HeapStats::get().total_blocks - before, rows)
}

#[test]
fn scan_filter_aggregate_does_not_allocate_per_row() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let (_dir, db) = common::open();
    let mut s = Session::new(db.clone());
    execute(
        &mut s,
        "CREATE TABLE items (id int PRIMARY KEY, brand text, price float8, qty int); \
         CREATE COLLECTION products",
    );
    for start in (0..ROWS).step_by(1000) {
        let items: Vec<String> = (start..start + 1000)
            .map(|i| format!("({i}, 'brand_{:02}', {}.5, {})", i % 50, i % 100, i % 1000))
            .collect();
        execute(
            &mut s,
            &format!("INSERT INTO items VALUES {}", items.join(", ")),
        );
        let docs: Vec<String> = (start..start + 1000)
            .map(|i| {
                format!(
                    "('{i}', 'category_{}', {}.5, '{{\"weight\": \"{}g\"}}'::jsonb)",
                    i % 10,
                    i % 100,
                    200 + i % 100
                )
            })
            .collect();
        execute(
            &mut s,
            &format!(
                "INSERT INTO products (id, category, price, specs) VALUES {}",
                docs.join(", ")
            ),
        );
    }
    let queries = [
        (
            "SELECT brand, count(*), avg(price), sum(qty) FROM items WHERE qty >= 100 GROUP BY brand",
            50,
        ),
        (
            "SELECT count(*), max(price) FROM items WHERE brand = 'brand_07' AND price > 10",
            1,
        ),
        (
            "SELECT category, avg(price) FROM products GROUP BY category",
            10,
        ),
    ];
    for (place, flush) in [("memtable", false), ("segments", true)] {
        if flush {
            db.storage().flush().unwrap();
        }
        for (sql, groups) in queries {
            let (allocations, rows) = allocations_of(&mut s, sql);
            assert_eq!(rows, groups, "{sql}");
            println!("{place}: {allocations} allocations for {ROWS} rows: {sql}");
            // One allocation per row would be ROWS of them.
            assert!(
                allocations < (ROWS / 5) as u64,
                "{place}: {allocations} heap allocations for a scan of {ROWS} rows: {sql}"
            );
        }
    }
}
