//! Writes a segment file from entries given in key order.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::block::{self, BlockEntry, Stored};
use super::bloom::{self, Bloom};
use super::{FORMAT_VERSION, MAGIC_HEAD, MAGIC_TAIL, file_name};
use crate::doc::{Object, Value, binary};
use crate::error::{Error, Result};
use crate::storage::keys;

/// One block's line in the index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    pub first_key: Vec<u8>,
    pub last_key: Vec<u8>,
    pub offset: u64,
    pub len: u64,
    pub entries: u64,
    /// Uncompressed payload size, the bound used when decompressing.
    pub raw_len: u64,
    pub encoding: u8,
}

impl IndexEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        binary::put_bytes(out, &self.first_key);
        binary::put_bytes(out, &self.last_key);
        binary::put_varint(out, self.offset);
        binary::put_varint(out, self.len);
        binary::put_varint(out, self.entries);
        binary::put_varint(out, self.raw_len);
        out.push(self.encoding);
    }

    pub fn decode(r: &mut binary::Reader<'_>) -> Result<IndexEntry> {
        Ok(IndexEntry {
            first_key: r.bytes_prefixed()?.to_vec(),
            last_key: r.bytes_prefixed()?.to_vec(),
            offset: r.varint()?,
            len: r.varint()?,
            entries: r.varint()?,
            raw_len: r.varint()?,
            encoding: r.byte()?,
        })
    }
}

/// What a finished segment file holds.
#[derive(Clone, Debug)]
pub struct WrittenSegment {
    pub id: u64,
    pub path: PathBuf,
    pub size: u64,
    pub entries: u64,
}

/// Builds a segment file block by block. Call [`SegmentWriter::add`] in key order, then
/// [`SegmentWriter::finish`]; a writer dropped unfinished leaves a file that recovery
/// removes because no manifest names it.
pub struct SegmentWriter {
    id: u64,
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    block_size: usize,
    level: i32,
    pending: Vec<BlockEntry<Stored>>,
    /// Entries added in binary form ([`SegmentWriter::add_encoded`]); a block holds
    /// entries of one form only.
    pending_encoded: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pending_size: usize,
    index: Vec<IndexEntry>,
    hashes: Vec<u64>,
    entries: u64,
}

/// A cheap estimate of an object's encoded size, for cutting blocks.
pub fn approx_size(doc: &Object) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::Null | Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) | Value::DateTime(_) => 9,
            Value::Numeric(s) | Value::String(s) => s.len() + 2,
            Value::Binary(b) => b.len() + 2,
            Value::Array(items) => 2 + items.iter().map(value).sum::<usize>(),
            Value::Object(o) => 2 + approx_size(o),
        }
    }
    doc.iter().map(|(k, v)| k.len() + 2 + value(v)).sum()
}

impl SegmentWriter {
    pub fn create(dir: &Path, id: u64, block_size: usize, level: i32) -> Result<SegmentWriter> {
        let path = dir.join(file_name(id));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let mut out = BufWriter::with_capacity(256 << 10, file);
        let mut head = MAGIC_HEAD.to_vec();
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.write_all(&head)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(SegmentWriter {
            id,
            path,
            out,
            offset: head.len() as u64,
            block_size,
            level,
            pending: Vec::new(),
            pending_encoded: Vec::new(),
            pending_size: 0,
            index: Vec::new(),
            hashes: Vec::new(),
            entries: 0,
        })
    }

    /// Adds the next entry; keys must arrive in strictly increasing order.
    pub fn add(&mut self, key: Vec<u8>, doc: Option<Object>) -> Result<()> {
        self.add_stored(key, doc.map(Stored::Object))
    }

