//! Access-path selection: whether a scan reads the whole collection or one of its
//! indexes, and with which bounds, chosen by comparing estimated costs.
//!
//! An index serves the conjuncts of the scan's filter that compare an indexed field with
//! something that reads no row: equalities (`=`, `IS NULL`, `IN (...)`) on a prefix of
//! its fields, then one range (`<`, `<=`, `>`, `>=`, `BETWEEN`) on the next field
//! (`brand = 'AudioPhonic' AND price < 200` on `(brand, price)`). It can also give rows
//! already in the order an `ORDER BY` on that next field asks for, which lets a
//! `LIMIT n` stop after n rows, and it covers a query that reads only indexed top-level
//! fields and the id (an index-only scan).
//!
//! Estimates come from statistics kept up to date on every write (entries and distinct
//! values per index; see [`crate::storage::indexes`]), and, when a range has constant
//! bounds, from counting the entries in it (up to [`COUNT_CAP`]); an equality with
//! constant values is counted too, but only when its estimate would otherwise send the
//! query to a full scan (a value rarer than the average). Costs are in units of "one
//! document read and tested by a full scan"; an index costs a probe per range plus a
//! random document read per entry ([`FETCH_COST`]), or much less per entry when covering.

use crate::catalog::{Collection, IndexDef, Kind};
use crate::query::Column;
use crate::query::exec::index_scan;
use crate::query::expr::{BinOp, Expr, PathStep};
use crate::query::optimizer::{conjuncts, reads_no_row};
use crate::query::plan::{IndexAccess, IndexOrder, Pin, RangeBound};
use crate::query::types::SqlType;
use crate::storage::Storage;

/// Entries counted at most when estimating a range with constant bounds.
pub const COUNT_CAP: u64 = 2_000;
/// Cost of reading one document through an index entry (a point read).
pub const FETCH_COST: f64 = 4.0;
/// Cost of one row of an index-only scan.
pub const COVERING_COST: f64 = 0.3;
/// Cost of starting one index range.
pub const PROBE_COST: f64 = 4.0;
/// Cost per row of sorting.
pub const SORT_COST: f64 = 0.2;
/// Fraction of rows a range with one bound is assumed to keep when it cannot be counted.
const ONE_BOUND_SELECTIVITY: f64 = 1.0 / 3.0;
/// ... and with both bounds.
const TWO_BOUNDS_SELECTIVITY: f64 = 1.0 / 9.0;
/// Most prefixes an `IN` list may expand to.
const MAX_ALTERNATIVES: usize = 256;

/// What the planner may use and consult.
pub struct PlanContext<'a> {
    pub storage: &'a Storage,
    /// `SET enable_indexscan = off` forbids index scans.
    pub enable_indexscan: bool,
    /// `SET enable_seqscan = off` makes full scans a last resort.
    pub enable_seqscan: bool,
    /// Collections whose indexes may not be used (an open transaction wrote them, and
    /// the indexes do not hold its pending writes).
    pub unindexed: Vec<u32>,
}

/// What the plan above a scan wants from it.
#[derive(Default)]
pub struct Needs {
    /// At most this many rows are taken (a LIMIT with nothing blocking in between).
    pub limit: Option<u64>,
    /// An ORDER BY the scan could satisfy: each key as (field path, desc, nulls first).
    pub order: Option<Vec<(Vec<String>, bool, bool)>>,
    /// Every scan column the plan reads, if known.
    pub used_columns: Option<Vec<usize>>,
}

/// The chosen index access, and whether it delivers the order asked for.
pub struct Choice {
    pub access: IndexAccess,
    pub ordered: bool,
}

/// One conjunct that bounds a field.
enum Cond {
    Eq(Expr),
    IsNull,
    In(Vec<Expr>),
    Lower(Expr, bool),
    Upper(Expr, bool),
    Between(Expr, Expr),
}

struct FieldCond {
    path: Vec<String>,
    cond: Cond,
    conjunct: Expr,
}

