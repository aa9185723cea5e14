//! Index scan: turns an [`IndexAccess`] into byte ranges of index entries, walks them in
//! the order asked for, and yields the documents the entries name (or, for a covering
//! scan, rows built from the entries themselves).
//!
//! A range on a field is clamped to the *class* of its bound (numbers, strings, ...: see
//! [`keycode::class_tags`]), because SQL compares a number only with numbers: `price <
//! 200` matches no string and no NULL, which the index orders below every number.

use std::ops::Bound;

use super::ExecContext;
use crate::doc::Value;
use crate::doc::keycode::{self, NULL_TAG, encode_value, prefix_successor};
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::EvalContext;
use crate::query::plan::{IndexAccess, IndexOrder, Pin, RangeBound};
use crate::storage::{Storage, indexes::IndexScan};

/// One byte range of entries and whether to walk it backwards.
pub struct EntryRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
    pub reverse: bool,
}

fn end_of(prefix: &[u8]) -> Bound<Vec<u8>> {
    prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

fn with(prefix: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(tail);
    v
}

/// A range bound's value and the prefix `p` followed by its encoding; None when the
/// value is NULL (no row compares with it).
fn bound_key(b: &RangeBound, p: &[u8], ectx: &EvalContext<'_>) -> Result<Option<(Value, Vec<u8>)>> {
    let v = b.value.eval(&[], ectx)?;
    if matches!(v, Value::Null) {
        return Ok(None);
    }
    let mut at = p.to_vec();
    encode_value(&v, &mut at);
    Ok(Some((v, at)))
}

/// The entry ranges of `a`, in output order; empty when no row can match (a NULL bound,
/// bounds of different classes, a lower bound above the upper).
pub fn ranges(a: &IndexAccess, ectx: &EvalContext<'_>) -> Result<Vec<EntryRange>> {
    let (desc, nulls_first) = match a.order {
        IndexOrder::Any => (false, true),
        IndexOrder::By { desc, nulls_first } => (desc, nulls_first),
    };
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::new();
    'alternatives: for prefix in &a.prefixes {
        let mut p = Vec::new();
        for pin in prefix {
            match pin {
                Pin::Null => p.push(NULL_TAG),
                Pin::Value(e) => match e.eval(&[], ectx)? {
                    Value::Null => continue 'alternatives,
                    v => encode_value(&v, &mut p),
                },
            }
        }
        if seen.contains(&p) {
            continue;
        }
        seen.push(p.clone());
        if a.lower.is_some() || a.upper.is_some() {
            let mut start = p.clone();
            let mut end: Option<Vec<u8>> = prefix_successor(&p);
            let clamp = |v: &Value, start: &mut Vec<u8>, end: &mut Option<Vec<u8>>| {
                let (lo, hi) = keycode::class_tags(v);
                let s = with(&p, &[lo]);
                if s > *start {
                    *start = s;
                }
                let e = with(&p, &[hi]);
                if end.as_ref().is_none_or(|x| e < *x) {
                    *end = Some(e);
                }
            };
            if let Some(b) = &a.lower {
                let Some((v, at)) = bound_key(b, &p, ectx)? else {
                    continue;
                };
                clamp(&v, &mut start, &mut end);
                let at = if b.inclusive {
                    at
                } else {
                    match prefix_successor(&at) {
                        Some(s) => s,
                        None => continue,
                    }
                };
                if at > start {
                    start = at;
                }
            }
            if let Some(b) = &a.upper {
                let Some((v, at)) = bound_key(b, &p, ectx)? else {
                    continue;
                };
                clamp(&v, &mut start, &mut end);
                let at = if b.inclusive {
                    prefix_successor(&at)
                } else {
                    Some(at)
                };
                if let Some(at) = at
                    && end.as_ref().is_none_or(|x| at < *x)
                {
                    end = Some(at);
                }
            }
            if end.as_ref().is_some_and(|e| start >= *e) {
                continue;
            }
            out.push(EntryRange {
                start: Bound::Included(start),
                end: end.map_or(Bound::Unbounded, Bound::Excluded),
                reverse: desc,
            });
            continue;
        }
        let ordered_field = prefix.len() < a.index.fields.len();
        // The index puts NULLs first; an order that wants them elsewhere reads them apart.
        let natural_nulls_first = !desc;
        if ordered_field
            && matches!(a.order, IndexOrder::By { .. })
            && nulls_first != natural_nulls_first
        {
            let nulls = EntryRange {
                start: Bound::Included(with(&p, &[NULL_TAG])),
                end: Bound::Excluded(with(&p, &[NULL_TAG + 1])),
                reverse: desc,
            };
            let values = EntryRange {
                start: Bound::Included(with(&p, &[NULL_TAG + 1])),
                end: end_of(&p),
                reverse: desc,
            };
            if nulls_first {
                out.push(nulls);
                out.push(values);
            } else {
                out.push(values);
                out.push(nulls);
            }
            continue;
        }
        out.push(EntryRange {
            start: if p.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Included(p.clone())
            },
            end: end_of(&p),
            reverse: desc,
        });
    }
    Ok(out)
}

