//! The write-ahead log: every batch of writes is a record here, durable before it is
//! acknowledged.
//!
//! ```text
//! wal/00000000000000000001.wal   records with seq >= 1
//! wal/00000000000000004711.wal   records with seq >= 4711 (the file being appended)
//!
//! record  = len u32 LE | crc32c(payload) u32 LE | payload
//! payload = seq varint | op count varint | op*
//! op      = 1 | key bytes | object bytes     (put, object in doc::binary form)
//!         | 2 | key bytes                    (delete)
//!         | 3 | index varint | entry bytes    (index entry put)
//!         | 4 | index varint | entry bytes    (index entry delete)
//! ```
//!
//! Group commit: a writer appends its record to a shared buffer ([`Wal::enqueue`]), and
//! one flush writes the whole buffer and fsyncs once for everyone whose record it holds.
//! A writer that waits ([`Wal::wait_durable`]) and finds no flush in progress does the
//! flush itself; the others wait on a condition variable. A writer that does not wait
//! (a deferred write, see [`super::durability`]) leaves its record to the flusher thread,
//! which flushes whenever the buffer holds records and no flush is in progress; unless
//! it is a lone writer and the log is idle ([`Wal::lone_writer`]), when its front-end
//! may have it wait instead, so that it writes the buffer itself (see
//! [`super::durability::WhenIdle`]). Every flush reports what it made durable to the
//! [`Visibility`], which publishes it; [`Wal::stats`] counts them.
//!
//! The commit delay ([`Wal::set_commit_delay`], like PostgreSQL's `commit_delay`): when
//! the last flush carried the records of several writers, the flusher waits (up to the
//! delay) until half as many are buffered before it writes. Each write and its device
//! flush cost about as much CPU (system calls, interrupts, exits of the virtual machine)
//! for one record as for ten, so on a machine whose cores are busy, fewer and fuller
//! writes leave more CPU to the writers: with 8 clients inserting, 3.3 records per
//! write became 5-6, 10-20% less CPU per commit. Half, not as many: waiting for every
//! writer of the last write puts them all in one group, which then waits out each write
//! together while the cores idle; with half, the writers settle into two groups, one
//! preparing its records while the other's write is under way (8 clients inserting or
//! updating: 7-8% more commits/s than waiting for as many, as many as with no delay;
//! 32 clients inserting: as with waiting for as many, 11% more than with no delay). A
//! lone writer, whose last flush held one record, never waits.
//!
//! A failed write or fsync poisons the log: every later append fails, because after a
//! failed fsync the kernel may have dropped the dirty pages and retrying could
//! acknowledge lost data.
//!
//! Files are zero-filled ahead of the records ([`ZERO_AHEAD`] at a time), so that most
//! fsyncs overwrite blocks the file already has: an fdatasync that grows a file must also
//! commit its new size to the filesystem journal, one more device write and flush per
//! commit (about 1.4x the fsync rate here, measured on ext4). A record header of eight
//! zero bytes is therefore the end of a file's records.
//!
//! Where the filesystem allows it, files are written with O_DIRECT | O_DSYNC: each flush
//! is one write of whole 4 KiB blocks (the last partial block is kept in memory and
//! written again with the records after it), durable when it returns, with no page-cache
//! copy and writeback. Elsewhere (tmpfs) it is a buffered write and fdatasync.
//!
//! Recovery reads the files in order and stops at the first record that is short or fails
//! its checksum; in the last file that is a torn tail from a crash, cut off and reported.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::doc::binary::{self, Reader};
use crate::error::{Error, Result};
use crate::storage::fs::sync_dir;
use crate::storage::visibility::Visibility;

/// One write inside a WAL record.
#[derive(Clone, Debug, PartialEq)]
pub enum WalOp {
    /// Store `value` (an encoded object) under `key`.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Delete `key`.
    Delete { key: Vec<u8> },
    /// Add `entry` to index `index`.
    IndexPut { index: u32, entry: Vec<u8> },
    /// Remove `entry` from index `index`.
    IndexDelete { index: u32, entry: Vec<u8> },
    /// Collection `collection` gained `delta` documents (negative: lost).
    Count { collection: u32, delta: i64 },
}

/// A decoded WAL record.
#[derive(Clone, Debug, PartialEq)]
pub struct WalRecord {
    pub seq: u64,
    pub ops: Vec<WalOp>,
}

/// Largest record accepted when reading; larger lengths mean a corrupt header.
const MAX_RECORD: u32 = 1 << 30;

/// How far past the records a WAL file is zero-filled when it needs to grow.
pub const ZERO_AHEAD: u64 = 1 << 20;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_INDEX_PUT: u8 = 3;
const OP_INDEX_DELETE: u8 = 4;
const OP_COUNT: u8 = 5;

