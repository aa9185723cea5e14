//! Volcano operators: each plan node becomes an iterator of rows that pulls from its
//! input. One operator per file.

mod aggregate;
mod distinct;
mod filter;
pub mod index_scan;
pub mod join;
mod lateral;
mod limit;
pub mod memo;
pub mod parallel;
mod project;
mod recursive;
pub mod scan;
mod setop;
mod sort;
pub mod table_function;
mod top_groups;
mod values;
mod window;

use std::sync::Arc;

use crate::catalog::KeyForm;
use crate::database::Database;
use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::Row;
use crate::query::expr::{AggCall, AggFunc, EvalContext, Expr};
use crate::query::plan::{Access, KeyRange, Node};
use crate::query::types::SqlType;

/// A stream of rows; an `Err` ends it.
pub type RowIter = Box<dyn Iterator<Item = Result<Row>> + Send>;

pub const OUT_OF_MEMORY: SqlState = SqlState("53200");
pub const QUERY_CANCELED: SqlState = SqlState("57014");

/// What operators share while a statement runs.
pub struct ExecContext {
    pub db: Arc<Database>,
    pub params: Vec<Value>,
    /// Statement start, microseconds since the epoch (`now()`).
    pub now: i64,
    /// Bytes a sort, aggregation, distinct or window function may hold.
    pub memory_limit: usize,
    /// Set when the client cancels the statement.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
    /// For EXPLAIN ANALYZE: rows and time of each operator, by its pre-order number.
    pub analyze: Option<Arc<Analysis>>,
    /// What the statement reads: a snapshot, and the transaction's writes over it.
    pub view: crate::txn::ReadView,
    /// How statements of this session are planned (for correlated subqueries, planned
    /// anew for each outer row).
    pub planning: Planning,
    /// The current round's rows of each running recursive union, by its id.
    pub work_tables: parking_lot::Mutex<std::collections::HashMap<usize, Arc<Vec<Row>>>>,
    /// What earlier executions of this plan worked out (a kept plan's), if any.
    pub memo: Option<Arc<memo::PlanMemo>>,
    /// The address ([`memo::address`]) of the projection at the root of the plan
    /// ([`json_encoding_root`]) whose json and jsonb columns may come in their binary
    /// encoding (see [`crate::query::Column::json_encoded`]); None: no column does.
    pub json_encoded_at: Option<usize>,
}

/// The projection right over a scan at the root of `plan` (under LIMITs only), whose
/// rows go to the client as they are: the one node whose json and jsonb columns may
/// come encoded.
pub fn json_encoding_root(plan: &Node) -> Option<&Node> {
    match plan {
        Node::Limit { input, .. } => json_encoding_root(input),
        Node::Project { input, .. } if matches!(**input, Node::Scan { .. }) => Some(plan),
        _ => None,
    }
}

/// The result columns of a run of `plan` with `ctx`: `columns`, or where the run's root
/// projection took json columns encoded, those columns with
/// [`crate::query::Column::json_encoded`] set.
pub fn result_columns(
    plan: &Node,
    ctx: &ExecContext,
    columns: Arc<Vec<crate::query::Column>>,
) -> Arc<Vec<crate::query::Column>> {
    let Some(root) = json_encoding_root(plan) else {
        return columns;
    };
    if ctx.json_encoded_at != Some(memo::address(root)) {
        return columns;
    }
    let flag = |outputs: &[bool]| {
        let flagged = columns
            .iter()
            .zip(outputs)
            .map(|(c, e)| crate::query::Column {
                json_encoded: *e,
                ..c.clone()
            })
            .collect();
        Arc::new(flagged)
    };
    if ctx.memo.is_none() {
        // Nothing kept: only which outputs came encoded, worked out again.
        let outputs = encoded_outputs(root);
        return match outputs.len() == columns.len() {
            true => flag(&outputs),
            false => columns,
        };
    }
    let pushed = memo::pushed(ctx, root, true, || pushed_to_scan(root, true));
    match pushed.pushed.as_ref() {
        Some(p) if p.encoded_outputs.len() == columns.len() => p
            .encoded_columns
            .get_or_init(|| flag(&p.encoded_outputs))
            .clone(),
        _ => columns,
    }
}

/// Per output of projection `node` (right over a scan), whether its values come encoded
/// in a run that asks for it (empty: none do).
fn encoded_outputs(node: &Node) -> Vec<bool> {
    let Some(p) = ProjectOverScan::of(node) else {
        return Vec::new();
    };
    let paths = p.pushed_paths().map(|(_, paths)| paths).unwrap_or_default();
    outputs_of(p.out, &p.encoded_columns(&paths))
}

/// Which of `exprs` pass on a column that `encoded` marks (empty when none is marked).
fn outputs_of(exprs: &[Expr], encoded: &[bool]) -> Vec<bool> {
    if encoded.is_empty() {
        return Vec::new();
    }
    exprs
        .iter()
        .map(|e| matches!(e, Expr::Column(c) if encoded.get(*c) == Some(&true)))
        .collect()
}

/// A projection right over a scan: its expressions and the scan's parts.
struct ProjectOverScan<'a> {
    out: &'a [Expr],
    collection: &'a crate::catalog::Collection,
    columns: &'a [crate::query::Column],
    access: &'a crate::query::plan::Access,
    filter: Option<&'a Expr>,
    read: Option<&'a [usize]>,
}

