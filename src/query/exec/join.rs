//! Join: a hash join when the optimizer found equalities between the two sides, a
//! nested loop otherwise. Semi- and anti-joins give each left row once if some right
//! row matches (semi) or none does (anti). The right side is read into memory first (within
//! `query_memory_limit`); left rows then stream through. Outer joins pad the side
//! without a match with NULLs: a left row as soon as it found none, unmatched right rows
//! once the left side is done. A NULL key never matches (SQL's `=`).
//!
//! **Index probe**: when the right side is a collection scan and the one join key on
//! its side is the document key or the first field of an index ([`probe_for`]), the
//! join first reads the left side while its rows hold at most [`PROBE_MAX_ROWS`]
//! distinct keys (and take at most a quarter of `query_memory_limit`). If the left side
//! ends within that, only the right documents matching those keys are read — by key
//! lookups or one index range per key — instead of the whole collection (an index
//! nested-loop join, batched, each key looked up once however many left rows hold it).
//! Otherwise the join falls back to the full hash join.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{ExecContext, RowIter, group_key, row_size};
use crate::catalog::{Collection, IndexDef};
use crate::doc::Value;
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::Expr;
use crate::query::plan::{Access, IndexAccess, IndexOrder, JoinKind, Node, Pin};
use crate::query::predicate::Predicate;

/// Most distinct left keys an index probe looks up; beyond, the join reads the whole
/// right side. (The planner counts left rows against it: at most as many keys.)
pub const PROBE_MAX_ROWS: usize = 1024;

/// How the right side of a join can be read by its join key alone.
#[derive(Clone, Debug)]
pub enum ProbeKey {
    /// The key is the document key (a schemaless `id`, a table's primary key).
    DocumentKey,
    /// The key is the first field of this index.
    Index(IndexDef),
}

/// A right side that can be probed by key (see the module doc).
#[derive(Clone, Debug)]
pub struct Probe {
    pub collection: Collection,
    pub key: ProbeKey,
    /// The right scan's own filter.
    pub filter: Option<Expr>,
    /// The columns the right scan reads (its filter's included; None: all): only
    /// those are decoded from each document the probe reads.
    pub read: Option<Vec<usize>>,
    /// Whether the index's entries hold every column the right scan reads (its filter's
    /// included): the probe then reads no document.
    pub covering: bool,
}

impl Probe {
    /// Whether the statement can read the right side this way: an index that lacks the
    /// transaction's view cannot be probed.
    pub fn usable(&self, ctx: &ExecContext) -> bool {
        !matches!(self.key, ProbeKey::Index(_))
            || ctx
                .view
                .index_usable(self.collection.id, ctx.db.catalog().conflicts())
    }
}

/// The probe a join can use, if any: an inner or left join on one equality whose right
/// expression is the document key or an index's first field of a plain collection scan.
pub fn probe_for(kind: JoinKind, right: &Node, equi: &[(Expr, Expr)]) -> Option<Probe> {
    if !matches!(
        kind,
        JoinKind::Inner | JoinKind::Left | JoinKind::Semi | JoinKind::Anti
    ) {
        return None;
    }
    let [(_, right_key)] = equi else {
        return None;
    };
    let Node::Scan {
        collection,
        columns,
        access: Access::Full,
        filter,
        read,
    } = right
    else {
        return None;
    };
    let key_column = collection.key_position();
    let mut covering = false;
    let key = if matches!(right_key, Expr::Column(c) if Some(*c) == key_column) {
        ProbeKey::DocumentKey
    } else {
        let path = crate::query::access::field_path(right_key, collection, columns)?;
        let index = collection
            .ready_indexes()
            .find(|i| i.fields.first() == Some(&path))?;
        covering = read
            .as_deref()
            .is_some_and(|r| crate::query::access::is_covering(index, collection, columns, r));
        ProbeKey::Index(index.clone())
    };
    Some(Probe {
        collection: collection.clone(),
        key,
        filter: filter.clone(),
        read: read.clone(),
        covering,
    })
}

/// The right rows whose join key is one of `keys` (distinct, not NULL).
pub fn probed_right(probe: &Probe, keys: Vec<Value>, ctx: &Arc<ExecContext>) -> Result<RowIter> {
    let access = match &probe.key {
        ProbeKey::DocumentKey => Access::Keys(keys.into_iter().map(Expr::Literal).collect()),
        ProbeKey::Index(index) => Access::Index(Box::new(IndexAccess {
            index: index.clone(),
            estimate: keys.len() as u64,
            prefixes: keys
                .into_iter()
                .map(|v| vec![Pin::Value(Expr::Literal(v))])
                .collect(),
            lower: None,
            upper: None,
            order: IndexOrder::Any,
            covering: probe.covering,
            conditions: Vec::new(),
        })),
    };
    super::scan::build_reading(
        &probe.collection,
        &access,
        probe.filter.as_ref(),
        probe.read.as_deref(),
        Vec::new(),
        ctx,
    )
}

