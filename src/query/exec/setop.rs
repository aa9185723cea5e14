//! UNION, INTERSECT and EXCEPT, with or without ALL. Rows are compared as GROUP BY
//! compares them (NULLs equal). The right side of INTERSECT and EXCEPT is counted in
//! memory first, within `query_memory_limit`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{ExecContext, RowIter, group_key};
use crate::error::Result;
use crate::query::plan::SetOpKind;

fn key(row: &[crate::doc::Value]) -> Vec<u8> {
    let mut k = Vec::new();
    group_key(row, &mut k);
    k
}

pub fn build(
    left: RowIter,
    right: RowIter,
    op: SetOpKind,
    all: bool,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    if op == SetOpKind::Union {
        let chained: RowIter = Box::new(left.chain(right));
        return Ok(if all {
            chained
        } else {
            super::distinct::build(chained, ctx)
        });
    }
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut bytes = 0usize;
    for row in right {
        ctx.check_cancel()?;
        let k = key(&row?);
        bytes += k.len() + 40;
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory(if op == SetOpKind::Intersect {
                "INTERSECT"
            } else {
                "EXCEPT"
            }));
        }
        *counts.entry(k).or_default() += 1;
    }
    let mut emitted: HashSet<Vec<u8>> = HashSet::new();
    Ok(Box::new(left.filter_map(move |row| {
        let row = match row {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let k = key(&row);
        let count = counts.get_mut(&k);
        let keep = match (op, all) {
            (SetOpKind::Intersect, true) => match count {
                Some(c) if *c > 0 => {
                    *c -= 1;
                    true
                }
                _ => false,
            },
            (SetOpKind::Intersect, false) => count.is_some() && emitted.insert(k),
            (SetOpKind::Except, true) => match count {
                Some(c) if *c > 0 => {
                    *c -= 1;
                    false
                }
                _ => true,
            },
            (SetOpKind::Except, false) => count.is_none() && emitted.insert(k),
            (SetOpKind::Union, _) => true,
        };
        keep.then_some(Ok(row))
    })))
}
