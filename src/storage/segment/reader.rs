//! Reads a segment file: footer and index at open, blocks on demand through the cache.

use std::fs::File;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{self, Block, BlockEntry, EntryDoc};
use super::bloom::{self, Bloom};
use super::writer::IndexEntry;
use super::{FOOTER_LEN, FORMAT_VERSION, MAGIC_HEAD, MAGIC_TAIL};
use crate::doc::binary::Reader;
use crate::error::{Error, Result};
use crate::storage::cache::{BlockCache, Payload};
use crate::storage::keys;
use crate::storage::segment::Stored;
use crate::storage::shape::{Shape, Whole};

/// What a run of reads of one segment carries from one read to the next
/// ([`Segment::get_shaped_near`]).
pub struct NearBlock {
    /// The decoded block the last read found, by its number in the segment: where the
    /// next read of a nearby key looks first.
    block: Option<(usize, Arc<Block>)>,
    /// The top-level fields `block` holds of each document, when a read decoded it for
    /// this run alone keeping only its shape's fields (None: whole documents). A read
    /// in a shape that needs others does not use it.
    kept: Option<Vec<String>>,
    /// Reads in a row that found their key in this segment. Past [`TRUSTED_STREAK`] the
    /// bloom filter is not asked: reads of keys that exist (rows fetched by the keys an
    /// index gave) would only hear "maybe" at the cost of a cache miss each. The first
    /// read that does not find its key asks it again.
    found_streak: u32,
    /// Whether a block a miss decodes goes into the block cache as well as here; off
    /// for a run of reads over much of a table read once (see
    /// [`crate::storage::NearBlocks::passing`]).
    pub fill_cache: bool,
}

impl Default for NearBlock {
    fn default() -> Self {
        NearBlock {
            block: None,
            kept: None,
            found_streak: 0,
            fill_cache: true,
        }
    }
}

/// Reads in a row that find their key, after which a run stops asking the bloom filter.
const TRUSTED_STREAK: u32 = 8;

