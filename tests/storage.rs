//! Storage engine tests through its public API: segments, flush, recovery, compaction.

use std::ops::Bound;
use std::sync::Arc;

use tissdb::doc::{Object, Value};
use tissdb::error::Error;
use tissdb::storage::cache::BlockCache;
use tissdb::storage::segment::{Encoding, Segment, SegmentIter, SegmentWriter};
use tissdb::storage::shape::{Columns, Presence, Whole};
use tissdb::storage::{Op, Storage, StorageOptions, keys};

fn scalar_doc(i: i64) -> Object {
    let mut o = Object::default();
    o.insert("name".into(), Value::String(format!("item {i}")));
    o.insert("price".into(), Value::Float(i as f64 + 0.99));
    o.insert("qty".into(), Value::Int(i));
    o
}

fn nested_doc(i: i64) -> Object {
    let mut specs = Object::default();
    specs.insert("weight".into(), Value::String("250g".into()));
    specs.insert(
        "features".into(),
        Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
    );
    let mut o = Object::default();
    o.insert("n".into(), Value::Int(i));
    o.insert("specs".into(), Value::Object(Box::new(specs)));
    o.insert("when".into(), Value::DateTime(1_698_314_400_000_000 + i));
    o
}

fn small_opts() -> StorageOptions {
    StorageOptions {
        memtable_size: 64 << 10,
        block_size: 4 << 10,
        ..StorageOptions::default()
    }
}

fn key(c: u32, i: i64) -> Vec<u8> {
    keys::encode(c, &format!("doc{i:06}"))
}

fn put(k: Vec<u8>, doc: Object) -> Op {
    Op::Put { key: k, doc }
}

fn all(s: &Storage) -> Vec<Vec<u8>> {
    s.scan(Bound::Unbounded, Bound::Unbounded)
        .map(|r| r.unwrap().0)
        .collect()
}

#[test]
fn segment_round_trip_with_csv_and_xml_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create(dir.path(), 7, 2048, 3).unwrap();
    // Collection 1: rows of scalars (CSV blocks); collection 2: nested documents and
    // tombstones (XML blocks).
    for i in 0..500 {
        w.add(key(1, i), Some(scalar_doc(i))).unwrap();
    }
    for i in 0..300 {
        let doc = (i % 3 != 0).then(|| nested_doc(i));
        w.add(key(2, i), doc).unwrap();
    }
    let written = w.finish().unwrap();
    assert_eq!(written.entries, 800);
    let seg = Arc::new(Segment::open(&written.path, 7).unwrap());
    let enc = seg.block_encodings();
    assert!(enc.contains(&Encoding::Csv), "{enc:?}");
    assert!(enc.contains(&Encoding::Xml), "{enc:?}");
    let cache = Arc::new(BlockCache::new(1 << 20));
    for i in [0, 1, 250, 499] {
        let k = key(1, i);
        let e = seg.get(&k, Segment::hash_key(&k), &cache).unwrap().unwrap();
        assert_eq!(e.doc, Some(scalar_doc(i)));
    }
    let k = key(2, 3);
    let e = seg.get(&k, Segment::hash_key(&k), &cache).unwrap().unwrap();
    assert_eq!(e.doc, None, "a tombstone");
    let k = key(2, 4);
    let e = seg.get(&k, Segment::hash_key(&k), &cache).unwrap().unwrap();
    assert_eq!(e.doc, Some(nested_doc(4)));
    let absent = key(1, 100_000);
    let found = seg
        .get(&absent, Segment::hash_key(&absent), &cache)
        .unwrap();
    assert!(found.is_none());
    // A range scan over collection 2 only.
    let iter = SegmentIter::new(
        seg.clone(),
        cache.clone(),
        false,
        Bound::Included(keys::collection_start(2)),
        Bound::Excluded(keys::collection_start(3)),
    );
    let got: Vec<_> = iter.map(|e| e.unwrap()).collect();
    assert_eq!(got.len(), 300);
    assert!(got.windows(2).all(|w| w[0].key < w[1].key));
}

