//! Hash aggregate: groups rows by the GROUP BY values and folds each group's aggregates
//! (COUNT, SUM, AVG, MIN, MAX, with DISTINCT); groups come out in first-seen order.
//! Without GROUP BY there is exactly one group, even over no rows.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;
use rust_decimal::Decimal;

use super::{ExecContext, RowIter, group_key, row_size};
use crate::doc::Value;
use crate::error::{Error, Result};
use crate::query::Row;
use crate::query::expr::{AggCall, AggFunc, Expr, sort_cmp};
use crate::query::types::{self, SqlType};

/// A running sum in the narrowest exact kind that holds it.
#[derive(Clone, Debug, Default)]
struct Sum {
    int: i128,
    dec: Decimal,
    float: f64,
    /// 0 nothing yet, 1 integers, 2 decimals, 3 floats.
    kind: u8,
}

impl Sum {
    fn add(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::Int(i) => {
                self.int += i128::from(*i);
                self.kind = self.kind.max(1);
            }
            Value::Numeric(n) => {
                let d = types::parse_decimal(n)
                    .ok_or_else(|| Error::Internal(format!("bad numeric {n}")))?;
                self.dec = self.dec.checked_add(d).ok_or_else(|| {
                    Error::invalid(
                        types::NUMERIC_VALUE_OUT_OF_RANGE,
                        "numeric sum out of range",
                    )
                })?;
                self.kind = self.kind.max(2);
            }
            Value::Float(f) => {
                self.float += f;
                self.kind = 3;
            }
            other => {
                return Err(Error::invalid(
                    crate::query::expr::UNDEFINED_FUNCTION,
                    format!(
                        "cannot sum values of type {}",
                        SqlType::of_value(other).name()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn decimal(&self) -> Result<Decimal> {
        let int = Decimal::try_from_i128_with_scale(self.int, 0)
            .map_err(|_| Error::invalid(types::NUMERIC_VALUE_OUT_OF_RANGE, "sum out of range"))?;
        int.checked_add(self.dec)
            .ok_or_else(|| Error::invalid(types::NUMERIC_VALUE_OUT_OF_RANGE, "sum out of range"))
    }

    fn total(&self, out_type: &SqlType) -> Result<Value> {
        let float_out = matches!(out_type, SqlType::Float4 | SqlType::Float8);
        Ok(match self.kind {
            0 => Value::Null,
            // A float sum (or one declared float, over documents whose numbers happen to
            // be whole) is a float.
            1..=3 if self.kind == 3 || float_out => Value::Float(
                self.float + self.int as f64 + self.dec.to_string().parse::<f64>().unwrap_or(0.0),
            ),
            1 if out_type.is_integer() => Value::Int(i64::try_from(self.int).map_err(|_| {
                Error::invalid(types::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
            })?),
            _ => Value::Numeric(self.decimal()?.to_string()),
        })
    }
}

#[derive(Clone, Debug)]
enum State {
    Count(i64),
    Sum(Sum),
    Avg(Sum, i64),
    Min(Option<Value>),
    Max(Option<Value>),
    /// `array_agg`/`string_agg`: (sort keys, value) per row.
    Collect(Vec<(Vec<Value>, Value)>),
    /// `bool_and` (true) / `bool_or` (false): the running result, None before a value.
    Bool(bool, Option<bool>),
}

pub(super) struct Acc {
    state: State,
    seen: Option<HashSet<Vec<u8>>>,
    /// `array_agg`/`string_agg` ORDER BY directions and `string_agg`'s separator.
    order: Vec<bool>,
    separator: Option<String>,
}

impl Acc {
    pub(super) fn new(call: &AggCall) -> Acc {
        Acc {
            state: match call.func {
                AggFunc::CountStar | AggFunc::Count => State::Count(0),
                AggFunc::Sum => State::Sum(Sum::default()),
                AggFunc::Avg => State::Avg(Sum::default(), 0),
                AggFunc::Min => State::Min(None),
                AggFunc::Max => State::Max(None),
                AggFunc::ArrayAgg | AggFunc::StringAgg => State::Collect(Vec::new()),
                AggFunc::BoolAnd => State::Bool(true, None),
                AggFunc::BoolOr => State::Bool(false, None),
            },
            seen: call.distinct.then(HashSet::new),
            order: call.packed_order.clone().unwrap_or_default(),
            separator: call.separator.clone(),
        }
    }

    /// Folds in one row's argument (None for `count(*)`).
    pub(super) fn add(&mut self, call: &AggCall, v: Option<Value>) -> Result<()> {
        self.add_cow(call, v.map(Cow::Owned))
    }

    /// [`Acc::add`] for an argument that may be borrowed from the row: counts, sums and
    /// averages read it in place; only the aggregates that keep values copy them.
    pub(super) fn add_cow(&mut self, call: &AggCall, v: Option<Cow<'_, Value>>) -> Result<()> {
        let Some(v) = v else {
            if let State::Count(n) = &mut self.state {
                *n += 1;
            }
            return Ok(());
        };
        if matches!(*v, Value::Null) {
            return Ok(());
        }
        if let Some(seen) = &mut self.seen {
            let mut key = Vec::new();
            group_key(std::slice::from_ref(&*v), &mut key);
            if !seen.insert(key) {
                return Ok(());
            }
        }
        match &mut self.state {
            State::Bool(and, acc) => {
                let b = match &*v {
                    Value::Bool(b) => *b,
                    other => {
                        return Err(Error::invalid(
                            types::DATATYPE_MISMATCH,
                            format!(
                                "function {}() needs boolean values, not {}",
                                if *and { "bool_and" } else { "bool_or" },
                                other.type_name()
                            ),
                        ));
                    }
                };
                *acc = Some(match acc {
                    None => b,
                    Some(a) if *and => *a && b,
                    Some(a) => *a || b,
                });
            }
            State::Collect(items) => {
                let (value, keys) = match (v.into_owned(), &call.packed_order) {
                    (Value::Array(mut pack), Some(_)) if !pack.is_empty() => {
                        let value = pack.remove(0);
                        (value, pack)
                    }
                    (v, _) => (v, Vec::new()),
                };
                items.push((keys, value));
            }
            State::Count(n) => *n += 1,
            State::Sum(s) => s.add(&v)?,
            State::Avg(s, n) => {
                s.add(&v)?;
                *n += 1;
            }
            State::Min(m) => {
                if m.as_ref().is_none_or(|cur| sort_cmp(&v, cur).is_lt()) {
                    *m = Some(v.into_owned());
                }
            }
            State::Max(m) => {
                if m.as_ref().is_none_or(|cur| sort_cmp(&v, cur).is_gt()) {
                    *m = Some(v.into_owned());
                }
            }
        }
        Ok(())
    }

    /// The value so far, the accumulator kept (a window frame that grows row by row).
    pub(super) fn value(&self, out_type: &SqlType) -> Result<Value> {
        Acc {
            state: self.state.clone(),
            seen: None,
            order: self.order.clone(),
            separator: self.separator.clone(),
        }
        .finish(out_type)
    }

    pub(super) fn finish(self, out_type: &SqlType) -> Result<Value> {
        Ok(match self.state {
            State::Count(n) => Value::Int(n),
            State::Sum(s) => s.total(out_type)?,
            State::Avg(_, 0) => Value::Null,
            State::Avg(s, n) => {
                if s.kind == 3 || matches!(out_type, SqlType::Float4 | SqlType::Float8) {
                    match s.total(&SqlType::Float8)? {
                        Value::Float(f) => Value::Float(f / n as f64),
                        other => other,
                    }
                } else {
                    let q = types::numeric_div(s.decimal()?, Decimal::from(n))
                        .ok_or_else(|| Error::Internal("average of no rows".into()))?;
                    Value::Numeric(q.to_string())
                }
            }
            State::Min(m) | State::Max(m) => m.unwrap_or(Value::Null),
            State::Collect(items) => {
                collect(items, &self.order, self.separator.as_deref(), out_type)
            }
            State::Bool(_, acc) => acc.map_or(Value::Null, Value::Bool),
        })
    }
}

/// The final value of `array_agg` (an array; NULL without rows) or `string_agg`
/// (text joined by `separator`; NULL values skipped), items sorted by their keys
/// (`desc`: one flag per key) when the call had ORDER BY.
fn collect(
    mut items: Vec<(Vec<Value>, Value)>,
    desc: &[bool],
    separator: Option<&str>,
    out_type: &SqlType,
) -> Value {
    if !desc.is_empty() {
        items.sort_by(|(a, _), (b, _)| {
            for ((x, y), d) in a.iter().zip(b).zip(desc) {
                let o = sort_cmp(x, y);
                if o.is_ne() {
                    return if *d { o.reverse() } else { o };
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    if let SqlType::Array(_) = out_type {
        return if items.is_empty() {
            Value::Null
        } else {
            Value::Array(items.into_iter().map(|(_, v)| v).collect())
        };
    }
    let mut out: Option<String> = None;
    for (_, v) in items {
        let Some(text) = crate::query::expr::as_text(&v) else {
            continue;
        };
        match &mut out {
            None => out = Some(text),
            Some(s) => {
                s.push_str(separator.unwrap_or_default());
                s.push_str(&text);
            }
        }
    }
    out.map_or(Value::Null, Value::String)
}

/// The result type of an aggregate over an argument of type `arg`.
pub fn result_type(func: AggFunc, arg: &SqlType) -> SqlType {
    match func {
        AggFunc::CountStar | AggFunc::Count => SqlType::Int8,
        AggFunc::Sum => match arg {
            SqlType::Int2 | SqlType::Int4 => SqlType::Int8,
            SqlType::Float4 | SqlType::Float8 => SqlType::Float8,
            SqlType::Jsonb | SqlType::Unknown => SqlType::Float8,
            _ => SqlType::Numeric,
        },
        AggFunc::Avg => match arg {
            SqlType::Float4 | SqlType::Float8 | SqlType::Jsonb | SqlType::Unknown => {
                SqlType::Float8
            }
            _ => SqlType::Numeric,
        },
        AggFunc::Min | AggFunc::Max => arg.clone(),
        AggFunc::ArrayAgg => SqlType::Array(Box::new(match arg {
            SqlType::Unknown => SqlType::Text,
            t => t.clone(),
        })),
        AggFunc::StringAgg => SqlType::Text,
        AggFunc::BoolAnd | AggFunc::BoolOr => SqlType::Bool,
    }
}

pub fn build(
    input: RowIter,
    group_by: Vec<Expr>,
    aggs: Vec<AggCall>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    let ectx = ctx.eval_context();
    // Folds one row into a group's accumulators, reading the arguments in place.
    let fold = |accs: &mut [Acc], row: &Row| -> Result<()> {
        for (acc, call) in accs.iter_mut().zip(&aggs) {
            let v = match (&call.func, &call.arg) {
                (AggFunc::CountStar, _) | (_, None) => None,
                (_, Some(arg)) => Some(arg.eval_cow(row, &ectx)?),
            };
            acc.add_cow(call, v)?;
        }
        Ok(())
    };
    let finish = |mut keys: Row, accs: Vec<Acc>| -> Result<Row> {
        for (acc, call) in accs.into_iter().zip(&aggs) {
            keys.push(acc.finish(&result_type(call.func, &call.arg_type))?);
        }
        Ok(keys)
    };
    if group_by.is_empty() {
        // One group, even over no rows: no keys to hash.
        let mut accs: Vec<Acc> = aggs.iter().map(Acc::new).collect();
        for row in input {
            fold(&mut accs, &row?)?;
        }
        let out = finish(Vec::new(), accs)?;
        return Ok(Box::new(std::iter::once(Ok(out))));
    }
    let mut groups: IndexMap<Vec<u8>, (Row, Vec<Acc>), foldhash::fast::RandomState> =
        IndexMap::default();
    let mut bytes = 0usize;
    // The encoded key of the current row, its buffer reused from row to row.
    let mut key = Vec::new();
    for row in input {
        let row = row?;
        key.clear();
        for e in &group_by {
            group_key(std::slice::from_ref(&*e.eval_cow(&row, &ectx)?), &mut key);
        }
        let at = match groups.get_index_of(key.as_slice()) {
            Some(at) => at,
            None => {
                let keys = group_by
                    .iter()
                    .map(|e| e.eval(&row, &ectx))
                    .collect::<Result<Row>>()?;
                bytes += row_size(&keys) + key.len() + 64 * aggs.len();
                if bytes > ctx.memory_limit {
                    return Err(ctx.over_memory("GROUP BY"));
                }
                let accs = aggs.iter().map(Acc::new).collect();
                groups.insert_full(key.clone(), (keys, accs)).0
            }
        };
        if let Some((_, (_, accs))) = groups.get_index_mut(at) {
            fold(accs, &row)?;
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for (_, (keys, accs)) in groups {
        out.push(Ok(finish(keys, accs)?));
    }
    Ok(Box::new(out.into_iter()))
}
