//! The optimizer: an ordered list of plan rewrites, each a `Node -> Result<Node>` pass.
//!
//! 1. [`fold_constants`]: expressions that read no row, parameter or clock are computed
//!    once, at plan time.
//! 2. [`push_down_filters`]: a filter directly above a scan moves into the scan, so rows
//!    are tested as documents are decoded.
//! 3. [`use_key_lookups`]: a scan whose filter pins the document key (`id = $1`,
//!    `id IN ('a', 'b')`) reads those keys instead of the whole collection.
//!
//! Projection pruning has nothing to do yet: a scan decodes each document once and the
//! row it builds only clones the fields it names.

use crate::catalog::Kind;
use crate::error::Result;
use crate::query::expr::{BinOp, EvalContext, Expr};
use crate::query::plan::{Access, Node};

/// Runs every pass in order.
pub fn optimize(node: Node) -> Result<Node> {
    let passes: [fn(Node) -> Result<Node>; 3] =
        [fold_constants, push_down_filters, use_key_lookups];
    passes.iter().try_fold(node, |n, pass| pass(n))
}

fn map_inputs(node: Node, f: &mut dyn FnMut(Node) -> Result<Node>) -> Result<Node> {
    let b = |n: Box<Node>, f: &mut dyn FnMut(Node) -> Result<Node>| -> Result<Box<Node>> {
        Ok(Box::new(f(*n)?))
    };
    Ok(match node {
        n @ (Node::Scan { .. } | Node::Values { .. }) => n,
        Node::Filter { input, predicate } => Node::Filter {
            input: b(input, f)?,
            predicate,
        },
        Node::Project {
            input,
            exprs,
            columns,
        } => Node::Project {
            input: b(input, f)?,
            exprs,
            columns,
        },
        Node::Aggregate {
            input,
            group_by,
            aggs,
            columns,
        } => Node::Aggregate {
            input: b(input, f)?,
            group_by,
            aggs,
            columns,
        },
        Node::Sort { input, keys } => Node::Sort {
            input: b(input, f)?,
            keys,
        },
        Node::Limit {
            input,
            limit,
            offset,
        } => Node::Limit {
            input: b(input, f)?,
            limit,
            offset,
        },
        Node::Distinct { input } => Node::Distinct {
            input: b(input, f)?,
        },
    })
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
        };
        Ok(match x.eval(&[], &ctx) {
            Ok(v) => Expr::Literal(v),
            Err(_) => x,
        })
    })
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
        } => Node::Scan {
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
            } => Node::Scan {
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

fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary(BinOp::And, l, r) => {
            conjuncts(l, out);
            conjuncts(r, out);
        }
        other => out.push(other.clone()),
    }
}

fn reads_no_row(e: &Expr) -> bool {
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

/// Pass 3: key lookups instead of full scans where the filter pins the key.
pub fn use_key_lookups(node: Node) -> Result<Node> {
    let node = map_inputs(node, &mut use_key_lookups)?;
    Ok(match node {
        Node::Scan {
            collection,
            columns,
            access: Access::Full,
            filter: Some(filter),
        } => {
            let key = match collection.kind {
                Kind::Schemaless => Some(0),
                Kind::Table => collection
                    .primary_key
                    .as_ref()
                    .and_then(|pk| collection.columns.iter().position(|c| c.name == *pk)),
            };
            let access = match key.and_then(|k| key_values(&filter, k)) {
                Some(values) => Access::Keys(values),
                None => Access::Full,
            };
            Node::Scan {
                collection,
                columns,
                access,
                filter: Some(filter),
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