/// Point reads find every key, and no absent one, over many small blocks where keys
/// are short, prefixes of each other, or share long prefixes.
#[test]
fn point_reads_find_keys_of_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids: Vec<String> = Vec::new();
    for n in 1..=4000u32 {
        // Ids of 1 to 8 letters over "ab", in every mix (n in binary after its top bit).
        let bits = 31 - n.leading_zeros();
        let id: String = (0..bits)
            .rev()
            .map(|b| if n >> b & 1 == 1 { 'b' } else { 'a' })
            .collect();
        ids.push(format!("{id}x"));
    }
    ids.extend((0..300).map(|i| format!("longcommonprefix{i:05}")));
    let mut keyed: Vec<(Vec<u8>, String)> = ids
        .iter()
        .map(|id| (keys::encode(3, id), id.clone()))
        .collect();
    keyed.sort();
    let mut w = SegmentWriter::create(dir.path(), 9, 1024, 3).unwrap();
    for (k, id) in &keyed {
        let mut doc = Object::default();
        doc.insert("id".into(), Value::String(id.clone()));
        w.add(k.clone(), Some(doc)).unwrap();
    }
    let written = w.finish().unwrap();
    let seg = Segment::open(&written.path, 9).unwrap();
    assert!(seg.block_count() > 50, "{} blocks", seg.block_count());
    let cache = BlockCache::new(8 << 20);
    for (k, id) in &keyed {
        let e = seg.get(k, Segment::hash_key(k), &cache).unwrap();
        let doc = e
            .and_then(|e| e.doc)
            .unwrap_or_else(|| panic!("{id} not found"));
        assert_eq!(doc.get("id"), Some(&Value::String(id.clone())));
    }
    for absent in ["", "a", "abx0", "bbbbbbbbbbbbx", "longcommonprefix", "zz"] {
        let k = keys::encode(3, absent);
        let found = seg.get(&k, Segment::hash_key(&k), &cache).unwrap();
        assert!(found.is_none(), "{absent:?}");
    }
}

/// Range scans that start and end inside blocks give the keys a filter over the whole
/// segment gives, for every kind of bound, from cached blocks and from blocks decoded
/// for the scan, whole and in a shape of columns.
#[test]
fn range_scans_begin_and_end_inside_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create(dir.path(), 4, 1024, 3).unwrap();
    // Even numbers only, so that a bound may fall between two keys.
    let all: Vec<Vec<u8>> = (0..2000).step_by(2).map(|i| key(5, i)).collect();
    for (i, k) in all.iter().enumerate() {
        w.add(k.clone(), Some(scalar_doc(i as i64))).unwrap();
    }
    let written = w.finish().unwrap();
    let seg = Arc::new(Segment::open(&written.path, 4).unwrap());
    assert!(seg.block_count() > 20, "{} blocks", seg.block_count());
    let bounds = |i: i64| {
        [
            Bound::Included(key(5, i)),
            Bound::Excluded(key(5, i)),
            Bound::Unbounded,
        ]
    };
    let inside = |k: &Vec<u8>, b: &Bound<Vec<u8>>, lower: bool| match (b, lower) {
        (Bound::Unbounded, _) => true,
        (Bound::Included(x), true) => k >= x,
        (Bound::Excluded(x), true) => k > x,
        (Bound::Included(x), false) => k <= x,
        (Bound::Excluded(x), false) => k < x,
    };
    for fill in [true, false] {
        let cache = Arc::new(BlockCache::new(if fill { 64 << 20 } else { 0 }));
        for (from, to) in [(0, 1998), (37, 38), (100, 1290), (401, 1601), (1000, 1000)] {
            for start in bounds(from) {
                for end in bounds(to) {
                    let want: Vec<&Vec<u8>> = all
                        .iter()
                        .filter(|k| inside(k, &start, true) && inside(k, &end, false))
                        .collect();
                    let got: Vec<Vec<u8>> = SegmentIter::new(
                        seg.clone(),
                        cache.clone(),
                        fill,
                        start.clone(),
                        end.clone(),
                    )
                    .map(|e| e.unwrap().key)
                    .collect();
                    assert_eq!(got.iter().collect::<Vec<_>>(), want, "{start:?} {end:?}");
                    let shaped: Vec<Vec<u8>> = SegmentIter::with_shape(
                        seg.clone(),
                        cache.clone(),
                        fill,
                        start.clone(),
                        end.clone(),
                        Columns::new(vec![Some("qty".into())]),
                    )
                    .map(|e| e.unwrap().key)
                    .collect();
                    assert_eq!(shaped, got);
                }
            }
        }
    }
}

