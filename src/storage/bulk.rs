//! Bulk loads: documents written straight into new segment files, bypassing the WAL and
//! the memtable, then installed all at once by one manifest edit.
//!
//! ```text
//!  caller ──add(key, doc)──► chunks ──channel──► worker thread: runs of RUN_BYTES,
//!                                                 │ each sorted and written as a segment
//!  finish ◄──────────── Built (files fsynced) ◄───┘
//!  Storage::install_bulk: memtables holding a loaded key flushed first,
//!                         then the manifest names the files (newest first) ── durable
//! ```
//!
//! A load's rows are encoded into blocks while the caller is still producing them (a
//! COPY parsing its input), on another core: they are cut into runs of about
//! [`RUN_BYTES`], and each run is sorted by key and written as one segment while the next
//! fills; the last run, which the caller waits for, is written as two halves at once.
//! The runs' key ranges may overlap (ids are keyed as text, so numbered rows do not
//! arrive in key order), never their keys: the caller guarantees that no key repeats.
//! Compaction merges the segments later, as it merges flushed ones.
//!
//! Until installed, the files belong to no manifest: a load that fails or is dropped
//! removes them, and a crash leaves them for recovery to remove (see
//! `engine::remove_strays`). Installing puts the segments in front of all others; that is
//! right only if no memtable holds a version of a loaded key (a reader looks at the
//! memtables first, so such a version would hide the loaded one): the caller holds the
//! write locks of every loaded key, and [`crate::storage::Storage::install_bulk`] flushes
//! the memtables first when one holds a key in a loaded segment's range.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::storage::segment::{SegmentWriter, WrittenSegment};

/// Rows handed to the worker at a time, at most.
const CHUNK_ROWS: usize = 2048;
/// Bytes of keys and documents handed to the worker at a time, at most (a chunk holding
/// one larger document excepted).
const CHUNK_BYTES: usize = 256 << 10;
/// Bytes of keys and documents sorted and written as one segment: the last run is
/// written after the input ends, so this bounds the tail of a load.
const RUN_BYTES: usize = 8 << 20;
/// Bytes of rows sent to the worker and not yet written, beyond which the caller waits:
/// room for the run being written, the one filling and the next, so that the caller
/// goes on while a run is sorted and encoded.
const MAX_IN_FLIGHT: usize = 3 * RUN_BYTES;

/// Rows packed into one buffer: each row's storage key, then its document in the binary
/// form of [`crate::doc::binary::encode_object`]. Rows kept one by one (a key and a
/// document allocated for each, by the caller, and freed by the worker) cost a COPY of
/// 1M rows a fifth of its parsing thread in allocations and fresh pages; chunks go back
/// to the caller to be filled again once their run is written.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    rows: Vec<PackedRow>,
}

/// Where a row of a [`Chunk`] is: key `start..key_end`, document `key_end..end`.
#[derive(Clone, Copy)]
struct PackedRow {
    start: usize,
    key_end: usize,
    end: usize,
}

impl Chunk {
    fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }

    /// Each row's key and document.
    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|r| {
            (
                self.bytes.get(r.start..r.key_end).unwrap_or_default(),
                self.bytes.get(r.key_end..r.end).unwrap_or_default(),
            )
        })
    }
}

/// A row's storage key and document.
type Row<'a> = (&'a [u8], &'a [u8]);

/// Where and how the worker writes segments.
pub(crate) struct Target {
    pub dir: PathBuf,
    pub block_size: usize,
    pub level: i32,
    /// Hands out a fresh segment id.
    pub allocate_id: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Largest encoded document accepted (54000 beyond, as for any write).
    pub max_document_size: usize,
}

/// Bytes in flight between the caller and the worker.
#[derive(Default)]
struct Flow {
    state: Mutex<FlowState>,
    changed: Condvar,
}

#[derive(Default)]
struct FlowState {
    bytes: usize,
    /// The worker stopped: nobody waits for room any more.
    closed: bool,
}

impl Flow {
    /// Waits until `bytes` more fit (or the worker stopped).
    fn reserve(&self, bytes: usize) {
        let mut st = self.state.lock();
        while st.bytes > 0 && st.bytes + bytes > MAX_IN_FLIGHT && !st.closed {
            self.changed.wait(&mut st);
        }
        st.bytes += bytes;
    }

    fn release(&self, bytes: usize) {
        let mut st = self.state.lock();
        st.bytes = st.bytes.saturating_sub(bytes);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_all();
    }
}

