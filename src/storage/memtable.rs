//! The memtable: recent writes in memory, on a lock-free skip list (crossbeam-skiplist).
//!
//! Each write is a version `(key, seq)`; versions of one key sort newest first, so a
//! point read is one `lower_bound` and a scan skips to the next key after the first
//! version it meets. Values are documents in `doc::binary` form, `None` for a delete.
//!
//! A point read does not walk the skip list when it can help it: a walk is some twenty
//! dependent cache misses once the table outgrows the CPU caches, which made the
//! memtable the largest cost of an indexed read that fetches ten rows. Next to the list,
//! a hash table sharded under read-write locks (the point index) maps each key to its
//! newest version: a slot of one pointer to the version's allocation, which the list
//! shares and which holds the version's sequence number, key and document. A read
//! whose snapshot sees that version (nearly all: a reader older than a key's newest
//! write is rare) answers from it, and a key the point index lacks is not in the table
//! at all; only a reader older than the newest version walks the list.
//!
//! A writer updates the point index before the write becomes visible to readers (its
//! sequence number is published afterwards), under the shard's lock, keeping the newest
//! sequence number when two writes to one key apply out of order.
//!
//! Most point reads ask for a key the table does not hold (rows flushed to segments
//! long ago), and the point index answers "absent" only after a shard lock whose word
//! the other cores' readers keep taking away, and two cache misses into a table of
//! megabytes: a quarter of a microsecond per read, a tenth of an indexed read of ten
//! rows. A bloom filter in front of it answers most of them with one word: one 64-bit
//! word per key, three bits of it set, about ten bits per entry the table can hold (1 to
//! 3% false positives when full). A writer sets the bits before its write becomes
//! visible, like the point index. In front of the filter, four words with a bit per
//! collection (by the low byte of its id) answer a read of a collection the table holds
//! no key of without touching the filter: the everyday case of a table loaded in bulk or
//! written long ago, read while the memtable holds other tables' writes or none.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_skiplist::SkipMap;

use parking_lot::RwLock;

/// A storage key as the skip list holds it: inline up to 24 bytes (every key of an
/// integer or short text id), so that comparing against a node reads the node alone
/// rather than chasing a pointer to the key's own allocation at every step of a walk.
pub type InlineKey = smallvec::SmallVec<[u8; 24]>;

/// A version's key: the storage key, then the sequence number in descending order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionKey {
    pub key: InlineKey,
    /// `u64::MAX - seq`, so that newer versions sort first.
    rev_seq: u64,
}

impl VersionKey {
    fn new(key: Vec<u8>, seq: u64) -> Self {
        VersionKey {
            key: InlineKey::from_vec(key),
            rev_seq: u64::MAX - seq,
        }
    }

    pub fn seq(&self) -> u64 {
        u64::MAX - self.rev_seq
    }
}

/// Bytes of bookkeeping counted per entry on top of key and value: the skip-list node
/// (key inline, version pointer, tower), the version's allocation (its counts, header and
/// a copy of the key) and the point index's slot at the hash table's usual fill.
/// Measured (`tests/memtable_memory.rs`): a row of a 15-byte key and a 40-byte record holds
/// 213 bytes of requested heap with a point index of (key, sequence number, value) slots,
/// 193 with slots of one pointer to the version (counted: 199).
const ENTRY_OVERHEAD: u64 = 144;

/// One version of a key, as the skip list and the point index share it: a single
/// allocation holding the version's sequence number, its key and its document (none for
/// a delete), so that the point index's slot is this one pointer.
///
/// ```text
/// seq u64 LE | key length u32 LE (top bit set for a delete) | key | document
/// ```
#[derive(Clone)]
struct Version(Arc<[u8]>);

/// Bytes before the key.
const VERSION_HEADER: usize = 12;
/// The key length word's flag of a delete.
const DELETE_BIT: u32 = 1 << 31;

impl Version {
    fn new(key: &[u8], seq: u64, doc: Option<&[u8]>) -> Version {
        let word = key.len() as u32 | if doc.is_none() { DELETE_BIT } else { 0 };
        // One allocation: the iterator's length is known, so the Arc is filled in place.
        let bytes: Arc<[u8]> = seq
            .to_le_bytes()
            .into_iter()
            .chain(word.to_le_bytes())
            .chain(key.iter().copied())
            .chain(doc.unwrap_or_default().iter().copied())
            .collect();
        Version(bytes)
    }

