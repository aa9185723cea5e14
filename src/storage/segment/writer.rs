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
    pending_encoded: PackedEntries,
    pending_size: usize,
    index: Vec<IndexEntry>,
    hashes: Vec<u64>,
    entries: u64,
}

/// Entries in binary form, packed into one buffer (a block's worth, reused block after
/// block): a key and a document allocated for each entry were a tenth of a bulk load's
/// segment writing.
#[derive(Default)]
struct PackedEntries {
    bytes: Vec<u8>,
    /// Each entry's key end and, unless it is a tombstone, document end in `bytes`; it
    /// starts where the entry before it ends.
    ends: Vec<(usize, Option<usize>)>,
}

impl PackedEntries {
    fn push(&mut self, key: &[u8], doc: Option<&[u8]>) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        let doc_end = doc.map(|d| {
            self.bytes.extend_from_slice(d);
            self.bytes.len()
        });
        self.ends.push((key_end, doc_end));
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Each entry's key and document (None: a tombstone).
    fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, doc_end)| {
            let key = self.bytes.get(start..key_end).unwrap_or_default();
            start = doc_end.unwrap_or(key_end);
            let doc = doc_end.map(|end| self.bytes.get(key_end..end).unwrap_or_default());
            (key, doc)
        })
    }

    fn first_key(&self) -> Option<&[u8]> {
        self.iter().next().map(|(key, _)| key)
    }

    fn last_key(&self) -> Option<&[u8]> {
        let (i, &(key_end, _)) = self.ends.iter().enumerate().next_back()?;
        let start = match i.checked_sub(1).and_then(|p| self.ends.get(p)) {
            Some(&(key_end, doc_end)) => doc_end.unwrap_or(key_end),
            None => 0,
        };
        self.bytes.get(start..key_end)
    }
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
            pending_encoded: PackedEntries::default(),
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
    pub fn add_encoded(&mut self, key: &[u8], doc: Option<&[u8]>) -> Result<()> {
        if !self.pending.is_empty()
            || self
                .pending_encoded
                .last_key()
                .is_some_and(|last| keys::collection_of(last) != keys::collection_of(key))
        {
            self.finish_block()?;
        }
        self.hashes.push(bloom::hash(key));
        self.pending_size += key.len() + doc.map_or(0, <[u8]>::len) + 8;
        self.pending_encoded.push(key, doc);
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
                _ => match (
                    self.pending_encoded.first_key(),
                    self.pending_encoded.last_key(),
                ) {
                    (Some(first), Some(last)) => (
                        first.to_vec(),
                        last.to_vec(),
                        self.pending_encoded.len(),
                        block::encode_binary(self.pending_encoded.iter(), self.level)?,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::segment::{Segment, StoredIter};

    fn doc(n: i64) -> Vec<u8> {
        let mut o = Object::default();
        o.insert("n".into(), Value::Int(n));
        binary::encode_object(&o)
    }

    /// Entries added in binary form, tombstones among them, across a change of
    /// collection and several blocks, read back as they were added.
    #[test]
    fn encoded_entries_with_tombstones_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut added: Vec<(Vec<u8>, Option<i64>)> = Vec::new();
        for collection in [3u32, 4] {
            for i in 0..300i64 {
                let key = keys::encode(collection, &format!("k{i:04}"));
                let value = (i % 7 != 3).then_some(i);
                added.push((key, value));
            }
        }
        let mut w = SegmentWriter::create(dir.path(), 1, 1024, 3).unwrap();
        for (key, value) in &added {
            let encoded = value.map(doc);
            w.add_encoded(key, encoded.as_deref()).unwrap();
        }
        let written = w.finish().unwrap();
        assert_eq!(written.entries, added.len() as u64);
        let segment = Arc::new(Segment::open(&written.path, written.id).unwrap());
        assert!(segment.block_count() > 4);
        let read: Vec<(Vec<u8>, Option<i64>)> = StoredIter::new(segment)
            .map(|e| {
                let e = e.unwrap();
                let n = e.doc.map(|d| match d {
                    Stored::Object(o) => match o.get("n") {
                        Some(Value::Int(n)) => *n,
                        other => panic!("unexpected field {other:?}"),
                    },
                    // A block holding tombstones is an XML block.
                    Stored::Xml(element) => element
                        .split_once("<n>")
                        .and_then(|(_, rest)| rest.split_once("</n>"))
                        .and_then(|(n, _)| n.parse().ok())
                        .unwrap_or_else(|| panic!("unexpected element {element}")),
                });
                (e.key, n)
            })
            .collect();
        assert_eq!(read, added);
    }

    /// Point reads at a segment's first and last keys, between its blocks and outside
    /// its range (other collections, keys before and after), with and without the block
    /// an earlier read found: each key present is found, each other one is not.
    #[test]
    fn point_reads_find_every_key_and_no_other_at_the_edges() {
        use crate::storage::cache::BlockCache;
        use crate::storage::shape::Whole;
        let dir = tempfile::tempdir().unwrap();
        let key = |c: u32, i: i64| keys::encode(c, &format!("k{i:04}"));
        let mut w = SegmentWriter::create(dir.path(), 1, 512, 3).unwrap();
        // Even numbers 10..=500 of collection 5: odd ones fall inside blocks or between.
        for i in (10..=500i64).step_by(2) {
            w.add_encoded(&key(5, i), Some(&doc(i))).unwrap();
        }
        let written = w.finish().unwrap();
        let segment = Segment::open(&written.path, written.id).unwrap();
        assert!(segment.block_count() > 4);
        let cache = BlockCache::new(1 << 20);
        let read = |k: &[u8], near: &mut crate::storage::segment::NearBlock| {
            let hash = crate::storage::memtable::hash_key(k);
            segment
                .get_shaped_near(k, hash, &cache, &mut Whole, near)
                .unwrap()
                .map(|d| match d.as_ref().and_then(|o| o.get("n")) {
                    Some(Value::Int(n)) => *n,
                    other => panic!("unexpected {other:?}"),
                })
        };
        let mut asked = vec![key(4, 10), key(6, 10), key(5, 0), key(5, 9), key(5, 501)];
        asked.extend((9..=501).map(|i| key(5, i)));
        asked.push(keys::encode(5, ""));
        asked.push(keys::collection_start(5));
        use crate::storage::segment::NearBlock;
        for near_kept in [false, true] {
            let mut near = NearBlock::default();
            for k in &asked {
                if !near_kept {
                    near = NearBlock::default();
                }
                let (c, id) = keys::decode(k).unwrap();
                let n: Option<i64> = id.strip_prefix('k').and_then(|n| n.parse().ok());
                let expected = n.filter(|n| c == 5 && *n % 2 == 0 && (10..=500).contains(n));
                assert_eq!(read(k, &mut near), expected, "{c} {id}");
            }
        }
        // A run of reads that all find their key stops asking the bloom filter; a key
        // that is not here still reads as absent, in a block read before or another.
        let mut near = NearBlock::default();
        for round in 0..3 {
            for i in (10..=400i64).step_by(2) {
                assert_eq!(read(&key(5, i), &mut near), Some(i), "{i}");
            }
            let absent = [key(5, 401), key(5, 11), key(5, 499), key(5, 9), key(6, 0)];
            let k = absent.get(round).unwrap();
            assert_eq!(read(k, &mut near), None, "round {round}");
            assert_eq!(read(&key(5, 402), &mut near), Some(402));
        }
    }
}
