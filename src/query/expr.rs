//! Bound expressions and their evaluation over a row: SQL's three-valued logic, numeric
//! promotion (integer → numeric → float), comparisons, `LIKE`, casts, field paths into
//! documents, and jsonb `->` / `->>`.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::functions::ScalarFunc;
use crate::query::types::{self, SqlType};

pub const DIVISION_BY_ZERO: SqlState = SqlState("22012");
pub const UNDEFINED_FUNCTION: SqlState = SqlState("42883");
pub const WINDOWING_ERROR: SqlState = SqlState("42P20");

pub use crate::doc::path::{PathStep, follow_path, follow_path_ref};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
    /// jsonb `->`: the field or element, as a document value.
    Arrow,
    /// jsonb `->>`: the field or element, as text.
    LongArrow,
    IsDistinctFrom,
    IsNotDistinctFrom,
    /// POSIX regular expression match `~` (`!~`, `~*`, `!~*`).
    RegexMatch,
    RegexNotMatch,
    RegexIMatch,
    RegexNotIMatch,
    /// Integer bitwise `&` and `|`.
    BitAnd,
    BitOr,
}

impl BinOp {
    pub fn symbol(&self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::Concat => "||",
            BinOp::Arrow => "->",
            BinOp::LongArrow => "->>",
            BinOp::IsDistinctFrom => "IS DISTINCT FROM",
            BinOp::IsNotDistinctFrom => "IS NOT DISTINCT FROM",
            BinOp::RegexMatch => "~",
            BinOp::RegexNotMatch => "!~",
            BinOp::RegexIMatch => "~*",
            BinOp::RegexNotIMatch => "!~*",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
        }
    }

    pub fn is_comparison(&self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

/// Aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    ArrayAgg,
    StringAgg,
    BoolAnd,
    BoolOr,
}

impl AggFunc {
    pub fn name(&self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::ArrayAgg => "array_agg",
            AggFunc::StringAgg => "string_agg",
            AggFunc::BoolAnd => "bool_and",
            AggFunc::BoolOr => "bool_or",
        }
    }
}

/// An aggregate call as written; the binder replaces it by a column of the aggregate's
/// output.
#[derive(Clone, Debug, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Option<Box<Expr>>,
    pub distinct: bool,
    /// The argument's type.
    pub arg_type: SqlType,
    /// `string_agg`'s separator.
    pub separator: Option<String>,
    /// For `array_agg`/`string_agg`: the argument is packed as an array `[value,
    /// sort keys...]` (so NULL values are kept and ORDER BY inside the call works);
    /// one flag per sort key, true for DESC.
    pub packed_order: Option<Vec<bool>>,
}

/// Functions computed over the rows of a window (`OVER (...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowFunc {
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    Ntile,
    Lag,
    Lead,
    FirstValue,
    LastValue,
    NthValue,
    /// An aggregate over the call's frame.
    Agg(AggFunc),
}

impl WindowFunc {
    /// The window-only function called `name`.
    pub fn by_name(name: &str) -> Option<WindowFunc> {
        Some(match name {
            "row_number" => WindowFunc::RowNumber,
            "rank" => WindowFunc::Rank,
            "dense_rank" => WindowFunc::DenseRank,
            "percent_rank" => WindowFunc::PercentRank,
            "cume_dist" => WindowFunc::CumeDist,
            "ntile" => WindowFunc::Ntile,
            "lag" => WindowFunc::Lag,
            "lead" => WindowFunc::Lead,
            "first_value" => WindowFunc::FirstValue,
            "last_value" => WindowFunc::LastValue,
            "nth_value" => WindowFunc::NthValue,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            WindowFunc::RowNumber => "row_number",
            WindowFunc::Rank => "rank",
            WindowFunc::DenseRank => "dense_rank",
            WindowFunc::PercentRank => "percent_rank",
            WindowFunc::CumeDist => "cume_dist",
            WindowFunc::Ntile => "ntile",
            WindowFunc::Lag => "lag",
            WindowFunc::Lead => "lead",
            WindowFunc::FirstValue => "first_value",
            WindowFunc::LastValue => "last_value",
            WindowFunc::NthValue => "nth_value",
            WindowFunc::Agg(a) => a.name(),
        }
    }
}

/// One end of a window frame. Offsets (ROWS only) read no row.
#[derive(Clone, Debug, PartialEq)]
pub enum FrameBound {
    UnboundedPreceding,
    Preceding(Expr),
    CurrentRow,
    Following(Expr),
    UnboundedFollowing,
}

/// The rows of its partition an aggregate (or `first_value`, `last_value`,
/// `nth_value`) used as a window function reads, relative to the current row.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowFrame {
    /// ROWS (offsets count rows) rather than RANGE (the current row's peers, the rows
    /// with equal ORDER BY values, count as the current row).
    pub rows: bool,
    pub start: FrameBound,
    pub end: FrameBound,
}

impl Default for WindowFrame {
    /// `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`: without ORDER BY, every row
    /// of the partition is a peer of the current row, so the whole partition.
    fn default() -> Self {
        WindowFrame {
            rows: false,
            start: FrameBound::UnboundedPreceding,
            end: FrameBound::CurrentRow,
        }
    }
}

/// A window function call as written; the binder replaces it by a column of a
/// [`crate::query::plan::Node::Window`]'s output.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowCall {
    pub func: WindowFunc,
    /// The arguments (none for `count(*)`).
    pub args: Vec<Expr>,
    pub partition_by: Vec<Expr>,
    pub order_by: Vec<crate::query::plan::SortKey>,
    pub frame: WindowFrame,
    /// The first argument's type (aggregates pick their result kind by it).
    pub arg_type: SqlType,
    /// The result type.
    pub ty: SqlType,
}

impl WindowCall {
    /// Whether two calls read the same window (partitions and order).
    pub fn same_window(&self, other: &WindowCall) -> bool {
        self.partition_by == other.partition_by && self.order_by == other.order_by
    }