#[test]
fn corrupt_segments_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create(dir.path(), 1, 1024, 3).unwrap();
    for i in 0..100 {
        w.add(key(1, i), Some(nested_doc(i))).unwrap();
    }
    let written = w.finish().unwrap();
    let pristine = std::fs::read(&written.path).unwrap();

    // A flipped byte inside the first data block: open works, reading it fails.
    let mut bad = pristine.clone();
    bad[20] ^= 0x55;
    std::fs::write(&written.path, &bad).unwrap();
    let seg = Segment::open(&written.path, 1).unwrap();
    let k = key(1, 0);
    let cache = BlockCache::new(1 << 20);
    match seg.get(&k, Segment::hash_key(&k), &cache) {
        Err(Error::Corruption(msg)) => assert!(msg.contains("checksum"), "{msg}"),
        other => panic!("expected corruption, got {other:?}"),
    }
    // A damaged footer: open fails.
    let mut bad = pristine.clone();
    let n = bad.len();
    bad[n - 3] ^= 0x55;
    std::fs::write(&written.path, &bad).unwrap();
    assert!(matches!(
        Segment::open(&written.path, 1),
        Err(Error::Corruption(_))
    ));
    // A truncated file: open fails.
    std::fs::write(&written.path, &pristine[..pristine.len() / 2]).unwrap();
    assert!(Segment::open(&written.path, 1).is_err());
}

#[test]
fn reads_see_memtable_then_segments_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    for i in 0..50 {
        s.write(vec![put(key(1, i), scalar_doc(i))]).unwrap();
    }
    s.flush().unwrap();
    // Overwrite some, delete one, in the memtable.
    for i in 0..10 {
        s.write(vec![put(key(1, i), nested_doc(i))]).unwrap();
    }
    s.write(vec![Op::Delete { key: key(1, 20) }]).unwrap();
    assert_eq!(s.get(&key(1, 5)).unwrap(), Some(nested_doc(5)));
    assert_eq!(s.get(&key(1, 15)).unwrap(), Some(scalar_doc(15)));
    assert_eq!(s.get(&key(1, 20)).unwrap(), None);
    let ids = all(&s);
    assert_eq!(ids.len(), 49);
    assert!(!ids.contains(&key(1, 20)));
    // The same after flushing the overwrites into a second segment.
    s.flush().unwrap();
    assert_eq!(s.segment_sizes().len(), 2);
    assert_eq!(s.get(&key(1, 5)).unwrap(), Some(nested_doc(5)));
    assert_eq!(s.get(&key(1, 20)).unwrap(), None);
    assert_eq!(all(&s).len(), 49);
}

#[test]
fn recovery_replays_the_wal_and_restarts_after_flush_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Storage::open(dir.path(), small_opts()).unwrap();
        for i in 0..30 {
            s.write(vec![put(key(1, i), nested_doc(i))]).unwrap();
        }
        // Dropped without close: only the WAL has the data.
    }
    {
        let s = Storage::open(dir.path(), small_opts()).unwrap();
        assert_eq!(s.recovery_report().replayed_records, 30);
        assert_eq!(s.get(&key(1, 29)).unwrap(), Some(nested_doc(29)));
        s.flush().unwrap();
        s.write(vec![Op::Delete { key: key(1, 0) }]).unwrap();
    }
    {
        let s = Storage::open(dir.path(), small_opts()).unwrap();
        assert_eq!(
            s.recovery_report().replayed_records,
            1,
            "only the delete comes after the flush"
        );
        assert_eq!(s.get(&key(1, 0)).unwrap(), None);
        s.compact_all().unwrap();
        assert_eq!(s.segment_sizes().len(), 1);
        s.close().unwrap();
    }
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    assert_eq!(s.recovery_report().replayed_records, 0);
    assert_eq!(s.get(&key(1, 0)).unwrap(), None);
    assert_eq!(s.get(&key(1, 1)).unwrap(), Some(nested_doc(1)));
    assert_eq!(all(&s).len(), 29);
}

