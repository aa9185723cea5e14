//! Engine micro-benchmarks above the storage layer (criterion): B-tree index lookups and
//! range reads, XML and CSV block encode and decode, a client's JSON document read and
//! written back (a REST POST's body and answer), expression evaluation, and the
//! executor on scan-filter-aggregate pipelines over a typed table and a schemaless
//! collection. (The storage layer's own, WAL group commit, memtable, segment gets and
//! scans, are in `storage.rs`.)
//!
//! Run: `cargo bench --bench engine` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::ops::Bound;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tissdb::doc::{Limits, Object, Value, binary, csv_block, json, keycode, xml};
use tissdb::query::Outcome;
use tissdb::query::expr::{BinOp, EvalContext, Expr};
use tissdb::storage::btree::BTree;
use tissdb::{Config, Database, Session};

/// The server's allocator, so that allocation costs what it costs there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Index entries in the B-tree benchmarks: 50 brands of 4,000 documents each.
const INDEX_ENTRIES: u64 = 200_000;
/// Rows of the executor benchmarks' table and documents of its collection.
const TABLE_ROWS: u64 = 100_000;
/// Entries in one encoded block (about what a 32 KiB block holds of small rows).
const BLOCK_ENTRIES: u64 = 256;

fn brand(i: u64) -> String {
    format!("brand_{:02}", i % 50)
}

fn product(i: u64) -> Object {
    let mut dimensions = Object::default();
    dimensions.insert("width_mm".into(), Value::Int(110));
    dimensions.insert("height_mm".into(), Value::Int(180 + (i % 7) as i64));
    let mut specs = Object::default();
    specs.insert(
        "weight".into(),
        Value::String(format!("{}g", 200 + i % 100)),
    );
    specs.insert("dimensions".into(), Value::Object(Box::new(dimensions)));
    specs.insert(
        "features".into(),
        Value::Array(vec![
            Value::String("Voice Control".into()),
            Value::String("Water Resistant".into()),
        ]),
    );
    let mut o = Object::default();
    o.insert("id".into(), Value::String(i.to_string()));
    o.insert("name".into(), Value::String(format!("Smart Speaker {i}")));
    o.insert("brand".into(), Value::String(brand(i)));
    o.insert("price".into(), Value::Float(99.99 + (i % 100) as f64));
    o.insert("is_available".into(), Value::Bool(!i.is_multiple_of(3)));
    o.insert("specs".into(), Value::Object(Box::new(specs)));
    o.insert(
        "tags".into(),
        Value::Array(vec![
            Value::String("home".into()),
            Value::String("new".into()),
        ]),
    );
    o
}

fn row(i: u64) -> Object {
    let mut o = Object::default();
    o.insert("id".into(), Value::Int(i as i64));
    o.insert("brand".into(), Value::String(brand(i)));
    o.insert("price".into(), Value::Float(9.99 + (i % 100) as f64));
    o.insert("qty".into(), Value::Int((i % 1000) as i64));
    o
}

fn btree(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("brand.idx");
    // The server's default index page cache holds all of this tree.
    let mut tree = BTree::create_with_cache(&path, 64 << 20).unwrap();
    for i in 0..INDEX_ENTRIES {
        let entry = keycode::encode_index_entry(&[Value::String(brand(i))], &format!("doc{i}"));
        tree.insert(&entry, b"").unwrap();
    }
    tree.commit().unwrap();
    let uncached = BTree::open_with_cache(&path, 0).unwrap();
    let mut g = c.benchmark_group("btree");
    g.throughput(Throughput::Elements(1));
    // A point lookup of an exact entry (what a unique index probe does), with the pages
    // cached, and read from the file (the OS's page cache) and decoded each time.
    let mut i = 0u64;
    for (name, tree) in [("get", &tree), ("get_uncached", &uncached)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 7919) % INDEX_ENTRIES;
                let entry =
                    keycode::encode_index_entry(&[Value::String(brand(i))], &format!("doc{i}"));
                black_box(tree.get(&entry).unwrap().expect("present"));
            })
        });
    }
    // The first 10 entries of one brand (W4's and D3's `brand = ? LIMIT 10`).
    g.bench_function("range_first_10", |b| {
        b.iter(|| {
            i = (i + 7919) % INDEX_ENTRIES;
            let mut prefix = Vec::new();
            keycode::encode_key(&[Value::String(brand(i))], &mut prefix);
            let mut n = 0;
            for entry in tree
                .range(Bound::Included(&prefix), Bound::Unbounded)
                .take(10)
            {
                black_box(entry.unwrap());
                n += 1;
            }
            assert_eq!(n, 10);
        })
    });
    // An indexed write's change to the tree: an entry of a new document put among the
    // others (its leaf changed in memory, split when full), then deleted again so the
    // tree stays the same size.
    g.bench_function("insert_then_delete", |b| {
        b.iter(|| {
            i = (i + 7919) % INDEX_ENTRIES;
            let entry = keycode::encode_index_entry(
                &[Value::String(brand(i))],
                &format!("new{}", INDEX_ENTRIES + i),
            );
            tree.insert(&entry, b"").unwrap();
            assert!(tree.delete(&entry).unwrap());
        })
    });
    g.finish();
}

