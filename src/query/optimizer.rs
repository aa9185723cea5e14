//! The optimizer: an ordered list of plan rewrites, each a `Node -> Result<Node>` pass.
//!
//! 1. [`fold_constants`]: expressions that read no row, parameter or clock are computed
//!    once, at plan time.
//! 2. [`crate::query::decorrelate`]: correlated `EXISTS`, `NOT EXISTS` and `IN` in a
//!    WHERE become semi- and anti-joins.
//! 3. [`crate::query::join_order`]: trees of inner joins are joined again in the order
//!    the collections' document counts say is cheapest.
//! 4. [`plan_joins`]: WHERE and ON conditions move below joins to the side they read
//!    (where the join kind allows), the rest joins the join condition, and equalities
//!    between the two sides become hash join keys.
//! 5. [`push_down_filters`]: a filter directly above a scan moves into the scan, so rows
//!    are tested as documents are decoded.
//! 6. [`use_key_lookups`]: a scan whose filter pins the document key (`id = $1`,
//!    `id IN ('a', 'b')`) reads those keys instead of the whole collection.
//! 7. [`use_indexes`]: other scans read a secondary index where it costs less
//!    ([`crate::query::access`]); an index that delivers the order of an
//!    `ORDER BY ... LIMIT n` removes the sort.
//! 8. [`prune_columns`]: each scan learns which of its columns the plan reads; a full
//!    scan then decodes and copies only those fields.

use crate::catalog::KeyForm;
use crate::doc::Value;
use crate::error::Result;
use crate::query::access::{self, Needs, PlanContext};
use crate::query::expr::{BinOp, EvalContext, Expr};
use crate::query::plan::{Access, JoinKind, KeyRange, Node, RangeBound, SortKey};

/// The columns of a node's output its parent reads; None: all of them.
type Reads = Option<Vec<usize>>;

fn with_columns<'e>(reads: &Reads, exprs: impl IntoIterator<Item = &'e Expr>) -> Reads {
    let mut out = reads.clone()?;
    for e in exprs {
        if has_subquery(e) {
            // A correlated subquery reads the row by positions `walk` does not see.
            return None;
        }
        used_columns([e], &mut out);
    }
    Some(out)
}

/// Pass 8: each scan learns which of its columns the plan above reads, so that the
/// others are neither decoded nor copied into rows.
pub fn prune_columns(node: Node, reads: Reads) -> Result<Node> {
    let all = |n: Node| prune_columns(n, None);
    Ok(match node {
        Node::Scan {
            collection,
            columns,
            access,
            filter,
            ..
        } => {
            // An index-only scan of a table whose bounds apply the whole filter does not
            // test it (see `scan::build_set_up`): its columns need not be read.
            let exact = matches!(&access, Access::Index(a)
                if crate::query::plan::index_applies_filter(&collection, a, filter.as_ref()));
            let mut read = match exact {
                true => reads,
                false => with_columns(&reads, filter.iter()),
            };
            if let Some(r) = &mut read {
                r.sort_unstable();
                r.dedup();
            }
            Node::Scan {
                collection,
                columns,
                access,
                filter,
                read,
            }
        }
        Node::Project {
            input,
            mut exprs,
            columns,
        } => {
            // Outputs the parent does not read are not computed (NULL in their place),
            // so the columns only they read are not decoded below.
            if let Some(read) = &reads {
                for (at, e) in exprs.iter_mut().enumerate() {
                    if !read.contains(&at) {
                        *e = Expr::Literal(Value::Null);
                    }
                }
            }
            let below = with_columns(&Some(Vec::new()), exprs.iter());
            Node::Project {
                input: Box::new(prune_columns(*input, below)?),
                exprs,
                columns,
            }
        }
        Node::Filter { input, predicate } => {
            let below = with_columns(&reads, [&predicate]);
            Node::Filter {
                input: Box::new(prune_columns(*input, below)?),
                predicate,
            }
        }
        Node::Sort { input, keys } => {
            let below = with_columns(&reads, keys.iter().map(|k| &k.expr));
            Node::Sort {
                input: Box::new(prune_columns(*input, below)?),
                keys,
            }
        }
        Node::Limit {
            input,
            limit,
            offset,
        } => Node::Limit {
            input: Box::new(prune_columns(*input, reads)?),
            limit,
            offset,
        },
        Node::Aggregate {
            input,
            group_by,
            aggs,
            columns,
        } => {
            let args = aggs.iter().filter_map(|a| a.arg.as_deref());
            let below = with_columns(&Some(Vec::new()), group_by.iter().chain(args));
            Node::Aggregate {
                input: Box::new(prune_columns(*input, below)?),
                group_by,
                aggs,
                columns,
            }
        }
        Node::Join {
            left,
            right,
            kind,
            condition,
            equi,
        } => {
            let lw = left.columns().len();
            let joined = with_columns(&reads, condition.iter());
            let (mut l, mut r): (Reads, Reads) = match &joined {
                None => (None, None),
                Some(cols) => (
                    Some(cols.iter().copied().filter(|c| *c < lw).collect()),
                    Some(cols.iter().filter(|c| **c >= lw).map(|c| c - lw).collect()),
                ),
            };
            l = with_columns(&l, equi.iter().map(|(a, _)| a));
            r = with_columns(&r, equi.iter().map(|(_, b)| b));
            Node::Join {
                left: Box::new(prune_columns(*left, l)?),
                right: Box::new(prune_columns(*right, r)?),
                kind,
                condition,
                equi,
            }
        }
        other => other.map_children(&mut |n| all(n))?,
    })
}