/// Constant at plan time (no parameter either), so the planner may evaluate it.
fn is_literal(e: &Expr) -> bool {
    matches!(e, Expr::Literal(_))
}

/// The field path a scan-level expression reads, if it is a plain field or a path of
/// keys into one (never the schemaless `id`, which is the document key).
pub fn field_path(e: &Expr, collection: &Collection, columns: &[Column]) -> Option<Vec<String>> {
    let (base, steps): (&Expr, &[PathStep]) = match e {
        Expr::Path(base, steps) => (base, steps),
        other => (other, &[]),
    };
    let Expr::Column(i) = base else {
        return None;
    };
    if collection.kind == Kind::Schemaless && *i == 0 {
        return None;
    }
    let mut path = vec![columns.get(*i)?.name.clone()];
    for s in steps {
        match s {
            PathStep::Key(k) => path.push(k.clone()),
            PathStep::Index(_) => return None,
        }
    }
    Some(path)
}

fn field_conditions(filter: &Expr, collection: &Collection, columns: &[Column]) -> Vec<FieldCond> {
    let mut parts = Vec::new();
    conjuncts(filter, &mut parts);
    let mut out = Vec::new();
    for c in parts {
        let found = match &c {
            Expr::Binary(op, l, r) => {
                let (path, value, flipped) = match (
                    field_path(l, collection, columns),
                    field_path(r, collection, columns),
                ) {
                    (Some(p), _) if reads_no_row(r) => (p, (**r).clone(), false),
                    (_, Some(p)) if reads_no_row(l) => (p, (**l).clone(), true),
                    _ => continue,
                };
                let cond = match (op, flipped) {
                    (BinOp::Eq, _) => Cond::Eq(value),
                    (BinOp::Lt, false) | (BinOp::Gt, true) => Cond::Upper(value, false),
                    (BinOp::LtEq, false) | (BinOp::GtEq, true) => Cond::Upper(value, true),
                    (BinOp::Gt, false) | (BinOp::Lt, true) => Cond::Lower(value, false),
                    (BinOp::GtEq, false) | (BinOp::LtEq, true) => Cond::Lower(value, true),
                    _ => continue,
                };
                Some((path, cond))
            }
            Expr::IsNull(e, false) => field_path(e, collection, columns).map(|p| (p, Cond::IsNull)),
            Expr::InList {
                expr,
                list,
                negated: false,
            } if list.iter().all(reads_no_row) && !list.is_empty() => {
                field_path(expr, collection, columns).map(|p| (p, Cond::In(list.clone())))
            }
            Expr::Between {
                expr,
                low,
                high,
                negated: false,
            } if reads_no_row(low) && reads_no_row(high) => field_path(expr, collection, columns)
                .map(|p| (p, Cond::Between((**low).clone(), (**high).clone()))),
            _ => None,
        };
        if let Some((path, cond)) = found {
            out.push(FieldCond {
                path,
                cond,
                conjunct: c,
            });
        }
    }
    out
}

/// Types whose values come back from an index entry exactly as the documents hold them
/// (as far as clients can tell), so a covering scan may return them.
fn covers_type(ty: &SqlType) -> bool {
    matches!(
        ty,
        SqlType::Text
            | SqlType::Varchar(_)
            | SqlType::Bool
            | SqlType::Int2
            | SqlType::Int4
            | SqlType::Int8
            | SqlType::Float8
            | SqlType::Timestamptz
    )
}

/// Whether entries of `index` hold every column of `used` (by position in `columns`),
/// exactly as the documents do: a scan reading only those may build its rows from the
/// entries.
pub(crate) fn is_covering(
    index: &IndexDef,
    collection: &Collection,
    columns: &[Column],
    used: &[usize],
) -> bool {
    used.iter().all(|&i| {
        if collection.kind == Kind::Schemaless && i == 0 {
            return true;
        }
        // A table's key column is the document id, which every entry ends with.
        if let Some(c) = columns.get(i)
            && collection.primary_key.as_deref() == Some(c.name.as_str())
            && matches!(
                c.ty,
                SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Text | SqlType::Varchar(_)
            )
        {
            return true;
        }
        columns.get(i).is_some_and(|c| {
            covers_type(&c.ty)
                && index
                    .fields
                    .iter()
                    .any(|f| f.len() == 1 && f.first() == Some(&c.name))
        })
    })
}