/// A bulk load in progress. See the module doc.
pub struct BulkLoad {
    sender: Option<Sender<Chunk>>,
    /// Chunks whose rows are written, back from the worker to be filled again.
    spent: Receiver<Chunk>,
    worker: Option<JoinHandle<Result<Built>>>,
    cancel: Arc<AtomicBool>,
    flow: Arc<Flow>,
    chunk: Chunk,
    max_document_size: usize,
    /// Time spent waiting for the worker (for the log).
    waited: Duration,
}

/// A finished load's segment files, fsynced and not yet installed; dropped uninstalled,
/// it removes them.
pub struct Built {
    /// Each segment with its first and last key.
    pub(crate) segments: Vec<(WrittenSegment, Vec<u8>, Vec<u8>)>,
    rows: u64,
}

impl Built {
    /// Rows written.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The files are now named by the manifest: keep them.
    pub(crate) fn installed(mut self) {
        self.segments.clear();
    }
}

impl Drop for Built {
    fn drop(&mut self) {
        for (segment, _, _) in self.segments.drain(..) {
            if let Err(e) = std::fs::remove_file(&segment.path) {
                tracing::warn!(path = %segment.path.display(), error = %e,
                    "could not remove the file of an abandoned bulk load");
            }
        }
    }
}

impl BulkLoad {
    pub(crate) fn start(target: Target) -> Result<BulkLoad> {
        let max_document_size = target.max_document_size;
        let (sender, receiver) = std::sync::mpsc::channel();
        let (give_back, spent) = std::sync::mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let flow = Arc::new(Flow::default());
        let worker = {
            let (cancel, flow) = (cancel.clone(), flow.clone());
            std::thread::Builder::new()
                .name("tissdb-bulk".into())
                .spawn(move || {
                    let built = build(&target, &receiver, &give_back, &cancel, &flow);
                    flow.close();
                    built
                })
                .map_err(|e| Error::io("starting a bulk load thread", e))?
        };
        Ok(BulkLoad {
            sender: Some(sender),
            spent,
            worker: Some(worker),
            cancel,
            flow,
            chunk: Chunk::default(),
            max_document_size,
            waited: Duration::ZERO,
        })
    }

    /// Adds the row of document `id` of `collection`, `doc` in the binary form of
    /// [`crate::doc::binary::encode_object`]; ids must not repeat (their order is free).
    pub fn add(&mut self, collection: u32, id: &str, doc: &[u8]) -> Result<()> {
        crate::storage::engine::check_document_size(doc, self.max_document_size)?;
        let bytes = &mut self.chunk.bytes;
        let start = bytes.len();
        bytes.extend_from_slice(&collection.to_be_bytes());
        bytes.extend_from_slice(id.as_bytes());
        let key_end = bytes.len();
        bytes.extend_from_slice(doc);
        let end = bytes.len();
        self.chunk.rows.push(PackedRow {
            start,
            key_end,
            end,
        });
        if self.chunk.rows.len() >= CHUNK_ROWS || end >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        if self.chunk.rows.is_empty() {
            return Ok(());
        }
        // A chunk that held a large document is not kept for its size.
        let mut next = self
            .spent
            .try_recv()
            .ok()
            .filter(|c| c.bytes.capacity() <= 4 * CHUNK_BYTES)
            .unwrap_or_default();
        next.clear();
        let chunk = std::mem::replace(&mut self.chunk, next);
        let started = Instant::now();
        self.flow.reserve(chunk.bytes.len());
        self.waited += started.elapsed();
        let sent = self.sender.as_ref().is_some_and(|s| s.send(chunk).is_ok());
        if sent {
            return Ok(());
        }
        // The worker stopped: its error says why.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(Error::Internal("the bulk load thread stopped early".into())),
        }
    }

    fn join(&mut self) -> Result<Built> {
        self.sender = None;
        let worker = self
            .worker
            .take()
            .ok_or_else(|| Error::Internal("bulk load finished twice".into()))?;
        worker
            .join()
            .map_err(|_| Error::Internal("the bulk load thread panicked".into()))?
    }

    /// Sends the last rows and waits for the segment files to be written and fsynced.
    pub fn finish(mut self) -> Result<Built> {
        self.send()?;
        let started = Instant::now();
        let built = self.join()?;
        tracing::debug!(
            rows = built.rows,
            segments = built.segments.len(),
            waited_ms = self.waited.as_millis() as u64,
            last_run_ms = started.elapsed().as_millis() as u64,
            "bulk load written"
        );
        Ok(built)
    }
}

