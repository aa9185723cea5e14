//! Project: computes the output expressions of each row. A projection that only picks
//! columns, each once (`SELECT *`, `SELECT a, b`), moves their values out of the input
//! row instead of copying them.

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::doc::Value;
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::Expr;

pub fn build(input: RowIter, exprs: Vec<Expr>, ctx: &Arc<ExecContext>) -> RowIter {
    if let Some(columns) = distinct_columns(&exprs) {
        return Box::new(input.map(move |row| {
            let mut row = row?;
            Ok(columns
                .iter()
                .map(|&i| {
                    row.get_mut(i)
                        .map_or(Value::Null, |v| std::mem::replace(v, Value::Null))
                })
                .collect())
        }));
    }
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
