//! Storage engine micro-benchmarks (criterion): WAL group commit, memtable inserts,
//! segment point gets (block cache hit and miss), one entry of a CSV or XML block found
//! without decoding the block, and full-scan decode throughput compared with plain zstd
//! decompression of the same blocks.
//!
//! Run: `cargo bench --bench storage` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tissdb::doc::{Object, Value, csv_block, xml};
use tissdb::storage::cache::BlockCache;
use tissdb::storage::keys;
use tissdb::storage::memtable::Memtable;
use tissdb::storage::segment::{Segment, SegmentIter, SegmentWriter, block};
use tissdb::storage::shape::Columns;
use tissdb::storage::wal::{Wal, WalOp};

/// The server's allocator, so that allocation costs what it costs there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn product(i: u64) -> Object {
    let mut specs = Object::default();
    specs.insert(
        "weight".into(),
        Value::String(format!("{}g", 200 + i % 100)),
    );
    specs.insert("bluetooth_version".into(), Value::Float(5.2));
    specs.insert(
        "features".into(),
        Value::Array(vec![
            Value::String("Noise Cancellation".into()),
            Value::String("24-hour Battery".into()),
        ]),
    );
    let mut review = Object::default();
    review.insert("rating".into(), Value::Int((i % 5) as i64 + 1));
    review.insert(
        "comment".into(),
        Value::String("Amazing sound quality!".into()),
    );
    let mut o = Object::default();
    o.insert(
        "name".into(),
        Value::String(format!("Wireless Headphones {i}")),
    );
    o.insert("brand".into(), Value::String(format!("brand{}", i % 50)));
    o.insert("price".into(), Value::Float(99.99 + (i % 100) as f64));
    o.insert("is_available".into(), Value::Bool(!i.is_multiple_of(3)));
    o.insert(
        "release_date".into(),
        Value::DateTime(1_698_314_400_000_000),
    );
    o.insert("specs".into(), Value::Object(Box::new(specs)));
    o.insert(
        "reviews".into(),
        Value::Array(vec![Value::Object(Box::new(review))]),
    );
    o
}

fn row(i: u64) -> Object {
    let mut o = Object::default();
    o.insert("name".into(), Value::String(format!("item {i}")));
    o.insert("brand".into(), Value::String(format!("brand{}", i % 50)));
    o.insert("price".into(), Value::Float(9.99 + (i % 100) as f64));
    o.insert("qty".into(), Value::Int((i % 1000) as i64));
    o
}

fn key(i: u64) -> Vec<u8> {
    keys::encode(1, &format!("doc{i:08}"))
}

fn wal_commits(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_commit");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    let value = vec![b'x'; 300];
    for writers in [1usize, 8] {
        g.bench_with_input(
            BenchmarkId::new("writers", writers),
            &writers,
            |b, &writers| {
                let dir = tempfile::tempdir().unwrap();
                let wal = Arc::new(Wal::open(dir.path(), 1, 64 << 20).unwrap());
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(writers as u64);
                    let start = Instant::now();
                    let handles: Vec<_> = (0..writers)
                        .map(|t| {
                            let wal = wal.clone();
                            let value = value.clone();
                            std::thread::spawn(move || {
                                for i in 0..per_thread {
                                    let op = WalOp::Put {
                                        key: format!("{t}-{i}").into_bytes(),
                                        value: value.clone(),
                                    };
                                    wal.append(&[op]).unwrap();
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().unwrap();
                    }
                    // Time per commit, counting every writer's commits.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_thread * writers as u64) as f64)
                });
            },
        );
    }
    g.finish();
}

fn memtable_inserts(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable");
    g.throughput(Throughput::Elements(1));
    let value = vec![b'x'; 300];
    g.bench_function("insert", |b| {
        let table = Memtable::new();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            table.insert(
                key(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40),
                i,
                Some(value.clone()),
            );
        });
    });
    // Point reads of a table of 200k entries, found and not found.
    let table = Memtable::new();
    let n = 200_000u64;
    for i in 0..n {
        table.insert(key(i * 2), i + 1, Some(value.clone()));
    }
    let mut i = 0u64;
    g.bench_function("get_found", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(table.get(&key(i * 2)).expect("present"));
        })
    });
    g.bench_function("get_absent", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            assert!(black_box(table.get(&key(i * 2 + 1))).is_none());
        })
    });
    g.finish();
}

