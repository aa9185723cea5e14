//! Limit: skips OFFSET rows, then passes at most LIMIT rows.

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::expr::Expr;

fn count(e: Option<&Expr>, ctx: &ExecContext, what: &str) -> Result<Option<usize>> {
    let Some(e) = e else {
        return Ok(None);
    };
    match crate::query::types::cast(
        e.eval(&[], &ctx.eval_context())?,
        &crate::query::SqlType::Int8,
    )? {
        Value::Null => Ok(None),
        Value::Int(n) if n >= 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        _ => Err(Error::invalid(
            SqlState("2201W"),
            format!("{what} must not be negative"),
        )),
    }
}

/// How many rows of its input a LIMIT reads at most: the limit plus the offset (None
/// without a limit).
pub fn bound(
    limit: Option<&Expr>,
    offset: Option<&Expr>,
    ctx: &ExecContext,
) -> Result<Option<usize>> {
    let Some(limit) = count(limit, ctx, "LIMIT")? else {
        return Ok(None);
    };
    let offset = count(offset, ctx, "OFFSET")?.unwrap_or(0);
    Ok(Some(limit.saturating_add(offset)))
}

pub fn build(
    input: RowIter,
    limit: Option<&Expr>,
    offset: Option<&Expr>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    let limit = count(limit, ctx, "LIMIT")?;
    let offset = count(offset, ctx, "OFFSET")?.unwrap_or(0);
    let rows = input.skip(offset);
    Ok(match limit {
        Some(n) => Box::new(rows.take(n)),
        None => Box::new(rows),
    })
}