/// An open segment file.
pub struct Segment {
    pub id: u64,
    pub path: PathBuf,
    file: File,
    index: Vec<IndexEntry>,
    /// Per block, the [`keys::head`]s of its first and last keys: a point read finds
    /// the blocks that can hold its key in this array, reading the keys themselves
    /// (another allocation each) only where heads tie.
    heads: Vec<(u64, u64)>,
    bloom: Bloom,
    pub size: u64,
    pub entries: u64,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("id", &self.id)
            .field("size", &self.size)
            .field("entries", &self.entries)
            .finish()
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = bytes.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = bytes.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

impl Segment {
    /// Opens and checks a segment file.
    pub fn open(path: &Path, id: u64) -> Result<Segment> {
        let corrupt = |what: String| Error::Corruption(format!("{}: {what}", path.display()));
        let file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .len();
        if size < (FOOTER_LEN + 8) as u64 {
            return Err(corrupt(format!("{size} bytes is too short for a segment")));
        }
        let mut head = [0u8; 8];
        read_at(&file, path, &mut head, 0)?;
        if &head[..4] != MAGIC_HEAD {
            return Err(corrupt("bad magic at start".into()));
        }
        let mut footer = [0u8; FOOTER_LEN];
        read_at(&file, path, &mut footer, size - FOOTER_LEN as u64)?;
        if &footer[52..60] != MAGIC_TAIL {
            return Err(corrupt("bad magic in footer".into()));
        }
        let version = u32_at(&footer, 48);
        if version != FORMAT_VERSION {
            return Err(corrupt(format!("unknown format version {version}")));
        }
        let (index_off, index_len) = (u64_at(&footer, 0), u64_at(&footer, 8));
        let (bloom_off, bloom_len) = (u64_at(&footer, 16), u64_at(&footer, 24));
        let entries = u64_at(&footer, 32);
        let body_end = size - FOOTER_LEN as u64;
        if index_off.checked_add(index_len) != Some(bloom_off)
            || bloom_off.checked_add(bloom_len) != Some(body_end)
        {
            return Err(corrupt("footer offsets do not add up".into()));
        }
        let mut index_bytes = vec![0u8; index_len as usize];
        read_at(&file, path, &mut index_bytes, index_off)?;
        let mut bloom_bytes = vec![0u8; bloom_len as usize];
        read_at(&file, path, &mut bloom_bytes, bloom_off)?;
        let (index_crc, bloom_crc) = (u32_at(&footer, 40), u32_at(&footer, 44));
        if crc32c::crc32c(&index_bytes) != index_crc {
            return Err(corrupt("index checksum mismatch".into()));
        }
        if crc32c::crc32c(&bloom_bytes) != bloom_crc {
            return Err(corrupt("bloom filter checksum mismatch".into()));
        }
        let mut r = Reader::new(&index_bytes);
        let count = r.varint()?;
        if count > index_len {
            return Err(corrupt("index block count beyond its length".into()));
        }
        let mut index = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let entry = IndexEntry::decode(&mut r)?;
            if entry.offset.saturating_add(entry.len) > index_off {
                return Err(corrupt("index points past the data".into()));
            }
            index.push(entry);
        }
        let heads = index
            .iter()
            .map(|e| (keys::head(&e.first_key), keys::head(&e.last_key)))
            .collect();
        Ok(Segment {
            id,
            path: path.to_path_buf(),
            file,
            index,
            heads,
            bloom: Bloom::decode(&bloom_bytes)?,
            size,
            entries,
        })
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Reads and decodes block `i`, through the cache when `fill_cache`.
    pub fn block(&self, i: usize, cache: &BlockCache, fill_cache: bool) -> Result<Arc<Block>> {
        if let Some(b) = cache.get(self.id, i) {
            return Ok(b);
        }
        let raw = self.read_raw_block(i)?;
        let entry = self
            .index
            .get(i)
            .ok_or_else(|| Error::Internal(format!("block {i} out of range")))?;
        let collection = keys::collection_of(&entry.first_key);
        let block = block::decode(&raw, collection, entry.raw_len as usize)
            .map_err(|e| Error::Corruption(format!("{} block {i}: {e}", self.path.display())))?;
        if !fill_cache {
            return Ok(Arc::new(block));
        }
        let block = Arc::new(block.into_cached());
        cache.insert(self.id, i, block.clone());
        Ok(block)
    }

    /// Block `i` for a scan keeping only `fields`: the cached block if there is one;
    /// else decoded whole and cached while the cache has room and `fill_cache` is on;
    /// else decoded for those fields only, and not cached.
    pub fn block_keeping(
        &self,
        i: usize,
        cache: &BlockCache,
        fill_cache: bool,
        fields: &[String],
    ) -> Result<Arc<Block>> {
        if let Some(b) = cache.get(self.id, i) {
            return Ok(b);
        }
        let entry = self
            .index
            .get(i)
            .ok_or_else(|| Error::Internal(format!("block {i} out of range")))?;
        if fill_cache && cache.has_room(block::approx_size(entry.raw_len as usize)) {
            return self.block(i, cache, true);
        }
        let raw = self.read_raw_block(i)?;
        let collection = keys::collection_of(&entry.first_key);
        let block = block::decode_keeping(&raw, collection, entry.raw_len as usize, Some(fields))
            .map_err(|e| {
            Error::Corruption(format!("{} block {i}: {e}", self.path.display()))
        })?;
        Ok(Arc::new(block))
    }

    /// Whether block `i` starts at or before `key` (whose [`keys::head`] is `key_head`):
    /// decided by the heads, or by the keys where they tie. False past the last block.
    #[inline]
    fn first_key_at_or_before(&self, i: usize, key: &[u8], key_head: u64) -> bool {
        match (self.heads.get(i), self.index.get(i)) {
            (Some(h), Some(e)) => keys::compare_headed(&e.first_key, h.0, key, key_head).is_le(),
            _ => false,
        }
    }

