//! Set-returning functions in FROM: `generate_series`, `unnest`, `pg_get_keywords()`,
//! `information_schema._pg_expandarray` (which pgjdbc's metadata queries use) and
//! `pg_partition_ancestors` (psql's `\d`; no table is a partition, so it is empty).
//! Arguments are evaluated once; `generate_series` yields its rows lazily.

use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::expr::Expr;
use crate::query::system::builtin::KEYWORDS;
use crate::query::types::SqlType;

/// A set-returning function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFunc {
    GenerateSeries,
    Unnest,
    PgGetKeywords,
    ExpandArray,
    GenerateSubscripts,
    PartitionAncestors,
}

impl TableFunc {
    /// The function called `name` (its last part, lower-case).
    pub fn by_name(name: &str) -> Option<TableFunc> {
        Some(match name {
            "generate_series" => TableFunc::GenerateSeries,
            "unnest" => TableFunc::Unnest,
            "pg_get_keywords" => TableFunc::PgGetKeywords,
            "_pg_expandarray" => TableFunc::ExpandArray,
            "generate_subscripts" => TableFunc::GenerateSubscripts,
            "pg_partition_ancestors" => TableFunc::PartitionAncestors,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            TableFunc::GenerateSeries => "generate_series",
            TableFunc::Unnest => "unnest",
            TableFunc::PgGetKeywords => "pg_get_keywords",
            TableFunc::ExpandArray => "_pg_expandarray",
            TableFunc::GenerateSubscripts => "generate_subscripts",
            TableFunc::PartitionAncestors => "pg_partition_ancestors",
        }
    }

    /// The result columns for arguments of these types; 42883 for a wrong count.
    pub fn columns(&self, args: &[SqlType]) -> Result<Vec<(String, SqlType)>> {
        let arity = match self {
            TableFunc::GenerateSeries => (2, 3),
            TableFunc::Unnest | TableFunc::ExpandArray | TableFunc::PartitionAncestors => (1, 1),
            TableFunc::PgGetKeywords => (0, 0),
            TableFunc::GenerateSubscripts => (2, 3),
        };
        if args.len() < arity.0 || args.len() > arity.1 {
            return Err(Error::invalid(
                SqlState("42883"),
                format!(
                    "function {}() does not take {} argument(s)",
                    self.name(),
                    args.len()
                ),
            ));
        }
        let elem = || match args.first() {
            Some(SqlType::Array(e)) => (**e).clone(),
            _ => SqlType::Jsonb,
        };
        Ok(match self {
            TableFunc::GenerateSeries => {
                let ty = if args.contains(&SqlType::Int8) {
                    SqlType::Int8
                } else {
                    SqlType::Int4
                };
                vec![("generate_series".into(), ty)]
            }
            TableFunc::Unnest => vec![("unnest".into(), elem())],
            TableFunc::GenerateSubscripts => vec![("generate_subscripts".into(), SqlType::Int4)],
            TableFunc::PartitionAncestors => vec![(
                "pg_partition_ancestors".into(),
                SqlType::Reg(crate::query::types::RegKind::Class),
            )],
            TableFunc::ExpandArray => vec![("x".into(), elem()), ("n".into(), SqlType::Int4)],
            TableFunc::PgGetKeywords => vec![
                ("word".into(), SqlType::Text),
                ("catcode".into(), SqlType::Text),
                ("barelabel".into(), SqlType::Bool),
                ("catdesc".into(), SqlType::Text),
                ("baredesc".into(), SqlType::Text),
            ],
        })
    }
}

fn int_arg(v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(*i)),
        other => match crate::query::types::cast(other.clone(), &SqlType::Int8)? {
            Value::Int(i) => Ok(Some(i)),
            _ => Ok(None),
        },
    }
}

pub fn build(func: TableFunc, args: &[Expr], ctx: &Arc<ExecContext>) -> Result<RowIter> {
    let ectx = ctx.eval_context();
    let values: Vec<Value> = args
        .iter()
        .map(|a| a.eval(&[], &ectx))
        .collect::<Result<_>>()?;
    Ok(cancellable(rows(func, values)?, ctx.clone()))
}

/// Rows a function gives between checks of the statement's cancel flag.
const ROWS_PER_CANCEL_CHECK: u32 = 4096;

/// `rows`, ending in 57014 once the statement is cancelled (or times out): a function's
/// rows read no storage, whose scans check the flag.
fn cancellable(mut rows: RowIter, ctx: Arc<ExecContext>) -> RowIter {
    let mut until_check = 0u32;
    Box::new(std::iter::from_fn(move || {
        if until_check == 0 {
            if let Err(e) = ctx.check_cancel() {
                return Some(Err(e));
            }
            until_check = ROWS_PER_CANCEL_CHECK;
        }
        until_check -= 1;
        rows.next()
    }))
}