/// Zigzag encoding of a signed number as an unsigned varint.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn encode_record(seq: u64, ops: &[WalOp], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    binary::put_varint(out, seq);
    binary::put_varint(out, ops.len() as u64);
    for op in ops {
        match op {
            WalOp::Put { key, value } => {
                out.push(OP_PUT);
                binary::put_bytes(out, key);
                binary::put_bytes(out, value);
            }
            WalOp::Delete { key } => {
                out.push(OP_DELETE);
                binary::put_bytes(out, key);
            }
            WalOp::IndexPut { index, entry } | WalOp::IndexDelete { index, entry } => {
                out.push(if matches!(op, WalOp::IndexPut { .. }) {
                    OP_INDEX_PUT
                } else {
                    OP_INDEX_DELETE
                });
                binary::put_varint(out, u64::from(*index));
                binary::put_bytes(out, entry);
            }
            WalOp::Count { collection, delta } => {
                out.push(OP_COUNT);
                binary::put_varint(out, u64::from(*collection));
                binary::put_varint(out, zigzag(*delta));
            }
        }
    }
    let payload = out.split_off(start + 8);
    out.truncate(start);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn decode_payload(payload: &[u8]) -> Result<WalRecord> {
    let mut r = Reader::new(payload);
    let seq = r.varint()?;
    let count = r.varint()?;
    if count > payload.len() as u64 {
        return Err(Error::Corruption(
            "WAL record op count beyond its length".into(),
        ));
    }
    let mut ops = Vec::with_capacity(count as usize);
    for _ in 0..count {
        match r.byte()? {
            OP_PUT => {
                let key = r.bytes_prefixed()?.to_vec();
                let value = r.bytes_prefixed()?.to_vec();
                ops.push(WalOp::Put { key, value });
            }
            OP_DELETE => ops.push(WalOp::Delete {
                key: r.bytes_prefixed()?.to_vec(),
            }),
            kind @ (OP_INDEX_PUT | OP_INDEX_DELETE) => {
                let index = u32::try_from(r.varint()?)
                    .map_err(|_| Error::Corruption("WAL index id out of range".into()))?;
                let entry = r.bytes_prefixed()?.to_vec();
                ops.push(if kind == OP_INDEX_PUT {
                    WalOp::IndexPut { index, entry }
                } else {
                    WalOp::IndexDelete { index, entry }
                });
            }
            OP_COUNT => {
                let collection = u32::try_from(r.varint()?)
                    .map_err(|_| Error::Corruption("WAL collection id out of range".into()))?;
                let delta = unzigzag(r.varint()?);
                ops.push(WalOp::Count { collection, delta });
            }
            other => return Err(Error::Corruption(format!("WAL op kind {other}"))),
        }
    }
    if !r.is_empty() {
        return Err(Error::Corruption("trailing bytes in WAL record".into()));
    }
    Ok(WalRecord { seq, ops })
}

/// What reading one WAL file found.
#[derive(Debug)]
pub struct FileScan {
    pub records: Vec<WalRecord>,
    /// Offset just past the last good record.
    pub good_len: u64,
    /// Total length of the file.
    pub file_len: u64,
    /// Why reading stopped before the end, if it did.
    pub stopped: Option<String>,
}

/// Reads all good records of one WAL file, stopping at the first bad one.
pub fn scan_file(path: &Path) -> Result<FileScan> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut pos = 0usize;
    let mut records = Vec::new();
    let mut stopped = None;
    while pos < bytes.len() {
        let Some(header) = bytes.get(pos..pos + 8) else {
            stopped = Some(format!("short record header at offset {pos}"));
            break;
        };
        if header.iter().all(|b| *b == 0) {
            // The zero-filled space after the records: the end, if it is all zeros.
            if let Some(at) = bytes.iter().skip(pos).position(|b| *b != 0) {
                stopped = Some(format!(
                    "data at offset {} after the end of the records at offset {pos}",
                    pos + at
                ));
            }
            break;
        }
        let (len, crc) = header.split_at(4);
        let len = u32::from_le_bytes(len.try_into().unwrap_or([0xff; 4]));
        let crc = u32::from_le_bytes(crc.try_into().unwrap_or_default());
        if len > MAX_RECORD {
            stopped = Some(format!(
                "record length {len} at offset {pos} is not believable"
            ));
            break;
        }
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len as usize) else {
            stopped = Some(format!("record at offset {pos} is cut short"));
            break;
        };
        let got = crc32c::crc32c(payload);
        if got != crc {
            stopped = Some(format!(
                "checksum mismatch at offset {pos}: stored {crc:#010x}, computed {got:#010x}"
            ));
            break;
        }
        match decode_payload(payload) {
            Ok(record) => records.push(record),
            Err(e) => {
                stopped = Some(format!("undecodable record at offset {pos}: {e}"));
                break;
            }
        }
        pos += 8 + len as usize;
    }
    Ok(FileScan {
        records,
        good_len: pos as u64,
        file_len: bytes.len() as u64,
        stopped,
    })
}

/// The WAL files of a directory, sorted by the first sequence number they hold.
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wal") {
            continue;
        }
        let first = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(first) = first {
            files.push((first, path));
        }
    }
    files.sort();
    Ok(files)
}

/// The result of replaying the WAL directory at open.
#[derive(Debug, Default)]
pub struct Replay {
    /// Good records with seq greater than the flushed sequence number, in order.
    pub records: Vec<WalRecord>,
    /// Highest sequence number seen in any record.
    pub max_seq: u64,
    /// A description of a torn or corrupt tail that was cut off, if any.
    pub truncated: Option<String>,
}