fn blocks(c: &mut Criterion) {
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements(BLOCK_ENTRIES));
    let ids: Vec<String> = (0..BLOCK_ENTRIES).map(|i| format!("doc{i:08}")).collect();
    let products: Vec<Object> = (0..BLOCK_ENTRIES).map(product).collect();
    let rows: Vec<Object> = (0..BLOCK_ENTRIES).map(row).collect();
    let entries = |docs: &'_ [Object]| -> Vec<(String, Object)> {
        ids.iter().cloned().zip(docs.iter().cloned()).collect()
    };
    let products = entries(&products);
    let rows = entries(&rows);
    // Nested documents go to XML blocks, rows of one shape to CSV blocks.
    let xml_block = xml::encode_block(&borrowed(&products));
    let csv_bytes = csv_block::encode_block(&borrowed(&rows)).expect("rows of one shape");
    g.bench_function(BenchmarkId::new("encode", "xml_documents"), |b| {
        b.iter(|| black_box(xml::encode_block(&borrowed(&products))))
    });
    g.bench_function(BenchmarkId::new("decode", "xml_documents"), |b| {
        b.iter(|| black_box(xml::decode_block(xml_block.as_bytes()).unwrap()))
    });
    // What an index build and a scan of a few fields read: one top-level field of each
    // document, or none (the keys alone).
    let brand = ["brand".to_string()];
    g.bench_function(
        BenchmarkId::new("decode_keeping_one", "xml_documents"),
        |b| {
            b.iter(|| {
                black_box(xml::decode_block_keeping(xml_block.as_bytes(), Some(&brand)).unwrap())
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("decode_keeping_none", "xml_documents"),
        |b| {
            b.iter(|| {
                black_box(xml::decode_block_keeping(xml_block.as_bytes(), Some(&[])).unwrap())
            })
        },
    );
    // What a flush does: documents in their binary form (a memtable's) to XML.
    let records: Vec<(String, Vec<u8>)> = products
        .iter()
        .map(|(id, d)| (id.clone(), binary::encode_object(d)))
        .collect();
    let record_refs: Vec<(&str, Option<&[u8]>)> = records
        .iter()
        .map(|(id, r)| (id.as_str(), Some(r.as_slice())))
        .collect();
    g.bench_function(BenchmarkId::new("encode", "xml_records"), |b| {
        b.iter(|| black_box(xml::encode_block_records(&record_refs).unwrap()))
    });
    // What compaction does with an XML block now: its elements found, not decoded.
    g.bench_function(BenchmarkId::new("split", "xml_documents"), |b| {
        b.iter(|| black_box(xml::split_block(xml_block.as_bytes()).unwrap()))
    });
    g.bench_function(BenchmarkId::new("encode", "csv_rows"), |b| {
        b.iter(|| black_box(csv_block::encode_block(&borrowed(&rows))))
    });
    g.bench_function(BenchmarkId::new("decode", "csv_rows"), |b| {
        b.iter(|| black_box(csv_block::decode_block(&csv_bytes).unwrap()))
    });
    g.finish();
}

/// The body `bench/rest/post.lua` sends: a ~300-byte nested product document.
const POST_BODY: &str = r#"{"name": "Smart Watch 7", "brand": "brand_07", "price": 299.99, "category": "wearables", "is_available": true, "specs": {"weight": "250g", "dimensions": {"width_mm": 40, "height_mm": 44, "depth_mm": 11}, "bluetooth_version": 5.2}, "tags": ["wearables", "new", "premium"], "stock": 12}"#;

/// A REST POST's own work on its document: the JSON body read into a document, the
/// document written back as the 201 answer's JSON text.
fn json_documents(c: &mut Criterion) {
    let mut g = c.benchmark_group("json_document");
    g.throughput(Throughput::Bytes(POST_BODY.len() as u64));
    let limits = Limits::default();
    g.bench_function("parse", |b| {
        b.iter(|| black_box(json::parse_document(POST_BODY.as_bytes(), &limits).unwrap()))
    });
    let doc = json::parse_document(POST_BODY.as_bytes(), &limits).unwrap();
    g.bench_function("write", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(256);
            json::write_document("0b5e8d3c-6f0e-4d55-9a57-3f1c2f4e9a10", &doc, &mut out);
            black_box(out)
        })
    });
    g.finish();
}

/// A block's entries as the codecs take them.
fn borrowed(docs: &[(String, Object)]) -> Vec<(&str, Option<&Object>)> {
    docs.iter().map(|(id, d)| (id.as_str(), Some(d))).collect()
}

fn col(i: usize) -> Box<Expr> {
    Box::new(Expr::Column(i))
}

fn lit(v: Value) -> Box<Expr> {
    Box::new(Expr::Literal(v))
}

