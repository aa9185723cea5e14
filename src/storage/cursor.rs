//! A scan read in place: the newest visible version of each key in a range, one at a
//! time, its document shaped into one row the cursor keeps ([`RowCursor`]).
//!
//! A scan through [`crate::storage::Snapshot::scan_shaped`] hands each document out as an
//! owned key and row through a chain of iterators (each source, their merge, the
//! tombstone filter), decoding every entry of every source, shadowed or not. A cursor
//! merges its sources by the keys where they lie (a cached block's entries, read in
//! place; a memtable's batch), decodes only the entry that wins into the row it keeps,
//! and lends the key and the row to its reader until the next [`RowCursor::advance`]: a
//! reader that drops most rows (a filter) or only folds them (an aggregate) copies no
//! key and takes no row per document; one that keeps a row takes it
//! ([`RowCursor::take_row`]) and the cursor goes on in a recycled one.

use crate::doc::Value;
use crate::error::Result;
use crate::storage::recycle;
use crate::storage::segment::{BlockEntry, EntryDoc, SegmentCursor};
use crate::storage::shape::{Columns, Shape};

/// Entries of a memtable in key order, shaped as the memtable hands them out.
pub type MemtableSource = Box<dyn Iterator<Item = Result<BlockEntry<Vec<Value>>>> + Send>;

/// One source of a cursor.
enum Source {
    /// A memtable's entries (already shaped, their keys copied: a memtable holds the
    /// recent writes, few next to the segments'), and the one under the cursor.
    Memtable {
        entries: MemtableSource,
        head: Option<BlockEntry<Vec<Value>>>,
        done: bool,
    },
    /// A segment's entries, read in place.
    Segment(SegmentCursor),
}

impl Source {
    /// Puts the source on an entry; false once it has no more.
    #[inline]
    fn settle(&mut self, fields: Option<&[String]>) -> Result<bool> {
        match self {
            Source::Memtable {
                entries,
                head,
                done,
            } => {
                if head.is_some() {
                    return Ok(true);
                }
                if *done {
                    return Ok(false);
                }
                match entries.next() {
                    Some(Ok(entry)) => {
                        *head = Some(entry);
                        Ok(true)
                    }
                    Some(Err(e)) => {
                        *done = true;
                        Err(e)
                    }
                    None => {
                        *done = true;
                        Ok(false)
                    }
                }
            }
            Source::Segment(cursor) => cursor.settle(fields),
        }
    }

    /// The key of the entry under the source (after a `settle` that gave true).
    fn key(&self) -> Option<&[u8]> {
        match self {
            Source::Memtable { head, .. } => head.as_ref().map(|e| e.key.as_slice()),
            Source::Segment(cursor) => cursor.key(),
        }
    }

    /// Moves past the entry under the source.
    fn step(&mut self) {
        match self {
            Source::Memtable { head, .. } => {
                if let Some(entry) = head.take() {
                    recycle::give_key(entry.key);
                    if let Some(row) = entry.doc {
                        recycle::give_row(row);
                    }
                }
            }
            Source::Segment(cursor) => cursor.step(),
        }
    }
}

/// A merged, shaped scan of a key range read one document at a time (see the module
/// doc). Sources are given newest first: where several hold a key, the first one's
/// entry is the key's newest version and the others' are skipped undecoded.
pub struct RowCursor {
    sources: Vec<Source>,
    shape: Columns,
    /// The row of the document under the cursor.
    row: Vec<Value>,
    /// The source whose entry is under the cursor.
    current: Option<usize>,
    failed: bool,
}

impl RowCursor {
    /// A cursor over memtable sources (newest first), then segment sources (newest
    /// first), shaping documents in `shape`.
    pub fn new(
        memtables: Vec<MemtableSource>,
        segments: Vec<SegmentCursor>,
        shape: Columns,
    ) -> Self {
        let mut sources: Vec<Source> = memtables
            .into_iter()
            .map(|entries| Source::Memtable {
                entries,
                head: None,
                done: false,
            })
            .collect();
        sources.extend(segments.into_iter().map(Source::Segment));
        RowCursor {
            row: Vec::new(),
            sources,
            shape,
            current: None,
            failed: false,
        }
    }

    /// Moves to the next document (the first, on the first call); false at the end.
    /// An error ends the cursor.
    pub fn advance(&mut self) -> Result<bool> {
        if self.failed {
            return Ok(false);
        }
        let out = self.advance_inner();
        if out.is_err() {
            self.failed = true;
            self.current = None;
        }
        out
    }

