//! Persistent B+trees in their own files, mapping byte keys to byte values: the pages of
//! secondary indexes (keys from [`crate::doc::keycode::encode_index_entry`]).
//!
//! ```text
//! file:   [superblock 0][superblock 1][page 2][page 3] ...   (4 KiB pages)
//! tree:   branch pages (separator keys, child page numbers) above leaf pages (sorted
//!         key/value entries, slotted); every page checksummed with its own number
//! ```
//!
//! Crash safety is by **copy-on-write** (shadow paging), not by a redo log: a change never
//! overwrites a page of the committed tree, it writes new pages; [`BTree::commit`] writes
//! them, fsyncs, then switches one of two alternating superblock slots (generation number,
//! checksum) and fsyncs again. So the file always holds a complete, consistent tree — the
//! one named by the newest valid superblock — and opening it needs no recovery pass. Pages
//! the new tree replaced are freed only once its superblock is durable, through a free
//! list kept in the file. We chose this over WAL-redo because the index's own WAL records
//! (the data's WAL, see issue 4) can then replay onto a tree that is known consistent at a
//! known generation, and because a torn page can only ever be an uncommitted one.
//!
//! Changes are held in memory until `commit` (one batch, one superblock switch), and a
//! crash or drop before it leaves the previous commit. Reads go through a [`PageCache`]
//! of decoded pages bounded in bytes, as the storage block cache is; the index files of
//! one store share one such cache ([`SharedPages`]).
//!
//! 1. [`page`]: page layout, checksums, encoding of nodes and free-list pages; [`leaf`]:
//!    a leaf's entries packed in one buffer, as decoded nodes hold them.
//! 2. [`file`]: page I/O, superblocks, the persisted free list, the page cache.
//! 3. [`tree`]: search, insert (splits), delete (merges), commit, rollback, check.
//! 4. [`iter`]: ascending and descending range iteration.

pub mod file;
pub mod iter;
pub mod leaf;
pub mod page;
pub mod tree;

#[cfg(test)]
mod tests;

pub use file::{PageCache, SharedPages};
pub use iter::Range;
pub use page::{MAX_KEY_LEN, MAX_VALUE_LEN, PAGE_SIZE};
pub use tree::{BTree, BatchOp, Stats};