/// The start of a probed join's left side, read to learn its join keys (see
/// [`scout`]).
pub struct Scouted {
    /// The rows read.
    pub rows: Vec<Row>,
    /// The distinct join-key values among them (not NULL): each encoded (as a hash
    /// table's key), and as it is.
    pub keys: Vec<(Vec<u8>, Value)>,
    /// Per row read, the position of its key in `keys` ([`NO_KEY`] for a NULL key).
    pub row_keys: Vec<u32>,
    /// The rows not read yet; None when the side ended within the limits.
    pub rest: Option<RowIter>,
}

/// The key position of a scouted row whose join key is NULL (see [`Scouted::row_keys`]).
pub const NO_KEY: u32 = u32::MAX;

/// Reads `left` while its rows hold at most [`PROBE_MAX_ROWS`] distinct values of
/// `left_key` and take at most `budget` bytes: if it ends within that, the right side
/// need only be read for those values ([`probed_right`]).
pub fn scout(
    mut left: RowIter,
    left_key: &Expr,
    budget: usize,
    ctx: &ExecContext,
) -> Result<Scouted> {
    let ectx = ctx.eval_context();
    let left_keys = std::slice::from_ref(left_key);
    // Each distinct key's position in `keys`.
    let mut distinct: HashMap<Vec<u8>, u32, foldhash::fast::RandomState> = Default::default();
    let (mut rows, mut keys, mut key, mut bytes) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
    let mut row_keys = Vec::new();
    while distinct.len() <= PROBE_MAX_ROWS && bytes <= budget {
        let Some(row) = left.next() else {
            return Ok(Scouted {
                rows,
                keys,
                row_keys,
                rest: None,
            });
        };
        let row = row?;
        let at = if key_into(left_keys, &row, &ectx, &mut key)? {
            match distinct.get(key.as_slice()) {
                Some(&at) => at,
                None => {
                    let at = keys.len() as u32;
                    distinct.insert(key.clone(), at);
                    keys.push((key.clone(), left_key.eval(&row, &ectx)?));
                    at
                }
            }
        } else {
            NO_KEY
        };
        bytes += row_size(&row);
        rows.push(row);
        row_keys.push(at);
    }
    Ok(Scouted {
        rows,
        keys,
        row_keys,
        rest: Some(left),
    })
}

/// What the join needs besides its inputs.
#[derive(Clone)]
pub struct JoinSpec {
    pub kind: JoinKind,
    pub condition: Option<Predicate>,
    pub equi: Vec<(Expr, Expr)>,
    pub left_width: usize,
    pub right_width: usize,
}

impl JoinSpec {
    /// The spec of `join` (a Join node), its condition compiled.
    pub fn of(join: &Node) -> Option<JoinSpec> {
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
        Some(JoinSpec {
            kind: *kind,
            condition: condition.as_ref().map(Predicate::compile),
            equi: equi.clone(),
            left_width: left.columns().len(),
            right_width: right.columns().len(),
        })
    }
}

/// The right rows of each join key: most keys have one (held in place, no allocation).
type Matches = smallvec::SmallVec<[usize; 1]>;

/// The hash table of a join: right rows by the encoded values of their join keys.
type HashTable = HashMap<Vec<u8>, Matches, foldhash::fast::RandomState>;

/// Writes the hash-table key of `row` into `key` (cleared first); false if a key value
/// is NULL (it matches nothing).
fn key_into(
    exprs: &[Expr],
    row: &Row,
    ectx: &crate::query::expr::EvalContext<'_>,
    key: &mut Vec<u8>,
) -> Result<bool> {
    key.clear();
    for e in exprs {
        let v = e.eval_cow(row, ectx)?;
        if matches!(*v, Value::Null) {
            return Ok(false);
        }
        group_key(std::slice::from_ref(&*v), key);
    }
    Ok(true)
}

pub fn build(
    left: RowIter,
    mut right: RowIter,
    spec: JoinSpec,
    probe: Option<Probe>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    let probe = probe.filter(|p| p.usable(ctx));
    if let (Some(probe), Some((left_key, _))) = (probe, spec.equi.first()) {
        let scouted = scout(left, left_key, ctx.memory_limit / 4, ctx)?;
        if scouted.rest.is_none() {
            let keys = scouted.keys.iter().map(|(_, v)| v.clone()).collect();
            right = probed_right(&probe, keys, ctx)?;
        }
        let inner = inner_side(right, &spec, ctx)?;
        return Ok(probe_scouted(scouted, inner, spec, ctx));
    }
    let inner = inner_side(right, &spec, ctx)?;
    Ok(probe_with(left, inner, spec, ctx))
}

