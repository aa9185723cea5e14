//! Tree tests: a random model test against `BTreeMap`, crashes, corruption, ranges and a
//! large tree.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use super::page::{MAX_KEY_LEN, MAX_VALUE_LEN, PAGE_SIZE};
use super::*;
use crate::error::Error;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.btree");
    (dir, path)
}

fn contents(t: &BTree) -> Model {
    t.iter().map(|e| e.unwrap()).collect()
}

fn random_key(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(400);
    let len = match rng.below(20) {
        0 => 200 + rng.below(MAX_KEY_LEN as u64 - 199) as usize,
        1 => 0,
        _ => 1 + rng.below(12) as usize,
    };
    let mut k = format!("{n:05}").into_bytes();
    k.extend((0..len).map(|i| (n as usize + i) as u8));
    k.truncate(len.max(1));
    k
}

fn random_value(rng: &mut Rng) -> Vec<u8> {
    let len = if rng.below(30) == 0 {
        MAX_VALUE_LEN
    } else {
        rng.below(8) as usize
    };
    vec![rng.below(256) as u8; len]
}

fn assert_same(t: &BTree, model: &Model) {
    assert_eq!(t.len(), model.len() as u64);
    assert_eq!(&contents(t), model);
}

#[test]
fn random_operations_match_a_btreemap_across_commits_crashes_and_reopens() {
    let (_dir, path) = temp();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut tree = BTree::create_with_cache(&path, 64 * PAGE_SIZE).unwrap();
    let mut model = Model::new();
    let mut committed = Model::new();
    for step in 0..6000 {
        match rng.below(100) {
            0..=59 => {
                let (k, v) = (random_key(&mut rng), random_value(&mut rng));
                let old = tree.insert(&k, &v).unwrap();
                assert_eq!(old, model.insert(k, v));
            }
            60..=89 => {
                let k = match model.keys().nth(rng.below(model.len() as u64 + 1) as usize) {
                    Some(k) if rng.below(4) > 0 => k.clone(),
                    _ => random_key(&mut rng),
                };
                assert_eq!(tree.delete(&k).unwrap(), model.remove(&k).is_some());
            }
            90..=94 => {
                let k = random_key(&mut rng);
                assert_eq!(tree.get(&k).unwrap(), model.get(&k).cloned());
            }
            95..=97 => {
                tree.commit().unwrap();
                committed = model.clone();
                tree.check().unwrap();
            }
            98 => {
                // Crash: drop with uncommitted changes, reopen.
                drop(tree);
                tree = BTree::open_with_cache(&path, 64 * PAGE_SIZE).unwrap();
                model = committed.clone();
                tree.check().unwrap();
                assert_same(&tree, &model);
            }
            _ => {
                tree.rollback();
                model = committed.clone();
                tree.check().unwrap();
            }
        }
        if step % 100 == 0 {
            tree.check().unwrap();
            assert_same(&tree, &model);
        }
    }
    tree.commit().unwrap();
    drop(tree);
    let tree = BTree::open(&path).unwrap();
    let stats = tree.check().unwrap();
    assert_same(&tree, &model);
    assert!(stats.height >= 2, "{stats:?}");
    // Deleting everything leaves an empty tree whose pages are all free again.
    let mut tree = tree;
    for k in model.keys() {
        assert!(tree.delete(k).unwrap());
    }
    tree.commit().unwrap();
    let stats = tree.check().unwrap();
    assert_eq!((stats.entries, stats.height, stats.live_pages), (0, 1, 1));
}

#[test]
fn crash_in_the_middle_of_a_commit_keeps_the_previous_one() {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    let mut model = Model::new();
    for i in 0..2000u32 {
        let k = i.to_be_bytes().to_vec();
        tree.insert(&k, b"v1").unwrap();
        model.insert(k, b"v1".to_vec());
    }
    tree.commit().unwrap();
    let generation = tree.generation();
    for i in (0..2000u32).step_by(3) {
        tree.insert(&i.to_be_bytes(), b"v2").unwrap();
        tree.delete(&(i + 1).to_be_bytes()).unwrap();
    }
    for i in 5000..6000u32 {
        tree.insert(&i.to_be_bytes(), b"new").unwrap();
    }
    // Pages and free list written and synced, superblock not switched: a crash here.
    tree.commit_inner(false).unwrap();
    drop(tree);
    let tree = BTree::open(&path).unwrap();
    assert_eq!(tree.generation(), generation);
    tree.check().unwrap();
    assert_same(&tree, &model);
}

