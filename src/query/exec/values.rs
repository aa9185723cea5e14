//! Values: literal rows (`VALUES (...)`, and the single empty row of a SELECT without
//! FROM).

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::Expr;

pub fn build(rows: &[Vec<Expr>], ctx: &Arc<ExecContext>) -> Result<RowIter> {
    let ectx = ctx.eval_context();
    let rows: Vec<Result<Row>> = rows
        .iter()
        .map(|r| r.iter().map(|e| e.eval(&[], &ectx)).collect())
        .collect();
    Ok(Box::new(rows.into_iter()))
}
