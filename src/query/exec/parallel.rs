//! Parallel execution: which parts of a plan run on several threads, and the worker
//! threads they may take.
//!
//! An aggregate straight over a full scan of a large collection, outside a transaction,
//! cuts the scan by key into parts (see [`crate::storage::Snapshot::split_points`]) and
//! groups each part on its own thread ([`super::aggregate::build_parallel`]). A full
//! scan with a filter is cut the same way, its parts filtered on their threads and their
//! rows handed back in key order ([`in_order`]), as a serial scan gives them; under an
//! `ORDER BY ... LIMIT n` each part keeps its own best `n` rows ([`top_parts`]). A join
//! whose left side is such a scan reads its right side once and joins each part of the
//! left on its thread ([`join_parts`]), and a DISTINCT over a projection of either
//! groups its parts like an aggregate ([`distinct_parts`]). Workers
//! come from one pool of slots for the whole server, one fewer than the machine's cores,
//! so that concurrent statements do not oversubscribe it: a statement that finds no free
//! slot runs serially, as it would with `max_parallel_workers_per_gather = 0`, the
//! session setting that caps the workers of one statement (as in PostgreSQL; default 2).
//! Plans and EXPLAIN do not change; EXPLAIN ANALYZE shows `Workers Launched: n` under
//! an operator that ran in parallel, and counts the rows of all parts of its scan.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, mpsc};

use parking_lot::Mutex;

use super::scan::Scanned;
use super::{ExecContext, RowIter, aggregate, join, scan};
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::{AggCall, Expr};
use crate::query::optimizer::has_subquery;
use crate::query::plan::{Access, JoinKind, Node, SortKey};
use crate::storage::keys;

/// Documents a collection needs before its scans run in parallel: below this, starting
/// a thread costs about as much as it saves.
pub const PARALLEL_MIN_DOCUMENTS: u64 = 20_000;

/// The most worker threads a statement may take (`max_parallel_workers_per_gather`).
pub const MAX_WORKERS_PER_STATEMENT: usize = 64;

/// Worker slots taken by running statements.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// Worker slots of the whole server: one fewer than the cores.
fn slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .saturating_sub(1)
    })
}

/// Work handed to a worker thread.
type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on one of the server's worker threads (started on first use, one per
/// slot, and kept: a fresh thread per statement costs a cold cache and allocator) and hands back where its result will arrive. The caller must hold a slot
/// ([`Workers`]), so a job never waits for a thread. A job that panics sends nothing;
/// its thread lives on.
pub fn run_on_worker<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..slots().max(1) {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("tissdb-worker-{i}"))
                .spawn(move || {
                    loop {
                        let Ok(job) = rx.lock().recv() else {
                            return;
                        };
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
        }
        Mutex::new(tx)
    });
    let (done, result) = mpsc::sync_channel(1);
    let _ = queue.lock().send(Box::new(move || {
        let _ = done.send(job());
    }));
    result
}

/// Worker slots held by one statement, given back when dropped.
#[derive(Debug)]
pub struct Workers(usize);

impl Workers {
    /// Takes up to `wanted` free slots (none when all are busy).
    pub fn take(wanted: usize) -> Workers {
        let mut busy = BUSY.load(Ordering::Relaxed);
        loop {
            let n = wanted.min(slots().saturating_sub(busy));
            if n == 0 {
                return Workers(0);
            }
            match BUSY.compare_exchange_weak(busy, busy + n, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Workers(n),
                Err(now) => busy = now,
            }
        }
    }

    pub fn count(&self) -> usize {
        self.0
    }

