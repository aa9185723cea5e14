//! The storage engine: an LSM tree of documents, our own.
//!
//! A write is a batch of [`Op`]s. It goes (1) into the WAL, which fsyncs before the write
//! is acknowledged or seen, concurrent writers sharing one fsync (group commit; writers
//! that can await it leave it to a flusher thread, see [`durability`]); (2) into the
//! active memtable, a skip list of versions; (3) when the memtable is over its size, it
//! is frozen and flushed by a background thread to an immutable, sorted segment file of
//! zstd-compressed, checksummed blocks (XML for documents, CSV for rows of scalars), with
//! a block index and a bloom filter; (4) the manifest, replaced atomically, then names the
//! new segment and the WAL files it covers are removed; (5) background compaction merges
//! segments (size-tiered, see [`compaction`]) and purges tombstones. A bulk load
//! ([`bulk`], a COPY into a plain table) writes sorted runs straight into new segments
//! and installs them with one manifest edit, bypassing (1) to (3).
//!
//! Reads look at the active memtable, the frozen ones, then the segments, newest first;
//! decoded blocks are kept in an LRU [`cache`]. On open, the WAL after the last flush is
//! replayed; a torn tail is cut at the last good record.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod btree;
pub mod bulk;
pub mod cache;
pub mod compaction;
pub mod cursor;
pub mod durability;
pub mod engine;
pub mod fs;
pub mod indexes;
pub mod keys;
pub mod manifest;
pub mod memtable;
pub mod merge;
pub mod recycle;
pub mod segment;
pub mod shape;
pub mod split;
pub mod visibility;
pub mod wal;

pub use engine::{MemoryUse, NearBlocks, Op, Snapshot, Storage, StorageOptions};
