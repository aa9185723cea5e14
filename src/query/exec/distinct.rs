//! Distinct: passes each distinct row once, in first-seen order.

use std::collections::HashSet;
use std::sync::Arc;

use super::{ExecContext, RowIter, group_key};

pub fn build(input: RowIter, ctx: &Arc<ExecContext>) -> RowIter {
    let ctx = ctx.clone();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut bytes = 0usize;
    Box::new(input.filter_map(move |row| match row {
        Ok(row) => {
            let mut key = Vec::new();
            group_key(&row, &mut key);
            bytes += key.len() + 32;
            if bytes > ctx.memory_limit {
                return Some(Err(ctx.over_memory("DISTINCT")));
            }
            seen.insert(key).then_some(Ok(row))
        }
        Err(e) => Some(Err(e)),
    }))
}