/// The right side of a join, read and hashed: the part every left row is joined
/// against (shared by the parts of a left side cut for parallel threads).
pub struct Inner {
    rows: Vec<Row>,
    index: Option<HashTable>,
}

/// Reads the right side of a join into memory (within `query_memory_limit`) and, for a
/// hash join, hashes its rows by their join keys.
pub fn inner_side(right: RowIter, spec: &JoinSpec, ctx: &Arc<ExecContext>) -> Result<Arc<Inner>> {
    let mut rows: Vec<Row> = Vec::new();
    let mut bytes = 0usize;
    for row in right {
        ctx.check_cancel()?;
        let row = row?;
        bytes += row_size(&row);
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory("the inner side of a join"));
        }
        rows.push(row);
    }
    let index = if spec.equi.is_empty() {
        None
    } else {
        let exprs: Vec<Expr> = spec.equi.iter().map(|(_, r)| r.clone()).collect();
        let ectx = ctx.eval_context();
        let mut map = HashTable::with_capacity_and_hasher(rows.len(), Default::default());
        let mut key = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if key_into(&exprs, row, &ectx, &mut key)? {
                match map.get_mut(key.as_slice()) {
                    Some(matches) => matches.push(i),
                    None => {
                        bytes += key.len() + 48;
                        map.insert(key.clone(), smallvec::smallvec![i]);
                    }
                }
            }
        }
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory("the hash table of a join"));
        }
        Some(map)
    };
    Ok(Arc::new(Inner { rows, index }))
}

/// Joins the rows of `left` against `inner` (the join's right side, read), streaming.
pub fn probe_with(
    left: RowIter,
    inner: Arc<Inner>,
    spec: JoinSpec,
    ctx: &Arc<ExecContext>,
) -> RowIter {
    Box::new(JoinIter::new(Some(left), None, inner, spec, ctx))
}

/// Joins the rows `scouted` read (their keys known: each key looked up once in the
/// hash table) and then the rest of its left side against `inner`, streaming.
pub fn probe_scouted(
    scouted: Scouted,
    inner: Arc<Inner>,
    spec: JoinSpec,
    ctx: &Arc<ExecContext>,
) -> RowIter {
    let Some(index) = &inner.index else {
        let left = scouted.rows.into_iter().map(Ok);
        return probe_with(
            Box::new(left.chain(scouted.rest.into_iter().flatten())),
            inner,
            spec,
            ctx,
        );
    };
    let matches = scouted
        .keys
        .iter()
        .map(|(key, _)| index.get(key.as_slice()).cloned().unwrap_or_default())
        .collect();
    let known = Known {
        rows: scouted.rows.into_iter(),
        keys: scouted.row_keys.into_iter(),
        matches,
    };
    Box::new(JoinIter::new(scouted.rest, Some(known), inner, spec, ctx))
}

/// Left rows whose join keys are known already (see [`probe_scouted`]).
struct Known {
    rows: std::vec::IntoIter<Row>,
    /// Per row, the position of its key's matches ([`NO_KEY`]: a NULL key).
    keys: std::vec::IntoIter<u32>,
    /// The right rows of each key.
    matches: Vec<Matches>,
}

struct JoinIter {
    /// Left rows whose keys are known, joined before `left`'s.
    known: Option<Known>,
    left: Option<RowIter>,
    inner: Arc<Inner>,
    matched: Vec<bool>,
    pending: VecDeque<Row>,
    spec: JoinSpec,
    /// The left side's expression of each join equality.
    left_keys: Vec<Expr>,
    /// The current left row's hash-table key (its buffer reused).
    key: Vec<u8>,
    ctx: Arc<ExecContext>,
    /// 0..right.len(), for the nested loop.
    all_candidates: Vec<usize>,
}

impl JoinIter {
    /// A join of the `known` rows, then of `left`'s (none: no more rows).
    fn new(
        left: Option<RowIter>,
        known: Option<Known>,
        inner: Arc<Inner>,
        spec: JoinSpec,
        ctx: &Arc<ExecContext>,
    ) -> JoinIter {
        let left_keys = spec.equi.iter().map(|(l, _)| l.clone()).collect();
        JoinIter {
            known,
            matched: vec![false; inner.rows.len()],
            inner,
            // Ended only once its rows are read (the right rows nothing matched follow).
            left: Some(left.unwrap_or_else(|| Box::new(std::iter::empty()))),
            pending: VecDeque::new(),
            spec,
            left_keys,
            key: Vec::new(),
            ctx: ctx.clone(),
            all_candidates: Vec::new(),
        }
    }