#[test]
fn background_compaction_bounds_segments_under_steady_writes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        memtable_size: 16 << 10,
        block_size: 4 << 10,
        ..StorageOptions::default()
    };
    let s = Arc::new(Storage::open(dir.path(), opts.clone()).unwrap());
    s.start_background().unwrap();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..1500 {
                    let k = key(1, (i * 4 + t) % 3000);
                    s.write(vec![put(k, nested_doc(i))]).unwrap();
                }
            })
        })
        .collect();
    // Readers run alongside flushes and compactions.
    let reader = {
        let s = s.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                assert!(all(&s).len() <= 3000);
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    s.flush().unwrap();
    s.compact_by_policy().unwrap();
    let count = s.segment_sizes().len();
    assert!(
        count <= opts.policy.max_segments,
        "{count} segments exceed the bound {}",
        opts.policy.max_segments
    );
    assert_eq!(all(&s).len(), 3000);
    for i in [0, 1, 2999] {
        assert!(s.get(&key(1, i)).unwrap().is_some());
    }
}

/// Compaction carries the documents of XML blocks as the elements they were written
/// as: merging segments of nested documents, flat ones, overwrites of either by the
/// other and deletes, every document reads back whole, and the merged segment has XML
/// blocks where nested documents went and CSV blocks where only flat ones did.
#[test]
fn compaction_carries_documents_across_block_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    let mut want = std::collections::BTreeMap::new();
    let mut write = |i: i64, doc: Option<Object>| {
        match &doc {
            Some(d) => s.write(vec![put(key(1, i), d.clone())]).unwrap(),
            None => s.write(vec![Op::Delete { key: key(1, i) }]).unwrap(),
        };
        want.insert(i, doc);
    };
    for i in 0..200 {
        write(i, Some(nested_doc(i)));
    }
    s.flush().unwrap();
    for i in 200..400 {
        write(i, Some(scalar_doc(i)));
    }
    for i in (0..100).step_by(3) {
        write(i, Some(scalar_doc(i + 1000)));
    }
    s.flush().unwrap();
    for i in (250..300).step_by(2) {
        write(i, Some(nested_doc(i + 1000)));
    }
    for i in (100..120).chain(350..360) {
        write(i, None);
    }
    s.flush().unwrap();
    assert_eq!(s.segment_sizes().len(), 3);
    s.compact_all().unwrap();
    assert_eq!(s.segment_sizes().len(), 1);
    for (i, doc) in &want {
        assert_eq!(&s.get(&key(1, *i)).unwrap(), doc, "document {i}");
    }
    let live = want.values().filter(|d| d.is_some()).count();
    assert_eq!(all(&s).len(), live);
    s.close().unwrap();
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let seg = Arc::new(Segment::open(&path, 0).unwrap());
    let encodings = seg.block_encodings();
    assert!(encodings.contains(&Encoding::Xml), "{encodings:?}");
    assert!(encodings.contains(&Encoding::Csv), "{encodings:?}");
    // Read back with a cold cache, block by block, after a reopen.
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    let scanned: Vec<(Vec<u8>, Object)> = s
        .scan(Bound::Unbounded, Bound::Unbounded)
        .map(|r| r.unwrap())
        .collect();
    let expected: Vec<(Vec<u8>, Object)> = want
        .iter()
        .filter_map(|(i, d)| d.clone().map(|d| (key(1, *i), d)))
        .collect();
    assert_eq!(scanned, expected);
}