    fn seq(&self) -> u64 {
        let mut b = [0u8; 8];
        if let Some(s) = self.0.get(..8) {
            b.copy_from_slice(s);
        }
        u64::from_le_bytes(b)
    }

    fn word(&self) -> u32 {
        let mut b = [0u8; 4];
        if let Some(s) = self.0.get(8..VERSION_HEADER) {
            b.copy_from_slice(s);
        }
        u32::from_le_bytes(b)
    }

    fn key_end(&self) -> usize {
        VERSION_HEADER + (self.word() & !DELETE_BIT) as usize
    }

    fn key(&self) -> &[u8] {
        self.0
            .get(VERSION_HEADER..self.key_end())
            .unwrap_or_default()
    }

    /// The document, or None for a delete.
    fn doc(&self) -> Option<&[u8]> {
        if self.word() & DELETE_BIT != 0 {
            return None;
        }
        self.0.get(self.key_end()..)
    }
}

/// Shards of the point index: one per value of a hash's top six bits.
const POINT_SHARDS: usize = 64;

/// Bits of the bloom filter per entry a table of its size can hold.
const BLOOM_BITS_PER_ENTRY: u64 = 10;

/// The table size the bloom filter of [`Memtable::new`] is made for.
const DEFAULT_CAPACITY: u64 = 1 << 20;

/// The point index's bloom filter (see the module doc): one word per key, chosen by bits
/// 18 and up of its hash, with the bits that hash's lowest three groups of six name set.
struct Bloom {
    /// A power of two of them.
    words: Box<[AtomicU64]>,
}