fn build_segment(dir: &std::path::Path, id: u64, n: u64, doc: fn(u64) -> Object) -> Arc<Segment> {
    let mut w = SegmentWriter::create(dir, id, 32 << 10, 3).unwrap();
    for i in 0..n {
        w.add(key(i), Some(doc(i))).unwrap();
    }
    let written = w.finish().unwrap();
    Arc::new(Segment::open(&written.path, id).unwrap())
}

fn segment_gets(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let seg = build_segment(dir.path(), 1, n, product);
    let mut g = c.benchmark_group("segment_get");
    g.throughput(Throughput::Elements(1));
    for (name, cache) in [
        ("cached", BlockCache::new(1 << 30)),
        ("uncached", BlockCache::new(0)),
    ] {
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                let k = key(i);
                let e = seg.get(&k, Segment::hash_key(&k), &cache).unwrap();
                black_box(e.expect("present"));
            })
        });
    }
    // Two fields of a row, as a query reads them, from a cached block.
    let rows = build_segment(dir.path(), 2, 100_000, row);
    let cache = BlockCache::new(1 << 30);
    let mut shape = Columns::new(vec![None, Some("brand".into()), Some("price".into())]);
    let mut i = 0u64;
    g.bench_function("cached_two_fields", |b| {
        b.iter(|| {
            i = (i + 7919) % 100_000;
            let k = key(i);
            let got = rows.get_shaped(&k, Segment::hash_key(&k), &cache, &mut shape);
            black_box(got.unwrap().expect("present"));
        })
    });
    g.finish();
}

/// One entry of a block's payload found as a point read past a bloom filter finds it
/// (an insert's duplicate check on a false positive, a read past a full cache), against
/// decoding the whole block to find it (what a CSV block took before 0a52750).
fn block_entries(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("block_entry");
    g.throughput(Throughput::Elements(1));
    for (name, id, doc) in [
        ("csv_rows", 3, row as fn(u64) -> Object),
        ("xml_documents", 4, product),
    ] {
        let seg = build_segment(dir.path(), id, 20_000, doc);
        let raw = seg.read_raw_block(seg.block_count() / 2).unwrap();
        let (encoding, payload) = block::decompress(&raw, 1 << 24).unwrap();
        let ids: Vec<String> = match encoding {
            block::Encoding::Csv => csv_block::decode_block(&payload),
            block::Encoding::Xml => xml::decode_block(&payload),
        }
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
        let middle = &ids[ids.len() / 2];
        let present = keys::encode(1, middle);
        let absent = keys::encode(1, &format!("{middle}x"));
        for (case, key) in [("present", &present), ("absent", &absent)] {
            g.bench_function(BenchmarkId::new(format!("{name}/one"), case), |b| {
                b.iter(|| black_box(block::entry_in_payload(encoding, &payload, key).unwrap()))
            });
        }
        if encoding == block::Encoding::Csv {
            g.bench_function(
                BenchmarkId::new(format!("{name}/whole_block"), "present"),
                |b| {
                    b.iter(|| {
                        let rows = csv_block::decode_block(&payload).unwrap();
                        black_box(rows.into_iter().find(|(i, _)| i == middle))
                    })
                },
            );
        }
    }
    g.finish();
}

fn scans(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("scan");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    for (name, id, doc) in [
        ("xml_documents", 1, product as fn(u64) -> Object),
        ("csv_rows", 2, row),
    ] {
        let seg = build_segment(dir.path(), id, 50_000, doc);
        g.throughput(Throughput::Bytes(seg.payload_bytes()));
        let cache = Arc::new(BlockCache::new(0));
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| {
                let it = SegmentIter::new(
                    seg.clone(),
                    cache.clone(),
                    false,
                    Bound::Unbounded,
                    Bound::Unbounded,
                );
                let mut n = 0usize;
                for e in it {
                    black_box(e.unwrap());
                    n += 1;
                }
                n
            })
        });
        let raw: Vec<Vec<u8>> = (0..seg.block_count())
            .map(|i| seg.read_raw_block(i).unwrap())
            .collect();
        g.bench_function(BenchmarkId::new("zstd_only", name), |b| {
            b.iter(|| {
                let mut total = 0usize;
                for r in &raw {
                    total += block::decompress(r, 1 << 24).unwrap().1.len();
                }
                black_box(total)
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    wal_commits,
    memtable_inserts,
    segment_gets,
    block_entries,
    scans
);
criterion_main!(benches);
