//! The B-tree file: raw page I/O, the two superblock slots, the persisted free list, and
//! the [`PageCache`] of decoded pages.
//!
//! ```text
//! page 0, page 1   superblock slots; generation g is written to slot g % 2
//! page 2..         tree pages and free-list pages
//! superblock = "TISSBTR1" | version u32 | page size u32 | generation u64 | root u64
//!            | entries u64 | page count u64 | free-list head u64 | meta u64 × 2
//!            | crc32c(bytes 0..72) u32
//! meta       = two numbers the tree's owner keeps with each commit (an index's
//!              distinct-value counts)
//! ```
//!
//! At open the valid slot with the highest generation wins, so a torn superblock write
//! leaves the previous one in charge.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use super::page::{self, Node, PAGE_SIZE};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"TISSBTR1";
const VERSION: u32 = 2;
const SUPER_LEN: usize = 76;
/// First page that can hold tree or free-list data.
pub const FIRST_DATA_PAGE: u64 = 2;

/// The committed state a superblock names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub generation: u64,
    pub root: u64,
    pub len: u64,
    /// Pages in use by the file (tree, free list and free pages), superblocks included.
    pub page_count: u64,
    /// First free-list page, 0 if the free list is empty.
    pub free_head: u64,
    /// The owner's numbers, committed with the tree.
    pub meta: [u64; 2],
}

impl Superblock {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(PAGE_SIZE);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        for v in [
            self.generation,
            self.root,
            self.len,
            self.page_count,
            self.free_head,
            self.meta[0],
            self.meta[1],
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b.resize(PAGE_SIZE, 0);
        b
    }