    /// Whether block `i` ends at or after `key` (whose [`keys::head`] is `key_head`).
    /// False past the last block.
    #[inline]
    fn last_key_at_or_after(&self, i: usize, key: &[u8], key_head: u64) -> bool {
        match (self.heads.get(i), self.index.get(i)) {
            (Some(h), Some(e)) => keys::compare_headed(key, key_head, &e.last_key, h.1).is_le(),
            _ => false,
        }
    }

    /// Whether `key` lies within block `i`'s first and last keys.
    #[inline]
    fn block_spans(&self, i: usize, key: &[u8], key_head: u64) -> bool {
        self.first_key_at_or_before(i, key, key_head) && self.last_key_at_or_after(i, key, key_head)
    }

    /// The first block whose last key is at or after `key`: the one block that can hold
    /// it (if that block's first key is not after it), found in the heads.
    fn block_for(&self, key: &[u8], key_head: u64) -> usize {
        let (mut lo, mut hi) = (0, self.heads.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.last_key_at_or_after(mid, key, key_head) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// Looks `key` up: `None` if this segment does not have it, an entry without a
    /// document for a tombstone, else the entry and its document.
    pub fn get(&self, key: &[u8], hash: u64, cache: &BlockCache) -> Result<Option<BlockEntry>> {
        Ok(self
            .get_shaped(key, hash, cache, &mut Whole)?
            .map(|doc| BlockEntry {
                key: key.to_vec(),
                doc,
            }))
    }

    /// [`Segment::get`] handing the document out in `shape` (a cached document is
    /// copied only as far as the shape takes it): `None` if this segment does not
    /// have `key`, `Some(None)` for a tombstone, `Some(Some(doc))` for a document.
    pub fn get_shaped<S: Shape>(
        &self,
        key: &[u8],
        hash: u64,
        cache: &BlockCache,
        shape: &mut S,
    ) -> Result<Option<Option<S::Doc>>> {
        self.get_shaped_near(key, hash, cache, shape, &mut NearBlock::default())
    }

    /// [`Segment::get_shaped`] that first looks in `near`, the decoded block an
    /// earlier read of this segment found (block number and block), and leaves there
    /// the decoded block this read found: reads of nearby keys skip the bloom filter,
    /// the block index and the cache. A key outside the segment's range is refused
    /// before the filter; a run of reads that keeps finding its keys here stops asking
    /// the filter (see [`NearBlock`]).
    pub fn get_shaped_near<S: Shape>(
        &self,
        key: &[u8],
        hash: u64,
        cache: &BlockCache,
        shape: &mut S,
        near: &mut NearBlock,
    ) -> Result<Option<Option<S::Doc>>> {
        let ask_bloom = near.found_streak < TRUSTED_STREAK;
        let found = self.get_shaped_in(key, hash, cache, shape, near, ask_bloom)?;
        near.found_streak = match found {
            Some(_) => near.found_streak.saturating_add(1),
            None => 0,
        };
        Ok(found)
    }

    /// [`Segment::get_shaped_near`] asking the bloom filter or not.
    fn get_shaped_in<S: Shape>(
        &self,
        key: &[u8],
        hash: u64,
        cache: &BlockCache,
        shape: &mut S,
        near: &mut NearBlock,
        ask_bloom: bool,
    ) -> Result<Option<Option<S::Doc>>> {
        let fill_cache = near.fill_cache;
        // An entry decoded for this read alone is shaped without another copy.
        let owned = |shape: &mut S, e: BlockEntry| e.doc.map(|d| shape.shape_owned(d));
        // The block an earlier read found, when its keys span this one, is the only
        // place in this segment the key can be: looked in before the bloom filter, whose
        // probe is a cache miss for each key of a run of nearby reads.
        let key_head = keys::head(key);
        if let Some((i, b)) = near.block.as_ref()
            && self.block_spans(*i, key, key_head)
            && near
                .kept
                .as_deref()
                .is_none_or(|kept| shape.fields() == Some(kept))
        {
            return b.find_shaped(key, shape).transpose();
        }
        // Outside the segment's keys (another collection's segment, or another part of
        // a table loaded in parts): not here, without the bloom filter's cache miss.
        let inside = self.first_key_at_or_before(0, key, key_head)
            && self.last_key_at_or_after(self.heads.len().saturating_sub(1), key, key_head);
        if !inside || (ask_bloom && !self.bloom.may_contain(hash)) {
            return Ok(None);
        }
        let i = self.block_for(key, key_head);
        let entry = match self.index.get(i) {
            Some(e) if self.first_key_at_or_before(i, key, key_head) => e,
            _ => return Ok(None),
        };
        // An entry decoded alone is kept, so a hot document is parsed once (not by a run
        // of reads that passes the cache).
        let in_payload = |p: &Payload| {
            let found = block::entry_in_payload(p.encoding, &p.bytes, key).map_err(|e| {
                Error::Corruption(format!("{} block {i}: {e}", self.path.display()))
            })?;
            if fill_cache && let Some(e) = &found {
                let size = std::mem::size_of::<BlockEntry>() + block::entry_memory_size(e);
                cache.insert_entry(self.id, Arc::new(e.clone()), size);
            }
            Ok(found)
        };
        let cached = cache.get_any(self.id, i);
        if let Some(Ok(b)) = &cached {
            let found = b.find_shaped(key, shape).transpose();
            near.block = Some((i, b.clone()));
            near.kept = None;
            return found;
        }
        if let Some(e) = cache.get_entry(self.id, key) {
            return Ok(Some(e.doc.as_ref().map(|d| shape.shape_ref(d))));
        }
        if let Some(Err(p)) = cached {
            return Ok(in_payload(&p)?.map(|e| owned(shape, e)));
        }
        if !shape.decodes_blocks() {
            // Searched for the one key and not kept: the key is most often not here.
            let raw = self.read_raw_block(i)?;
            let found = block::decompress(&raw, entry.raw_len as usize)
                .and_then(|(encoding, bytes)| block::entry_in_payload(encoding, &bytes, key))
                .map_err(|e| {
                    Error::Corruption(format!("{} block {i}: {e}", self.path.display()))
                })?;
            return Ok(found.map(|e| owned(shape, e)));
        }
        // A miss in a run of reads that leaves the cache as it is: the block is decoded
        // for this read and the next ones near it, keeping only the fields the shape
        // reads, and kept only in `near`.
        if !fill_cache {
            let (b, kept) = match shape.fields() {
                Some(fields) => (
                    self.block_keeping(i, cache, false, fields)?,
                    Some(fields.to_vec()),
                ),
                None => (self.block(i, cache, false)?, None),
            };
            let found = b.find_shaped(key, shape).transpose();
            near.block = Some((i, b));
            near.kept = kept;
            return found;
        }
        // A miss: the whole block is decoded and cached while the cache has room; once
        // it is full, its payload is cached and only the entry asked for is decoded, so
        // that random reads over more data than the cache holds neither decode a whole
        // block each nor evict decoded blocks at that rate.
        if cache.has_room(block::approx_size(entry.raw_len as usize)) {
            let b = self.block(i, cache, true)?;
            let found = b.find_shaped(key, shape).transpose();
            near.block = Some((i, b));
            near.kept = None;
            return found;
        }
        let raw = self.read_raw_block(i)?;
        let (encoding, bytes) = block::decompress(&raw, entry.raw_len as usize)
            .map_err(|e| Error::Corruption(format!("{} block {i}: {e}", self.path.display())))?;
        let payload = Arc::new(Payload { encoding, bytes });
        cache.insert_payload(self.id, i, payload.clone());
        Ok(in_payload(&payload)?.map(|e| owned(shape, e)))
    }

    /// The hash used by [`Segment::get`] for a key.
    pub fn hash_key(key: &[u8]) -> u64 {
        bloom::hash(key)
    }

    /// Smallest and largest key held, if any.
    pub fn key_range(&self) -> Option<(&[u8], &[u8])> {
        Some((
            self.index.first()?.first_key.as_slice(),
            self.index.last()?.last_key.as_slice(),
        ))
    }

    /// Bytes on disk of the blocks holding keys in `[start, end)` (whole blocks: a
    /// block shared with a neighbouring range counts for both).
    pub fn range_bytes(&self, start: &[u8], end: Option<&[u8]>) -> u64 {
        let first = self
            .index
            .partition_point(|e| e.last_key.as_slice() < start);
        self.blocks_from(first, end).map(|e| e.len).sum()
    }

    /// The first key and entry count of each block whose first key is in
    /// `[start, end)`.
    pub fn block_starts<'a>(
        &'a self,
        start: &[u8],
        end: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], u64)> + 'a {
        let first = self
            .index
            .partition_point(|e| e.first_key.as_slice() < start);
        self.blocks_from(first, Some(end))
            .map(|e| (e.first_key.as_slice(), e.entries))
    }

