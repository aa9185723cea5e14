//! Hash aggregate: groups rows by the GROUP BY values and folds each group's aggregates
//! (COUNT, SUM, AVG, MIN, MAX, with DISTINCT); groups come out in first-seen order.
//! Without GROUP BY there is exactly one group, even over no rows.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use indexmap::IndexMap;
use rust_decimal::Decimal;

use super::scan::Scanned;
use super::{ExecContext, RowIter, group_key, row_size};
use crate::doc::Value;
use crate::error::{Error, Result};
use crate::query::Row;
use crate::query::expr::{AggCall, AggFunc, EvalContext, Expr, sort_cmp};
use crate::query::types::{self, SqlType};
use crate::storage::recycle;

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

    /// Adds another running sum to this one.
    fn merge(&mut self, other: &Sum) -> Result<()> {
        self.int += other.int;
        self.dec = self.dec.checked_add(other.dec).ok_or_else(|| {
            Error::invalid(
                types::NUMERIC_VALUE_OUT_OF_RANGE,
                "numeric sum out of range",
            )
        })?;
        self.float += other.float;
        self.kind = self.kind.max(other.kind);
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

    /// Folds in `later`, an accumulator of the same call over rows that come after this
    /// one's (a parallel scan's next part). Not for DISTINCT calls, whose seen values
    /// are not merged.
    pub(super) fn merge(&mut self, later: Acc) -> Result<()> {
        match (&mut self.state, later.state) {
            (State::Count(a), State::Count(b)) => *a += b,
            (State::Sum(a), State::Sum(b)) => a.merge(&b)?,
            (State::Avg(a, n), State::Avg(b, m)) => {
                a.merge(&b)?;
                *n += m;
            }
            (State::Min(a), State::Min(Some(b))) => {
                if a.as_ref().is_none_or(|cur| sort_cmp(&b, cur).is_lt()) {
                    *a = Some(b);
                }
            }
            (State::Max(a), State::Max(Some(b))) => {
                if a.as_ref().is_none_or(|cur| sort_cmp(&b, cur).is_gt()) {
                    *a = Some(b);
                }
            }
            (State::Min(_), State::Min(None)) | (State::Max(_), State::Max(None)) => {}
            (State::Collect(a), State::Collect(b)) => a.extend(b),
            (State::Bool(and, a), State::Bool(_, b)) => {
                *a = match (*a, b) {
                    (Some(x), Some(y)) => Some(if *and { x && y } else { x || y }),
                    (x, y) => x.or(y),
                }
            }
            _ => return Err(Error::Internal("merging unlike aggregates".into())),
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

/// Groups by key (the encoded GROUP BY values), in first-seen order, each with its
/// GROUP BY values and its accumulators.
type Groups = IndexMap<Vec<u8>, (Row, Vec<Acc>), foldhash::fast::RandomState>;

pub fn build(
    input: Scanned,
    group_by: Vec<Expr>,
    aggs: Vec<AggCall>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    if group_by.is_empty() {
        // One group, even over no rows: no keys to hash.
        let ectx = ctx.eval_context();
        let mut accs: Vec<Acc> = aggs.iter().map(Acc::new).collect();
        each_row(input, &AtomicBool::new(false), |row| {
            fold(&mut accs, &aggs, row, &ectx)
        })?;
        let out = finish(Vec::new(), accs, &aggs)?;
        return Ok(Box::new(std::iter::once(Ok(out))));
    }
    let bytes = AtomicUsize::new(0);
    let groups = group(
        input,
        &group_by,
        &aggs,
        ctx,
        &bytes,
        &AtomicBool::new(false),
    )?;
    emit(groups, &aggs)
}

/// Whether [`build_parallel`] can compute these aggregates: each part's accumulators
/// must merge into one (DISTINCT ones would need their seen values merged too).
pub fn mergeable(aggs: &[AggCall]) -> bool {
    aggs.iter().all(|a| !a.distinct)
}

/// [`build`] over the parts of a scan cut by key, in key order: each part is grouped on
/// its own thread (the first on this one), then the groups are merged in part order,
/// which keeps groups in first-seen order and `array_agg` items in scan order. The
/// memory limit holds for all parts together; the first error stops every part.
pub fn build_parallel(
    parts: Vec<Scanned>,
    group_by: Vec<Expr>,
    aggs: Vec<AggCall>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    let shared = Arc::new(Shared {
        group_by,
        aggs,
        ctx: ctx.clone(),
        bytes: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let mut parts = parts.into_iter();
    let first = parts.next();
    let others: Vec<_> = parts
        .map(|part| {
            let shared = shared.clone();
            super::parallel::run_on_worker(move || shared.group(part))
        })
        .collect();
    let mut results = vec![first.map_or_else(|| Ok(Groups::default()), |p| shared.group(p))];
    for other in others {
        results.push(
            other
                .recv()
                .unwrap_or_else(|_| Err(Error::Internal("a parallel worker failed".into()))),
        );
    }
    let (group_by, aggs) = (&shared.group_by, &shared.aggs);
    let mut merged: Option<Groups> = None;
    for result in results {
        let groups = result?;
        match &mut merged {
            None => merged = Some(groups),
            Some(all) => {
                for (key, (keys, accs)) in groups {
                    match all.get_mut(&key) {
                        Some((_, mine)) => {
                            for (acc, later) in mine.iter_mut().zip(accs) {
                                acc.merge(later)?;
                            }
                        }
                        None => {
                            all.insert(key, (keys, accs));
                        }
                    }
                }
            }
        }
    }
    let mut groups = merged.unwrap_or_default();
    if group_by.is_empty() && groups.is_empty() {
        // One group, even over no rows.
        groups.insert(
            Vec::new(),
            (Vec::new(), aggs.iter().map(Acc::new).collect()),
        );
    }
    emit(groups, aggs)
}

/// What the parts of a parallel aggregate share.
struct Shared {
    group_by: Vec<Expr>,
    aggs: Vec<AggCall>,
    ctx: Arc<ExecContext>,
    /// Memory the groups of all parts take.
    bytes: AtomicUsize,
    /// Set by the first part that fails, to end the others early.
    stop: AtomicBool,
}

impl Shared {
    fn group(&self, part: Scanned) -> Result<Groups> {
        let out = group(
            part,
            &self.group_by,
            &self.aggs,
            &self.ctx,
            &self.bytes,
            &self.stop,
        );
        if out.is_err() {
            self.stop.store(true, Ordering::Relaxed);
        }
        out
    }
}

/// Calls `each` with every row of `input` (until `stop` is set), each row lent: a
/// cursor's in place, an iterator's handed back to the scan that made it afterwards.
fn each_row(
    input: Scanned,
    stop: &AtomicBool,
    mut each: impl FnMut(&[Value]) -> Result<()>,
) -> Result<()> {
    match input {
        Scanned::Lent(mut rows) => {
            while !stop.load(Ordering::Relaxed) && rows.advance()? {
                each(rows.row())?;
            }
        }
        Scanned::Rows(rows) => {
            for row in rows {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let row = row?;
                each(&row)?;
                // Its buffers go to the next row the scan reads.
                recycle::give_row(row);
            }
        }
    }
    Ok(())
}

/// Folds one row into a group's accumulators, reading the arguments in place.
fn fold(accs: &mut [Acc], aggs: &[AggCall], row: &[Value], ectx: &EvalContext<'_>) -> Result<()> {
    for (acc, call) in accs.iter_mut().zip(aggs) {
        let v = match (&call.func, &call.arg) {
            (AggFunc::CountStar, _) | (_, None) => None,
            (_, Some(arg)) => Some(arg.eval_cow(row, ectx)?),
        };
        acc.add_cow(call, v)?;
    }
    Ok(())
}

/// A group's output row: its GROUP BY values, then each aggregate's value.
fn finish(mut keys: Row, accs: Vec<Acc>, aggs: &[AggCall]) -> Result<Row> {
    for (acc, call) in accs.into_iter().zip(aggs) {
        keys.push(acc.finish(&result_type(call.func, &call.arg_type))?);
    }
    Ok(keys)
}

fn emit(groups: Groups, aggs: &[AggCall]) -> Result<RowIter> {
    let mut out = Vec::with_capacity(groups.len());
    for (_, (keys, accs)) in groups {
        out.push(Ok(finish(keys, accs, aggs)?));
    }
    Ok(Box::new(out.into_iter()))
}

/// Groups `input`'s rows. `bytes` counts the memory the groups take (shared by the
/// parts of a parallel scan); `stop` ends the grouping early, when another part failed.
fn group(
    input: Scanned,
    group_by: &[Expr],
    aggs: &[AggCall],
    ctx: &Arc<ExecContext>,
    bytes: &AtomicUsize,
    stop: &AtomicBool,
) -> Result<Groups> {
    let ectx = ctx.eval_context();
    let mut groups = Groups::default();
    if group_by.is_empty() {
        // One group: no keys to look up. (Looking up the empty key costs more than it
        // seems: comparing two empty keys is a `memcmp` of length 0 at the dangling
        // address of an empty `Vec`, and the vector `memcmp` of this machine's libc
        // reads it under an empty mask, which the CPU serves with a slow assist for
        // the unmapped page: a third of a whole-table `sum` went there.)
        let mut accs: Option<Vec<Acc>> = None;
        each_row(input, stop, |row| {
            let accs = accs.get_or_insert_with(|| aggs.iter().map(Acc::new).collect());
            fold(accs, aggs, row, &ectx)
        })?;
        if let Some(accs) = accs {
            groups.insert(Vec::new(), (Vec::new(), accs));
        }
        return Ok(groups);
    }
    // The encoded key of the current row, its buffer reused from row to row.
    let mut key = Vec::new();
    // The group of the row before: rows in the order of their group (an index's) find
    // theirs without a lookup.
    let mut last: Option<usize> = None;
    each_row(input, stop, |row| {
        key.clear();
        for e in group_by {
            group_key(std::slice::from_ref(&*e.eval_cow(row, &ectx)?), &mut key);
        }
        let same = last.filter(|&i| groups.get_index(i).is_some_and(|(k, _)| *k == key));
        let at = match same.or_else(|| groups.get_index_of(key.as_slice())) {
            Some(at) => at,
            None => {
                let keys = group_by
                    .iter()
                    .map(|e| e.eval(row, &ectx))
                    .collect::<Result<Row>>()?;
                let size = row_size(&keys) + key.len() + 64 * aggs.len();
                if bytes.fetch_add(size, Ordering::Relaxed) + size > ctx.memory_limit {
                    return Err(ctx.over_memory("GROUP BY"));
                }
                let accs = aggs.iter().map(Acc::new).collect();
                groups.insert_full(key.clone(), (keys, accs)).0
            }
        };
        last = Some(at);
        if let Some((_, (_, accs))) = groups.get_index_mut(at) {
            fold(accs, aggs, row, &ectx)?;
        }
        Ok(())
    })?;
    Ok(groups)
}
