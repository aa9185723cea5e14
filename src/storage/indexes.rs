//! The secondary index trees the storage engine keeps beside its segments: one B+tree
//! file per index (`index-<id>.btree`, see [`crate::storage::btree`]), whose keys are
//! index entries ([`crate::doc::keycode::encode_index_entry`]: the indexed values, then
//! the document id) with empty values.
//!
//! Atomicity with the data: an index change is an op of the same WAL record as the
//! document write it belongs to ([`crate::storage::Op::IndexPut`] / `IndexDelete`), and
//! is applied to the tree in memory right after the record is durable. The trees are
//! copy-on-write and commit at every memtable flush, *before* the manifest records the
//! flush and the WAL files it covers are removed; so after a crash the WAL still holds
//! every change made since a tree's last commit, and recovery replays it (putting an
//! entry that is there, or deleting one that is not, changes nothing, so replaying a
//! record the tree already holds is harmless). Index files whose index no catalog names
//! are removed by the catalog at open.
//!
//! Statistics the planner uses are kept up to date on each change: the entry count (the
//! tree's length) and the number of distinct keys and distinct first values, committed
//! in the tree's superblock with it.

use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::doc::keycode::{entry_value_ends, prefix_successor};
use crate::error::{Error, Result};
use crate::storage::btree::{BTree, PageCache, SharedPages};
use crate::storage::fs::sync_dir;

/// Most entries read from a tree per lock acquisition while scanning.
const SCAN_BATCH: usize = 256;
/// Entries a scan reads in its first batch; each later batch doubles, up to
/// [`SCAN_BATCH`]. Most scans stop early (`LIMIT 10`, a unique value, a key's few
/// entries), so the first batch is small.
const FIRST_SCAN_BATCH: usize = 16;

/// The file of index `id`.
pub fn file_name(id: u32) -> String {
    format!("index-{id:08}.btree")
}

fn parse_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("index-")?
        .strip_suffix(".btree")?
        .parse()
        .ok()
}

/// The planner's numbers for one index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Entries (one per document of the collection).
    pub entries: u64,
    /// Distinct keys (tuples of indexed values).
    pub distinct: u64,
    /// Distinct values of the first indexed field.
    pub distinct_first: u64,
}

type Tree = Arc<RwLock<BTree>>;

/// Every open index tree. See the module doc.
pub struct IndexSet {
    dir: PathBuf,
    /// The page cache every index file reads through.
    pages: Arc<SharedPages>,
    trees: RwLock<HashMap<u32, Tree>>,
    unreadable: parking_lot::Mutex<Vec<u32>>,
}

/// One change to an index, as the write path applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexChange {
    pub index: u32,
    pub entry: Vec<u8>,
    pub put: bool,
}