#[test]
fn a_torn_newest_superblock_falls_back_to_the_previous_commit() {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    tree.insert(b"a", b"1").unwrap();
    tree.commit().unwrap();
    tree.insert(b"b", b"2").unwrap();
    tree.commit().unwrap();
    let newest = tree.generation();
    drop(tree);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(newest % 2) as usize * PAGE_SIZE + 20] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let tree = BTree::open(&path).unwrap();
    assert_eq!(tree.generation(), newest - 1);
    tree.check().unwrap();
    assert_same(&tree, &Model::from([(b"a".to_vec(), b"1".to_vec())]));
    // Both superblocks bad: corruption, not a panic.
    bytes[((newest + 1) % 2) as usize * PAGE_SIZE + 30] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(BTree::open(&path), Err(Error::Corruption(_))));
}

fn corrupt_byte(path: &Path, page: u64, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[page as usize * PAGE_SIZE + at] ^= 0x40;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn a_corrupt_page_is_reported_not_panicked_on() {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    for i in 0..3000u32 {
        tree.insert(&i.to_be_bytes(), &[7; 20]).unwrap();
    }
    tree.commit().unwrap();
    let stats = tree.check().unwrap();
    let pages = stats.page_count;
    drop(tree);
    let pristine = std::fs::read(&path).unwrap();
    let mut reported = 0;
    for page in 2..pages {
        std::fs::write(&path, &pristine).unwrap();
        corrupt_byte(&path, page, 100 + page as usize % 3000);
        let result = BTree::open(&path).and_then(|t| {
            t.check()?;
            for i in 0..3000u32 {
                t.get(&i.to_be_bytes())?;
            }
            t.iter().collect::<crate::error::Result<Vec<_>>>()
        });
        match result {
            Err(Error::Corruption(m)) => {
                assert!(m.contains(&format!("page {page}")), "{m}");
                reported += 1;
            }
            Err(other) => panic!("page {page}: {other}"),
            Ok(_) => {} // a free page: nothing reads it
        }
    }
    assert!(
        reported >= stats.live_pages as usize,
        "{reported} of {stats:?}"
    );
    // A truncated file.
    std::fs::write(&path, &pristine[..pristine.len() - PAGE_SIZE]).unwrap();
    assert!(matches!(BTree::open(&path), Err(Error::Corruption(_))));
}

/// A range read from one end and then only from the other stops where the first end
/// stopped, wherever in the leaves that is (the other end's last key is only kept once
/// both ends are in use).
#[test]
fn a_range_turned_around_stops_at_the_other_ends_last_entry() {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    let keys: Vec<Vec<u8>> = (0..700u32)
        .map(|i| (i * 3).to_be_bytes().to_vec())
        .collect();
    for k in &keys {
        tree.insert(k, b"").unwrap();
    }
    for first in [0, 1, 2, 63, 64, 65, 300, 699, 700] {
        let mut it = tree.range(Bound::Unbounded, Bound::Unbounded);
        let front: Vec<Vec<u8>> = (&mut it).take(first).map(|r| r.unwrap().0).collect();
        let mut back: Vec<Vec<u8>> = it.rev().map(|r| r.unwrap().0).collect();
        back.reverse();
        assert_eq!(front.len() + back.len(), keys.len(), "front {first}");
        assert_eq!([front, back].concat(), keys, "front {first}");

        let mut it = tree.range(Bound::Unbounded, Bound::Unbounded);
        let mut back: Vec<Vec<u8>> = (&mut it).rev().take(first).map(|r| r.unwrap().0).collect();
        back.reverse();
        let front: Vec<Vec<u8>> = it.map(|r| r.unwrap().0).collect();
        assert_eq!([front, back].concat(), keys, "back {first}");
    }
}

#[test]
fn ranges_match_btreemap_in_both_directions() {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    let mut model = Model::new();
    let mut rng = Rng(99);
    for i in 0..3000u64 {
        let k = (i * 7 % 3001).to_be_bytes()[5..].to_vec();
        tree.insert(&k, &i.to_le_bytes()).unwrap();
        model.insert(k, i.to_le_bytes().to_vec());
    }
    // Sparse leaves after deletes, still committed state mixed with uncommitted.
    tree.commit().unwrap();
    for i in 0..3000u64 {
        if i % 5 != 0 {
            let k = (i * 7 % 3001).to_be_bytes()[5..].to_vec();
            tree.delete(&k).unwrap();
            model.remove(&k);
        }
    }
    tree.check().unwrap();
    let bound = |rng: &mut Rng| {
        let k = (rng.below(3100)).to_be_bytes()[5..].to_vec();
        match rng.below(3) {
            0 => Bound::Included(k),
            1 => Bound::Excluded(k),
            _ => Bound::Unbounded,
        }
    };
    for round in 0..300 {
        let (s, e) = (bound(&mut rng), bound(&mut rng));
        let valid = match (&s, &e) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a < b || (a == b && matches!((&s, &e), (Bound::Included(_), Bound::Included(_))))
            }
            _ => true,
        };
        let got = || tree.range(s.as_ref().map(Vec::as_slice), e.as_ref().map(Vec::as_slice));
        // Counted a few leaves at a time, each count going on after the last key the
        // one before counted.
        let counted = |leaves: usize| {
            let (mut n, mut from, mut counts) = (0, s.clone(), 0);
            loop {
                let (c, last) = tree.count_range(&from, &e, leaves).unwrap();
                n += c;
                counts += 1;
                match last {
                    Some(last) => from = Bound::Excluded(last),
                    None => return (n, counts),
                }
            }
        };
        if !valid {
            assert_eq!(got().count(), 0);
            assert_eq!(counted(1).0, 0);
            continue;
        }
        let want: Vec<_> = model
            .range((s.clone(), e.clone()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for leaves in [1, 2, 5, 1000] {
            let (n, counts) = counted(leaves);
            assert_eq!(n, want.len() as u64, "{leaves} leaves {s:?}..{e:?}");
            if leaves == 1000 {
                assert_eq!(counts, 1);
            }
        }
        let fwd: Vec<_> = got().map(|r| r.unwrap()).collect();
        assert_eq!(fwd, want, "{s:?}..{e:?}");
        let rev: Vec<_> = got().rev().map(|r| r.unwrap()).collect();
        let mut want_rev = want.clone();
        want_rev.reverse();
        assert_eq!(rev, want_rev, "rev {s:?}..{e:?}");
        // Alternating ends meet in the middle without repeats.
        let mut it = got();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            let item = if (round + front.len() + back.len()) % 3 == 0 {
                it.next_back().map(|r| back.push(r.unwrap()))
            } else {
                it.next().map(|r| front.push(r.unwrap()))
            };
            if item.is_none() {
                break;
            }
        }
        back.reverse();
        front.extend(back);
        assert_eq!(front, want, "both ends {s:?}..{e:?}");
    }
}