    /// A key at most about `n` entries before `end`, where a backward scan's next part
    /// may begin: inside the block holding this segment's last key before `end` (read
    /// through `cache`) when that block holds more than `n` entries before `end`, else
    /// that block's first key. None if every block starts at or after `end`.
    pub fn key_back(&self, end: &[u8], n: usize, cache: &BlockCache) -> Result<Option<Vec<u8>>> {
        let after = self.index.partition_point(|e| e.first_key.as_slice() < end);
        let Some(entry) = after.checked_sub(1).and_then(|i| self.index.get(i)) else {
            return Ok(None);
        };
        if entry.entries <= n as u64 {
            return Ok(Some(entry.first_key.clone()));
        }
        let block = self.block(after - 1, cache, true)?;
        let before_end = block.first_at_or_after(end);
        let inside = before_end.checked_sub(n).and_then(|at| block.key_at(at));
        Ok(Some(inside.unwrap_or(&entry.first_key).to_vec()))
    }

    /// The index entries from block `first` on, up to the first block starting at or
    /// after `end` (None: to the last).
    fn blocks_from<'a>(
        &'a self,
        first: usize,
        end: Option<&'a [u8]>,
    ) -> impl Iterator<Item = &'a IndexEntry> + 'a {
        self.index
            .get(first..)
            .unwrap_or(&[])
            .iter()
            .take_while(move |e| end.is_none_or(|end| e.first_key.as_slice() < end))
    }

    /// Index of the first block that may hold keys at or after `start`.
    fn first_block(&self, start: &Bound<Vec<u8>>) -> usize {
        match start {
            Bound::Unbounded => 0,
            Bound::Included(k) | Bound::Excluded(k) => self
                .index
                .partition_point(|e| e.last_key.as_slice() < k.as_slice()),
        }
    }
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset)
        .map_err(|e| Error::io(format!("reading {} at {offset}", path.display()), e))
}

