//! LATERAL joins: for each left row, the right subquery runs with that row bound into
//! it (as a correlated subquery does), and the combined rows come out, filtered by the
//! join condition; a LEFT JOIN LATERAL NULL-extends a left row nothing matched.

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::doc::Value;
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::{Expr, SubqueryRunner, truth};
use crate::query::plan::Node;

pub fn build(
    left: RowIter,
    right: Node,
    outer: bool,
    condition: Option<Expr>,
    width: usize,
    ctx: &Arc<ExecContext>,
) -> RowIter {
    let ctx = ctx.clone();
    Box::new(
        left.flat_map(move |row| -> Box<dyn Iterator<Item = Result<Row>> + Send> {
            let combine = || -> Result<Vec<Row>> {
                let row = row?;
                let matches = ctx.run(&right, &row, usize::MAX)?;
                let ectx = ctx.eval_context();
                let mut out = Vec::with_capacity(matches.len());
                for m in matches {
                    let mut joined = row.clone();
                    joined.extend(m);
                    let pass = match &condition {
                        Some(c) => truth(&c.eval(&joined, &ectx)?) == Some(true),
                        None => true,
                    };
                    if pass {
                        out.push(joined);
                    }
                }
                if out.is_empty() && outer {
                    let mut joined = row;
                    joined.resize(width, Value::Null);
                    out.push(joined);
                }
                Ok(out)
            };
            match combine() {
                Ok(rows) => Box::new(rows.into_iter().map(Ok)),
                Err(e) => Box::new(std::iter::once(Err(e))),
            }
        }),
    )
}
