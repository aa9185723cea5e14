//! One data block: encoding choice, compression, checksum, and the decoded form.

use std::cell::RefCell;
use std::sync::Arc;

use crate::doc::value::allocated;
use crate::doc::{Object, binary, csv_block, xml};
use crate::error::{Error, Result};
use crate::storage::keys;
use crate::storage::recycle;
use crate::storage::shape::Shape;

/// How a block's payload is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `<block>` of `<document>` and `<tombstone>` elements.
    Xml = 1,
    /// CSV rows under a typed header (documents of scalars with identical fields).
    Csv = 2,
}

impl Encoding {
    pub fn from_byte(b: u8) -> Result<Encoding> {
        match b {
            1 => Ok(Encoding::Xml),
            2 => Ok(Encoding::Csv),
            other => Err(Error::Corruption(format!("unknown block encoding {other}"))),
        }
    }
}

/// One entry: a storage key and its document, or `None` for a tombstone. A scan may
/// hand documents out in another shape `D` (see [`crate::storage::shape`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockEntry<D = Object> {
    pub key: Vec<u8>,
    pub doc: Option<D>,
}

/// A document of a block entry, read in place.
#[derive(Clone, Copy, Debug)]
pub enum EntryDoc<'a> {
    /// Decoded (a block decoded for one scan).
    Object(&'a Object),
    /// In binary form (a cached block), with the block's [`Layout`] if it has one.
    Record(&'a [u8], Option<&'a Arc<Layout>>),
}

/// The field names every document of a cached block has, in the same order: the
/// block's records name them each time, and a scan that knows this maps each field
/// position to its column once for the block instead of comparing names for every
/// document. A table's rows have it, and a CSV-encoded block always does (it is one of
/// the CSV codec's conditions); documents of varied fields do not.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    names: Vec<String>,
}

impl Layout {
    /// The layout every live entry of `entries` shares, if they share one (and there is
    /// a live entry).
    fn shared_by(entries: &[BlockEntry]) -> Option<Layout> {
        let mut docs = entries.iter().filter_map(|e| e.doc.as_ref());
        let first = docs.next()?;
        let same = |d: &Object| d.len() == first.len() && d.keys().eq(first.keys());
        if !docs.all(same) {
            return None;
        }
        Some(Layout {
            names: first.keys().cloned().collect(),
        })
    }

    /// The field names, in the order each document's record holds them.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn heap_size(&self) -> usize {
        allocated(self.names.capacity() * std::mem::size_of::<String>())
            + self
                .names
                .iter()
                .map(|n| allocated(n.capacity()))
                .sum::<usize>()
    }
}

/// A decoded block.
#[derive(Debug)]
pub struct Block {
    pub docs: Docs,
    /// The memory it takes, for the cache's accounting.
    pub approx_size: usize,
}

/// The documents of a decoded block.
#[derive(Debug)]
pub enum Docs {
    /// As objects: a block decoded for one scan.
    Objects(Vec<BlockEntry>),
    /// In the binary form of [`binary::encode_object`]: a block as the cache keeps it.
    /// Decoded documents take several times their encoded size (a hash table and an
    /// entry per field), and a read decodes only the fields its shape takes.
    Encoded(Packed),
}

/// Entries packed for the cache: all keys in one buffer and all documents in another,
/// so that a point read's binary search over the keys touches a few cache lines of one
/// buffer instead of an allocation per key, and a cached block is three allocations.
#[derive(Debug, Default)]
pub struct Packed {
    keys: Vec<u8>,
    docs: Vec<u8>,
    spans: Vec<Span>,
    /// How many leading bytes all keys share (the first and last key's common prefix:
    /// the keys are sorted).
    common: usize,
    /// Per entry, its key after the common prefix abbreviated to a number ordered as
    /// the keys are ([`abbreviate`]): a binary search compares numbers in one small
    /// array, and reads a key only where numbers of long keys tie.
    abbreviated: Vec<u64>,
    /// The field names all documents share, in order, if they do.
    layout: Option<Arc<Layout>>,
}

