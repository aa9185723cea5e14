//! Binding window function calls (`f(...) OVER (PARTITION BY ... ORDER BY ... frame)`)
//! into [`Expr::Window`], the clauses where they are not allowed, and lowering the calls
//! of a SELECT list and ORDER BY into a [`Node::Window`] whose output columns replace them.

use sqlparser::ast;
use tissdb_dialect::sqlparser;

use super::{Binder, GROUPING_ERROR, OrderTarget, Scope, is_agg_name, sort_direction, unsupported};
use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::Column;
use crate::query::exec::aggregate_result_type;
use crate::query::expr::{
    AggFunc, Expr, FrameBound, UNDEFINED_FUNCTION, WINDOWING_ERROR, WindowCall, WindowFrame,
    WindowFunc,
};
use crate::query::functions::{ScalarFunc, common_type};
use crate::query::plan::{Node, SortKey};
use crate::query::types::{self, SqlType};

const WRONG_OBJECT_TYPE: SqlState = SqlState("42809");

/// Whether `e` holds a window function call.
pub(super) fn contains_window(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| found |= matches!(x, Expr::Window(_)));
    found
}

/// 42P20 when `e` (bound in `clause`) holds a window function call.
pub(super) fn forbid_in(e: &Expr, clause: &str) -> Result<()> {
    if contains_window(e) {
        return Err(Error::invalid(
            WINDOWING_ERROR,
            format!("window functions are not allowed in {clause}"),
        ));
    }
    Ok(())
}

/// The error for an aggregate whose argument holds a window function call.
pub(super) fn in_aggregate() -> Error {
    Error::invalid(
        GROUPING_ERROR,
        "aggregate function calls cannot contain window function calls",
    )
}

/// 42809 for a window-only function called without OVER.
pub(super) fn check_needs_over(name: &str) -> Result<()> {
    match WindowFunc::by_name(name) {
        Some(_) => Err(Error::invalid(
            WRONG_OBJECT_TYPE,
            format!("window function {name} requires an OVER clause"),
        )),
        None => Ok(()),
    }
}

fn no_such_function(name: &str, types: &[SqlType]) -> Error {
    let list: Vec<String> = types.iter().map(|t| t.name()).collect();
    Error::invalid(
        UNDEFINED_FUNCTION,
        format!("function {name}({}) does not exist", list.join(", ")),
    )
}

/// Moves the window calls of the select list (`exprs`) and ORDER BY into a Window node
/// over `node`, each call replaced by its column of the node's output (equal calls
/// share one). `node` is returned as it is when there are none.
pub(super) fn lower_windows(
    node: Node,
    exprs: &mut [Expr],
    order: &mut [(OrderTarget, bool, bool)],
) -> Result<Node> {
    let width = node.columns().len();
    let mut calls: Vec<WindowCall> = Vec::new();
    let mut lower = |e: &mut Expr| -> Result<()> {
        let taken = std::mem::replace(e, Expr::Literal(Value::Null));
        *e = taken.transform(&mut |x| match x {
            Expr::Window(call) => {
                let i = match calls.iter().position(|c| *c == *call) {
                    Some(i) => i,
                    None => {
                        calls.push(*call);
                        calls.len() - 1
                    }
                };
                Ok(Expr::Column(width + i))
            }
            other => Ok(other),
        })?;
        Ok(())
    };
    for e in exprs.iter_mut() {
        lower(e)?;
    }
    for (target, _, _) in order.iter_mut() {
        if let OrderTarget::Expr(e) = target {
            lower(e)?;
        }
    }
    if calls.is_empty() {
        return Ok(node);
    }
    let mut columns = node.columns();
    columns.extend(
        calls
            .iter()
            .map(|c| Column::new(c.func.name(), c.ty.clone())),
    );
    Ok(Node::Window {
        input: Box::new(node),
        funcs: calls,
        columns,
    })
}