#[test]
fn a_hundred_thousand_keys_build_a_deep_tree() {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    let n = 100_000u64;
    let key = |i: u64| {
        let mut k = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .to_be_bytes()
            .to_vec();
        k.extend_from_slice(b"-document-id");
        k
    };
    let batch: Vec<BatchOp> = (0..n)
        .map(|i| BatchOp::Insert {
            key: key(i),
            value: Vec::new(),
        })
        .collect();
    tree.write_batch(&batch).unwrap();
    let stats = tree.check().unwrap();
    assert_eq!(stats.entries, n);
    assert!(stats.height >= 3, "{stats:?}");
    let deletes: Vec<BatchOp> = (0..n)
        .filter(|i| i % 2 == 0)
        .map(|i| BatchOp::Delete { key: key(i) })
        .collect();
    tree.write_batch(&deletes).unwrap();
    drop(tree);
    let tree = BTree::open(&path).unwrap();
    let stats = tree.check().unwrap();
    assert_eq!(stats.entries, n / 2);
    for i in (0..n).step_by(997) {
        assert_eq!(tree.get(&key(i)).unwrap().is_some(), i % 2 == 1);
    }
    let keys: Vec<Vec<u8>> = tree.iter().map(|r| r.unwrap().0).collect();
    assert_eq!(keys.len() as u64, n / 2);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let last = tree.iter().next_back().unwrap().unwrap().0;
    assert_eq!(Some(&last), keys.last());
}

/// Leaves a tree of `keys` (inserted in that order, empty values) takes, against the
/// fewest that hold them.
fn leaves_for(keys: &[Vec<u8>]) -> (u64, u64) {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    for k in keys {
        tree.insert(k, b"").unwrap();
    }
    tree.commit().unwrap();
    let stats = tree.check().unwrap();
    assert_eq!(stats.entries, keys.len() as u64);
    let bytes: usize = keys.iter().map(|k| page::leaf_entry_size(k, b"")).sum();
    let fewest = bytes.div_ceil(PAGE_SIZE - page::HEADER) as u64;
    (stats.leaves, fewest)
}

/// Runs of ascending keys fill their leaves nine tenths (a leaf appended to is cut
/// after the new entry, not halved): one run (a growing column), and forty at once (an index on a
/// column of forty values, rows added with growing ids: each value's range appended to
/// at its end), where halving left every leaf about half full.
#[test]
fn runs_of_appends_fill_their_leaves() {
    let ascending: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| format!("row{i:08}").into_bytes())
        .collect();
    // Nine tenths full (room left for a few inserts among them).
    let (leaves, fewest) = leaves_for(&ascending);
    assert!(
        leaves * 9 <= fewest * 10 + 18,
        "{leaves} leaves, {fewest} would do"
    );
    let interleaved: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| format!("value{:02}/{i:08}", i % 40).into_bytes())
        .collect();
    let (leaves, fewest) = leaves_for(&interleaved);
    // Each value's first leaf is left as full as it was when the next value's run
    // began in it: at most one leaf more a value.
    assert!(
        leaves * 9 <= (fewest + 40) * 10,
        "{leaves} leaves, {fewest} would do"
    );
}