#[test]
fn full_compaction_purges_tombstones_and_dead_collections() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    for i in 0..100 {
        s.write(vec![
            put(key(1, i), scalar_doc(i)),
            put(key(2, i), scalar_doc(i)),
        ])
        .unwrap();
    }
    s.flush().unwrap();
    for i in 0..50 {
        s.write(vec![Op::Delete { key: key(1, i) }]).unwrap();
    }
    s.set_key_filter(Arc::new(|k: &[u8]| keys::collection_of(k) != 2));
    s.compact_all().unwrap();
    let left = all(&s);
    assert_eq!(left.len(), 50);
    assert!(left.iter().all(|k| keys::collection_of(k) == 1));
    // One segment remains, holding exactly the 50 live documents: no tombstones.
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let seg = Segment::open(&path, 0).unwrap();
    assert_eq!(seg.entries, 50);
}

#[test]
fn oversized_documents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        max_document_size: 1000,
        ..small_opts()
    };
    let s = Storage::open(dir.path(), opts).unwrap();
    let mut doc = Object::default();
    doc.insert("big".into(), Value::String("x".repeat(2000)));
    let err = s.write(vec![put(key(1, 1), doc)]).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");
    assert_eq!(s.get(&key(1, 1)).unwrap(), None);
}

/// A store with a block cache of `cache` bytes holding 400 rows of scalars (CSV blocks,
/// collection 1) and 400 nested documents (XML blocks, collection 2), not yet flushed.
fn loaded_with_cache(cache: usize) -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(
        dir.path(),
        StorageOptions {
            block_cache_size: cache,
            ..small_opts()
        },
    )
    .unwrap();
    for i in 0..400 {
        s.write(vec![
            put(key(1, i), scalar_doc(i)),
            put(key(2, i), nested_doc(i)),
        ])
        .unwrap();
    }
    (dir, s)
}

#[test]
fn point_reads_through_a_full_cache_decode_one_entry_and_agree() {
    // A cache too small for any block: every read takes the one-entry path; a small
    // one: blocks, then payloads and entries kept alone; a large one: decoded blocks.
    for cache in [0, 40 << 10, 64 << 20] {
        let (_dir, s) = loaded_with_cache(cache);
        s.write(vec![
            Op::Delete { key: key(2, 7) },
            Op::Delete { key: key(1, 8) },
        ])
        .unwrap();
        s.flush().unwrap();
        for round in 0..2 {
            for i in 0..400 {
                let (a, b) = (s.get(&key(1, i)).unwrap(), s.get(&key(2, i)).unwrap());
                assert_eq!(
                    a,
                    (i != 8).then(|| scalar_doc(i)),
                    "{cache} {round}, csv {i}"
                );
                assert_eq!(
                    b,
                    (i != 7).then(|| nested_doc(i)),
                    "{cache} {round}, xml {i}"
                );
            }
        }
        for missing in [key(1, 400), key(2, -1), keys::encode(2, "doc000001x")] {
            assert_eq!(s.get(&missing).unwrap(), None);
        }
        assert_eq!(s.cache().is_empty(), cache == 0);
        s.close().unwrap();
    }
}

/// A presence check (an insert's duplicate-id check) finds documents in CSV and XML
/// blocks and not deleted or absent keys, and keeps nothing in the cache: its key is
/// most often new, and its block reached only through a bloom filter's false positive.
#[test]
fn presence_checks_find_documents_without_filling_the_cache() {
    let (_dir, s) = loaded_with_cache(64 << 20);
    s.write(vec![
        Op::Delete { key: key(2, 7) },
        Op::Delete { key: key(1, 8) },
    ])
    .unwrap();
    s.flush().unwrap();
    let present = |k: &[u8]| s.get_shaped(k, &mut Presence).unwrap().is_some();
    for i in 0..400 {
        assert_eq!(present(&key(1, i)), i != 8, "csv {i}");
        assert_eq!(present(&key(2, i)), i != 7, "xml {i}");
    }
    for missing in [key(1, 400), key(2, -1), keys::encode(2, "doc000001x")] {
        assert!(!present(&missing));
    }
    assert!(s.cache().is_empty());
    // A read fills it as before, and a check then uses the cached block.
    assert_eq!(s.get(&key(2, 9)).unwrap(), Some(nested_doc(9)));
    assert!(!s.cache().is_empty());
    assert!(present(&key(2, 9)) && !present(&key(2, 7)));
}