/// Reads every WAL file in `dir`, keeping records after `flushed_seq`; a bad tail in the
/// last file is truncated away (and reported), a bad record in an earlier file is an error.
pub fn replay(dir: &Path, flushed_seq: u64) -> Result<Replay> {
    let files = list_files(dir)?;
    let mut out = Replay::default();
    let count = files.len();
    for (i, (_, path)) in files.iter().enumerate() {
        let scan = scan_file(path)?;
        for record in scan.records {
            out.max_seq = out.max_seq.max(record.seq);
            if record.seq > flushed_seq {
                out.records.push(record);
            }
        }
        if let Some(why) = scan.stopped {
            if i + 1 != count {
                return Err(Error::Corruption(format!(
                    "WAL file {} is corrupt before its end ({why}), and later files exist",
                    path.display()
                )));
            }
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            file.set_len(scan.good_len)
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::io(format!("truncating {}", path.display()), e))?;
            out.truncated = Some(format!(
                "{}: {why}; cut {} bytes after the last good record at offset {}",
                path.display(),
                scan.file_len - scan.good_len,
                scan.good_len
            ));
        }
    }
    Ok(out)
}

struct WalState {
    /// The file being appended, shared with a flusher that writes without the lock.
    file: Arc<WalFile>,
    /// The bytes of `file`'s last, partial block (`file_len % BLOCK` of them): a direct
    /// write rewrites that block whole.
    tail: Vec<u8>,
    /// Where the records of `file` end (the next one goes there).
    file_len: u64,
    /// How far `file` is written, records and zeros.
    file_zeroed: u64,
    /// First sequence number of each file, oldest first; the last is `file`.
    files: Vec<(u64, PathBuf)>,
    /// Encoded records not yet handed to a flusher.
    buf: Vec<u8>,
    /// First sequence number in `buf`.
    buf_first_seq: u64,
    next_seq: u64,
    durable_seq: u64,
    flushing: bool,
    poisoned: Option<String>,
    stats: WalStats,
    /// The flusher thread waits for work (see [`Wal::enqueue`]).
    flusher_idle: bool,
    /// The flusher thread has been started.
    flusher_started: bool,
    shutdown: bool,
    /// Records the last flush carried: the writers committing together lately.
    last_batch: u64,
    /// While the flusher gathers records (see [`Wal::set_commit_delay`]), the number it
    /// waits for; an append that brings the buffer to it wakes the flusher. 0 otherwise.
    gather_target: u64,
}

impl WalState {
    /// Records appended and not yet handed to a flush.
    fn buffered(&self) -> u64 {
        if self.buf.is_empty() {
            0
        } else {
            self.next_seq - self.buf_first_seq
        }
    }
}

/// What the WAL has written since it was opened (see [`Wal::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records written.
    pub records: u64,
    /// Bytes of records written.
    pub bytes: u64,
    /// Durable writes (each one write and fsync, shared by the records it carries).
    pub writes: u64,
    /// Of the writes, those made by a committing writer on its own thread rather than
    /// by the flusher thread (see [`super::durability::WhenIdle`]).
    pub writes_by_committers: u64,
}

/// What the writer threads and the flusher thread share.
struct Shared {
    dir: PathBuf,
    segment_size: u64,
    state: Mutex<WalState>,
    /// Signalled when a flush ends.
    flushed: Condvar,
    /// Signalled when the flusher thread has records to write.
    work: Condvar,
    visibility: Arc<Visibility>,
    /// The longest the flusher waits for more records, in microseconds (0: never).
    commit_delay_us: AtomicU64,
}

/// The WAL writer. See the module doc.
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Creates the WAL file for records from `first_seq` on, empty. A file of that name
/// holds no records (they would have a sequence number from `first_seq` on), at most
/// zeros, so it is emptied.
/// Opened for direct, synchronous writes where the filesystem allows it (not tmpfs),
/// else for buffered writes and fdatasync.
fn create_file(dir: &Path, first_seq: u64) -> Result<(WalFile, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(file_name(first_seq));
    let open = |flags: i32| {
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .custom_flags(flags)
            .open(&path)
    };
    let file = match open(libc::O_DIRECT | libc::O_DSYNC) {
        Ok(file) => WalFile { file, direct: true },
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => WalFile {
            file: open(0).map_err(|e| Error::io(format!("creating {}", path.display()), e))?,
            direct: false,
        },
        Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
    };
    sync_dir(dir)?;
    Ok((file, path))
}

/// A WAL file and how it is written.
struct WalFile {
    file: File,
    /// Opened with O_DIRECT | O_DSYNC: a write is durable when it returns, and goes
    /// straight to the device in whole, aligned blocks. Against a buffered write and
    /// fdatasync: 30 against 48 us of system CPU per commit here, and no page-cache
    /// writeback work for the kernel's threads.
    direct: bool,
}