    /// Every expression of the call: arguments, partition and order keys, frame offsets.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        fn offset(b: &FrameBound) -> Option<&Expr> {
            match b {
                FrameBound::Preceding(e) | FrameBound::Following(e) => Some(e),
                _ => None,
            }
        }
        self.args
            .iter()
            .chain(&self.partition_by)
            .chain(self.order_by.iter().map(|k| &k.expr))
            .chain(offset(&self.frame.start))
            .chain(offset(&self.frame.end))
    }

    /// The call with every expression replaced by `f` of it.
    pub fn map_exprs(mut self, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<WindowCall> {
        let all = |v: Vec<Expr>, f: &mut dyn FnMut(Expr) -> Result<Expr>| -> Result<Vec<Expr>> {
            v.into_iter().map(&mut *f).collect()
        };
        let bound =
            |b: FrameBound, f: &mut dyn FnMut(Expr) -> Result<Expr>| -> Result<FrameBound> {
                Ok(match b {
                    FrameBound::Preceding(e) => FrameBound::Preceding(f(e)?),
                    FrameBound::Following(e) => FrameBound::Following(f(e)?),
                    other => other,
                })
            };
        self.args = all(self.args, f)?;
        self.partition_by = all(self.partition_by, f)?;
        self.order_by = self
            .order_by
            .into_iter()
            .map(|k| {
                Ok(crate::query::plan::SortKey {
                    expr: f(k.expr)?,
                    ..k
                })
            })
            .collect::<Result<_>>()?;
        self.frame.start = bound(self.frame.start, f)?;
        self.frame.end = bound(self.frame.end, f)?;
        Ok(self)
    }
}

/// A bound expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// A column of the input row.
    Column(usize),
    /// A statement parameter (`$1` is 0).
    Param(usize),
    /// A path into a document value.
    Path(Box<Expr>, Vec<PathStep>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `IS [NOT] TRUE/FALSE`: (expr, value, negated).
    IsBool(Box<Expr>, bool, bool),
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast(Box<Expr>, SqlType),
    Func(ScalarFunc, Vec<Expr>),
    /// An aggregate call (only before the binder moves it into an Aggregate node).
    Agg(AggCall),
    /// In a subquery, column `index` of the row of the query `depth` levels out (1: the
    /// query the subquery is in); replaced by the value before the subquery runs.
    Outer {
        depth: usize,
        index: usize,
    },
    /// A window function call (only before the binder moves it into a Window node).
    Window(Box<WindowCall>),
    /// A subquery reading no column of the query around it; the statement runs it once
    /// before it plans the rest and puts its result in its place.
    Subquery(SubqueryKind, Box<crate::query::plan::Node>),
    /// A catalog lookup of the argument's value (`'t'::regclass`, `pg_get_indexdef`).
    Lookup(
        std::sync::Arc<crate::query::system::lookup::Lookup>,
        Box<Expr>,
    ),
    /// `left op ANY (array)` (`all`: `op ALL`): the comparison against each element.
    Quantified {
        op: BinOp,
        all: bool,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `expr [NOT] IN (subquery)`: becomes an `InList` of the subquery's values.
    InSubquery {
        expr: Box<Expr>,
        plan: Box<crate::query::plan::Node>,
        negated: bool,
    },
}

/// What a subquery expression gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubqueryKind {
    /// The single value of its single row (NULL without rows; 21000 with several).
    Scalar,
    /// Whether it has rows.
    Exists,
    /// `ARRAY(subquery)`: its first column's values as an array.
    Array,
}

/// What evaluation may read besides the row.
pub struct EvalContext<'a> {
    pub params: &'a [Value],
    /// The statement's start time (`now()`), microseconds since the epoch.
    pub now: i64,
    /// Runs correlated subqueries (absent where none can occur).
    pub subqueries: Option<&'a dyn SubqueryRunner>,
}

/// Runs a subquery that reads the row around it: `Expr::Outer` references in `plan`
/// to the enclosing query are replaced by values of `row` before it runs.
pub trait SubqueryRunner {
    /// The first `limit` rows of `plan` for the outer row `row`.
    fn run(
        &self,
        plan: &crate::query::plan::Node,
        row: &[Value],
        limit: usize,
    ) -> Result<Vec<Vec<Value>>>;
}

fn subquery_here() -> Error {
    Error::invalid(
        SqlState::FEATURE_NOT_SUPPORTED,
        "a subquery is not supported in this part of a statement",
    )
}

/// SQL truth: Some(bool) or None for unknown (NULL).
/// Only booleans are true or false; a document field holding anything else (possible in
/// a jsonb column of mixed types) is unknown, so it never passes a WHERE.
pub fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn bool_value(b: Option<bool>) -> Value {
    b.map_or(Value::Null, Value::Bool)
}

impl Expr {
    pub fn literal(v: Value) -> Expr {
        Expr::Literal(v)
    }