impl Drop for BulkLoad {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.cancel.store(true, Ordering::Relaxed);
            // Dropping what it built removes the files.
            drop(self.join());
        }
    }
}

/// The worker: sorts the rows it receives into runs of about [`RUN_BYTES`], each written
/// as a segment while the caller goes on (see the module doc); a run's chunks go back to
/// the caller once it is written.
fn build(
    target: &Target,
    chunks: &Receiver<Chunk>,
    give_back: &Sender<Chunk>,
    cancel: &AtomicBool,
    flow: &Flow,
) -> Result<Built> {
    let mut built = Built {
        segments: Vec::new(),
        rows: 0,
    };
    let mut run: Vec<Chunk> = Vec::new();
    let mut run_bytes = 0;
    let take = |chunk: Chunk, run: &mut Vec<Chunk>, run_bytes: &mut usize| {
        *run_bytes += chunk.bytes.len();
        run.push(chunk);
    };
    'input: while let Ok(chunk) = chunks.recv() {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Internal("bulk load cancelled".into()));
        }
        take(chunk, &mut run, &mut run_bytes);
        if run_bytes < RUN_BYTES {
            continue;
        }
        // If the input is over, what has come joins this run, the last, written in two
        // halves at once: a worker behind the caller would otherwise write its last
        // full run alone while the caller's core waits.
        loop {
            match chunks.try_recv() {
                Ok(chunk) => take(chunk, &mut run, &mut run_bytes),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break 'input,
            }
        }
        let mut rows = rows_of(&run);
        built.rows += rows.len() as u64;
        sort_run(&mut rows)?;
        write_run(target, &rows, &mut built)?;
        drop(rows);
        for chunk in run.drain(..) {
            // The caller may be gone already; the chunk is then dropped.
            let _ = give_back.send(chunk);
        }
        flow.release(std::mem::take(&mut run_bytes));
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Internal("bulk load cancelled".into()));
    }
    let mut rows = rows_of(&run);
    built.rows += rows.len() as u64;
    write_last_run(target, &mut rows, &mut built)?;
    Ok(built)
}

/// The rows of a run's chunks.
fn rows_of(run: &[Chunk]) -> Vec<Row<'_>> {
    let mut rows = Vec::with_capacity(run.iter().map(|c| c.rows.len()).sum());
    rows.extend(run.iter().flat_map(Chunk::rows));
    rows
}

/// The run still filling when the input ends, which the caller waits for: a large one
/// is sorted, cut in two and written as two segments at once, on this thread and another.
fn write_last_run(target: &Target, run: &mut [Row<'_>], built: &mut Built) -> Result<()> {
    sort_run(run)?;
    if run.len() < 2 * CHUNK_ROWS {
        return write_run(target, run, built);
    }
    let (first, second) = run.split_at(run.len() / 2);
    let mut other = Built {
        segments: Vec::new(),
        rows: 0,
    };
    let (first_done, second_done) = std::thread::scope(|scope| {
        let helper = scope.spawn(|| write_run(target, second, &mut other));
        let first_done = write_run(target, first, built);
        let second_done = helper
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("a bulk load thread panicked".into())));
        (first_done, second_done)
    });
    // Kept either way, so that a failure removes both halves' files.
    built.segments.append(&mut other.segments);
    first_done.and(second_done)
}

/// Sorts a run by key; a repeated key is an error (the caller guarantees there is none).
fn sort_run(run: &mut [Row<'_>]) -> Result<()> {
    if !run.is_sorted_by(|a, b| a.0 < b.0) {
        run.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if run.windows(2).any(|w| matches!(w, [a, b] if a.0 == b.0)) {
            return Err(Error::Internal("a bulk load repeated a key".into()));
        }
    }
    Ok(())
}

/// Writes a run sorted by key as one segment.
fn write_run(target: &Target, run: &[Row<'_>], built: &mut Built) -> Result<()> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(());
    };
    let mut writer = SegmentWriter::create(
        &target.dir,
        (target.allocate_id)(),
        target.block_size,
        target.level,
    )?;
    for (key, doc) in run {
        writer.add_encoded(key, Some(doc))?;
    }
    built
        .segments
        .push((writer.finish()?, first.0.to_vec(), last.0.to_vec()));
    Ok(())
}
