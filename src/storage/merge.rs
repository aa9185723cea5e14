//! Merging sorted sources into one sorted stream where the newest version of each key
//! wins: the heart of scans and of compaction.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

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
}

impl<D> MergeIter<D> {
    pub fn new(sources: Vec<Source<D>>) -> Self {
        MergeIter {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            failed: false,
            started: false,
            sole: None,
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
        let top = self.heap.pop()?;
        // Drop older versions of the same key from the other sources.
        while self
            .heap
            .peek()
            .is_some_and(|next| next.entry.key == top.entry.key)
        {
            if let Some(older) = self.heap.pop()
                && let Err(e) = self.pull(older.source)
            {
                self.failed = true;
                return Some(Err(e));
            }
        }
        if self.heap.is_empty() {
            // Every other source has ended.
            self.sole = Some(top.source);
            return Some(Ok(top.entry));
        }
        if let Err(e) = self.pull(top.source) {
            self.failed = true;
            return Some(Err(e));
        }
        Some(Ok(top.entry))
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