impl<'a> ProjectOverScan<'a> {
    fn of(node: &'a Node) -> Option<Self> {
        let Node::Project { input, exprs, .. } = node else {
            return None;
        };
        let Node::Scan {
            collection,
            columns,
            access,
            filter,
            read,
        } = &**input
        else {
            return None;
        };
        Some(ProjectOverScan {
            out: exprs,
            collection,
            columns,
            access,
            filter: filter.as_ref(),
            read: read.as_deref(),
        })
    }

    fn pushed_paths(&self) -> Option<scan::PushedPaths> {
        scan::pushed_paths(
            self.out,
            self.collection,
            self.access,
            self.filter,
            self.read,
        )
    }

    fn encoded_columns(&self, paths: &[Vec<crate::query::expr::PathStep>]) -> Vec<bool> {
        scan::encoded_columns(
            self.out,
            self.columns,
            self.collection,
            self.access,
            self.filter,
            self.read,
            paths,
        )
    }
}

/// What projection `node` (right over a scan) leaves to the scan: the nested paths it
/// reads ([`scan::pushed_paths`]) and, with `encode`, the json columns it passes on
/// encoded ([`scan::encoded_columns`]). None: nothing, or `node` is no such projection.
fn pushed_to_scan(node: &Node, encode: bool) -> Option<memo::Pushed> {
    let p = ProjectOverScan::of(node)?;
    let (exprs, paths) = p
        .pushed_paths()
        .unwrap_or_else(|| (p.out.to_vec(), Vec::new()));
    let encoded = match encode {
        true => p.encoded_columns(&paths),
        false => Vec::new(),
    };
    if paths.iter().all(Vec::is_empty) && encoded.is_empty() {
        return None;
    }
    let (out, collection, filter, read) = (p.out, p.collection, p.filter, p.read);
    let encoded_outputs = outputs_of(out, &encoded);
    let setup = scan::ScanSetup::new(collection, filter, read, paths, encoded);
    Some(memo::Pushed {
        setup,
        exprs,
        encoded_outputs,
        encoded_columns: std::sync::OnceLock::new(),
    })
}

/// What EXPLAIN ANALYZE measured: per operator (in plan pre-order), rows produced and
/// time spent in it and below it.
#[derive(Default)]
pub struct Analysis {
    pub operators: parking_lot::Mutex<Vec<OperatorStats>>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct OperatorStats {
    pub rows: u64,
    pub nanos: u64,
    /// Worker threads the operator ran with besides the statement's own (0: serial).
    pub workers: u64,
}

/// An operator's rows, counted and timed.
struct Measured {
    inner: RowIter,
    slot: usize,
    analysis: Arc<Analysis>,
}

impl Iterator for Measured {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        let started = std::time::Instant::now();
        let item = self.inner.next();
        let nanos = started.elapsed().as_nanos() as u64;
        let mut ops = self.analysis.operators.lock();
        if let Some(op) = ops.get_mut(self.slot) {
            op.nanos += nanos;
            if matches!(item, Some(Ok(_))) {
                op.rows += 1;
            }
        }
        item
    }
}

impl ExecContext {
    pub fn eval_context(&self) -> EvalContext<'_> {
        EvalContext {
            params: &self.params,
            now: self.now,
            subqueries: Some(self),
        }
    }

    /// Fails with 57014 once the statement was cancelled.
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::invalid(
                QUERY_CANCELED,
                "canceling statement due to user request",
            ));
        }
        Ok(())
    }

    /// The error for an operator that went over the memory limit.
    pub fn over_memory(&self, what: &str) -> Error {
        Error::LimitExceeded {
            code: OUT_OF_MEMORY,
            message: format!(
                "{what} needs more than query_memory_limit ({} bytes)",
                self.memory_limit
            ),
        }
    }
}

/// The planner settings of the session running a statement.
#[derive(Clone, Debug, Default)]
pub struct Planning {
    pub enable_indexscan: bool,
    pub enable_seqscan: bool,
    pub unindexed: Vec<u32>,
    /// Most worker threads one operator may take (`max_parallel_workers_per_gather`;
    /// see [`parallel`]).
    pub parallel_workers: usize,
}

impl crate::query::expr::SubqueryRunner for ExecContext {
    fn run(&self, plan: &Node, row: &[Value], limit: usize) -> Result<Vec<Row>> {
        self.check_cancel()?;
        let plan = bind_outer(plan.clone(), row, 1)?;
        let pctx = crate::query::access::PlanContext {
            storage: self.db.storage(),
            enable_indexscan: self.planning.enable_indexscan,
            enable_seqscan: self.planning.enable_seqscan,
            unindexed: self.planning.unindexed.clone(),
        };
        let plan = crate::query::optimizer::optimize(plan, &pctx)?;
        let child = Arc::new(ExecContext {
            db: self.db.clone(),
            params: self.params.clone(),
            now: self.now,
            memory_limit: self.memory_limit,
            cancel: self.cancel.clone(),
            analyze: None,
            view: self.view.clone(),
            planning: self.planning.clone(),
            work_tables: parking_lot::Mutex::new(self.work_tables.lock().clone()),
            memo: None,
            json_encoded_at: None,
        });
        build(&plan, &child)?.take(limit).collect()
    }
}

