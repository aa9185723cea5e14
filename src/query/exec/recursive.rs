//! `WITH RECURSIVE`: the recursive union runs its anchor, then its recursive part over
//! the previous round's rows (the work table), round after round, until a round adds
//! nothing. With UNION (not ALL) rows seen before are dropped, which ends traversals of
//! cyclic graphs. At most `max_recursion_iterations` rounds run (54000 past that), and
//! the rows kept count against `query_memory_limit`.

use std::collections::HashSet;
use std::sync::Arc;

use super::{ExecContext, RowIter, build_at, group_key, row_size};
use crate::error::{Error, Result};
use crate::query::Row;
use crate::query::plan::Node;

/// The union `id` of `anchor` and `recursive`, each with its EXPLAIN slot.
pub fn build_union(
    id: usize,
    [(anchor, anchor_at), (recursive, recursive_at)]: [(&Node, usize); 2],
    all: bool,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    let max_rounds = ctx.db.config().max_recursion_iterations;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut out: Vec<Row> = Vec::new();
    let mut bytes = 0usize;
    let mut keep = |rows: Vec<Row>, out: &mut Vec<Row>, bytes: &mut usize| -> Result<Vec<Row>> {
        let mut fresh = Vec::new();
        for row in rows {
            if !all {
                let mut k = Vec::new();
                group_key(&row, &mut k);
                if !seen.insert(k) {
                    continue;
                }
            }
            *bytes += row_size(&row);
            if *bytes > ctx.memory_limit {
                return Err(ctx.over_memory("WITH RECURSIVE"));
            }
            fresh.push(row);
        }
        out.extend(fresh.iter().cloned());
        Ok(fresh)
    };
    let first = build_at(anchor, ctx, anchor_at)?.collect::<Result<Vec<_>>>()?;
    let mut working = keep(first, &mut out, &mut bytes)?;
    let mut rounds: u64 = 0;
    while !working.is_empty() {
        ctx.check_cancel()?;
        rounds += 1;
        if rounds > max_rounds {
            return Err(Error::limit(format!(
                "WITH RECURSIVE ran more than max_recursion_iterations ({max_rounds}) rounds; \
                 use UNION instead of UNION ALL to stop at rows already seen, or add a bound \
                 to the recursive part"
            )));
        }
        ctx.work_tables.lock().insert(id, Arc::new(working));
        let next = build_at(recursive, ctx, recursive_at)?.collect::<Result<Vec<_>>>()?;
        working = keep(next, &mut out, &mut bytes)?;
    }
    ctx.work_tables.lock().remove(&id);
    Ok(Box::new(out.into_iter().map(Ok)))
}

/// The rows of the work table `id` (the previous round).
pub fn build_work_table(id: usize, ctx: &Arc<ExecContext>) -> Result<RowIter> {
    let rows = ctx
        .work_tables
        .lock()
        .get(&id)
        .cloned()
        .ok_or_else(|| Error::Internal("work table read outside its recursive union".into()))?;
    Ok(Box::new(
        (0..rows.len()).filter_map(move |i| rows.get(i).cloned().map(Ok)),
    ))
}
