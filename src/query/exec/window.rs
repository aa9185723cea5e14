//! WindowAgg: window functions. Materializes its input within the memory limit, then,
//! for each distinct window (PARTITION BY and ORDER BY) of its calls, sorts the rows by
//! the partition keys then the order keys (as the Sort operator orders them) and computes
//! each call partition by partition: the ranking functions (`row_number`, `rank`,
//! `dense_rank`, `percent_rank`, `cume_dist`, `ntile`), `lag`/`lead`, and over the call's
//! frame `first_value`, `last_value`, `nth_value` and the aggregates. Every input row
//! comes out once, followed by one value per call, in the order of the last window.
//!
//! An aggregate whose frames start at the partition's first row is folded row by row; a
//! frame with a moving start is folded afresh for each row (as PostgreSQL does for
//! aggregates it cannot subtract from), so `ROWS BETWEEN CURRENT ROW AND UNBOUNDED
//! FOLLOWING` costs the square of the partition's size.

use std::cmp::Ordering;
use std::sync::Arc;

use super::aggregate::Acc;
use super::sort::compare_keys;
use super::{ExecContext, RowIter, aggregate_result_type, row_size};
use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::Row;
use crate::query::expr::{AggCall, AggFunc, FrameBound, WindowCall, WindowFunc};
use crate::query::plan::SortKey;

const NULL_VALUE_NOT_ALLOWED: SqlState = SqlState("22004");
const INVALID_PRECEDING_OR_FOLLOWING_SIZE: SqlState = SqlState("22013");
const NTILE: SqlState = SqlState("22014");
const NTH_VALUE: SqlState = SqlState("22016");

pub fn build(input: RowIter, funcs: Vec<WindowCall>, ctx: &Arc<ExecContext>) -> Result<RowIter> {
    let mut rows: Vec<Row> = Vec::new();
    let mut bytes = 0usize;
    for row in input {
        ctx.check_cancel()?;
        let row = row?;
        bytes += row_size(&row);
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory("a window function"));
        }
        rows.push(row);
    }
    let frames = funcs
        .iter()
        .map(|c| Frame::of(c, ctx))
        .collect::<Result<Vec<_>>>()?;
    let mut results: Vec<Vec<Value>> = vec![Vec::new(); funcs.len()];
    let mut done = vec![false; funcs.len()];
    let mut order: Vec<usize> = (0..rows.len()).collect();
    for first in 0..funcs.len() {
        if done[first] {
            continue;
        }
        // The calls over the same window share its sort.
        let group: Vec<usize> = (first..funcs.len())
            .filter(|&j| !done[j] && funcs[j].same_window(&funcs[first]))
            .collect();
        let window = Window::sort(&funcs[first], &rows, bytes, ctx)?;
        for &j in &group {
            done[j] = true;
            results[j] = vec![Value::Null; rows.len()];
        }
        for part in window.partitions() {
            ctx.check_cancel()?;
            let peers = window.peers(part.clone());
            let p = Partition {
                rows: &rows,
                members: &window.order[part],
                peers: &peers,
            };
            for &j in &group {
                compute(&funcs[j], &frames[j], &p, ctx, &mut results[j])?;
            }
        }
        for &j in &group {
            bytes += row_size(&results[j]);
        }
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory("a window function"));
        }
        order = window.order;
    }
    let out: Vec<Result<Row>> = order
        .into_iter()
        .map(|i| {
            let mut row = std::mem::take(&mut rows[i]);
            for r in results.iter_mut() {
                row.push(std::mem::replace(&mut r[i], Value::Null));
            }
            Ok(row)
        })
        .collect();
    Ok(Box::new(out.into_iter()))
}

/// The rows in the order of one window, and the key values they were sorted by.
struct Window {
    /// Row indexes, sorted by partition then order keys.
    order: Vec<usize>,
    /// Each row's partition key values then order key values, by row index.
    key_values: Vec<Vec<Value>>,
    keys: Vec<SortKey>,
    partition_width: usize,
}