/// `plan` with its references to the query `level` levels out replaced by values of
/// `row` (nested subqueries' references one level further out, likewise).
pub fn bind_outer(plan: Node, row: &[Value], level: usize) -> Result<Node> {
    use crate::query::expr::Expr;
    // A LATERAL right side is one level further in (its level 1 is its left row), and
    // `map_exprs` does not enter it.
    fn laterals(node: Node, row: &[Value], level: usize) -> Result<Node> {
        match node.map_children(&mut |n| laterals(n, row, level))? {
            Node::Lateral {
                left,
                right,
                outer,
                condition,
                columns,
            } => Ok(Node::Lateral {
                left,
                right: Box::new(bind_outer(*right, row, level + 1)?),
                outer,
                condition,
                columns,
            }),
            other => Ok(other),
        }
    }
    let plan = laterals(plan, row, level)?;
    plan.map_exprs(&mut |e| {
        e.transform(&mut |x| {
            Ok(match x {
                Expr::Outer { depth, index } if depth == level => {
                    Expr::Literal(row.get(index).cloned().unwrap_or(Value::Null))
                }
                Expr::Subquery(kind, inner) => {
                    Expr::Subquery(kind, Box::new(bind_outer(*inner, row, level + 1)?))
                }
                Expr::InSubquery {
                    expr,
                    plan,
                    negated,
                } => Expr::InSubquery {
                    expr,
                    plan: Box::new(bind_outer(*plan, row, level + 1)?),
                    negated,
                },
                other => other,
            })
        })
    })
}

/// Whether `plan` reads the row of the query `level` levels out (is correlated).
pub fn reads_outer(plan: &Node, level: usize) -> bool {
    use crate::query::expr::Expr;
    fn laterals(node: &Node, level: usize, found: &mut bool) {
        if let Node::Lateral { right, .. } = node {
            *found |= reads_outer(right, level + 1);
        }
        for child in node.children() {
            laterals(child, level, found);
        }
    }
    let mut found = false;
    laterals(plan, level, &mut found);
    plan.for_each_expr(&mut |e| {
        e.walk(&mut |x| match x {
            Expr::Outer { depth, .. } if *depth >= level => found = true,
            Expr::Subquery(_, inner) | Expr::InSubquery { plan: inner, .. } => {
                found |= reads_outer(inner, level + 1)
            }
            _ => {}
        });
    });
    found
}

/// Whether `plan` reads the row of the query exactly `level` levels out.
pub fn reads_level(plan: &Node, level: usize) -> bool {
    use crate::query::expr::Expr;
    let mut found = false;
    plan.for_each_expr(&mut |e| {
        e.walk(&mut |x| match x {
            Expr::Outer { depth, .. } if *depth == level => found = true,
            Expr::Subquery(_, inner) | Expr::InSubquery { plan: inner, .. } => {
                found |= reads_level(inner, level + 1)
            }
            _ => {}
        });
    });
    found
}

/// Builds the operator tree for `node`.
pub fn build(node: &Node, ctx: &Arc<ExecContext>) -> Result<RowIter> {
    let mut next = 0;
    build_numbered(node, ctx, &mut next)
}

/// [`build`] for a part of a plan whose first operator has EXPLAIN slot `at`.
pub fn build_at(node: &Node, ctx: &Arc<ExecContext>, at: usize) -> Result<RowIter> {
    let mut next = at;
    build_numbered(node, ctx, &mut next)
}

