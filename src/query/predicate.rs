//! Conditions compiled for testing rows: a WHERE clause (or a join's residual
//! condition) turned into a tree that answers true, false or unknown for a row without
//! making a [`Value`] per comparison.
//!
//! The common parts of a filter, `AND`, `OR`, `NOT`, comparisons, `BETWEEN`,
//! `IS [NOT] NULL` and `LIKE` between columns, literals and parameters, are tested where the values
//! lie; anything else is evaluated as the expression it is ([`Expr::eval`]), so a
//! predicate answers exactly what evaluating the expression and taking its truth does,
//! errors included, in the same order.

use std::cmp::Ordering;

use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::expr::{
    BinOp, EvalContext, Expr, KnownNumber, UnaryOp, compare, compare_known, holds, like, text_of,
    truth,
};

/// A value a comparison reads: from the row, the statement text or its parameters.
#[derive(Clone, Debug)]
pub enum Operand {
    Column(usize),
    Literal(Value),
    /// A literal number, taken apart once for the comparisons ([`KnownNumber`]).
    Number(Value, KnownNumber),
    Param(usize),
}

impl Operand {
    fn of(e: &Expr) -> Option<Operand> {
        Some(match e {
            Expr::Column(i) => Operand::Column(*i),
            Expr::Literal(v) => match KnownNumber::of(v) {
                Some(known) => Operand::Number(v.clone(), known),
                None => Operand::Literal(v.clone()),
            },
            Expr::Param(i) => Operand::Param(*i),
            _ => return None,
        })
    }

    fn get<'a>(&'a self, row: &'a [Value], ctx: &'a EvalContext<'_>) -> Result<&'a Value> {
        const NULL: &Value = &Value::Null;
        match self {
            Operand::Column(i) => Ok(row.get(*i).unwrap_or(NULL)),
            Operand::Literal(v) | Operand::Number(v, _) => Ok(v),
            Operand::Param(i) => ctx.params.get(*i).ok_or_else(|| {
                Error::invalid(
                    SqlState("08P01"),
                    format!("no value bound for parameter ${}", i + 1),
                )
            }),
        }
    }

