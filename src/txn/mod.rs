//! Multi-document transactions: serializable isolation by snapshot reads and optimistic
//! validation at commit, with the commit written as one WAL record.
//!
//! # How a transaction runs
//!
//! * **Reads** see a [`Snapshot`] taken at BEGIN (a gapless prefix of the WAL, see
//!   [`crate::storage::visibility`]) with the transaction's own pending writes laid over
//!   it ([`ReadView`]). Nothing another session does becomes visible mid-transaction, so
//!   every statement of the transaction, even of one that later fails to commit, sees one
//!   consistent state.
//! * **Writes** are buffered in the transaction ([`TxnData`]) and reach storage only at
//!   COMMIT, as a single WAL record holding every document, index entry and schema
//!   change: recovery replays it whole or not at all, and ROLLBACK just forgets it.
//! * **Reads are remembered**: each document read by key, with a fingerprint of the
//!   version seen (absent included), and each collection read by a scan (full or index).
//! * **COMMIT validates** under the key locks of everything read and written: every
//!   document read must still be the version seen; then, under the WAL's ordering lock
//!   (so in commit order), no collection scanned may have been written by a batch after
//!   the snapshot. A transaction that fails either check fails with 40001 and writes
//!   nothing; the client retries it.
//!
//! # Why optimistic, and why it is serializable
//!
//! Two-phase locking would make readers wait for writers (and autocommit scans wait for
//! every open transaction) and needs deadlock detection. Here readers never wait and
//! nothing deadlocks: commit takes its key stripes in one sorted order and holds no lock
//! between statements, so 40P01 cannot happen; conflicts surface as 40001 instead.
//!
//! Every committed write batch is equivalent to running all at once at its position in
//! the WAL: its point reads are re-checked under locks held until the batch is
//! applied, and its scans are checked against every batch sequenced before it. Readers
//! see prefixes of that same order. So the history is equivalent to the serial order of
//! the WAL, which rules out lost updates, write skew (both transactions read what the
//! other writes: the second to commit finds a changed version) and phantoms (a scan
//! conflicts with any later write to the collection). Scan conflicts are tracked per
//! collection, not per range: coarser than PostgreSQL's predicate locks, so a scan
//! aborts on writes to rows it did not read (a retry succeeds).
//!
//! Autocommit statements are one-statement transactions by a simpler path: a
//! modifying statement re-reads its rows under their key locks and writes them in one
//! batch (PostgreSQL's READ COMMITTED rule for UPDATE), and registers its writes so that
//! open transactions that scanned the collection notice them.
//!
//! # Limits
//!
//! `max_transaction_size` bytes of buffered documents (54000 beyond) and
//! `max_transaction_duration` seconds (25P04: the transaction is rolled back). A held
//! snapshot keeps frozen memtables and removed segment files alive; the duration limit
//! bounds that.

mod view;

pub use view::{KeyedDocuments, ReadView};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::catalog::{DocWrite, WriteGroup};
use crate::database::Database;
use crate::doc::{Object, binary};
use crate::error::{Error, Result, SqlState};
use crate::storage::Snapshot;

/// The last WAL sequence number that wrote each collection; see the module doc.
#[derive(Default)]
pub struct Conflicts {
    last_write: Mutex<HashMap<u32, u64>>,
}

/// What a committing transaction read by scanning, to check against later writes.
#[derive(Clone, Copy, Debug)]
pub struct ScanCheck<'a> {
    /// Collections the transaction scanned.
    pub scanned: &'a [u32],
    /// The sequence number of its snapshot.
    pub snapshot: u64,
}

impl Conflicts {
    /// Checks `check` (if any) and records that batch `seq` writes `written`. Called in
    /// sequence order, under the WAL's ordering lock.
    pub fn register(&self, seq: u64, written: &[u32], check: Option<ScanCheck<'_>>) -> Result<()> {
        let mut last = self.last_write.lock();
        if let Some(c) = check {
            for cid in c.scanned {
                if last.get(cid).is_some_and(|&s| s > c.snapshot) {
                    return Err(serialization_failure(
                        "a collection the transaction read was written since it began",
                    ));
                }
            }
        }
        for cid in written {
            last.insert(*cid, seq);
        }
        Ok(())
    }

    /// The sequence number of the last batch that wrote collection `cid` (0: none since
    /// the server started).
    pub fn last_write(&self, cid: u32) -> u64 {
        self.last_write.lock().get(&cid).copied().unwrap_or(0)
    }
}

