//! One data block: encoding choice, compression, checksum, and the decoded form.

use crate::doc::{Object, csv_block, xml};
use crate::error::{Error, Result};
use crate::storage::keys;

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

/// A decoded block, as kept in the cache.
#[derive(Debug)]
pub struct Block {
    pub entries: Vec<BlockEntry>,
    /// Decoded size estimate, for the cache's accounting.
    pub approx_size: usize,
}

impl Block {
    /// The entry for `key`, if this block has one.
    pub fn find(&self, key: &[u8]) -> Option<&BlockEntry> {
        self.entries
            .binary_search_by(|e| e.key.as_slice().cmp(key))
            .ok()
            .and_then(|i| self.entries.get(i))
    }
}

/// Encodes entries (all of one collection, in key order) into an on-disk block.
pub fn encode(entries: &[BlockEntry], level: i32) -> Result<(Vec<u8>, Encoding, usize)> {
    let mut ids = Vec::with_capacity(entries.len());
    for e in entries {
        let (_, id) = keys::decode(&e.key)
            .ok_or_else(|| Error::Internal("malformed storage key in flush".into()))?;
        ids.push((id, e.doc.as_ref()));
    }
    let (payload, encoding) = match csv_block::encode_block(&ids) {
        Some(csv) => (csv, Encoding::Csv),
        None => (xml::encode_block(&ids).into_bytes(), Encoding::Xml),
    };
    let compressed =
        zstd::bulk::compress(&payload, level).map_err(|e| Error::io("compressing a block", e))?;
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
    collection: u32,
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
        Encoding::Csv => Ok(csv_block::decode_block(payload)?
            .into_iter()
            .find(|(i, _)| i == id)
            .map(|(i, doc)| BlockEntry {
                key: keys::encode(collection, &i),
                doc,
            })),
    }
}

/// The cache's size estimate of a decoded block of `payload` bytes.
pub fn approx_size(payload: usize) -> usize {
    payload * 2 + 64
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
    let entries = decoded
        .into_iter()
        .map(|(id, doc)| BlockEntry {
            key: keys::encode(collection, &id),
            doc,
        })
        .collect();
    Ok(Block {
        entries,
        approx_size: approx_size(payload.len()),
    })
}
