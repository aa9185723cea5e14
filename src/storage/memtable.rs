//! The memtable: recent writes in memory, on a lock-free skip list (crossbeam-skiplist).
//!
//! Each write is a version `(key, seq)`; versions of one key sort newest first, so a
//! point read is one `lower_bound` and a scan skips to the next key after the first
//! version it meets. Values are documents in `doc::binary` form, `None` for a delete.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_skiplist::SkipMap;

/// A version's key: the storage key, then the sequence number in descending order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionKey {
    pub key: Vec<u8>,
    /// `u64::MAX - seq`, so that newer versions sort first.
    rev_seq: u64,
}

impl VersionKey {
    fn new(key: Vec<u8>, seq: u64) -> Self {
        VersionKey {
            key,
            rev_seq: u64::MAX - seq,
        }
    }

    pub fn seq(&self) -> u64 {
        u64::MAX - self.rev_seq
    }
}

/// Bytes of bookkeeping counted per entry on top of key and value.
const ENTRY_OVERHEAD: u64 = 48;

/// A memtable. See the module doc.
#[derive(Default)]
pub struct Memtable {
    map: SkipMap<VersionKey, Option<Vec<u8>>>,
    size: AtomicU64,
    max_seq: AtomicU64,
}

/// A key's newest value in a memtable: `Some(bytes)` for a document, `None` for a delete.
pub type Lookup = Option<Option<Vec<u8>>>;

impl Memtable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` (None = delete) for `key` at `seq`.
    pub fn insert(&self, key: Vec<u8>, seq: u64, value: Option<Vec<u8>>) {
        let size = key.len() as u64 + value.as_ref().map_or(0, |v| v.len() as u64) + ENTRY_OVERHEAD;
        self.map.insert(VersionKey::new(key, seq), value);
        self.size.fetch_add(size, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// The newest version of `key`, if the memtable has one.
    pub fn get(&self, key: &[u8]) -> Lookup {
        let probe = VersionKey::new(key.to_vec(), u64::MAX);
        let entry = self.map.lower_bound(Bound::Included(&probe))?;
        (entry.key().key == key).then(|| entry.value().clone())
    }

    /// Approximate memory held, in bytes.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Highest sequence number inserted.
    pub fn max_seq(&self) -> u64 {
        self.max_seq.load(Ordering::Relaxed)
    }

    /// The first key's newest version at or after `from`.
    fn first_from(&self, from: Bound<&[u8]>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        let entry = match from {
            Bound::Unbounded => self.map.front(),
            Bound::Included(k) => self
                .map
                .lower_bound(Bound::Included(&VersionKey::new(k.to_vec(), u64::MAX))),
            // Skip every version of `k`: the oldest possible version sorts last.
            Bound::Excluded(k) => self
                .map
                .lower_bound(Bound::Excluded(&VersionKey::new(k.to_vec(), 0))),
        }?;
        Some((entry.key().key.clone(), entry.value().clone()))
    }
}

/// An owned iterator over the newest version of each key in `[start, end)`.
pub struct MemtableIter {
    table: Arc<Memtable>,
    next_from: Option<Bound<Vec<u8>>>,
    end: Bound<Vec<u8>>,
}

impl MemtableIter {
    pub fn new(table: Arc<Memtable>, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        MemtableIter {
            table,
            next_from: Some(start),
            end,
        }
    }
}

impl Iterator for MemtableIter {
    type Item = (Vec<u8>, Option<Vec<u8>>);

    fn next(&mut self) -> Option<Self::Item> {
        let from = self.next_from.take()?;
        let found = match &from {
            Bound::Unbounded => self.table.first_from(Bound::Unbounded),
            Bound::Included(k) => self.table.first_from(Bound::Included(k)),
            Bound::Excluded(k) => self.table.first_from(Bound::Excluded(k)),
        }?;
        let in_range = match &self.end {
            Bound::Unbounded => true,
            Bound::Included(e) => found.0 <= *e,
            Bound::Excluded(e) => found.0 < *e,
        };
        if !in_range {
            return None;
        }
        self.next_from = Some(Bound::Excluded(found.0.clone()));
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_wins() {
        let m = Memtable::new();
        m.insert(b"a".to_vec(), 1, Some(b"1".to_vec()));
        m.insert(b"a".to_vec(), 3, None);
        m.insert(b"a".to_vec(), 2, Some(b"2".to_vec()));
        m.insert(b"ab".to_vec(), 4, Some(b"x".to_vec()));
        assert_eq!(m.get(b"a"), Some(None));
        assert_eq!(m.get(b"ab"), Some(Some(b"x".to_vec())));
        assert_eq!(m.get(b"b"), None);
        assert_eq!(m.get(b""), None);
        assert_eq!(m.max_seq(), 4);
        assert!(m.size() > 0);
    }

    #[test]
    fn iterates_newest_per_key_in_range() {
        let m = Arc::new(Memtable::new());
        for (i, k) in ["d", "b", "a", "c", "b"].iter().enumerate() {
            m.insert(k.as_bytes().to_vec(), i as u64 + 1, Some(vec![i as u8]));
        }
        let all: Vec<_> =
            MemtableIter::new(m.clone(), Bound::Unbounded, Bound::Unbounded).collect();
        let keys: Vec<_> = all.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
        assert_eq!(all[1].1, Some(vec![4u8]), "b's newest version");
        let mid: Vec<_> = MemtableIter::new(
            m,
            Bound::Included(b"b".to_vec()),
            Bound::Excluded(b"d".to_vec()),
        )
        .map(|(k, _)| k)
        .collect();
        assert_eq!(mid, vec![b"b".to_vec(), b"c".to_vec()]);
    }
}
