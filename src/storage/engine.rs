//! `Storage`: the LSM engine that ties WAL, memtables, segments, manifest, cache and the
//! background flush and compaction threads together.
//!
//! ```text
//!  write ──► WAL buffer ──► active memtable ──► published once the WAL's fsync returns
//!                                              │ over memtable_size: freeze (WAL rotates)
//!                                              ▼
//!                                   frozen memtables ──flush thread──► new segment
//!                                                                          │ manifest
//!  read: active → frozen (newest first) → segments (newest first)         ▼
//!                                   segments ◄──compaction thread── size-tiered merges
//! ```
//!
//! A bulk load ([`super::bulk`]) skips the WAL and the memtables: its rows become segment
//! files on a worker thread, put in front of the others by one manifest edit
//! ([`Storage::install_bulk`]).
//!
//! A write applies its batch right after appending it to the WAL buffer, and then waits
//! for the fsync, or, deferred ([`super::durability`]), leaves that to the WAL's flusher
//! thread and its caller. Readers never see a batch before it is durable (see
//! [`super::visibility`]); the index trees, which are not versioned, are written to disk
//! only after the WAL records behind their changes are durable (`commit_indexes`).
//!
//! Concurrency: writers hold `gate` shared from WAL append to memtable insert; freezing
//! the memtable takes it exclusively, so every sequence number at or below the frozen
//! table's `last_seq` is in that table or an older one. Readers take a [`Snapshot`]: an
//! `Arc<State>` and the published sequence number (see [`super::visibility`]), read
//! together, so a reader sees a gapless prefix of the WAL's batches and never blocks
//! writers. Every frozen table and segment of any state holds only published records. Manifest edits (flush, compaction) are serialized by
//! `edit`; a compaction finds its inputs by id when it installs, so a flush adding a
//! segment meanwhile does no harm.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::Config;
use crate::doc::{Object, binary};
use crate::error::{Error, Result};
use crate::storage::bulk::{self, Built, BulkLoad};
use crate::storage::cache::BlockCache;
use crate::storage::compaction::worker::{self, MergeRules};
use crate::storage::compaction::{self, PolicyOptions};
use crate::storage::cursor::{MemtableSource, RowCursor};
use crate::storage::durability::{self, Durable, Published};
use crate::storage::indexes::{IndexChange, IndexSet};
use crate::storage::manifest::Manifest;
use crate::storage::memtable::{self, Memtable, MemtableIter};
use crate::storage::merge::{MergeIter, Source};
use crate::storage::recycle;
use crate::storage::segment::{
    self, BlockEntry, NearBlock, Segment, SegmentCursor, SegmentIter, SegmentWriter,
};
use crate::storage::shape::{Columns, Shape, Whole};
use crate::storage::wal::{self, Wal, WalOp};

/// The storage engine's settings (taken from [`Config`]).
#[derive(Clone, Debug)]
pub struct StorageOptions {
    pub memtable_size: u64,
    pub max_frozen_memtables: usize,
    pub block_size: usize,
    pub block_cache_size: usize,
    pub compression_level: i32,
    pub wal_segment_size: u64,
    /// See [`Config`]'s `commit_delay`.
    pub commit_delay: std::time::Duration,
    pub max_document_size: usize,
    pub index_cache_size: usize,
    pub policy: PolicyOptions,
}

impl From<&Config> for StorageOptions {
    fn from(c: &Config) -> Self {
        StorageOptions {
            memtable_size: c.memtable_size,
            max_frozen_memtables: c.max_frozen_memtables,
            block_size: c.block_size as usize,
            block_cache_size: c.block_cache_size as usize,
            compression_level: c.compression_level as i32,
            wal_segment_size: c.wal_segment_size,
            commit_delay: std::time::Duration::from_micros(c.commit_delay),
            max_document_size: c.max_document_size as usize,
            index_cache_size: c.index_cache_size as usize,
            policy: PolicyOptions {
                min_merge: c.compaction_min_merge,
                max_merge: c.compaction_min_merge.max(10),
                size_ratio: c.compaction_size_ratio as u64,
                max_segments: c.compaction_max_segments,
            },
        }
    }
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions::from(&Config::default())
    }
}

/// One write of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Put {
        key: Vec<u8>,
        doc: Object,
    },
    /// A document already in the binary form of [`binary::encode_object`] (a bulk
    /// load's rows, encoded as they were validated).
    PutEncoded {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Adds an entry to a secondary index (see [`crate::storage::indexes`]).
    IndexPut {
        index: u32,
        entry: Vec<u8>,
    },
    /// Removes an entry from a secondary index.
    IndexDelete {
        index: u32,
        entry: Vec<u8>,
    },
    /// Collection `collection` gained `delta` documents in this batch (negative: lost).
    /// The engine keeps the sums ([`Storage::document_count`]): in each memtable for
    /// its writes, and in the manifest for the flushed ones, so the counts are exact
    /// and survive a crash as the data does.
    Count {
        collection: u32,
        delta: i64,
    },
}

/// A predicate saying whether a key still belongs to a live collection.
pub type KeyFilter = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

struct Frozen {
    table: Arc<Memtable>,
    /// Every sequence number up to this one is in this table or an older one.
    last_seq: u64,
}

/// A consistent view for readers.
#[derive(Clone)]
struct State {
    active: Arc<Memtable>,
    /// Newest first.
    frozen: Vec<Arc<Frozen>>,
    /// Newest first.
    segments: Vec<Arc<Segment>>,
}