/// The key bytes after the `common` prefix its block's keys share, as a number ordered
/// as the keys are: 7 bytes big-endian (zero-padded), then how many bytes there are,
/// up to 8 ("8 or more"). Keys sharing the `common` bytes order as their numbers do where
/// these differ; equal numbers under 8 bytes long are equal keys; only equal numbers of
/// longer keys need the keys compared.
#[inline]
fn abbreviate(key: &[u8], common: usize) -> u64 {
    let rest = key.get(common..).unwrap_or_default();
    let mut held = [0u8; 8];
    for (h, b) in held.iter_mut().zip(rest.iter().take(7)) {
        *h = *b;
    }
    held[7] = rest.len().min(8) as u8;
    u64::from_be_bytes(held)
}

/// Whether an abbreviation ([`abbreviate`]) is the whole of its key's remaining bytes.
#[inline]
fn abbreviation_is_whole(abbreviated: u64) -> bool {
    abbreviated & 0xff < 8
}

/// Where entry `i`'s key and document end in [`Packed`]'s buffers (they start where
/// entry `i - 1`'s end); a tombstone's document is empty and not `live`.
#[derive(Clone, Copy, Debug)]
struct Span {
    key_end: u32,
    doc_end: u32,
    live: bool,
}

impl Packed {
    /// Packs `entries`; None if a buffer would pass 4 GiB (never for a block).
    fn pack(entries: &[BlockEntry]) -> Option<Packed> {
        let mut packed = Packed {
            keys: Vec::with_capacity(entries.iter().map(|e| e.key.len()).sum()),
            docs: Vec::new(),
            spans: Vec::with_capacity(entries.len()),
            common: 0,
            abbreviated: Vec::with_capacity(entries.len()),
            layout: Layout::shared_by(entries).map(Arc::new),
        };
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            packed.common = first
                .key
                .iter()
                .zip(&last.key)
                .take_while(|(a, b)| a == b)
                .count();
        }
        for e in entries {
            packed.abbreviated.push(abbreviate(&e.key, packed.common));
            packed.keys.extend_from_slice(&e.key);
            if let Some(d) = &e.doc {
                binary::encode_object_fields(d, &mut packed.docs);
            }
            packed.spans.push(Span {
                key_end: u32::try_from(packed.keys.len()).ok()?,
                doc_end: u32::try_from(packed.docs.len()).ok()?,
                live: e.doc.is_some(),
            });
        }
        packed.docs.shrink_to_fit();
        Some(packed)
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    /// Where entry `pos` starts in the two buffers.
    #[inline]
    fn starts(&self, pos: usize) -> (usize, usize) {
        match pos.checked_sub(1).and_then(|p| self.spans.get(p)) {
            Some(prev) => (prev.key_end as usize, prev.doc_end as usize),
            None => (0, 0),
        }
    }

    #[inline]
    fn key(&self, pos: usize) -> Option<&[u8]> {
        let span = self.spans.get(pos)?;
        let (start, _) = self.starts(pos);
        self.keys.get(start..span.key_end as usize)
    }

    /// Entry `pos`'s document bytes (None inside for a tombstone).
    #[inline]
    fn doc(&self, pos: usize) -> Option<Option<&[u8]>> {
        let span = self.spans.get(pos)?;
        if !span.live {
            return Some(None);
        }
        let (_, start) = self.starts(pos);
        Some(self.docs.get(start..span.doc_end as usize))
    }

