//! Sort: materializes its input within the memory limit and orders it by the keys
//! (NULLs last ascending, first descending, unless NULLS FIRST/LAST says otherwise).
//! Under a LIMIT it keeps only the rows the limit passes (a top-N sort): ORDER BY
//! price DESC LIMIT 10 over 100k rows sorts a few dozen at a time, not 100k.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{ExecContext, RowIter, row_size};
use crate::doc::Value;
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::sort_cmp;
use crate::query::plan::SortKey;
use crate::storage::recycle;

pub fn build(input: RowIter, keys: Vec<SortKey>, ctx: &Arc<ExecContext>) -> Result<RowIter> {
    build_top(input, keys, None, ctx)
}

/// [`build`] for a sort whose first `bound` rows are all that is read of it (a LIMIT,
/// plus its OFFSET, over it): only the best `bound` rows are kept as the input goes
/// by (a top-N sort), and ties keep their input order as in the full sort. None: every
/// row.
pub fn build_top(
    input: RowIter,
    keys: Vec<SortKey>,
    bound: Option<usize>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    if bound == Some(0) {
        return Ok(Box::new(std::iter::empty()));
    }
    let ectx = ctx.eval_context();
    // Each row with its key values and its place in the input (which breaks ties).
    let mut rows: Vec<(Vec<Value>, usize, Row)> = Vec::new();
    let mut bytes = 0usize;
    // Past `bound` rows: the worst row kept, which a row must beat to be kept.
    let mut worst: Option<(Vec<Value>, usize)> = None;
    let order = |a: &(Vec<Value>, usize, Row), b: &(Vec<Value>, usize, Row)| {
        compare_keys(&keys, &a.0, &b.0).then(a.1.cmp(&b.1))
    };
    // The current row's key values, their buffer kept while rows are turned away.
    let mut k: Vec<Value> = Vec::with_capacity(keys.len());
    for (at, row) in input.enumerate() {
        let row = row?;
        k.clear();
        for key in &keys {
            k.push(key.expr.eval(&row, &ectx)?);
        }
        if let Some((wk, wat)) = &worst
            && compare_keys(&keys, &k, wk).then(at.cmp(wat)).is_gt()
        {
            recycle::give_row(row);
            continue;
        }
        let k = std::mem::replace(&mut k, Vec::with_capacity(keys.len()));
        bytes += row_size(&row);
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory("ORDER BY"));
        }
        rows.push((k, at, row));
        if let Some(n) = bound
            && rows.len() >= n.saturating_mul(2).max(n + 1024)
        {
            // Keep the best n; the rest go.
            rows.select_nth_unstable_by(n - 1, order);
            for (_, _, row) in rows.drain(n..) {
                recycle::give_row(row);
            }
            bytes = rows.iter().map(|(_, _, r)| row_size(r)).sum();
            worst = rows
                .iter()
                .max_by(|a, b| order(a, b))
                .map(|(k, at, _)| (k.clone(), *at));
        }
    }
    rows.sort_by(order);
    if let Some(n) = bound {
        rows.truncate(n);
    }
    Ok(Box::new(rows.into_iter().map(|(_, _, r)| Ok(r))))
}

/// Orders two rows by their values of `keys` (`a[i]` is the value of `keys[i]`), each
/// key ascending or descending with its NULLs first or last.
pub(crate) fn compare_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> Ordering {
    for (i, key) in keys.iter().enumerate() {
        let (x, y) = (&a[i], &b[i]);
        let o = match (matches!(x, Value::Null), matches!(y, Value::Null)) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if key.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if key.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            _ => {
                let o = sort_cmp(x, y);
                if key.desc { o.reverse() } else { o }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}