/// Picks the cheapest way to read `collection` for `filter` and `needs`: an index
/// access, or None for a full scan.
pub fn choose(
    collection: &Collection,
    columns: &[Column],
    filter: Option<&Expr>,
    needs: &Needs,
    ctx: &PlanContext<'_>,
) -> Option<Choice> {
    if !ctx.enable_indexscan || ctx.unindexed.contains(&collection.id) {
        return None;
    }
    let conds = filter.map_or_else(Vec::new, |f| field_conditions(f, collection, columns));
    let mut best: Option<(f64, Choice)> = None;
    let mut full_cost = f64::INFINITY;
    for index in collection.ready_indexes() {
        let Ok(stats) = ctx.storage.indexes().stats(index.id) else {
            continue;
        };
        let n = stats.entries.max(1) as f64;
        // Equalities on a prefix of the fields.
        let mut prefixes: Vec<Vec<Pin>> = vec![Vec::new()];
        let mut conditions = Vec::new();
        for field in &index.fields {
            let mut pinned = false;
            for fc in conds.iter().filter(|fc| fc.path == *field) {
                match &fc.cond {
                    Cond::Eq(v) => {
                        prefixes
                            .iter_mut()
                            .for_each(|p| p.push(Pin::Value(v.clone())));
                    }
                    Cond::IsNull => prefixes.iter_mut().for_each(|p| p.push(Pin::Null)),
                    Cond::In(list) if prefixes.len() * list.len() <= MAX_ALTERNATIVES => {
                        prefixes = prefixes
                            .iter()
                            .flat_map(|p| {
                                list.iter().map(move |v| {
                                    let mut q = p.clone();
                                    q.push(Pin::Value(v.clone()));
                                    q
                                })
                            })
                            .collect();
                    }
                    _ => continue,
                }
                conditions.push(fc.conjunct.clone());
                pinned = true;
                break;
            }
            if !pinned {
                break;
            }
        }
        let k = prefixes.first().map_or(0, Vec::len);
        // A range on the next field.
        let (mut lower, mut upper) = (None, None);
        if let Some(next) = index.fields.get(k) {
            for fc in conds.iter().filter(|fc| fc.path == *next) {
                let used = match &fc.cond {
                    Cond::Lower(v, inclusive) if lower.is_none() => {
                        lower = Some(RangeBound {
                            value: v.clone(),
                            inclusive: *inclusive,
                        });
                        true
                    }
                    Cond::Upper(v, inclusive) if upper.is_none() => {
                        upper = Some(RangeBound {
                            value: v.clone(),
                            inclusive: *inclusive,
                        });
                        true
                    }
                    Cond::Between(lo, hi) if lower.is_none() && upper.is_none() => {
                        lower = Some(RangeBound {
                            value: lo.clone(),
                            inclusive: true,
                        });
                        upper = Some(RangeBound {
                            value: hi.clone(),
                            inclusive: true,
                        });
                        true
                    }
                    _ => false,
                };
                if used {
                    conditions.push(fc.conjunct.clone());
                }
            }
        }
        // The order this index can give.
        let mut order = IndexOrder::Any;
        let mut ordered = false;
        if let Some(keys) = &needs.order
            && prefixes.len() == 1
        {
            let pinned = index.fields.get(..k).unwrap_or(&[]);
            let rest: Vec<&(Vec<String>, bool, bool)> = keys
                .iter()
                .filter(|(p, _, _)| !pinned.contains(p))
                .collect();
            match rest.as_slice() {
                [] => ordered = true,
                [(path, desc, nulls_first)] if index.fields.get(k) == Some(path) => {
                    ordered = true;
                    order = IndexOrder::By {
                        desc: *desc,
                        nulls_first: *nulls_first,
                    };
                }
                _ => {}
            }
        }
        if conditions.is_empty() && !(ordered && needs.limit.is_some()) {
            continue;
        }
        let covering = needs
            .used_columns
            .as_ref()
            .is_some_and(|u| is_covering(index, collection, columns, u));
        let mut access = IndexAccess {
            index: index.clone(),
            prefixes,
            lower,
            upper,
            order,
            covering,
            conditions,
            estimate: 0,
        };
        // Estimated entries in range.
        let fields = index.fields.len() as f64;
        let distinct_k = if k == 0 {
            1.0
        } else if k == index.fields.len() {
            stats.distinct.max(1) as f64
        } else {
            let first = stats.distinct_first.max(1) as f64;
            let all = (stats.distinct.max(1) as f64).max(first);
            first * (all / first).powf((k as f64 - 1.0) / (fields - 1.0).max(1.0))
        };
        let alternatives = access.prefixes.len() as f64;
        let range_selectivity = match (&access.lower, &access.upper) {
            (None, None) => 1.0,
            (Some(_), Some(_)) => TWO_BOUNDS_SELECTIVITY,
            _ => ONE_BOUND_SELECTIVITY,
        };
        let mut estimate = (alternatives * n / distinct_k * range_selectivity).min(n);
        let constant = access
            .prefixes
            .iter()
            .flatten()
            .all(|p| matches!(p, Pin::Null) || matches!(p, Pin::Value(e) if is_literal(e)))
            && access
                .lower
                .iter()
                .chain(&access.upper)
                .all(|b| is_literal(&b.value));
        // Equalities are estimated well enough from the distinct counts; a range is
        // counted (a point query should not pay for counting thousands of entries).
        let ranged = access.lower.is_some() || access.upper.is_some();
        if constant && ranged {
            match index_scan::count(ctx.storage, &access, COUNT_CAP) {
                Ok(c) if c < COUNT_CAP => estimate = c as f64,
                Ok(c) => estimate = estimate.max(c as f64),
                Err(_) => {}
            }
        }
        // Costs of this index and of a full scan for the same query.
        let per_row = if covering { COVERING_COST } else { FETCH_COST };
        let sort_needed = needs.order.is_some();
        let costs = |estimate: f64| {
            let index_rows = match needs.limit {
                Some(l) if ordered || !sort_needed => estimate.min(l as f64),
                _ => estimate,
            };
            let mut cost = alternatives * PROBE_COST + index_rows * per_row;
            if sort_needed && !ordered {
                cost += estimate * SORT_COST;
            }
            let full = match needs.limit {
                Some(l) if !sort_needed => n.min(l as f64 * n / estimate.max(1.0)),
                _ => {
                    n + if sort_needed {
                        estimate * SORT_COST
                    } else {
                        0.0
                    }
                }
            };
            (cost, full)
        };
        let (mut cost, mut full) = costs(estimate);
        // An equality estimated from the distinct counts assumes an average value: a
        // value rarer than that (one the column barely holds, or not at all) would send
        // the query to a full scan, which for `LIMIT n` reads the whole collection when
        // nothing matches. Before a full scan wins on that estimate, the entries are
        // counted, up to what decides it: a few times the limit, or the point past
        // which a full scan is the cheaper read anyway.
        if constant && !ranged && full <= cost {
            let cap = match needs.limit {
                Some(l) if !sort_needed => l.saturating_mul(4).max(1),
                _ => (n / per_row) as u64,
            }
            .clamp(1, COUNT_CAP);
            if let Ok(c) = index_scan::count(ctx.storage, &access, cap)
                && c < cap
            {
                estimate = c as f64;
                (cost, full) = costs(estimate);
            }
        }
        access.estimate = estimate.round() as u64;
        full_cost = full_cost.min(full);
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, Choice { access, ordered }));
        }
    }
    let (cost, choice) = best?;
    if ctx.enable_seqscan && full_cost <= cost {
        return None;
    }
    Some(choice)
}