    fn advance_inner(&mut self) -> Result<bool> {
        if let Some(at) = self.current.take()
            && let Some(source) = self.sources.get_mut(at)
        {
            source.step();
        }
        loop {
            // Sources that have ended leave: a scan whose range one segment holds
            // compares no keys.
            let fields = self.shape.fields();
            if let [only] = self.sources.as_mut_slice() {
                // One source (a table in one segment): no other to compare with.
                if !only.settle(fields)? {
                    self.sources.clear();
                }
            } else {
                let mut failed = None;
                self.sources
                    .retain_mut(|source| match source.settle(fields) {
                        Ok(live) => live,
                        Err(e) => {
                            failed.get_or_insert(e);
                            true
                        }
                    });
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            let winner = match self.sources.len() {
                0 => return Ok(false),
                1 => 0,
                _ => self.newest_smallest(),
            };
            let Some(source) = self.sources.get_mut(winner) else {
                return Ok(false);
            };
            let shaped = match source {
                Source::Memtable { head, .. } => match head.as_mut().map(|e| e.doc.take()) {
                    // The entry stays under the cursor for its key.
                    Some(Some(row)) => {
                        let old = std::mem::replace(&mut self.row, row);
                        recycle::give_row(old);
                        true
                    }
                    _ => false,
                },
                Source::Segment(cursor) => match cursor.entry() {
                    Some((_, Some(EntryDoc::Record(bytes, None)))) => {
                        self.shape.shape_record_into(bytes, &mut self.row)?;
                        true
                    }
                    Some((_, Some(EntryDoc::Record(bytes, Some(layout))))) => {
                        self.shape
                            .shape_laid_out_into(bytes, layout, &mut self.row)?;
                        true
                    }
                    Some((_, Some(EntryDoc::Object(doc)))) => {
                        self.shape.shape_ref_into(doc, &mut self.row);
                        true
                    }
                    _ => false,
                },
            };
            if !shaped {
                // A tombstone: the key is deleted.
                source.step();
                continue;
            }
            self.current = Some(winner);
            return Ok(true);
        }
    }

    /// Of several sources on an entry each, the one with the smallest key, the newest
    /// of those that hold it; the older ones holding it are moved past it (their
    /// versions are shadowed).
    fn newest_smallest(&mut self) -> usize {
        let mut best: Option<(usize, &[u8])> = None;
        for (at, source) in self.sources.iter().enumerate() {
            if let Some(key) = source.key()
                && best.is_none_or(|(_, b)| key < b)
            {
                best = Some((at, key));
            }
        }
        let Some((winner, _)) = best else {
            return 0;
        };
        for at in winner + 1..self.sources.len() {
            let shadowed = match (self.sources.get(at), self.sources.get(winner)) {
                (Some(s), Some(w)) => s.key().is_some() && s.key() == w.key(),
                _ => false,
            };
            if shadowed && let Some(s) = self.sources.get_mut(at) {
                s.step();
            }
        }
        winner
    }

    /// The key of the document under the cursor.
    pub fn key(&self) -> &[u8] {
        self.current
            .and_then(|at| self.sources.get(at))
            .and_then(Source::key)
            .unwrap_or_default()
    }

    /// The row of the document under the cursor.
    pub fn row(&self) -> &[Value] {
        &self.row
    }

    /// The row of the document under the cursor, to change in place (every value of it
    /// is written again when the cursor moves on).
    pub fn row_mut(&mut self) -> &mut [Value] {
        &mut self.row
    }

    /// The key and the row of the document under the cursor, the row to change in
    /// place.
    pub fn key_and_row(&mut self) -> (&[u8], &mut [Value]) {
        let key = self
            .current
            .and_then(|at| self.sources.get(at))
            .and_then(Source::key)
            .unwrap_or_default();
        (key, &mut self.row)
    }

    /// The row of the document under the cursor, to keep: the cursor goes on in a
    /// recycled one.
    pub fn take_row(&mut self) -> Vec<Value> {
        let fresh = recycle::take_row(self.shape.width());
        std::mem::replace(&mut self.row, fresh)
    }
}

impl Drop for RowCursor {
    fn drop(&mut self) {
        recycle::give_row(std::mem::take(&mut self.row));
    }
}