    /// Joins the next left row whose key is known; false when there is none.
    fn join_known(&mut self) -> Result<bool> {
        let Some(known) = &mut self.known else {
            return Ok(false);
        };
        let (Some(l), Some(k)) = (known.rows.next(), known.keys.next()) else {
            self.known = None;
            return Ok(false);
        };
        let candidates = known
            .matches
            .get(k as usize)
            .map_or(&[][..], |m| m.as_slice());
        let ectx = self.ctx.eval_context();
        join_candidates(
            &self.inner.rows,
            &self.spec,
            &mut self.matched,
            &mut self.pending,
            &ectx,
            l,
            candidates,
        )?;
        Ok(true)
    }

    /// Joins one left row, queueing its output rows.
    fn join_row(&mut self, l: Row) -> Result<()> {
        let ectx = self.ctx.eval_context();
        let right = &self.inner.rows;
        let candidates: &[usize] = match &self.inner.index {
            Some(map) => {
                if key_into(&self.left_keys, &l, &ectx, &mut self.key)? {
                    map.get(self.key.as_slice())
                        .map_or(&[][..], |m| m.as_slice())
                } else {
                    &[]
                }
            }
            None => {
                if self.all_candidates.len() != right.len() {
                    self.all_candidates = (0..right.len()).collect();
                }
                &self.all_candidates
            }
        };
        join_candidates(
            right,
            &self.spec,
            &mut self.matched,
            &mut self.pending,
            &ectx,
            l,
            candidates,
        )
    }

    /// After the left side: the right rows nothing matched, for right and full joins.
    fn unmatched_right(&mut self) {
        if !matches!(self.spec.kind, JoinKind::Right | JoinKind::Full) {
            return;
        }
        for (i, r) in self.inner.rows.iter().enumerate() {
            if !self.matched.get(i).copied().unwrap_or(true) {
                let mut row = vec![Value::Null; self.spec.left_width];
                row.extend_from_slice(r);
                self.pending.push_back(row);
            }
        }
    }
}

/// Joins left row `l` with the right rows `candidates` (positions in `right`), queueing
/// the output rows in `pending` and marking the right rows matched.
fn join_candidates(
    right: &[Row],
    spec: &JoinSpec,
    matched: &mut [bool],
    pending: &mut VecDeque<Row>,
    ectx: &crate::query::expr::EvalContext<'_>,
    l: Row,
    candidates: &[usize],
) -> Result<()> {
    let semi = matches!(spec.kind, JoinKind::Semi | JoinKind::Anti);
    let mut any = false;
    if semi && spec.condition.is_none() {
        // Whether a right row matches is all a semi- or anti-join asks: no joined
        // row is built.
        any = candidates.iter().any(|&i| i < right.len());
    } else {
        for &i in candidates {
            let Some(r) = right.get(i) else {
                continue;
            };
            let mut row = Vec::with_capacity(l.len() + r.len());
            row.extend_from_slice(&l);
            row.extend_from_slice(r);
            let keep = match &spec.condition {
                None => true,
                Some(c) => c.passes(&row, ectx)?,
            };
            if keep {
                any = true;
                if semi {
                    break;
                }
                if let Some(m) = matched.get_mut(i) {
                    *m = true;
                }
                pending.push_back(row);
            }
        }
    }
    match spec.kind {
        JoinKind::Semi if any => pending.push_back(l),
        JoinKind::Anti if !any => pending.push_back(l),
        JoinKind::Left | JoinKind::Full if !any => {
            let mut row = l;
            row.resize(spec.left_width + spec.right_width, Value::Null);
            pending.push_back(row);
        }
        _ => {}
    }
    Ok(())
}

impl Iterator for JoinIter {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                return Some(Ok(row));
            }
            if self.known.is_some() {
                match self.ctx.check_cancel().and_then(|()| self.join_known()) {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        (self.known, self.left) = (None, None);
                        return Some(Err(e));
                    }
                }
            }
            let left = self.left.as_mut()?;
            match left.next() {
                Some(Ok(l)) => {
                    if let Err(e) = self.ctx.check_cancel().and_then(|()| self.join_row(l)) {
                        self.left = None;
                        return Some(Err(e));
                    }
                }
                Some(Err(e)) => {
                    self.left = None;
                    return Some(Err(e));
                }
                None => {
                    self.left = None;
                    self.unmatched_right();
                }
            }
        }
    }
}
