//! The block cache: blocks, least recently used evicted first, bounded by the bytes it
//! holds. A block is kept decoded (what scans read, and point reads while the cache has
//! room) or as its decompressed payload (what point reads keep once the cache is full:
//! a read then decodes only its entry, at a fraction of the memory).

use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::storage::segment::{Block, Encoding};

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
}

impl Cached {
    fn size(&self) -> usize {
        match self {
            Cached::Decoded(b) => b.approx_size,
            Cached::Payload(p) => p.size(),
        }
    }
}

struct Inner {
    lru: LruCache<(u64, usize), Cached>,
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
        match self.inner.lock().lru.get(&(segment, block)) {
            Some(Cached::Decoded(b)) => Some(b.clone()),
            _ => None,
        }
    }

    /// Block `block` of segment `segment`, decoded or as its payload.
    pub fn get_any(&self, segment: u64, block: usize) -> Option<Result<Arc<Block>, Arc<Payload>>> {
        match self.inner.lock().lru.get(&(segment, block))? {
            Cached::Decoded(b) => Some(Ok(b.clone())),
            Cached::Payload(p) => Some(Err(p.clone())),
        }
    }

    /// Keeps a decoded block (replacing its payload, if held).
    pub fn insert(&self, segment: u64, block: usize, value: Arc<Block>) {
        self.put(segment, block, Cached::Decoded(value));
    }

    /// Keeps a block's payload.
    pub fn insert_payload(&self, segment: u64, block: usize, value: Arc<Payload>) {
        self.put(segment, block, Cached::Payload(value));
    }

    fn put(&self, segment: u64, block: usize, value: Cached) {
        let size = value.size();
        if size > self.capacity {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(old) = inner.lru.put((segment, block), value) {
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
        let doomed: Vec<(u64, usize)> = inner
            .lru
            .iter()
            .filter(|((s, _), _)| *s == segment)
            .map(|(k, _)| *k)
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
            entries: Vec::new(),
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
    }
}