/// 40001, with PostgreSQL's wording and the reason.
pub fn serialization_failure(why: &str) -> Error {
    Error::conflict(
        SqlState::SERIALIZATION_FAILURE,
        format!(
            "could not serialize access due to concurrent update ({why}); retry the transaction"
        ),
    )
}

/// A write waiting for COMMIT.
#[derive(Clone, Debug)]
pub struct PendingWrite {
    pub collection: String,
    pub cid: u32,
    pub id: String,
    /// The new version; None deletes.
    pub new: Option<Object>,
}

/// What a transaction read and wrote; shared with the statements running in it.
#[derive(Default)]
pub struct TxnData {
    /// Pending writes by document key.
    writes: BTreeMap<Vec<u8>, PendingWrite>,
    /// For ROLLBACK TO SAVEPOINT: each write's key and what it replaced, in order.
    undo: Vec<(Vec<u8>, Option<PendingWrite>)>,
    /// Documents read by key: the fingerprint of the version seen (None: absent).
    reads: HashMap<Vec<u8>, Option<u64>>,
    /// Collections read by a scan.
    scanned: HashSet<u32>,
    /// Bytes of the pending documents (approximate, encoded size).
    bytes: u64,
    /// Whether a write went to a schemaless collection (stays set after ROLLBACK TO
    /// SAVEPOINT): the transaction's statements then see its observed fields widened.
    wrote_schemaless: bool,
}

impl TxnData {
    fn wrote(&self, cid: u32) -> bool {
        self.writes.values().any(|w| w.cid == cid)
    }
}

/// The fingerprint of a document version, for validation.
fn fingerprint(doc: &Option<Object>) -> Option<u64> {
    doc.as_ref()
        .map(|d| xxhash_rust::xxh3::xxh3_64(&binary::encode_object(d)))
}

/// An open transaction. See the module doc.
pub struct Transaction {
    snapshot: Snapshot,
    started: Instant,
    read_only: bool,
    data: Arc<Mutex<TxnData>>,
    /// Savepoint names and the undo log length when each was set, oldest first.
    savepoints: Vec<(String, usize)>,
}

impl Transaction {
    /// Starts a transaction reading the database as of now.
    pub fn begin(db: &Database, read_only: bool) -> Transaction {
        Transaction {
            snapshot: db.storage().snapshot(),
            started: Instant::now(),
            read_only,
            data: Arc::new(Mutex::new(TxnData::default())),
            savepoints: Vec::new(),
        }
    }

    /// The view statements of this transaction read through.
    pub fn view(&self) -> ReadView {
        ReadView::new(self.snapshot.clone(), Some(self.data.clone()))
    }

