//! Filter: passes the rows for which the predicate is true (not false, not NULL).

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::query::expr::Expr;
use crate::query::predicate::Predicate;

pub fn build(input: RowIter, predicate: Expr, ctx: &Arc<ExecContext>) -> RowIter {
    let ctx = ctx.clone();
    let predicate = Predicate::compile(&predicate);
    Box::new(input.filter_map(move |row| match row {
        Ok(row) => match predicate.passes(&row, &ctx.eval_context()) {
            Ok(true) => Some(Ok(row)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        },
        Err(e) => Some(Err(e)),
    }))
}