/// Runs every pass in order.
pub fn optimize(node: Node, ctx: &PlanContext<'_>) -> Result<Node> {
    let node = fold_constants(node)?;
    let node = crate::query::decorrelate::decorrelate(node)?;
    let node = crate::query::join_order::order_joins(node, ctx)?;
    let passes: [fn(Node) -> Result<Node>; 3] = [plan_joins, push_down_filters, use_key_lookups];
    let node = passes.iter().try_fold(node, |n, pass| pass(n))?;
    let node = use_indexes(node, ctx)?;
    prune_columns(node, None)
}

/// A literal LIMIT (plus OFFSET): how many rows the plan below may stop after.
fn literal_limit(limit: Option<&Expr>, offset: Option<&Expr>) -> Option<u64> {
    let value = |e: Option<&Expr>| match e {
        None => Some(0),
        Some(Expr::Literal(crate::doc::Value::Int(i))) => u64::try_from(*i).ok(),
        Some(_) => None,
    };
    let l = match limit {
        Some(_) => value(limit)?,
        None => return None,
    };
    l.checked_add(value(offset)?)
}

/// Columns of its input an expression list reads.
fn used_columns<'e>(exprs: impl IntoIterator<Item = &'e Expr>, out: &mut Vec<usize>) {
    for e in exprs {
        e.walk(&mut |x| {
            if let Expr::Column(i) = x
                && !out.contains(i)
            {
                out.push(*i);
            }
        });
    }
}

/// Replaces a full scan by an index access when [`access::choose`] finds one cheaper.
fn index_scan(node: Node, needs: &Needs, ctx: &PlanContext<'_>) -> (Node, bool) {
    match node {
        Node::Scan {
            collection,
            columns,
            access: Access::Full,
            filter,
            read,
        } => {
            let mut needs_here = Needs {
                limit: needs.limit,
                order: needs.order.clone(),
                used_columns: needs.used_columns.clone(),
            };
            if let (Some(used), Some(f)) = (&mut needs_here.used_columns, &filter) {
                used_columns([f], used);
            }
            match access::choose(&collection, &columns, filter.as_ref(), &needs_here, ctx) {
                Some(choice) => (
                    Node::Scan {
                        collection,
                        columns,
                        access: Access::Index(Box::new(choice.access)),
                        filter,
                        read,
                    },
                    choice.ordered,
                ),
                None => (
                    Node::Scan {
                        collection,
                        columns,
                        access: Access::Full,
                        filter,
                        read,
                    },
                    false,
                ),
            }
        }
        other => (other, false),
    }
}