    /// [`compare`] of this operand's value with `other`'s.
    #[inline]
    fn compare(
        &self,
        other: &Operand,
        row: &[Value],
        ctx: &EvalContext<'_>,
    ) -> Result<Option<Ordering>> {
        let a = self.get(row, ctx)?;
        Ok(match other {
            Operand::Number(b, known) => compare_known(a, b, known),
            _ => compare(a, other.get(row, ctx)?),
        })
    }
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Predicate {
    /// `left op right` for one of `=`, `<>`, `<`, `<=`, `>`, `>=`.
    Compare {
        op: BinOp,
        left: Operand,
        right: Operand,
    },
    /// `value [NOT] BETWEEN low AND high`.
    Between {
        value: Operand,
        low: Operand,
        high: Operand,
        negated: bool,
    },
    /// `value IS [NOT] NULL`.
    IsNull {
        value: Operand,
        negated: bool,
    },
    /// `value [NOT] LIKE pattern` (case-sensitive).
    Like {
        value: Operand,
        pattern: Operand,
        negated: bool,
    },
    /// Every part, tested in order up to the first false one.
    And(Vec<Predicate>),
    /// Any part, tested in order up to the first true one.
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
    /// Any other expression, evaluated.
    Expr(Expr),
}

impl Predicate {
    /// The predicate `e` is as a condition.
    pub fn compile(e: &Expr) -> Predicate {
        match e {
            Expr::Binary(BinOp::And, ..) => {
                let mut parts = Vec::new();
                flatten(e, BinOp::And, &mut parts);
                Predicate::And(parts)
            }
            Expr::Binary(BinOp::Or, ..) => {
                let mut parts = Vec::new();
                flatten(e, BinOp::Or, &mut parts);
                Predicate::Or(parts)
            }
            Expr::Unary(UnaryOp::Not, inner) => Predicate::Not(Box::new(Predicate::compile(inner))),
            Expr::Binary(
                op @ (BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq),
                l,
                r,
            ) => match (Operand::of(l), Operand::of(r)) {
                (Some(left), Some(right)) => Predicate::Compare {
                    op: *op,
                    left,
                    right,
                },
                _ => Predicate::Expr(e.clone()),
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => match (Operand::of(expr), Operand::of(low), Operand::of(high)) {
                (Some(value), Some(low), Some(high)) => Predicate::Between {
                    value,
                    low,
                    high,
                    negated: *negated,
                },
                _ => Predicate::Expr(e.clone()),
            },
            Expr::IsNull(inner, negated) => match Operand::of(inner) {
                Some(value) => Predicate::IsNull {
                    value,
                    negated: *negated,
                },
                None => Predicate::Expr(e.clone()),
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive: false,
            } => match (Operand::of(expr), Operand::of(pattern)) {
                (Some(value), Some(pattern)) => Predicate::Like {
                    value,
                    pattern,
                    negated: *negated,
                },
                _ => Predicate::Expr(e.clone()),
            },
            other => Predicate::Expr(other.clone()),
        }
    }

    /// Whether `row` passes: true only when the condition is true (not false, not NULL).
    pub fn passes(&self, row: &[Value], ctx: &EvalContext<'_>) -> Result<bool> {
        Ok(self.test(row, ctx)? == Some(true))
    }

    /// The condition's truth for `row` (None: NULL, or not a boolean).
    pub fn test(&self, row: &[Value], ctx: &EvalContext<'_>) -> Result<Option<bool>> {
        Ok(match self {
            Predicate::Compare { op, left, right } => match left {
                Operand::Number(a, known) => {
                    let b = right.get(row, ctx)?;
                    compare_known(b, a, known).map(|o| holds(*op, o.reverse()))
                }
                _ => left.compare(right, row, ctx)?.map(|o| holds(*op, o)),
            },
            Predicate::Between {
                value,
                low,
                high,
                negated,
            } => {
                let ge = value.compare(low, row, ctx)?.map(|o| o != Ordering::Less);
                let le = value
                    .compare(high, row, ctx)?
                    .map(|o| o != Ordering::Greater);
                let both = match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                both.map(|b| b != *negated)
            }
            Predicate::IsNull { value, negated } => {
                Some(matches!(value.get(row, ctx)?, Value::Null) != *negated)
            }
            Predicate::Like {
                value,
                pattern,
                negated,
            } => {
                let (v, p) = (value.get(row, ctx)?, pattern.get(row, ctx)?);
                match (text_of(v), text_of(p)) {
                    (Some(v), Some(p)) => Some(like(&v, &p) != *negated),
                    _ => None,
                }
            }
            Predicate::And(parts) => {
                let mut all = Some(true);
                for p in parts {
                    match p.test(row, ctx)? {
                        Some(false) => return Ok(Some(false)),
                        Some(true) => {}
                        None => all = None,
                    }
                }
                all
            }
            Predicate::Or(parts) => {
                let mut any = Some(false);
                for p in parts {
                    match p.test(row, ctx)? {
                        Some(true) => return Ok(Some(true)),
                        Some(false) => {}
                        None => any = None,
                    }
                }
                any
            }
            Predicate::Not(inner) => inner.test(row, ctx)?.map(|b| !b),
            Predicate::Expr(e) => truth(&e.eval(row, ctx)?),
        })
    }
}

/// The parts of a chain of `op` (AND or OR), left to right.
fn flatten(e: &Expr, op: BinOp, out: &mut Vec<Predicate>) {
    match e {
        Expr::Binary(o, l, r) if *o == op => {
            flatten(l, op, out);
            flatten(r, op, out);
        }
        other => out.push(Predicate::compile(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(params: &[Value]) -> EvalContext<'_> {
        EvalContext {
            params,
            now: 0,
            subqueries: None,
        }
    }

    fn col(i: usize) -> Box<Expr> {
        Box::new(Expr::Column(i))
    }

    fn lit(v: Value) -> Box<Expr> {
        Box::new(Expr::Literal(v))
    }

    /// Every compiled condition answers what evaluating the expression answers, over
    /// rows of NULLs, integers, floats, texts and booleans, with parameters.
    #[test]
    fn predicates_answer_what_expressions_evaluate_to() {
        let values = [
            Value::Null,
            Value::Int(1),
            Value::Int(2),
            Value::Float(1.5),
            Value::Float(f64::NAN),
            Value::String("a".into()),
            Value::Bool(true),
            Value::Bool(false),
            Value::Numeric("1.50".into()),
            Value::Numeric("-7".into()),
            Value::Int(-7),
        ];
        // Literal numbers of every kind, compared with columns on either side.
        let operands: Vec<Box<Expr>> = vec![
            col(0),
            col(1),
            lit(Value::Int(1)),
            lit(Value::Null),
            lit(Value::Float(1.5)),
            lit(Value::Float(f64::NAN)),
            lit(Value::Numeric("1.5".into())),
            lit(Value::Numeric("-6.999".into())),
            Box::new(Expr::Param(0)),
        ];
        let mut exprs = Vec::new();
        let ops = [
            BinOp::Eq,
            BinOp::NotEq,
            BinOp::Lt,
            BinOp::LtEq,
            BinOp::Gt,
            BinOp::GtEq,
        ];
        for a in &operands {
            for b in &operands {
                for op in ops {
                    exprs.push(Expr::Binary(op, a.clone(), b.clone()));
                }
            }
            for (pattern, negated) in [("a%", false), ("_", true), ("1%", false)] {
                exprs.push(Expr::Like {
                    expr: a.clone(),
                    pattern: lit(Value::String(pattern.into())),
                    negated,
                    case_insensitive: false,
                });
            }
            exprs.push(Expr::Like {
                expr: a.clone(),
                pattern: col(1),
                negated: false,
                case_insensitive: false,
            });
            exprs.push(Expr::IsNull(a.clone(), false));
            exprs.push(Expr::IsNull(a.clone(), true));
            for negated in [false, true] {
                exprs.push(Expr::Between {
                    expr: a.clone(),
                    low: lit(Value::Int(1)),
                    high: col(1),
                    negated,
                });
                exprs.push(Expr::Between {
                    expr: a.clone(),
                    low: lit(Value::Numeric("-7.5".into())),
                    high: lit(Value::Float(1.5)),
                    negated,
                });
            }
        }
        let simple = exprs.clone();
        // Chains of AND and OR, NOT, and booleans as conditions of their own.
        for (i, a) in simple.iter().enumerate() {
            let b = simple
                .get((i * 7 + 3) % simple.len())
                .cloned()
                .unwrap_or_else(|| a.clone());
            let c = simple
                .get((i * 13 + 5) % simple.len())
                .cloned()
                .unwrap_or_else(|| a.clone());
            let and = Expr::Binary(
                BinOp::And,
                Box::new(Expr::Binary(
                    BinOp::And,
                    Box::new(a.clone()),
                    Box::new(b.clone()),
                )),
                Box::new(c.clone()),
            );
            let or = Expr::Binary(
                BinOp::Or,
                Box::new(a.clone()),
                Box::new(Expr::Binary(BinOp::Or, Box::new(b), Box::new(c))),
            );
            exprs.push(Expr::Unary(UnaryOp::Not, Box::new(and.clone())));
            exprs.push(and);
            exprs.push(or);
        }
        exprs.push(Expr::Column(0));
        exprs.push(Expr::Binary(BinOp::And, col(0), col(1)));
        exprs.push(Expr::Binary(BinOp::Or, col(0), col(1)));
        let mut checked = 0;
        for x in &values {
            for y in &values {
                for p in &values {
                    let row = [x.clone(), y.clone()];
                    let params = [p.clone()];
                    let ctx = ctx(&params);
                    for e in &exprs {
                        let want = e.eval(&row, &ctx).map(|v| truth(&v));
                        let got = Predicate::compile(e).test(&row, &ctx);
                        assert_eq!(got.ok(), want.ok(), "{e:?} over {row:?} with {params:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    #[test]
    fn a_missing_parameter_is_the_error_evaluation_gives() {
        let e = Expr::Binary(BinOp::Lt, col(0), Box::new(Expr::Param(3)));
        let row = [Value::Int(1)];
        let err = Predicate::compile(&e).test(&row, &ctx(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            e.eval(&row, &ctx(&[])).unwrap_err().to_string()
        );
        // Short-circuit: a false part first, and the missing parameter is not read.
        let guarded = Expr::Binary(BinOp::And, lit(Value::Bool(false)), Box::new(e));
        assert_eq!(
            Predicate::compile(&guarded).test(&row, &ctx(&[])).ok(),
            Some(Some(false))
        );
    }
}