#[derive(Default)]
struct Signals {
    flush: bool,
    compact: bool,
    shutdown: bool,
}

/// What recovery found at open.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub segments: usize,
    pub replayed_records: usize,
    /// A torn or corrupt WAL tail that was cut off, described.
    pub truncated_wal: Option<String>,
    pub removed_stray_files: usize,
}

struct Inner {
    dir: PathBuf,
    opts: StorageOptions,
    wal: Wal,
    indexes: IndexSet,
    gate: RwLock<()>,
    state: RwLock<Arc<State>>,
    manifest: Mutex<Manifest>,
    cache: Arc<BlockCache>,
    flush_lock: Mutex<()>,
    compaction_lock: Mutex<()>,
    signals: Mutex<Signals>,
    wake: Condvar,
    drained: Condvar,
    is_live: RwLock<KeyFilter>,
    recovery: RecoveryReport,
}

/// The storage engine. See the module doc.
pub struct Storage {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// When the store was opened, in microseconds since 1970 (its counters, such as
    /// [`Storage::wal_stats`], count from then).
    opened_at: i64,
}

fn encode_ops(ops: Vec<Op>, max_document_size: usize) -> Result<Vec<WalOp>> {
    ops.into_iter()
        .map(|op| match op {
            Op::Put { key, doc } => {
                let value = binary::encode_object(&doc);
                check_document_size(&value, max_document_size)?;
                Ok(WalOp::Put { key, value })
            }
            Op::PutEncoded { key, value } => {
                check_document_size(&value, max_document_size)?;
                Ok(WalOp::Put { key, value })
            }
            Op::Delete { key } => Ok(WalOp::Delete { key }),
            Op::IndexPut { index, entry } => Ok(WalOp::IndexPut { index, entry }),
            Op::IndexDelete { index, entry } => Ok(WalOp::IndexDelete { index, entry }),
            Op::Count { collection, delta } => Ok(WalOp::Count { collection, delta }),
        })
        .collect()
}

/// 54000 for a document over `max_document_size` encoded bytes.
pub(crate) fn check_document_size(value: &[u8], max_document_size: usize) -> Result<()> {
    if value.len() > max_document_size {
        return Err(Error::limit(format!(
            "document of {} bytes exceeds max_document_size ({max_document_size})",
            value.len()
        )));
    }
    Ok(())
}

/// Applies a record's ops to a memtable and returns its index changes.
fn apply_ops(table: &Memtable, seq: u64, ops: Vec<WalOp>) -> Vec<IndexChange> {
    let mut changes = Vec::new();
    for op in ops {
        match op {
            WalOp::Put { key, value } => table.insert(key, seq, Some(value)),
            WalOp::Delete { key } => table.insert(key, seq, None),
            WalOp::IndexPut { index, entry } => changes.push(IndexChange {
                index,
                entry,
                put: true,
            }),
            WalOp::IndexDelete { index, entry } => changes.push(IndexChange {
                index,
                entry,
                put: false,
            }),
            WalOp::Count { collection, delta } => table.add_count(collection, delta),
        }
    }
    changes
}