impl WalFile {
    /// Writes `tail` (what the file holds of the block `at` is in) then `records` at
    /// `at`, zeros after them up to `zero_to` at least, and makes it durable. Returns the
    /// file's new last partial block.
    fn write_durably(&self, tail: &[u8], records: &[u8], at: u64, zero_to: u64) -> Result<Vec<u8>> {
        let end = at + records.len() as u64;
        if !self.direct {
            self.file
                .write_all_at(records, at)
                .map_err(|e| Error::io("appending to the WAL", e))?;
            if zero_to > end {
                let zeros = vec![0u8; (zero_to - end) as usize];
                self.file
                    .write_all_at(&zeros, end)
                    .map_err(|e| Error::io("zero-filling the WAL", e))?;
            }
            self.file
                .sync_data()
                .map_err(|e| Error::io("syncing the WAL", e))?;
            return Ok(Vec::new());
        }
        let start = at - tail.len() as u64;
        let write_to = round_up(end).max(zero_to);
        let size = (write_to - start) as usize;
        // An aligned block of memory inside a larger zeroed one (O_DIRECT needs it).
        let mut raw = vec![0u8; size + BLOCK as usize];
        let offset = raw.as_ptr().align_offset(BLOCK as usize);
        let misaligned = || Error::Internal("WAL block buffer out of range".into());
        let block = raw.get_mut(offset..offset + size).ok_or_else(misaligned)?;
        let (head, rest) = block.split_at_mut(tail.len());
        head.copy_from_slice(tail);
        rest.get_mut(..records.len())
            .ok_or_else(misaligned)?
            .copy_from_slice(records);
        self.file
            .write_all_at(block, start)
            .map_err(|e| Error::io("appending to the WAL", e))?;
        let last_block = end / BLOCK * BLOCK;
        Ok(block
            .get((last_block - start) as usize..(end - start) as usize)
            .ok_or_else(misaligned)?
            .to_vec())
    }
}

/// What a flush leaves: the file it started (on rotation) and the last partial block.
type Flushed = (Option<(WalFile, PathBuf)>, Vec<u8>);

/// The unit of direct writes.
const BLOCK: u64 = 4096;

fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