impl Window {
    fn sort(call: &WindowCall, rows: &[Row], bytes: usize, ctx: &ExecContext) -> Result<Window> {
        let ectx = ctx.eval_context();
        let mut keys: Vec<SortKey> = call
            .partition_by
            .iter()
            .map(|e| SortKey {
                expr: e.clone(),
                desc: false,
                nulls_first: false,
            })
            .collect();
        keys.extend(call.order_by.iter().cloned());
        let mut key_values = Vec::with_capacity(rows.len());
        let mut bytes = bytes;
        for row in rows {
            ctx.check_cancel()?;
            let k = keys
                .iter()
                .map(|k| k.expr.eval(row, &ectx))
                .collect::<Result<Vec<_>>>()?;
            bytes += row_size(&k);
            if bytes > ctx.memory_limit {
                return Err(ctx.over_memory("a window function"));
            }
            key_values.push(k);
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if !keys.is_empty() {
            order.sort_by(|&a, &b| compare_keys(&keys, &key_values[a], &key_values[b]));
        }
        Ok(Window {
            order,
            key_values,
            keys,
            partition_width: call.partition_by.len(),
        })
    }

    /// Whether rows `a` and `b` (indexes) agree on the keys `range`.
    fn same(&self, range: std::ops::Range<usize>, a: usize, b: usize) -> bool {
        compare_keys(
            &self.keys[range.clone()],
            &self.key_values[a][range.clone()],
            &self.key_values[b][range],
        ) == Ordering::Equal
    }

    /// The partitions, as ranges of `order`.
    fn partitions(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.order.len() {
            let mut end = start + 1;
            while end < self.order.len()
                && self.same(0..self.partition_width, self.order[start], self.order[end])
            {
                end += 1;
            }
            out.push(start..end);
            start = end;
        }
        out
    }

    /// For each position of a partition, the positions (start, end exclusive) of its
    /// peer group: the rows with equal ORDER BY values (every row without ORDER BY).
    fn peers(&self, part: std::ops::Range<usize>) -> Vec<(usize, usize)> {
        let members = &self.order[part];
        let order_keys = self.partition_width..self.keys.len();
        let mut out = Vec::with_capacity(members.len());
        let mut start = 0;
        while start < members.len() {
            let mut end = start + 1;
            while end < members.len() && self.same(order_keys.clone(), members[start], members[end])
            {
                end += 1;
            }
            out.extend(std::iter::repeat_n((start, end), end - start));
            start = end;
        }
        out
    }
}

/// One partition: its rows (indexes into `rows`, in window order) and their peer groups.
struct Partition<'a> {
    rows: &'a [Row],
    members: &'a [usize],
    peers: &'a [(usize, usize)],
}

impl Partition<'_> {
    fn row(&self, pos: usize) -> &Row {
        &self.rows[self.members[pos]]
    }
}

/// A frame bound with its offset evaluated.
#[derive(Clone, Copy, Debug)]
enum Bound {
    UnboundedPreceding,
    Preceding(usize),
    CurrentRow,
    Following(usize),
    UnboundedFollowing,
}

/// A call's frame with evaluated offsets.
struct Frame {
    rows: bool,
    start: Bound,
    end: Bound,
}

impl Frame {
    fn of(call: &WindowCall, ctx: &ExecContext) -> Result<Frame> {
        let ectx = ctx.eval_context();
        let bound = |b: &FrameBound, which: &str| -> Result<Bound> {
            let offset = |e: &crate::query::expr::Expr| -> Result<usize> {
                match e.eval(&[], &ectx)? {
                    Value::Null => Err(Error::invalid(
                        NULL_VALUE_NOT_ALLOWED,
                        format!("frame {which} offset must not be null"),
                    )),
                    Value::Int(i) if i < 0 => Err(Error::invalid(
                        INVALID_PRECEDING_OR_FOLLOWING_SIZE,
                        format!("frame {which} offset must not be negative"),
                    )),
                    Value::Int(i) => Ok(usize::try_from(i).unwrap_or(usize::MAX)),
                    other => Err(Error::Internal(format!("frame offset {other:?}"))),
                }
            };
            Ok(match b {
                FrameBound::UnboundedPreceding => Bound::UnboundedPreceding,
                FrameBound::Preceding(e) => Bound::Preceding(offset(e)?),
                FrameBound::CurrentRow => Bound::CurrentRow,
                FrameBound::Following(e) => Bound::Following(offset(e)?),
                FrameBound::UnboundedFollowing => Bound::UnboundedFollowing,
            })
        };
        Ok(Frame {
            rows: call.frame.rows,
            start: bound(&call.frame.start, "starting")?,
            end: bound(&call.frame.end, "ending")?,
        })
    }