    /// [`SegmentWriter::add`] for a document as compaction carries it: an element of
    /// an XML block goes into this segment's XML block as it is.
    pub fn add_stored(&mut self, key: Vec<u8>, doc: Option<Stored>) -> Result<()> {
        if !self.pending_encoded.is_empty()
            || self
                .pending
                .last()
                .is_some_and(|last| keys::collection_of(&last.key) != keys::collection_of(&key))
        {
            self.finish_block()?;
        }
        self.hashes.push(bloom::hash(&key));
        self.pending_size += key.len() + doc.as_ref().map_or(0, Stored::approx_size) + 8;
        self.pending.push(BlockEntry { key, doc });
        self.entries += 1;
        if self.pending_size >= self.block_size {
            self.finish_block()?;
        }
        Ok(())
    }

    /// [`SegmentWriter::add`] for a document in the binary form of
    /// [`binary::encode_object`] (None: a tombstone), which a CSV block takes without
    /// decoding it.
    pub fn add_encoded(&mut self, key: Vec<u8>, doc: Option<Vec<u8>>) -> Result<()> {
        if !self.pending.is_empty()
            || self
                .pending_encoded
                .last()
                .is_some_and(|(last, _)| keys::collection_of(last) != keys::collection_of(&key))
        {
            self.finish_block()?;
        }
        self.hashes.push(bloom::hash(&key));
        self.pending_size += key.len() + doc.as_ref().map_or(0, Vec::len) + 8;
        self.pending_encoded.push((key, doc));
        self.entries += 1;
        if self.pending_size >= self.block_size {
            self.finish_block()?;
        }
        Ok(())
    }

    fn finish_block(&mut self) -> Result<()> {
        let (first_key, last_key, count, (bytes, encoding, raw_len)) =
            match (self.pending.first(), self.pending.last()) {
                (Some(first), Some(last)) => (
                    first.key.clone(),
                    last.key.clone(),
                    self.pending.len(),
                    block::encode_stored(&self.pending, self.level)?,
                ),
                _ => match (self.pending_encoded.first(), self.pending_encoded.last()) {
                    (Some(first), Some(last)) => (
                        first.0.clone(),
                        last.0.clone(),
                        self.pending_encoded.len(),
                        block::encode_binary(&self.pending_encoded, self.level)?,
                    ),
                    _ => return Ok(()),
                },
            };
        self.write(&bytes)?;
        self.index.push(IndexEntry {
            first_key,
            last_key,
            offset: self.offset,
            len: bytes.len() as u64,
            entries: count as u64,
            raw_len: raw_len as u64,
            encoding: encoding as u8,
        });
        self.offset += bytes.len() as u64;
        self.pending.clear();
        self.pending_encoded.clear();
        self.pending_size = 0;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }

    /// Number of entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes index, bloom filter and footer, and fsyncs the file.
    pub fn finish(mut self) -> Result<WrittenSegment> {
        self.finish_block()?;
        let mut index = Vec::new();
        binary::put_varint(&mut index, self.index.len() as u64);
        for entry in &self.index {
            entry.encode(&mut index);
        }
        let bloom = Bloom::build(&self.hashes).encode();
        let index_off = self.offset;
        self.write(&index)?;
        let bloom_off = index_off + index.len() as u64;
        self.write(&bloom)?;
        let mut footer = Vec::with_capacity(super::FOOTER_LEN);
        for v in [
            index_off,
            index.len() as u64,
            bloom_off,
            bloom.len() as u64,
            self.entries,
        ] {
            footer.extend_from_slice(&v.to_le_bytes());
        }
        footer.extend_from_slice(&crc32c::crc32c(&index).to_le_bytes());
        footer.extend_from_slice(&crc32c::crc32c(&bloom).to_le_bytes());
        footer.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        footer.extend_from_slice(MAGIC_TAIL);
        self.write(&footer)?;
        let size = bloom_off + bloom.len() as u64 + footer.len() as u64;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io("flushing a segment", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io(format!("syncing {}", self.path.display()), e))?;
        Ok(WrittenSegment {
            id: self.id,
            path: self.path,
            size,
            entries: self.entries,
        })
    }
}