/// Reads that remember each segment's last block (an index scan's) agree with plain
/// reads in any order of keys: ascending, descending, jumping between collections, over
/// overlapping segments and memtables, with one memo kept across a compaction that
/// replaced the segments it names, and through caches of every size.
#[test]
fn reads_near_the_last_block_agree_with_plain_reads() {
    for cache in [0, 40 << 10, 64 << 20] {
        let (_dir, s) = loaded_with_cache(cache);
        s.flush().unwrap();
        // A second segment over the same keys: every third rewritten, some deleted.
        let mut ops = Vec::new();
        for i in (0..400).step_by(3) {
            ops.push(put(key(1, i), scalar_doc(i + 10_000)));
            ops.push(put(key(2, i), nested_doc(i + 10_000)));
        }
        ops.push(Op::Delete { key: key(1, 100) });
        ops.push(Op::Delete { key: key(2, 101) });
        s.write(ops).unwrap();
        s.flush().unwrap();
        s.write(vec![put(key(1, 5), scalar_doc(-5))]).unwrap();
        let mut order: Vec<Vec<u8>> = (0..420).map(|i| key(1, i)).collect();
        order.extend((0..420).rev().map(|i| key(2, i)));
        order.extend(
            (0..400)
                .step_by(37)
                .flat_map(|i| [key(2, i), key(1, 399 - i)]),
        );
        let mut near = tissdb::storage::NearBlocks::default();
        for round in 0..3 {
            if round == 2 {
                s.compact_all().unwrap();
            }
            let snap = s.snapshot();
            for k in &order {
                let got = snap.get_shaped_near(k, &mut Whole, &mut near).unwrap();
                assert_eq!(
                    got,
                    snap.get(k).unwrap(),
                    "cache {cache}, round {round}, {k:?}"
                );
            }
        }
        assert_eq!(s.get(&key(1, 3)).unwrap(), Some(scalar_doc(10_003)));
        assert_eq!(s.get(&key(1, 5)).unwrap(), Some(scalar_doc(-5)));
        assert_eq!(s.get(&key(2, 101)).unwrap(), None);
    }
}

/// A run of reads that passes the block cache (an index build's) decodes a block for the
/// fields its shape reads only; a read in another shape of the same block must not be
/// answered from that partial block.
#[test]
fn reads_passing_the_cache_in_two_shapes_agree_with_plain_reads() {
    for cache in [0, 64 << 20] {
        let (_dir, s) = loaded_with_cache(cache);
        s.flush().unwrap();
        let snap = s.snapshot();
        let mut near = tissdb::storage::NearBlocks::passing();
        let mut specs = Columns::new(vec![Some("specs".to_string())]);
        let mut n = Columns::new(vec![Some("n".to_string())]);
        for i in 0..400 {
            for c in [1, 2] {
                let k = key(c, i);
                let whole = snap.get(&k).unwrap().expect("loaded");
                let field = |name: &str| vec![whole.get(name).cloned().unwrap_or(Value::Null)];
                let got = snap.get_shaped_near(&k, &mut specs, &mut near).unwrap();
                assert_eq!(got, Some(field("specs")), "cache {cache}, {k:?}");
                let got = snap.get_shaped_near(&k, &mut n, &mut near).unwrap();
                assert_eq!(got, Some(field("n")), "cache {cache}, {k:?}");
                let got = snap.get_shaped_near(&k, &mut Whole, &mut near).unwrap();
                assert_eq!(got, Some(whole), "cache {cache}, {k:?}");
            }
        }
    }
}