    /// Evaluates the expression over `row`.
    /// [`Expr::eval`] borrowing the value when the expression is a literal or a column of
    /// `row` (no copy of a text or a document per row).
    #[inline]
    pub fn eval_cow<'r>(
        &'r self,
        row: &'r [Value],
        ctx: &EvalContext<'_>,
    ) -> Result<std::borrow::Cow<'r, Value>> {
        // A column or a literal without a call (this is inlined where it is used).
        static NULL: Value = Value::Null;
        match self {
            Expr::Literal(v) => Ok(std::borrow::Cow::Borrowed(v)),
            Expr::Column(i) => Ok(std::borrow::Cow::Borrowed(row.get(*i).unwrap_or(&NULL))),
            other => other.eval_cow_other(row, ctx),
        }
    }

    /// [`Expr::eval_cow`] of the expressions other than columns and literals.
    fn eval_cow_other<'r>(
        &'r self,
        row: &'r [Value],
        ctx: &EvalContext<'_>,
    ) -> Result<std::borrow::Cow<'r, Value>> {
        match self {
            // A path into a column borrows the value it reaches, not the whole column.
            Expr::Path(base, steps) => Ok(match base.eval_cow(row, ctx)? {
                std::borrow::Cow::Borrowed(v) => match follow_path_ref(v, steps) {
                    Some(v) => std::borrow::Cow::Borrowed(v),
                    None => std::borrow::Cow::Owned(Value::Null),
                },
                std::borrow::Cow::Owned(v) => std::borrow::Cow::Owned(follow_path(v, steps)),
            }),
            other => other.eval(row, ctx).map(std::borrow::Cow::Owned),
        }
    }

    pub fn eval(&self, row: &[Value], ctx: &EvalContext<'_>) -> Result<Value> {
        // The commonest expressions per row, kept out of the large frame of the rest.
        match self {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Column(i) => Ok(row.get(*i).cloned().unwrap_or(Value::Null)),
            // Arithmetic reads its operands where they are.
            Expr::Binary(
                op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod),
                l,
                r,
            ) => {
                // Columns and literals are read through a plain reference: a
                // `Result<Cow>` built for them, its tag stored as a byte and then
                // loaded with the pointer as one word, stalls the load (E17: a third
                // of this function's time).
                let (held_a, held_b);
                let a = match l.in_place(row) {
                    Some(v) => v,
                    None => {
                        held_a = l.eval_cow(row, ctx)?;
                        &*held_a
                    }
                };
                let b = match r.in_place(row) {
                    Some(v) => v,
                    None => {
                        held_b = r.eval_cow(row, ctx)?;
                        &*held_b
                    }
                };
                if matches!(a, Value::Null) || matches!(b, Value::Null) {
                    return Ok(Value::Null);
                }
                arithmetic(*op, a, b)
            }
            _ => self.eval_other(row, ctx),
        }
    }

    /// The value of a column or a literal, where it is; None for any other expression.
    #[inline(always)]
    fn in_place<'r>(&'r self, row: &'r [Value]) -> Option<&'r Value> {
        static NULL: Value = Value::Null;
        match self {
            Expr::Literal(v) => Some(v),
            Expr::Column(i) => Some(row.get(*i).unwrap_or(&NULL)),
            _ => None,
        }
    }

    /// [`Expr::eval`] of the expressions it does not evaluate itself.
    #[inline(never)]
    fn eval_other(&self, row: &[Value], ctx: &EvalContext<'_>) -> Result<Value> {
        match self {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Column(i) => Ok(row.get(*i).cloned().unwrap_or(Value::Null)),
            Expr::Param(i) => ctx.params.get(*i).cloned().ok_or_else(|| {
                Error::invalid(
                    SqlState("08P01"),
                    format!("no value bound for parameter ${}", i + 1),
                )
            }),
            Expr::Path(..) => self.eval_cow(row, ctx).map(std::borrow::Cow::into_owned),
            Expr::Unary(UnaryOp::Not, e) => Ok(bool_value(truth(&e.eval(row, ctx)?).map(|b| !b))),
            Expr::Unary(UnaryOp::Neg, e) => negate(e.eval(row, ctx)?),
            Expr::Binary(BinOp::And, l, r) => {
                let lv = truth(&l.eval(row, ctx)?);
                if lv == Some(false) {
                    return Ok(Value::Bool(false));
                }
                let rv = truth(&r.eval(row, ctx)?);
                Ok(bool_value(match (lv, rv) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }))
            }
            Expr::Binary(BinOp::Or, l, r) => {
                let lv = truth(&l.eval(row, ctx)?);
                if lv == Some(true) {
                    return Ok(Value::Bool(true));
                }
                let rv = truth(&r.eval(row, ctx)?);
                Ok(bool_value(match (lv, rv) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                }))
            }
            // A comparison reads its operands where they are: a column or a literal is
            // not copied to be compared.
            Expr::Binary(
                op @ (BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq),
                l,
                r,
            ) => {
                let (a, b) = (l.eval_cow(row, ctx)?, r.eval_cow(row, ctx)?);
                Ok(compare_as(*op, &a, &b))
            }
            Expr::Binary(op, l, r) => binary(*op, l.eval(row, ctx)?, r.eval(row, ctx)?),
            Expr::IsNull(e, negated) => {
                let null = matches!(e.eval(row, ctx)?, Value::Null);
                Ok(Value::Bool(null != *negated))
            }
            Expr::IsBool(e, value, negated) => {
                let t = truth(&e.eval(row, ctx)?);
                Ok(Value::Bool((t == Some(*value)) != *negated))
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let v = expr.eval(row, ctx)?;
                if matches!(v, Value::Null) {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let iv = item.eval(row, ctx)?;
                    match compare(&v, &iv) {
                        Some(Ordering::Equal) => return Ok(Value::Bool(!negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                Ok(if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                })
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let v = expr.eval(row, ctx)?;
                let ge = cmp_truth(compare(&v, &low.eval(row, ctx)?), |o| o != Ordering::Less);
                let le = cmp_truth(compare(&v, &high.eval(row, ctx)?), |o| {
                    o != Ordering::Greater
                });
                let both = match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                Ok(bool_value(both.map(|b| b != *negated)))
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let (v, p) = (expr.eval_cow(row, ctx)?, pattern.eval_cow(row, ctx)?);
                let (Some(v), Some(p)) = (text_of(&v), text_of(&p)) else {
                    return Ok(Value::Null);
                };
                let m = if *case_insensitive {
                    like(&v.to_lowercase(), &p.to_lowercase())
                } else {
                    like(&v, &p)
                };
                Ok(Value::Bool(m != *negated))
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let op = match operand {
                    Some(o) => Some(o.eval(row, ctx)?),
                    None => None,
                };
                for (when, then) in whens {
                    let w = when.eval(row, ctx)?;
                    let hit = match &op {
                        Some(o) => compare(o, &w) == Some(Ordering::Equal),
                        None => truth(&w) == Some(true),
                    };
                    if hit {
                        return then.eval(row, ctx);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row, ctx),
                    None => Ok(Value::Null),
                }
            }
            Expr::Cast(e, ty) => types::cast(e.eval(row, ctx)?, ty),
            Expr::Func(f, args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(a.eval(row, ctx)?);
                }
                f.call(values, ctx)
            }
            Expr::Subquery(kind, plan) => {
                let runner = ctx.subqueries.ok_or_else(subquery_here)?;
                let limit = match kind {
                    SubqueryKind::Scalar => 2,
                    SubqueryKind::Exists => 1,
                    SubqueryKind::Array => usize::MAX,
                };
                let rows = runner.run(plan, row, limit)?;
                match kind {
                    SubqueryKind::Exists => Ok(Value::Bool(!rows.is_empty())),
                    SubqueryKind::Array => Ok(Value::Array(
                        rows.into_iter()
                            .map(|r| r.into_iter().next().unwrap_or(Value::Null))
                            .collect(),
                    )),
                    SubqueryKind::Scalar => {
                        if rows.len() > 1 {
                            return Err(Error::invalid(
                                SqlState("21000"),
                                "more than one row returned by a subquery used as an expression",
                            ));
                        }
                        Ok(rows
                            .into_iter()
                            .next()
                            .and_then(|r| r.into_iter().next())
                            .unwrap_or(Value::Null))
                    }
                }
            }
            Expr::InSubquery {
                expr,
                plan,
                negated,
            } => {
                let runner = ctx.subqueries.ok_or_else(subquery_here)?;
                let rows = runner.run(plan, row, usize::MAX)?;
                let list = rows
                    .into_iter()
                    .map(|r| Expr::Literal(r.into_iter().next().unwrap_or(Value::Null)))
                    .collect();
                Expr::InList {
                    expr: expr.clone(),
                    list,
                    negated: *negated,
                }
                .eval(row, ctx)
            }
            Expr::Lookup(table, arg) => table.get(&arg.eval(row, ctx)?),
            Expr::Quantified {
                op,
                all,
                left,
                right,
            } => {
                let l = left.eval(row, ctx)?;
                let items = match right.eval(row, ctx)? {
                    Value::Null => return Ok(Value::Null),
                    Value::Array(items) => items,
                    other => vec![other],
                };
                // ANY: true if one is true, else NULL if one is NULL, else false.
                // ALL: false if one is false, else NULL if one is NULL, else true.
                let mut saw_null = false;
                for item in items {
                    match truth(&binary(*op, l.clone(), item)?) {
                        Some(b) if b != *all => return Ok(Value::Bool(b)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                Ok(if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*all)
                })
            }
            Expr::Outer { .. } => Err(Error::Internal(
                "an outer reference was not bound before its subquery ran".into(),
            )),
            Expr::Agg(_) => Err(Error::Internal(
                "aggregate evaluated outside an aggregation".into(),
            )),
            Expr::Window(_) => Err(Error::invalid(
                WINDOWING_ERROR,
                "window functions are not allowed here",
            )),
        }
    }

    /// Calls `f` on this expression and every subexpression.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Literal(_)
            | Expr::Column(_)
            | Expr::Param(_)
            | Expr::Subquery(..)
            | Expr::Outer { .. } => {}
            Expr::InSubquery { expr, .. } => expr.walk(f),
            Expr::Quantified { left, right, .. } => {
                left.walk(f);
                right.walk(f);
            }
            Expr::Lookup(_, e)
            | Expr::Path(e, _)
            | Expr::Unary(_, e)
            | Expr::IsNull(e, _)
            | Expr::IsBool(e, _, _)
            | Expr::Cast(e, _) => e.walk(f),
            Expr::Binary(_, l, r) => {
                l.walk(f);
                r.walk(f);
            }
            Expr::InList { expr, list, .. } => {
                expr.walk(f);
                list.iter().for_each(|e| e.walk(f));
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                expr.walk(f);
                low.walk(f);
                high.walk(f);
            }
            Expr::Like { expr, pattern, .. } => {
                expr.walk(f);
                pattern.walk(f);
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Func(_, args) => args.iter().for_each(|e| e.walk(f)),
            Expr::Agg(call) => {
                if let Some(a) = &call.arg {
                    a.walk(f);
                }
            }
            Expr::Window(call) => call.exprs().for_each(|e| e.walk(f)),
        }
    }

    /// Rewrites the tree bottom-up with `f` (which may replace any node).
    pub fn transform(self, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
        let node = self.map_children(&mut |c| c.transform(f))?;
        f(node)
    }

    /// Replaces each direct child `c` by `f(c)`.
    pub fn map_children(self, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
        // The child is replaced inside its box: no allocation per child.
        let bx = |mut e: Box<Expr>, f: &mut dyn FnMut(Expr) -> Result<Expr>| -> Result<Box<Expr>> {
            let child = std::mem::replace(&mut *e, Expr::Literal(Value::Null));
            *e = f(child)?;
            Ok(e)
        };
        let node = match self {
            e @ (Expr::Literal(_)
            | Expr::Column(_)
            | Expr::Param(_)
            | Expr::Subquery(..)
            | Expr::Outer { .. }) => e,
            Expr::InSubquery {
                expr,
                plan,
                negated,
            } => Expr::InSubquery {
                expr: bx(expr, f)?,
                plan,
                negated,
            },
            Expr::Path(e, p) => Expr::Path(bx(e, f)?, p),
            Expr::Lookup(t, e) => Expr::Lookup(t, bx(e, f)?),
            Expr::Quantified {
                op,
                all,
                left,
                right,
            } => Expr::Quantified {
                op,
                all,
                left: bx(left, f)?,
                right: bx(right, f)?,
            },
            Expr::Unary(op, e) => Expr::Unary(op, bx(e, f)?),
            Expr::IsNull(e, n) => Expr::IsNull(bx(e, f)?, n),
            Expr::IsBool(e, v, n) => Expr::IsBool(bx(e, f)?, v, n),
            Expr::Cast(e, t) => Expr::Cast(bx(e, f)?, t),
            Expr::Binary(op, l, r) => Expr::Binary(op, bx(l, f)?, bx(r, f)?),
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: bx(expr, f)?,
                list: list.into_iter().map(&mut *f).collect::<Result<_>>()?,
                negated,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between {
                expr: bx(expr, f)?,
                low: bx(low, f)?,
                high: bx(high, f)?,
                negated,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => Expr::Like {
                expr: bx(expr, f)?,
                pattern: bx(pattern, f)?,
                negated,
                case_insensitive,
            },
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => Expr::Case {
                operand: operand.map(|o| bx(o, f)).transpose()?,
                whens: whens
                    .into_iter()
                    .map(|(w, t)| Ok((f(w)?, f(t)?)))
                    .collect::<Result<_>>()?,
                otherwise: otherwise.map(|o| bx(o, f)).transpose()?,
            },
            Expr::Func(func, args) => {
                Expr::Func(func, args.into_iter().map(&mut *f).collect::<Result<_>>()?)
            }
            Expr::Agg(mut call) => {
                call.arg = call.arg.map(|a| bx(a, f)).transpose()?;
                Expr::Agg(call)
            }
            Expr::Window(call) => Expr::Window(Box::new(call.map_exprs(f)?)),
        };
        Ok(node)
    }

    /// True when the expression reads no row and no parameter (it can be folded).
    pub fn is_constant(&self) -> bool {
        self.independent(false)
    }

    /// True when the expression reads no row (parameters it may read): one value for
    /// the whole of an execution.
    pub fn is_row_independent(&self) -> bool {
        self.independent(true)
    }

    fn independent(&self, params_allowed: bool) -> bool {
        let mut constant = true;
        self.walk(&mut |e| {
            if matches!(e, Expr::Param(_)) && !params_allowed {
                constant = false;
            }
            if matches!(
                e,
                Expr::Column(_)
                    | Expr::Agg(_)
                    | Expr::Window(_)
                    | Expr::Subquery(..)
                    | Expr::InSubquery { .. }
                    | Expr::Outer { .. }
            ) || matches!(e, Expr::Func(f, _) if f.is_volatile())
            {
                constant = false;
            }
        });
        constant
    }

    /// The columns the expression reads.
    pub fn columns_used(&self, out: &mut Vec<usize>) {
        self.walk(&mut |e| {
            if let Expr::Column(i) = e {
                out.push(*i);
            }
        });
    }
}