/// [`build`], numbering operators in pre-order (as EXPLAIN lists them) for ANALYZE.
fn build_numbered(node: &Node, ctx: &Arc<ExecContext>, next: &mut usize) -> Result<RowIter> {
    let slot = *next;
    *next += 1;
    let mut input = |n: &Node| build_numbered(n, ctx, next);
    let iter: RowIter = match node {
        Node::Scan {
            collection,
            access,
            filter,
            read,
            ..
        } => {
            if let Some((parts, workers)) = parallel::filtered_scan_parts(node, ctx) {
                note_workers(slot, workers.count(), ctx);
                parallel::in_order(parts, workers)
            } else {
                let read = read.as_deref();
                let setup = memo::scan_setup(ctx, node, || {
                    scan::ScanSetup::new(collection, filter.as_ref(), read, Vec::new(), Vec::new())
                });
                scan::build_set_up(collection, access, &setup, ctx)?
            }
        }
        Node::Values { rows, .. } => values::build(rows, ctx)?,
        Node::TableFunction {
            func,
            args,
            ordinality,
            ..
        } => {
            let rows = table_function::build(*func, args, ctx)?;
            if *ordinality {
                Box::new(rows.enumerate().map(|(i, r)| {
                    r.map(|mut row| {
                        row.push(Value::Int(i as i64 + 1));
                        row
                    })
                }))
            } else {
                rows
            }
        }
        Node::Filter {
            input: i,
            predicate,
        } => filter::build(input(i)?, predicate.clone(), ctx),
        Node::Project {
            input: i, exprs, ..
        } => {
            // A projection reading nested values of a scan's columns leaves the paths
            // to the scan, which then builds only those values. (Not under EXPLAIN
            // ANALYZE, which counts the scan as its own operator.)
            // At the plan's root, for a client that asks for it, json columns it passes
            // on as they are come encoded (see `json_encoded_at`).
            let parallel = match &**i {
                // (Under EXPLAIN ANALYZE the scan, built on its own, is cut.)
                scan @ Node::Scan { .. } if ctx.analyze.is_none() => {
                    parallel::filtered_scan_parts(scan, ctx)
                }
                _ => None,
            };
            let pushed = match &**i {
                _ if parallel.is_some() => None,
                Node::Scan {
                    collection, access, ..
                } if ctx.analyze.is_none() => {
                    let encode = ctx.json_encoded_at == Some(memo::address(node));
                    let pushed = memo::pushed(ctx, node, encode, || pushed_to_scan(node, encode));
                    pushed.pushed.as_ref().map(|p| {
                        let rows = scan::build_set_up_scanned(collection, access, &p.setup, ctx);
                        (p.exprs.clone(), rows)
                    })
                }
                _ => None,
            };
            match (pushed, parallel) {
                (Some((exprs, rows)), _) => {
                    *next += 1;
                    project::build_scanned(rows?, exprs, ctx)
                }
                (None, Some((parts, workers))) => {
                    *next += 1;
                    project::build(parallel::in_order(parts, workers), exprs.clone(), ctx)
                }
                (None, None) => match lent_scan(i, ctx, next)? {
                    Some(rows) => project::build_scanned(rows, exprs.clone(), ctx),
                    None => project::build(build_numbered(i, ctx, next)?, exprs.clone(), ctx),
                },
            }
        }
        Node::Aggregate {
            input: i,
            group_by,
            aggs,
            ..
        } if counts_only(i, group_by, aggs, ctx) => {
            *next += 1;
            let n = match &**i {
                Node::Scan {
                    collection,
                    access: Access::Index(a),
                    ..
                } => scan::count_index_entries(collection, a, ctx)?,
                Node::Scan { collection, .. } => parallel::count_documents(collection.id, ctx)?,
                _ => return Err(Error::Internal("a count without its scan".into())),
            };
            Box::new(std::iter::once(Ok(vec![Value::Int(n); aggs.len()])))
        }
        Node::Aggregate {
            input: i,
            group_by,
            aggs,
            ..
        } if counts_by_index_fields(i, group_by, aggs, ctx).is_some() => {
            *next += 1;
            let (
                Node::Scan {
                    collection,
                    access: Access::Index(a),
                    ..
                },
                Some(fields),
            ) = (&**i, counts_by_index_fields(i, group_by, aggs, ctx))
            else {
                return Err(Error::Internal(
                    "grouped counts without their index scan".into(),
                ));
            };
            let groups = scan::count_index_groups(collection, a, &fields, aggs.len(), ctx)?;
            Box::new(groups.into_iter().map(Ok))
        }
        Node::Aggregate {
            input: i,
            group_by,
            aggs,
            ..
        } if distinct_count_by_index(i, group_by, aggs, ctx).is_some() => {
            *next += 1;
            let Some((collection, index, field)) = distinct_count_by_index(i, group_by, aggs, ctx)
            else {
                return Err(Error::Internal("distinct count without its index".into()));
            };
            let values = scan::distinct_index_values(collection, index, &[field], ctx)?;
            let n = values
                .iter()
                .filter(|v| !matches!(v.first(), Some(Value::Null)))
                .count();
            let n = Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
            Box::new(std::iter::once(Ok(vec![n; aggs.len()])))
        }
        Node::Aggregate {
            input: i,
            group_by,
            aggs,
            ..
        } if key_extremes_only(i, group_by, aggs, ctx) => {
            *next += 1;
            Box::new(std::iter::once(key_extremes(i, aggs, ctx)))
        }
        Node::Aggregate {
            input: i,
            group_by,
            aggs,
            ..
        } => match parallel::aggregate_parts(node, i, aggs, ctx) {
            // The workers are held until the parts are grouped (build_parallel returns
            // once they are). Under EXPLAIN ANALYZE the parts count as the scan.
            Some(parts) => {
                let (parts, workers) = parts?;
                let scan_slot = *next;
                *next += 1;
                note_workers(slot, workers.count(), ctx);
                let parts = parts
                    .into_iter()
                    .map(|part| measured_scanned(part, scan_slot, ctx))
                    .collect();
                aggregate::build_parallel(parts, group_by.clone(), aggs.clone(), ctx)?
            }
            None => {
                let rows = match lent_scan(i, ctx, next)? {
                    Some(rows) => rows,
                    None => scan::Scanned::Rows(build_numbered(i, ctx, next)?),
                };
                aggregate::build(rows, group_by.clone(), aggs.clone(), ctx)?
            }
        },
        Node::Sort { input: i, keys } => sort::build(input(i)?, keys.clone(), ctx)?,
        Node::Window {
            input: i, funcs, ..
        } => window::build(input(i)?, funcs.clone(), ctx)?,
        Node::ProjectSet {
            input: i, funcs, ..
        } => table_function::project_set(input(i)?, funcs.clone(), ctx),
        Node::Lateral {
            left,
            right,
            outer,
            condition,
            columns,
        } => lateral::build(
            input(left)?,
            (**right).clone(),
            *outer,
            condition.clone(),
            columns.len(),
            ctx,
        ),
        Node::Limit {
            input: i,
            limit,
            offset,
        } => {
            let rows = match &**i {
                Node::Sort {
                    input: sorted,
                    keys,
                } => {
                    // The sort keeps only the rows the limit passes.
                    let bound = limit::bound(limit.as_ref(), offset.as_ref(), ctx)?;
                    let sort_slot = *next;
                    *next += 1;
                    // The first groups of an ordered GROUP BY read only their rows.
                    let input = match top_groups::first_groups(sorted, keys, bound, ctx, next)? {
                        Some(rows) => rows,
                        None => match parallel::top_parts(sorted, keys, bound, ctx) {
                            Some(rows) => {
                                // The projection and the scan it stands for.
                                *next += 2;
                                rows
                            }
                            None => build_numbered(sorted, ctx, next)?,
                        },
                    };
                    measured(
                        sort::build_top(input, keys.clone(), bound, ctx)?,
                        sort_slot,
                        ctx,
                    )
                }
                Node::Distinct { input: d } => {
                    // Under a LIMIT, DISTINCT streams: it stops reading once the limit
                    // has its rows (not grouped in parallel, which reads every row).
                    let distinct_slot = *next;
                    *next += 1;
                    let rows = distinct::build(build_numbered(d, ctx, next)?, ctx);
                    measured(rows, distinct_slot, ctx)
                }
                other => input(other)?,
            };
            limit::build(rows, limit.as_ref(), offset.as_ref(), ctx)?
        }
        Node::Distinct { input: i } if distinct_by_index(i, ctx).is_some() => {
            *next += 2;
            let Some((collection, index, fields)) = distinct_by_index(i, ctx) else {
                return Err(Error::Internal(
                    "distinct values without their index".into(),
                ));
            };
            let groups = scan::distinct_index_values(collection, index, &fields, ctx)?;
            Box::new(groups.into_iter().map(Ok))
        }
        Node::Distinct { input: i } => match parallel::distinct_parts(i, ctx) {
            // DISTINCT over a projection of a large scan: grouped by the projected
            // values, in parallel parts, with no aggregate (the groups come in
            // first-seen order, each with its first row's values, as DISTINCT gives).
            Some(parts) => {
                let (parts, _workers, exprs) = parts?;
                let parts = parts.into_iter().map(scan::Scanned::Rows).collect();
                aggregate::build_parallel(parts, exprs, Vec::new(), ctx)?
            }
            None => distinct::build(input(i)?, ctx),
        },
        Node::Join {
            left,
            right,
            kind,
            equi,
            ..
        } => {
            // (The right side is numbered after the left scan, as serially.)
            let mut build_right = |n: &Node| {
                *next = slot + 2;
                build_numbered(n, ctx, next)
            };
            if let Some(parts) = parallel::join_parts(node, ctx, Some(slot), &mut build_right) {
                let (parts, workers) = parts?;
                parallel::join_in_order(parts, workers)
            } else {
                let spec = join::JoinSpec::of(node)
                    .ok_or_else(|| Error::Internal("a join without its spec".into()))?;
                let probe = join::probe_for(*kind, right, equi);
                let l = build_numbered(left, ctx, next)?;
                let r = build_numbered(right, ctx, next)?;
                join::build(l, r, spec, probe, ctx)?
            }
        }
        Node::SetOp {
            left,
            right,
            op,
            all,
        } => {
            let l = input(left)?;
            let r = input(right)?;
            setop::build(l, r, *op, *all, ctx)?
        }
        Node::RecursiveUnion {
            id,
            anchor,
            recursive,
            all,
        } => {
            // The parts are built when the union runs (the recursive part once per
            // round); they keep the slots EXPLAIN gives them, so ANALYZE counts land
            // on the right lines (summed over the rounds).
            let anchor_at = *next;
            let (mut recursive_at, mut end) = (anchor_at, anchor_at);
            if ctx.analyze.is_some() {
                recursive_at = anchor_at + anchor.operator_count();
                end = recursive_at + recursive.operator_count();
            }
            *next = end;
            recursive::build_union(
                *id,
                [(anchor, anchor_at), (recursive, recursive_at)],
                *all,
                ctx,
            )?
        }
        Node::WorkTable { id, .. } => recursive::build_work_table(*id, ctx)?,
    };
    Ok(measured(iter, slot, ctx))
}