/// A segment's entries in `[start, end)` order, one at a time, read in place: the
/// entry under the cursor is borrowed from its block ([`SegmentCursor::entry`]), so a
/// reader that merges several sources compares keys without copying them and decodes
/// only the entries it keeps.
pub struct SegmentCursor {
    segment: Arc<Segment>,
    cache: Arc<BlockCache>,
    fill_cache: bool,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    next_block: usize,
    /// The block being read, the position of its next entry, and the position where
    /// its entries pass `end` (its length when they do not): found by a search when the
    /// block is read, so that no entry outside the bounds is shaped and no entry's key
    /// is compared with them.
    current: Option<(Arc<Block>, usize, usize)>,
    done: bool,
}

impl SegmentCursor {
    pub fn new(
        segment: Arc<Segment>,
        cache: Arc<BlockCache>,
        fill_cache: bool,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> Self {
        let next_block = segment.first_block(&start);
        SegmentCursor {
            segment,
            cache,
            fill_cache,
            start,
            end,
            next_block,
            current: None,
            done: false,
        }
    }

    fn past_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Unbounded => false,
            Bound::Included(e) => key > e.as_slice(),
            Bound::Excluded(e) => key >= e.as_slice(),
        }
    }

    fn before_start(&self, key: &[u8]) -> bool {
        match &self.start {
            Bound::Unbounded => false,
            Bound::Included(s) => key < s.as_slice(),
            Bound::Excluded(s) => key <= s.as_slice(),
        }
    }

    /// Puts the cursor on an entry, reading the next block when the one it was on is
    /// done (decoding only `fields` of a block neither cached nor to be cached; None:
    /// all); false once the entries are past `end` or the segment's last. An error
    /// ends the cursor.
    #[inline]
    pub fn settle(&mut self, fields: Option<&[String]>) -> Result<bool> {
        if let Some((_, pos, stop)) = &self.current
            && pos < stop
        {
            return Ok(true);
        }
        self.settle_on_next_block(fields)
    }

    /// [`SegmentCursor::settle`] when the block under the cursor is done (or none is).
    fn settle_on_next_block(&mut self, fields: Option<&[String]>) -> Result<bool> {
        loop {
            if self.done {
                return Ok(false);
            }
            if let Some((block, pos, stop)) = &self.current {
                if pos < stop {
                    return Ok(true);
                }
                if *stop < block.len() {
                    // The block's entries passed `end`.
                    self.done = true;
                    return Ok(false);
                }
                self.current = None;
            }
            let Some(index) = self.segment.index.get(self.next_block) else {
                self.done = true;
                return Ok(false);
            };
            if self.past_end(&index.first_key) {
                self.done = true;
                return Ok(false);
            }
            let (check_start, check_end) = (
                self.before_start(&index.first_key),
                self.past_end(&index.last_key),
            );
            let block = match fields {
                None => self
                    .segment
                    .block(self.next_block, &self.cache, self.fill_cache),
                Some(f) => {
                    self.segment
                        .block_keeping(self.next_block, &self.cache, self.fill_cache, f)
                }
            };
            let block = match block {
                Ok(block) => block,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            let first = match &self.start {
                Bound::Included(s) if check_start => block.first_at_or_after(s),
                Bound::Excluded(s) if check_start => block.first_after(s),
                _ => 0,
            };
            let stop = match &self.end {
                Bound::Included(e) if check_end => block.first_after(e),
                Bound::Excluded(e) if check_end => block.first_at_or_after(e),
                _ => block.len(),
            };
            self.current = Some((block, first, stop));
            self.next_block += 1;
        }
    }

    /// The block and position of the entry under the cursor (after a [`settle`] that
    /// gave true).
    ///
    /// [`settle`]: SegmentCursor::settle
    #[inline]
    pub fn at(&self) -> Option<(&Block, usize)> {
        match &self.current {
            Some((block, pos, stop)) if pos < stop => Some((block, *pos)),
            _ => None,
        }
    }

    /// The key and document (None for a tombstone) of the entry under the cursor.
    #[inline]
    pub fn entry(&self) -> Option<(&[u8], Option<EntryDoc<'_>>)> {
        let (block, pos) = self.at()?;
        block.entry(pos)
    }

    /// The key of the entry under the cursor.
    #[inline]
    pub fn key(&self) -> Option<&[u8]> {
        let (block, pos) = self.at()?;
        block.key_at(pos)
    }

    /// Moves past the entry under the cursor (the next [`settle`] finds the one after).
    ///
    /// [`settle`]: SegmentCursor::settle
    #[inline]
    pub fn step(&mut self) {
        if let Some((_, pos, _)) = &mut self.current {
            *pos += 1;
        }
    }
}