/// Pass 4: index scans, recognising the shapes the binder builds:
/// `Limit? -> Sort? -> Project -> Scan` and `Aggregate -> Scan`.
pub fn use_indexes(node: Node, ctx: &PlanContext<'_>) -> Result<Node> {
    Ok(match node {
        Node::Limit {
            input,
            limit,
            offset,
        } => {
            let rows = literal_limit(limit.as_ref(), offset.as_ref());
            let input = match *input {
                Node::Sort { input, keys } => sorted(*input, keys, rows, ctx)?,
                Node::Project {
                    input,
                    exprs,
                    columns,
                } => {
                    let mut used = Vec::new();
                    used_columns(&exprs, &mut used);
                    let needs = Needs {
                        limit: rows,
                        order: None,
                        used_columns: Some(used),
                    };
                    let input = match *input {
                        scan @ Node::Scan { .. } => index_scan(scan, &needs, ctx).0,
                        other => use_indexes(other, ctx)?,
                    };
                    Node::Project {
                        input: Box::new(input),
                        exprs,
                        columns,
                    }
                }
                other => use_indexes(other, ctx)?,
            };
            Node::Limit {
                input: Box::new(input),
                limit,
                offset,
            }
        }
        Node::Sort { input, keys } => sorted(*input, keys, None, ctx)?,
        Node::Project {
            input,
            exprs,
            columns,
        } if matches!(*input, Node::Scan { .. }) => {
            let mut used = Vec::new();
            used_columns(&exprs, &mut used);
            let needs = Needs {
                used_columns: Some(used),
                ..Needs::default()
            };
            Node::Project {
                input: Box::new(index_scan(*input, &needs, ctx).0),
                exprs,
                columns,
            }
        }
        Node::Aggregate {
            input,
            group_by,
            aggs,
            columns,
        } if matches!(*input, Node::Scan { .. }) => {
            let mut used = Vec::new();
            used_columns(&group_by, &mut used);
            for a in &aggs {
                used_columns(a.arg.as_deref(), &mut used);
            }
            let needs = Needs {
                used_columns: Some(used),
                ..Needs::default()
            };
            Node::Aggregate {
                input: Box::new(index_scan(*input, &needs, ctx).0),
                group_by,
                aggs,
                columns,
            }
        }
        scan @ Node::Scan { .. } => index_scan(scan, &Needs::default(), ctx).0,
        other => map_inputs(other, &mut |n| use_indexes(n, ctx))?,
    })
}

/// `Sort -> Project -> Scan`: an index scan, and no sort if the index gives the order.
fn sorted(
    input: Node,
    keys: Vec<SortKey>,
    limit: Option<u64>,
    ctx: &PlanContext<'_>,
) -> Result<Node> {
    let Node::Project {
        input: scan,
        exprs,
        columns,
    } = input
    else {
        return Ok(Node::Sort {
            input: Box::new(use_indexes(input, ctx)?),
            keys,
        });
    };
    let Node::Scan {
        collection,
        columns: scan_columns,
        access,
        filter,
        read,
    } = *scan
    else {
        return Ok(Node::Sort {
            input: Box::new(Node::Project {
                input: Box::new(use_indexes(*scan, ctx)?),
                exprs,
                columns,
            }),
            keys,
        });
    };
    // The sort keys as field paths of the scan, if they all are.
    let order: Option<Vec<(Vec<String>, bool, bool)>> = keys
        .iter()
        .map(|k| match &k.expr {
            Expr::Column(i) => exprs
                .get(*i)
                .and_then(|e| access::field_path(e, &collection, &scan_columns))
                .map(|p| (p, k.desc, k.nulls_first)),
            _ => None,
        })
        .collect();
    let mut used = Vec::new();
    used_columns(&exprs, &mut used);
    let needs = Needs {
        limit,
        order,
        used_columns: Some(used),
    };
    let (scan, ordered) = index_scan(
        Node::Scan {
            collection,
            columns: scan_columns,
            access,
            filter,
            read,
        },
        &needs,
        ctx,
    );
    let (scan, ordered) = if ordered {
        (scan, true)
    } else {
        key_ordered(scan, needs.order.as_deref())
    };
    let project = Node::Project {
        input: Box::new(scan),
        exprs,
        columns,
    };
    Ok(if ordered {
        project
    } else {
        Node::Sort {
            input: Box::new(project),
            keys,
        }
    })
}