/// Counts the entries `a` reads, stopping at `cap` (for the planner, with constant
/// bounds only).
pub fn count(storage: &Storage, a: &IndexAccess, cap: u64) -> Result<u64> {
    let ectx = EvalContext {
        params: &[],
        now: 0,
        subqueries: None,
    };
    let mut n = 0;
    for r in ranges(a, &ectx)? {
        let mut scan = storage.indexes().scan(a.index.id, r.start, r.end, false)?;
        while let Some(counted) = scan.count_batch()? {
            n += counted;
            if n >= cap {
                return Ok(cap);
            }
        }
    }
    Ok(n)
}

/// The entries of every range, in order. The caller reads the document each names
/// through its view: one not in the view (a write raced the scan) is skipped, and the
/// index conditions are re-checked on each document.
pub fn entries(
    storage: &Storage,
    a: &IndexAccess,
    ctx: &ExecContext,
) -> Result<impl Iterator<Item = Result<Vec<u8>>> + Send + use<>> {
    Ok(scans(storage, a, ctx)?.into_iter().flatten())
}

/// The scan of each range, in order (their entries are [`entries`]).
pub fn scans(storage: &Storage, a: &IndexAccess, ctx: &ExecContext) -> Result<Vec<IndexScan>> {
    let mut scans: Vec<IndexScan> = Vec::new();
    for r in ranges(a, &ctx.eval_context())? {
        scans.push(
            storage
                .indexes()
                .scan(a.index.id, r.start, r.end, r.reverse)?,
        );
    }
    Ok(scans)
}

/// Rows built from the entries alone: `id_column` gets the key value `id_value` reads
/// from the document id, `field_columns` (one per index field, None for fields that feed
/// no column or a column the query does not read) the indexed values, every other
/// column NULL. Only what feeds a column is decoded.
pub fn covering_rows(
    storage: &Storage,
    a: &IndexAccess,
    ctx: &ExecContext,
    width: usize,
    id_column: Option<usize>,
    id_value: impl Fn(String) -> Value + Send + 'static,
    field_columns: Vec<Option<usize>>,
) -> Result<Box<dyn Iterator<Item = Result<Row>> + Send>> {
    Ok(Box::new(entries(storage, a, ctx)?.map(move |item| {
        let entry = item?;
        let mut row = crate::storage::recycle::take_row(width);
        let wanted = |i: usize| field_columns.get(i).is_some_and(Option::is_some);
        let id = keycode::read_index_entry(&entry, wanted, id_column.is_some(), |i, v| {
            if let Some(slot) = field_columns
                .get(i)
                .copied()
                .flatten()
                .and_then(|c| row.get_mut(c))
            {
                *slot = v;
            }
        })?;
        if let (Some(id), Some(slot)) = (id, id_column.and_then(|c| row.get_mut(c))) {
            *slot = id_value(id);
        }
        // Its buffer goes to the next entry the index reads.
        crate::storage::recycle::give_key(entry);
        Ok(row)
    })))
}