fn cmp_truth(o: Option<Ordering>, f: impl Fn(Ordering) -> bool) -> Option<bool> {
    o.map(f)
}

/// Most patterns a thread keeps compiled (catalog queries repeat a handful).
const REGEX_CACHE: usize = 64;
/// Longest pattern accepted (a limit on compile time and memory).
const MAX_REGEX_LEN: usize = 1000;

thread_local! {
    static REGEXES: std::cell::RefCell<Vec<(String, bool, regex::Regex)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `text` matches the POSIX-style regular expression `pattern` (2201B if the
/// pattern is invalid).
fn regex_match(text: &str, pattern: &str, insensitive: bool) -> Result<bool> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, _, re)) = cache
            .iter()
            .find(|(p, i, _)| p == pattern && *i == insensitive)
        {
            return Ok(re.is_match(text));
        }
        if pattern.len() > MAX_REGEX_LEN {
            return Err(Error::invalid(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                format!("regular expression longer than {MAX_REGEX_LEN} bytes"),
            ));
        }
        let re = regex::RegexBuilder::new(pattern)
            .case_insensitive(insensitive)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                Error::invalid(
                    SqlState("2201B"),
                    format!(
                        "invalid regular expression: {}",
                        e.to_string().lines().last().unwrap_or_default().trim()
                    ),
                )
            })?;
        let m = re.is_match(text);
        if cache.len() >= REGEX_CACHE {
            cache.remove(0);
        }
        cache.push((pattern.to_string(), insensitive, re));
        Ok(m)
    })
}