impl Binder<'_> {
    /// Binds `name(args) OVER (...)` in `scope`.
    pub(super) fn window_call(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        distinct: bool,
        star: bool,
        over: &ast::WindowType,
        scope: &Scope,
    ) -> Result<(Expr, SqlType)> {
        let spec = match over {
            ast::WindowType::WindowSpec(spec) if spec.window_name.is_none() => spec,
            _ => return Err(unsupported("named windows (WINDOW clauses)")),
        };
        let mut bound = Vec::with_capacity(args.len());
        let mut tys = Vec::with_capacity(args.len());
        for a in args {
            let (e, t) = self.expr(a, scope)?;
            self.check_window_operand(&e)?;
            bound.push(e);
            tys.push(t);
        }
        let func = match (WindowFunc::by_name(name), is_agg_name(name)) {
            (Some(f), _) => f,
            (None, Some(AggFunc::Count)) if star => WindowFunc::Agg(AggFunc::CountStar),
            (None, Some(a)) => WindowFunc::Agg(a),
            (None, None) if ScalarFunc::by_name(name).is_some() => {
                return Err(Error::invalid(
                    WRONG_OBJECT_TYPE,
                    format!(
                        "OVER specified, but {name} is not a window function nor an aggregate function"
                    ),
                ));
            }
            (None, None) => return Err(no_such_function(name, &tys)),
        };
        if star && func != WindowFunc::Agg(AggFunc::CountStar) {
            return Err(match func {
                WindowFunc::Agg(_) => {
                    Error::invalid(SqlState::SYNTAX_ERROR, format!("{name}(*) is not valid"))
                }
                _ => Error::invalid(
                    WRONG_OBJECT_TYPE,
                    format!("{name}(*) specified, but {name} is not an aggregate function"),
                ),
            });
        }
        if distinct {
            return Err(Error::invalid(
                SqlState::FEATURE_NOT_SUPPORTED,
                "DISTINCT is not implemented for window functions",
            ));
        }
        let (bound, arg_type, ty) = self.window_args(name, func, bound, tys)?;
        let mut partition_by = Vec::with_capacity(spec.partition_by.len());
        for p in &spec.partition_by {
            let (e, _) = self.expr(p, scope)?;
            self.check_window_operand(&e)?;
            partition_by.push(e);
        }
        let mut order_by = Vec::with_capacity(spec.order_by.len());
        for o in &spec.order_by {
            if o.with_fill.is_some() {
                return Err(unsupported("WITH FILL"));
            }
            let (e, _) = self.expr(&o.expr, scope)?;
            self.check_window_operand(&e)?;
            let (desc, nulls_first) = sort_direction(o);
            order_by.push(SortKey {
                expr: e,
                desc,
                nulls_first,
            });
        }
        let frame = match &spec.window_frame {
            None => WindowFrame::default(),
            Some(f) => self.window_frame(f, scope)?,
        };
        Ok((
            Expr::Window(Box::new(WindowCall {
                func,
                args: bound,
                partition_by,
                order_by,
                frame,
                arg_type,
                ty: ty.clone(),
            })),
            ty,
        ))
    }

    /// 42P20 for a window call nested in another's arguments or window.
    fn check_window_operand(&self, e: &Expr) -> Result<()> {
        if contains_window(e) {
            return Err(Error::invalid(
                WINDOWING_ERROR,
                "window function calls cannot be nested",
            ));
        }
        Ok(())
    }

    /// Checks a window function's arguments against its signature: the arguments (cast
    /// where needed), the first one's type, and the result type.
    fn window_args(
        &mut self,
        name: &str,
        func: WindowFunc,
        mut args: Vec<Expr>,
        tys: Vec<SqlType>,
    ) -> Result<(Vec<Expr>, SqlType, SqlType)> {
        let wrong = || no_such_function(name, &tys);
        let arity = |range: std::ops::RangeInclusive<usize>| {
            if range.contains(&args.len()) {
                Ok(())
            } else {
                Err(wrong())
            }
        };
        match func {
            WindowFunc::RowNumber
            | WindowFunc::Rank
            | WindowFunc::DenseRank
            | WindowFunc::Agg(AggFunc::CountStar) => {
                arity(0..=0)?;
                Ok((args, SqlType::Unknown, SqlType::Int8))
            }
            WindowFunc::PercentRank | WindowFunc::CumeDist => {
                arity(0..=0)?;
                Ok((args, SqlType::Unknown, SqlType::Float8))
            }
            WindowFunc::Ntile => {
                arity(1..=1)?;
                self.integer_arg(&mut args, &tys, 0).map_err(|_| wrong())?;
                Ok((args, SqlType::Unknown, SqlType::Int4))
            }
            WindowFunc::Agg(f) => {
                arity(1..=1)?;
                let t = tys[0].clone();
                if matches!(f, AggFunc::Sum | AggFunc::Avg)
                    && !(t.is_numeric() || t.is_json() || t == SqlType::Unknown)
                {
                    return Err(wrong());
                }
                let ty = aggregate_result_type(f, &t);
                Ok((args, t, ty))
            }
            WindowFunc::FirstValue | WindowFunc::LastValue | WindowFunc::NthValue => {
                if func == WindowFunc::NthValue {
                    arity(2..=2)?;
                    self.integer_arg(&mut args, &tys, 1).map_err(|_| wrong())?;
                } else {
                    arity(1..=1)?;
                }
                let ty = common_type(&tys[..1])?;
                self.coerce_arg(&mut args, &tys, 0, &ty)?;
                Ok((args, tys[0].clone(), ty))
            }
            WindowFunc::Lag | WindowFunc::Lead => {
                arity(1..=3)?;
                if args.len() > 1 {
                    self.integer_arg(&mut args, &tys, 1).map_err(|_| wrong())?;
                }
                // The value and the default share a type (an untyped one is text).
                let known: Vec<SqlType> = [tys.first(), tys.get(2)]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                let ty = common_type(&known)?;
                for i in [0, 2] {
                    self.coerce_arg(&mut args, &tys, i, &ty)?;
                }
                Ok((args, tys[0].clone(), ty))
            }
        }
    }

    /// Checks that argument `i` is an `integer` (an untyped one becomes one).
    fn integer_arg(&mut self, args: &mut [Expr], tys: &[SqlType], i: usize) -> Result<()> {
        match &tys[i] {
            SqlType::Int2 | SqlType::Int4 => Ok(()),
            SqlType::Unknown => {
                let e = std::mem::replace(&mut args[i], Expr::Literal(Value::Null));
                args[i] = self.coerce_to(e, SqlType::Unknown, &SqlType::Int4)?.0;
                Ok(())
            }
            other => Err(no_such_function("", std::slice::from_ref(other))),
        }
    }

    /// Makes argument `i` (if any) of type `ty`: an untyped one takes it, another is cast.
    fn coerce_arg(
        &mut self,
        args: &mut [Expr],
        tys: &[SqlType],
        i: usize,
        ty: &SqlType,
    ) -> Result<()> {
        let (Some(e), Some(t)) = (args.get_mut(i), tys.get(i)) else {
            return Ok(());
        };
        let taken = std::mem::replace(e, Expr::Literal(Value::Null));
        let (x, xt) = self.coerce_to(taken, t.clone(), ty)?;
        *e = if xt != *ty && xt != SqlType::Unknown && !ty.is_json() {
            Expr::Cast(Box::new(x), ty.clone())
        } else {
            x
        };
        Ok(())
    }

    /// Binds an explicit frame: RANGE or ROWS between UNBOUNDED PRECEDING, CURRENT ROW or
    /// UNBOUNDED FOLLOWING, and for ROWS also `n PRECEDING` / `n FOLLOWING`.
    fn window_frame(&mut self, f: &ast::WindowFrame, scope: &Scope) -> Result<WindowFrame> {
        let rows = match f.units {
            ast::WindowFrameUnits::Rows => true,
            ast::WindowFrameUnits::Range => false,
            ast::WindowFrameUnits::Groups => return Err(unsupported("frame mode GROUPS")),
        };
        let start = self.frame_bound(&f.start_bound, rows, scope)?;
        let end = match &f.end_bound {
            Some(b) => self.frame_bound(b, rows, scope)?,
            None => FrameBound::CurrentRow,
        };
        let invalid = |m: &str| Err(Error::invalid(WINDOWING_ERROR, m.to_string()));
        match (&start, &end) {
            (FrameBound::UnboundedFollowing, _) => {
                invalid("frame start cannot be UNBOUNDED FOLLOWING")
            }
            (_, FrameBound::UnboundedPreceding) => {
                invalid("frame end cannot be UNBOUNDED PRECEDING")
            }
            (FrameBound::CurrentRow, FrameBound::Preceding(_)) => {
                invalid("frame starting from current row cannot have preceding rows")
            }
            (FrameBound::Following(_), FrameBound::CurrentRow) if f.end_bound.is_none() => {
                invalid("frame starting from following row cannot end with current row")
            }
            (FrameBound::Following(_), FrameBound::Preceding(_) | FrameBound::CurrentRow) => {
                invalid("frame starting from following row cannot have preceding rows")
            }
            _ => Ok(WindowFrame { rows, start, end }),
        }
    }

    fn frame_bound(
        &mut self,
        b: &ast::WindowFrameBound,
        rows: bool,
        scope: &Scope,
    ) -> Result<FrameBound> {
        let (offset, preceding) = match b {
            ast::WindowFrameBound::CurrentRow => return Ok(FrameBound::CurrentRow),
            ast::WindowFrameBound::Preceding(None) => return Ok(FrameBound::UnboundedPreceding),
            ast::WindowFrameBound::Following(None) => return Ok(FrameBound::UnboundedFollowing),
            ast::WindowFrameBound::Preceding(Some(e)) => (e, true),
            ast::WindowFrameBound::Following(Some(e)) => (e, false),
        };
        if !rows {
            return Err(unsupported("RANGE with offset PRECEDING/FOLLOWING"));
        }
        let (e, t) = self.expr(offset, scope)?;
        let mut reads_row = false;
        e.walk(&mut |x| reads_row |= matches!(x, Expr::Column(_) | Expr::Agg(_) | Expr::Window(_)));
        if reads_row {
            return Err(Error::invalid(
                super::INVALID_COLUMN_REFERENCE,
                "argument of ROWS must not contain variables",
            ));
        }
        let e = match &t {
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => e,
            SqlType::Unknown => self.coerce_to(e, t, &SqlType::Int8)?.0,
            t if t.is_numeric() => Expr::Cast(Box::new(e), SqlType::Int8),
            other => {
                return Err(Error::invalid(
                    types::DATATYPE_MISMATCH,
                    format!(
                        "argument of ROWS must be type bigint, not type {}",
                        other.name()
                    ),
                ));
            }
        };
        Ok(if preceding {
            FrameBound::Preceding(e)
        } else {
            FrameBound::Following(e)
        })
    }
}