/// Whether an aggregate is `count(*)` (any number of times), no GROUP BY, of a whole
/// collection without a filter, or of a covering index scan whose bounds apply the
/// whole filter: the documents (or entries) are counted, not read (outside EXPLAIN
/// ANALYZE, which counts the scan's rows).
fn counts_only(input: &Node, group_by: &[Expr], aggs: &[AggCall], ctx: &ExecContext) -> bool {
    group_by.is_empty()
        && !aggs.is_empty()
        && aggs
            .iter()
            .all(|a| a.func == AggFunc::CountStar && !a.distinct)
        && ctx.analyze.is_none()
        && match input {
            Node::Scan {
                access: Access::Full,
                filter: None,
                ..
            } => true,
            Node::Scan {
                collection,
                access: Access::Index(a),
                filter,
                ..
            } => crate::query::plan::index_applies_filter(collection, a, filter.as_ref()),
            _ => false,
        }
}

/// What the executor does instead of what the plan's operators show, for plain EXPLAIN:
/// per operator it answers another way (by address), a note saying how. The same tests
/// as [`build`]'s decide, in the statement's context.
pub fn shortcut_notes(node: &Node, ctx: &ExecContext) -> Vec<(*const Node, String)> {
    let mut notes = Vec::new();
    note_shortcuts(node, ctx, &mut notes);
    notes
}