    /// The sequence number of the snapshot the transaction reads.
    pub fn snapshot_seq(&self) -> u64 {
        self.snapshot.seq()
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Collections this transaction has written (their indexes do not know the pending
    /// writes, so the planner must not use them).
    pub fn written_collections(&self) -> Vec<u32> {
        let d = self.data.lock();
        let mut out: Vec<u32> = d.writes.values().map(|w| w.cid).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds to a schemaless collection's observed fields those its pending writes bring
    /// (the catalog learns them at COMMIT), so the transaction's statements see them.
    pub fn widen(&self, c: &mut crate::catalog::Collection) {
        if c.kind != crate::catalog::Kind::Schemaless {
            return;
        }
        let d = self.data.lock();
        // In the order the writes were made, as the catalog would have seen them.
        let mut seen = std::collections::HashSet::new();
        let news: Vec<&Object> = d
            .undo
            .iter()
            .filter(|(k, _)| seen.insert(k.as_slice()))
            .filter_map(|(k, _)| d.writes.get(k))
            .filter(|w| w.cid == c.id)
            .filter_map(|w| w.new.as_ref())
            .collect();
        if let Some(observed) = crate::catalog::observe(&c.observed, &news) {
            c.observed = observed;
        }
        if let Some(nested) = crate::catalog::observe_nested(&c.nested, &news) {
            c.nested = nested;
        }
    }

    /// Notes a write to a schemaless collection (see [`Transaction::wrote_schemaless`]).
    pub fn note_schemaless_write(&self) {
        self.data.lock().wrote_schemaless = true;
    }

    /// Whether the transaction has written to a schemaless collection, so that what its
    /// statements see of that collection's fields may differ from the catalog's (see
    /// [`Transaction::widen`]). After ROLLBACK TO SAVEPOINT it may say so needlessly.
    pub fn wrote_schemaless(&self) -> bool {
        self.data.lock().wrote_schemaless
    }

    /// 25P04 once the transaction has been open longer than `max`.
    pub fn check_duration(&self, max: Duration) -> Result<()> {
        if self.started.elapsed() > max {
            return Err(Error::invalid(
                SqlState::TRANSACTION_TIMEOUT,
                format!(
                    "transaction open longer than max_transaction_duration ({} s); it was rolled back",
                    max.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// Buffers writes (25006 in a READ ONLY transaction; 54000 past `max_bytes`).
    pub fn buffer(&self, writes: Vec<(Vec<u8>, PendingWrite)>, max_bytes: u64) -> Result<()> {
        if self.read_only {
            return Err(Error::invalid(
                SqlState::READ_ONLY_SQL_TRANSACTION,
                "cannot execute a write in a read-only transaction",
            ));
        }
        let added: u64 = writes
            .iter()
            .map(|(k, w)| {
                k.len() as u64
                    + w.new
                        .as_ref()
                        .map_or(0, |d| binary::encode_object(d).len() as u64)
            })
            .sum();
        let mut d = self.data.lock();
        if d.bytes + added > max_bytes {
            return Err(Error::limit(format!(
                "transaction would write more than max_transaction_size ({max_bytes} bytes)"
            )));
        }
        d.bytes += added;
        for (key, w) in writes {
            let before = d.writes.insert(key.clone(), w);
            d.undo.push((key, before));
        }
        Ok(())
    }

    /// `SAVEPOINT name` (a name may be reused; the newest one counts).
    pub fn savepoint(&mut self, name: &str) {
        let at = self.data.lock().undo.len();
        self.savepoints.push((name.to_string(), at));
    }

    fn find_savepoint(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| {
                Error::invalid(
                    SqlState::INVALID_SAVEPOINT,
                    format!("savepoint \"{name}\" does not exist"),
                )
            })
    }

    /// `ROLLBACK TO SAVEPOINT name`: undoes the writes made since, keeping the savepoint.
    /// What was read since stays remembered (validating it is harmless).
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        let pos = self.find_savepoint(name)?;
        let at = self.savepoints.get(pos).map_or(0, |(_, at)| *at);
        self.savepoints.truncate(pos + 1);
        let mut d = self.data.lock();
        while d.undo.len() > at {
            let Some((key, before)) = d.undo.pop() else {
                break;
            };
            match before {
                Some(w) => {
                    d.writes.insert(key, w);
                }
                None => {
                    d.writes.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// `RELEASE SAVEPOINT name`: forgets it and every later one.
    pub fn release(&mut self, name: &str) -> Result<()> {
        let pos = self.find_savepoint(name)?;
        self.savepoints.truncate(pos);
        Ok(())
    }

    /// Validates and writes the transaction (see the module doc); 40001 if another
    /// commit got in its way, in which case nothing is written.
    pub fn commit(self, db: &Database) -> Result<()> {
        let mut d = std::mem::take(&mut *self.data.lock());
        if d.writes.is_empty() {
            // A read-only transaction read one snapshot: a prefix of the commit order.
            return Ok(());
        }
        let storage = db.storage();
        let _locks = db.lock_keys(d.reads.keys().chain(d.writes.keys()).map(Vec::as_slice));
        for (key, seen) in &d.reads {
            if fingerprint(&storage.get(key)?) != *seen {
                return Err(serialization_failure(
                    "a document the transaction read was changed by another",
                ));
            }
        }
        // In the order the writes were made, so that new fields join the catalog in the
        // order the transaction saw them.
        let mut groups: BTreeMap<(String, u32), Vec<DocWrite>> = BTreeMap::new();
        let undo = std::mem::take(&mut d.undo);
        for (key, _) in undo {
            let Some(w) = d.writes.remove(&key) else {
                continue;
            };
            let old = storage.get(&key)?;
            groups
                .entry((w.collection, w.cid))
                .or_default()
                .push(DocWrite {
                    id: w.id,
                    key,
                    old,
                    new: w.new,
                });
        }
        let groups = groups
            .into_iter()
            .map(|((collection, cid), writes)| WriteGroup {
                collection,
                cid: Some(cid),
                writes,
            })
            .collect();
        let scanned: Vec<u32> = d.scanned.into_iter().collect();
        // A scan already overtaken fails now, as it would when the batch is sequenced
        // (and before the write door's own checks, which would report the same conflict
        // as a constraint violation).
        let conflicts = db.catalog().conflicts();
        if scanned
            .iter()
            .any(|cid| conflicts.last_write(*cid) > self.snapshot.seq())
        {
            return Err(serialization_failure(
                "a collection the transaction read was written since it began",
            ));
        }
        db.catalog().write_batch(
            groups,
            Some(ScanCheck {
                scanned: &scanned,
                snapshot: self.snapshot.seq(),
            }),
        )
    }
}
