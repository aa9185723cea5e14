//! Decorrelation: a WHERE condition `EXISTS (subquery)`, `NOT EXISTS (subquery)` or
//! `x IN (subquery)` whose subquery reads the row around it only through conditions of
//! its own WHERE becomes a semi-join (anti-join for NOT EXISTS) of the filtered rows
//! with the subquery's rows, on those conditions. The subquery then runs once, and an
//! equality among the conditions makes it a hash join or an index probe, instead of a
//! run of the subquery per row.
//!
//! What qualifies: the condition is one of the WHERE's top-level ANDs (where unknown
//! and false both drop the row, so `x IN` behaves as a semi-join even with NULLs; `NOT
//! IN` is left alone, its NULL rules are not an anti-join's); the subquery is a
//! projection over a filter over a FROM that reads nothing of the row around it, with
//! no aggregate, DISTINCT ON, LIMIT or set operation; the filter's conditions that read
//! the row around it read it directly (not through a query further out) and hold no
//! subquery of their own.

use crate::error::Result;
use crate::query::expr::{BinOp, Expr, SubqueryKind, UnaryOp};
use crate::query::optimizer::{conjuncts, has_subquery};
use crate::query::plan::{JoinKind, Node};

/// The pass: every qualifying condition of every filter made a semi- or anti-join.
pub fn decorrelate(node: Node) -> Result<Node> {
    let node = node.map_children(&mut decorrelate)?;
    let Node::Filter { input, predicate } = node else {
        return Ok(node);
    };
    if !has_subquery(&predicate) {
        return Ok(Node::Filter { input, predicate });
    }
    let mut parts = Vec::new();
    conjuncts(&predicate, &mut parts);
    let mut node = *input;
    let mut rest = Vec::new();
    for p in parts {
        match as_join(p, &node)? {
            Ok((kind, right, condition)) => {
                node = Node::Join {
                    left: Box::new(node),
                    right: Box::new(right),
                    kind,
                    condition: Some(condition),
                    equi: Vec::new(),
                };
            }
            Err(p) => rest.push(p),
        }
    }
    Ok(
        match rest
            .into_iter()
            .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)))
        {
            Some(predicate) => Node::Filter {
                input: Box::new(node),
                predicate,
            },
            None => node,
        },
    )
}

/// The semi- or anti-join (kind, right side, condition over the joined row) that `p`,
/// a conjunct of a filter over `left`, amounts to; `Err(p)` when it does not qualify.
fn as_join(p: Expr, left: &Node) -> Result<std::result::Result<(JoinKind, Node, Expr), Expr>> {
    let (kind, plan, value) = match &p {
        Expr::Subquery(SubqueryKind::Exists, plan) => (JoinKind::Semi, plan, None),
        Expr::Unary(UnaryOp::Not, inner) => match &**inner {
            Expr::Subquery(SubqueryKind::Exists, plan) => (JoinKind::Anti, plan, None),
            _ => return Ok(Err(p)),
        },
        Expr::InSubquery {
            expr,
            plan,
            negated: false,
        } => (JoinKind::Semi, plan, Some(expr)),
        _ => return Ok(Err(p)),
    };
    let Some((from, correlated, output)) = split(plan) else {
        return Ok(Err(p));
    };
    let lw = left.columns().len();
    // Over the joined row: the outer row's columns first, then the subquery's.
    let joined = |e: Expr| -> Result<Expr> {
        e.transform(&mut |x| {
            Ok(match x {
                Expr::Outer { depth: 1, index } => Expr::Column(index),
                Expr::Column(i) => Expr::Column(lw + i),
                other => other,
            })
        })
    };
    let mut conds = Vec::new();
    for c in correlated {
        conds.push(joined(c)?);
    }
    if let Some(x) = value {
        let Some(out) = output else {
            return Ok(Err(p));
        };
        conds.push(Expr::Binary(
            BinOp::Eq,
            Box::new((**x).clone()),
            Box::new(joined(out)?),
        ));
    }
    let Some(condition) = conds
        .into_iter()
        .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)))
    else {
        return Ok(Err(p));
    };
    Ok(Ok((kind, from, condition)))
}

/// Splits a subquery plan into its FROM (with its uncorrelated conditions), its
/// correlated conditions (over the FROM's row, reading the outer row as `Outer` depth
/// 1), and its first output expression over the FROM's row; None if it does not
/// qualify (see the module doc).
fn split(plan: &Node) -> Option<(Node, Vec<Expr>, Option<Expr>)> {
    let Node::Project { input, exprs, .. } = plan else {
        return None;
    };
    let mut output = exprs.first().cloned();
    let mut input = &**input;
    // `SELECT x::t FROM ...` (an IN's cast to the compared type): projections compose.
    while let Node::Project {
        input: inner,
        exprs: inner_exprs,
        ..
    } = input
    {
        output = match output {
            Some(e) => Some(
                e.transform(&mut |x| {
                    Ok(match x {
                        Expr::Column(i) => inner_exprs.get(i).cloned().unwrap_or(Expr::Column(i)),
                        other => other,
                    })
                })
                .ok()?,
            ),
            None => None,
        };
        input = inner;
    }
    let (from, predicate) = match input {
        Node::Filter { input, predicate } => (&**input, predicate),
        _ => return None,
    };
    if crate::query::exec::reads_outer(from, 1) {
        return None;
    }
    if let Some(o) = &output
        && (reads_outer_expr(o) || has_subquery(o))
    {
        return None;
    }
    let mut parts = Vec::new();
    conjuncts(predicate, &mut parts);
    let (mut correlated, mut local) = (Vec::new(), Vec::new());
    for c in parts {
        if has_subquery(&c) {
            return None;
        } else if reads_outer_expr(&c) {
            let mut deeper = false;
            c.walk(&mut |x| deeper |= matches!(x, Expr::Outer { depth, .. } if *depth > 1));
            if deeper {
                return None;
            }
            correlated.push(c);
        } else {
            local.push(c);
        }
    }
    if correlated.is_empty() {
        return None;
    }
    let from = match local
        .into_iter()
        .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)))
    {
        Some(predicate) => Node::Filter {
            input: Box::new(from.clone()),
            predicate,
        },
        None => from.clone(),
    };
    Some((from, correlated, output))
}

fn reads_outer_expr(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| found |= matches!(x, Expr::Outer { .. }));
    found
}