    /// Gives back all but `n` slots.
    fn keep(&mut self, n: usize) {
        if n < self.0 {
            BUSY.fetch_sub(self.0 - n, Ordering::AcqRel);
            self.0 = n;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if self.0 > 0 {
            BUSY.fetch_sub(self.0, Ordering::AcqRel);
        }
    }
}

/// The parts `aggregate` (an Aggregate node over `input` computing `aggs`) may read in
/// parallel, with the worker slots to hold while they run; None when it runs serially.
/// The input is a full scan, or a join over one ([`join_parts`]; an error reading the
/// join's right side comes in place of the parts).
pub fn aggregate_parts(
    aggregate: &Node,
    input: &Node,
    aggs: &[AggCall],
    ctx: &Arc<ExecContext>,
) -> Option<Result<(Vec<Scanned>, Workers)>> {
    if !aggregate::mergeable(aggs) || aggregate.has_subqueries() {
        return None;
    }
    match input {
        Node::Join { .. } => {
            join_parts(input, ctx, None, &mut |n| super::build(n, ctx)).map(|parts| {
                parts.map(|(parts, workers)| {
                    (parts.into_iter().map(Scanned::Rows).collect(), workers)
                })
            })
        }
        _ => full_scan_parts_scanned(input, ctx).map(Ok),
    }
}

/// The parts of a parallel DISTINCT, the worker slots they hold, and the expressions
/// they are grouped by.
pub type DistinctParts = (Vec<RowIter>, Workers, Vec<Expr>);

/// The parts a DISTINCT over `project` (a projection of a large full scan, or of a join
/// over one) may group in parallel, with the worker slots and the projection's
/// expressions to group by; None when it runs serially (and under EXPLAIN ANALYZE).
pub fn distinct_parts(project: &Node, ctx: &Arc<ExecContext>) -> Option<Result<DistinctParts>> {
    let Node::Project { input, exprs, .. } = project else {
        return None;
    };
    if ctx.analyze.is_some() || project.has_subqueries() {
        return None;
    }
    let parts = match &**input {
        Node::Join { .. } => join_parts(input, ctx, None, &mut |n| super::build(n, ctx))?,
        _ => Ok(full_scan_parts(input, ctx)?),
    };
    Some(parts.map(|(parts, workers)| (parts, workers, exprs.clone())))
}

/// The parts a scan with a filter (`scan`, read on its own, not under an aggregate) may
/// read in parallel, with the worker slots to hold while they run; None when it runs
/// serially. Only a filtered scan is cut: its parts pass few of the rows they read, so
/// that the reading, not the handing on, is what runs in parallel. (Cutting a scan
/// without a filter gained nothing: `SELECT *` of 100k rows ran 14.2 queries/s cut and
/// 15.6 not, a top-10 sort 28 and 32; the reader of the rows is the slower side.)
pub fn filtered_scan_parts(scan: &Node, ctx: &Arc<ExecContext>) -> Option<(Vec<RowIter>, Workers)> {
    match scan {
        Node::Scan {
            filter: Some(_), ..
        } if !scan.has_subqueries() => full_scan_parts(scan, ctx),
        _ => None,
    }
}

/// Most rows (LIMIT plus OFFSET) a top-N sort is cut into parts for: each part keeps
/// that many rows.
const TOP_PARTS_MAX_ROWS: usize = 10_000;

/// `ORDER BY ... LIMIT n` straight over a projection of a large full scan (with or
/// without a filter): each key range keeps its own best `n` rows on its thread (a
/// top-N sort of its projected rows), and those come back in key order, for the
/// caller's top-N sort to pick the best `n` of. Every row of the answer is among its
/// range's best `n` (fewer than `n` of its range come before it), and ties keep the
/// scan's order, so the answer is the serial one. None when the shape or the scan does
/// not allow it (outside EXPLAIN ANALYZE only, which counts the scan as its own).
pub fn top_parts(
    sorted: &Node,
    keys: &[SortKey],
    bound: Option<usize>,
    ctx: &Arc<ExecContext>,
) -> Option<RowIter> {
    let bound = bound.filter(|b| (1..=TOP_PARTS_MAX_ROWS).contains(b))?;
    let Node::Project {
        input: scan, exprs, ..
    } = sorted
    else {
        return None;
    };
    if ctx.analyze.is_some() || sorted.has_subqueries() {
        return None;
    }
    let (parts, workers) = full_scan_parts_scanned(scan, ctx)?;
    let parts = parts
        .into_iter()
        .map(|part| {
            let (exprs, keys, ctx) = (exprs.clone(), keys.to_vec(), ctx.clone());
            // Built on first use: on the thread that reads the part.
            let mut part = Some(part);
            let top: RowIter = Box::new(std::iter::once(()).flat_map(move |()| {
                let Some(part) = part.take() else {
                    return Box::new(std::iter::empty()) as RowIter;
                };
                let projected = super::project::build_scanned(part, exprs.clone(), &ctx);
                match super::sort::build_top(projected, keys.clone(), Some(bound), &ctx) {
                    Ok(rows) => rows,
                    Err(e) => Box::new(std::iter::once(Err(e))),
                }
            }));
            top
        })
        .collect();
    Some(in_order(parts, workers))
}

/// Batches a worker running a part of a join may have waiting: a join hands on many
/// of the rows it reads, and a part's rows are only taken once the parts before it are
/// done, so its worker runs ahead by up to this many batches before it waits.
const JOIN_BATCHES_AHEAD: usize = 64;

/// A join whose left side is a large full scan (or such a join again), of a kind that
/// joins each left row on its own (inner, left, semi, anti), cut into parts: the right
/// side is read and hashed once, on this thread (by `build_right`), and each part of
/// the left side is joined against it on its own thread; the rows come back in key
/// order, as the serial join gives them. A right side the serial join could read by
/// the left side's keys alone ([`join::probe_for`]) is read so here too
/// ([`probed_parts`]). None when the shape does not allow it; an error reading the
/// right side comes in place of the parts. Under EXPLAIN ANALYZE only a join straight
/// over a scan is cut: `slot` is then the join's operator number (its scan's is the
/// next).
pub fn join_parts(
    join: &Node,
    ctx: &Arc<ExecContext>,
    slot: Option<usize>,
    build_right: &mut dyn FnMut(&Node) -> Result<RowIter>,
) -> Option<Result<(Vec<RowIter>, Workers)>> {
    let Node::Join {
        left,
        right,
        kind,
        condition,
        equi,
    } = join
    else {
        return None;
    };
    let per_row = matches!(
        kind,
        JoinKind::Inner | JoinKind::Left | JoinKind::Semi | JoinKind::Anti
    );
    let reads_subqueries = condition
        .iter()
        .chain(equi.iter().flat_map(|(l, r)| [l, r]))
        .any(has_subquery);
    let analyzed = match (ctx.analyze.is_some(), slot, &**left) {
        (false, ..) => None,
        (true, Some(slot), Node::Scan { .. }) => Some(slot),
        (true, ..) => return None,
    };
    if !per_row || reads_subqueries {
        return None;
    }
    let (parts, workers) = match &**left {
        Node::Scan { .. } => full_scan_parts(left, ctx)?,
        Node::Join { .. } => {
            let mut build = |n: &Node| super::build(n, ctx);
            match join_parts(left, ctx, None, &mut build)? {
                Ok(parts) => parts,
                Err(e) => return Some(Err(e)),
            }
        }
        _ => return None,
    };
    let parts: Vec<RowIter> = match analyzed {
        Some(slot) => {
            super::note_workers(slot, workers.count(), ctx);
            parts
                .into_iter()
                .map(|p| super::measured(p, slot + 1, ctx))
                .collect()
        }
        None => parts,
    };
    let spec = join::JoinSpec::of(join)?;
    let probe = join::probe_for(*kind, right, equi).filter(|p| p.usable(ctx));
    let joined = match (probe, equi.first()) {
        (Some(probe), Some((left_key, _))) => {
            probed_parts(parts, &probe, left_key, &spec, right, build_right, ctx)
        }
        _ => build_right(right)
            .and_then(|rows| join::inner_side(rows, &spec, ctx))
            .map(|inner| {
                parts
                    .into_iter()
                    .map(|part| join::probe_with(part, inner.clone(), spec.clone(), ctx))
                    .collect()
            }),
    };
    Some(joined.map(|parts| (parts, workers)))
}

/// The parts of a join whose right side can be read by the left side's keys alone
/// ([`join::Probe`]), as the serial join does it: each part of the left side is read
/// on its thread while it holds few distinct keys ([`join::scout`], each part within
/// its share of the memory the serial join allows); if every part ended so, the right
/// side is read for the keys of all of them, else whole; then each part is joined
/// against it, its rows read so far first.
fn probed_parts(
    parts: Vec<RowIter>,
    probe: &join::Probe,
    left_key: &Expr,
    spec: &join::JoinSpec,
    right: &Node,
    build_right: &mut dyn FnMut(&Node) -> Result<RowIter>,
    ctx: &Arc<ExecContext>,
) -> Result<Vec<RowIter>> {
    let budget = ctx.memory_limit / 4 / parts.len().max(1);
    let mut parts = parts.into_iter();
    let first = parts.next();
    let others: Vec<_> = parts
        .map(|part| {
            let (key, ctx) = (left_key.clone(), ctx.clone());
            run_on_worker(move || join::scout(part, &key, budget, &ctx))
        })
        .collect();
    let mut scouted = Vec::with_capacity(others.len() + 1);
    if let Some(first) = first {
        scouted.push(join::scout(first, left_key, budget, ctx));
    }
    for other in others {
        scouted.push(other.recv().unwrap_or_else(|_| {
            Err(crate::error::Error::Internal(
                "a parallel worker failed".into(),
            ))
        }));
    }
    let scouted = scouted.into_iter().collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::HashSet::new();
    let mut keys = Vec::new();
    for (key, value) in scouted.iter().flat_map(|s| &s.keys) {
        if seen.insert(key.as_slice()) {
            keys.push(value.clone());
        }
    }
    let ended = scouted.iter().all(|s| s.rest.is_none());
    // Built either way, as the serial join builds it (EXPLAIN ANALYZE shows it unread).
    let whole = build_right(right)?;
    let rows = if ended && keys.len() <= join::PROBE_MAX_ROWS {
        join::probed_right(probe, keys, ctx)?
    } else {
        whole
    };
    let inner = join::inner_side(rows, spec, ctx)?;
    Ok(scouted
        .into_iter()
        .map(|s| join::probe_scouted(s, inner.clone(), spec.clone(), ctx))
        .collect())
}

/// [`in_order`] for the parts of a join ([`join_parts`]).
pub fn join_in_order(parts: Vec<RowIter>, workers: Workers) -> RowIter {
    in_order_ahead(parts, workers, JOIN_BATCHES_AHEAD)
}

/// A full scan of a large collection, outside a transaction, cut by key into parts for
/// the free worker slots.
fn full_scan_parts(input: &Node, ctx: &Arc<ExecContext>) -> Option<(Vec<RowIter>, Workers)> {
    let (parts, workers) = full_scan_parts_scanned(input, ctx)?;
    Some((parts.into_iter().map(Scanned::into_rows).collect(), workers))
}

/// [`full_scan_parts`], their rows lent where they come through a cursor.
fn full_scan_parts_scanned(
    input: &Node,
    ctx: &Arc<ExecContext>,
) -> Option<(Vec<Scanned>, Workers)> {
    let Node::Scan {
        collection,
        access: Access::Full,
        filter,
        read: Some(read),
        ..
    } = input
    else {
        return None;
    };
    let (ranges, workers) = key_ranges(collection.id, ctx)?;
    let parts = ranges
        .into_iter()
        .map(|range| scan::build_part(collection, filter.clone(), read, range, ctx))
        .collect();
    Some((parts, workers))
}

/// A key range of a collection.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The key ranges, in key order, a whole scan of collection `cid` is cut into for the
/// free worker slots (one more range than the slots taken): None for a small
/// collection, inside a transaction, or when no slot is free.
fn key_ranges(cid: u32, ctx: &Arc<ExecContext>) -> Option<(Vec<KeyRange>, Workers)> {
    if ctx.view.in_transaction()
        || ctx.planning.parallel_workers == 0
        || ctx.db.storage().document_count(cid) < PARALLEL_MIN_DOCUMENTS
    {
        return None;
    }
    let mut workers = Workers::take(ctx.planning.parallel_workers);
    if workers.count() == 0 {
        return None;
    }
    let start = keys::collection_start(cid);
    let end = keys::collection_end(cid)?;
    let cuts = ctx
        .view
        .snapshot()
        .split_points(&start, &end, workers.count() + 1);
    if cuts.is_empty() {
        return None;
    }
    workers.keep(cuts.len());
    let mut bounds = Vec::with_capacity(cuts.len() + 1);
    let mut from = Bound::Included(start);
    for cut in cuts {
        bounds.push((from, Bound::Excluded(cut.clone())));
        from = Bound::Included(cut);
    }
    bounds.push((from, Bound::Excluded(end)));
    Some((bounds, workers))
}

/// The documents of collection `cid` the statement sees, counted by their keys (no
/// document is read): through a cursor of no columns, which steps over entries in
/// place, or, inside a transaction that wrote in the range, its scan's keys. The key
/// ranges of a large collection are counted on worker threads.
pub fn count_documents(cid: u32, ctx: &Arc<ExecContext>) -> Result<i64> {
    let count = move |range: KeyRange, ctx: &ExecContext| -> Result<i64> {
        let mut n = 0i64;
        let no_columns = crate::storage::shape::Columns::new(Vec::new());
        if let Some(mut cursor) =
            ctx.view
                .cursor_range(cid, range.0.clone(), range.1.clone(), no_columns)
        {
            while cursor.advance()? {
                n += 1;
                if n % 4096 == 0 {
                    ctx.check_cancel()?;
                }
            }
            return Ok(n);
        }
        let keys =
            ctx.view
                .scan_range_shaped(cid, range.0, range.1, crate::storage::shape::Presence);
        for item in keys {
            let (key, ()) = item?;
            crate::storage::recycle::give_key(key);
            n += 1;
            if n % 4096 == 0 {
                ctx.check_cancel()?;
            }
        }
        Ok(n)
    };
    let Some((ranges, _workers)) = key_ranges(cid, ctx) else {
        let start = Bound::Included(keys::collection_start(cid));
        let end = keys::collection_end(cid).map_or(Bound::Unbounded, Bound::Excluded);
        return count((start, end), ctx);
    };
    let mut ranges = ranges.into_iter();
    let first = ranges.next();
    let others: Vec<_> = ranges
        .map(|range| {
            let ctx = ctx.clone();
            run_on_worker(move || count(range, &ctx))
        })
        .collect();
    let mut total = match first {
        Some(range) => count(range, ctx)?,
        None => 0,
    };
    for other in others {
        total += other.recv().unwrap_or_else(|_| {
            Err(crate::error::Error::Internal(
                "a parallel worker failed".into(),
            ))
        })?;
    }
    Ok(total)
}

/// Rows a worker hands over at a time.
const BATCH_ROWS: usize = 256;
/// Batches a worker may have waiting before it waits for the reader.
const BATCHES_AHEAD: usize = 4;

/// The rows of `parts`, in part order (the order a serial scan gives): the first part
/// is read on this thread as the rows are asked for, the others on worker threads at
/// once, each handing its rows over in batches and waiting when [`BATCHES_AHEAD`] are
/// not taken yet. Dropping the iterator (a LIMIT satisfied) stops the workers at their
/// next batch; an error of a part comes in its place and ends the rows.
pub fn in_order(parts: Vec<RowIter>, workers: Workers) -> RowIter {
    in_order_ahead(parts, workers, BATCHES_AHEAD)
}

/// [`in_order`] with workers running up to `ahead` batches ahead of the reader.
fn in_order_ahead(parts: Vec<RowIter>, workers: Workers, ahead: usize) -> RowIter {
    let mut parts = parts.into_iter();
    let first = parts.next();
    let rest = parts
        .map(|part| {
            let (tx, rx) = mpsc::sync_channel::<Result<Vec<Row>>>(ahead);
            let _ = run_on_worker(move || {
                let mut batch = Vec::with_capacity(BATCH_ROWS);
                for row in part {
                    match row {
                        Ok(row) => {
                            batch.push(row);
                            if batch.len() == BATCH_ROWS
                                && tx.send(Ok(std::mem::take(&mut batch))).is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch));
                }
            });
            rx
        })
        .collect();
    Box::new(InOrder {
        first,
        rest,
        batch: Vec::new().into_iter(),
        _workers: workers,
    })
}

struct InOrder {
    first: Option<RowIter>,
    rest: VecDeque<mpsc::Receiver<Result<Vec<Row>>>>,
    batch: std::vec::IntoIter<Row>,
    _workers: Workers,
}

impl Iterator for InOrder {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        loop {
            if let Some(row) = self.batch.next() {
                return Some(Ok(row));
            }
            if let Some(first) = &mut self.first {
                match first.next() {
                    Some(row) => return Some(row),
                    None => self.first = None,
                }
                continue;
            }
            match self.rest.front()?.recv() {
                Ok(Ok(rows)) => self.batch = rows.into_iter(),
                Ok(Err(e)) => {
                    self.rest.clear();
                    return Some(Err(e));
                }
                // That part is done.
                Err(_) => {
                    self.rest.pop_front();
                }
            }
        }
    }
}