/// A scan of an ordered integer key in full or over a key range, when the order asked
/// for is the key's: the scan walks the keys in that order (backwards for DESC), and
/// true (no sort needed). Anything else is returned as it is, with false.
fn key_ordered(scan: Node, order: Option<&[(Vec<String>, bool, bool)]>) -> (Node, bool) {
    let Node::Scan {
        collection,
        columns,
        access,
        filter,
        read,
    } = scan
    else {
        return (scan, false);
    };
    let desc = match (order, &collection.primary_key) {
        (Some([(path, desc, _)]), Some(pk))
            if collection.key_form == KeyForm::Integer
                && matches!(path.as_slice(), [p] if p == pk) =>
        {
            Some(*desc)
        }
        _ => None,
    };
    let (access, ordered) = match (access, desc) {
        (Access::Full, Some(false)) => (Access::Full, true),
        (Access::Full, Some(true)) => (
            Access::KeyRange(Box::new(KeyRange {
                lower: None,
                upper: None,
                reverse: true,
            })),
            true,
        ),
        (Access::KeyRange(mut r), Some(desc)) => {
            r.reverse = desc;
            (Access::KeyRange(r), true)
        }
        (access, _) => (access, false),
    };
    (
        Node::Scan {
            collection,
            columns,
            access,
            filter,
            read,
        },
        ordered,
    )
}

fn map_inputs(node: Node, f: &mut dyn FnMut(Node) -> Result<Node>) -> Result<Node> {
    node.map_children(f)
}

/// Folds a constant expression to a literal (leaving it if evaluation fails, so the error
/// surfaces when the statement runs).
pub fn fold(e: Expr) -> Result<Expr> {
    e.transform(&mut |x| {
        if matches!(x, Expr::Literal(_)) || !x.is_constant() {
            return Ok(x);
        }
        let ctx = EvalContext {
            params: &[],
            now: 0,
            subqueries: None,
        };
        Ok(match x.eval(&[], &ctx) {
            Ok(v) => Expr::Literal(v),
            Err(_) => x,
        })
    })
}

/// Whether `e` computes a value from parameters alone (`'brand_' || $1`), which
/// [`fold_params`] computes once for an execution instead of once per row.
pub fn folds_params(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        if found || matches!(x, Expr::Literal(_) | Expr::Param(_)) || !x.is_row_independent() {
            return;
        }
        x.walk(&mut |y| found |= matches!(y, Expr::Param(_)));
    });
    found
}

/// `e` for one execution: each part that reads parameters but no row replaced by its
/// value under `ctx` (a part whose evaluation fails is left, so the error surfaces as
/// the rows are read, as without folding).
pub fn fold_params(e: &Expr, ctx: &EvalContext) -> Expr {
    fold_params_owned(e.clone(), ctx).unwrap_or_else(|_| e.clone())
}

/// [`fold_params`] from the top: the largest parts that read no row are computed
/// whole, and only where one fails are its own parts tried.
fn fold_params_owned(e: Expr, ctx: &EvalContext) -> Result<Expr> {
    if !matches!(e, Expr::Literal(_))
        && e.is_row_independent()
        && let Ok(v) = e.eval(&[], ctx)
    {
        return Ok(Expr::Literal(v));
    }
    e.map_children(&mut |c| fold_params_owned(c, ctx))
}

/// Pass 1: constant folding in every expression of the plan.
pub fn fold_constants(node: Node) -> Result<Node> {
    let node = map_inputs(node, &mut fold_constants)?;
    Ok(match node {
        Node::Scan {
            collection,
            columns,
            access,
            filter,
            read,
        } => Node::Scan {
            read,
            collection,
            columns,
            access,
            filter: filter.map(fold).transpose()?,
        },
        Node::Filter { input, predicate } => Node::Filter {
            input,
            predicate: fold(predicate)?,
        },
        Node::Project {
            input,
            exprs,
            columns,
        } => Node::Project {
            input,
            exprs: exprs.into_iter().map(fold).collect::<Result<_>>()?,
            columns,
        },
        Node::Values { rows, columns } => Node::Values {
            rows: rows
                .into_iter()
                .map(|r| r.into_iter().map(fold).collect::<Result<_>>())
                .collect::<Result<_>>()?,
            columns,
        },
        Node::Join {
            left,
            right,
            kind,
            condition,
            equi,
        } => Node::Join {
            left,
            right,
            kind,
            condition: condition.map(fold).transpose()?,
            equi,
        },
        other => other,
    })
}

