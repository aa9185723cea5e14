//! Merging sorted sources into one sorted stream where the newest version of each key
//! wins: the heart of scans and of compaction.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use crate::doc::Object;
use crate::error::Result;
use crate::storage::segment::BlockEntry;

/// A sorted source of entries, one per key.
pub type Source<D = Object> = Box<dyn Iterator<Item = Result<BlockEntry<D>>> + Send>;

struct HeapItem<D> {
    entry: BlockEntry<D>,
    /// Position of the source: lower is newer.
    source: usize,
}

impl<D> PartialEq for HeapItem<D> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<D> Eq for HeapItem<D> {}
impl<D> PartialOrd for HeapItem<D> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<D> Ord for HeapItem<D> {
    // BinaryHeap is a max-heap: reverse, so the smallest key, then the newest source,
    // comes out first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .entry
            .key
            .cmp(&self.entry.key)
            .then(other.source.cmp(&self.source))
    }
}

/// Merges sources given newest first; yields each key once, with its newest entry
/// (tombstones included: the caller decides what to do with them).
pub struct MergeIter<D = Object> {
    sources: Vec<Source<D>>,
    heap: BinaryHeap<HeapItem<D>>,
    failed: bool,
    started: bool,
    /// Set once every source but this one has ended: its entries then pass straight
    /// through, with no heap (the common case of a scan of one segment).
    sole: Option<usize>,
    /// The sole source's entry taken from the heap, to come out next.
    pending: Option<BlockEntry<D>>,
}

impl<D> MergeIter<D> {
    pub fn new(sources: Vec<Source<D>>) -> Self {
        MergeIter {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            failed: false,
            started: false,
            sole: None,
            pending: None,
        }
    }

    fn pull(&mut self, source: usize) -> Result<()> {
        if let Some(src) = self.sources.get_mut(source)
            && let Some(next) = src.next()
        {
            self.heap.push(HeapItem {
                entry: next?,
                source,
            });
        }
        Ok(())
    }
}

impl<D> Iterator for MergeIter<D> {
    type Item = Result<BlockEntry<D>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some(sole) = self.sole {
            if let Some(entry) = self.pending.take() {
                return Some(Ok(entry));
            }
            let next = self.sources.get_mut(sole)?.next();
            if matches!(next, Some(Err(_))) {
                self.failed = true;
            }
            return next;
        }
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                if let Err(e) = self.pull(i) {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        // The smallest key's newest entry is on top. The same source's next entry takes
        // its place (sifted down, usually no further than one comparison: sources often
        // hold runs of keys), rather than a pop and a push.
        let entry = {
            let mut top = self.heap.peek_mut()?;
            let source = top.source;
            match self.sources.get_mut(source).and_then(|src| src.next()) {
                Some(Ok(next)) => std::mem::replace(&mut top.entry, next),
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                None => PeekMut::pop(top).entry,
            }
        };
        // Drop older versions of the same key from the other sources.
        while self
            .heap
            .peek()
            .is_some_and(|next| next.entry.key == entry.key)
        {
            if let Some(older) = self.heap.pop()
                && let Err(e) = self.pull(older.source)
            {
                self.failed = true;
                return Some(Err(e));
            }
        }
        if self.heap.len() == 1
            && let Some(last) = self.heap.peek().map(|item| item.source)
        {
            // Every other source has ended: the last one's entries pass straight through
            // once its entry in the heap is out.
            if let Some(item) = self.heap.pop() {
                self.sole = Some(last);
                self.pending = Some(item.entry);
            }
        }
        Some(Ok(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{Object, Value};

    fn src(entries: &[(&str, Option<i64>)]) -> Source {
        let v: Vec<Result<BlockEntry>> = entries
            .iter()
            .map(|(k, n)| {
                Ok(BlockEntry {
                    key: k.as_bytes().to_vec(),
                    doc: n.map(|n| {
                        let mut o = Object::default();
                        o.insert("n".into(), Value::Int(n));
                        o
                    }),
                })
            })
            .collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn merges_like_a_map_written_oldest_first() {
        // Sources of runs and of scattered keys, overlapping or not, some empty.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..300 {
            let count = 1 + rand(5) as usize;
            let mut lists: Vec<Vec<(String, Option<i64>)>> = Vec::new();
            for s in 0..count {
                let mut keys = std::collections::BTreeMap::new();
                let (base, spread) = (rand(50), 1 + rand(4));
                for i in 0..rand(30) {
                    let k = if rand(2) == 0 {
                        base + i
                    } else {
                        rand(50 * spread)
                    };
                    let v = (rand(5) != 0).then_some((round * 10 + s) as i64);
                    keys.insert(format!("{k:04}"), v);
                }
                lists.push(keys.into_iter().collect());
            }
            // The model: the oldest source first, each newer one overwriting.
            let mut model = std::collections::BTreeMap::new();
            for list in lists.iter().rev() {
                for (k, v) in list {
                    model.insert(k.clone(), v.map(Value::Int));
                }
            }
            let sources = lists
                .iter()
                .map(|l| {
                    let l: Vec<(&str, Option<i64>)> =
                        l.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                    src(&l)
                })
                .collect();
            let got: Vec<(String, Option<Value>)> = MergeIter::new(sources)
                .map(|r| r.unwrap())
                .map(|e| {
                    (
                        String::from_utf8(e.key).unwrap(),
                        e.doc.map(|d| d["n"].clone()),
                    )
                })
                .collect();
            let want: Vec<(String, Option<Value>)> = model.into_iter().collect();
            assert_eq!(got, want, "round {round}");
        }
    }

    #[test]
    fn newest_source_wins_and_keys_come_once() {
        let newest = src(&[("b", Some(2)), ("d", None)]);
        let older = src(&[("a", Some(1)), ("b", Some(1)), ("d", Some(1))]);
        let oldest = src(&[("b", Some(0)), ("c", Some(0))]);
        let out: Vec<_> = MergeIter::new(vec![newest, older, oldest])
            .map(|r| r.unwrap())
            .map(|e| {
                let n = e.doc.map(|d| d["n"].clone());
                (String::from_utf8(e.key).unwrap(), n)
            })
            .collect();
        assert_eq!(
            out,
            vec![
                ("a".into(), Some(Value::Int(1))),
                ("b".into(), Some(Value::Int(2))),
                ("c".into(), Some(Value::Int(0))),
                ("d".into(), None),
            ]
        );
    }
}
