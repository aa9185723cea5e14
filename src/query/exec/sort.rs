//! Sort: materializes its input within the memory limit and orders it by the keys
//! (NULLs last ascending, first descending, unless NULLS FIRST/LAST says otherwise).

use std::cmp::Ordering;
use std::sync::Arc;

use super::{ExecContext, RowIter, row_size};
use crate::doc::Value;
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::sort_cmp;
use crate::query::plan::SortKey;

pub fn build(input: RowIter, keys: Vec<SortKey>, ctx: &Arc<ExecContext>) -> Result<RowIter> {
    let ectx = ctx.eval_context();
    let mut rows: Vec<(Vec<Value>, Row)> = Vec::new();
    let mut bytes = 0usize;
    for row in input {
        let row = row?;
        bytes += row_size(&row);
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory("ORDER BY"));
        }
        let k = keys
            .iter()
            .map(|k| k.expr.eval(&row, &ectx))
            .collect::<Result<Vec<_>>>()?;
        rows.push((k, row));
    }
    rows.sort_by(|(a, _), (b, _)| compare_keys(&keys, a, b));
    Ok(Box::new(rows.into_iter().map(|(_, r)| Ok(r))))
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