/// Text of a value for string operations (NULL stays None).
/// [`as_text`] borrowing text where it lies.
pub(crate) fn text_of(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        other => as_text(other).map(std::borrow::Cow::Owned),
    }
}

pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => SqlType::of_value(other).format_text(other),
    }
}

fn negate(v: Value) -> Result<Value> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Int(i) => i
            .checked_neg()
            .map(Value::Int)
            .ok_or_else(|| overflow("bigint")),
        Value::Float(f) => Ok(Value::Float(-f)),
        Value::Numeric(n) => Ok(Value::Numeric(
            to_decimal(&n).map(|d| (-d).to_string()).unwrap_or(n),
        )),
        other => Err(Error::invalid(
            UNDEFINED_FUNCTION,
            format!(
                "operator does not exist: - {}",
                SqlType::of_value(&other).name()
            ),
        )),
    }
}

fn overflow(ty: &str) -> Error {
    Error::invalid(
        types::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{ty} out of range"),
    )
}

fn to_decimal(s: &str) -> Option<Decimal> {
    types::parse_decimal(s)
}

/// A number in the promotion lattice.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    Dec(Decimal),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) => Some(Num::Int(*i)),
        Value::Float(f) => Some(Num::Float(*f)),
        Value::Numeric(n) => match to_decimal(n) {
            Some(d) => Some(Num::Dec(d)),
            None => n.parse().ok().map(Num::Float),
        },
        _ => None,
    }
}

/// A number as the float it compares and computes as against a float (None for a
/// value that is not a number).
pub(crate) fn float_of(v: &Value) -> Option<f64> {
    num(v).map(num_f64)
}

fn dec_to_f64(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(f64::NAN)
}

/// The comparison `op` (one of `=`, `<>`, `<`, `<=`, `>`, `>=`) of two values: NULL when
/// they do not compare (a NULL, or values of different kinds).
fn compare_as(op: BinOp, a: &Value, b: &Value) -> Value {
    let Some(o) = compare(a, b) else {
        return Value::Null;
    };
    Value::Bool(holds(op, o))
}