/// Which side of a join an expression reads: only the left (columns below
/// `left_width`), only the right, both, or neither.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Neither,
    Left,
    Right,
    Both,
}

fn side(e: &Expr, left_width: usize) -> Side {
    let (mut l, mut r) = (false, false);
    e.walk(&mut |x| {
        if let Expr::Column(i) = x {
            if *i < left_width {
                l = true;
            } else {
                r = true;
            }
        }
    });
    match (l, r) {
        (false, false) => Side::Neither,
        (true, false) => Side::Left,
        (false, true) => Side::Right,
        (true, true) => Side::Both,
    }
}

/// `e` with every column index lowered by `by` (an expression over the joined row
/// made one over the right row).
fn shift_columns(e: Expr, by: usize) -> Result<Expr> {
    e.transform(&mut |x| {
        Ok(match x {
            Expr::Column(i) => Expr::Column(i.saturating_sub(by)),
            other => other,
        })
    })
}

/// The `column-expression = constant` conjuncts of the filter on top of `node` (a
/// Filter, or a scan's own filter), as (expression, constant) pairs.
fn pins(node: &Node) -> Vec<(Expr, Expr)> {
    let filter = match node {
        Node::Filter { predicate, .. } => Some(predicate),
        Node::Scan { filter, .. } => filter.as_ref(),
        _ => None,
    };
    let mut parts = Vec::new();
    if let Some(f) = filter {
        conjuncts(f, &mut parts);
    }
    parts
        .into_iter()
        .filter_map(|p| match p {
            Expr::Binary(BinOp::Eq, a, b) => {
                if reads_no_row(&b) && !reads_no_row(&a) {
                    Some((*a, *b))
                } else if reads_no_row(&a) && !reads_no_row(&b) {
                    Some((*b, *a))
                } else {
                    None
                }
            }
            _ => None,
        })
        .collect()
}

fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts
        .into_iter()
        .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)))
}

fn filtered(node: Node, parts: Vec<Expr>) -> Node {
    match and_all(parts) {
        None => node,
        Some(predicate) => Node::Filter {
            input: Box::new(node),
            predicate,
        },
    }
}

