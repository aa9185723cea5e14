//! `ReadView`: what statements read through — a storage snapshot, and inside a
//! transaction its pending writes laid over it, with every read remembered for
//! validation at commit.

use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Conflicts, TxnData, fingerprint, serialization_failure};
use crate::doc::Object;
use crate::error::Result;
use crate::storage::cursor::RowCursor;
use crate::storage::shape::{Columns, Shape, Whole};
use crate::storage::{NearBlocks, Snapshot, keys};

/// A stream of (key, document) pairs in key order.
pub type KeyedDocuments<D = Object> = Box<dyn Iterator<Item = Result<(Vec<u8>, D)>> + Send>;

/// See the module doc.
#[derive(Clone)]
pub struct ReadView {
    snapshot: Snapshot,
    txn: Option<Arc<Mutex<TxnData>>>,
}

impl ReadView {
    pub(crate) fn new(snapshot: Snapshot, txn: Option<Arc<Mutex<TxnData>>>) -> ReadView {
        ReadView { snapshot, txn }
    }

    /// A view of the store as of now, outside any transaction.
    pub fn autocommit(snapshot: Snapshot) -> ReadView {
        ReadView {
            snapshot,
            txn: None,
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// True inside a transaction.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// The document under `key`: the transaction's pending version, else the snapshot's.
    pub fn get(&self, key: &[u8]) -> Result<Option<Object>> {
        let Some(t) = &self.txn else {
            return self.snapshot.get(key);
        };
        if let Some(w) = t.lock().writes.get(key) {
            return Ok(w.new.clone());
        }
        let doc = self.snapshot.get(key)?;
        t.lock()
            .reads
            .entry(key.to_vec())
            .or_insert_with(|| fingerprint(&doc));
        Ok(doc)
    }

    /// [`ReadView::get`] handing the document out in `shape`. Inside a transaction the
    /// whole document is read (its fingerprint is kept for validation at commit).
    pub fn get_shaped<S: Shape>(&self, key: &[u8], shape: &mut S) -> Result<Option<S::Doc>> {
        match &self.txn {
            None => self.snapshot.get_shaped(key, shape),
            Some(_) => Ok(self.get(key)?.map(|doc| shape.shape_owned(doc))),
        }
    }

    /// [`ReadView::get_shaped`] for one of a run of reads of nearby keys (an index
    /// scan's; see [`NearBlocks`]).
    pub fn get_shaped_near<S: Shape>(
        &self,
        key: &[u8],
        shape: &mut S,
        near: &mut NearBlocks,
    ) -> Result<Option<S::Doc>> {
        match &self.txn {
            None => self.snapshot.get_shaped_near(key, shape, near),
            Some(_) => self.get_shaped(key, shape),
        }
    }

    /// Every document of collection `cid`, pending writes included, in key order.
    pub fn scan_collection(&self, cid: u32) -> KeyedDocuments {
        self.scan_from(cid, Bound::Included(keys::collection_start(cid)))
    }

    /// [`ReadView::scan_collection`] handing the documents out in `shape` (the rows of
    /// a query: [`crate::storage::shape::Columns`]).
    pub fn scan_collection_shaped<S: Shape>(&self, cid: u32, shape: S) -> KeyedDocuments<S::Doc> {
        self.scan_from_shaped(cid, Bound::Included(keys::collection_start(cid)), shape)
    }

    /// The documents of collection `cid` from key `start` on, in key order.
    pub fn scan_from(&self, cid: u32, start: Bound<Vec<u8>>) -> KeyedDocuments {
        self.scan_from_shaped(cid, start, Whole)
    }

    fn scan_from_shaped<S: Shape>(
        &self,
        cid: u32,
        start: Bound<Vec<u8>>,
        shape: S,
    ) -> KeyedDocuments<S::Doc> {
        let end = keys::collection_end(cid);
        self.scan_range_shaped(
            cid,
            start,
            end.map_or(Bound::Unbounded, Bound::Excluded),
            shape,
        )
    }

    /// The documents of collection `cid` with keys in `(start, end)` (bounds inside the
    /// collection's own range), in key order and in `shape`: one part of a scan that
    /// [`crate::storage::Snapshot::split_points`] cut.
    pub fn scan_range_shaped<S: Shape>(
        &self,
        cid: u32,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        mut shape: S,
    ) -> KeyedDocuments<S::Doc> {
        let range = (start, end);
        let stored = self
            .snapshot
            .scan_shaped(range.0.clone(), range.1.clone(), shape.clone());
        let Some(t) = &self.txn else {
            return Box::new(stored);
        };
        let mut d = t.lock();
        d.scanned.insert(cid);
        let pending: Vec<(Vec<u8>, Option<S::Doc>)> = d
            .writes
            .range(range)
            .map(|(k, w)| (k.clone(), w.new.as_ref().map(|doc| shape.shape_ref(doc))))
            .collect();
        if pending.is_empty() {
            return Box::new(stored);
        }
        Box::new(Overlay {
            stored: stored.peekable(),
            pending: pending.into_iter().peekable(),
        })
    }

    /// [`ReadView::scan_range_shaped`] in columns, read through a cursor (see
    /// [`crate::storage::cursor`]); None inside a transaction that wrote in the range
    /// (its pending writes are merged by the scan only).
    pub fn cursor_range(
        &self,
        cid: u32,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        shape: Columns,
    ) -> Option<RowCursor> {
        if let Some(t) = &self.txn {
            let mut d = t.lock();
            d.scanned.insert(cid);
            if d.writes
                .range((start.clone(), end.clone()))
                .next()
                .is_some()
            {
                return None;
            }
        }
        Some(self.snapshot.cursor(start, end, shape))
    }

    /// [`ReadView::scan_range_shaped`] from the last key down, in parts: each part ends
    /// where the one after it began and holds about [`FIRST_BACKWARD_PART`] entries of
    /// each memtable and segment, each part after it twice as many as the one before, up
    /// to [`BACKWARD_PART`] ([`crate::storage::Snapshot::part_start_before`]); it is read
    /// forward and handed out backwards, so a `LIMIT` reads (and decodes) about the
    /// documents it needs only.
    pub fn scan_range_backward_shaped<S: Shape>(
        &self,
        cid: u32,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        shape: S,
    ) -> KeyedDocuments<S::Doc>
    where
        S::Doc: Send + 'static,
    {
        let low = match &start {
            Bound::Included(k) | Bound::Excluded(k) => k.clone(),
            Bound::Unbounded => keys::collection_start(cid),
        };
        let end = match end {
            Bound::Unbounded => keys::collection_end(cid).map_or(Bound::Unbounded, Bound::Excluded),
            bounded => bounded,
        };
        Box::new(Backward {
            view: self.clone(),
            cid,
            start,
            low,
            end,
            part: Vec::new(),
            part_size: FIRST_BACKWARD_PART,
            shape,
            done: false,
        })
    }

    /// Notes an index scan of collection `cid`. Index trees are not versioned: inside a
    /// transaction they can be read only while nothing has written the collection since
    /// the snapshot (otherwise 40001: the transaction could not commit anyway).
    pub fn index_read(&self, cid: u32, conflicts: &Conflicts) -> Result<()> {
        let Some(t) = &self.txn else {
            return Ok(());
        };
        t.lock().scanned.insert(cid);
        if conflicts.last_write(cid) > self.snapshot.seq() {
            return Err(serialization_failure(
                "the collection was written since the transaction began, and its index cannot show the older state",
            ));
        }
        Ok(())
    }

    /// Whether a secondary index of collection `cid` shows exactly this view: always
    /// outside a transaction; inside one, if neither it nor anyone else wrote the
    /// collection since its snapshot.
    pub fn index_usable(&self, cid: u32, conflicts: &Conflicts) -> bool {
        self.txn.is_none() || (!self.wrote(cid) && conflicts.last_write(cid) <= self.snapshot.seq())
    }

    /// Whether the transaction has pending writes in collection `cid`.
    pub fn wrote(&self, cid: u32) -> bool {
        self.txn.as_ref().is_some_and(|t| t.lock().wrote(cid))
    }
}

/// Entries of each memtable and segment a backward scan's part holds at most (about).
const BACKWARD_PART: usize = 256;
/// Entries of each memtable and segment a backward scan's first part holds (about):
/// most backward scans stop early (`ORDER BY id DESC LIMIT 10`, `max(id)`).
const FIRST_BACKWARD_PART: usize = 16;

/// The parts of a backward scan, last first (see [`ReadView::scan_range_backward_shaped`]).
struct Backward<S: Shape> {
    view: ReadView,
    cid: u32,
    start: Bound<Vec<u8>>,
    /// The start's key (the collection's first for an unbounded start).
    low: Vec<u8>,
    /// Where the part still to read ends: the range's end, then each part's start.
    end: Bound<Vec<u8>>,
    /// The part being handed out, reversed (its last document at the end of the Vec).
    part: Vec<(Vec<u8>, S::Doc)>,
    /// Entries of each source the next part holds (about).
    part_size: usize,
    shape: S,
    done: bool,
}

impl<S: Shape> Iterator for Backward<S> {
    type Item = Result<(Vec<u8>, S::Doc)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.part.pop() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            let cut = match &self.end {
                Bound::Included(k) | Bound::Excluded(k) => {
                    self.view
                        .snapshot
                        .part_start_before(&self.low, k, self.part_size)
                }
                Bound::Unbounded => Ok(None),
            };
            self.part_size = (self.part_size * 2).min(BACKWARD_PART);
            let cut = match cut {
                Ok(cut) => cut,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let (from, to) = match cut {
                Some(cut) => (
                    Bound::Included(cut.clone()),
                    std::mem::replace(&mut self.end, Bound::Excluded(cut)),
                ),
                None => {
                    self.done = true;
                    (self.start.clone(), self.end.clone())
                }
            };
            let docs = self
                .view
                .scan_range_shaped(self.cid, from, to, self.shape.clone());
            for item in docs {
                match item {
                    Ok(pair) => self.part.push(pair),
                    Err(e) => {
                        self.done = true;
                        self.part.clear();
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

/// Stored documents merged with pending writes (which win; a pending delete hides).
struct Overlay<D, S: Iterator<Item = Result<(Vec<u8>, D)>>> {
    stored: std::iter::Peekable<S>,
    pending: std::iter::Peekable<std::vec::IntoIter<(Vec<u8>, Option<D>)>>,
}

impl<D, S: Iterator<Item = Result<(Vec<u8>, D)>>> Iterator for Overlay<D, S> {
    type Item = Result<(Vec<u8>, D)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_pending = match (self.stored.peek(), self.pending.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return self.stored.next(),
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(Ok((sk, _))), Some((pk, _))) => {
                    if sk == pk {
                        self.stored.next();
                        true
                    } else {
                        pk < sk
                    }
                }
            };
            if take_pending {
                match self.pending.next() {
                    Some((k, Some(doc))) => return Some(Ok((k, doc))),
                    Some((_, None)) => continue,
                    None => return None,
                }
            }
            return self.stored.next();
        }
    }
}
