//! Segment files: immutable, sorted runs of documents written by a flush or a compaction.
//!
//! ```text
//! "TSEG" version u32 | block* | index | bloom | footer (60 bytes)
//! block  = encoding u8 (1 XML, 2 CSV) | crc32c(compressed) u32 | zstd(payload)
//! index  = per block: first key, last key, offset, length, entry count, encoding
//! footer = index off/len, bloom off/len, entries, index crc, bloom crc, version, magic
//! ```
//!
//! A block holds the entries of one collection in key order; its payload is an XML
//! `<block>` of `<document>`s and `<tombstone>`s, or CSV rows under a typed header when
//! every entry is a document of scalars with the same fields.

pub mod block;
pub mod bloom;
pub mod reader;
pub mod writer;

pub use block::{Block, BlockEntry, Docs, Encoding, EntryDoc, Layout, Stored};
pub use reader::{NearBlock, Segment, SegmentCursor, SegmentIter, StoredIter};
pub use writer::{SegmentWriter, WrittenSegment};

/// First bytes of every segment file.
pub const MAGIC_HEAD: &[u8; 4] = b"TSEG";
/// Last bytes of every segment file.
pub const MAGIC_TAIL: &[u8; 8] = b"TISSSEG1";
/// Format version written in head and footer.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the fixed footer.
pub const FOOTER_LEN: usize = 60;

/// The file name of segment `id`.
pub fn file_name(id: u64) -> String {
    format!("{id:012}.seg")
}

/// Parses a segment file name back to its id.
pub fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".seg")?.parse().ok()
}
