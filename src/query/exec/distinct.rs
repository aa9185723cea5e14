//! Distinct: passes each distinct row once, in first-seen order.

use std::collections::HashSet;
use std::sync::Arc;

use super::{ExecContext, RowIter, group_key};

pub fn build(input: RowIter, ctx: &Arc<ExecContext>) -> RowIter {
    let ctx = ctx.clone();
    let mut seen: HashSet<Vec<u8>, foldhash::fast::RandomState> = HashSet::default();
    let mut bytes = 0usize;
    // The current row's key, its buffer reused from row to row.
    let mut key = Vec::new();
    Box::new(input.filter_map(move |row| match row {
        Ok(row) => {
            key.clear();
            group_key(&row, &mut key);
            if seen.contains(key.as_slice()) {
                return None;
            }
            // Only the rows kept hold memory.
            bytes += key.len() + 32;
            if bytes > ctx.memory_limit {
                return Some(Err(ctx.over_memory("DISTINCT")));
            }
            seen.insert(key.clone());
            Some(Ok(row))
        }
        Err(e) => Some(Err(e)),
    }))
}