#[test]
fn scans_of_some_columns_agree_with_whole_documents() {
    for cache in [0, 40 << 10, 64 << 20] {
        let (_dir, s) = loaded_with_cache(cache);
        s.flush().unwrap();
        // Some in memtables too.
        s.write(vec![
            put(key(2, 1000), nested_doc(1000)),
            Op::Delete { key: key(1, 3) },
        ])
        .unwrap();
        let slots = vec![
            Some("qty".to_string()),
            None,
            Some("specs".into()),
            Some("nope".into()),
        ];
        let shape = Columns::new(slots.clone());
        let snap = s.snapshot();
        let whole: Vec<(Vec<u8>, Vec<Value>)> = snap
            .scan(Bound::Unbounded, Bound::Unbounded)
            .map(|r| r.unwrap())
            .map(|(k, d)| {
                let values = slots
                    .iter()
                    .map(|s| {
                        s.as_ref()
                            .and_then(|s| d.get(s).cloned())
                            .unwrap_or(Value::Null)
                    })
                    .collect();
                (k, values)
            })
            .collect();
        for round in 0..2 {
            let kept: Vec<(Vec<u8>, Vec<Value>)> = snap
                .scan_shaped(Bound::Unbounded, Bound::Unbounded, shape.clone())
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(kept.len(), 800, "cache {cache}");
            assert_eq!(kept, whole, "cache {cache}, round {round}");
        }
        assert!(
            whole
                .iter()
                .all(|(_, v)| v.iter().filter(|v| **v != Value::Null).count() == 1),
            "one of the fields each"
        );
    }
}

/// Polls a future to its end on this thread (the storage engine's futures are woken by
/// its WAL flusher thread).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the future never completed"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

#[test]
fn deferred_writes_read_their_own_and_publish_once_durable() {
    use tissdb::storage::durability;
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    let before = s.published_seq();
    let (seen, published) = durability::deferred(|| {
        s.write(vec![put(key(1, 1), scalar_doc(1))]).unwrap();
        let seq = s.write(vec![put(key(1, 2), scalar_doc(2))]).unwrap();
        // A read in the scope waits for the scope's writes: it sees both.
        (all(&s).len(), seq)
    });
    assert_eq!(seen.0, 2);
    // The first read settled them, so nothing was left pending.
    assert!(published.is_none());
    assert!(s.published_seq() >= seen.1);

    // Writes with no read after them leave a future for the last.
    let (seq, published) = durability::deferred(|| {
        s.write(vec![put(key(1, 3), scalar_doc(3))]).unwrap();
        s.write(vec![put(key(1, 4), scalar_doc(4))]).unwrap()
    });
    let published = published.expect("a write is pending");
    assert_eq!(published.seq(), seq);
    block_on(published).unwrap();
    assert!(s.published_seq() >= seq && seq > before);
    assert_eq!(all(&s).len(), 4);
    drop(s);
    // They are in the WAL: a reopen replays all four.
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    assert_eq!(all(&s).len(), 4);
}

#[test]
fn a_lone_deferred_write_may_write_the_idle_wal_itself() {
    use tissdb::storage::durability::{self, WhenIdle};
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    s.write(vec![put(key(1, 1), scalar_doc(1))]).unwrap();
    let before = s.wal_stats();
    // The WAL is idle and the last write carried one record: this write is made
    // durable here, so nothing is left to await, and it is visible at once.
    let (seq, published) = durability::deferred_with(WhenIdle::WriteHere, || {
        s.write(vec![put(key(1, 2), scalar_doc(2))]).unwrap()
    });
    assert!(published.is_none(), "written here, nothing pending");
    assert!(s.published_seq() >= seq);
    let after = s.wal_stats();
    assert_eq!(after.writes_by_committers, before.writes_by_committers + 1);
    assert_eq!(after.records, before.records + 1);
    // The same write with the default leaves it to the flusher thread.
    let (seq, published) = durability::deferred_with(WhenIdle::Defer, || {
        s.write(vec![put(key(1, 3), scalar_doc(3))]).unwrap()
    });
    let published = published.expect("a write is pending");
    assert_eq!(published.seq(), seq);
    block_on(published).unwrap();
    assert_eq!(
        s.wal_stats().writes_by_committers,
        after.writes_by_committers,
        "the flusher wrote it"
    );
    // Two writes in one scope: the second finds the first buffered (not a lone
    // writer), so it is deferred too, and one future covers both.
    let (seq, published) = durability::deferred_with(WhenIdle::Defer, || {
        s.write(vec![put(key(1, 4), scalar_doc(4))]).unwrap();
        s.write(vec![put(key(1, 5), scalar_doc(5))]).unwrap()
    });
    if let Some(p) = published {
        assert_eq!(p.seq(), seq);
        block_on(p).unwrap();
    }
    drop(s);
    let s = Storage::open(dir.path(), small_opts()).unwrap();
    assert_eq!(all(&s).len(), 5, "every write replays");
}