impl Wal {
    /// Opens the WAL for appending, starting a new file at `next_seq`. `existing` are the
    /// files already there (kept until a flush covers them).
    pub fn open(dir: &Path, next_seq: u64, segment_size: u64) -> Result<Wal> {
        let mut files = list_files(dir)?;
        // A file named by next_seq exists only if it holds nothing (its records would
        // have raised next_seq); reuse it.
        files.retain(|(first, _)| *first != next_seq);
        let (file, path) = create_file(dir, next_seq)?;
        files.push((next_seq, path));
        let durable_seq = next_seq.saturating_sub(1);
        Ok(Wal {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                segment_size,
                state: Mutex::new(WalState {
                    file: Arc::new(file),
                    tail: Vec::new(),
                    file_len: 0,
                    file_zeroed: 0,
                    files,
                    buf: Vec::new(),
                    buf_first_seq: next_seq,
                    next_seq,
                    durable_seq,
                    flushing: false,
                    poisoned: None,
                    stats: WalStats::default(),
                    flusher_idle: false,
                    flusher_started: false,
                    shutdown: false,
                    last_batch: 0,
                    gather_target: 0,
                }),
                flushed: Condvar::new(),
                work: Condvar::new(),
                commit_delay_us: AtomicU64::new(0),
                visibility: Arc::new(Visibility::new(durable_seq)),
            }),
            flusher: Mutex::new(None),
        })
    }

    /// What readers may see: every flush reports what it made durable here, and the
    /// writers report what they applied.
    pub fn visibility(&self) -> &Arc<Visibility> {
        &self.shared.visibility
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.shared.state.lock().next_seq
    }

    /// Appends a record and returns its sequence number once it is durable on disk.
    pub fn append(&self, ops: &[WalOp]) -> Result<u64> {
        let seq = self.enqueue(ops, &mut |_| Ok(()), false)?;
        self.wait_durable(seq)?;
        Ok(seq)
    }

    /// Adds a record to the buffer of the next flush and returns its sequence number at
    /// once: it is durable after [`Wal::wait_durable`], or, with `background`, once the
    /// flusher thread has written it (the visibility hears of it; nobody has to wait).
    /// `check` is called with the record's sequence number first, under the lock that
    /// orders records: nothing is appended if it fails, and checks run in sequence order.
    /// `check` must be quick: every appender waits for it.
    pub fn enqueue(
        &self,
        ops: &[WalOp],
        check: &mut dyn FnMut(u64) -> Result<()>,
        background: bool,
    ) -> Result<u64> {
        let mut st = self.shared.state.lock();
        if let Some(why) = &st.poisoned {
            return Err(Error::ReadOnly(why.clone()));
        }
        if background && !st.flusher_started {
            self.start_flusher(&mut st)?;
        }
        check(st.next_seq)?;
        let seq = st.next_seq;
        st.next_seq += 1;
        if st.buf.is_empty() {
            st.buf_first_seq = seq;
        }
        encode_record(seq, ops, &mut st.buf);
        if background && st.flusher_idle {
            st.flusher_idle = false;
            self.shared.work.notify_one();
        } else if st.gather_target > 0 && st.buffered() >= st.gather_target {
            st.gather_target = 0;
            self.shared.work.notify_one();
        }
        Ok(seq)
    }

    /// What the WAL has written since it was opened.
    pub fn stats(&self) -> WalStats {
        self.shared.state.lock().stats
    }

    /// Whether a writer now would be the only one: no flush in progress, nothing
    /// buffered, and the last flush carried one record.
    pub fn lone_writer(&self) -> bool {
        let st = self.shared.state.lock();
        !st.flushing && st.buf.is_empty() && st.last_batch <= 1
    }

    /// Sets the commit delay: when the last flush carried the records of several
    /// writers, the flusher thread waits up to `delay` for half as many records to be
    /// buffered before it writes, so that concurrent committers share one write.
    /// A lone writer (the last flush carried one record) is never delayed, nor is a
    /// writer that waits for its record itself ([`Wal::wait_durable`]).
    pub fn set_commit_delay(&self, delay: std::time::Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.commit_delay_us.store(us, Ordering::Relaxed);
    }

    fn start_flusher(&self, st: &mut WalState) -> Result<()> {
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("tissdb-wal".into())
            .spawn(move || shared.run_flusher())
            .map_err(|e| Error::io("starting the WAL flusher thread", e))?;
        *self.flusher.lock() = Some(handle);
        st.flusher_started = true;
        Ok(())
    }

    /// Returns once record `seq` is durable: this thread writes the buffer itself when no
    /// flush is in progress, else waits for the flush that takes it.
    pub fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut st = self.shared.state.lock();
        loop {
            if st.durable_seq >= seq {
                return Ok(());
            }
            if let Some(why) = &st.poisoned {
                return Err(Error::ReadOnly(why.clone()));
            }
            if st.flushing {
                self.shared.flushed.wait(&mut st);
                continue;
            }
            if !st.buf.is_empty() {
                st.stats.writes_by_committers += 1;
            }
            self.shared.flush_buffer(&mut st);
        }
    }

    /// Makes every record appended so far durable.
    pub fn sync(&self) -> Result<()> {
        let last = self.shared.state.lock().next_seq - 1;
        self.wait_durable(last)
    }

    /// Starts a new WAL file for the records that follow, so that all earlier records are
    /// in files that can be removed once flushed. Returns the last sequence number
    /// written before the switch.
    pub fn rotate(&self) -> Result<u64> {
        let shared = &self.shared;
        let mut st = shared.state.lock();
        loop {
            if let Some(why) = &st.poisoned {
                return Err(Error::ReadOnly(why.clone()));
            }
            if st.flushing {
                shared.flushed.wait(&mut st);
            } else if !st.buf.is_empty() {
                shared.flush_buffer(&mut st);
            } else {
                break;
            }
        }
        let last = st.next_seq - 1;
        if st.file_len == 0 {
            return Ok(last);
        }
        let (file, path) = create_file(&shared.dir, st.next_seq)?;
        st.file = Arc::new(file);
        st.tail.clear();
        st.file_len = 0;
        st.file_zeroed = 0;
        let first = st.next_seq;
        st.files.push((first, path));
        Ok(last)
    }

    /// Removes the files whose records all have sequence numbers up to `flushed_seq`.
    pub fn remove_flushed(&self, flushed_seq: u64) -> Result<usize> {
        let doomed: Vec<PathBuf> = {
            let mut st = self.shared.state.lock();
            let mut doomed = Vec::new();
            while let Some(next_first) = st.files.get(1).map(|f| f.0) {
                if next_first <= flushed_seq + 1 {
                    doomed.push(st.files.remove(0).1);
                } else {
                    break;
                }
            }
            doomed
        };
        for path in &doomed {
            std::fs::remove_file(path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        if !doomed.is_empty() {
            sync_dir(&self.shared.dir)?;
        }
        Ok(doomed.len())
    }

    /// Whether an earlier failure made the log refuse writes.
    pub fn poisoned(&self) -> Option<String> {
        self.shared.state.lock().poisoned.clone()
    }

    /// Number of WAL files on disk.
    pub fn file_count(&self) -> usize {
        self.shared.state.lock().files.len()
    }
}

impl Drop for Wal {
    /// Stops the flusher thread once it has written what it holds.
    fn drop(&mut self) {
        {
            let mut st = self.shared.state.lock();
            st.shutdown = true;
            self.shared.work.notify_all();
        }
        if let Some(handle) = self.flusher.lock().take()
            && handle.join().is_err()
        {
            tracing::error!("the WAL flusher thread panicked");
        }
    }
}

impl Shared {
    /// The flusher thread: writes whatever the buffer holds whenever no flush is in
    /// progress, until the WAL is dropped (after a last flush) or poisoned.
    fn run_flusher(&self) {
        let mut st = self.state.lock();
        let mut gathered = false;
        loop {
            if st.poisoned.is_some() {
                return;
            }
            if !st.buf.is_empty() && !st.flushing {
                if !gathered && self.gather(&mut st) {
                    // Another thread may have flushed meanwhile: look again.
                    gathered = true;
                    continue;
                }
                gathered = false;
                self.flush_buffer(&mut st);
                continue;
            }
            if st.shutdown && st.buf.is_empty() {
                return;
            }
            if st.flushing {
                self.flushed.wait(&mut st);
                continue;
            }
            gathered = false;
            st.flusher_idle = true;
            self.work.wait(&mut st);
            st.flusher_idle = false;
        }
    }

    /// The commit delay (see [`Wal::set_commit_delay`]): if the last flush carried
    /// several records and fewer than half as many are buffered now, waits until half as
    /// many are or the delay has passed. Returns whether it waited.
    fn gather(&self, st: &mut parking_lot::MutexGuard<'_, WalState>) -> bool {
        let delay = self.commit_delay_us.load(Ordering::Relaxed);
        let target = st.last_batch.div_ceil(2);
        if delay == 0 || target < 2 || st.shutdown || st.buffered() >= target {
            return false;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_micros(delay);
        st.gather_target = target;
        while st.gather_target > 0
            && (1..target).contains(&st.buffered())
            && !st.shutdown
            && !st.flushing
            && st.poisoned.is_none()
        {
            if self.work.wait_until(st, deadline).timed_out() {
                break;
            }
        }
        st.gather_target = 0;
        true
    }

    /// Writes and fsyncs the pending buffer; the caller holds the lock and no flush is in
    /// progress. The lock is released during I/O.
    fn flush_buffer(&self, st: &mut parking_lot::MutexGuard<'_, WalState>) {
        if st.buf.is_empty() {
            return;
        }
        st.flushing = true;
        let buf = std::mem::take(&mut st.buf);
        let first_seq = st.buf_first_seq;
        let upto = st.next_seq - 1;
        st.last_batch = upto + 1 - first_seq;
        let len = buf.len() as u64;
        let rotate = st.file_len > 0 && st.file_len + len > self.segment_size;
        let (at, zeroed, tail) = match rotate {
            true => (0, 0, Vec::new()),
            false => (st.file_len, st.file_zeroed, std::mem::take(&mut st.tail)),
        };
        let end = at + len;
        // Past the zeroed space, the file grows by the records and ZERO_AHEAD more
        // (up to the file size that makes it rotate), in this one write.
        let zero_to = match end > zeroed {
            true => round_up(end.max((end + ZERO_AHEAD).min(self.segment_size))),
            false => 0,
        };
        let current = st.file.clone();
        let outcome = parking_lot::MutexGuard::unlocked(st, || -> Result<Flushed> {
            let new_file = if rotate {
                Some(create_file(&self.dir, first_seq)?)
            } else {
                None
            };
            let target: &WalFile = match &new_file {
                Some((f, _)) => f,
                None => &current,
            };
            let tail = target.write_durably(&tail, &buf, at, zero_to)?;
            Ok((new_file, tail))
        });
        match outcome {
            Ok((new_file, tail)) => {
                if let Some((file, path)) = new_file {
                    st.file = Arc::new(file);
                    st.files.push((first_seq, path));
                }
                st.tail = tail;
                st.file_len = end;
                st.file_zeroed = zeroed.max(zero_to).max(round_up(end));
                st.durable_seq = upto;
                st.stats.records += upto + 1 - first_seq;
                st.stats.bytes += len;
                st.stats.writes += 1;
                // Published without the lock: the wake-ups are system calls, and
                // writers queueing their records wait for it (no other flush starts
                // while this one is `flushing`, so publication stays in order).
                parking_lot::MutexGuard::unlocked(st, || self.visibility.durable(upto));
            }
            Err(e) => {
                tracing::error!(error = %e, "WAL write failed; refusing further writes");
                let why = format!("an earlier WAL write failed ({e})");
                self.visibility.failed(&why);
                st.poisoned = Some(why);
            }
        }
        st.flushing = false;
        self.flushed.notify_all();
        // Records that came in during the flush go next, by the flusher if it waits. A
        // flusher gathering records stops: another thread wrote them.
        if (!st.buf.is_empty() && st.flusher_idle) || st.gather_target > 0 {
            st.flusher_idle = false;
            st.gather_target = 0;
            self.work.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> WalOp {
        WalOp::Put {
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn count_ops_round_trip_with_their_sign() {
        for delta in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(delta)), delta);
            let ops = [WalOp::Count {
                collection: u32::MAX,
                delta,
            }];
            let mut out = Vec::new();
            encode_record(7, &ops, &mut out);
            let rec = decode_payload(&out[8..]).unwrap();
            assert_eq!(rec.ops, ops);
        }
    }

    #[test]
    fn records_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        assert_eq!(wal.append(&[put("a", "1")]).unwrap(), 1);
        assert_eq!(
            wal.append(&[put("b", "2"), WalOp::Delete { key: b"a".to_vec() }])
                .unwrap(),
            2
        );
        drop(wal);
        let r = replay(dir.path(), 0).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[1].ops[1], WalOp::Delete { key: b"a".to_vec() });
        assert_eq!(r.max_seq, 2);
        assert!(r.truncated.is_none());
        // Records at or below the flushed sequence number are skipped.
        assert_eq!(replay(dir.path(), 1).unwrap().records.len(), 1);
    }

    #[test]
    fn torn_tail_is_cut_at_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        for i in 0..5 {
            wal.append(&[put(&format!("k{i}"), "value")]).unwrap();
        }
        drop(wal);
        let (_, path) = list_files(dir.path()).unwrap().pop().unwrap();
        // The records, without the zero-filled space after them.
        let mut full = std::fs::read(&path).unwrap();
        full.truncate(scan_file(&path).unwrap().good_len as usize);
        // Every cut inside the last record leaves the first four.
        let record_len = full.len() / 5;
        for cut in (full.len() - record_len + 1)..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let r = replay(dir.path(), 0).unwrap();
            assert_eq!(r.records.len(), 4, "cut at {cut}");
            assert!(r.truncated.is_some());
            assert_eq!(
                std::fs::metadata(&path).unwrap().len() as usize,
                full.len() - record_len
            );
        }
        // A flipped byte in the last record is a checksum failure.
        let mut bad = full.clone();
        let last = bad.len() - 2;
        bad[last] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let r = replay(dir.path(), 0).unwrap();
        assert_eq!(r.records.len(), 4);
        assert!(r.truncated.unwrap().contains("checksum mismatch"));
    }

    #[test]
    fn files_are_zero_filled_ahead_and_the_zeros_end_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1, 4 * ZERO_AHEAD).unwrap();
        for i in 0..3 {
            wal.append(&[put(&format!("k{i}"), "value")]).unwrap();
        }
        drop(wal);
        let (_, path) = list_files(dir.path()).unwrap().pop().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let scan = scan_file(&path).unwrap();
        assert_eq!(scan.records.len(), 3);
        assert!(scan.stopped.is_none(), "{:?}", scan.stopped);
        // The file grew once, by the first record and ZERO_AHEAD.
        assert!(bytes.len() as u64 > ZERO_AHEAD, "{}", bytes.len());
        assert!(bytes[scan.good_len as usize..].iter().all(|b| *b == 0));
        let r = replay(dir.path(), 0).unwrap();
        assert_eq!(r.records.len(), 3);
        assert!(r.truncated.is_none());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes.len() as u64);

        // Reopened, the log starts a new file after them, and both read back.
        let wal = Wal::open(dir.path(), 4, 4 * ZERO_AHEAD).unwrap();
        wal.append(&[put("k3", "value")]).unwrap();
        drop(wal);
        let r = replay(dir.path(), 0).unwrap();
        assert_eq!(r.records.len(), 4);
        assert!(r.truncated.is_none());

        // Data in the zeros after the records is a damaged tail: reported and cut.
        let (_, last) = list_files(dir.path()).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&last).unwrap();
        let end = scan_file(&last).unwrap().good_len as usize;
        bytes[end + 100] = 7;
        std::fs::write(&last, &bytes).unwrap();
        let r = replay(dir.path(), 0).unwrap();
        assert_eq!(r.records.len(), 4);
        assert!(
            r.truncated
                .unwrap()
                .contains("after the end of the records")
        );
        assert_eq!(std::fs::metadata(&last).unwrap().len() as usize, end);
    }

    #[test]
    fn corruption_before_a_later_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        wal.append(&[put("a", "1")]).unwrap();
        wal.rotate().unwrap();
        wal.append(&[put("b", "2")]).unwrap();
        drop(wal);
        let files = list_files(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        let mut bytes = std::fs::read(&files[0].1).unwrap();
        bytes[9] ^= 0xff;
        std::fs::write(&files[0].1, &bytes).unwrap();
        assert!(matches!(replay(dir.path(), 0), Err(Error::Corruption(_))));
    }

    #[test]
    fn group_commit_from_many_threads_keeps_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::open(dir.path(), 1, 4096).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| wal.append(&[put(&format!("{t}-{i}"), "v")]).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        seqs.sort();
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
        assert!(wal.file_count() > 1, "small segment size rotates files");
        drop(wal);
        let r = replay(dir.path(), 0).unwrap();
        let mut got: Vec<u64> = r.records.iter().map(|r| r.seq).collect();
        got.sort();
        assert_eq!(got, seqs);
    }

    #[test]
    fn a_failed_write_poisons_the_log() {
        // The WAL file is /dev/full: every write fails with ENOSPC.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join(file_name(1))).unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        let first = wal.append(&[put("a", "1")]).unwrap_err();
        assert!(matches!(first, Error::ReadOnly(_)), "{first:?}");
        assert!(wal.poisoned().is_some());
        // Later writes are refused without touching the file again.
        let second = wal.append(&[put("b", "2")]).unwrap_err();
        assert!(
            second.to_string().contains("earlier WAL write failed"),
            "{second}"
        );
        assert!(wal.rotate().is_err());
    }

    #[test]
    fn the_flusher_thread_makes_queued_records_durable_or_reports_its_failure() {
        use std::future::Future;
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        let seqs: Vec<u64> = (0..20)
            .map(|i| wal.enqueue(&[put(&format!("k{i}"), "v")], &mut |_| Ok(()), true))
            .collect::<Result<_>>()
            .unwrap();
        for &seq in &seqs {
            wal.visibility().applied(seq);
        }
        // Nobody waits: the flusher thread writes them, and publication follows.
        assert!(
            wal.visibility()
                .wait(20, std::time::Duration::from_secs(10))
        );
        drop(wal);
        assert_eq!(replay(dir.path(), 0).unwrap().records.len(), 20);

        // The WAL file is /dev/full: the flusher's write fails.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join(file_name(1))).unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        let seq = wal
            .enqueue(&[put("a", "1")], &mut |_| Ok(()), true)
            .unwrap();
        wal.visibility().applied(seq);
        let mut published = wal.visibility().published_future(seq);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while wal.poisoned().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the write never failed"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::Pin::new(&mut published).poll(&mut cx) {
            std::task::Poll::Ready(Err(Error::ReadOnly(why))) => {
                assert!(why.contains("WAL write failed"), "{why}")
            }
            other => panic!("expected the WAL's failure, got {other:?}"),
        }
        assert_eq!(wal.visibility().published(), 0);
        assert!(wal.wait_durable(seq).is_err());
    }

    #[test]
    fn the_commit_delay_waits_for_half_as_many_records_as_the_last_flush_carried() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        // Far longer than the test: whatever is written, is written without waiting it out.
        wal.set_commit_delay(Duration::from_secs(600));
        let mut next = 0usize;
        let mut queue = |background: bool| {
            let seq = wal
                .enqueue(
                    &[put(&format!("k{next}"), "v")],
                    &mut |_| Ok(()),
                    background,
                )
                .unwrap();
            next += 1;
            wal.visibility().applied(seq);
            seq
        };
        let published = |seq: u64, within: Duration| wal.visibility().wait(seq, within);
        // One flush of `n` records (the writer's own).
        let flush_of = |n: usize, queue: &mut dyn FnMut(bool) -> u64| {
            for _ in 0..n {
                queue(false);
            }
            wal.sync().unwrap();
        };

        // After a flush of five records the flusher waits for three; a fourth record
        // goes in the same write.
        flush_of(5, &mut queue);
        let first = queue(true);
        let second = queue(true);
        assert!(
            !published(second, Duration::from_millis(300)),
            "two records were written after a flush of five"
        );
        assert!(!published(first, Duration::from_millis(1)));
        let third = queue(true);
        assert!(
            published(third, Duration::from_secs(30)),
            "three records were held back"
        );

        // After a flush of one record (or two), a lone writer is not held back.
        for n in [1, 2] {
            flush_of(n, &mut queue);
            let lone = queue(true);
            assert!(
                published(lone, Duration::from_secs(30)),
                "a lone writer waited after a flush of {n}"
            );
        }

        // A writer that waits for its record writes it at once, gathering or not.
        flush_of(4, &mut queue);
        let held = queue(true);
        assert!(!published(held, Duration::from_millis(100)));
        wal.wait_durable(held).unwrap();
        assert!(published(held, Duration::from_secs(30)));
        // ... and the flusher stops gathering: the next record, one of the two it waited
        // for, is written without its partner.
        let after = queue(true);
        assert!(
            published(after, Duration::from_secs(30)),
            "the flusher kept waiting"
        );

        // Closing the log while the flusher gathers writes what it held.
        flush_of(4, &mut queue);
        queue(true);
        drop(wal);
        assert_eq!(replay(dir.path(), 0).unwrap().records.len(), next);
    }

    #[test]
    fn direct_and_buffered_writes_leave_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (created, _) = create_file(dir.path(), 1).unwrap();
        let buffered = WalFile {
            file: File::create(dir.path().join("buffered")).unwrap(),
            direct: false,
        };
        for wal in [&created, &buffered] {
            // Records of odd sizes, so that flushes start and end inside blocks and
            // cross block boundaries; the zeroed space grows twice.
            let mut expected: Vec<u8> = Vec::new();
            let (mut tail, mut zeroed) = (Vec::new(), 0u64);
            for i in 0..300u64 {
                let records: Vec<u8> = (0..(i * 37 % 900 + 1)).map(|b| (b + i) as u8 | 1).collect();
                let at = expected.len() as u64;
                let end = at + records.len() as u64;
                let zero_to = match end > zeroed {
                    true => round_up(end + 64 * 1024),
                    false => 0,
                };
                if wal.direct {
                    assert_eq!(tail.len() as u64, at % BLOCK);
                }
                tail = wal.write_durably(&tail, &records, at, zero_to).unwrap();
                zeroed = zeroed.max(zero_to);
                expected.extend_from_slice(&records);
            }
            let mut bytes = Vec::new();
            File::open(dir.path().join(match wal.direct {
                true => file_name(1),
                false => "buffered".into(),
            }))
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
            assert_eq!(
                &bytes[..expected.len()],
                &expected[..],
                "direct: {}",
                wal.direct
            );
            assert!(bytes[expected.len()..].iter().all(|b| *b == 0));
            assert_eq!(bytes.len() as u64 % BLOCK, 0);
        }
    }

    #[test]
    fn flushed_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1, 1 << 20).unwrap();
        wal.append(&[put("a", "1")]).unwrap();
        let last = wal.rotate().unwrap();
        assert_eq!(last, 1);
        wal.append(&[put("b", "2")]).unwrap();
        assert_eq!(wal.remove_flushed(1).unwrap(), 1);
        assert_eq!(wal.file_count(), 1);
        let r = replay(dir.path(), 0).unwrap();
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].seq, 2);
    }
}