/// Whether the ordering `o` of two values satisfies the comparison `op` (one of `=`,
/// `<>`, `<`, `<=`, `>`, `>=`).
pub(crate) fn holds(op: BinOp, o: Ordering) -> bool {
    match op {
        BinOp::Eq => o == Ordering::Equal,
        BinOp::NotEq => o != Ordering::Equal,
        BinOp::Lt => o == Ordering::Less,
        BinOp::LtEq => o != Ordering::Greater,
        BinOp::Gt => o == Ordering::Greater,
        _ => o != Ordering::Less,
    }
}

/// Compares two values: numbers numerically across kinds, otherwise within one kind.
/// None when either is NULL or the kinds are not comparable.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Binary(x), Value::Binary(y)) => Some(x.cmp(y)),
        (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => {
            Some(types::to_json_text(a).cmp(&types::to_json_text(b)))
        }
        _ => {
            let (x, y) = (num(a)?, num(b)?);
            Some(match (x, y) {
                (Num::Int(x), Num::Int(y)) => x.cmp(&y),
                (Num::Float(x), y) => total_cmp_f64(x, num_f64(y)),
                (x, Num::Float(y)) => total_cmp_f64(num_f64(x), y),
                (Num::Dec(x), Num::Dec(y)) => x.cmp(&y),
                (Num::Int(x), Num::Dec(y)) => Decimal::from(x).cmp(&y),
                (Num::Dec(x), Num::Int(y)) => x.cmp(&Decimal::from(y)),
            })
        }
    }
}

fn num_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
        Num::Dec(d) => dec_to_f64(d),
    }
}

/// PostgreSQL orders NaN above every other float and equal to itself.
fn total_cmp_f64(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// A number that a condition compares row after row with (a literal), taken apart
/// once: what [`compare`] would make of it, and the float it compares as against a
/// float (a numeric literal against a float column would otherwise be converted
/// through its text for every row).
#[derive(Clone, Copy, Debug)]
pub struct KnownNumber {
    num: Num,
    as_f64: f64,
}

impl KnownNumber {
    /// The number `v` is (None for a value that is not one).
    pub fn of(v: &Value) -> Option<KnownNumber> {
        let num = num(v)?;
        Some(KnownNumber {
            num,
            as_f64: num_f64(num),
        })
    }
}

/// [`compare`]`(a, b)` where `known` is [`KnownNumber::of`]`(b)`.
pub fn compare_known(a: &Value, b: &Value, known: &KnownNumber) -> Option<Ordering> {
    let x = match a {
        Value::Int(i) => Num::Int(*i),
        Value::Float(f) => Num::Float(*f),
        Value::Numeric(_) => num(a)?,
        _ => return compare(a, b),
    };
    Some(match (x, known.num) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), _) => total_cmp_f64(x, known.as_f64),
        (x, Num::Float(y)) => total_cmp_f64(num_f64(x), y),
        (Num::Dec(x), Num::Dec(y)) => x.cmp(&y),
        (Num::Int(x), Num::Dec(y)) => Decimal::from(x).cmp(&y),
        (Num::Dec(x), Num::Int(y)) => x.cmp(&Decimal::from(y)),
    })
}

/// Orders values for ORDER BY and grouping: NULLs last; values of different kinds by a
/// fixed kind order so that sorting never fails.
pub fn sort_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        _ => compare(a, b).unwrap_or_else(|| kind_rank(a).cmp(&kind_rank(b))),
    }
}

fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 9,
        Value::Bool(_) => 0,
        Value::Int(_) | Value::Float(_) | Value::Numeric(_) => 1,
        Value::String(_) => 2,
        Value::DateTime(_) => 3,
        Value::Binary(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

fn arith_error(op: BinOp, a: &Value, b: &Value) -> Error {
    Error::invalid(
        UNDEFINED_FUNCTION,
        format!(
            "operator does not exist: {} {} {}",
            SqlType::of_value(a).name(),
            op.symbol(),
            SqlType::of_value(b).name()
        ),
    )
}

/// Evaluates a binary operator other than AND/OR.
pub fn binary(op: BinOp, a: Value, b: Value) -> Result<Value> {
    match op {
        BinOp::IsDistinctFrom | BinOp::IsNotDistinctFrom => {
            let same = match (&a, &b) {
                (Value::Null, Value::Null) => true,
                (Value::Null, _) | (_, Value::Null) => false,
                _ => compare(&a, &b) == Some(Ordering::Equal),
            };
            return Ok(Value::Bool(same == (op == BinOp::IsNotDistinctFrom)));
        }
        _ => {}
    }
    if matches!(a, Value::Null) || matches!(b, Value::Null) {
        return Ok(Value::Null);
    }
    match op {
        BinOp::RegexMatch | BinOp::RegexNotMatch | BinOp::RegexIMatch | BinOp::RegexNotIMatch => {
            let (Some(text), Some(pattern)) = (as_text(&a), as_text(&b)) else {
                return Ok(Value::Null);
            };
            let insensitive = matches!(op, BinOp::RegexIMatch | BinOp::RegexNotIMatch);
            let negated = matches!(op, BinOp::RegexNotMatch | BinOp::RegexNotIMatch);
            let m = regex_match(&text, &pattern, insensitive)?;
            return Ok(Value::Bool(m != negated));
        }
        _ => {}
    }
    match op {
        BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => {
            Ok(compare_as(op, &a, &b))
        }
        BinOp::Concat => match (&a, &b) {
            (Value::Array(x), Value::Array(y)) => {
                Ok(Value::Array(x.iter().chain(y.iter()).cloned().collect()))
            }
            (Value::Object(x), Value::Object(y)) => {
                let mut merged = x.clone();
                for (k, v) in y.iter() {
                    merged.insert(k.clone(), v.clone());
                }
                Ok(Value::Object(merged))
            }
            _ => {
                // The left text is extended in place where it is a string already.
                let mut text = match a {
                    Value::String(s) => s,
                    other => as_text(&other).unwrap_or_default(),
                };
                match &b {
                    Value::String(s) => text.push_str(s),
                    other => text.push_str(&as_text(other).unwrap_or_default()),
                }
                Ok(Value::String(text))
            }
        },
        BinOp::Arrow | BinOp::LongArrow => {
            let step = match &b {
                Value::String(k) => PathStep::Key(k.clone()),
                Value::Int(i) => PathStep::Index(*i),
                _ => return Ok(Value::Null),
            };
            let v = follow_path(a, &[step]);
            if op == BinOp::LongArrow {
                Ok(match v {
                    Value::Null => Value::Null,
                    Value::String(s) => Value::String(s),
                    other => Value::String(types::to_json_text(&other)),
                })
            } else {
                Ok(v)
            }
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => arithmetic(op, &a, &b),
        BinOp::BitAnd | BinOp::BitOr => match (&a, &b) {
            (Value::Int(x), Value::Int(y)) => {
                Ok(Value::Int(if op == BinOp::BitAnd { x & y } else { x | y }))
            }
            _ => Err(Error::invalid(
                UNDEFINED_FUNCTION,
                format!(
                    "operator does not exist: {} {} {}",
                    a.type_name(),
                    op.symbol(),
                    b.type_name()
                ),
            )),
        },
        BinOp::And
        | BinOp::Or
        | BinOp::IsDistinctFrom
        | BinOp::IsNotDistinctFrom
        | BinOp::RegexMatch
        | BinOp::RegexNotMatch
        | BinOp::RegexIMatch
        | BinOp::RegexNotIMatch => Err(Error::Internal("logical operator in arithmetic".into())),
    }
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Result<Value> {
    // Timestamps minus timestamps, timestamps plus/minus integer days are left to
    // functions; only numbers here.
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        return Err(arith_error(op, a, b));
    };
    let zero = || Error::invalid(DIVISION_BY_ZERO, "division by zero");
    match (x, y) {
        (Num::Int(x), Num::Int(y)) => {
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => {
                    if y == 0 {
                        return Err(zero());
                    }
                    x.checked_div(y)
                }
                _ => {
                    if y == 0 {
                        return Err(zero());
                    }
                    x.checked_rem(y)
                }
            };
            r.map(Value::Int).ok_or_else(|| overflow("bigint"))
        }
        (Num::Float(x), y) => float_op(op, x, num_f64(y)),
        (x, Num::Float(y)) => float_op(op, num_f64(x), y),
        (x, y) => {
            let to_dec = |n: Num| match n {
                Num::Int(i) => Decimal::from(i),
                Num::Dec(d) => d,
                Num::Float(f) => Decimal::try_from(f).unwrap_or_default(),
            };
            let (x, y) = (to_dec(x), to_dec(y));
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => {
                    if y.is_zero() {
                        return Err(zero());
                    }
                    types::numeric_div(x, y)
                }
                _ => {
                    if y.is_zero() {
                        return Err(zero());
                    }
                    x.checked_rem(y)
                }
            };
            r.map(|d| Value::Numeric(d.to_string()))
                .ok_or_else(|| overflow("numeric"))
        }
    }
}

fn float_op(op: BinOp, x: f64, y: f64) -> Result<Value> {
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return Err(Error::invalid(DIVISION_BY_ZERO, "division by zero"));
            }
            x / y
        }
        _ => {
            if y == 0.0 {
                return Err(Error::invalid(DIVISION_BY_ZERO, "division by zero"));
            }
            x % y
        }
    };
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(overflow("double precision"));
    }
    Ok(Value::Float(r))
}