    /// The position of `key`, or where it would go.
    fn find(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        let shared = self.keys.get(..self.common).unwrap_or_default();
        if key.get(..self.common) != Some(shared) {
            // Outside the block's range: one end or the other.
            return Err(if key < shared { 0 } else { self.len() });
        }
        let wanted = abbreviate(key, self.common);
        // A branching search (not `partition_point`'s conditional moves): the blocks a
        // point read searches are mostly not in the processor's cache, and a predicted
        // branch lets the next load start before this one arrives.
        let (mut lo, mut hi) = (0, self.abbreviated.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.abbreviated.get(mid).copied().unwrap_or_default();
            let order = match at.cmp(&wanted) {
                std::cmp::Ordering::Equal if !abbreviation_is_whole(at) => {
                    self.key(mid).unwrap_or_default().cmp(key)
                }
                order => order,
            };
            match order {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The memory held.
    fn heap_size(&self) -> usize {
        allocated(self.keys.capacity())
            + allocated(self.docs.capacity())
            + allocated(self.abbreviated.capacity() * std::mem::size_of::<u64>())
            + allocated(self.spans.capacity() * std::mem::size_of::<Span>())
            + self
                .layout
                .as_ref()
                .map_or(0, |l| std::mem::size_of::<Layout>() + l.heap_size())
    }
}

impl Block {
    /// Entries, tombstones included.
    pub fn len(&self) -> usize {
        match &self.docs {
            Docs::Objects(e) => e.len(),
            Docs::Encoded(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position of `key`, or where it would go.
    fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        match &self.docs {
            Docs::Objects(entries) => entries.binary_search_by(|e| e.key.as_slice().cmp(key)),
            Docs::Encoded(packed) => packed.find(key),
        }
    }

    /// The position of the first entry whose key is `key` or after it.
    pub fn first_at_or_after(&self, key: &[u8]) -> usize {
        self.search(key).unwrap_or_else(|at| at)
    }

    /// The position of the first entry whose key is after `key`.
    pub fn first_after(&self, key: &[u8]) -> usize {
        self.search(key).map_or_else(|at| at, |at| at + 1)
    }

    /// The key of the entry at `pos`, if there is one.
    #[inline]
    pub fn key_at(&self, pos: usize) -> Option<&[u8]> {
        match &self.docs {
            Docs::Objects(entries) => entries.get(pos).map(|e| e.key.as_slice()),
            Docs::Encoded(packed) => packed.key(pos),
        }
    }

    /// The key and the document (None for a tombstone) of the entry at `pos`, read in
    /// place, if there is one.
    #[inline]
    pub fn entry(&self, pos: usize) -> Option<(&[u8], Option<EntryDoc<'_>>)> {
        match &self.docs {
            Docs::Objects(entries) => {
                let e = entries.get(pos)?;
                Some((&e.key, e.doc.as_ref().map(EntryDoc::Object)))
            }
            Docs::Encoded(packed) => {
                let layout = packed.layout.as_ref();
                let doc = packed.doc(pos)?.map(|d| EntryDoc::Record(d, layout));
                Some((packed.key(pos)?, doc))
            }
        }
    }

    /// The entry at `pos` in `shape`, if there is one.
    pub fn shaped<S: Shape>(
        &self,
        pos: usize,
        shape: &mut S,
    ) -> Option<Result<BlockEntry<S::Doc>>> {
        Some(match &self.docs {
            Docs::Objects(entries) => {
                let e = entries.get(pos)?;
                Ok(BlockEntry {
                    key: recycle::key_from(&e.key),
                    doc: e.doc.as_ref().map(|d| shape.shape_ref(d)),
                })
            }
            Docs::Encoded(packed) => {
                let key = packed.key(pos)?;
                packed
                    .doc(pos)?
                    .map(|d| shape.shape_record(d))
                    .transpose()
                    .map(|doc| BlockEntry {
                        key: recycle::key_from(key),
                        doc,
                    })
            }
        })
    }

    /// The document for `key` in `shape` (None inside for a tombstone), if this block
    /// has an entry for it.
    pub fn find_shaped<S: Shape>(
        &self,
        key: &[u8],
        shape: &mut S,
    ) -> Option<Result<Option<S::Doc>>> {
        Some(match &self.docs {
            Docs::Objects(entries) => {
                let pos = self.search(key).ok()?;
                Ok(entries.get(pos)?.doc.as_ref().map(|d| shape.shape_ref(d)))
            }
            Docs::Encoded(packed) => {
                let pos = self.search(key).ok()?;
                packed.doc(pos)?.map(|d| shape.shape_record(d)).transpose()
            }
        })
    }

    /// The block as the cache keeps it: its documents in binary form.
    pub fn into_cached(self) -> Block {
        let packed = match &self.docs {
            Docs::Encoded(_) => return self,
            Docs::Objects(entries) => match Packed::pack(entries) {
                Some(p) => p,
                None => return self,
            },
        };
        Block {
            approx_size: std::mem::size_of::<Block>() + packed.heap_size(),
            docs: Docs::Encoded(packed),
        }
    }
}

/// The document ids of entries (all of one collection), with their documents.
fn entry_ids<D>(entries: &[BlockEntry<D>]) -> Result<Vec<(&str, Option<&D>)>> {
    entries
        .iter()
        .map(|e| {
            let (_, id) = keys::decode(&e.key)
                .ok_or_else(|| Error::Internal("malformed storage key in a block".into()))?;
            Ok((id, e.doc.as_ref()))
        })
        .collect()
}

/// Encodes entries (all of one collection, in key order) into an on-disk block.
pub fn encode(entries: &[BlockEntry], level: i32) -> Result<(Vec<u8>, Encoding, usize)> {
    let ids = entry_ids(entries)?;
    let (payload, encoding) = match csv_block::encode_block(&ids) {
        Some(csv) => (csv, Encoding::Csv),
        None => (xml::encode_block(&ids).into_bytes(), Encoding::Xml),
    };
    compress(payload, encoding, level)
}

/// A document as compaction carries it from the blocks it reads to the blocks it
/// writes.
#[derive(Clone, Debug, PartialEq)]
pub enum Stored {
    /// Decoded: from a CSV block (decoding one is cheap, and its documents may go into
    /// a CSV block again).
    Object(Object),
    /// The `<document>` element of an XML block, as written (see
    /// [`xml::split_block`]): copied into the XML block it goes to, never decoded.
    /// Decoding an XML block took 15-18 us a document (nested documents of about 600
    /// bytes), the costliest step of a compaction.
    Xml(String),
}

impl Stored {
    /// About the bytes the document takes in binary form, what flushes cut blocks by.
    pub fn approx_size(&self) -> usize {
        match self {
            Stored::Object(doc) => super::writer::approx_size(doc),
            // Each field's name is written twice in XML (open and close tags): the
            // seed's product takes 872 bytes as an element, 542 by `approx_size`.
            Stored::Xml(element) => element.len() * 5 / 8,
        }
    }
}

/// The entries of an on-disk block of collection `collection` as compaction carries
/// them: an XML block's documents as their elements, a CSV block's decoded.
pub fn stored_entries(
    raw: &[u8],
    collection: u32,
    max_size: usize,
) -> Result<Vec<BlockEntry<Stored>>> {
    let (encoding, payload) = decompress(raw, max_size)?;
    if encoding == Encoding::Xml
        && let Some(parts) = xml::split_block(&payload)?
    {
        return Ok(parts
            .into_iter()
            .map(|(id, element)| BlockEntry {
                key: keys::encode(collection, &id),
                doc: element.map(|e| Stored::Xml(e.to_string())),
            })
            .collect());
    }
    let decoded = match encoding {
        Encoding::Xml => xml::decode_block(&payload)?,
        Encoding::Csv => csv_block::decode_block(&payload)?,
    };
    Ok(decoded
        .into_iter()
        .map(|(id, doc)| BlockEntry {
            key: keys::encode(collection, &id),
            doc: doc.map(Stored::Object),
        })
        .collect())
}

/// [`encode`] for entries as compaction carries them: a block of decoded documents
/// only may be CSV; a block with an element of an XML block is XML, those elements
/// copied and the other documents written.
pub fn encode_stored(
    entries: &[BlockEntry<Stored>],
    level: i32,
) -> Result<(Vec<u8>, Encoding, usize)> {
    let ids = entry_ids(entries)?;
    let objects: Option<Vec<(&str, Option<&Object>)>> = ids
        .iter()
        .map(|(id, doc)| match doc {
            None => Some((*id, None)),
            Some(Stored::Object(o)) => Some((*id, Some(o))),
            Some(Stored::Xml(_)) => None,
        })
        .collect();
    if let Some(csv) = objects.and_then(|o| csv_block::encode_block(&o)) {
        return compress(csv, Encoding::Csv, level);
    }
    let parts: Vec<(&str, xml::BlockPart<'_>)> = ids
        .iter()
        .map(|(id, doc)| {
            let part = match doc {
                None => xml::BlockPart::Tombstone,
                Some(Stored::Object(o)) => xml::BlockPart::Document(o),
                Some(Stored::Xml(element)) => xml::BlockPart::Written(element),
            };
            (*id, part)
        })
        .collect();
    compress(
        xml::encode_block_parts(&parts).into_bytes(),
        Encoding::Xml,
        level,
    )
}

/// [`encode`] for entries whose documents are in the binary form of
/// [`binary::encode_object`] (a memtable's, a bulk load's), read in place by the CSV
/// codec or, for a block it cannot take, by the XML one.
pub fn encode_binary<'a>(
    entries: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    level: i32,
) -> Result<(Vec<u8>, Encoding, usize)> {
    let mut ids = Vec::with_capacity(entries.size_hint().0);
    for (key, doc) in entries {
        let (_, id) = keys::decode(key)
            .ok_or_else(|| Error::Internal("malformed storage key in flush".into()))?;
        ids.push((id, doc));
    }
    if let Some(csv) = csv_block::encode_block_binary(&ids) {
        return compress(csv, Encoding::Csv, level);
    }
    let xml = xml::encode_block_records(&ids)?;
    compress(xml.into_bytes(), Encoding::Xml, level)
}

thread_local! {
    /// This thread's zstd compression context and its level: a context made for every
    /// block (`zstd::bulk::compress`) was 2% of a bulk load's CPU, in its setup and in
    /// fresh pages for its tables.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

/// Compresses a block's payload and frames it: encoding byte, CRC, zstd bytes.
fn compress(
    payload: Vec<u8>,
    encoding: Encoding,
    level: i32,
) -> Result<(Vec<u8>, Encoding, usize)> {
    let compressed = COMPRESSOR
        .with(|kept| {
            let mut kept = kept.borrow_mut();
            let compressor = match &mut *kept {
                Some((l, c)) if *l == level => c,
                _ => &mut kept.insert((level, zstd::bulk::Compressor::new(level)?)).1,
            };
            compressor.compress(&payload)
        })
        .map_err(|e| Error::io("compressing a block", e))?;
    let mut out = Vec::with_capacity(compressed.len() + 5);
    out.push(encoding as u8);
    out.extend_from_slice(&crc32c::crc32c(&compressed).to_le_bytes());
    out.extend_from_slice(&compressed);
    Ok((out, encoding, payload.len()))
}

/// Checks and decompresses an on-disk block, returning its encoding and payload.
pub fn decompress(raw: &[u8], max_size: usize) -> Result<(Encoding, Vec<u8>)> {
    let (head, compressed) = raw
        .split_at_checked(5)
        .ok_or_else(|| Error::Corruption("block shorter than its header".into()))?;
    let (kind, crc) = head.split_at(1);
    let encoding = Encoding::from_byte(kind.first().copied().unwrap_or(0))?;
    let stored = u32::from_le_bytes(crc.try_into().unwrap_or_default());
    let computed = crc32c::crc32c(compressed);
    if stored != computed {
        return Err(Error::Corruption(format!(
            "block checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    thread_local! {
        // One decompression context per thread, reused: making one per block cost as
        // much as decompressing a small block.
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let payload = DCTX
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            match slot.as_mut() {
                Some(d) => d.decompress(compressed, max_size),
                None => zstd::bulk::decompress(compressed, max_size),
            }
        })
        .map_err(|e| Error::Corruption(format!("block does not decompress: {e}")))?;
    Ok((encoding, payload))
}

/// The entry for `key` in a block's decompressed payload, decoding as little as the
/// encoding allows (an XML block: that entry only).
pub fn entry_in_payload(
    encoding: Encoding,
    payload: &[u8],
    key: &[u8],
) -> Result<Option<BlockEntry>> {
    let Some((_, id)) = keys::decode(key) else {
        return Ok(None);
    };
    match encoding {
        Encoding::Xml => Ok(xml::decode_block_entry(payload, id)?.map(|doc| BlockEntry {
            key: key.to_vec(),
            doc,
        })),
        Encoding::Csv => Ok(
            csv_block::decode_block_entry(payload, id)?.map(|doc| BlockEntry {
                key: key.to_vec(),
                doc: Some(doc),
            }),
        ),
    }
}

/// A first guess of the memory a decoded block of `payload` bytes takes, before it is
/// decoded (the cache then counts [`memory_size`]).
pub fn approx_size(payload: usize) -> usize {
    payload * 2 + 64
}

/// The memory decoded entries take: what the cache counts for a decoded block. Decoded
/// documents take several times their encoded size (a hash table and an entry per
/// field), so the payload's size would let the cache grow far past its budget.
pub fn memory_size(entries: &[BlockEntry]) -> usize {
    let fixed = std::mem::size_of::<Block>() + std::mem::size_of_val(entries);
    fixed + entries.iter().map(entry_memory_size).sum::<usize>()
}

/// The memory one decoded entry holds beyond its own struct.
pub fn entry_memory_size(entry: &BlockEntry) -> usize {
    allocated(entry.key.capacity())
        + entry
            .doc
            .as_ref()
            .map_or(0, crate::doc::value::object_heap_size)
}

/// Decodes an on-disk block of collection `collection`.
pub fn decode(raw: &[u8], collection: u32, max_size: usize) -> Result<Block> {
    decode_keeping(raw, collection, max_size, None)
}

/// [`decode`] keeping only the top-level fields `keep` of each document (None: all).
pub fn decode_keeping(
    raw: &[u8],
    collection: u32,
    max_size: usize,
    keep: Option<&[String]>,
) -> Result<Block> {
    let (encoding, payload) = decompress(raw, max_size)?;
    let decoded = match encoding {
        Encoding::Xml => xml::decode_block_keeping(&payload, keep)?,
        Encoding::Csv => csv_block::decode_block_keeping(&payload, keep)?,
    };
    let entries: Vec<BlockEntry> = decoded
        .into_iter()
        .map(|(id, doc)| BlockEntry {
            key: keys::encode(collection, &id),
            doc,
        })
        .collect();
    Ok(Block {
        approx_size: memory_size(&entries),
        docs: Docs::Objects(entries),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Value;
    use crate::storage::shape::{Columns, Whole};

    fn entries() -> Vec<BlockEntry> {
        (0..200)
            .map(|i| {
                let mut doc = Object::default();
                doc.insert(
                    "brand".into(),
                    Value::String(format!("brand_{:02}", i % 50)),
                );
                doc.insert("price".into(), Value::Float(f64::from(i) / 4.0));
                doc.insert("qty".into(), Value::Int(i64::from(i)));
                BlockEntry {
                    key: keys::encode(7, &format!("{i:05}")),
                    doc: (i % 17 != 3).then_some(doc),
                }
            })
            .collect()
    }

    /// Entries with nested documents (an XML block), tombstones among them.
    fn nested_entries(from: usize) -> Vec<BlockEntry> {
        entries()
            .into_iter()
            .skip(from)
            .step_by(3)
            .map(|mut e| {
                if let Some(doc) = &mut e.doc {
                    let inner = doc.clone();
                    doc.insert("specs".into(), Value::Object(Box::new(inner)));
                }
                e
            })
            .collect()
    }

    /// Entries a CSV block takes: documents of scalars with the same fields (no
    /// tombstones).
    fn flat_entries() -> Vec<BlockEntry> {
        entries().into_iter().filter(|e| e.doc.is_some()).collect()
    }

    fn decoded(raw: &[u8], raw_len: usize) -> Vec<BlockEntry> {
        match decode(raw, 7, raw_len).unwrap().docs {
            Docs::Objects(e) => e,
            Docs::Encoded(_) => panic!("decode gives objects"),
        }
    }

    /// Compaction carries an XML block's documents as their elements and a CSV block's
    /// decoded; what it writes decodes to the same entries, a CSV block stays CSV, and
    /// elements mixed with decoded documents make an XML block.
    #[test]
    fn stored_entries_write_back_what_was_read() {
        for (entries, want) in [
            (nested_entries(0), Encoding::Xml),
            (flat_entries(), Encoding::Csv),
        ] {
            let (raw, encoding, raw_len) = encode(&entries, 3).unwrap();
            assert_eq!(encoding, want);
            let stored = stored_entries(&raw, 7, raw_len).unwrap();
            assert_eq!(stored.len(), entries.len());
            for (s, e) in stored.iter().zip(&entries) {
                assert_eq!(s.key, e.key);
                match (&s.doc, encoding) {
                    (None, _) => assert!(e.doc.is_none()),
                    (Some(Stored::Xml(element)), Encoding::Xml) => {
                        assert!(element.starts_with("<document id=\""), "{element}")
                    }
                    (Some(Stored::Object(o)), Encoding::Csv) => assert_eq!(Some(o), e.doc.as_ref()),
                    other => panic!("{other:?}"),
                }
            }
            let (raw2, encoding2, raw_len2) = encode_stored(&stored, 3).unwrap();
            assert_eq!(encoding2, encoding);
            assert_eq!(decoded(&raw2, raw_len2), entries);
        }
        // Elements of an XML block and decoded documents of a CSV block, interleaved.
        let xml = nested_entries(1);
        let (raw, _, raw_len) = encode(&xml, 3).unwrap();
        let mut mixed = stored_entries(&raw, 7, raw_len).unwrap();
        // Other keys than the XML block's: a block holds each key once.
        let flat: Vec<BlockEntry> = flat_entries()
            .into_iter()
            .filter(|e| xml.iter().all(|x| x.key != e.key))
            .step_by(2)
            .collect();
        let (raw, _, raw_len) = encode(&flat, 3).unwrap();
        mixed.extend(stored_entries(&raw, 7, raw_len).unwrap());
        mixed.sort_by(|a, b| a.key.cmp(&b.key));
        let mut want: Vec<BlockEntry> = xml.into_iter().chain(flat).collect();
        want.sort_by(|a, b| a.key.cmp(&b.key));
        assert!(want.windows(2).all(|w| w[0].key < w[1].key));
        let (raw, encoding, raw_len) = encode_stored(&mixed, 3).unwrap();
        assert_eq!(encoding, Encoding::Xml);
        assert_eq!(decoded(&raw, raw_len), want);
    }

    /// The layout a cached block's entries give: tombstones do not count; another
    /// order or another set of fields in one document leaves the block without one; a
    /// scan's columns read through it give what they give from the records alone.
    #[test]
    fn a_cached_block_has_the_layout_all_its_documents_share() {
        let cache = |entries: Vec<BlockEntry>| {
            let size = memory_size(&entries);
            Block {
                approx_size: size,
                docs: Docs::Objects(entries),
            }
            .into_cached()
        };
        let layout_of = |block: &Block| {
            (0..block.len())
                .find_map(|pos| match block.entry(pos) {
                    Some((_, Some(EntryDoc::Record(_, layout)))) => Some(layout.cloned()),
                    _ => None,
                })
                .flatten()
                .map(|l| l.names().to_vec())
        };
        let block = cache(entries());
        assert_eq!(
            layout_of(&block),
            Some(vec!["brand".into(), "price".into(), "qty".into()])
        );
        let mut columns = Columns::new(vec![Some("qty".into()), None, Some("brand".into())]);
        let mut by_names = columns.clone();
        for pos in 0..block.len() {
            if let Some((_, Some(EntryDoc::Record(bytes, Some(layout))))) = block.entry(pos) {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                columns.shape_laid_out_into(bytes, layout, &mut a).unwrap();
                by_names.shape_record_into(bytes, &mut b).unwrap();
                assert_eq!(a, b, "entry {pos}");
                assert!(!matches!(a.first(), Some(Value::Null)), "entry {pos}");
            }
        }
        // One document with its fields in another order, or one field fewer or more.
        let reorder = |e: &mut BlockEntry| {
            if let Some(doc) = &mut e.doc {
                doc.move_index(0, 2);
            }
        };
        let drop_qty = |e: &mut BlockEntry| {
            if let Some(doc) = &mut e.doc {
                doc.shift_remove("qty");
            }
        };
        let add_field = |e: &mut BlockEntry| {
            if let Some(doc) = &mut e.doc {
                doc.insert("extra".into(), Value::Null);
            }
        };
        for change in [reorder, drop_qty, add_field] {
            let mut changed = entries();
            change(&mut changed[150]);
            assert_eq!(layout_of(&cache(changed)), None);
        }
        // Tombstones only: no document, no layout.
        let tombstones: Vec<BlockEntry> = entries()
            .into_iter()
            .map(|e| BlockEntry {
                key: e.key,
                doc: None,
            })
            .collect();
        let block = cache(tombstones);
        assert!(matches!(&block.docs, Docs::Encoded(p) if p.layout.is_none()));
    }

    /// The cache keeps blocks encoded: the same entries in every shape as the decoded
    /// block, counted at what they take, a fraction of the objects' memory.
    #[test]
    fn cached_blocks_read_as_decoded_ones_in_a_fraction_of_the_memory() {
        let objects = Block {
            approx_size: memory_size(&entries()),
            docs: Docs::Objects(entries()),
        };
        let cached = Block {
            approx_size: memory_size(&entries()),
            docs: Docs::Objects(entries()),
        }
        .into_cached();
        assert!(matches!(cached.docs, Docs::Encoded(_)));
        assert_eq!(cached.len(), objects.len());
        assert!(
            cached.approx_size * 3 < objects.approx_size,
            "{} against {}",
            cached.approx_size,
            objects.approx_size
        );
        // At least the bytes of the entries' keys and values, and the objects' tables.
        let bytes: usize = entries()
            .iter()
            .map(|e| e.key.len() + e.doc.as_ref().map_or(0, |d| binary::encode_object(d).len()))
            .sum();
        assert!(cached.approx_size > bytes);
        assert!(objects.approx_size > bytes * 4);
        let mut columns = Columns::new(vec![None, Some("qty".into()), Some("brand".into())]);
        for pos in 0..=objects.len() {
            let a = objects.shaped(pos, &mut Whole).transpose().unwrap();
            let b = cached.shaped(pos, &mut Whole).transpose().unwrap();
            assert_eq!(a, b, "entry {pos}");
            let a = objects.shaped(pos, &mut columns).transpose().unwrap();
            let b = cached.shaped(pos, &mut columns).transpose().unwrap();
            assert_eq!(a, b, "entry {pos}");
        }
        let key = keys::encode(7, "00042");
        let found = cached.find_shaped(&key, &mut Whole).unwrap().unwrap();
        assert_eq!(found.unwrap().get("qty"), Some(&Value::Int(42)));
        let found = objects.find_shaped(&key, &mut columns).unwrap().unwrap();
        assert_eq!(found.unwrap()[1], Value::Int(42));
        assert!(
            cached
                .find_shaped(&keys::encode(7, "zz"), &mut Whole)
                .is_none()
        );
        // A tombstone stays one.
        let tomb = cached.find_shaped(&keys::encode(7, "00003"), &mut Whole);
        assert_eq!(tomb.unwrap().unwrap(), None);
        // Every entry is found where it is, and none between them.
        for (i, e) in entries().iter().enumerate() {
            assert_eq!(
                cached.find_shaped(&e.key, &mut Whole).unwrap().unwrap(),
                e.doc
            );
            let mut after = e.key.clone();
            after.push(0);
            assert!(cached.find_shaped(&after, &mut Whole).is_none(), "{i}");
        }
    }

    /// A packed block's search over abbreviated keys finds what a search over the whole
    /// keys finds: keys that tie on their 8 abbreviated bytes (long shared runs, zero
    /// bytes, keys that are prefixes of others), keys before, between and after them.
    #[test]
    fn abbreviated_keys_find_what_whole_keys_find() {
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for i in 0..40u8 {
            ids.push(vec![b'k', i]);
            ids.push(vec![b'k', i, 0]);
            ids.push(vec![b'k', i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            ids.push(vec![b'k', i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            ids.push([&[b'k', i][..], &[b'x'; 20], &[i]].concat());
            // Six, seven and eight bytes after the shared five: the lengths where the
            // abbreviation stops being the whole key.
            ids.push(vec![b'k', i, 1, 2, 3, 4]);
            ids.push(vec![b'k', i, 1, 2, 3, 4, 5]);
            ids.push(vec![b'k', i, 1, 2, 3, 4, 5, 0]);
            ids.push(vec![b'k', i, 1, 2, 3, 4, 5, 6]);
            ids.push(vec![b'k', i, 1, 2, 3, 4, 5, 6, 0]);
            ids.push(vec![b'k', i, 1, 2, 3, 4, 6]);
        }
        let key = |id: &[u8]| [&7u32.to_be_bytes()[..], id].concat();
        let mut entries: Vec<BlockEntry> = ids
            .iter()
            .map(|id| BlockEntry {
                key: key(id),
                doc: Some(Object::default()),
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries.dedup_by(|a, b| a.key == b.key);
        let packed = Packed::pack(&entries).unwrap();
        assert_eq!(packed.common, 5);
        let whole = |k: &[u8]| entries.binary_search_by(|e| e.key.as_slice().cmp(k));
        let mut probes: Vec<Vec<u8>> = entries.iter().map(|e| e.key.clone()).collect();
        for e in &entries {
            let mut after = e.key.clone();
            after.push(0);
            probes.push(after);
            let mut shorter = e.key.clone();
            shorter.pop();
            probes.push(shorter);
        }
        probes.extend([
            Vec::new(),
            key(b""),
            key(b"a"),
            key(b"z"),
            6u32.to_be_bytes().to_vec(),
            8u32.to_be_bytes().to_vec(),
        ]);
        for p in &probes {
            assert_eq!(packed.find(p), whole(p), "{p:?}");
        }
    }
}
