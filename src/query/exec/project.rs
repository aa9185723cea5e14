//! Project: computes the output expressions of each row. A projection that only picks
//! columns, each once (`SELECT *`, `SELECT a, b`), moves their values out of the input
//! row instead of copying them. Over a scan read through a cursor, it reads the row the
//! cursor lends ([`build_scanned`]).

use std::sync::Arc;

use super::scan::{CursorRows, Scanned};
use super::{ExecContext, RowIter};
use crate::doc::Value;
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::Expr;
use crate::storage::recycle;

/// [`build`] over rows that may be lent by a scan's cursor: those are read in place
/// (their picked values moved out), so the scan takes no row per document.
pub fn build_scanned(input: Scanned, exprs: Vec<Expr>, ctx: &Arc<ExecContext>) -> RowIter {
    let rows = match input {
        Scanned::Rows(rows) => return build(rows, exprs, ctx),
        Scanned::Lent(rows) => rows,
    };
    Box::new(LentProject {
        columns: distinct_columns(&exprs),
        exprs,
        rows,
        ctx: ctx.clone(),
    })
}

/// A projection of the rows a cursor lends.
struct LentProject {
    rows: Box<CursorRows>,
    exprs: Vec<Expr>,
    /// The columns picked, when the projection only picks columns (each once).
    columns: Option<Vec<usize>>,
    ctx: Arc<ExecContext>,
}

impl LentProject {
    fn next_row(&mut self) -> Result<Option<Row>> {
        if !self.rows.advance()? {
            return Ok(None);
        }
        let mut out = recycle::take_row(self.exprs.len());
        match &self.columns {
            Some(columns) => {
                let row = self.rows.row_mut();
                for (slot, &i) in out.iter_mut().zip(columns) {
                    match row.get_mut(i) {
                        // The slot's old value stays in the cursor's row, to be
                        // written over (a string in its buffer).
                        Some(v) => std::mem::swap(slot, v),
                        None => *slot = Value::Null,
                    }
                }
            }
            None => {
                let ectx = self.ctx.eval_context();
                let row = self.rows.row();
                for (slot, e) in out.iter_mut().zip(&self.exprs) {
                    *slot = e.eval(row, &ectx)?;
                }
            }
        }
        Ok(Some(out))
    }
}

impl Iterator for LentProject {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        self.next_row().transpose()
    }
}

pub fn build(input: RowIter, exprs: Vec<Expr>, ctx: &Arc<ExecContext>) -> RowIter {
    // Output rows come from the thread's recycled rows, and input rows go back to them.
    if let Some(columns) = distinct_columns(&exprs) {
        return Box::new(input.map(move |row| {
            let mut row = row?;
            let mut out = recycle::take_row(columns.len());
            for (slot, &i) in out.iter_mut().zip(&columns) {
                match row.get_mut(i) {
                    // The slot's old value goes back with the input row.
                    Some(v) => std::mem::swap(slot, v),
                    None => *slot = Value::Null,
                }
            }
            recycle::give_row(row);
            Ok(out)
        }));
    }
    let ctx = ctx.clone();
    Box::new(input.map(move |row| {
        let row = row?;
        let ectx = ctx.eval_context();
        let mut out = recycle::take_row(exprs.len());
        for (slot, e) in out.iter_mut().zip(&exprs) {
            *slot = e.eval(&row, &ectx)?;
        }
        recycle::give_row(row);
        Ok(out)
    }))
}

/// The input columns `exprs` pick, if each is a plain column and none is picked twice.
fn distinct_columns(exprs: &[Expr]) -> Option<Vec<usize>> {
    let mut columns = Vec::with_capacity(exprs.len());
    for e in exprs {
        match e {
            Expr::Column(i) if !columns.contains(i) => columns.push(*i),
            _ => return None,
        }
    }
    Some(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_distinct_plain_columns_are_moved() {
        assert_eq!(
            distinct_columns(&[Expr::Column(2), Expr::Column(0)]),
            Some(vec![2, 0])
        );
        assert_eq!(distinct_columns(&[Expr::Column(1), Expr::Column(1)]), None);
        assert_eq!(
            distinct_columns(&[Expr::Column(0), Expr::Literal(Value::Int(1))]),
            None
        );
    }
}