impl Storage {
    /// Opens (or creates) the store in `dir`, recovering from the WAL.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<Storage> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir)
            .map_err(|e| Error::io(format!("creating {}", wal_dir.display()), e))?;
        let manifest = match Manifest::load(dir)? {
            Some(m) => m,
            None => {
                let m = Manifest::new();
                m.store(dir)?;
                m
            }
        };
        let mut report = RecoveryReport {
            removed_stray_files: remove_strays(dir, &manifest)?,
            ..RecoveryReport::default()
        };
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for id in &manifest.segments {
            segments.push(Arc::new(Segment::open(
                &dir.join(segment::file_name(*id)),
                *id,
            )?));
        }
        report.segments = segments.len();
        let replay = wal::replay(&wal_dir, manifest.flushed_seq)?;
        if let Some(why) = &replay.truncated {
            tracing::warn!("WAL recovery truncated a torn or corrupt tail: {why}");
        }
        report.truncated_wal = replay.truncated.clone();
        report.replayed_records = replay.records.len();
        let indexes = IndexSet::open(dir, opts.index_cache_size)?;
        let active = Arc::new(Memtable::with_capacity(opts.memtable_size));
        for record in replay.records {
            let changes = apply_ops(&active, record.seq, record.ops);
            indexes.apply(&changes)?;
        }
        let next_seq = replay.max_seq.max(manifest.flushed_seq) + 1;
        let wal = Wal::open(&wal_dir, next_seq, opts.wal_segment_size)?;
        wal.set_commit_delay(opts.commit_delay);
        wal.remove_flushed(manifest.flushed_seq)?;
        let inner = Inner {
            dir: dir.to_path_buf(),
            cache: Arc::new(BlockCache::new(opts.block_cache_size)),
            opts,
            wal,
            indexes,
            gate: RwLock::new(()),
            state: RwLock::new(Arc::new(State {
                active,
                frozen: Vec::new(),
                segments,
            })),
            manifest: Mutex::new(manifest),
            flush_lock: Mutex::new(()),
            compaction_lock: Mutex::new(()),
            signals: Mutex::new(Signals::default()),
            wake: Condvar::new(),
            drained: Condvar::new(),
            is_live: RwLock::new(Arc::new(|_: &[u8]| true)),
            recovery: report,
        };
        Ok(Storage {
            inner: Arc::new(inner),
            threads: Mutex::new(Vec::new()),
            opened_at: chrono::Utc::now().timestamp_micros(),
        })
    }

    /// The number of documents of collection `collection` (by its id), counted from
    /// the [`Op::Count`] changes writers attach to their batches.
    pub fn document_count(&self, collection: u32) -> u64 {
        // The manifest lock first: a flush moves a memtable's counts into the manifest
        // and drops the memtable from the state while it holds that lock.
        let manifest = self.inner.manifest.lock();
        let st = self.inner.snapshot();
        let mut n = manifest.counts.get(&collection).copied().unwrap_or(0);
        drop(manifest);
        let tables = std::iter::once(&st.active).chain(st.frozen.iter().map(|f| &f.table));
        for t in tables {
            n += t.count(collection);
        }
        u64::try_from(n).unwrap_or(0)
    }

    /// Bytes on disk of collection `collection`'s documents in segments (compressed
    /// blocks; writes still in memtables are not counted).
    pub fn collection_bytes(&self, collection: u32) -> u64 {
        let start = crate::storage::keys::collection_start(collection);
        let end = crate::storage::keys::collection_end(collection);
        self.inner
            .snapshot()
            .segments
            .iter()
            .map(|s| s.range_bytes(&start, end.as_deref()))
            .sum()
    }

    /// The secondary index trees.
    pub fn indexes(&self) -> &IndexSet {
        &self.inner.indexes
    }

    /// What recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// Sets the predicate that tells flush and compaction which keys are still live
    /// (keys of dropped collections are purged).
    pub fn set_key_filter(&self, filter: KeyFilter) {
        *self.inner.is_live.write() = filter;
    }

    /// Starts the background flush and compaction threads.
    pub fn start_background(&self) -> Result<()> {
        let mut threads = self.threads.lock();
        if !threads.is_empty() {
            return Ok(());
        }
        for (name, job) in [
            ("tissdb-flush", Job::Flush),
            ("tissdb-compact", Job::Compact),
        ] {
            let inner = self.inner.clone();
            let handle = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || inner.background(job))
                .map_err(|e| Error::io("starting a background thread", e))?;
            threads.push(handle);
        }
        // Recovered data may already call for work.
        self.inner.signal(|s| {
            s.flush = true;
            s.compact = true;
        });
        Ok(())
    }

    /// Writes a batch atomically; returns once it is durable and visible to readers.
    /// Inside [`durability::deferred`] it returns once the batch is applied, and the
    /// scope's future tells when it is durable and visible.
    pub fn write(&self, ops: Vec<Op>) -> Result<u64> {
        self.write_checked(ops, &mut |_| Ok(()))
    }

    /// [`Storage::write`], calling `check` with the batch's sequence number before it is
    /// appended, in sequence order (see [`Wal::enqueue`]); nothing is written if
    /// `check` fails. Transactions validate and register their commits this way.
    pub fn write_checked(
        &self,
        ops: Vec<Op>,
        check: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<u64> {
        let write_here = || {
            durability::when_idle() == durability::WhenIdle::WriteHere
                && self.inner.wal.lone_writer()
        };
        if !durability::deferring() || write_here() {
            return self.inner.write(ops, check, false);
        }
        let seq = self.inner.write(ops, check, true)?;
        let store: Arc<dyn Durable> = self.inner.clone();
        if !durability::record(&store, seq) {
            self.inner.settle(seq)?;
        }
        Ok(seq)
    }

    /// The newest document stored under `key`, including batches applied but not yet
    /// published; for writers that hold the key's lock.
    pub fn get(&self, key: &[u8]) -> Result<Option<Object>> {
        self.inner.get_at(&self.inner.snapshot(), key, u64::MAX)
    }

    /// [`Storage::get`] handing the document out in `shape`.
    pub fn get_shaped<S: Shape>(&self, key: &[u8], shape: &mut S) -> Result<Option<S::Doc>> {
        self.inner
            .get_shaped_at(&self.inner.snapshot(), key, u64::MAX, shape)
    }

    /// [`Storage::get_shaped`] for one of a run of reads of nearby keys, looking first
    /// in the blocks `near` holds (see [`NearBlocks`]).
    pub fn get_shaped_near<S: Shape>(
        &self,
        key: &[u8],
        shape: &mut S,
        near: &mut NearBlocks,
    ) -> Result<Option<S::Doc>> {
        self.inner
            .get_shaped_near(&self.inner.snapshot(), key, u64::MAX, shape, Some(near))
    }

    /// Documents with keys in `[start, end)`, in key order, deletes applied, as of now
    /// (a fresh [`Snapshot`]).
    pub fn scan(&self, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> ScanIter {
        self.snapshot().scan(start, end)
    }

    /// A consistent view of the store as of the published sequence number, which stays
    /// readable (memtables and segment files included) as long as it is held.
    pub fn snapshot(&self) -> Snapshot {
        self.settle_deferred();
        let (state, seq) = {
            let guard = self.inner.state.read();
            ((*guard).clone(), self.inner.published())
        };
        Snapshot {
            inner: self.inner.clone(),
            state,
            seq,
        }
    }

    /// The sequence number readers see up to (see [`Snapshot`]).
    pub fn published_seq(&self) -> u64 {
        self.settle_deferred();
        self.inner.published()
    }

    /// Inside [`durability::deferred`], waits for the scope's own writes, so that what
    /// is read next includes them.
    fn settle_deferred(&self) {
        if durability::deferring() {
            durability::settle(Arc::as_ptr(&self.inner) as *const ());
        }
    }

    /// Starts a bulk load: rows written into new segment files on a worker thread, for
    /// [`Storage::install_bulk`] (see [`super::bulk`]).
    pub fn bulk_load(&self) -> Result<BulkLoad> {
        let inner = self.inner.clone();
        BulkLoad::start(bulk::Target {
            dir: self.inner.dir.clone(),
            block_size: self.inner.opts.block_size,
            level: self.inner.opts.compression_level,
            allocate_id: Box::new(move || inner.allocate_segment_id()),
            max_document_size: self.inner.opts.max_document_size,
        })
    }

    /// Installs a bulk load's segments in front of all others and adds `counts` to the
    /// collections' document counts, in one manifest edit: when it returns, the rows are
    /// durable and visible. The caller holds the write locks of every loaded key; a
    /// memtable holding a version of a key in a loaded range (a document deleted before
    /// the load) is flushed first, so that it does not hide the loaded one.
    pub fn install_bulk(&self, built: Built, counts: &[(u32, i64)]) -> Result<()> {
        let holds_loaded = |st: &State| {
            std::iter::once(&st.active)
                .chain(st.frozen.iter().map(|f| &f.table))
                .any(|t| {
                    built
                        .segments
                        .iter()
                        .any(|(_, first, last)| t.holds_range(first, last))
                })
        };
        if holds_loaded(&self.inner.snapshot()) {
            self.inner.flush(true)?;
        }
        let opened = built
            .segments
            .iter()
            .map(|(w, _, _)| Segment::open(&w.path, w.id).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        {
            let mut manifest = self.inner.manifest.lock();
            let mut next = manifest.clone();
            for s in &opened {
                next.segments.insert(0, s.id);
            }
            for (collection, delta) in counts {
                *next.counts.entry(*collection).or_default() += delta;
            }
            next.store(&self.inner.dir)?;
            *manifest = next;
            let mut state = self.inner.state.write();
            let mut st = (**state).clone();
            for s in opened {
                st.segments.insert(0, s);
            }
            *state = Arc::new(st);
        }
        built.installed();
        self.inner.signal(|s| s.compact = true);
        Ok(())
    }

    /// Writes the index trees' changes to their files, once the WAL records that made
    /// them are durable (a tree on disk must not hold an entry a crash loses).
    pub fn commit_indexes(&self) -> Result<()> {
        self.inner.commit_indexes()
    }

    /// Freezes the active memtable (if it holds anything) and flushes every frozen one.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush(true)
    }

    /// Flushes, then merges every segment into one, purging tombstones and the data of
    /// dropped collections; returns when done.
    pub fn compact_all(&self) -> Result<()> {
        self.inner.flush(true)?;
        let _c = self.inner.compaction_lock.lock();
        let segments = self.inner.snapshot().segments.clone();
        if segments.is_empty() {
            return Ok(());
        }
        self.inner.merge_and_install(&segments, true)
    }

    /// Runs policy-chosen compactions until the policy is satisfied (what the background
    /// thread does); returns how many merges ran.
    pub fn compact_by_policy(&self) -> Result<usize> {
        let mut n = 0;
        while self.inner.compact_once()? {
            n += 1;
        }
        Ok(n)
    }

    /// Stops background threads and flushes the memtable, so that the next open has no
    /// WAL to replay.
    pub fn close(&self) -> Result<()> {
        self.stop_threads();
        if self.inner.wal.poisoned().is_some() {
            return Ok(());
        }
        self.inner.flush(true)?;
        self.inner.commit_indexes()
    }

    fn stop_threads(&self) {
        self.inner.signal(|s| s.shutdown = true);
        for handle in self.threads.lock().drain(..) {
            if handle.join().is_err() {
                tracing::error!("a background storage thread panicked");
            }
        }
    }

    /// Sizes of the live segments, newest first.
    pub fn segment_sizes(&self) -> Vec<u64> {
        self.inner
            .snapshot()
            .segments
            .iter()
            .map(|s| s.size)
            .collect()
    }

    /// Number of WAL files on disk.
    pub fn wal_file_count(&self) -> usize {
        self.inner.wal.file_count()
    }

    /// What the WAL has written since the store was opened.
    pub fn wal_stats(&self) -> wal::WalStats {
        self.inner.wal.stats()
    }

    /// When the store was opened, in microseconds since 1970.
    pub fn opened_at(&self) -> i64 {
        self.opened_at
    }

    /// Bytes held by the active memtable.
    pub fn memtable_size(&self) -> u64 {
        self.inner.snapshot().active.size()
    }

    /// Why writes are refused, if they are.
    pub fn read_only_reason(&self) -> Option<String> {
        self.inner.wal.poisoned()
    }

    /// What the store's memory budgets hold now (see [`MemoryUse`]).
    pub fn memory_use(&self) -> MemoryUse {
        let st = self.inner.snapshot();
        MemoryUse {
            memtables: st.active.size() + st.frozen.iter().map(|f| f.table.size()).sum::<u64>(),
            block_cache: self.inner.cache.bytes() as u64,
            index_cache: self.inner.indexes.cached_bytes() as u64,
        }
    }

    /// The block cache (for statistics).
    pub fn cache(&self) -> &BlockCache {
        &self.inner.cache
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

#[derive(Clone, Copy)]
enum Job {
    Flush,
    Compact,
}

/// Removes segment and temp files that no manifest names (left by a crash mid-flush or
/// mid-compaction).
fn remove_strays(dir: &Path, manifest: &Manifest) -> Result<usize> {
    let mut removed = 0;
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stray = match segment::parse_file_name(&name) {
            Some(id) => !manifest.segments.contains(&id),
            None => name.ends_with(".tmp"),
        };
        if stray {
            tracing::info!("removing {name}, which no manifest names");
            std::fs::remove_file(entry.path())
                .map_err(|e| Error::io(format!("removing {name}"), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl Durable for Inner {
    fn settle(&self, seq: u64) -> Result<()> {
        self.wal.wait_durable(seq)?;
        // The batches before this one are being applied by their writers; wait for them
        // so that whoever wrote this one reads it next.
        if !self.wal.visibility().wait(seq, Duration::from_secs(10)) {
            tracing::warn!(seq, "a write was not published within 10 s");
        }
        Ok(())
    }

    fn published(&self, seq: u64) -> Published {
        self.wal.visibility().published_future(seq)
    }
}

impl Inner {
    fn snapshot(&self) -> Arc<State> {
        self.state.read().clone()
    }

    fn signal(&self, f: impl FnOnce(&mut Signals)) {
        let mut s = self.signals.lock();
        f(&mut s);
        self.wake.notify_all();
    }

    fn background(&self, job: Job) {
        loop {
            {
                let mut s = self.signals.lock();
                loop {
                    if s.shutdown {
                        return;
                    }
                    let pending = match job {
                        Job::Flush => std::mem::take(&mut s.flush),
                        Job::Compact => std::mem::take(&mut s.compact),
                    };
                    if pending {
                        break;
                    }
                    self.wake.wait_for(&mut s, Duration::from_secs(1));
                }
            }
            let outcome = match job {
                Job::Flush => self.flush(false),
                Job::Compact => (|| {
                    while self.compact_once()? {
                        if self.signals.lock().shutdown {
                            break;
                        }
                    }
                    Ok(())
                })(),
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "background storage work failed; retrying later");
                std::thread::sleep(Duration::from_millis(500));
                self.signal(|s| match job {
                    Job::Flush => s.flush = true,
                    Job::Compact => s.compact = true,
                });
            }
        }
    }

    fn published(&self) -> u64 {
        self.wal.visibility().published()
    }

    /// Appends the batch to the WAL and applies it. Unless `deferred`, returns once it is
    /// durable and published; else the WAL's flusher thread makes it durable, and the
    /// caller waits for that as it pleases (see [`durability`]).
    fn write(
        &self,
        ops: Vec<Op>,
        check: &mut dyn FnMut(u64) -> Result<()>,
        deferred: bool,
    ) -> Result<u64> {
        if ops.is_empty() {
            return Err(Error::Internal("empty write batch".into()));
        }
        let ops = encode_ops(ops, self.opts.max_document_size)?;
        self.wait_for_flush_room();
        let (seq, table) = {
            let _gate = self.gate.read();
            let table = self.snapshot().active.clone();
            let seq = self.wal.enqueue(&ops, check, deferred)?;
            let changes = apply_ops(&table, seq, ops);
            let applied = if changes.is_empty() {
                Ok(())
            } else {
                self.indexes.apply(&changes)
            };
            // Applied even if the index trees failed: the memtable has the batch. It is
            // published once durable (and every earlier batch applied).
            self.wal.visibility().applied(seq);
            applied?;
            (seq, table)
        };
        if table.size() >= self.opts.memtable_size {
            self.signal(|s| s.flush = true);
        }
        if !deferred {
            self.settle(seq)?;
        }
        Ok(seq)
    }

    /// Per index tree, under its lock (so no writer adds to it meanwhile): syncs the WAL,
    /// then writes the tree. Every change in the tree came from a record appended before
    /// it was applied, so the sync makes them all durable first.
    fn commit_indexes(&self) -> Result<()> {
        self.indexes.commit(&|| self.wal.sync())
    }

    /// Holds writers back while too many memtables wait for their flush.
    fn wait_for_flush_room(&self) {
        let mut s = self.signals.lock();
        while self.snapshot().frozen.len() >= self.opts.max_frozen_memtables && !s.shutdown {
            s.flush = true;
            self.wake.notify_all();
            self.drained.wait_for(&mut s, Duration::from_millis(100));
        }
    }

    fn get_at(&self, st: &State, key: &[u8], seq: u64) -> Result<Option<Object>> {
        self.get_shaped_at(st, key, seq, &mut Whole)
    }

    fn get_shaped_at<S: Shape>(
        &self,
        st: &State,
        key: &[u8],
        seq: u64,
        shape: &mut S,
    ) -> Result<Option<S::Doc>> {
        self.get_shaped_near(st, key, seq, shape, None)
    }

    fn get_shaped_near<S: Shape>(
        &self,
        st: &State,
        key: &[u8],
        seq: u64,
        shape: &mut S,
        near: Option<&mut NearBlocks>,
    ) -> Result<Option<S::Doc>> {
        let hash = memtable::hash_key(key);
        let tables = std::iter::once(&st.active).chain(st.frozen.iter().map(|f| &f.table));
        for table in tables {
            let found = table.read_hashed(key, hash, seq, |v| {
                v.map(|v| shape.shape_record(v)).transpose()
            });
            if let Some(doc) = found {
                return doc;
            }
        }
        if let Some(near) = near {
            for (s, (_, slot)) in st.segments.iter().zip(near.fit(&st.segments)) {
                if let Some(doc) = s.get_shaped_near(key, hash, &self.cache, shape, slot)? {
                    return Ok(doc);
                }
            }
            return Ok(None);
        }
        for s in &st.segments {
            if let Some(doc) = s.get_shaped(key, hash, &self.cache, shape)? {
                return Ok(doc);
            }
        }
        Ok(None)
    }

    fn scan_at<S: Shape>(
        &self,
        st: &State,
        seq: u64,
        fill_cache: bool,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        shape: S,
    ) -> ScanIter<S::Doc> {
        let mut sources: Vec<Source<S::Doc>> =
            Vec::with_capacity(2 + st.frozen.len() + st.segments.len());
        let tables =
            std::iter::once(st.active.clone()).chain(st.frozen.iter().map(|f| f.table.clone()));
        for table in tables {
            sources.push(shaped_memtable(table, seq, &start, &end, shape.clone()));
        }
        for s in &st.segments {
            sources.push(Box::new(SegmentIter::with_shape(
                s.clone(),
                self.cache.clone(),
                fill_cache,
                start.clone(),
                end.clone(),
                shape.clone(),
            )));
        }
        ScanIter {
            merge: MergeIter::new(sources),
        }
    }

    fn cursor_at(
        &self,
        st: &State,
        seq: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        shape: Columns,
    ) -> RowCursor {
        let tables =
            std::iter::once(st.active.clone()).chain(st.frozen.iter().map(|f| f.table.clone()));
        let memtables: Vec<MemtableSource> = tables
            .filter(|table| !table.is_empty())
            .map(|table| shaped_memtable(table, seq, &start, &end, shape.clone()))
            .collect();
        let segments = st
            .segments
            .iter()
            .map(|s| {
                SegmentCursor::new(
                    s.clone(),
                    self.cache.clone(),
                    true,
                    start.clone(),
                    end.clone(),
                )
            })
            .collect();
        RowCursor::new(memtables, segments, shape)
    }

    /// Freezes the active memtable when `force` (and it is not empty) or when it is over
    /// its size, then flushes all frozen memtables, oldest first.
    fn flush(&self, force: bool) -> Result<()> {
        let _f = self.flush_lock.lock();
        let active = self.snapshot().active.clone();
        if (force && !active.is_empty()) || active.size() >= self.opts.memtable_size {
            let _gate = self.gate.write();
            let last_seq = self.wal.rotate()?;
            let mut state = self.state.write();
            let mut next = (**state).clone();
            let fresh = Arc::new(Memtable::with_capacity(self.opts.memtable_size));
            let old = std::mem::replace(&mut next.active, fresh);
            next.frozen.insert(
                0,
                Arc::new(Frozen {
                    table: old,
                    last_seq,
                }),
            );
            *state = Arc::new(next);
        }
        while let Some(oldest) = self.snapshot().frozen.last().cloned() {
            self.flush_frozen(&oldest)?;
        }
        Ok(())
    }

    fn flush_frozen(&self, frozen: &Arc<Frozen>) -> Result<()> {
        let id = self.allocate_segment_id();
        let is_live = self.is_live.read().clone();
        let mut writer = SegmentWriter::create(
            &self.dir,
            id,
            self.opts.block_size,
            self.opts.compression_level,
        )?;
        let entries = MemtableIter::new(frozen.table.clone(), Bound::Unbounded, Bound::Unbounded);
        for (key, value) in entries {
            if !is_live(&key) {
                continue;
            }
            writer.add_encoded(&key, value.as_deref())?;
        }
        let written = if writer.entries() > 0 {
            let w = writer.finish()?;
            Some(Arc::new(Segment::open(&w.path, w.id)?))
        } else {
            drop(writer);
            let path = self.dir.join(segment::file_name(id));
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            None
        };
        // The index trees become durable before the WAL that holds their changes goes.
        self.commit_indexes()?;
        {
            let mut manifest = self.manifest.lock();
            let mut next = manifest.clone();
            if let Some(s) = &written {
                next.segments.insert(0, s.id);
            }
            next.flushed_seq = frozen.last_seq;
            for (collection, delta) in frozen.table.counts() {
                *next.counts.entry(collection).or_default() += delta;
            }
            next.counts
                .retain(|c, n| *n != 0 && is_live(&crate::storage::keys::collection_start(*c)));
            next.store(&self.dir)?;
            *manifest = next;
            let mut state = self.state.write();
            let mut st = (**state).clone();
            st.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
            if let Some(s) = written {
                st.segments.insert(0, s);
            }
            *state = Arc::new(st);
        }
        self.wal.remove_flushed(frozen.last_seq)?;
        tracing::debug!(segment = id, "flushed a memtable");
        self.drained.notify_all();
        self.signal(|s| s.compact = true);
        Ok(())
    }

    fn allocate_segment_id(&self) -> u64 {
        let mut m = self.manifest.lock();
        let id = m.next_segment_id;
        // Persisted with the next manifest write; an id used by a file that no manifest
        // names is freed at open, when such files are removed.
        m.next_segment_id += 1;
        id
    }

    /// Runs one policy-chosen merge; false when the policy chose nothing.
    fn compact_once(&self) -> Result<bool> {
        let _c = self.compaction_lock.lock();
        let segments = self.snapshot().segments.clone();
        let sizes: Vec<u64> = segments.iter().map(|s| s.size).collect();
        let Some(choice) = compaction::choose(&sizes, &self.opts.policy) else {
            return Ok(false);
        };
        let end = choice.start + choice.len;
        let inputs = segments.get(choice.start..end).unwrap_or(&[]).to_vec();
        self.merge_and_install(&inputs, end == segments.len())?;
        Ok(true)
    }

    /// Merges `inputs` (adjacent, newest first) into one segment and installs it in their
    /// place. The caller holds `compaction_lock`.
    fn merge_and_install(&self, inputs: &[Arc<Segment>], purge_tombstones: bool) -> Result<()> {
        let id = self.allocate_segment_id();
        let is_live = self.is_live.read().clone();
        let rules = MergeRules {
            purge_tombstones,
            is_live: &*is_live,
        };
        let written = worker::merge(
            inputs,
            &self.dir,
            id,
            self.opts.block_size,
            self.opts.compression_level,
            &rules,
        )?;
        let output = match written {
            Some(w) => Some(Arc::new(Segment::open(&w.path, w.id)?)),
            None => None,
        };
        let input_ids: Vec<u64> = inputs.iter().map(|s| s.id).collect();
        {
            let mut manifest = self.manifest.lock();
            let mut next = manifest.clone();
            replace_run(
                &mut next.segments,
                &input_ids,
                output.as_ref().map(|s| s.id),
            )?;
            next.store(&self.dir)?;
            *manifest = next;
            let mut state = self.state.write();
            let mut st = (**state).clone();
            let pos = st
                .segments
                .iter()
                .position(|s| Some(&s.id) == input_ids.first())
                .ok_or_else(|| Error::Internal("compaction input vanished".into()))?;
            st.segments.retain(|s| !input_ids.contains(&s.id));
            if let Some(out) = &output {
                st.segments.insert(pos, out.clone());
            }
            *state = Arc::new(st);
        }
        for s in inputs {
            self.cache.evict_segment(s.id);
            std::fs::remove_file(&s.path)
                .map_err(|e| Error::io(format!("removing {}", s.path.display()), e))?;
        }
        crate::storage::fs::sync_dir(&self.dir)?;
        tracing::debug!(inputs = ?input_ids, output = id, "compacted segments");
        Ok(())
    }
}

/// Replaces the adjacent run `run` in `list` by `with` (or by nothing).
fn replace_run(list: &mut Vec<u64>, run: &[u64], with: Option<u64>) -> Result<()> {
    let first = run
        .first()
        .ok_or_else(|| Error::Internal("empty compaction".into()))?;
    let pos = list
        .iter()
        .position(|id| id == first)
        .ok_or_else(|| Error::Internal("compaction input not in the manifest".into()))?;
    let end = pos + run.len();
    if list.get(pos..end) != Some(run) {
        return Err(Error::Internal("compaction inputs are not adjacent".into()));
    }
    list.splice(pos..end, with);
    Ok(())
}

/// The bytes held by each of the store's memory budgets, as each counts them
/// (`memtable_size`, `block_cache_size`, `index_cache_size`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// The active memtable and the frozen ones waiting for flush.
    pub memtables: u64,
    /// Blocks, payloads and entries in the block cache.
    pub block_cache: u64,
    /// Decoded index pages in the index page cache.
    pub index_cache: u64,
}

/// What a run of point reads remembers between reads: for each segment, the decoded
/// block the last read of it found. Reads of nearby keys (an index scan's, which come
/// in key order) look in that block first, without the segment's block index or the
/// cache's lock. A segment's blocks never change, and each slot names its segment, so
/// a memo is right with any snapshot; it helps the reads of one.
#[derive(Default)]
pub struct NearBlocks {
    /// Per segment of the snapshot's list, in its order: the segment's id, its block.
    slots: Vec<(u64, NearBlock)>,
    /// The reads leave the block cache as it is (see [`NearBlocks::passing`]).
    passing: bool,
}

impl NearBlocks {
    /// Memos for a run of reads over much of a table, read once (an index build's, in
    /// key order): a block a read decodes stays in its slot for the reads after it but
    /// is not put in the block cache, which keeps what the server's other work reads.
    /// PostgreSQL reads a table for CREATE INDEX through a small ring of buffers for the
    /// same reason.
    pub fn passing() -> NearBlocks {
        NearBlocks {
            slots: Vec::new(),
            passing: true,
        }
    }

    /// One slot per segment of `segments`, emptied where it held another segment's.
    fn fit(&mut self, segments: &[Arc<Segment>]) -> &mut [(u64, NearBlock)] {
        let passing = self.passing;
        let fresh = |id| {
            let mut near = NearBlock::default();
            near.fill_cache = !passing;
            (id, near)
        };
        self.slots.resize_with(segments.len(), || fresh(0));
        for (slot, s) in self.slots.iter_mut().zip(segments) {
            if slot.0 != s.id {
                *slot = fresh(s.id);
            }
        }
        &mut self.slots
    }
}

/// A consistent, stable view of the store: the state (memtables and segments) and the
/// published sequence number taken together; see the module doc.
#[derive(Clone)]
pub struct Snapshot {
    inner: Arc<Inner>,
    state: Arc<State>,
    seq: u64,
}

impl Snapshot {
    /// The sequence number this view reads at: every batch at or below it is visible.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The document stored under `key` in this view.
    pub fn get(&self, key: &[u8]) -> Result<Option<Object>> {
        self.inner.get_at(&self.state, key, self.seq)
    }

    /// Documents with keys in `[start, end)` in this view, in key order.
    pub fn scan(&self, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> ScanIter {
        self.inner
            .scan_at(&self.state, self.seq, true, start, end, Whole)
    }

    /// [`Snapshot::get`] handing the document out in `shape`.
    pub fn get_shaped<S: Shape>(&self, key: &[u8], shape: &mut S) -> Result<Option<S::Doc>> {
        self.inner.get_shaped_at(&self.state, key, self.seq, shape)
    }

    /// [`Snapshot::get_shaped`] for one of a run of reads of nearby keys (an index
    /// scan's): each segment's block the last read found is looked in first.
    pub fn get_shaped_near<S: Shape>(
        &self,
        key: &[u8],
        shape: &mut S,
        near: &mut NearBlocks,
    ) -> Result<Option<S::Doc>> {
        self.inner
            .get_shaped_near(&self.state, key, self.seq, shape, Some(near))
    }

    /// Up to `parts - 1` increasing keys inside `(start, end)` that cut the range into
    /// parts of about equal numbers of documents (see [`crate::storage::split`]); empty
    /// when the range holds too little to cut.
    pub fn split_points(&self, start: &[u8], end: &[u8], parts: usize) -> Vec<Vec<u8>> {
        let mut samples = crate::storage::split::Samples::default();
        let st = &self.state;
        let tables = std::iter::once(&st.active).chain(st.frozen.iter().map(|f| &f.table));
        for table in tables {
            if let Some((first, last, entries)) = table.key_bounds(start, end) {
                samples.spread(&first, &last, entries as u64);
            }
        }
        for segment in &st.segments {
            for (key, entries) in segment.block_starts(start, end) {
                samples.block(key, entries);
            }
        }
        samples.cut(start, end, parts)
    }

    /// Where the last part of `[start, end)` may begin for a backward scan that reads a
    /// range in parts, the last first: a key strictly inside `(start, end)` such that
    /// `[key, end)` holds about `n` entries of each memtable and segment at most; None
    /// when no such key cuts the range (read it whole).
    pub fn part_start_before(&self, start: &[u8], end: &[u8], n: usize) -> Result<Option<Vec<u8>>> {
        let st = &self.state;
        let tables = std::iter::once(&st.active).chain(st.frozen.iter().map(|f| &f.table));
        let mut cut: Option<Vec<u8>> = None;
        let mut raise = |key: Vec<u8>| {
            if cut.as_deref().is_none_or(|c| key.as_slice() > c) {
                cut = Some(key);
            }
        };
        for table in tables {
            if let Some(key) = table.key_back(start, end, n) {
                raise(key);
            }
        }
        for segment in &st.segments {
            if let Some(key) = segment.key_back(end, n, &self.inner.cache)? {
                raise(key);
            }
        }
        Ok(cut.filter(|c| c.as_slice() > start && c.as_slice() < end))
    }

    /// [`Snapshot::scan`] handing the documents out in `shape`.
    pub fn scan_shaped<S: Shape>(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        shape: S,
    ) -> ScanIter<S::Doc> {
        self.inner
            .scan_at(&self.state, self.seq, true, start, end, shape)
    }

    /// [`Snapshot::scan_shaped`] leaving the block cache as it is: blocks it decodes are
    /// not put in it (a table read once through, as an index build reads it; see
    /// [`NearBlocks::passing`]).
    pub fn scan_shaped_passing<S: Shape>(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        shape: S,
    ) -> ScanIter<S::Doc> {
        self.inner
            .scan_at(&self.state, self.seq, false, start, end, shape)
    }
}

/// The entries of `table` in `[start, end)` visible at `seq`, their documents in
/// `shape` (shaped where the table holds them), their keys in recycled buffers.
fn shaped_memtable<S: Shape>(
    table: Arc<Memtable>,
    seq: u64,
    start: &Bound<Vec<u8>>,
    end: &Bound<Vec<u8>>,
    mut shape: S,
) -> Source<S::Doc> {
    Box::new(MemtableIter::mapped(
        table,
        seq,
        start.clone(),
        end.clone(),
        move |key, value| {
            let doc = value.map(|v| shape.shape_record(v)).transpose()?;
            Ok(BlockEntry {
                key: recycle::key_from(key),
                doc,
            })
        },
    ))
}

impl Snapshot {
    /// The documents of `[start, end)` in `shape`, read through a cursor (see
    /// [`crate::storage::cursor`]): what [`Snapshot::scan_shaped`] gives, lent one at a
    /// time.
    pub fn cursor(&self, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>, shape: Columns) -> RowCursor {
        self.inner
            .cursor_at(&self.state, self.seq, start, end, shape)
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot(seq {})", self.seq)
    }
}

/// Documents of a scan, in key order; an `Err` ends the scan.
pub struct ScanIter<D = Object> {
    merge: MergeIter<D>,
}

impl<D> Iterator for ScanIter<D> {
    type Item = Result<(Vec<u8>, D)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.merge.next()? {
                Ok(BlockEntry {
                    key,
                    doc: Some(doc),
                }) => return Some(Ok((key, doc))),
                Ok(BlockEntry { doc: None, .. }) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