    /// The positions (start, end exclusive) of the frame of the row at `pos`; empty
    /// when end <= start.
    fn range(&self, pos: usize, p: &Partition<'_>) -> (usize, usize) {
        let n = p.members.len();
        let start = match self.start {
            Bound::UnboundedPreceding => 0,
            Bound::Preceding(k) => pos.saturating_sub(k),
            Bound::CurrentRow if self.rows => pos,
            Bound::CurrentRow => p.peers[pos].0,
            Bound::Following(k) => pos.saturating_add(k).min(n),
            Bound::UnboundedFollowing => n,
        };
        let end = match self.end {
            Bound::UnboundedPreceding => 0,
            Bound::Preceding(k) => (pos + 1).saturating_sub(k),
            Bound::CurrentRow if self.rows => pos + 1,
            Bound::CurrentRow => p.peers[pos].1,
            Bound::Following(k) => (pos + 1).saturating_add(k).min(n),
            Bound::UnboundedFollowing => n,
        };
        (start, end)
    }
}

/// Computes `call` for every row of the partition into `out` (by row index).
fn compute(
    call: &WindowCall,
    frame: &Frame,
    p: &Partition<'_>,
    ctx: &ExecContext,
    out: &mut [Value],
) -> Result<()> {
    let ectx = ctx.eval_context();
    let n = p.members.len();
    match call.func {
        WindowFunc::RowNumber => {
            for (pos, &r) in p.members.iter().enumerate() {
                out[r] = Value::Int(pos as i64 + 1);
            }
        }
        WindowFunc::Rank => {
            for (pos, &r) in p.members.iter().enumerate() {
                out[r] = Value::Int(p.peers[pos].0 as i64 + 1);
            }
        }
        WindowFunc::DenseRank => {
            let mut rank = 0i64;
            for (pos, &r) in p.members.iter().enumerate() {
                if p.peers[pos].0 == pos {
                    rank += 1;
                }
                out[r] = Value::Int(rank);
            }
        }
        WindowFunc::PercentRank => {
            for (pos, &r) in p.members.iter().enumerate() {
                out[r] = Value::Float(if n > 1 {
                    p.peers[pos].0 as f64 / (n - 1) as f64
                } else {
                    0.0
                });
            }
        }
        WindowFunc::CumeDist => {
            for (pos, &r) in p.members.iter().enumerate() {
                out[r] = Value::Float(p.peers[pos].1 as f64 / n as f64);
            }
        }
        WindowFunc::Ntile => {
            // The bucket count is read at the partition's first row (at the next ones
            // while it is NULL, as PostgreSQL does).
            let mut buckets: Option<usize> = None;
            for (pos, &r) in p.members.iter().enumerate() {
                let b = match buckets {
                    Some(b) => b,
                    None => match positive_arg(call, 0, p.row(pos), ctx, "ntile", NTILE)? {
                        None => {
                            out[r] = Value::Null;
                            continue;
                        }
                        Some(b) => *buckets.insert(b),
                    },
                };
                // The first n % b buckets hold one row more than the others.
                let (small, extra) = (n / b, n % b);
                let bucket = if pos < extra * (small + 1) {
                    pos / (small + 1)
                } else {
                    extra + (pos - extra * (small + 1)) / small.max(1)
                };
                out[r] = Value::Int(bucket as i64 + 1);
            }
        }
        WindowFunc::FirstValue | WindowFunc::LastValue | WindowFunc::NthValue => {
            let value = &call.args[0];
            for (pos, &r) in p.members.iter().enumerate() {
                let (start, end) = frame.range(pos, p);
                let target = match call.func {
                    WindowFunc::FirstValue => Some(start),
                    WindowFunc::LastValue => end.checked_sub(1),
                    _ => match positive_arg(call, 1, p.row(pos), ctx, "nth_value", NTH_VALUE)? {
                        None => None,
                        Some(k) => start.checked_add(k - 1),
                    },
                };
                out[r] = match target {
                    Some(t) if t >= start && t < end => value.eval(p.row(t), &ectx)?,
                    _ => Value::Null,
                };
            }
        }
        WindowFunc::Lag | WindowFunc::Lead => {
            let value = call
                .args
                .first()
                .ok_or_else(|| Error::Internal("lag/lead without an argument".into()))?;
            for (pos, &r) in p.members.iter().enumerate() {
                if pos % 1024 == 0 {
                    ctx.check_cancel()?;
                }
                let row = &p.rows[r];
                let offset = match call.args.get(1) {
                    None => Value::Int(1),
                    Some(e) => e.eval(row, &ectx)?,
                };
                let offset = match offset {
                    Value::Null => {
                        out[r] = Value::Null;
                        continue;
                    }
                    Value::Int(i) => i128::from(i),
                    other => return Err(Error::Internal(format!("lag/lead offset {other:?}"))),
                };
                let target = if call.func == WindowFunc::Lag {
                    pos as i128 - offset
                } else {
                    pos as i128 + offset
                };
                out[r] = if (0..n as i128).contains(&target) {
                    value.eval(p.row(target as usize), &ectx)?
                } else {
                    match call.args.get(2) {
                        Some(d) => d.eval(row, &ectx)?,
                        None => Value::Null,
                    }
                };
            }
        }
        WindowFunc::Agg(func) => aggregate(call, func, frame, p, ctx, out)?,
    }
    Ok(())
}