/// Pass 2: conditions moved to the join side they read, hash join keys found.
pub fn plan_joins(node: Node) -> Result<Node> {
    // A WHERE over a join: its conjuncts go as far down as the join kind allows.
    let node = match node {
        Node::Filter { input, predicate } if matches!(*input, Node::Join { .. }) => {
            let Node::Join {
                left,
                right,
                kind,
                condition,
                equi,
            } = *input
            else {
                return Err(crate::error::Error::Internal("not a join".into()));
            };
            let lw = left.columns().len();
            let mut parts = Vec::new();
            conjuncts(&predicate, &mut parts);
            let (mut to_left, mut to_right, mut to_join, mut stay) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for p in parts {
                // A correlated subquery reads the row by its positions here: it stays.
                if has_subquery(&p) {
                    stay.push(p);
                    continue;
                }
                match (side(&p, lw), kind) {
                    (
                        Side::Left,
                        JoinKind::Inner | JoinKind::Left | JoinKind::Semi | JoinKind::Anti,
                    ) => to_left.push(p),
                    (Side::Right, JoinKind::Inner | JoinKind::Right) => {
                        to_right.push(shift_columns(p, lw)?)
                    }
                    (Side::Both | Side::Neither, JoinKind::Inner) => to_join.push(p),
                    _ => stay.push(p),
                }
            }
            let mut cond = Vec::new();
            if let Some(c) = condition {
                cond.push(c);
            }
            cond.extend(to_join);
            let join = Node::Join {
                left: Box::new(filtered(*left, to_left)),
                right: Box::new(filtered(*right, to_right)),
                kind,
                condition: and_all(cond),
                equi,
            };
            filtered(join, stay)
        }
        other => other,
    };
    let node = map_inputs(node, &mut plan_joins)?;
    Ok(match node {
        Node::Join {
            left,
            right,
            kind,
            condition: Some(condition),
            mut equi,
        } => {
            let lw = left.columns().len();
            let mut parts = Vec::new();
            conjuncts(&condition, &mut parts);
            let (mut to_left, mut to_right, mut rest) = (Vec::new(), Vec::new(), Vec::new());
            for p in parts {
                if has_subquery(&p) {
                    rest.push(p);
                    continue;
                }
                let s = side(&p, lw);
                // ON conditions on one side only filter that side's rows before they
                // are matched, unless that side's rows are all kept (outer joins).
                match (s, kind) {
                    (Side::Left, JoinKind::Inner | JoinKind::Right | JoinKind::Semi) => {
                        to_left.push(p);
                        continue;
                    }
                    (
                        Side::Right,
                        JoinKind::Inner | JoinKind::Left | JoinKind::Semi | JoinKind::Anti,
                    ) => {
                        to_right.push(shift_columns(p, lw)?);
                        continue;
                    }
                    _ => {}
                }
                if let Expr::Binary(BinOp::Eq, a, b) = &p {
                    match (side(a, lw), side(b, lw)) {
                        (Side::Left, Side::Right) => {
                            equi.push(((**a).clone(), shift_columns((**b).clone(), lw)?));
                            continue;
                        }
                        (Side::Right, Side::Left) => {
                            equi.push(((**b).clone(), shift_columns((**a).clone(), lw)?));
                            continue;
                        }
                        _ => {}
                    }
                }
                rest.push(p);
            }
            // `l = r` and `l = constant` give `r = constant`: the other side reads less
            // (an index or key lookup may serve it).
            let left_node = filtered(*left, to_left);
            let right_node = filtered(*right, to_right);
            let mut more_right = Vec::new();
            let mut more_left = Vec::new();
            let (lpins, rpins) = (pins(&left_node), pins(&right_node));
            for (l, r) in &equi {
                if let Some(v) = lpins.iter().find(|(e, _)| e == l).map(|(_, v)| v)
                    && !rpins.iter().any(|(e, _)| e == r)
                {
                    more_right.push(Expr::Binary(
                        BinOp::Eq,
                        Box::new(r.clone()),
                        Box::new(v.clone()),
                    ));
                }
                if kind == JoinKind::Inner
                    && let Some(v) = rpins.iter().find(|(e, _)| e == r).map(|(_, v)| v)
                    && !lpins.iter().any(|(e, _)| e == l)
                {
                    more_left.push(Expr::Binary(
                        BinOp::Eq,
                        Box::new(l.clone()),
                        Box::new(v.clone()),
                    ));
                }
            }
            // The pushed filters may now sit over scans: push them into the scans.
            let left = push_down_filters(filtered(left_node, more_left))?;
            let right = push_down_filters(filtered(right_node, more_right))?;
            Node::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                condition: and_all(rest),
                equi,
            }
        }
        other => other,
    })
}

/// Pass 2: filters directly over scans move into them.
pub fn push_down_filters(node: Node) -> Result<Node> {
    let node = map_inputs(node, &mut push_down_filters)?;
    Ok(match node {
        Node::Filter { input, predicate } => match *input {
            Node::Scan {
                collection,
                columns,
                access,
                filter,
                read,
            } => Node::Scan {
                read,
                collection,
                columns,
                access,
                filter: Some(match filter {
                    Some(f) => Expr::Binary(BinOp::And, Box::new(f), Box::new(predicate)),
                    None => predicate,
                }),
            },
            other => Node::Filter {
                input: Box::new(other),
                predicate,
            },
        },
        other => other,
    })
}