fn expressions(c: &mut Criterion) {
    let mut g = c.benchmark_group("expr");
    g.throughput(Throughput::Elements(1));
    let ctx = EvalContext {
        params: &[],
        now: 0,
        subqueries: None,
    };
    // Columns: id, brand, price, qty.
    let rows: Vec<Vec<Value>> = (0..1024)
        .map(|i| row(i).into_iter().map(|(_, v)| v).collect())
        .collect();
    // price * 1.1 > 50.0 AND brand = 'brand_07'
    let filter = Expr::Binary(
        BinOp::And,
        Box::new(Expr::Binary(
            BinOp::Gt,
            Box::new(Expr::Binary(BinOp::Mul, col(2), lit(Value::Float(1.1)))),
            lit(Value::Float(50.0)),
        )),
        Box::new(Expr::Binary(
            BinOp::Eq,
            col(1),
            lit(Value::String("brand_07".into())),
        )),
    );
    let mut i = 0usize;
    g.bench_function("filter_arith_and_eq", |b| {
        b.iter(|| {
            i = (i + 1) % rows.len();
            black_box(filter.eval(&rows[i], &ctx).unwrap())
        })
    });
    // qty + 1 (an UPDATE's SET)
    let add = Expr::Binary(BinOp::Add, col(3), lit(Value::Int(1)));
    g.bench_function("int_add", |b| {
        b.iter(|| {
            i = (i + 1) % rows.len();
            black_box(add.eval(&rows[i], &ctx).unwrap())
        })
    });
    // specs->'dimensions'->>'width_mm' on a document column.
    let docs: Vec<Vec<Value>> = (0..1024)
        .map(|i| vec![product(i).swap_remove("specs").unwrap()])
        .collect();
    let path = Expr::Binary(
        BinOp::LongArrow,
        Box::new(Expr::Binary(
            BinOp::Arrow,
            col(0),
            lit(Value::String("dimensions".into())),
        )),
        lit(Value::String("width_mm".into())),
    );
    g.bench_function("jsonb_path", |b| {
        b.iter(|| {
            i = (i + 1) % docs.len();
            black_box(path.eval(&docs[i], &ctx).unwrap())
        })
    });
    g.finish();
}

/// Runs one statement and returns its rows.
fn rows_of(s: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    match s.execute_batch(sql).pop().unwrap().unwrap() {
        Outcome::Rows { rows, .. } => rows,
        other => panic!("{sql}: {other:?}"),
    }
}

fn execute(s: &mut Session, sql: &str) {
    for r in s.execute_batch(sql) {
        r.unwrap();
    }
}

/// A database holding `items` (a typed table) and `products` (a schemaless collection
/// of nested documents), TABLE_ROWS each, loaded by multi-row INSERTs.
fn loaded_database(dir: &std::path::Path) -> Session {
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let mut s = Session::new(Database::open(config).unwrap());
    execute(
        &mut s,
        "CREATE TABLE items (id int PRIMARY KEY, brand text, price float8, qty int); \
         CREATE COLLECTION products",
    );
    for start in (0..TABLE_ROWS).step_by(1000) {
        let values: Vec<String> = (start..start + 1000)
            .map(|i| {
                format!(
                    "({i}, '{}', {:.2}, {})",
                    brand(i),
                    9.99 + (i % 100) as f64,
                    i % 1000
                )
            })
            .collect();
        execute(
            &mut s,
            &format!("INSERT INTO items VALUES {}", values.join(", ")),
        );
        let docs: Vec<String> = (start..start + 1000)
            .map(|i| {
                format!(
                    "('{i}', 'Smart Speaker {i}', '{}', {:.2}, 'category_{}', {}, \
                     '{{\"weight\": \"{}g\", \"dimensions\": {{\"width_mm\": 110}}}}'::jsonb)",
                    brand(i),
                    99.99 + (i % 100) as f64,
                    i % 10,
                    i % 500,
                    200 + i % 100
                )
            })
            .collect();
        execute(
            &mut s,
            &format!(
                "INSERT INTO products (id, name, brand, price, category, stock, specs) VALUES {}",
                docs.join(", ")
            ),
        );
    }
    s
}

fn executor(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = loaded_database(dir.path());
    let mut g = c.benchmark_group("executor");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(TABLE_ROWS));
    let queries = [
        // W5's shape with a filter: scan, filter, hash aggregate.
        (
            "table_filter_group_by",
            "SELECT brand, count(*), avg(price), sum(qty) FROM items WHERE qty >= 100 GROUP BY brand",
            50,
        ),
        // D4's shape: a top-level field of nested documents.
        (
            "documents_group_by_avg",
            "SELECT category, avg(price) FROM products GROUP BY category",
            10,
        ),
        // A filter on a nested field of every document, counted.
        (
            "documents_nested_filter_count",
            "SELECT count(*) FROM products WHERE specs.weight = '250g'",
            1,
        ),
    ];
    for (name, sql, groups) in queries {
        assert_eq!(rows_of(&mut s, sql).len(), groups, "{sql}");
        g.bench_function(name, |b| b.iter(|| black_box(rows_of(&mut s, sql))));
    }
    g.finish();
}

criterion_group!(
    benches,
    btree,
    blocks,
    json_documents,
    expressions,
    executor
);
criterion_main!(benches);