/// Argument `i` of `call` at `row`, which must be NULL (None) or a positive integer.
fn positive_arg(
    call: &WindowCall,
    i: usize,
    row: &Row,
    ctx: &ExecContext,
    name: &str,
    code: SqlState,
) -> Result<Option<usize>> {
    let e = call
        .args
        .get(i)
        .ok_or_else(|| Error::Internal(format!("{name} without argument {i}")))?;
    match e.eval(row, &ctx.eval_context())? {
        Value::Null => Ok(None),
        Value::Int(k) if k > 0 => Ok(Some(usize::try_from(k).unwrap_or(usize::MAX))),
        Value::Int(_) => Err(Error::invalid(
            code,
            format!("argument of {name} must be greater than zero"),
        )),
        other => Err(Error::Internal(format!("{name} argument {other:?}"))),
    }
}

/// An aggregate over each row's frame: folded incrementally while frames only grow
/// (they start at the partition's first row), else afresh for each distinct frame.
fn aggregate(
    call: &WindowCall,
    func: AggFunc,
    frame: &Frame,
    p: &Partition<'_>,
    ctx: &ExecContext,
    out: &mut [Value],
) -> Result<()> {
    let ectx = ctx.eval_context();
    let agg = AggCall {
        func,
        arg: None,
        distinct: false,
        arg_type: call.arg_type.clone(),
        separator: None,
        packed_order: None,
    };
    let out_type = aggregate_result_type(func, &call.arg_type);
    let args: Vec<Option<Value>> = match (func, call.args.first()) {
        (AggFunc::CountStar, _) | (_, None) => vec![None; p.members.len()],
        (_, Some(arg)) => p
            .members
            .iter()
            .map(|&r| arg.eval(&p.rows[r], &ectx).map(Some))
            .collect::<Result<_>>()?,
    };
    let growing = matches!(frame.start, Bound::UnboundedPreceding);
    let mut acc = Acc::new(&agg);
    let mut added = 0usize;
    let mut last: Option<((usize, usize), Value)> = None;
    for (pos, &r) in p.members.iter().enumerate() {
        if pos % 1024 == 0 {
            ctx.check_cancel()?;
        }
        let (start, end) = frame.range(pos, p);
        let end = end.max(start);
        if let Some((range, v)) = &last
            && *range == (start, end)
        {
            out[r] = v.clone();
            continue;
        }
        let v = if growing {
            while added < end {
                acc.add(&agg, args[added].clone())?;
                added += 1;
            }
            acc.value(&out_type)?
        } else {
            let mut fresh = Acc::new(&agg);
            for (k, a) in args[start..end].iter().enumerate() {
                if k % 1024 == 1023 {
                    ctx.check_cancel()?;
                }
                fresh.add(&agg, a.clone())?;
            }
            fresh.finish(&out_type)?
        };
        out[r] = v.clone();
        last = Some(((start, end), v));
    }
    Ok(())
}