fn note_shortcuts(node: &Node, ctx: &ExecContext, notes: &mut Vec<(*const Node, String)>) {
    let note = match node {
        Node::Aggregate {
            input,
            group_by,
            aggs,
            ..
        } => {
            if counts_only(input, group_by, aggs, ctx) {
                Some(match &**input {
                    Node::Scan {
                        access: Access::Index(_),
                        ..
                    } => "Shortcut: counted from the index's pages, no entry read".to_string(),
                    _ => "Shortcut: documents counted by their keys, none read".to_string(),
                })
            } else if counts_by_index_fields(input, group_by, aggs, ctx).is_some() {
                Some(
                    "Shortcut: one entry read per group, the rest of each group counted from the index's pages"
                        .to_string(),
                )
            } else if let Some((_, index, _)) = distinct_count_by_index(input, group_by, aggs, ctx)
            {
                Some(format!(
                    "Shortcut: distinct values read from index {}, one entry per value",
                    index.name
                ))
            } else if key_extremes_only(input, group_by, aggs, ctx) {
                Some("Shortcut: the first key from each end of the scan".to_string())
            } else {
                None
            }
        }
        Node::Distinct { input } => distinct_by_index(input, ctx).map(|(_, index, _)| {
            format!(
                "Shortcut: distinct values read from index {}, one entry per value",
                index.name
            )
        }),
        _ => None,
    };
    if let Some(note) = note {
        notes.push((node as *const Node, note));
    }
    // An ordered GROUP BY under a LIMIT reads the rows of its first groups only (see
    // `build` and `top_groups`): noted on the sort.
    if let Node::Limit {
        input: sort,
        limit,
        offset,
    } = node
        && let Node::Sort {
            input: sorted,
            keys,
        } = &**sort
    {
        let bound = limit::bound(limit.as_ref(), offset.as_ref(), ctx).unwrap_or(None);
        if let Some(narrowing) = top_groups::narrowing(sorted, keys, bound, ctx) {
            notes.push((
                &**sort as *const Node,
                format!(
                    "Shortcut: only the rows of the first groups, read through index {} \
                     (every row if it holds fewer values than the limit)",
                    narrowing.index.name
                ),
            ));
        }
    }
    for child in node.children() {
        match (node, child) {
            // Under a LIMIT, DISTINCT streams over its input (see `build`).
            (Node::Limit { .. }, Node::Distinct { input }) => note_shortcuts(input, ctx, notes),
            _ => note_shortcuts(child, ctx, notes),
        }
    }
}

/// For an aggregate of `count(*)` only, grouped by columns that are the leading fields
/// of the index of a covering index scan whose bounds apply its whole filter, on a
/// table whose those columns are integers, text or booleans: per GROUP BY column, its
/// index field (the groups are then counted from the entries' leading bytes; outside
/// EXPLAIN ANALYZE, which counts the scan's rows).
fn counts_by_index_fields(
    input: &Node,
    group_by: &[Expr],
    aggs: &[AggCall],
    ctx: &ExecContext,
) -> Option<Vec<usize>> {
    let Node::Scan {
        collection,
        access: Access::Index(a),
        filter,
        ..
    } = input
    else {
        return None;
    };
    if group_by.is_empty()
        || aggs.is_empty()
        || ctx.analyze.is_some()
        || !aggs
            .iter()
            .all(|a| a.func == AggFunc::CountStar && !a.distinct)
        || !crate::query::plan::index_applies_filter(collection, a, filter.as_ref())
    {
        return None;
    }
    let columns = scan::index_field_columns(collection, a);
    let types = collection.sql_columns();
    let fields = group_by
        .iter()
        .map(|e| match e {
            Expr::Column(c) if types.get(*c).is_some_and(|(_, t)| exact_in_index(t)) => {
                columns.iter().position(|f| *f == Some(*c))
            }
            _ => None,
        })
        .collect::<Option<Vec<usize>>>()?;
    // The fields are the index's first ones, each once.
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    sorted
        .iter()
        .enumerate()
        .all(|(i, f)| i == *f)
        .then_some(fields)
}

/// Column types whose values an index entry gives back exactly, equal values in equal
/// bytes (so a group of entries with equal leading bytes is a group of equal values).
fn exact_in_index(ty: &SqlType) -> bool {
    matches!(
        ty,
        SqlType::Int2
            | SqlType::Int4
            | SqlType::Int8
            | SqlType::Text
            | SqlType::Varchar(_)
            | SqlType::Bool
    )
}

/// A table, one of its indexes, and per column the query reads its field in the index.
type IndexFields<'a> = (
    &'a crate::catalog::Collection,
    &'a crate::catalog::IndexDef,
    Vec<usize>,
);

