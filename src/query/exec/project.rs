//! Project: computes the output expressions of each row. A projection that only picks
//! columns, each once (`SELECT *`, `SELECT a, b`), moves their values out of the input
//! row instead of copying them.

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::doc::Value;
use crate::query::expr::Expr;
use crate::storage::recycle;

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