/// The operands of a chain of ANDs.
pub(crate) fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary(BinOp::And, l, r) => {
            conjuncts(l, out);
            conjuncts(r, out);
        }
        other => out.push(other.clone()),
    }
}

/// Whether `e` holds a subquery (one still in the plan reads the row around it, by
/// column positions that moving `e` to another row would make wrong).
pub(crate) fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| found |= matches!(x, Expr::Subquery(..) | Expr::InSubquery { .. }));
    found
}

/// Reads no row: a literal, a parameter, or a function of those.
pub(crate) fn reads_no_row(e: &Expr) -> bool {
    let mut pure = true;
    e.walk(&mut |x| pure &= !matches!(x, Expr::Column(_) | Expr::Agg(_)));
    pure
}

/// The key values a predicate pins the key column `key` to, if it does.
pub fn key_values(filter: &Expr, key: usize) -> Option<Vec<Expr>> {
    let mut parts = Vec::new();
    conjuncts(filter, &mut parts);
    for p in parts {
        match p {
            Expr::Binary(BinOp::Eq, l, r) => match (*l, *r) {
                (Expr::Column(c), v) | (v, Expr::Column(c)) if c == key && reads_no_row(&v) => {
                    return Some(vec![v]);
                }
                _ => {}
            },
            Expr::InList {
                expr,
                list,
                negated: false,
            } if matches!(*expr, Expr::Column(c) if c == key) && list.iter().all(reads_no_row) => {
                return Some(list);
            }
            _ => {}
        }
    }
    None
}

/// The bounds a predicate's conjuncts put on the key column `key` (`key > v`, `v >=
/// key`, `key BETWEEN a AND b`, with `v` reading no row): the first lower and the first
/// upper found; None if there is neither. The predicate stays the scan's filter, so a
/// bound the range does not use still applies.
pub fn key_range(filter: &Expr, key: usize) -> Option<KeyRange> {
    key_range_sources(filter, key).map(|(range, _)| range)
}