/// Iterates a segment's entries in `[start, end)` order, block by block, handing the
/// documents out in shape `S`.
pub struct SegmentIter<S: Shape = Whole> {
    cursor: SegmentCursor,
    shape: S,
}

impl SegmentIter<Whole> {
    pub fn new(
        segment: Arc<Segment>,
        cache: Arc<BlockCache>,
        fill_cache: bool,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> Self {
        SegmentIter::with_shape(segment, cache, fill_cache, start, end, Whole)
    }
}

impl<S: Shape> SegmentIter<S> {
    /// [`SegmentIter::new`] handing documents out in `shape`. Blocks not in the cache
    /// are then decoded for the shape's fields only once the cache is full.
    pub fn with_shape(
        segment: Arc<Segment>,
        cache: Arc<BlockCache>,
        fill_cache: bool,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        shape: S,
    ) -> Self {
        SegmentIter {
            cursor: SegmentCursor::new(segment, cache, fill_cache, start, end),
            shape,
        }
    }
}

impl<S: Shape> Iterator for SegmentIter<S> {
    type Item = Result<BlockEntry<S::Doc>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.cursor.settle(self.shape.fields()) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(e)),
        }
        let (block, pos) = self.cursor.at()?;
        let entry = block.shaped(pos, &mut self.shape);
        self.cursor.step();
        if let Some(Err(_)) = &entry {
            self.cursor.done = true;
        }
        entry
    }
}