/// For `SELECT DISTINCT` of columns of a table over its whole scan (no filter), an index
/// whose leading fields are those columns (each once, integers, text or booleans) and
/// which shows this view: the table, the index, and per projected column its index
/// field. Every row has an entry in every index (NULL where a value is missing), so the
/// distinct values are the distinct leading values of the entries, read one group at a
/// time (outside EXPLAIN ANALYZE, which counts the scan's rows).
fn distinct_by_index<'a>(project: &'a Node, ctx: &ExecContext) -> Option<IndexFields<'a>> {
    let Node::Project { input, exprs, .. } = project else {
        return None;
    };
    let columns = exprs
        .iter()
        .map(|e| match e {
            Expr::Column(c) => Some(*c),
            _ => None,
        })
        .collect::<Option<Vec<usize>>>()?;
    leading_index_fields(input, &columns, ctx)
}

/// For `count(DISTINCT column)` alone over a table's whole scan: as
/// [`distinct_by_index`], the one column's index field.
fn distinct_count_by_index<'a>(
    input: &'a Node,
    group_by: &[Expr],
    aggs: &[AggCall],
    ctx: &ExecContext,
) -> Option<(
    &'a crate::catalog::Collection,
    &'a crate::catalog::IndexDef,
    usize,
)> {
    let column = match aggs.first() {
        Some(AggCall {
            func: AggFunc::Count,
            distinct: true,
            arg: Some(arg),
            ..
        }) if group_by.is_empty() && aggs.iter().all(|a| a == &aggs[0]) => match &**arg {
            Expr::Column(c) => *c,
            _ => return None,
        },
        _ => return None,
    };
    let (collection, index, fields) = leading_index_fields(input, &[column], ctx)?;
    Some((collection, index, *fields.first()?))
}

/// The table of `scan` (a whole scan of a table, no filter), a ready index of it that
/// shows the statement's view and whose leading fields are `columns` (each once, of a
/// type [`exact_in_index`]), and per column its index field; None where index scans are
/// off (`enable_indexscan`) or the table's indexes are not to be used.
fn leading_index_fields<'a>(
    scan: &'a Node,
    columns: &[usize],
    ctx: &ExecContext,
) -> Option<IndexFields<'a>> {
    let Node::Scan {
        collection,
        access: Access::Full,
        filter: None,
        ..
    } = scan
    else {
        return None;
    };
    if ctx.analyze.is_some()
        || columns.is_empty()
        || collection.kind != crate::catalog::Kind::Table
        || !ctx.planning.enable_indexscan
        || ctx.planning.unindexed.contains(&collection.id)
        || !ctx
            .view
            .index_usable(collection.id, ctx.db.catalog().conflicts())
    {
        return None;
    }
    let types = collection.sql_columns();
    let names = columns
        .iter()
        .map(|c| match types.get(*c) {
            Some((name, ty)) if exact_in_index(ty) => Some(name.as_str()),
            _ => None,
        })
        .collect::<Option<Vec<&str>>>()?;
    collection.ready_indexes().find_map(|index| {
        let leading = index.fields.get(..names.len())?;
        let fields = names
            .iter()
            .map(|name| {
                leading
                    .iter()
                    .position(|path| matches!(path.as_slice(), [p] if p == name))
            })
            .collect::<Option<Vec<usize>>>()?;
        // Each leading field once: the columns are those fields, in some order.
        let mut sorted = fields.clone();
        sorted.sort_unstable();
        sorted.dedup();
        (sorted.len() == names.len()).then_some((collection, index, fields))
    })
}

/// Whether an aggregate is only `min` and `max` of an ordered integer key over a full or
/// key-range scan, no GROUP BY: each is the first key the scan passes walking from its
/// end (outside EXPLAIN ANALYZE, which counts the scan's rows).
fn key_extremes_only(input: &Node, group_by: &[Expr], aggs: &[AggCall], ctx: &ExecContext) -> bool {
    ctx.analyze.is_none() && reads_key_extremes(input, group_by, aggs)
}

/// The plan's side of [`key_extremes_only`]: an aggregate that the executor answers from
/// the first key the scan passes from each end. Without a filter on the scan that reads
/// one document per end (see [`crate::query::statement`]'s point statements).
pub(crate) fn reads_key_extremes(input: &Node, group_by: &[Expr], aggs: &[AggCall]) -> bool {
    let Node::Scan {
        collection,
        access: Access::Full | Access::KeyRange(_),
        ..
    } = input
    else {
        return false;
    };
    let key = collection.key_position();
    group_by.is_empty()
        && !aggs.is_empty()
        && collection.key_form == KeyForm::Integer
        && aggs.iter().all(|a| {
            matches!(a.func, AggFunc::Min | AggFunc::Max)
                && matches!(a.arg.as_deref(), Some(Expr::Column(c)) if Some(*c) == key)
        })
}