/// SQL LIKE with `%`, `_` and `\` as escape.
pub fn like(text: &str, pattern: &str) -> bool {
    // Only `%` wildcards (the usual `abc%`, `%abc`, `%abc%`): the literal runs between
    // them are found in order, the first at the start and the last at the end.
    if !pattern.contains(['_', '\\']) {
        let mut runs = pattern.split('%');
        let first = runs.next().unwrap_or_default();
        let Some(rest) = text.strip_prefix(first) else {
            return false;
        };
        let runs: Vec<&str> = runs.collect();
        let Some((last, middle)) = runs.split_last() else {
            // No `%`: the whole text.
            return rest.is_empty();
        };
        let mut rest = rest;
        for run in middle {
            match rest.find(run) {
                Some(at) => rest = rest.get(at + run.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        return rest.ends_with(last);
    }
    if text.is_ascii() && pattern.is_ascii() {
        return like_ascii(text.as_bytes(), pattern.as_bytes());
    }
    like_general(text, pattern)
}

/// [`like_general`] over ASCII text and pattern, byte by byte, allocating nothing.
fn like_ascii(t: &[u8], p: &[u8]) -> bool {
    // The pattern's token at `pi`: (byte, is literal, width in the pattern); a
    // backslash that ends the pattern escapes nothing and is dropped.
    let token = |pi: usize| -> Option<(u8, bool, usize)> {
        match p.get(pi)? {
            b'\\' => p.get(pi + 1).map(|&n| (n, true, 2)),
            &c => Some((c, false, 1)),
        }
    };
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match token(pi) {
            Some((b'%', false, w)) => {
                star = Some((pi + w, ti));
                pi += w;
            }
            Some((b'_', false, w)) => {
                ti += 1;
                pi += w;
            }
            Some((c, _, w)) if t.get(ti) == Some(&c) => {
                ti += 1;
                pi += w;
            }
            _ => match star {
                Some((after, st)) => {
                    pi = after;
                    ti = st + 1;
                    star = Some((after, st + 1));
                }
                None => return false,
            },
        }
    }
    while let Some((b'%', false, w)) = token(pi) {
        pi += w;
    }
    token(pi).is_none()
}

/// [`like`] for any pattern: `_`, escapes, backtracking on the last `%`.
fn like_general(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let mut p: Vec<(char, bool)> = Vec::new(); // (char, is_literal)
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                p.push((n, true));
            }
        } else {
            p.push((c, false));
        }
    }
    // Iterative matching with backtracking on the last `%`.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(('%', false)) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(('_', false)) => {
                ti += 1;
                pi += 1;
            }
            Some((c, _)) if t.get(ti) == Some(c) => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    while let Some(('%', false)) = p.get(pi) {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EvalContext<'static> {
        EvalContext {
            params: &[],
            now: 0,
            subqueries: None,
        }
    }

    fn lit(v: Value) -> Box<Expr> {
        Box::new(Expr::Literal(v))
    }

    #[test]
    fn three_valued_logic() {
        let null = || lit(Value::Null);
        let t = || lit(Value::Bool(true));
        let f = || lit(Value::Bool(false));
        let and = |a, b| Expr::Binary(BinOp::And, a, b).eval(&[], &ctx()).unwrap();
        let or = |a, b| Expr::Binary(BinOp::Or, a, b).eval(&[], &ctx()).unwrap();
        assert_eq!(and(null(), f()), Value::Bool(false));
        assert_eq!(and(null(), t()), Value::Null);
        assert_eq!(or(null(), t()), Value::Bool(true));
        assert_eq!(or(null(), f()), Value::Null);
        let not_null = Expr::Unary(UnaryOp::Not, null()).eval(&[], &ctx()).unwrap();
        assert_eq!(not_null, Value::Null);
    }

    #[test]
    fn arithmetic_promotes_and_checks() {
        assert_eq!(
            binary(BinOp::Add, Value::Int(1), Value::Float(0.5)).unwrap(),
            Value::Float(1.5)
        );
        assert_eq!(
            binary(BinOp::Div, Value::Int(7), Value::Int(2)).unwrap(),
            Value::Int(3)
        );
        assert_eq!(
            binary(BinOp::Add, Value::Int(1), Value::Numeric("0.25".into())).unwrap(),
            Value::Numeric("1.25".into())
        );
        let e = binary(BinOp::Div, Value::Int(1), Value::Int(0)).unwrap_err();
        assert_eq!(e.sqlstate(), DIVISION_BY_ZERO);
        let e = binary(BinOp::Mul, Value::Int(i64::MAX), Value::Int(2)).unwrap_err();
        assert_eq!(e.sqlstate(), types::NUMERIC_VALUE_OUT_OF_RANGE);
        let e = binary(BinOp::Add, Value::String("a".into()), Value::Int(1)).unwrap_err();
        assert_eq!(e.sqlstate(), UNDEFINED_FUNCTION);
    }

    #[test]
    fn comparisons_across_number_kinds() {
        assert_eq!(
            compare(&Value::Int(2), &Value::Float(2.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(&Value::Numeric("199.99".into()), &Value::Int(200)),
            Some(Ordering::Less)
        );
        assert_eq!(compare(&Value::String("a".into()), &Value::Int(1)), None);
        assert_eq!(
            binary(BinOp::Eq, Value::Null, Value::Int(1)).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn like_patterns() {
        assert!(like("AudioPhonic", "Audio%"));
        assert!(!like("xab", "%a%ab"));
        assert!(like("abab", "%ab%b"));
        assert!(like("aé-b", "a%b"));
        // The `%`-only patterns agree with the general matcher on every short case.
        let words = |alphabet: &[char], max: usize| -> Vec<String> {
            let mut all = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                    .collect();
                all.extend(last.iter().cloned());
            }
            all
        };
        for t in words(&['a', 'b'], 5) {
            for p in words(&['a', 'b', '%'], 4) {
                assert_eq!(like(&t, &p), like_general(&t, &p), "{t:?} LIKE {p:?}");
            }
        }
        // So does the ASCII matcher, with `_` and escapes.
        for t in words(&['a', '_', '\\'], 4) {
            for p in words(&['a', '_', '%', '\\'], 4) {
                assert_eq!(
                    like_ascii(t.as_bytes(), p.as_bytes()),
                    like_general(&t, &p),
                    "{t:?} LIKE {p:?}"
                );
            }
        }
        assert!(like("AudioPhonic", "%Phon_c"));
        assert!(!like("AudioPhonic", "audio%"));
        assert!(like("100%", "100\\%"));
        assert!(!like("1000", "100\\%"));
        assert!(like("", "%"));
        assert!(like("abcabc", "%abc"));
    }

    #[test]
    fn a_borrowed_path_reaches_what_an_owned_one_does() {
        let json = serde_json::json!({"a": {"b": [1, {"c": "x"}, null]}, "n": 3});
        let doc = crate::doc::json::from_json(json).unwrap();
        let key = |k: &str| PathStep::Key(k.into());
        let paths: Vec<Vec<PathStep>> = vec![
            vec![],
            vec![key("a"), key("b"), PathStep::Index(1), key("c")],
            vec![key("a"), key("b"), PathStep::Index(-1)],
            vec![key("a"), key("b"), PathStep::Index(-4)],
            vec![key("a"), key("b"), PathStep::Index(3)],
            vec![key("n"), key("x")],
            vec![key("missing")],
        ];
        for steps in &paths {
            let owned = follow_path(doc.clone(), steps);
            let borrowed = follow_path_ref(&doc, steps).cloned().unwrap_or(Value::Null);
            assert_eq!(owned, borrowed, "{steps:?}");
            let row = [doc.clone()];
            let e = Expr::Path(Box::new(Expr::Column(0)), steps.clone());
            assert_eq!(e.eval(&row, &ctx()).unwrap(), owned, "{steps:?}");
        }
    }

    #[test]
    fn paths_and_arrows() {
        let mut specs = crate::doc::Object::default();
        specs.insert("v".into(), Value::Float(5.2));
        let doc = Value::Object(Box::new(specs));
        assert_eq!(
            follow_path(doc.clone(), &[PathStep::Key("v".into())]),
            Value::Float(5.2)
        );
        assert_eq!(
            binary(BinOp::LongArrow, doc.clone(), Value::String("v".into())).unwrap(),
            Value::String("5.2".into())
        );
        assert_eq!(
            binary(BinOp::Arrow, doc, Value::String("missing".into())).unwrap(),
            Value::Null
        );
    }
}