    /// Decodes a slot; Err with the reason if it is not a valid superblock.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Superblock, String> {
        let b = bytes.get(..SUPER_LEN).ok_or("short slot")?;
        let u32_at = |at: usize| {
            let mut x = [0u8; 4];
            x.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(x)
        };
        let u64_at = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(x)
        };
        if b.get(..8) != Some(MAGIC.as_slice()) {
            return Err("bad magic".into());
        }
        let (stored, computed) = (u32_at(72), crc32c::crc32c(b.get(..72).unwrap_or(&[])));
        if stored != computed {
            return Err(format!(
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        if u32_at(8) != VERSION || u32_at(12) != PAGE_SIZE as u32 {
            return Err(format!(
                "version {} / page size {} not supported",
                u32_at(8),
                u32_at(12)
            ));
        }
        Ok(Superblock {
            generation: u64_at(16),
            root: u64_at(24),
            len: u64_at(32),
            page_count: u64_at(40),
            free_head: u64_at(48),
            meta: [u64_at(56), u64_at(64)],
        })
    }
}

struct Inner {
    /// Each page with the bytes it is counted as.
    lru: LruCache<(u64, u64), (Arc<Node>, usize)>,
    bytes: usize,
}

/// Decoded pages of any number of B-tree files in one LRU bounded by bytes (each page
/// counts the memory its decoded node takes, [`Node::memory_size`], so that the
/// capacity bounds the memory as the block cache's does), in the manner of
/// [`crate::storage::cache::BlockCache`]: the storage engine's index files share one.
/// Each file reads it through its own [`PageCache`] view.
pub struct SharedPages {
    capacity: usize,
    inner: Mutex<Inner>,
    next_tag: std::sync::atomic::AtomicU64,
}

impl SharedPages {
    /// A cache of at most `capacity` bytes (0 disables it).
    pub fn new(capacity: usize) -> Arc<SharedPages> {
        Arc::new(SharedPages {
            capacity,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            next_tag: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Bytes held, for every file.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    fn evict(&self, tag: u64) {
        let mut inner = self.inner.lock();
        let keys: Vec<(u64, u64)> = inner
            .lru
            .iter()
            .filter(|((t, _), _)| *t == tag)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some((_, size)) = inner.lru.pop(&k) {
                inner.bytes -= size;
            }
        }
    }
}

/// One file's view of a [`SharedPages`] cache; its pages leave the cache when it drops.
pub struct PageCache {
    pages: Arc<SharedPages>,
    tag: u64,
}

impl PageCache {
    /// A cache of its own, of at most `capacity` bytes (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self::shared(&SharedPages::new(capacity))
    }

    /// A view of `pages` for one more file.
    pub fn shared(pages: &Arc<SharedPages>) -> Self {
        PageCache {
            tag: pages
                .next_tag
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            pages: pages.clone(),
        }
    }

    pub fn get(&self, page_no: u64) -> Option<Arc<Node>> {
        self.pages
            .inner
            .lock()
            .lru
            .get(&(self.tag, page_no))
            .map(|(node, _)| node.clone())
    }

    pub fn insert(&self, page_no: u64, node: Arc<Node>) {
        let size = node.memory_size();
        if size > self.pages.capacity {
            return;
        }
        let mut inner = self.pages.inner.lock();
        if let Some((_, old)) = inner.lru.put((self.tag, page_no), (node, size)) {
            inner.bytes -= old;
        }
        inner.bytes += size;
        while inner.bytes > self.pages.capacity {
            match inner.lru.pop_lru() {
                Some((_, (_, evicted))) => inner.bytes -= evicted,
                None => break,
            }
        }
    }

    pub fn remove(&self, page_no: u64) {
        let mut inner = self.pages.inner.lock();
        if let Some((_, size)) = inner.lru.pop(&(self.tag, page_no)) {
            inner.bytes -= size;
        }
    }

    /// Bytes held by the whole cache (every file sharing it).
    pub fn bytes(&self) -> usize {
        self.pages.bytes()
    }

    /// Pages held by the whole cache (every file sharing it).
    pub fn pages(&self) -> usize {
        self.pages.inner.lock().lru.len()
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        self.pages.evict(self.tag);
    }
}

/// Page I/O on one open B-tree file.
pub struct Pager {
    file: File,
    path: PathBuf,
    pub cache: PageCache,
}

impl Pager {
    pub fn new(file: File, path: &Path, cache: PageCache) -> Pager {
        Pager {
            file,
            path: path.to_path_buf(),
            cache,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File length in bytes.
    pub fn file_len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))
    }

    /// Reads page `page_no` as stored, without checking it.
    pub fn read_raw(&self, page_no: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; PAGE_SIZE];
        let at = page_no
            .checked_mul(PAGE_SIZE as u64)
            .ok_or_else(|| Error::Corruption(format!("B-tree page number {page_no}")))?;
        match self.file.read_exact_at(&mut buf, at) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(Error::Corruption(format!(
                    "{}: page {page_no} is beyond the end of the file",
                    self.path.display()
                )))
            }
            Err(e) => Err(Error::io(
                format!("reading page {page_no} of {}", self.path.display()),
                e,
            )),
        }
    }

    pub fn write_raw(&self, page_no: u64, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, page_no * PAGE_SIZE as u64)
            .map_err(|e| {
                Error::io(
                    format!("writing page {page_no} of {}", self.path.display()),
                    e,
                )
            })
    }

    /// Reads and decodes a tree page through the cache.
    pub fn read_node(&self, page_no: u64) -> Result<Arc<Node>> {
        if let Some(n) = self.cache.get(page_no) {
            return Ok(n);
        }
        let node = Arc::new(
            page::decode_node(page_no, &self.read_raw(page_no)?).map_err(|e| self.located(e))?,
        );
        self.cache.insert(page_no, node.clone());
        Ok(node)
    }

    /// Adds the file name to a corruption message.
    pub fn located(&self, e: Error) -> Error {
        match e {
            Error::Corruption(m) => Error::Corruption(format!("{}: {m}", self.path.display())),
            other => other,
        }
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing {}", self.path.display()), e))
    }

    /// The valid superblock with the highest generation.
    pub fn read_superblock(&self) -> Result<Superblock> {
        let mut best: Option<Superblock> = None;
        let mut reasons = Vec::new();
        for slot in 0..2 {
            let decoded = match self.read_raw(slot) {
                Ok(raw) => Superblock::decode(&raw),
                Err(e) => Err(e.to_string()),
            };
            match decoded {
                Ok(sb) if best.is_none_or(|b| sb.generation > b.generation) => best = Some(sb),
                Ok(_) => {}
                Err(why) => reasons.push(format!("slot {slot}: {why}")),
            }
        }
        let sb = best.ok_or_else(|| {
            Error::Corruption(format!(
                "{}: no valid B-tree superblock ({})",
                self.path.display(),
                reasons.join("; ")
            ))
        })?;
        let len = self.file_len()?;
        if sb.page_count < FIRST_DATA_PAGE + 1
            || sb.page_count.saturating_mul(PAGE_SIZE as u64) > len
            || sb.root < FIRST_DATA_PAGE
            || sb.root >= sb.page_count
        {
            return Err(Error::Corruption(format!(
                "{}: superblock generation {} names root {} of {} pages, file has {len} bytes",
                self.path.display(),
                sb.generation,
                sb.root,
                sb.page_count
            )));
        }
        Ok(sb)
    }

    /// Writes and fsyncs superblock `sb` into its slot (generation % 2).
    pub fn write_superblock(&self, sb: &Superblock) -> Result<()> {
        self.write_raw(sb.generation % 2, &sb.encode())?;
        self.sync()
    }

    /// Reads the free-list chain from `head`: the free pages and the list's own pages.
    pub fn read_free_list(&self, head: u64, page_count: u64) -> Result<(Vec<u64>, Vec<u64>)> {
        let mut free = Vec::new();
        let mut list_pages = Vec::new();
        let mut next = head;
        while next != 0 {
            if next < FIRST_DATA_PAGE || next >= page_count || list_pages.len() as u64 >= page_count
            {
                return Err(Error::Corruption(format!(
                    "{}: free-list page {next} out of range or in a cycle",
                    self.path.display()
                )));
            }
            list_pages.push(next);
            let (pages, after) =
                page::decode_free(next, &self.read_raw(next)?).map_err(|e| self.located(e))?;
            if let Some(bad) = pages
                .iter()
                .find(|&&p| p < FIRST_DATA_PAGE || p >= page_count)
            {
                return Err(Error::Corruption(format!(
                    "{}: free-list page {next} lists page {bad} of {page_count}",
                    self.path.display()
                )));
            }
            free.extend(pages);
            next = after;
        }
        Ok((free, list_pages))
    }
}
