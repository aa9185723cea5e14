//! Filter: passes the rows for which the predicate is true (not false, not NULL).

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::query::expr::{Expr, truth};

pub fn build(input: RowIter, predicate: Expr, ctx: &Arc<ExecContext>) -> RowIter {
    let ctx = ctx.clone();
    Box::new(input.filter_map(move |row| match row {
        Ok(row) => match predicate.eval(&row, &ctx.eval_context()) {
            Ok(v) if truth(&v) == Some(true) => Some(Ok(row)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        },
        Err(e) => Some(Err(e)),
    }))
}