/// A cursor gives what the merged scan gives, key for key and value for value: over
/// segments that overlap (later ones overwriting and deleting keys of earlier ones),
/// a memtable on top, bounds inside blocks, cached and uncached blocks, a snapshot
/// older than the last writes, and rows taken or only looked at.
#[test]
fn cursors_agree_with_merged_scans() {
    for cache in [0, 40 << 10, 64 << 20] {
        let (_dir, s) = loaded_with_cache(cache);
        s.flush().unwrap();
        // A second segment overwriting every third key and deleting every seventh.
        for i in (0..400).step_by(3) {
            s.write(vec![put(key(1, i), scalar_doc(i * 10))]).unwrap();
        }
        for i in (0..400).step_by(7) {
            s.write(vec![Op::Delete { key: key(1, i) }]).unwrap();
        }
        s.flush().unwrap();
        // The memtable: new keys, keys deleted again and brought back, deletes.
        for i in (0..400).step_by(5) {
            s.write(vec![put(key(1, i), scalar_doc(i + 1))]).unwrap();
        }
        s.write(vec![put(key(1, 1000), scalar_doc(1000))]).unwrap();
        s.write(vec![Op::Delete { key: key(1, 11) }]).unwrap();
        let snap = s.snapshot();
        // Writes after the snapshot: neither reader sees them.
        s.write(vec![
            put(key(1, 13), scalar_doc(-1)),
            Op::Delete { key: key(1, 17) },
        ])
        .unwrap();
        let slots = vec![Some("qty".to_string()), None, Some("name".into())];
        let shape = Columns::new(slots);
        let bounds = [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(key(1, 17)), Bound::Excluded(key(1, 333))),
            (Bound::Excluded(key(1, 0)), Bound::Included(key(1, 1000))),
            (Bound::Included(key(2, 0)), Bound::Unbounded),
        ];
        for (start, end) in bounds {
            let want: Vec<(Vec<u8>, Vec<Value>)> = snap
                .scan_shaped(start.clone(), end.clone(), shape.clone())
                .map(|r| r.unwrap())
                .collect();
            assert!(want.len() > 100, "cache {cache}: {} rows", want.len());
            let mut cursor = snap.cursor(start, end, shape.clone());
            let mut got = Vec::new();
            while cursor.advance().unwrap() {
                let key = cursor.key().to_vec();
                let row = if got.len() % 2 == 0 {
                    cursor.take_row()
                } else {
                    cursor.row().to_vec()
                };
                got.push((key, row));
            }
            assert!(!cursor.advance().unwrap(), "stays at its end");
            assert_eq!(got, want, "cache {cache}");
        }
        // Keys 11 to 21 as the snapshot sees them: 11, 14 and 21 deleted, 12 and 18
        // overwritten in the second segment, 15 and 20 in the memtable, 13 and 17 as
        // they were before the writes after the snapshot.
        let mut cursor = snap.cursor(
            Bound::Included(key(1, 11)),
            Bound::Included(key(1, 21)),
            shape.clone(),
        );
        let mut qty = Vec::new();
        while cursor.advance().unwrap() {
            qty.push(cursor.row()[0].clone());
        }
        let ints = |v: &[i64]| v.iter().map(|i| Value::Int(*i)).collect::<Vec<_>>();
        assert_eq!(
            qty,
            ints(&[120, 13, 16, 16, 17, 180, 19, 21]),
            "cache {cache}"
        );
    }
}