impl Bloom {
    /// A filter for a table of `bytes`: at most one entry per [`ENTRY_OVERHEAD`] bytes.
    fn for_bytes(bytes: u64) -> Bloom {
        let entries = (bytes / ENTRY_OVERHEAD).max(64);
        let words = (entries * BLOOM_BITS_PER_ENTRY)
            .div_ceil(64)
            .next_power_of_two();
        Bloom {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, hash: u64) -> (&AtomicU64, u64) {
        let i = (hash >> 18) as usize & (self.words.len() - 1);
        let mask =
            (1u64 << (hash & 63)) | (1u64 << ((hash >> 6) & 63)) | (1u64 << ((hash >> 12) & 63));
        let word = self
            .words
            .get(i)
            .unwrap_or_else(|| unreachable!("word {i} of {}", self.words.len()));
        (word, mask)
    }

    fn add(&self, hash: u64) {
        let (word, mask) = self.slot(hash);
        word.fetch_or(mask, Ordering::Relaxed);
    }

    /// False only for a hash never added.
    fn may_hold(&self, hash: u64) -> bool {
        let (word, mask) = self.slot(hash);
        word.load(Ordering::Relaxed) & mask == mask
    }
}

/// The hash the point index takes for `key`: the one segments' bloom filters take, so
/// that a point read hashes its key once.
pub fn hash_key(key: &[u8]) -> u64 {
    crate::storage::segment::bloom::hash(key)
}

/// A memtable. See the module doc.
pub struct Memtable {
    map: SkipMap<VersionKey, Version>,
    /// The point index: each key's newest version.
    points: Box<[RwLock<hashbrown::HashTable<Version>>]>,
    bloom: Bloom,
    /// Which collections the table has keys of: bit `c % 256` for collection `c`. A
    /// read of a collection the table holds nothing of (a table of other tables' recent
    /// writes, or an empty one) answers "absent" from this word alone, without the bloom
    /// filter's probe, a cache miss per read in a filter sized for the full table.
    collections: [AtomicU64; 4],
    size: AtomicU64,
    max_seq: AtomicU64,
    /// Per collection, documents added minus documents removed by the writes in this
    /// table (see [`crate::storage::Op::Count`]).
    counts: parking_lot::Mutex<HashMap<u32, i64>>,
}

/// A key's newest value in a memtable: `Some(bytes)` for a document, `None` for a delete.
pub type Lookup = Option<Option<Vec<u8>>>;

impl Default for Memtable {
    fn default() -> Self {
        Self::new()
    }
}

impl Memtable {
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A table that will be frozen at about `bytes` (see [`Memtable::size`]); its bloom
    /// filter is sized for that (a table grown past it still answers right, with more
    /// false positives).
    pub fn with_capacity(bytes: u64) -> Self {
        Memtable {
            map: SkipMap::new(),
            points: (0..POINT_SHARDS)
                .map(|_| RwLock::new(hashbrown::HashTable::new()))
                .collect(),
            bloom: Bloom::for_bytes(bytes),
            collections: Default::default(),
            size: AtomicU64::new(0),
            max_seq: AtomicU64::new(0),
            counts: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The word and bit of `collections` for `key`'s collection: the low byte of its
    /// 4-byte big-endian id (0 for a key shorter than that, which no stored key is).
    fn collection_bit(&self, key: &[u8]) -> (&AtomicU64, u64) {
        let low = key.get(3).copied().unwrap_or(0);
        let [a, b, c, d] = &self.collections;
        let word = match low >> 6 {
            0 => a,
            1 => b,
            2 => c,
            _ => d,
        };
        (word, 1u64 << (low & 63))
    }

    /// The point-index shard of a key with hash `hash`.
    fn shard(&self, hash: u64) -> &RwLock<hashbrown::HashTable<Version>> {
        // The top six bits: below POINT_SHARDS.
        let i = (hash >> 58) as usize;
        self.points
            .get(i)
            .unwrap_or_else(|| unreachable!("shard {i} of {POINT_SHARDS}"))
    }

    /// Records `value` (None = delete) for `key` at `seq`.
    pub fn insert(&self, key: Vec<u8>, seq: u64, value: Option<Vec<u8>>) {
        let size = key.len() as u64 + value.as_ref().map_or(0, |v| v.len() as u64) + ENTRY_OVERHEAD;
        let version = Version::new(&key, seq, value.as_deref());
        let key = InlineKey::from_vec(key);
        let hash = hash_key(&key);
        let (word, bit) = self.collection_bit(&key);
        word.fetch_or(bit, Ordering::Relaxed);
        self.bloom.add(hash);
        {
            let mut shard = self.shard(hash).write();
            match shard.find_mut(hash, |v| v.key() == key.as_slice()) {
                Some(newest) if newest.seq() > seq => {}
                Some(newest) => *newest = version.clone(),
                None => {
                    shard.insert_unique(hash, version.clone(), |v| hash_key(v.key()));
                }
            }
        }
        self.map.insert(
            VersionKey {
                key,
                rev_seq: u64::MAX - seq,
            },
            version,
        );
        self.size.fetch_add(size, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// Adds `delta` to collection `collection`'s document count change.
    pub fn add_count(&self, collection: u32, delta: i64) {
        *self.counts.lock().entry(collection).or_default() += delta;
    }

    /// The document count change of collection `collection` in this table.
    pub fn count(&self, collection: u32) -> i64 {
        self.counts.lock().get(&collection).copied().unwrap_or(0)
    }

    /// The document count changes of the writes in this table, per collection.
    pub fn counts(&self) -> HashMap<u32, i64> {
        self.counts.lock().clone()
    }

    /// The newest version of `key`, if the memtable has one.
    pub fn get(&self, key: &[u8]) -> Lookup {
        self.get_at(key, u64::MAX)
    }

    /// The newest version of `key` with a sequence number at or below `seq`.
    pub fn get_at(&self, key: &[u8], seq: u64) -> Lookup {
        self.read_hashed(key, hash_key(key), seq, |v| v.map(<[u8]>::to_vec))
    }

    /// What `read` makes of the newest version of `key` at or below `seq` (its bytes,
    /// or None for a delete), if the memtable has one; `hash` is the key's
    /// [`hash_key`]. The bytes are read in place, not copied.
    pub fn read_hashed<T>(
        &self,
        key: &[u8],
        hash: u64,
        seq: u64,
        read: impl FnOnce(Option<&[u8]>) -> T,
    ) -> Option<T> {
        let (word, bit) = self.collection_bit(key);
        if word.load(Ordering::Relaxed) & bit == 0 || !self.bloom.may_hold(hash) {
            return None;
        }
        {
            let shard = self.shard(hash).read();
            match shard.find(hash, |v| v.key() == key) {
                None => return None,
                Some(newest) if newest.seq() <= seq => return Some(read(newest.doc())),
                Some(_) => {} // too new for this reader: an older version is in the list
            }
        }
        let probe = VersionKey {
            key: InlineKey::from_slice(key),
            rev_seq: u64::MAX - seq,
        };
        let entry = self.map.lower_bound(Bound::Included(&probe))?;
        (entry.key().key.as_slice() == key).then(|| read(entry.value().doc()))
    }

    /// Every version of the keys in `[start, end)`, both ways.
    fn versions_between(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> crossbeam_skiplist::map::Range<
        '_,
        VersionKey,
        (Bound<VersionKey>, Bound<VersionKey>),
        VersionKey,
        Version,
    > {
        let bound = |key: &[u8]| VersionKey {
            key: InlineKey::from_slice(key),
            rev_seq: 0,
        };
        self.map
            .range((Bound::Included(bound(start)), Bound::Excluded(bound(end))))
    }

    /// The smallest and largest keys in `[start, end)` with any version here, and how
    /// many versions the whole table holds (every key and collection).
    pub fn key_bounds(&self, start: &[u8], end: &[u8]) -> Option<(Vec<u8>, Vec<u8>, usize)> {
        let mut range = self.versions_between(start, end);
        let first = range.next()?.key().key.to_vec();
        let last = range
            .next_back()
            .map_or_else(|| first.clone(), |e| e.key().key.to_vec());
        Some((first, last, self.map.len()))
    }

    /// A key about `n` entries (versions) before `end`, not below `start`: where a
    /// backward scan's next part may begin so that it holds at most `n` of this table's
    /// entries. None when the table has no entry in `[start, end)`.
    pub fn key_back(&self, start: &[u8], end: &[u8], n: usize) -> Option<Vec<u8>> {
        let mut range = self.versions_between(start, end);
        let mut found = None;
        for _ in 0..n.max(1) {
            match range.next_back() {
                Some(e) => found = Some(e),
                None => break,
            }
        }
        found.map(|e| e.key().key.to_vec())
    }

    /// Approximate memory held, in bytes.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether the table holds any version (a tombstone included) of a key in
    /// `[first, last]`.
    pub fn holds_range(&self, first: &[u8], last: &[u8]) -> bool {
        let from = VersionKey::new(first.to_vec(), u64::MAX);
        self.map
            .range((Bound::Included(from), Bound::Unbounded))
            .next()
            .is_some_and(|e| e.key().key.as_slice() <= last)
    }

    /// Highest sequence number inserted.
    pub fn max_seq(&self) -> u64 {
        self.max_seq.load(Ordering::Relaxed)
    }
}

/// Keys fetched from the skip list per refill of a [`MemtableIter`].
const ITER_BATCH: usize = 256;

/// What a plain [`MemtableIter`] yields: each key and its value (None: deleted).
pub type Record = (Vec<u8>, Option<Vec<u8>>);

/// The mapping of a plain [`MemtableIter`]: key and value copied out.
pub type CopyRecord = fn(&[u8], Option<&[u8]>) -> Record;

fn copy_record(key: &[u8], value: Option<&[u8]>) -> Record {
    (key.to_vec(), value.map(<[u8]>::to_vec))
}

/// An owned iterator over the newest version of each key in `[start, end)`. It walks the
/// skip list in batches (one search per batch, then its linked levels), keeping no borrow
/// of the table between batches. Each entry goes through `map` while the table holds
/// it, so a scan that wants a document's values never copies the record first.
pub struct MemtableIter<T = Record, F = CopyRecord> {
    table: Arc<Memtable>,
    /// Versions newer than this are skipped.
    max_seq: u64,
    next_from: Option<Bound<Vec<u8>>>,
    end: Bound<Vec<u8>>,
    batch: std::collections::VecDeque<T>,
    /// The last key taken (its buffer reused).
    last: Vec<u8>,
    map: F,
}

impl MemtableIter {
    pub fn new(table: Arc<Memtable>, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        Self::at(table, u64::MAX, start, end)
    }

    /// Like [`MemtableIter::new`], seeing only versions at or below `max_seq`.
    pub fn at(
        table: Arc<Memtable>,
        max_seq: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> Self {
        MemtableIter::mapped(table, max_seq, start, end, copy_record)
    }
}

impl<T, F: FnMut(&[u8], Option<&[u8]>) -> T> MemtableIter<T, F> {
    /// Like [`MemtableIter::at`], yielding what `map` makes of each key and value.
    pub fn mapped(
        table: Arc<Memtable>,
        max_seq: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        map: F,
    ) -> Self {
        MemtableIter {
            table,
            max_seq,
            next_from: Some(start),
            end,
            batch: std::collections::VecDeque::new(),
            last: Vec::new(),
            map,
        }
    }

    fn in_range(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Unbounded => true,
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
        }
    }

    fn refill(&mut self) {
        let Some(from) = self.next_from.take() else {
            return;
        };
        let lower = match from {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(k) => Bound::Included(VersionKey::new(k, u64::MAX)),
            // Skip every version of `k`: the oldest possible version sorts last.
            Bound::Excluded(k) => Bound::Excluded(VersionKey::new(k, 0)),
        };
        let mut taken = false;
        for entry in self.table.map.range((lower, Bound::Unbounded)) {
            let key = &entry.key().key;
            if taken && self.last.as_slice() == key.as_slice() {
                continue; // an older version of the key just taken
            }
            if !self.in_range(key) {
                return;
            }
            if entry.key().seq() > self.max_seq {
                continue; // too new for this reader; an older version may follow
            }
            if self.batch.len() == ITER_BATCH {
                self.next_from = Some(Bound::Excluded(std::mem::take(&mut self.last)));
                return;
            }
            self.batch.push_back((self.map)(key, entry.value().doc()));
            self.last.clear();
            self.last.extend_from_slice(key);
            taken = true;
        }
    }
}

impl<T, F: FnMut(&[u8], Option<&[u8]>) -> T> Iterator for MemtableIter<T, F> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.batch.is_empty() {
            self.refill();
        }
        self.batch.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bloom_filter_keeps_every_key_and_refuses_most_others() {
        // A table made for 64 KiB (341 entries), filled past that: still no false
        // negatives, only more false positives.
        let m = Memtable::with_capacity(64 << 10);
        for i in 0..2_000u32 {
            m.insert(
                format!("k{i}").into_bytes(),
                u64::from(i) + 1,
                Some(vec![1]),
            );
            if i == 499 {
                let absent = (0..10_000u32)
                    .filter(|i| m.bloom.may_hold(hash_key(format!("a{i}").as_bytes())))
                    .count();
                assert!(
                    absent < 1_000,
                    "{absent} of 10000 absent keys pass when full"
                );
            }
        }
        for i in 0..2_000u32 {
            let key = format!("k{i}").into_bytes();
            assert!(m.bloom.may_hold(hash_key(&key)), "k{i}");
            assert_eq!(m.get(&key), Some(Some(vec![1])), "k{i}");
        }
        for i in 0..1_000u32 {
            assert_eq!(m.get(format!("a{i}").as_bytes()), None);
        }
        // Deletes are versions too: the key passes the filter and reads as deleted.
        m.insert(b"k0".to_vec(), 5_000, None);
        assert_eq!(m.get(b"k0"), Some(None));
    }

    #[test]
    fn a_collection_without_keys_here_is_absent_at_once() {
        use crate::storage::keys;
        let m = Memtable::new();
        // Collection 2 holds the key; 3 and 258 ask for the same id. 258 shares 2's
        // bit (258 % 256): it passes the word and is answered by the bloom filter and
        // the point index, still right.
        m.insert(keys::encode(2, "Q7"), 1, Some(vec![7]));
        assert_eq!(m.get(&keys::encode(2, "Q7")), Some(Some(vec![7])));
        for c in [3, 258, 0, 1, 255] {
            let (word, bit) = m.collection_bit(&keys::encode(c, "Q7"));
            assert_eq!(word.load(Ordering::Relaxed) & bit != 0, c == 258, "{c}");
            assert_eq!(m.get(&keys::encode(c, "Q7")), None, "collection {c}");
        }
        // A delete marks its collection too: it reads as deleted, not as absent.
        m.insert(keys::encode(3, "Q7"), 2, None);
        assert_eq!(m.get(&keys::encode(3, "Q7")), Some(None));
        // Every collection id's low byte: inserted keys are always found.
        for c in 0..300u32 {
            m.insert(keys::encode(c, "x"), 10 + u64::from(c), Some(vec![1]));
        }
        for c in 0..300u32 {
            assert_eq!(m.get(&keys::encode(c, "x")), Some(Some(vec![1])), "{c}");
        }
    }

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
        // An empty document is not a delete; a long key is whole.
        m.insert(b"e".to_vec(), 5, Some(Vec::new()));
        assert_eq!(m.get(b"e"), Some(Some(Vec::new())));
        let long = vec![b'k'; 300];
        m.insert(long.clone(), 6, Some(b"long".to_vec()));
        m.insert(long[..299].to_vec(), 7, None);
        assert_eq!(m.get(&long), Some(Some(b"long".to_vec())));
        assert_eq!(m.get(&long[..299]), Some(None));
        assert_eq!(m.get(&long[..298]), None);
    }

    #[test]
    fn concurrent_writers_leave_each_key_at_its_newest_version() {
        let m = Arc::new(Memtable::new());
        // Four writers interleave sequence numbers over the same keys, so versions of a
        // key arrive out of order; the point index must keep the highest.
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for round in 0..500u64 {
                        let seq = round * 4 + (3 - w) + 1;
                        let key = format!("k{}", round % 50).into_bytes();
                        m.insert(key, seq, Some(seq.to_be_bytes().to_vec()));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        for k in 0..50u64 {
            let key = format!("k{k}").into_bytes();
            let newest = (0..500u64)
                .filter(|r| r % 50 == k)
                .map(|r| r * 4 + 4)
                .max()
                .unwrap();
            assert_eq!(m.get(&key), Some(Some(newest.to_be_bytes().to_vec())));
            let older = newest - 1;
            assert_eq!(
                m.get_at(&key, older),
                Some(Some(older.to_be_bytes().to_vec()))
            );
        }
    }

    #[test]
    fn readers_at_a_sequence_number_see_the_versions_up_to_it() {
        let m = Arc::new(Memtable::new());
        m.insert(b"a".to_vec(), 1, Some(b"1".to_vec()));
        m.insert(b"a".to_vec(), 3, Some(b"3".to_vec()));
        m.insert(b"b".to_vec(), 4, Some(b"4".to_vec()));
        m.insert(b"c".to_vec(), 2, None);
        assert_eq!(m.get_at(b"a", 2), Some(Some(b"1".to_vec())));
        assert_eq!(m.get_at(b"a", 3), Some(Some(b"3".to_vec())));
        assert_eq!(m.get_at(b"b", 3), None);
        assert_eq!(m.get_at(b"a", 0), None);
        let at2: Vec<_> =
            MemtableIter::at(m.clone(), 2, Bound::Unbounded, Bound::Unbounded).collect();
        assert_eq!(
            at2,
            vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"c".to_vec(), None)]
        );
        let at9: Vec<_> = MemtableIter::at(m, 9, Bound::Unbounded, Bound::Unbounded).collect();
        assert_eq!(at9.len(), 3);
        assert_eq!(at9[0].1, Some(b"3".to_vec()));
    }

    #[test]
    fn iteration_crosses_batches_with_many_versions() {
        let m = Arc::new(Memtable::new());
        let mut seq = 0;
        for round in 0..3 {
            for i in 0..1000u32 {
                seq += 1;
                m.insert(i.to_be_bytes().to_vec(), seq, Some(vec![round]));
            }
        }
        let all: Vec<_> =
            MemtableIter::new(m.clone(), Bound::Unbounded, Bound::Unbounded).collect();
        assert_eq!(all.len(), 1000);
        assert!(
            all.iter().all(|(_, v)| *v == Some(vec![2])),
            "newest versions"
        );
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        let some: Vec<_> = MemtableIter::new(
            m,
            Bound::Excluded(10u32.to_be_bytes().to_vec()),
            Bound::Included(700u32.to_be_bytes().to_vec()),
        )
        .collect();
        assert_eq!(some.len(), 690);
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