/// Most rows a set-returning function in a select list may give for one input row.
pub const MAX_SET_ROWS: usize = 10_000_000;

/// `SELECT f(args), ...`: each input row, repeated once per row of its longest
/// function, with one value per function appended (record results as objects, so
/// `(f(x)).n` reads a field).
pub fn project_set(
    input: RowIter,
    funcs: Vec<(TableFunc, Vec<Expr>)>,
    ctx: &Arc<ExecContext>,
) -> RowIter {
    let ctx = ctx.clone();
    Box::new(input.flat_map(
        move |row| -> Box<dyn Iterator<Item = Result<Vec<Value>>> + Send> {
            let row = match row {
                Ok(r) => r,
                Err(e) => return Box::new(std::iter::once(Err(e))),
            };
            let expand = || -> Result<Vec<Vec<Value>>> {
                let ectx = ctx.eval_context();
                let mut results: Vec<Vec<Value>> = Vec::with_capacity(funcs.len());
                for (func, args) in &funcs {
                    let values: Vec<Value> = args
                        .iter()
                        .map(|a| a.eval(&row, &ectx))
                        .collect::<Result<_>>()?;
                    let names: Vec<String> = func
                        .columns(&vec![SqlType::Unknown; values.len()])?
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect();
                    let mut out = Vec::new();
                    for r in rows(*func, values)? {
                        let r = r?;
                        out.push(if r.len() == 1 {
                            r.into_iter().next().unwrap_or(Value::Null)
                        } else {
                            Value::Object(Box::new(names.iter().cloned().zip(r).collect()))
                        });
                        if out.len() > MAX_SET_ROWS {
                            return Err(Error::invalid(
                                SqlState::PROGRAM_LIMIT_EXCEEDED,
                                format!(
                                    "{}() gave more than {MAX_SET_ROWS} rows for one row",
                                    func.name()
                                ),
                            ));
                        }
                    }
                    results.push(out);
                }
                let n = results.iter().map(Vec::len).max().unwrap_or(0);
                Ok((0..n)
                    .map(|i| {
                        let mut out = row.clone();
                        out.extend(
                            results
                                .iter()
                                .map(|r| r.get(i).cloned().unwrap_or(Value::Null)),
                        );
                        out
                    })
                    .collect())
            };
            match expand() {
                Ok(rows) => Box::new(rows.into_iter().map(Ok)),
                Err(e) => Box::new(std::iter::once(Err(e))),
            }
        },
    ))
}

/// The rows of `func` over evaluated arguments.
fn rows(func: TableFunc, values: Vec<Value>) -> Result<RowIter> {
    Ok(match func {
        TableFunc::GenerateSeries => {
            let (Some(start), Some(stop)) = (int_arg(&values[0])?, int_arg(&values[1])?) else {
                return Ok(Box::new(std::iter::empty()));
            };
            let step = match values.get(2) {
                Some(v) => match int_arg(v)? {
                    Some(s) => s,
                    None => return Ok(Box::new(std::iter::empty())),
                },
                None => 1,
            };
            if step == 0 {
                return Err(Error::invalid(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "step size cannot equal zero",
                ));
            }
            let mut next = Some(start);
            Box::new(std::iter::from_fn(move || {
                let current = next?;
                if (step > 0 && current > stop) || (step < 0 && current < stop) {
                    return None;
                }
                next = current.checked_add(step);
                Some(Ok(vec![Value::Int(current)]))
            }))
        }
        TableFunc::Unnest | TableFunc::ExpandArray => {
            let items = match values.into_iter().next() {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            let expand = func == TableFunc::ExpandArray;
            Box::new(items.into_iter().enumerate().map(move |(i, v)| {
                Ok(if expand {
                    vec![v, Value::Int(i as i64 + 1)]
                } else {
                    vec![v]
                })
            }))
        }
        TableFunc::GenerateSubscripts => {
            let n = match (values.first(), values.get(1).map(int_arg).transpose()?) {
                (Some(Value::Array(items)), Some(Some(1))) => items.len() as i64,
                _ => 0,
            };
            let reverse = values.get(2) == Some(&Value::Bool(true));
            Box::new(
                (1..=n).map(move |i| Ok(vec![Value::Int(if reverse { n + 1 - i } else { i })])),
            )
        }
        TableFunc::PartitionAncestors => Box::new(std::iter::empty()),
        TableFunc::PgGetKeywords => Box::new(KEYWORDS.iter().map(|(w, c)| {
            let desc = match *c {
                "R" => "reserved",
                "U" => "unreserved",
                "C" => "unreserved (cannot be function or type name)",
                _ => "reserved (can be function or type name)",
            };
            Ok(vec![
                Value::String(w.to_string()),
                Value::String(c.to_string()),
                Value::Bool(true),
                Value::String(desc.to_string()),
                Value::String("can be bare label".to_string()),
            ])
        })),
    })
}