impl IndexSet {
    /// Opens every index file in `dir`, with one page cache of `cache_bytes` for all.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<IndexSet> {
        let pages = SharedPages::new(cache_bytes);
        let mut trees = HashMap::new();
        let mut unreadable = Vec::new();
        let listing = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        for entry in listing {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let name = entry.file_name();
            if let Some(id) = parse_file_name(&name.to_string_lossy()) {
                match BTree::open_in(&entry.path(), PageCache::shared(&pages)) {
                    Ok(tree) => {
                        trees.insert(id, Arc::new(RwLock::new(tree)));
                    }
                    Err(e) => {
                        tracing::error!(index = id, error = %e, "an index file cannot be read");
                        unreadable.push(id);
                    }
                }
            }
        }
        Ok(IndexSet {
            dir: dir.to_path_buf(),
            pages,
            trees: RwLock::new(trees),
            unreadable: parking_lot::Mutex::new(unreadable),
        })
    }

    /// Index files that failed to open (their changes in the WAL were not applied): the
    /// catalog deletes those of no index and rebuilds the others from the data.
    pub fn take_unreadable(&self) -> Vec<u32> {
        std::mem::take(&mut *self.unreadable.lock())
    }

    /// Deletes the file of an index that is not open (an unreadable one).
    pub fn remove_file(&self, id: u32) -> Result<()> {
        let path = self.dir.join(file_name(id));
        if path.exists() {
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Ids of the open indexes.
    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.trees.read().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn tree(&self, id: u32) -> Result<Tree> {
        self.trees
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("index {id} is not open")))
    }

    /// Creates the empty, committed file of a new index.
    pub fn create(&self, id: u32) -> Result<()> {
        let mut trees = self.trees.write();
        if trees.contains_key(&id) {
            return Err(Error::Internal(format!("index {id} exists already")));
        }
        // Made under a temporary name and renamed once complete, so a crash never leaves
        // a torn index file (temporary files are removed at open).
        let path = self.dir.join(file_name(id));
        let tmp = self.dir.join(format!("{}.tmp", file_name(id)));
        for p in [&path, &tmp] {
            if p.exists() {
                std::fs::remove_file(p)
                    .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
            }
        }
        drop(BTree::create_in(&tmp, PageCache::shared(&self.pages))?);
        std::fs::rename(&tmp, &path)
            .map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))?;
        sync_dir(&self.dir)?;
        let tree = BTree::open_in(&path, PageCache::shared(&self.pages))?;
        trees.insert(id, Arc::new(RwLock::new(tree)));
        Ok(())
    }

    /// Closes and deletes index `id` (nothing if it is not open).
    pub fn remove(&self, id: u32) -> Result<()> {
        let Some(tree) = self.trees.write().remove(&id) else {
            return Ok(());
        };
        // Wait for readers and writers of the tree before the file goes.
        drop(tree.write());
        let path = self.dir.join(file_name(id));
        std::fs::remove_file(&path)
            .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        sync_dir(&self.dir)
    }

    /// Bytes the index page cache holds, for every index.
    pub fn cached_bytes(&self) -> usize {
        self.pages.bytes()
    }

    /// Applies changes in memory (they become durable at the next [`IndexSet::commit`];
    /// until then the WAL holds them). Changes to indexes that are not open are skipped:
    /// they belong to an index dropped since.
    pub fn apply(&self, changes: &[IndexChange]) -> Result<()> {
        let trees = self.trees.read();
        for c in changes {
            let Some(tree) = trees.get(&c.index) else {
                continue;
            };
            let mut tree = tree.write();
            if c.put {
                if tree.insert(&c.entry, &[])?.is_none() {
                    adjust_distinct(&mut tree, &c.entry, 1)?;
                }
            } else if tree.delete(&c.entry)? {
                adjust_distinct(&mut tree, &c.entry, -1)?;
            }
        }
        Ok(())
    }

    /// Adds entries an index build computed, in key order and without maintaining the
    /// statistics (the build recounts them once at the end: [`IndexSet::recount`]).
    pub fn insert_built(&self, id: u32, mut entries: Vec<Vec<u8>>) -> Result<()> {
        entries.sort_unstable();
        let tree = self.tree(id)?;
        let mut tree = tree.write();
        for entry in &entries {
            tree.insert(entry, &[])?;
        }
        Ok(())
    }

    /// Recomputes index `id`'s statistics from its entries (writers must be held off).
    pub fn recount(&self, id: u32) -> Result<()> {
        let tree = self.tree(id)?;
        let mut tree = tree.write();
        let counts = count_distinct(&tree)?;
        tree.set_meta(counts);
        Ok(())
    }

    /// Commits every tree that changed, calling `before_each` under each tree's lock first
    /// (the engine makes the WAL records behind the tree's changes durable there).
    pub fn commit(&self, before_each: &dyn Fn() -> Result<()>) -> Result<()> {
        let trees: Vec<Tree> = self.trees.read().values().cloned().collect();
        for tree in trees {
            let mut tree = tree.write();
            before_each()?;
            tree.commit()?;
        }
        Ok(())
    }

    /// The planner's numbers for index `id`.
    pub fn stats(&self, id: u32) -> Result<IndexStats> {
        let tree = self.tree(id)?;
        let t = tree.read();
        let [distinct, distinct_first] = t.meta();
        Ok(IndexStats {
            entries: t.len(),
            distinct,
            distinct_first,
        })
    }

    /// Whether index `id` holds `entry`.
    pub fn contains(&self, id: u32, entry: &[u8]) -> Result<bool> {
        Ok(self.tree(id)?.read().get(entry)?.is_some())
    }

    /// Entries of index `id` within the bounds, ascending or descending.
    pub fn scan(
        &self,
        id: u32,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Result<IndexScan> {
        Ok(IndexScan {
            tree: self.tree(id)?,
            start,
            end,
            reverse,
            buffer: VecDeque::new(),
            batch: FIRST_SCAN_BATCH,
            done: false,
        })
    }

    /// Verifies the structure of index `id`'s tree (see [`BTree::check`]) and that its
    /// statistics match its entries; returns the entry count.
    pub fn check(&self, id: u32) -> Result<u64> {
        let tree = self.tree(id)?;
        let t = tree.read();
        let stats = t.check()?;
        let [distinct, distinct_first] = count_distinct(&t)?;
        if t.meta() != [distinct, distinct_first] {
            return Err(Error::Corruption(format!(
                "index {id}: statistics say {:?} distinct keys/first values, the entries {:?}",
                t.meta(),
                [distinct, distinct_first]
            )));
        }
        Ok(stats.entries)
    }
}