/// A whole segment's entries in key order as compaction carries them ([`Stored`]: the
/// elements of XML blocks as written), each block read from the file: the cache holds
/// blocks for reads, and a compaction would only churn it.
pub struct StoredIter {
    segment: Arc<Segment>,
    next_block: usize,
    current: std::vec::IntoIter<BlockEntry<Stored>>,
    failed: bool,
}

impl StoredIter {
    pub fn new(segment: Arc<Segment>) -> StoredIter {
        StoredIter {
            segment,
            next_block: 0,
            current: Vec::new().into_iter(),
            failed: false,
        }
    }

    fn read_block(&self, i: usize) -> Result<Vec<BlockEntry<Stored>>> {
        let entry = self
            .segment
            .index
            .get(i)
            .ok_or_else(|| Error::Internal(format!("block {i} out of range")))?;
        let collection = keys::collection_of(&entry.first_key);
        let raw = self.segment.read_raw_block(i)?;
        block::stored_entries(&raw, collection, entry.raw_len as usize).map_err(|e| {
            Error::Corruption(format!("{} block {i}: {e}", self.segment.path.display()))
        })
    }
}

impl Iterator for StoredIter {
    type Item = Result<BlockEntry<Stored>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.next() {
                return Some(Ok(entry));
            }
            if self.failed || self.next_block >= self.segment.block_count() {
                return None;
            }
            let i = self.next_block;
            self.next_block += 1;
            match self.read_block(i) {
                Ok(entries) => self.current = entries.into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Segment {
    /// The encoding of each block, in order (for tests and statistics).
    pub fn block_encodings(&self) -> Vec<super::Encoding> {
        self.index
            .iter()
            .filter_map(|e| super::Encoding::from_byte(e.encoding).ok())
            .collect()
    }
}

impl Segment {
    /// The on-disk bytes of block `i` (checksummed, compressed), for benchmarks and tools.
    pub fn read_raw_block(&self, i: usize) -> Result<Vec<u8>> {
        let entry = self
            .index
            .get(i)
            .ok_or_else(|| Error::Internal(format!("block {i} out of range")))?;
        let mut raw = vec![0u8; entry.len as usize];
        read_at(&self.file, &self.path, &mut raw, entry.offset)?;
        Ok(raw)
    }

    /// Sum of the blocks' uncompressed payload sizes.
    pub fn payload_bytes(&self) -> u64 {
        self.index.iter().map(|e| e.raw_len).sum()
    }
}
