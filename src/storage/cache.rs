//! The block cache: blocks and documents, least recently used evicted first, bounded by
//! the bytes it holds. A block is kept decoded (what scans read, and point reads while
//! the cache has room) or as its decompressed payload (what point reads keep once the
//! cache is full: a read then decodes only its entry, at a fraction of the memory). The
//! entries point reads decoded alone are kept too, so a hot document is not parsed from
//! its XML again.
//!
//! A decoded block holds its documents in the binary form of
//! [`crate::doc::binary`], not as objects: parsing XML or CSV is the expensive step,
//! while objects take several times the encoded bytes, and a read of a few fields
//! decodes only those. Sizes are what the entries hold in memory (see
//! [`crate::storage::segment::block::memory_size`]), so `block_cache_size` bounds the
//! memory the cache takes.

use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::storage::segment::{Block, BlockEntry, Encoding};

/// A block's decompressed payload, as point reads keep it.
#[derive(Debug)]
pub struct Payload {
    pub encoding: Encoding,
    pub bytes: Vec<u8>,
}

impl Payload {
    fn size(&self) -> usize {
        self.bytes.len() + 64
    }
}

#[derive(Clone)]
enum Cached {
    Decoded(Arc<Block>),
    Payload(Arc<Payload>),
    /// One entry of a block, with its size estimate.
    Entry(Arc<BlockEntry>, usize),
}

impl Cached {
    fn size(&self) -> usize {
        match self {
            Cached::Decoded(b) => b.approx_size,
            Cached::Payload(p) => p.size(),
            Cached::Entry(_, size) => *size,
        }
    }
}

/// What the cache holds: a block of a segment, or one entry (by key) of a segment.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Block(u64, usize),
    Entry(u64, Vec<u8>),
}

impl Key {
    fn segment(&self) -> u64 {
        match self {
            Key::Block(s, _) | Key::Entry(s, _) => *s,
        }
    }
}

struct Inner {
    lru: LruCache<Key, Cached>,
    bytes: usize,
}

/// An LRU cache of decoded blocks keyed by (segment id, block number).
pub struct BlockCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl BlockCache {
    /// A cache holding at most `capacity` decoded bytes (0 disables it).
    pub fn new(capacity: usize) -> Self {
        BlockCache {
            capacity,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// Block `block` of segment `segment`, if it is held decoded.
    pub fn get(&self, segment: u64, block: usize) -> Option<Arc<Block>> {
        match self.inner.lock().lru.get(&Key::Block(segment, block)) {
            Some(Cached::Decoded(b)) => Some(b.clone()),
            _ => None,
        }
    }

    /// Block `block` of segment `segment`, decoded or as its payload.
    pub fn get_any(&self, segment: u64, block: usize) -> Option<Result<Arc<Block>, Arc<Payload>>> {
        match self.inner.lock().lru.get(&Key::Block(segment, block))? {
            Cached::Decoded(b) => Some(Ok(b.clone())),
            Cached::Payload(p) => Some(Err(p.clone())),
            Cached::Entry(..) => None,
        }
    }

    /// Keeps a decoded block (replacing its payload, if held).
    pub fn insert(&self, segment: u64, block: usize, value: Arc<Block>) {
        self.put(Key::Block(segment, block), Cached::Decoded(value));
    }

    /// Keeps a block's payload.
    pub fn insert_payload(&self, segment: u64, block: usize, value: Arc<Payload>) {
        self.put(Key::Block(segment, block), Cached::Payload(value));
    }

    /// The entry for `key` of segment `segment`, if kept.
    pub fn get_entry(&self, segment: u64, key: &[u8]) -> Option<Arc<BlockEntry>> {
        match self
            .inner
            .lock()
            .lru
            .get(&Key::Entry(segment, key.to_vec()))?
        {
            Cached::Entry(e, _) => Some(e.clone()),
            _ => None,
        }
    }

    /// Keeps an entry decoded alone, counted as `size` bytes.
    pub fn insert_entry(&self, segment: u64, entry: Arc<BlockEntry>, size: usize) {
        let key = Key::Entry(segment, entry.key.clone());
        self.put(key, Cached::Entry(entry, size));
    }

    fn put(&self, key: Key, value: Cached) {
        let size = value.size();
        if size > self.capacity {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(old) = inner.lru.put(key, value) {
            inner.bytes -= old.size();
        }
        inner.bytes += size;
        while inner.bytes > self.capacity {
            match inner.lru.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.size(),
                None => break,
            }
        }
    }

    /// Whether a block of `size` decoded bytes fits without evicting another.
    pub fn has_room(&self, size: usize) -> bool {
        size <= self.capacity && self.inner.lock().bytes + size <= self.capacity
    }

    /// Drops every block of a segment (after the segment was compacted away).
    pub fn evict_segment(&self, segment: u64) {
        let mut inner = self.inner.lock();
        let doomed: Vec<Key> = inner
            .lru
            .iter()
            .filter(|(k, _)| k.segment() == segment)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            if let Some(b) = inner.lru.pop(&k) {
                inner.bytes -= b.size();
            }
        }
    }

    /// Decoded bytes held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.inner.lock().lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: usize) -> Arc<Block> {
        Arc::new(Block {
            docs: crate::storage::segment::Docs::Objects(Vec::new()),
            approx_size: size,
        })
    }

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let c = BlockCache::new(300);
        c.insert(1, 0, block(100));
        c.insert(1, 1, block(100));
        c.insert(2, 0, block(100));
        assert!(c.get(1, 0).is_some()); // 1/0 is now the most recent
        c.insert(2, 1, block(100));
        assert!(c.get(1, 1).is_none(), "least recently used was evicted");
        assert!(c.get(1, 0).is_some());
        assert!(c.bytes() <= 300);
        c.evict_segment(2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), 100);
    }

    #[test]
    fn payloads_and_decoded_blocks_share_the_budget() {
        let c = BlockCache::new(400);
        let payload = |n: usize| {
            Arc::new(Payload {
                encoding: Encoding::Xml,
                bytes: vec![b'x'; n],
            })
        };
        c.insert_payload(1, 0, payload(136));
        assert!(c.get(1, 0).is_none(), "a payload is not a decoded block");
        assert!(matches!(c.get_any(1, 0), Some(Err(_))));
        assert_eq!(c.bytes(), 200);
        // Decoding it replaces it.
        c.insert(1, 0, block(300));
        assert!(c.get(1, 0).is_some());
        assert_eq!(c.bytes(), 300);
        c.insert_payload(1, 1, payload(136));
        assert!(c.get_any(1, 0).is_none(), "over budget: the oldest went");
        assert_eq!(c.bytes(), 200);
        // Entries decoded alone count too, and go with their segment.
        let entry = Arc::new(BlockEntry {
            key: b"k".to_vec(),
            doc: None,
        });
        c.insert_entry(1, entry, 100);
        assert!(c.get_entry(1, b"k").is_some());
        assert!(c.get_entry(2, b"k").is_none());
        assert_eq!(c.bytes(), 300);
        c.evict_segment(1);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }
}
