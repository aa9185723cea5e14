//! The block cache: decoded blocks, least recently used evicted first, bounded by the
//! decoded bytes it holds.

use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::storage::segment::Block;

struct Inner {
    lru: LruCache<(u64, usize), Arc<Block>>,
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

    pub fn get(&self, segment: u64, block: usize) -> Option<Arc<Block>> {
        self.inner.lock().lru.get(&(segment, block)).cloned()
    }

    pub fn insert(&self, segment: u64, block: usize, value: Arc<Block>) {
        if value.approx_size > self.capacity {
            return;
        }
        let mut inner = self.inner.lock();
        let size = value.approx_size;
        if let Some(old) = inner.lru.put((segment, block), value) {
            inner.bytes -= old.approx_size;
        }
        inner.bytes += size;
        while inner.bytes > self.capacity {
            match inner.lru.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.approx_size,
                None => break,
            }
        }
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
                inner.bytes -= b.approx_size;
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
}