/// [`key_range`] with the positions, among the filter's conjuncts ([`conjuncts`]), of
/// the conjunct that gave its lower bound and of the one that gave its upper bound.
pub fn key_range_sources(filter: &Expr, key: usize) -> Option<(KeyRange, [Option<usize>; 2])> {
    let mut parts = Vec::new();
    conjuncts(filter, &mut parts);
    let mut range = KeyRange {
        lower: None,
        upper: None,
        reverse: false,
    };
    let mut sources = [None, None];
    let is_key = |e: &Expr| matches!(e, Expr::Column(c) if *c == key);
    let bound = |value: &Expr, inclusive: bool| RangeBound {
        value: value.clone(),
        inclusive,
    };
    for (at, p) in parts.iter().enumerate() {
        // (value, is lower, inclusive)
        let (lower, upper) = match p {
            Expr::Binary(op, l, r) => {
                let (op, v) = if is_key(l) && reads_no_row(r) {
                    (*op, &**r)
                } else if is_key(r) && reads_no_row(l) {
                    // `v < key` is `key > v`.
                    let flipped = match op {
                        BinOp::Lt => BinOp::Gt,
                        BinOp::LtEq => BinOp::GtEq,
                        BinOp::Gt => BinOp::Lt,
                        BinOp::GtEq => BinOp::LtEq,
                        _ => continue,
                    };
                    (flipped, &**l)
                } else {
                    continue;
                };
                match op {
                    BinOp::Gt => (Some(bound(v, false)), None),
                    BinOp::GtEq => (Some(bound(v, true)), None),
                    BinOp::Lt => (None, Some(bound(v, false))),
                    BinOp::LtEq => (None, Some(bound(v, true))),
                    _ => continue,
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated: false,
            } if is_key(expr) && reads_no_row(low) && reads_no_row(high) => {
                (Some(bound(low, true)), Some(bound(high, true)))
            }
            _ => continue,
        };
        if range.lower.is_none() && lower.is_some() {
            range.lower = lower;
            sources[0] = Some(at);
        }
        if range.upper.is_none() && upper.is_some() {
            range.upper = upper;
            sources[1] = Some(at);
        }
    }
    (range.lower.is_some() || range.upper.is_some()).then_some((range, sources))
}

/// Pass 3: key lookups instead of full scans where the filter pins the key, and key
/// ranges where it bounds an ordered key.
pub fn use_key_lookups(node: Node) -> Result<Node> {
    let node = map_inputs(node, &mut use_key_lookups)?;
    Ok(match node {
        Node::Scan {
            collection,
            columns,
            access: Access::Full,
            filter: Some(filter),
            read,
        } => {
            let key = collection.key_position();
            let ordered = collection.key_form == KeyForm::Integer;
            let access = match key.and_then(|k| key_values(&filter, k)) {
                Some(values) => Access::Keys(values),
                None => match key.filter(|_| ordered).and_then(|k| key_range(&filter, k)) {
                    Some(range) => Access::KeyRange(Box::new(range)),
                    None => Access::Full,
                },
            };
            Node::Scan {
                collection,
                columns,
                access,
                filter: Some(filter),
                read,
            }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Value;

    #[test]
    fn folds_constants_but_not_columns() {
        let e = Expr::Binary(
            BinOp::Add,
            Box::new(Expr::Binary(
                BinOp::Mul,
                Box::new(Expr::Literal(Value::Int(2))),
                Box::new(Expr::Literal(Value::Int(3))),
            )),
            Box::new(Expr::Column(0)),
        );
        let folded = fold(e).unwrap();
        assert_eq!(
            folded,
            Expr::Binary(
                BinOp::Add,
                Box::new(Expr::Literal(Value::Int(6))),
                Box::new(Expr::Column(0))
            )
        );
    }

    /// Parameter-only parts are computed once, the largest first; a part that fails is
    /// left (its error comes with the rows), with its own parts and its siblings
    /// computed.
    #[test]
    fn fold_params_computes_parameter_parts_and_leaves_failing_ones() {
        let b = Box::new;
        let (lit, col, param) = (Expr::Literal, Expr::Column, Expr::Param);
        let concat = Expr::Binary(
            BinOp::Concat,
            b(lit(Value::String("brand_".into()))),
            b(param(0)),
        );
        let failing = Expr::Binary(BinOp::Div, b(param(1)), b(lit(Value::Int(0))));
        let e = Expr::Binary(
            BinOp::And,
            b(Expr::Binary(BinOp::Eq, b(col(0)), b(concat))),
            b(Expr::Binary(
                BinOp::Eq,
                b(col(1)),
                b(Expr::Binary(BinOp::Add, b(failing), b(param(1)))),
            )),
        );
        let params = [Value::String("7".into()), Value::Int(5)];
        // The failing division stays, with its own parameter computed.
        let failed = Expr::Binary(BinOp::Div, b(lit(Value::Int(5))), b(lit(Value::Int(0))));
        let ctx = EvalContext {
            params: &params,
            now: 0,
            subqueries: None,
        };
        let want = Expr::Binary(
            BinOp::And,
            b(Expr::Binary(
                BinOp::Eq,
                b(col(0)),
                b(lit(Value::String("brand_7".into()))),
            )),
            b(Expr::Binary(
                BinOp::Eq,
                b(col(1)),
                b(Expr::Binary(BinOp::Add, b(failed), b(lit(Value::Int(5))))),
            )),
        );
        assert_eq!(fold_params(&e, &ctx), want);
    }

    #[test]
    fn finds_key_equalities() {
        let f = Expr::Binary(
            BinOp::And,
            Box::new(Expr::Binary(
                BinOp::Gt,
                Box::new(Expr::Column(2)),
                Box::new(Expr::Literal(Value::Int(1))),
            )),
            Box::new(Expr::Binary(
                BinOp::Eq,
                Box::new(Expr::Param(0)),
                Box::new(Expr::Column(0)),
            )),
        );
        assert_eq!(key_values(&f, 0), Some(vec![Expr::Param(0)]));
        assert_eq!(key_values(&f, 1), None);
        let not_key = Expr::Binary(
            BinOp::Eq,
            Box::new(Expr::Column(0)),
            Box::new(Expr::Column(1)),
        );
        assert_eq!(key_values(&not_key, 0), None);
    }
}