/// The row of [`key_extremes_only`]'s aggregate: each `min` the first key of the scan
/// walked forward, each `max` the first walked backward, NULL when no row passes.
fn key_extremes(input: &Node, aggs: &[AggCall], ctx: &Arc<ExecContext>) -> Result<Row> {
    let Node::Scan {
        collection,
        access,
        filter,
        read,
        ..
    } = input
    else {
        return Err(Error::Internal("key extremes without their scan".into()));
    };
    let key = collection
        .key_position()
        .ok_or_else(|| Error::Internal("key extremes of a collection without a key".into()))?;
    let setup = scan::ScanSetup::new(
        collection,
        filter.as_ref(),
        read.as_deref(),
        Vec::new(),
        Vec::new(),
    );
    // Each read once.
    let (mut min, mut max): (Option<Value>, Option<Value>) = (None, None);
    let mut row = Vec::with_capacity(aggs.len());
    for a in aggs {
        let backward = a.func == AggFunc::Max;
        let end = if backward { &mut max } else { &mut min };
        if end.is_none() {
            let mut range = match access {
                Access::KeyRange(r) => (**r).clone(),
                _ => KeyRange {
                    lower: None,
                    upper: None,
                    reverse: false,
                },
            };
            range.reverse = backward;
            let mut rows =
                scan::build_set_up(collection, &Access::KeyRange(Box::new(range)), &setup, ctx)?;
            *end = Some(match rows.next().transpose()? {
                Some(mut first) if key < first.len() => first.swap_remove(key),
                _ => Value::Null,
            });
            drop(rows);
        }
        row.push(end.clone().unwrap_or(Value::Null));
    }
    Ok(row)
}

/// The rows of `node` for an operator that only looks at each (an aggregate, a
/// projection), lent by a cursor where `node` is a scan that reads through one (see [`scan::Scanned`]),
/// numbered as [`build_numbered`] numbers it (a filtered scan cut into parallel parts
/// gives its rows as there); None for any other node, and under EXPLAIN ANALYZE (which
/// counts rows as they pass).
fn lent_scan(
    node: &Node,
    ctx: &Arc<ExecContext>,
    next: &mut usize,
) -> Result<Option<scan::Scanned>> {
    let Node::Scan {
        collection,
        access,
        filter,
        read,
        ..
    } = node
    else {
        return Ok(None);
    };
    if ctx.analyze.is_some() {
        return Ok(None);
    }
    *next += 1;
    if let Some((parts, workers)) = parallel::filtered_scan_parts(node, ctx) {
        return Ok(Some(scan::Scanned::Rows(parallel::in_order(
            parts, workers,
        ))));
    }
    let read = read.as_deref();
    let setup = memo::scan_setup(ctx, node, || {
        scan::ScanSetup::new(collection, filter.as_ref(), read, Vec::new(), Vec::new())
    });
    scan::build_set_up_scanned(collection, access, &setup, ctx).map(Some)
}

/// [`measured`] for rows that may be lent (they are taken, to be counted, under EXPLAIN
/// ANALYZE).
fn measured_scanned(rows: scan::Scanned, slot: usize, ctx: &ExecContext) -> scan::Scanned {
    match &ctx.analyze {
        None => rows,
        Some(_) => scan::Scanned::Rows(measured(rows.into_rows(), slot, ctx)),
    }
}

/// `iter` counted and timed as operator `slot` under EXPLAIN ANALYZE (as it is
/// otherwise).
pub(super) fn measured(iter: RowIter, slot: usize, ctx: &ExecContext) -> RowIter {
    match &ctx.analyze {
        None => iter,
        Some(analysis) => {
            let mut ops = analysis.operators.lock();
            if ops.len() <= slot {
                ops.resize(slot + 1, OperatorStats::default());
            }
            drop(ops);
            Box::new(Measured {
                inner: iter,
                slot,
                analysis: analysis.clone(),
            })
        }
    }
}

/// Notes under EXPLAIN ANALYZE that operator `slot` ran with `workers` worker threads.
pub(super) fn note_workers(slot: usize, workers: usize, ctx: &ExecContext) {
    if let Some(analysis) = &ctx.analyze {
        let mut ops = analysis.operators.lock();
        if ops.len() <= slot {
            ops.resize(slot + 1, OperatorStats::default());
        }
        if let Some(op) = ops.get_mut(slot) {
            op.workers = workers as u64;
        }
    }
}

/// Approximate memory held by a row.
pub fn row_size(row: &Row) -> usize {
    fn value(v: &Value) -> usize {
        16 + match v {
            Value::String(s) | Value::Numeric(s) => s.len(),
            Value::Binary(b) => b.len(),
            Value::Array(items) => items.iter().map(value).sum(),
            Value::Object(o) => o.iter().map(|(k, v)| k.len() + value(v)).sum(),
            _ => 0,
        }
    }
    24 + row.iter().map(value).sum::<usize>()
}

/// A byte key identifying a value for grouping and DISTINCT: numbers that compare equal
/// give the same key.
pub fn group_key(values: &[Value], out: &mut Vec<u8>) {
    for v in values {
        match v {
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                crate::doc::binary::encode(&Value::Int(*f as i64), out)
            }
            Value::Numeric(n) => match crate::query::types::parse_decimal(n) {
                Some(d) => {
                    let d = d.normalize();
                    match i64::try_from(d) {
                        Ok(i) if d.fract().is_zero() => {
                            crate::doc::binary::encode(&Value::Int(i), out)
                        }
                        _ => crate::doc::binary::encode(&Value::Numeric(d.to_string()), out),
                    }
                }
                None => crate::doc::binary::encode(v, out),
            },
            other => crate::doc::binary::encode(other, out),
        }
    }
}
pub use aggregate::result_type as aggregate_result_type;
