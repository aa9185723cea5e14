//! Project: computes the output expressions of each row.

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::Expr;

pub fn build(input: RowIter, exprs: Vec<Expr>, ctx: &Arc<ExecContext>) -> RowIter {
    let ctx = ctx.clone();
    Box::new(input.map(move |row| {
        let row = row?;
        let ectx = ctx.eval_context();
        exprs
            .iter()
            .map(|e| e.eval(&row, &ectx))
            .collect::<Result<Row>>()
    }))
}