/// Keys in no order still split in halves: the append rule does not leave small leaves
/// behind random inserts.
#[test]
fn random_inserts_still_split_in_halves() {
    let mut rng = Rng(0x5EED);
    let random: Vec<Vec<u8>> = (0..20_000)
        .map(|_| format!("key{:016x}", rng.next()).into_bytes())
        .collect();
    let (leaves, fewest) = leaves_for(&random);
    // Halves filled at random settle near 70% full.
    assert!(
        leaves * 10 <= fewest * 16,
        "{leaves} leaves, {fewest} would do"
    );
}

#[test]
fn limits_and_refusals() {
    let (_dir, path) = temp();
    let mut tree = BTree::create(&path).unwrap();
    assert!(matches!(
        tree.insert(&vec![0; MAX_KEY_LEN + 1], b""),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(matches!(
        tree.insert(b"k", &vec![0; MAX_VALUE_LEN + 1]),
        Err(Error::LimitExceeded { .. })
    ));
    let batch = [
        BatchOp::Insert {
            key: b"ok".to_vec(),
            value: vec![],
        },
        BatchOp::Insert {
            key: vec![1; MAX_KEY_LEN + 1],
            value: vec![],
        },
    ];
    assert!(tree.apply(&batch).is_err());
    assert!(tree.is_empty(), "a batch with a bad key changes nothing");
    assert!(!tree.delete(&vec![0; MAX_KEY_LEN + 1]).unwrap());
    // The empty key is a key like any other.
    assert_eq!(tree.insert(b"", b"empty").unwrap(), None);
    assert_eq!(tree.get(b"").unwrap(), Some(b"empty".to_vec()));
    assert!(tree.delete(b"").unwrap());
    // Max-size entries split correctly.
    for i in 0..50u8 {
        let mut k = vec![i; MAX_KEY_LEN];
        k[0] = i;
        tree.insert(&k, &vec![i; MAX_VALUE_LEN]).unwrap();
    }
    tree.check().unwrap();
    assert_eq!(tree.len(), 50);
    tree.commit().unwrap();
    assert!(
        BTree::create(&path).is_err(),
        "create refuses an existing file"
    );
    let g = tree.generation();
    tree.commit().unwrap();
    assert_eq!(
        tree.generation(),
        g,
        "a commit without changes writes nothing"
    );
}

#[test]
fn the_page_cache_counts_the_memory_of_decoded_pages() {
    let (_dir, path) = temp();
    let capacity = 16 * PAGE_SIZE;
    let mut tree = BTree::create_with_cache(&path, capacity).unwrap();
    for i in 0..20_000u32 {
        tree.insert(&i.to_be_bytes(), b"").unwrap();
    }
    tree.commit().unwrap();
    drop(tree);
    // Reads fill the cache from the file.
    let tree = BTree::open_with_cache(&path, capacity).unwrap();
    for i in (0..20_000u32).step_by(97) {
        assert_eq!(tree.get(&i.to_be_bytes()).unwrap(), Some(Vec::new()));
    }
    let (pages, bytes) = (tree.cached_pages(), tree.cache_bytes());
    assert!(bytes <= capacity, "{bytes} bytes held, {capacity} allowed");
    assert!(
        pages > 1 && bytes > pages * 1000,
        "{pages} pages as {bytes} bytes"
    );
    // A decoded leaf takes its keys and values and 8 bytes of offsets an entry: a full
    // leaf of 4-byte keys (10 bytes a cell in the page) takes 12 bytes an entry.
    let full = full_leaf();
    let page::Node::Leaf { entries } = &full else {
        unreachable!()
    };
    let n = entries.len();
    let leaf = page::decode_node(9, &page::encode_node(9, &full).unwrap()).unwrap();
    assert_eq!(leaf, full);
    let size = leaf.memory_size();
    assert!(
        (12 * n..12 * n + 128).contains(&size) && size < PAGE_SIZE * 5 / 4,
        "{n} entries take {size} bytes"
    );
}

/// A leaf of 4-byte keys and empty values, as full as a page holds.
fn full_leaf() -> page::Node {
    let mut entries = page::Entries::new();
    for i in 0u32.. {
        entries.push(&i.to_be_bytes(), b"");
        if !(page::Node::Leaf {
            entries: entries.clone(),
        })
        .fits()
        {
            entries.remove(entries.len() - 1);
            return page::Node::Leaf { entries };
        }
    }
    unreachable!("a page holds finitely many entries")
}