/// The distinct keys and distinct first values among a tree's entries, in one pass.
fn count_distinct(tree: &BTree) -> Result<[u64; 2]> {
    let (mut distinct, mut distinct_first) = (0u64, 0u64);
    let (mut last, mut last_first): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    for item in tree.iter() {
        let (entry, _) = item?;
        let ends = entry_value_ends(&entry)?;
        let key = entry
            .get(..ends.last().copied().unwrap_or(0))
            .unwrap_or(&[]);
        let first = entry
            .get(..ends.first().copied().unwrap_or(0))
            .unwrap_or(&[]);
        if last.as_deref() != Some(key) {
            distinct += 1;
            last = Some(key.to_vec());
        }
        if last_first.as_deref() != Some(first) {
            distinct_first += 1;
            last_first = Some(first.to_vec());
        }
    }
    Ok([distinct, distinct_first])
}

/// Keeps the distinct counts in step after `entry` was added (`delta` 1) or removed (-1):
/// a count changes when no other entry shares the prefix.
fn adjust_distinct(tree: &mut BTree, entry: &[u8], delta: i64) -> Result<()> {
    let ends = entry_value_ends(entry)?;
    let (Some(&all), Some(&first)) = (ends.last(), ends.first()) else {
        return Ok(());
    };
    // Whether an entry other than `entry` starts with its first `end` bytes.
    let shared = |end: usize| -> Result<bool> {
        let prefix = entry.get(..end).unwrap_or(entry);
        let upper = prefix_successor(prefix);
        let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for item in tree.range(Bound::Included(prefix), upper) {
            if item?.0 != entry {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let all_shared = shared(all)?;
    // An entry that shares all the values shares the first one too.
    let first_shared = all_shared || (first != all && shared(first)?);
    let mut meta = tree.meta();
    for (slot, is_shared) in [(0usize, all_shared), (1, first_shared)] {
        if !is_shared && let Some(m) = meta.get_mut(slot) {
            *m = m.saturating_add_signed(delta);
        }
    }
    tree.set_meta(meta);
    Ok(())
}

/// A range scan of one index, reading the tree in batches so that writers are never
/// held back for longer than one batch.
pub struct IndexScan {
    tree: Tree,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    reverse: bool,
    buffer: VecDeque<Vec<u8>>,
    /// Entries the next batch reads.
    batch: usize,
    done: bool,
}

/// Leaf pages one [`IndexScan::count_batch`] reads under the tree's lock (a few thousand
/// entries: as long a hold as a scan's batch of entries, most of it spent finding them).
const COUNT_LEAVES: usize = 16;

impl IndexScan {
    /// Counts the next batch of the entries this scan has not given yet, without
    /// copying them (none is given after); None once they are all counted. The tree's
    /// lock is held for one batch at a time, as for the entries themselves.
    pub fn count_batch(&mut self) -> Result<Option<u64>> {
        let buffered = std::mem::take(&mut self.buffer);
        let mut n = buffered.len() as u64;
        for key in buffered {
            crate::storage::recycle::give_key(key);
        }
        if self.done {
            return Ok((n > 0).then_some(n));
        }
        let (counted, last) = self
            .tree
            .read()
            .count_range(&self.start, &self.end, COUNT_LEAVES)?;
        n += counted;
        match last {
            // The buffered entries lie outside what is left to read, whichever way the
            // scan goes, so the rest is counted from the front.
            Some(last) => self.start = Bound::Excluded(last),
            None => self.done = true,
        }
        Ok(Some(n))
    }

    /// Counts the entries from the next one on that begin with `prefix` (the leading
    /// bytes of a group of entries), and moves past them: entries already read one by
    /// one, then, where the group goes on past them, the rest of it by leaf positions
    /// as [`IndexScan::count_batch`] counts, a batch of leaves per lock hold.
    pub fn skip_prefix(&mut self, prefix: &[u8]) -> Result<u64> {
        let mut n = 0u64;
        while let Some(front) = self.buffer.front() {
            if !front.starts_with(prefix) {
                return Ok(n);
            }
            if let Some(key) = self.buffer.pop_front() {
                crate::storage::recycle::give_key(key);
            }
            n += 1;
        }
        if self.done {
            return Ok(n);
        }
        // The entries read ran out inside the group: the rest of it lies in
        // `[prefix, successor)` within what is left of the scan's range.
        let successor = prefix_successor(prefix);
        let (from, to, rest_after) = if self.reverse {
            let from = match &self.start {
                Bound::Included(s) | Bound::Excluded(s) if s.as_slice() >= prefix => {
                    self.start.clone()
                }
                _ => Bound::Included(prefix.to_vec()),
            };
            (from, self.end.clone(), None)
        } else {
            let to = match (&self.end, &successor) {
                (Bound::Included(e) | Bound::Excluded(e), Some(s))
                    if e.as_slice() < s.as_slice() =>
                {
                    self.end.clone()
                }
                (Bound::Included(_) | Bound::Excluded(_), None) => self.end.clone(),
                (_, Some(s)) => Bound::Excluded(s.clone()),
                (Bound::Unbounded, None) => Bound::Unbounded,
            };
            let rest_after = match (&to, &successor) {
                (Bound::Excluded(t), Some(s)) if t == s => Some(s.clone()),
                _ => None,
            };
            (self.start.clone(), to, rest_after)
        };
        let mut from = from;
        loop {
            let (counted, last) = self.tree.read().count_range(&from, &to, COUNT_LEAVES)?;
            n += counted;
            match last {
                Some(last) => from = Bound::Excluded(last),
                None => break,
            }
        }
        if self.reverse {
            // Everything from the group's first entry up has been read.
            match &self.start {
                Bound::Included(s) | Bound::Excluded(s) if s.as_slice() >= prefix => {
                    self.done = true
                }
                _ => self.end = Bound::Excluded(prefix.to_vec()),
            }
        } else {
            match rest_after {
                // The scan goes on after the group.
                Some(s) => self.start = Bound::Included(s),
                None => self.done = true,
            }
        }
        Ok(n)
    }

    fn refill(&mut self) -> Result<()> {
        let tree = self.tree.read();
        let range = tree.range(
            self.start.as_ref().map(Vec::as_slice),
            self.end.as_ref().map(Vec::as_slice),
        );
        let mut taken = 0;
        self.buffer.reserve(self.batch);
        let mut push = |item: Result<(Vec<u8>, Vec<u8>)>| -> Result<()> {
            let (k, _) = item?;
            self.buffer.push_back(k);
            taken += 1;
            Ok(())
        };
        let batch = self.batch;
        if self.reverse {
            for item in range.rev().take(batch) {
                push(item)?;
            }
        } else {
            for item in range.take(batch) {
                push(item)?;
            }
        }
        if taken < batch {
            self.done = true;
        }
        self.batch = (batch * 2).min(SCAN_BATCH);
        if let Some(last) = self.buffer.back() {
            if self.reverse {
                self.end = Bound::Excluded(last.clone());
            } else {
                self.start = Bound::Excluded(last.clone());
            }
        }
        Ok(())
    }
}

impl Iterator for IndexScan {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty()
            && !self.done
            && let Err(e) = self.refill()
        {
            self.done = true;
            return Some(Err(e));
        }
        self.buffer.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans read in batches of 16, 32, ... 256 entries: every entry comes back once, in
    /// order, in both directions and from a bound inside the range.
    #[test]
    fn scans_return_every_entry_across_growing_batches() {
        let dir = tempfile::tempdir().unwrap();
        let set = IndexSet::open(dir.path(), 1 << 20).unwrap();
        set.create(1).unwrap();
        let entries: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        set.insert_built(1, entries.clone()).unwrap();
        let all = |reverse| -> Vec<Vec<u8>> {
            set.scan(1, Bound::Unbounded, Bound::Unbounded, reverse)
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(all(false), entries);
        let mut reversed = entries.clone();
        reversed.reverse();
        assert_eq!(all(true), reversed);
        let from: Vec<Vec<u8>> = set
            .scan(
                1,
                Bound::Included(500u32.to_be_bytes().to_vec()),
                Bound::Unbounded,
                false,
            )
            .unwrap()
            .take(20)
            .map(Result::unwrap)
            .collect();
        assert_eq!(from, entries[500..520].to_vec());
        // Counted: whole, within bounds, and what is left after some entries were read
        // (the entries read and buffered are not counted again), both ways.
        let count = |mut scan: IndexScan| {
            let mut n = 0;
            while let Some(c) = scan.count_batch().unwrap() {
                n += c;
            }
            n
        };
        let key = |i: u32| i.to_be_bytes().to_vec();
        for reverse in [false, true] {
            let scan = |start, end| set.scan(1, start, end, reverse).unwrap();
            assert_eq!(count(scan(Bound::Unbounded, Bound::Unbounded)), 1000);
            assert_eq!(
                count(scan(Bound::Excluded(key(100)), Bound::Included(key(899)))),
                799
            );
            assert_eq!(
                count(scan(Bound::Included(key(5)), Bound::Excluded(key(5)))),
                0
            );
            for read in [1, 16, 17, 100, 999, 1000] {
                let mut s = scan(Bound::Unbounded, Bound::Unbounded);
                for _ in 0..read {
                    s.next().unwrap().unwrap();
                }
                assert_eq!(
                    count(s),
                    1000 - read as u64,
                    "{read} read, reverse {reverse}"
                );
            }
        }
    }

    /// Groups of entries sharing their leading bytes, counted by reading each group's
    /// first entry and skipping the rest (from the entries read, then by leaf
    /// positions): the counts of every group, both ways, within bounds that cut groups.
    #[test]
    fn groups_are_counted_by_skipping_their_entries() {
        use std::ops::RangeBounds;
        let dir = tempfile::tempdir().unwrap();
        let set = IndexSet::open(dir.path(), 1 << 20).unwrap();
        set.create(1).unwrap();
        // Group g (its first byte; 0xff too, whose prefix has no successor) holds
        // g * 37 % 900 entries: none, one, a few, more than a batch, many leaves.
        let groups: Vec<u8> = (0..60u8).chain([0xfe, 0xff]).collect();
        let mut entries = Vec::new();
        for &g in &groups {
            for i in 0..(u32::from(g) * 37 % 900) {
                let mut e = vec![g];
                e.extend_from_slice(&i.to_be_bytes());
                entries.push(e);
            }
        }
        set.insert_built(1, entries.clone()).unwrap();
        let key = |g: u8, i: u32| {
            let mut e = vec![g];
            e.extend_from_slice(&i.to_be_bytes());
            e
        };
        let bounds = [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(key(3, 10)), Bound::Excluded(key(40, 500))),
            (Bound::Excluded(key(7, 0)), Bound::Included(key(0xff, 3))),
            (Bound::Included(vec![5]), Bound::Excluded(vec![6])),
        ];
        for (start, end) in bounds {
            let mut want: Vec<(u8, u64)> = Vec::new();
            for e in entries
                .iter()
                .filter(|e| (start.as_ref(), end.as_ref()).contains(e))
            {
                match want.last_mut() {
                    Some((g, n)) if *g == e[0] => *n += 1,
                    _ => want.push((e[0], 1)),
                }
            }
            for reverse in [false, true] {
                let mut scan = set.scan(1, start.clone(), end.clone(), reverse).unwrap();
                let mut got = Vec::new();
                while let Some(first) = scan.next() {
                    let first = first.unwrap();
                    let rest = scan.skip_prefix(&first[..1]).unwrap();
                    got.push((first[0], 1 + rest));
                }
                if reverse {
                    got.reverse();
                }
                assert_eq!(got, want, "{start:?}..{end:?} reverse {reverse}");
            }
        }
    }

    /// Statistics kept entry by entry (one- and two-value keys, entries added and
    /// removed in any order) always equal a recount.
    #[test]
    fn distinct_counts_follow_every_change() {
        use crate::doc::Value;
        use crate::doc::keycode::encode_index_entry;
        let dir = tempfile::tempdir().unwrap();
        let set = IndexSet::open(dir.path(), 1 << 20).unwrap();
        set.create(1).unwrap();
        set.create(2).unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..3000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (a, b, id) = (x % 7, (x >> 8) % 5, (x >> 16) % 40);
            let one = encode_index_entry(&[Value::Int(a as i64)], &id.to_string());
            let two = encode_index_entry(
                &[Value::Int(a as i64), Value::String(b.to_string())],
                &id.to_string(),
            );
            let put = !(x >> 32).is_multiple_of(3);
            let changes = [
                IndexChange {
                    index: 1,
                    entry: one,
                    put,
                },
                IndexChange {
                    index: 2,
                    entry: two,
                    put,
                },
            ];
            set.apply(&changes).unwrap();
            if step.is_multiple_of(100) {
                set.check(1).unwrap();
                set.check(2).unwrap();
            }
        }
        set.check(1).unwrap();
        set.check(2).unwrap();
        let stats = set.stats(2).unwrap();
        assert!(stats.distinct > stats.distinct_first && stats.distinct_first > 1);
    }
}
