//! The binder: sqlparser's AST to bound expressions and a logical plan, checked against
//! the catalog.
//!
//! Names follow PostgreSQL: unquoted identifiers fold to lower case, quoted ones keep
//! their case. `a.b.c` is a column `b` of table `a` with path `c` when `a` names the
//! table in scope, and otherwise column `a` with path `b.c` (a document field path).
//! Parameters get their types from context (the column they are compared with or
//! stored into), as drivers like asyncpg require.

use sqlparser::ast;
use std::sync::Arc;
use tissdb_dialect::sqlparser;

use crate::catalog::{Catalog, Collection};
use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::Column;
use crate::query::exec::aggregate_result_type;
use crate::query::exec::table_function::TableFunc;
use crate::query::expr::{
    AggCall, AggFunc, BinOp, Expr, PathStep, SubqueryKind, UNDEFINED_FUNCTION, UnaryOp,
};
use crate::query::functions::{ScalarFunc, common_type};
use crate::query::plan::{Access, JoinKind, Node, SetOpKind, SortKey};
use crate::query::system::lookup::{Lookup, LookupKind};
use crate::query::types::{self, SqlType};

mod window;

pub const UNDEFINED_COLUMN: SqlState = SqlState("42703");
pub const GROUPING_ERROR: SqlState = SqlState("42803");
pub const INVALID_COLUMN_REFERENCE: SqlState = SqlState("42P10");
pub const AMBIGUOUS_COLUMN: SqlState = SqlState("42702");

/// The error for syntax TissDB does not run (yet), naming the construct.
pub fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::invalid(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!("{what} is not supported"),
    )
}

/// Normalizes an identifier: unquoted folds to lower case.
pub fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// One column visible to expressions: its position is its index in the input row.
#[derive(Clone, Debug)]
pub struct ScopeColumn {
    /// The name (alias, or table name) that may qualify it.
    pub table: Option<String>,
    pub name: String,
    pub ty: SqlType,
    /// Reachable only qualified, and left out of `*` (the right side's copy of a
    /// `USING` column).
    pub hidden: bool,
}

/// The columns visible to expressions: those of every table in FROM, in row order.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
    /// The order `*` lists the visible columns in, when not row order (a `USING` join
    /// lists the merged columns first).
    pub star: Option<Vec<usize>>,
    /// Nested fields of schemaless collections in FROM, which a quoted dotted name
    /// (`"specs.weight"`) reads: (table, dotted name, path, type).
    pub nested: Vec<(String, String, Vec<String>, SqlType)>,
}

impl Scope {
    pub fn of_collection(c: &Collection, alias: Option<String>) -> Scope {
        let table = alias.unwrap_or_else(|| c.name.clone());
        let mut scope = Scope::of_columns(Some(table.clone()), c.sql_columns());
        scope.nested = c
            .nested
            .iter()
            .map(|f| (table.clone(), f.name(), f.path.clone(), f.ty.sql_type()))
            .collect();
        scope
    }

    /// Columns all qualified by `table` (or by nothing).
    pub fn of_columns(table: Option<String>, columns: Vec<(String, SqlType)>) -> Scope {
        Scope {
            star: None,
            nested: Vec::new(),
            columns: columns
                .into_iter()
                .map(|(name, ty)| ScopeColumn {
                    table: table.clone(),
                    name,
                    ty,
                    hidden: false,
                })
                .collect(),
        }
    }

    /// The first visible column called `name`, qualified or not.
    fn find(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name && !c.hidden)
    }

    /// Whether `name` qualifies some column (a table or alias in FROM).
    pub fn has_table(&self, name: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.table.as_deref() == Some(name))
    }

    /// The column `name` unqualified: 42703 if none, 42702 if several tables have it.
    fn resolve(&self, name: &str) -> Result<Option<usize>> {
        let mut found = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == name && !c.hidden)
            .map(|(i, _)| i);
        let first = found.next();
        if first.is_some() && found.next().is_some() {
            return Err(Error::invalid(
                SqlState("42702"),
                format!("column reference \"{name}\" is ambiguous"),
            ));
        }
        Ok(first)
    }

    /// The column `name` of table `table`.
    fn resolve_in(&self, table: &str, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.table.as_deref() == Some(table) && c.name == name)
    }

    /// The columns of both sides of a join, left first.
    pub fn join(mut self, right: Scope) -> Scope {
        let width = self.columns.len();
        let mut star = self.star_columns();
        star.extend(right.star_columns().into_iter().map(|i| i + width));
        self.columns.extend(right.columns);
        self.nested.extend(right.nested);
        self.star = Some(star);
        self
    }

    /// The columns `*` stands for, in its order.
    pub fn star_columns(&self) -> Vec<usize> {
        let visible = |i: &usize| self.columns.get(*i).is_some_and(|c| !c.hidden);
        match &self.star {
            Some(order) => order.iter().copied().filter(visible).collect(),
            None => (0..self.columns.len()).filter(visible).collect(),
        }
    }

    /// The (name, type) pairs, in row order.
    pub fn pairs(&self) -> Vec<(String, SqlType)> {
        self.columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect()
    }
}

/// Binds statements of one session against the catalog.
pub struct Binder<'a> {
    pub catalog: &'a Catalog,
    /// Types of `$1`, `$2`, ... as far as known.
    pub params: Vec<Option<SqlType>>,
    /// Current expression nesting while binding.
    depth: usize,
    /// The highest `$n` referenced.
    pub referenced: usize,
    /// The open transaction, whose pending writes may add columns to collections.
    pub pending: Option<&'a crate::txn::Transaction>,
    /// Common table expressions in scope, innermost last: name and bound plan.
    ctes: Vec<(String, Node)>,
    /// Ids given to recursive unions so far.
    recursive_unions: usize,
    /// The scopes of the queries a subquery being bound is in, outermost first.
    outer: Vec<Scope>,
    /// The session's own settings (`SET`), over the defaults; for catalog views and
    /// `current_setting`.
    pub settings: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The session's statements prepared by name in SQL, for `pg_prepared_statements`.
    pub named: Option<&'a crate::query::named::NamedStatements>,
    /// False once the statement bound anything whose result may change while the
    /// catalog stays the same: a scalar or window function call (now(), random(),
    /// current_setting(), ...), a table function, a catalog view or lookup. A plan bound
    /// without any may be kept and run again until the catalog changes.
    pub cacheable: std::cell::Cell<bool>,
}

/// Deepest expression nesting bound (left-nested operator chains included, which the
/// parser's own recursion limit does not count).
/// At a few KiB of stack per level, 2000 levels fit the server's 16 MiB thread stacks.
pub const MAX_EXPRESSION_DEPTH: usize = 2000;

/// ALL (true) or DISTINCT (false) of a set operation.
fn set_quantifier_all(q: &ast::SetQuantifier) -> Result<bool> {
    match q {
        ast::SetQuantifier::All => Ok(true),
        ast::SetQuantifier::Distinct | ast::SetQuantifier::None => Ok(false),
        other => Err(unsupported(format!("{other}"))),
    }
}

/// Whether the query's text names `name` as a word (a recursive CTE refers to itself).
fn mentions(q: &ast::Query, name: &str) -> bool {
    let text = q.to_string().to_lowercase();
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w == name)
}

/// A join of two bound inputs, with the scope of both.
fn join_node(
    left: Node,
    ls: Scope,
    right: Node,
    rs: Scope,
    kind: JoinKind,
    condition: Option<Expr>,
) -> (Node, Scope) {
    (
        Node::Join {
            left: Box::new(left),
            right: Box::new(right),
            kind,
            condition,
            equi: Vec::new(),
        },
        ls.join(rs),
    )
}

/// `left` joined LATERALly with `right` (see [`Node::Lateral`]).
fn lateral_node(
    left: Node,
    ls: Scope,
    right: Node,
    rs: Scope,
    outer: bool,
    condition: Option<Expr>,
) -> (Node, Scope) {
    let mut columns = left.columns();
    columns.extend(right.columns());
    (
        Node::Lateral {
            left: Box::new(left),
            right: Box::new(right),
            outer,
            condition,
            columns,
        },
        ls.join(rs),
    )
}

/// A subquery's (or CTE's) rows as a table called `table`, with column aliases if given.
fn aliased(node: Node, table: String, alias: Option<&ast::TableAlias>) -> Result<(Node, Scope)> {
    let mut columns = node.columns();
    if let Some(a) = alias {
        if a.columns.len() > columns.len() {
            return Err(Error::invalid(
                SqlState("42P10"),
                format!(
                    "table \"{table}\" has {} columns available but {} columns specified",
                    columns.len(),
                    a.columns.len()
                ),
            ));
        }
        for (c, name) in columns.iter_mut().zip(&a.columns) {
            c.name = ident(&name.name);
        }
    }
    let scope = Scope::of_columns(
        Some(table),
        columns
            .iter()
            .map(|c| {
                let ty = if c.ty == SqlType::Unknown {
                    SqlType::Text
                } else {
                    c.ty.clone()
                };
                (c.name.clone(), ty)
            })
            .collect(),
    );
    let exprs = (0..columns.len()).map(Expr::Column).collect();
    let node = Node::Project {
        input: Box::new(node),
        exprs,
        columns,
    };
    Ok((node, scope))
}

fn is_agg_name(name: &str) -> Option<AggFunc> {
    Some(match name {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "array_agg" => AggFunc::ArrayAgg,
        "bool_and" | "every" => AggFunc::BoolAnd,
        "bool_or" => AggFunc::BoolOr,
        "string_agg" => AggFunc::StringAgg,
        _ => return None,
    })
}

fn type_group(t: &SqlType) -> u8 {
    match t {
        t if t.is_numeric() => 1,
        SqlType::Text | SqlType::Varchar(_) | SqlType::Uuid => 2,
        SqlType::Date | SqlType::Timestamp | SqlType::Timestamptz => 3,
        SqlType::Bool => 4,
        SqlType::Bytea => 5,
        _ => 0, // json, unknown: decided per value
    }
}

/// The set-returning function an expression calls at its top (`unnest(a)`, also under
/// parentheses).
fn srf_call(e: &ast::Expr) -> Option<(TableFunc, &ast::Function)> {
    match e {
        ast::Expr::Function(f) if f.over.is_none() => {
            let name = f.name.0.last()?.as_ident().map(ident)?;
            TableFunc::by_name(&name)
                .filter(|t| *t != TableFunc::PgGetKeywords)
                .map(|t| (t, f))
        }
        ast::Expr::Nested(inner) => srf_call(inner),
        _ => None,
    }
}

/// Whether a select item calls a set-returning function at its top or under a field
/// access (`(f(x)).n`).
fn has_set_function(item: &ast::SelectItem) -> bool {
    let e = match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    match e {
        ast::Expr::CompoundFieldAccess { root, .. } => srf_call(root).is_some(),
        e => srf_call(e).is_some(),
    }
}

/// The engine operator of a SQL binary operator, if it has one.
fn binary_operator(op: &ast::BinaryOperator) -> Option<BinOp> {
    use ast::BinaryOperator as B;
    Some(match op {
        B::Plus => BinOp::Add,
        B::Minus => BinOp::Sub,
        B::Multiply => BinOp::Mul,
        B::Divide => BinOp::Div,
        B::Modulo => BinOp::Mod,
        B::Eq => BinOp::Eq,
        B::NotEq => BinOp::NotEq,
        B::Lt => BinOp::Lt,
        B::LtEq => BinOp::LtEq,
        B::Gt => BinOp::Gt,
        B::GtEq => BinOp::GtEq,
        B::And => BinOp::And,
        B::Or => BinOp::Or,
        B::StringConcat => BinOp::Concat,
        B::Arrow => BinOp::Arrow,
        B::LongArrow => BinOp::LongArrow,
        B::Custom(s) if s == "IS DISTINCT FROM" => BinOp::IsDistinctFrom,
        B::Custom(s) if s == "IS NOT DISTINCT FROM" => BinOp::IsNotDistinctFrom,
        B::PGRegexMatch => BinOp::RegexMatch,
        B::PGRegexNotMatch => BinOp::RegexNotMatch,
        B::PGRegexIMatch => BinOp::RegexIMatch,
        B::PGRegexNotIMatch => BinOp::RegexNotIMatch,
        B::BitwiseAnd => BinOp::BitAnd,
        B::BitwiseOr => BinOp::BitOr,
        _ => return None,
    })
}

/// The operator `OPERATOR(pg_catalog.op)` names.
#[inline(never)]
fn pg_catalog_operator(parts: &[String]) -> Result<ast::BinaryOperator> {
    use ast::BinaryOperator as B;
    let [schema, op] = parts else {
        return Err(unsupported(format!("operator {}", parts.join("."))));
    };
    if !schema.eq_ignore_ascii_case("pg_catalog") {
        return Err(unsupported(format!("operator {schema}.{op}")));
    }
    Ok(match op.as_str() {
        "~" => B::PGRegexMatch,
        "!~" => B::PGRegexNotMatch,
        "~*" => B::PGRegexIMatch,
        "!~*" => B::PGRegexNotIMatch,
        "=" => B::Eq,
        "<>" | "!=" => B::NotEq,
        "<" => B::Lt,
        "<=" => B::LtEq,
        ">" => B::Gt,
        ">=" => B::GtEq,
        "||" => B::StringConcat,
        "+" => B::Plus,
        "-" => B::Minus,
        other => return Err(unsupported(format!("operator pg_catalog.{other}"))),
    })
}

/// The object name's last part, normalized; schema `public` (or none) is accepted.
pub fn table_name(name: &ast::ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(ident)
        .collect();
    match parts.as_slice() {
        [t] => Ok(t.clone()),
        [schema, t] if schema == "public" => Ok(t.clone()),
        [db, schema, t] if schema == "public" && db == "tissdb" => Ok(t.clone()),
        _ => Err(Error::not_found(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )),
    }
}

/// Parses a SQL data type.
pub fn data_type(dt: &ast::DataType) -> Result<SqlType> {
    let text = dt.to_string().to_lowercase();
    let text = text
        .strip_prefix("pg_catalog.")
        .unwrap_or(&text)
        .to_string();
    if let Some(elem) = text.strip_suffix("[]") {
        let elem = ast::DataType::Custom(
            ast::ObjectName::from(vec![ast::Ident::new(elem)]),
            Vec::new(),
        );
        return Ok(SqlType::Array(Box::new(data_type(&elem)?)));
    }
    if let ast::DataType::Array(def) = dt {
        return match def {
            ast::ArrayElemTypeDef::AngleBracket(t)
            | ast::ArrayElemTypeDef::SquareBracket(t, _)
            | ast::ArrayElemTypeDef::Parenthesis(t) => Ok(SqlType::Array(Box::new(data_type(t)?))),
            _ => Err(unsupported(format!("array type {text}"))),
        };
    }
    let (base, args) = match text.split_once('(') {
        Some((b, rest)) => {
            let inner = rest.trim_end_matches(')');
            let args: Vec<u32> = inner
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect();
            // `timestamp(3) with time zone` keeps its suffix after the parenthesis.
            let suffix = rest.split_once(')').map(|(_, s)| s.trim()).unwrap_or("");
            (format!("{} {}", b.trim(), suffix).trim().to_string(), args)
        }
        None => (text.clone(), Vec::new()),
    };
    SqlType::from_name(&base, &args)
}

impl<'a> Binder<'a> {
    pub fn new(catalog: &'a Catalog, hints: &[Option<SqlType>]) -> Binder<'a> {
        Binder {
            catalog,
            params: hints.to_vec(),
            depth: 0,
            referenced: 0,
            pending: None,
            ctes: Vec::new(),
            recursive_unions: 0,
            outer: Vec::new(),
            settings: None,
            named: None,
            cacheable: std::cell::Cell::new(true),
        }
    }

    /// What the catalog views and lookups need of the session.
    fn system_settings(&self) -> crate::query::system::Settings<'static> {
        self.cacheable.set(false);
        let all = crate::query::statement::effective_settings(self.settings);
        crate::query::system::Settings {
            user: "tissdb",
            all,
            prepared: self.named.map(|n| n.rows()).unwrap_or_default(),
        }
    }

    /// A catalog lookup table for this statement.
    fn lookup(&self, kind: LookupKind) -> std::sync::Arc<Lookup> {
        self.cacheable.set(false);
        std::sync::Arc::new(Lookup::build(self.catalog, kind, &self.system_settings()))
    }

    /// `arg` looked up in a catalog table: folded now when constant.
    fn lookup_expr(&self, kind: LookupKind, arg: Expr) -> Result<Expr> {
        let table = self.lookup(kind);
        match arg {
            Expr::Literal(v) => Ok(Expr::Literal(table.get(&v)?)),
            other => Ok(Expr::Lookup(table, Box::new(other))),
        }
    }

    /// The parameter types, unknown ones as text.
    pub fn param_types(&self) -> Vec<SqlType> {
        self.params
            .iter()
            .map(|p| match p {
                Some(SqlType::Unknown) | None => SqlType::Text,
                Some(t) => t.clone(),
            })
            .collect()
    }

    pub fn collection(&self, name: &ast::ObjectName) -> Result<Collection> {
        let n = table_name(name)?;
        let mut c = Arc::unwrap_or_clone(self.catalog.get(&n).map_err(|_| {
            Error::not_found(
                SqlState::UNDEFINED_TABLE,
                format!("relation \"{n}\" does not exist"),
            )
        })?);
        if let Some(t) = self.pending {
            t.widen(&mut c);
        }
        Ok(c)
    }

    fn param_type(&mut self, index: usize) -> SqlType {
        if self.params.len() <= index {
            self.params.resize(index + 1, None);
        }
        self.params[index].clone().unwrap_or(SqlType::Unknown)
    }

    /// Records the type of parameter `index` if it has none yet.
    pub fn set_param_type(&mut self, index: usize, ty: &SqlType) {
        if self.params.len() <= index {
            self.params.resize(index + 1, None);
        }
        if matches!(self.params[index], None | Some(SqlType::Unknown)) && *ty != SqlType::Unknown {
            self.params[index] = Some(ty.clone());
        }
    }

    /// Gives an untyped side (a string literal or a parameter) the type of `target`.
    pub fn coerce_to(&mut self, e: Expr, ty: SqlType, target: &SqlType) -> Result<(Expr, SqlType)> {
        if let (Expr::Literal(v @ Value::Numeric(_)), SqlType::Float4 | SqlType::Float8) =
            (&e, target)
            && let Some(f) = crate::query::expr::float_of(v)
        {
            // A numeric constant against a float compares and computes as a float (as
            // PostgreSQL casts it to float8): converted once here, not at every row.
            return Ok((Expr::Literal(Value::Float(f)), SqlType::Float8));
        }
        if ty != SqlType::Unknown || *target == SqlType::Unknown {
            return Ok((e, ty));
        }
        match e {
            Expr::Param(i) => {
                let t = if target.is_json() {
                    SqlType::Text
                } else {
                    target.clone()
                };
                self.set_param_type(i, &t);
                Ok((Expr::Param(i), t))
            }
            Expr::Literal(Value::String(s)) if !target.is_json() => {
                let v = types::cast(Value::String(s), target)?;
                Ok((Expr::Literal(v), target.clone()))
            }
            other => Ok((other, ty)),
        }
    }

    // ---- expressions ----------------------------------------------------------------

    /// A column of `scope`, or else of an enclosing query (a correlated reference).
    fn column_ref(&self, parts: &[String], scope: &Scope) -> Result<(Expr, SqlType)> {
        let here = self.column_ref_in(parts, scope);
        let missing = |e: &Error| matches!(e.sqlstate().code(), "42703" | "42P01");
        match here {
            Err(mut e) if missing(&e) => {
                for (j, outer) in self.outer.iter().enumerate().rev() {
                    match self.column_ref_in(parts, outer) {
                        Ok((x, ty)) => {
                            let depth = self.outer.len() - j;
                            let x = x.transform(&mut |c| {
                                Ok(match c {
                                    Expr::Column(index) => Expr::Outer { depth, index },
                                    other => other,
                                })
                            })?;
                            return Ok((x, ty));
                        }
                        // `t.nope` where an enclosing query has `t`: the column is
                        // what is missing, not the table.
                        Err(outer_err)
                            if e.sqlstate().code() == "42P01"
                                && outer_err.sqlstate().code() == "42703" =>
                        {
                            e = outer_err
                        }
                        Err(_) => {}
                    }
                }
                Err(e)
            }
            other => other,
        }
    }

    fn column_ref_in(&self, parts: &[String], scope: &Scope) -> Result<(Expr, SqlType)> {
        let missing = || {
            Error::invalid(
                UNDEFINED_COLUMN,
                format!("column \"{}\" does not exist", parts.join(".")),
            )
        };
        // A nested field by its dotted column name (`"specs.weight"`, `p."specs.weight"`).
        let nested = match parts {
            _ if scope.nested.is_empty() => None,
            [name] if scope.resolve(name)?.is_none() => {
                scope.nested.iter().find(|(_, n, _, _)| n == name)
            }
            [table, name] if scope.resolve_in(table, name).is_none() => scope
                .nested
                .iter()
                .find(|(t, n, _, _)| t == table && n == name),
            _ => None,
        };
        if let Some((table, _, path, ty)) = nested {
            let (first, rest) = path.split_first().ok_or_else(missing)?;
            let i = scope.resolve_in(table, first).ok_or_else(missing)?;
            let steps = rest.iter().map(|p| PathStep::Key(p.clone())).collect();
            let e = Expr::Path(Box::new(Expr::Column(i)), steps);
            return Ok(if ty.is_json() {
                (e, SqlType::Jsonb)
            } else {
                (Expr::Cast(Box::new(e), ty.clone()), ty.clone())
            });
        }
        let (i, col, path) = match parts {
            [] => return Err(missing()),
            [name] => (scope.resolve(name)?.ok_or_else(missing)?, name, &[][..]),
            // `schema.table.column`.
            [schema, table, column, rest @ ..]
                if matches!(
                    schema.as_str(),
                    "public" | "pg_catalog" | "information_schema"
                ) && scope.has_table(table) =>
            {
                (
                    scope.resolve_in(table, column).ok_or_else(missing)?,
                    column,
                    rest,
                )
            }
            [first, second, rest @ ..] if scope.has_table(first) => (
                scope.resolve_in(first, second).ok_or_else(missing)?,
                second,
                rest,
            ),
            [first, rest @ ..] => match scope.resolve(first)? {
                Some(i) => (i, first, rest),
                // `other_table.col...` naming a table not in scope.
                None => {
                    return Err(Error::not_found(
                        SqlState::UNDEFINED_TABLE,
                        format!("missing FROM-clause entry for table \"{first}\""),
                    ));
                }
            },
        };
        let ty = scope.columns[i].ty.clone();
        if path.is_empty() {
            return Ok((Expr::Column(i), ty));
        }
        if !(ty.is_json() || ty == SqlType::Unknown) {
            return Err(Error::invalid(
                UNDEFINED_COLUMN,
                format!(
                    "column \"{col}\" is of type {} and has no field \"{}\"",
                    ty.name(),
                    path.join(".")
                ),
            ));
        }
        let steps = path.iter().map(|p| PathStep::Key(p.clone())).collect();
        let e = Expr::Path(Box::new(Expr::Column(i)), steps);
        // A nested field of a schemaless collection has the type observed for it, as
        // under its dotted name (`"specs.weight"`) and in `\d`: jsonb only where its
        // values are objects, arrays or of differing types. Its values have that type
        // already (an integer in a float8 field is widened with the result rows), so the
        // path stays bare, and an index on it still serves it.
        let observed = scope.columns[i].table.as_deref().and_then(|table| {
            scope.nested.iter().find(|(t, _, p, _)| {
                t == table
                    && p.split_first()
                        .is_some_and(|(first, rest)| first == col && rest == path)
            })
        });
        match observed {
            Some((_, _, _, ty)) if !ty.is_json() => Ok((e, ty.clone())),
            _ => Ok((e, SqlType::Jsonb)),
        }
    }

    fn literal(&mut self, v: &ast::Value) -> Result<(Expr, SqlType)> {
        Ok(match v {
            ast::Value::Number(n, _) => {
                if let Ok(i) = n.parse::<i64>() {
                    let ty = if i32::try_from(i).is_ok() {
                        SqlType::Int4
                    } else {
                        SqlType::Int8
                    };
                    (Expr::Literal(Value::Int(i)), ty)
                } else {
                    let d = types::parse_decimal(n).ok_or_else(|| {
                        if n.parse::<f64>().is_ok_and(f64::is_finite) {
                            // A number beyond numeric's 28 significant digits here.
                            Error::invalid(
                                types::NUMERIC_VALUE_OUT_OF_RANGE,
                                format!(
                                    "numeric literal {n} is out of range (numeric holds at most 28 significant digits, below 7.9e28); write it as a float8, {n}::float8"
                                ),
                            )
                        } else {
                            Error::invalid(
                                SqlState::INVALID_TEXT_REPRESENTATION,
                                format!("invalid number {n}"),
                            )
                        }
                    })?;
                    (
                        Expr::Literal(Value::Numeric(d.to_string())),
                        SqlType::Numeric,
                    )
                }
            }
            ast::Value::SingleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::UnicodeStringLiteral(s)
            | ast::Value::TripleSingleQuotedString(s) => {
                (Expr::Literal(Value::String(s.clone())), SqlType::Unknown)
            }
            ast::Value::DollarQuotedString(d) => (
                Expr::Literal(Value::String(d.value.clone())),
                SqlType::Unknown,
            ),
            ast::Value::Boolean(b) => (Expr::Literal(Value::Bool(*b)), SqlType::Bool),
            ast::Value::Null => (Expr::Literal(Value::Null), SqlType::Unknown),
            ast::Value::Placeholder(p) => {
                let n: usize = p
                    .strip_prefix('$')
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n >= 1 && *n <= 65_535)
                    .ok_or_else(|| {
                        Error::invalid(SqlState::SYNTAX_ERROR, format!("invalid parameter {p}"))
                    })?;
                self.referenced = self.referenced.max(n);
                let ty = self.param_type(n - 1);
                (Expr::Param(n - 1), ty)
            }
            other => return Err(unsupported(format!("literal {other}"))),
        })
    }

    /// Binds an expression in `scope`.
    pub fn expr(&mut self, e: &ast::Expr, scope: &Scope) -> Result<(Expr, SqlType)> {
        if self.depth >= MAX_EXPRESSION_DEPTH {
            return Err(Error::LimitExceeded {
                code: SqlState::STATEMENT_TOO_COMPLEX,
                message: format!(
                    "statement too complex: expressions nest deeper than {MAX_EXPRESSION_DEPTH} (stack depth limit)"
                ),
            });
        }
        self.depth += 1;
        let bound = self.expr_inner(e, scope);
        self.depth -= 1;
        bound
    }

    fn expr_inner(&mut self, e: &ast::Expr, scope: &Scope) -> Result<(Expr, SqlType)> {
        use ast::Expr as A;
        match e {
            A::Identifier(i) => {
                let name = ident(i);
                match self.column_ref(std::slice::from_ref(&name), scope) {
                    Ok(r) => Ok(r),
                    Err(err) => {
                        // Keywords that read like columns: CURRENT_USER and friends.
                        if i.quote_style.is_none()
                            && let Some(f) =
                                ScalarFunc::by_name(&name).filter(|f| f.return_type(&[]).is_ok())
                            && matches!(
                                f,
                                ScalarFunc::CurrentUser
                                    | ScalarFunc::CurrentDatabase
                                    | ScalarFunc::CurrentSchema
                                    | ScalarFunc::Now
                                    | ScalarFunc::CurrentDate
                            )
                        {
                            let ty = f.return_type(&[])?;
                            return Ok((Expr::Func(f, vec![]), ty));
                        }
                        Err(err)
                    }
                }
            }
            A::CompoundIdentifier(parts) => {
                let names: Vec<String> = parts.iter().map(ident).collect();
                self.column_ref(&names, scope)
            }
            A::CompoundFieldAccess { root, access_chain } => {
                self.field_access(root, access_chain, scope)
            }
            A::Value(v) => self.literal(&v.value),
            A::Nested(inner) => self.expr(inner, scope),
            A::TypedString(ts) => {
                let ty = data_type(&ts.data_type)?;
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Ok((Expr::Literal(ty.parse_text(&text)?), ty))
            }
            A::Cast {
                expr,
                data_type: dt,
                ..
            } => self.cast(expr, dt, scope),
            A::UnaryOp { op, expr } => {
                let (inner, ty) = self.expr(expr, scope)?;
                match op {
                    ast::UnaryOperator::Not => {
                        Ok((Expr::Unary(UnaryOp::Not, Box::new(inner)), SqlType::Bool))
                    }
                    ast::UnaryOperator::Minus => match inner {
                        Expr::Literal(Value::Int(i)) => Ok((Expr::Literal(Value::Int(-i)), ty)),
                        other => Ok((Expr::Unary(UnaryOp::Neg, Box::new(other)), ty)),
                    },
                    ast::UnaryOperator::Plus => Ok((inner, ty)),
                    other => Err(unsupported(format!("operator {other}"))),
                }
            }
            A::BinaryOp { left, op, right } => self.binary(left, op, right, scope),
            A::IsNull(inner) | A::IsNotNull(inner) => {
                let (x, _) = self.expr(inner, scope)?;
                Ok((
                    Expr::IsNull(Box::new(x), matches!(e, A::IsNotNull(_))),
                    SqlType::Bool,
                ))
            }
            A::IsTrue(e) => self.is_bool(e, true, false, scope),
            A::IsNotTrue(e) => self.is_bool(e, true, true, scope),
            A::IsFalse(e) => self.is_bool(e, false, false, scope),
            A::IsNotFalse(e) => self.is_bool(e, false, true, scope),
            A::IsDistinctFrom(l, r) => self.binary(
                l,
                &ast::BinaryOperator::Custom("IS DISTINCT FROM".into()),
                r,
                scope,
            ),
            A::IsNotDistinctFrom(l, r) => self.binary(
                l,
                &ast::BinaryOperator::Custom("IS NOT DISTINCT FROM".into()),
                r,
                scope,
            ),
            A::In {
                expr,
                target: ast::InTarget::Subquery(q),
                negated,
                ..
            } => {
                let (inner, ty) = self.expr(expr, scope)?;
                let plan = self.subquery(scope, |b| b.one_column_subquery(q))?;
                let sub_ty = plan.columns().first().map(|c| c.ty.clone());
                // Values compare in the outer expression's type.
                let plan = match sub_ty {
                    Some(t) if t != ty && t != SqlType::Unknown && ty != SqlType::Unknown => {
                        common_type(&[t.clone(), ty.clone()])?;
                        Node::Project {
                            columns: vec![Column::new("?column?", ty.clone())],
                            exprs: vec![Expr::Cast(Box::new(Expr::Column(0)), ty.clone())],
                            input: Box::new(plan),
                        }
                    }
                    _ => plan,
                };
                Ok((
                    Expr::InSubquery {
                        expr: Box::new(inner),
                        plan: Box::new(plan),
                        negated: *negated,
                    },
                    SqlType::Bool,
                ))
            }
            A::Subquery(q) => {
                let plan = self.subquery(scope, |b| b.one_column_subquery(q))?;
                let ty = plan
                    .columns()
                    .first()
                    .map_or(SqlType::Text, |c| c.ty.clone());
                Ok((Expr::Subquery(SubqueryKind::Scalar, Box::new(plan)), ty))
            }
            A::Exists { subquery, negated } => {
                let plan = self.subquery(scope, |b| b.query(subquery))?;
                let e = Expr::Subquery(SubqueryKind::Exists, Box::new(plan));
                Ok((
                    if *negated {
                        Expr::Unary(UnaryOp::Not, Box::new(e))
                    } else {
                        e
                    },
                    SqlType::Bool,
                ))
            }
            A::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                ..
            } => {
                let (inner, ty) = self.expr(expr, scope)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let (b, bty) = self.expr(item, scope)?;
                    let (b, _) = self.coerce_to(b, bty, &ty)?;
                    items.push(b);
                }
                Ok((
                    Expr::InList {
                        expr: Box::new(inner),
                        list: items,
                        negated: *negated,
                    },
                    SqlType::Bool,
                ))
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (inner, ty) = self.expr(expr, scope)?;
                let (lo, lty) = self.expr(low, scope)?;
                let (lo, _) = self.coerce_to(lo, lty, &ty)?;
                let (hi, hty) = self.expr(high, scope)?;
                let (hi, _) = self.coerce_to(hi, hty, &ty)?;
                Ok((
                    Expr::Between {
                        expr: Box::new(inner),
                        low: Box::new(lo),
                        high: Box::new(hi),
                        negated: *negated,
                    },
                    SqlType::Bool,
                ))
            }
            A::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            }
            | A::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            } => {
                if *any {
                    return Err(unsupported("LIKE ANY"));
                }
                let (inner, ty) = self.expr(expr, scope)?;
                let (inner, _) = self.coerce_to(inner, ty, &SqlType::Text)?;
                let (pat, pty) = self.expr(pattern, scope)?;
                let (mut pat, _) = self.coerce_to(pat, pty, &SqlType::Text)?;
                if let Some(esc) = escape_char {
                    let (esc, ety) = self.expr(esc, scope)?;
                    let (esc, _) = self.coerce_to(esc, ety, &SqlType::Text)?;
                    pat = Expr::Func(ScalarFunc::LikeEscape, vec![pat, esc]);
                }
                Ok((
                    Expr::Like {
                        expr: Box::new(inner),
                        pattern: Box::new(pat),
                        negated: *negated,
                        case_insensitive: matches!(e, A::ILike { .. }),
                    },
                    SqlType::Bool,
                ))
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = match operand {
                    Some(o) => Some(self.expr(o, scope)?),
                    None => None,
                };
                let mut whens = Vec::new();
                let mut result_types = Vec::new();
                for cw in conditions {
                    let (w, wty) = self.expr(&cw.condition, scope)?;
                    let w = match &operand {
                        Some((_, oty)) => self.coerce_to(w, wty, oty)?.0,
                        None => w,
                    };
                    let (r, rty) = self.expr(&cw.result, scope)?;
                    result_types.push(rty);
                    whens.push((w, r));
                }
                let otherwise = match else_result {
                    Some(e) => {
                        let (x, t) = self.expr(e, scope)?;
                        result_types.push(t);
                        Some(Box::new(x))
                    }
                    None => None,
                };
                let ty = common_type(&result_types)?;
                Ok((
                    Expr::Case {
                        operand: operand.map(|(o, _)| Box::new(o)),
                        whens,
                        otherwise,
                    },
                    ty,
                ))
            }
            A::Function(f) => self.function(f, scope),
            A::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.expr(expr, scope)?.0];
                args.push(match substring_from {
                    Some(f) => self.expr(f, scope)?.0,
                    None => Expr::Literal(Value::Int(1)),
                });
                if let Some(f) = substring_for {
                    args.push(self.expr(f, scope)?.0);
                }
                Ok((Expr::Func(ScalarFunc::Substring, args), SqlType::Text))
            }
            A::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_characters.is_some() {
                    return Err(unsupported("TRIM with a character list"));
                }
                let func = match trim_where {
                    Some(ast::TrimWhereField::Leading) => ScalarFunc::Ltrim,
                    Some(ast::TrimWhereField::Trailing) => ScalarFunc::Rtrim,
                    _ => ScalarFunc::Btrim,
                };
                let mut args = vec![self.expr(expr, scope)?.0];
                if let Some(w) = trim_what {
                    args.push(self.expr(w, scope)?.0);
                }
                Ok((Expr::Func(func, args), SqlType::Text))
            }
            A::Extract { field, expr, .. } => {
                let (inner, ty) = self.expr(expr, scope)?;
                let (inner, _) = self.coerce_to(inner, ty, &SqlType::Timestamptz)?;
                let field = Expr::Literal(Value::String(field.to_string().to_lowercase()));
                Ok((
                    Expr::Func(ScalarFunc::Extract, vec![field, inner]),
                    SqlType::Numeric,
                ))
            }
            A::Ceil { expr, .. } | A::Floor { expr, .. } => {
                let (inner, ty) = self.expr(expr, scope)?;
                let f = if matches!(e, A::Ceil { .. }) {
                    ScalarFunc::Ceil
                } else {
                    ScalarFunc::Floor
                };
                let rt = f.return_type(std::slice::from_ref(&ty))?;
                Ok((Expr::Func(f, vec![inner]), rt))
            }
            A::Position { expr, r#in } => {
                let needle = self.expr(expr, scope)?.0;
                let hay = self.expr(r#in, scope)?.0;
                Ok((
                    Expr::Func(ScalarFunc::Position, vec![hay, needle]),
                    SqlType::Int4,
                ))
            }
            A::Collate { expr, .. } => self.expr(expr, scope),
            A::Array(arr) => self.array_constructor(arr, scope),
            A::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => self.quantified(left, compare_op, right, false, scope),
            A::AllOp {
                left,
                compare_op,
                right,
            } => self.quantified(left, compare_op, right, true, scope),
            other => Err(unsupported(format!("the expression {other}"))),
        }
    }

    /// `expr::type`.
    #[inline(never)]
    fn cast(
        &mut self,
        expr: &ast::Expr,
        dt: &ast::DataType,
        scope: &Scope,
    ) -> Result<(Expr, SqlType)> {
        let ty = data_type(dt)?;
        let (inner, from) = self.expr(expr, scope)?;
        if let SqlType::Reg(kind) = ty
            && (from.is_text() || from == SqlType::Unknown)
        {
            return Ok((self.lookup_expr(LookupKind::RegIn(kind), inner)?, ty));
        }
        if let SqlType::Reg(kind) = from
            && ty.is_text()
        {
            return Ok((self.lookup_expr(LookupKind::RegOut(kind), inner)?, ty));
        }
        if matches!(from, SqlType::Array(_)) && ty.is_text() {
            return Ok((Expr::Func(ScalarFunc::ArrayOut, vec![inner]), ty));
        }
        let inner = match inner {
            // A parameter of no type yet takes the cast's; one the client declared (or
            // an earlier use typed) otherwise is cast like any value.
            Expr::Param(i) if matches!(from, SqlType::Unknown) || from == ty => {
                self.set_param_type(i, &ty);
                Expr::Param(i)
            }
            // Literals are cast now, so bad text is an error before anything runs.
            Expr::Literal(v) => Expr::Literal(types::cast(v, &ty)?),
            other => Expr::Cast(Box::new(other), ty.clone()),
        };
        Ok((inner, ty))
    }

    /// `a.b[i].c`: dotted names, field paths and array subscripts.
    #[inline(never)]
    fn field_access(
        &mut self,
        root: &ast::Expr,
        access_chain: &[ast::AccessExpr],
        scope: &Scope,
    ) -> Result<(Expr, SqlType)> {
        use ast::Expr as A;
        // `t.col[i]`: the leading dotted names are one column reference.
        if let A::Identifier(first) = root
            && let Some(ast::AccessExpr::Dot(A::Identifier(_))) = access_chain.first()
        {
            let mut names = vec![first.clone()];
            let mut rest = access_chain;
            while let Some((ast::AccessExpr::Dot(A::Identifier(i)), tail)) = rest.split_first() {
                names.push(i.clone());
                rest = tail;
            }
            let root = A::CompoundIdentifier(names);
            if rest.is_empty() {
                return self.expr(&root, scope);
            }
            return self.expr(
                &A::CompoundFieldAccess {
                    root: Box::new(root),
                    access_chain: rest.to_vec(),
                },
                scope,
            );
        }
        let (mut base, base_ty) = self.expr(root, scope)?;
        if let Some(elem) = base_ty.element()
            && let [ast::AccessExpr::Subscript(ast::Subscript::Index { index })] = access_chain
        {
            let (ix, ity) = self.expr(index, scope)?;
            let (mut ix, _) = self.coerce_to(ix, ity, &SqlType::Int4)?;
            if base_ty.is_vector() {
                // int2vector and oidvector subscripts start at 0.
                ix = Expr::Binary(
                    BinOp::Add,
                    Box::new(ix),
                    Box::new(Expr::Literal(Value::Int(1))),
                );
            }
            return Ok((
                Expr::Func(ScalarFunc::ArraySubscript, vec![base, ix]),
                elem.clone(),
            ));
        }
        let mut steps = Vec::new();
        for access in access_chain {
            match access {
                ast::AccessExpr::Dot(ast::Expr::Identifier(i)) => {
                    steps.push(PathStep::Key(ident(i)))
                }
                // A jsonb subscript counts from 0, and from the end when negative, as
                // in PostgreSQL (SQL arrays, above, count from 1).
                ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => {
                    let (ix, _) = self.expr(index, scope)?;
                    match ix {
                        Expr::Literal(Value::Int(n)) => steps.push(PathStep::Index(n)),
                        Expr::Literal(Value::String(s)) => steps.push(PathStep::Key(s)),
                        _ => return Err(unsupported("a non-constant subscript")),
                    }
                }
                other => return Err(unsupported(format!("field access {other}"))),
            }
        }
        base = Expr::Path(Box::new(base), steps);
        Ok((base, SqlType::Jsonb))
    }

    /// `ARRAY[a, b, ...]`.
    #[inline(never)]
    fn array_constructor(&mut self, arr: &ast::Array, scope: &Scope) -> Result<(Expr, SqlType)> {
        let mut items = Vec::with_capacity(arr.elem.len());
        let mut tys = Vec::with_capacity(arr.elem.len());
        for e in &arr.elem {
            let (x, t) = self.expr(e, scope)?;
            items.push(x);
            tys.push(t);
        }
        let ty = ScalarFunc::MakeArray.return_type(&tys)?;
        let elem = ty.element().cloned().unwrap_or(SqlType::Text);
        let mut out = Vec::with_capacity(items.len());
        for (x, t) in items.into_iter().zip(tys) {
            out.push(self.coerce_to(x, t, &elem)?.0);
        }
        if out.iter().all(|e| matches!(e, Expr::Literal(_))) {
            let values = out
                .into_iter()
                .map(|e| match e {
                    Expr::Literal(v) => types::cast(v, &elem),
                    _ => unreachable!(),
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok((Expr::Literal(Value::Array(values)), ty));
        }
        Ok((Expr::Func(ScalarFunc::MakeArray, out), ty))
    }

    /// Binds a WHERE or HAVING condition: it must be boolean; an untyped literal or
    /// parameter is read as one (`WHERE 'false'` is false, `WHERE 'x'` is 22P02).
    pub fn condition(&mut self, e: &ast::Expr, scope: &Scope, clause: &str) -> Result<Expr> {
        let (x, ty) = self.expr(e, scope)?;
        let (x, ty) = self.coerce_to(x, ty, &SqlType::Bool)?;
        check_bool(&ty, clause)?;
        Ok(x)
    }

    fn is_bool(
        &mut self,
        e: &ast::Expr,
        value: bool,
        negated: bool,
        scope: &Scope,
    ) -> Result<(Expr, SqlType)> {
        let (inner, _) = self.expr(e, scope)?;
        Ok((Expr::IsBool(Box::new(inner), value, negated), SqlType::Bool))
    }

    fn binary(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, SqlType)> {
        use ast::BinaryOperator as B;
        let bop = match op {
            // `OPERATOR(pg_catalog.~)`: the operator named, from pg_catalog.
            B::PGCustomBinaryOperator(parts) => {
                return self.binary(left, &pg_catalog_operator(parts)?, right, scope);
            }
            other => {
                binary_operator(other).ok_or_else(|| unsupported(format!("operator {other}")))?
            }
        };
        let (l, lty) = self.expr(left, scope)?;
        let (r, rty) = self.expr(right, scope)?;
        let result =
            |ty: SqlType, l: Expr, r: Expr| Ok((Expr::Binary(bop, Box::new(l), Box::new(r)), ty));
        match bop {
            BinOp::RegexMatch
            | BinOp::RegexNotMatch
            | BinOp::RegexIMatch
            | BinOp::RegexNotIMatch => {
                let (l, _) = self.coerce_to(l, lty, &SqlType::Text)?;
                let (r, _) = self.coerce_to(r, rty, &SqlType::Text)?;
                result(SqlType::Bool, l, r)
            }
            BinOp::And | BinOp::Or => {
                for t in [&lty, &rty] {
                    if !matches!(
                        t,
                        SqlType::Bool | SqlType::Unknown | SqlType::Jsonb | SqlType::Json
                    ) {
                        return Err(Error::invalid(
                            types::DATATYPE_MISMATCH,
                            format!(
                                "argument of {} must be type boolean, not type {}",
                                bop.symbol(),
                                t.name()
                            ),
                        ));
                    }
                }
                let (l, _) = self.coerce_to(l, lty, &SqlType::Bool)?;
                let (r, _) = self.coerce_to(r, rty, &SqlType::Bool)?;
                result(SqlType::Bool, l, r)
            }
            BinOp::Arrow | BinOp::LongArrow => {
                let (r, _) = self.coerce_to(r, rty, &SqlType::Text)?;
                let ty = if bop == BinOp::Arrow {
                    SqlType::Jsonb
                } else {
                    SqlType::Text
                };
                result(ty, l, r)
            }
            BinOp::Concat => {
                let (l, lty) = self.coerce_to(l, lty, &SqlType::Text)?;
                let (r, rty) = self.coerce_to(r, rty, &SqlType::Text)?;
                let ty = if lty == SqlType::Jsonb && rty == SqlType::Jsonb {
                    SqlType::Jsonb
                } else {
                    SqlType::Text
                };
                result(ty, l, r)
            }
            _ => {
                // Untyped sides take the other side's type.
                let (l, lty) = self.coerce_to(l, lty, &rty)?;
                let (r, rty) = self.coerce_to(r, rty, &lty)?;
                let (lg, rg) = (type_group(&lty), type_group(&rty));
                if lg != 0 && rg != 0 && lg != rg {
                    return Err(Error::invalid(
                        UNDEFINED_FUNCTION,
                        format!(
                            "operator does not exist: {} {} {}",
                            lty.name(),
                            bop.symbol(),
                            rty.name()
                        ),
                    ));
                }
                if bop.is_comparison()
                    || matches!(bop, BinOp::IsDistinctFrom | BinOp::IsNotDistinctFrom)
                {
                    return result(SqlType::Bool, l, r);
                }
                if (lg != 0 && lg != 1) || (rg != 0 && rg != 1) {
                    return Err(Error::invalid(
                        UNDEFINED_FUNCTION,
                        format!(
                            "operator does not exist: {} {} {}",
                            lty.name(),
                            bop.symbol(),
                            rty.name()
                        ),
                    ));
                }
                let ty = match (&lty, &rty) {
                    (a, b) if a.is_json() || b.is_json() => SqlType::Jsonb,
                    (SqlType::Unknown, b) => b.clone(),
                    (a, SqlType::Unknown) => a.clone(),
                    (a, b) if a.is_integer() && b.is_integer() => {
                        let ty = if *a == SqlType::Int8 || *b == SqlType::Int8 {
                            SqlType::Int8
                        } else if *a == SqlType::Int2 && *b == SqlType::Int2 {
                            SqlType::Int2
                        } else {
                            SqlType::Int4
                        };
                        if ty != SqlType::Int8 {
                            // Arithmetic is done in 64 bits; the cast checks the result
                            // fits the narrower type, as PostgreSQL does (22003).
                            let e = Expr::Binary(bop, Box::new(l), Box::new(r));
                            return Ok((Expr::Cast(Box::new(e), ty.clone()), ty));
                        }
                        ty
                    }
                    _ => common_type(&[lty.clone(), rty.clone()])?,
                };
                result(ty, l, r)
            }
        }
    }

    /// `left op ANY (right)` / `left op ALL (right)`: over an array, or a subquery
    /// (`= ANY (subquery)` is IN, `<> ALL (subquery)` is NOT IN).
    fn quantified(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        all: bool,
        scope: &Scope,
    ) -> Result<(Expr, SqlType)> {
        use ast::BinaryOperator as B;
        let inner = match right {
            ast::Expr::Nested(e) => e.as_ref(),
            e => e,
        };
        if let ast::Expr::Subquery(q) = inner {
            let negated = match (op, all) {
                (B::Eq, false) => false,
                (B::NotEq, true) => true,
                _ => {
                    return Err(unsupported(format!(
                        "{op} {} (subquery)",
                        if all { "ALL" } else { "ANY" }
                    )));
                }
            };
            let in_expr = ast::Expr::In {
                expr: Box::new(left.clone()),
                target: ast::InTarget::Subquery(q.clone()),
                negated,
                global: false,
            };
            return self.expr(&in_expr, scope);
        }
        let bop = binary_operator(op)
            .filter(|b| b.is_comparison() || matches!(b, BinOp::RegexMatch | BinOp::RegexNotMatch))
            .ok_or_else(|| unsupported(format!("operator {op} with ANY/ALL")))?;
        let (l, lty) = self.expr(left, scope)?;
        let (r, rty) = self.expr(right, scope)?;
        let (l, lty) = match &rty {
            SqlType::Array(e) => self.coerce_to(l, lty, e)?,
            _ => (l, lty),
        };
        let target = SqlType::Array(Box::new(if lty == SqlType::Unknown {
            SqlType::Text
        } else {
            lty.clone()
        }));
        let (r, _) = self.coerce_to(r, rty, &target)?;
        Ok((
            Expr::Quantified {
                op: bop,
                all,
                left: Box::new(l),
                right: Box::new(r),
            },
            SqlType::Bool,
        ))
    }

    /// `array_agg(x [ORDER BY ...])` and `string_agg(x, separator [ORDER BY ...])`: the
    /// argument is packed with its sort keys (see [`AggCall::packed_order`]).
    fn collecting_aggregate(
        &mut self,
        func: AggFunc,
        args: &[&ast::Expr],
        distinct: bool,
        order: Option<&Vec<ast::OrderByExpr>>,
        scope: &Scope,
    ) -> Result<(Expr, SqlType)> {
        let (value, separator) = match (func, args) {
            (AggFunc::ArrayAgg, [v]) => (*v, None),
            (AggFunc::StringAgg, [v, sep]) => {
                let (sep, _) = self.expr(sep, scope)?;
                match sep {
                    Expr::Literal(text) => (
                        *v,
                        Some(crate::query::expr::as_text(&text).unwrap_or_default()),
                    ),
                    _ => return Err(unsupported("a non-constant string_agg separator")),
                }
            }
            _ => {
                return Err(Error::invalid(
                    UNDEFINED_FUNCTION,
                    format!(
                        "function {}() takes {} argument(s)",
                        func.name(),
                        if func == AggFunc::ArrayAgg { 1 } else { 2 }
                    ),
                ));
            }
        };
        let (x, ty) = self.expr(value, scope)?;
        let (x, ty) = if func == AggFunc::StringAgg {
            self.coerce_to(x, ty, &SqlType::Text)?
        } else {
            (x, ty)
        };
        let mut pack = vec![x];
        let mut desc = Vec::new();
        for key in order.into_iter().flatten() {
            let (k, _) = self.expr(&key.expr, scope)?;
            pack.push(k);
            desc.push(matches!(key.options.sort, Some(ast::OrderBySort::Desc)));
        }
        for e in &pack {
            let mut nested = false;
            e.walk(&mut |x| nested |= matches!(x, Expr::Agg(_)));
            if nested {
                return Err(Error::invalid(
                    GROUPING_ERROR,
                    "aggregate function calls cannot be nested",
                ));
            }
        }
        let result = aggregate_result_type(func, &ty);
        Ok((
            Expr::Agg(AggCall {
                func,
                arg: Some(Box::new(Expr::Func(ScalarFunc::MakeArray, pack))),
                distinct,
                arg_type: ty,
                separator,
                packed_order: Some(desc),
            }),
            result,
        ))
    }

    /// Functions answered from the catalog or the session: None if `name` is not one.
    fn catalog_function(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
    ) -> Result<Option<(Expr, SqlType)>> {
        let kind = match (name, args.len()) {
            ("current_setting", 1) => LookupKind::Setting,
            ("current_setting", 2) => LookupKind::SettingOrNull,
            ("pg_get_indexdef", 1..=3) => LookupKind::IndexDef,
            ("pg_get_constraintdef", 1 | 2) => LookupKind::ConstraintDef,
            (
                "pg_relation_size" | "pg_total_relation_size" | "pg_table_size" | "pg_indexes_size",
                1 | 2,
            ) => LookupKind::RelationSize,
            ("to_regclass", 1) => LookupKind::RegInOrNull(types::RegKind::Class),
            ("to_regproc" | "to_regprocedure", 1) => LookupKind::RegInOrNull(types::RegKind::Proc),
            ("to_regnamespace", 1) => LookupKind::RegInOrNull(types::RegKind::Namespace),
            ("pg_typeof", 1) => {
                let (arg, ty) = self.expr(args[0], scope)?;
                let name = Expr::Literal(Value::String(ty.name()));
                // The type is known now, but an aggregate or window call in the argument
                // still makes the query one (`SELECT pg_typeof(avg(n)) FROM t` is one
                // row): the call stays in the tree, in a branch never taken.
                let mut calls = false;
                arg.walk(&mut |x| calls |= matches!(x, Expr::Agg(_) | Expr::Window(_)));
                if !calls {
                    return Ok(Some((name, SqlType::Text)));
                }
                return Ok(Some((
                    Expr::Case {
                        operand: None,
                        whens: vec![(Expr::Literal(Value::Bool(false)), arg)],
                        otherwise: Some(Box::new(name)),
                    },
                    SqlType::Text,
                )));
            }
            _ => return Ok(None),
        };
        let (mut arg, mut aty) = self.expr(args[0], scope)?;
        if kind == LookupKind::RelationSize && matches!(aty, SqlType::Text | SqlType::Unknown) {
            // `pg_relation_size('items')`: the name is read as a regclass, as in PostgreSQL.
            arg = self.lookup_expr(LookupKind::RegIn(types::RegKind::Class), arg)?;
            aty = SqlType::Reg(types::RegKind::Class);
        }
        let (mut arg, _) = self.coerce_to(arg, aty, &SqlType::Text)?;
        if kind == LookupKind::IndexDef && args.len() >= 2 {
            // pg_get_indexdef(oid, column, pretty): the key is `oid/column`.
            let (col, cty) = self.expr(args[1], scope)?;
            let (col, _) = self.coerce_to(col, cty, &SqlType::Int4)?;
            arg = Expr::Func(
                ScalarFunc::ConcatWs,
                vec![Expr::Literal(Value::String("/".into())), arg, col],
            );
        }
        let ty = match kind {
            LookupKind::RelationSize => SqlType::Int8,
            LookupKind::RegInOrNull(k) => SqlType::Reg(k),
            _ => SqlType::Text,
        };
        Ok(Some((self.lookup_expr(kind, arg)?, ty)))
    }

    fn function(&mut self, f: &ast::Function, scope: &Scope) -> Result<(Expr, SqlType)> {
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident)
            .unwrap_or_default();
        if f.filter.is_some() {
            return Err(unsupported("aggregate FILTER"));
        }
        if !f.within_group.is_empty() {
            return Err(unsupported("WITHIN GROUP"));
        }
        if f.null_treatment.is_some() {
            return Err(unsupported("IGNORE/RESPECT NULLS"));
        }
        if !matches!(f.parameters, ast::FunctionArguments::None) {
            return Err(unsupported("parameterized function calls"));
        }
        let mut agg_order: Option<&Vec<ast::OrderByExpr>> = None;
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (Vec::<&ast::Expr>::new(), false, false),
            ast::FunctionArguments::Subquery(q) if name == "array" => {
                let plan = self.subquery(scope, |b| b.one_column_subquery(q))?;
                let elem = plan
                    .columns()
                    .first()
                    .map_or(SqlType::Text, |c| c.ty.clone());
                return Ok((
                    Expr::Subquery(SubqueryKind::Array, Box::new(plan)),
                    SqlType::Array(Box::new(elem)),
                ));
            }
            ast::FunctionArguments::Subquery(_) => return Err(unsupported("a subquery argument")),
            ast::FunctionArguments::List(list) => {
                for clause in &list.clauses {
                    match clause {
                        ast::FunctionArgumentClause::OrderBy(keys)
                            if matches!(name.as_str(), "array_agg" | "string_agg") =>
                        {
                            agg_order = Some(keys)
                        }
                        _ => return Err(unsupported(format!("clauses in {name}()"))),
                    }
                }
                let distinct = matches!(
                    list.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut args = Vec::new();
                let mut star = false;
                for a in &list.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(e),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        other => return Err(unsupported(format!("argument {other}"))),
                    }
                }
                (args, distinct, star)
            }
        };
        if let Some(over) = &f.over {
            self.cacheable.set(false);
            return self.window_call(&name, &args, distinct, star, over, scope);
        }
        if let Some(agg @ (AggFunc::ArrayAgg | AggFunc::StringAgg)) = is_agg_name(&name) {
            return self.collecting_aggregate(agg, &args, distinct, agg_order, scope);
        }
        if let Some(agg) = is_agg_name(&name) {
            let func = if star { AggFunc::CountStar } else { agg };
            if star && agg != AggFunc::Count {
                return Err(Error::invalid(
                    SqlState::SYNTAX_ERROR,
                    format!("{name}(*) is not valid"),
                ));
            }
            let (arg, arg_type) = match (func, args.as_slice()) {
                (AggFunc::CountStar, []) => (None, SqlType::Unknown),
                (_, [a]) => {
                    let (e, t) = self.expr(a, scope)?;
                    if window::contains_window(&e) {
                        return Err(window::in_aggregate());
                    }
                    let mut nested = false;
                    e.walk(&mut |x| nested |= matches!(x, Expr::Agg(_)));
                    if nested {
                        return Err(Error::invalid(
                            GROUPING_ERROR,
                            "aggregate function calls cannot be nested",
                        ));
                    }
                    (Some(Box::new(e)), t)
                }
                _ => {
                    return Err(Error::invalid(
                        UNDEFINED_FUNCTION,
                        format!("function {name} takes exactly one argument"),
                    ));
                }
            };
            if matches!(func, AggFunc::Sum | AggFunc::Avg)
                && !(arg_type.is_numeric() || arg_type.is_json() || arg_type == SqlType::Unknown)
            {
                return Err(Error::invalid(
                    UNDEFINED_FUNCTION,
                    format!("function {name}({}) does not exist", arg_type.name()),
                ));
            }
            let ty = aggregate_result_type(func, &arg_type);
            return Ok((
                Expr::Agg(AggCall {
                    func,
                    arg,
                    distinct,
                    arg_type,
                    separator: None,
                    packed_order: None,
                }),
                ty,
            ));
        }
        window::check_needs_over(&name)?;
        self.cacheable.set(false);
        if !star
            && !distinct
            && let Some(bound) = self.catalog_function(&name, &args, scope)?
        {
            return Ok(bound);
        }
        if star || distinct {
            return Err(unsupported(format!("{name}(*) or DISTINCT in {name}()")));
        }
        let func = ScalarFunc::by_name(&name).ok_or_else(|| {
            Error::invalid(
                UNDEFINED_FUNCTION,
                format!("function {name}() does not exist"),
            )
        })?;
        let mut bound = Vec::with_capacity(args.len());
        let mut tys = Vec::with_capacity(args.len());
        for a in &args {
            let (e, t) = self.expr(a, scope)?;
            bound.push(e);
            tys.push(t);
        }
        // Untyped arguments of text functions are text.
        let ty = func.return_type(&tys)?;
        let mut out = Vec::with_capacity(bound.len());
        for (e, t) in bound.into_iter().zip(tys) {
            let target = match func {
                ScalarFunc::DateTrunc | ScalarFunc::DatePart if !out.is_empty() => {
                    SqlType::Timestamptz
                }
                ScalarFunc::Coalesce
                | ScalarFunc::Greatest
                | ScalarFunc::Least
                | ScalarFunc::NullIf => ty.clone(),
                _ => SqlType::Text,
            };
            out.push(self.coerce_to(e, t, &target)?.0);
        }
        Ok((Expr::Func(func, out), ty))
    }

    // ---- queries --------------------------------------------------------------------

    /// Binds a query to a plan.
    /// A statement's own query: [`Binder::query`], with `reg*` columns given as the
    /// names they denote (text), as PostgreSQL's output functions print them
    /// (`conrelid::regclass` shows `orders`). Inside the query they stay OIDs.
    pub fn statement_query(&mut self, q: &ast::Query) -> Result<Node> {
        let node = self.query(q)?;
        let columns = node.columns();
        if !columns.iter().any(|c| matches!(c.ty, SqlType::Reg(_))) {
            return Ok(node);
        }
        let mut exprs = Vec::with_capacity(columns.len());
        let mut out = Vec::with_capacity(columns.len());
        for (i, c) in columns.into_iter().enumerate() {
            match c.ty {
                SqlType::Reg(kind) => {
                    exprs.push(self.lookup_expr(LookupKind::RegOut(kind), Expr::Column(i))?);
                    out.push(Column {
                        ty: SqlType::Text,
                        ..c
                    });
                }
                _ => {
                    exprs.push(Expr::Column(i));
                    out.push(c);
                }
            }
        }
        Ok(Node::Project {
            input: Box::new(node),
            exprs,
            columns: out,
        })
    }

    pub fn query(&mut self, q: &ast::Query) -> Result<Node> {
        if q.fetch.is_some() || !q.locks.is_empty() {
            return Err(unsupported("FETCH or FOR UPDATE"));
        }
        if q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
        {
            return Err(unsupported("this query clause"));
        }
        let outer = self.ctes.len();
        let result = self.query_with_ctes(q);
        self.ctes.truncate(outer);
        result
    }

    fn query_with_ctes(&mut self, q: &ast::Query) -> Result<Node> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = ident(&cte.alias.name);
                let node = if with.recursive && mentions(&cte.query, &name) {
                    self.recursive_cte(&name, cte)?
                } else {
                    let node = self.query(&cte.query)?;
                    aliased(node, name.clone(), Some(&cte.alias))?.0
                };
                self.ctes.push((name, node));
            }
        }
        match q.body.as_ref() {
            ast::SetExpr::Select(s) => self.select(s, q.order_by.as_ref(), q.limit_clause.as_ref()),
            body => {
                let node = self.set_expr(body)?;
                self.order_and_limit(node, q.order_by.as_ref(), q.limit_clause.as_ref())
            }
        }
    }

    /// `GRAPH_TABLE (...)`, which the dialect turned into the table function
    /// `tissdb_graph_table('<text>')`: bound as the SQL it stands for.
    /// Set-returning functions in a select list (`unnest(a)`, `generate_series(1, n)`,
    /// `(information_schema._pg_expandarray(k)).n`, at the top of an item or under a
    /// field access): they move into a ProjectSet under the projection, and the item
    /// reads their column instead.
    fn select_list_sets(
        &mut self,
        node: Node,
        mut scope: Scope,
        projection: &[ast::SelectItem],
    ) -> Result<(Node, Scope, Vec<ast::SelectItem>)> {
        let mut funcs = Vec::new();
        let mut extra = Vec::new();
        let mut out = Vec::with_capacity(projection.len());
        for item in projection {
            let (expr, alias) = match item {
                ast::SelectItem::UnnamedExpr(e) => (e, None),
                ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
                other => {
                    out.push(other.clone());
                    continue;
                }
            };
            let (call, rebuild): (_, Box<dyn Fn(ast::Expr) -> ast::Expr>) = match expr {
                ast::Expr::CompoundFieldAccess { root, access_chain } => match srf_call(root) {
                    Some(c) => {
                        let chain = access_chain.clone();
                        (
                            Some(c),
                            Box::new(move |r| ast::Expr::CompoundFieldAccess {
                                root: Box::new(r),
                                access_chain: chain.clone(),
                            }),
                        )
                    }
                    None => (None, Box::new(|r| r)),
                },
                e => (srf_call(e), Box::new(|r| r)),
            };
            let Some((func, f)) = call else {
                out.push(item.clone());
                continue;
            };
            let args: Vec<&ast::Expr> = match &f.args {
                ast::FunctionArguments::List(list) => list
                    .args
                    .iter()
                    .map(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                        other => Err(unsupported(format!("argument {other}"))),
                    })
                    .collect::<Result<_>>()?,
                _ => Vec::new(),
            };
            let mut bound = Vec::new();
            let mut tys = Vec::new();
            for a in args {
                let (x, t) = self.expr(a, &scope)?;
                bound.push(x);
                tys.push(t);
            }
            let cols = func.columns(&tys)?;
            let ty = match cols.as_slice() {
                [(_, t)] => t.clone(),
                _ => SqlType::Jsonb,
            };
            let name = format!("#set{}", funcs.len());
            funcs.push((func, bound));
            extra.push((name.clone(), ty));
            let column_name = match (alias, expr) {
                (Some(a), _) => ident(a),
                (None, ast::Expr::CompoundFieldAccess { access_chain, .. }) => {
                    match access_chain.last() {
                        Some(ast::AccessExpr::Dot(ast::Expr::Identifier(i))) => ident(i),
                        _ => func.name().to_string(),
                    }
                }
                (None, _) => func.name().to_string(),
            };
            let reference = rebuild(ast::Expr::Identifier(ast::Ident::with_quote('"', name)));
            out.push(ast::SelectItem::ExprWithAlias {
                expr: reference,
                alias: ast::Ident::with_quote('"', column_name),
            });
        }
        if funcs.is_empty() {
            return Ok((node, scope, out));
        }
        let star = scope.star_columns();
        let mut columns = node.columns();
        for (name, ty) in &extra {
            columns.push(Column::new(name.clone(), ty.clone()));
            scope.columns.push(ScopeColumn {
                table: None,
                name: name.clone(),
                ty: ty.clone(),
                hidden: false,
            });
        }
        scope.star = Some(star);
        let node = Node::ProjectSet {
            input: Box::new(node),
            funcs,
            columns,
        };
        Ok((node, scope, out))
    }

    /// A scalar function in FROM (`FROM string_to_array(...) s`): one row, one column
    /// named by the alias (or the function).
    fn scalar_function_table(
        &mut self,
        name: &ast::ObjectName,
        function: &str,
        args: &ast::TableFunctionArgs,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Node, Scope)> {
        let call = ast::Expr::Function(ast::Function {
            name: name.clone(),
            uses_odbc_syntax: false,
            parameters: ast::FunctionArguments::None,
            args: ast::FunctionArguments::List(ast::FunctionArgumentList {
                duplicate_treatment: None,
                args: args.args.clone(),
                clauses: Vec::new(),
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: Vec::new(),
        });
        let empty = Scope::of_columns(None, Vec::new());
        let (e, ty) = self.expr(&call, &empty)?;
        let table = alias
            .map(|a| ident(&a.name))
            .unwrap_or_else(|| function.to_string());
        let column = match alias {
            Some(a) if a.columns.is_empty() => table.clone(),
            _ => function.to_string(),
        };
        let node = Node::Values {
            rows: vec![vec![e]],
            columns: vec![Column::new(column, ty)],
        };
        aliased(node, table, alias)
    }

    /// A set-returning function in FROM. A one-column function aliased `AS s` names its
    /// column `s`, as PostgreSQL does.
    fn table_function(
        &mut self,
        func: TableFunc,
        args: &ast::TableFunctionArgs,
        alias: Option<&ast::TableAlias>,
        ordinality: bool,
    ) -> Result<(Node, Scope)> {
        let empty = Scope::of_columns(None, Vec::new());
        let mut bound = Vec::new();
        let mut tys = Vec::new();
        for a in &args.args {
            let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a else {
                return Err(unsupported(format!("argument {a} of {}()", func.name())));
            };
            // Arguments may read the queries around (a correlated subquery), not a
            // table beside it (that would be LATERAL).
            let (x, t) = self.expr(e, &empty)?;
            bound.push(x);
            tys.push(t);
        }
        if func == TableFunc::GenerateSeries {
            for (x, t) in bound.iter_mut().zip(tys.iter_mut()) {
                let (e, ty) = self.coerce_to(x.clone(), t.clone(), &SqlType::Int8)?;
                *x = e;
                *t = ty;
            }
        }
        let mut columns: Vec<Column> = func
            .columns(&tys)?
            .into_iter()
            .map(|(n, t)| Column::new(n, t))
            .collect();
        let table = alias
            .map(|a| ident(&a.name))
            .unwrap_or_else(|| func.name().to_string());
        if let Some(a) = alias
            && a.columns.is_empty()
            && columns.len() == 1
        {
            columns[0].name = table.clone();
        }
        if ordinality {
            columns.push(Column::new("ordinality", SqlType::Int8));
        }
        let node = Node::TableFunction {
            func,
            args: bound,
            columns,
            ordinality,
        };
        aliased(node, table, alias)
    }

    fn graph_table(
        &mut self,
        name: &ast::ObjectName,
        args: &ast::TableFunctionArgs,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Node, Scope)> {
        let function = table_name(name)?;
        let text = match args.args.as_slice() {
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Value(v)))]
                if function == tissdb_dialect::graph::GRAPH_TABLE_FUNCTION =>
            {
                match &v.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    _ => return Err(unsupported("table functions")),
                }
            }
            _ => return Err(unsupported(format!("table function {function}"))),
        };
        let sql = crate::query::graph::graph_table_sql(self.catalog, &text)?;
        let statements = tissdb_dialect::parse(&sql).map_err(|e| Error::Syntax {
            message: format!("in the query GRAPH_TABLE stands for ({sql}): {e}"),
            position: None,
        })?;
        let query = match statements.as_slice() {
            [tissdb_dialect::TissStatement::Sql(s)] => match s.as_ref() {
                ast::Statement::Query(q) => q.clone(),
                _ => return Err(Error::Internal("GRAPH_TABLE gave no query".into())),
            },
            _ => return Err(Error::Internal("GRAPH_TABLE gave no query".into())),
        };
        let node = self.query(&query)?;
        let table = alias.map_or_else(|| "graph_table".to_string(), |a| ident(&a.name));
        aliased(node, table, alias)
    }

    /// Binds a subquery of an expression over `scope`, which its columns may reference.
    fn subquery(
        &mut self,
        scope: &Scope,
        bind: impl FnOnce(&mut Self) -> Result<Node>,
    ) -> Result<Node> {
        self.outer.push(scope.clone());
        let plan = bind(self);
        self.outer.pop();
        plan
    }

    /// `LATERAL (subquery) alias` beside what is to its left (`left`): bound with the
    /// left columns as its outer row. A function call in FROM whose arguments read a
    /// table to its left (`FROM a, unnest(a.tags) t`) is LATERAL too, as in PostgreSQL.
    /// None if `relation` is neither.
    fn lateral(
        &mut self,
        relation: &ast::TableFactor,
        left: &Scope,
    ) -> Result<Option<(Node, Scope)>> {
        if let ast::TableFactor::Table { args: Some(_), .. } = relation {
            let mut scope = None;
            let node = self.subquery(left, |b| {
                let (node, s) = b.table_factor(relation)?;
                scope = Some(s);
                Ok(node)
            })?;
            return Ok(match scope {
                Some(scope) if crate::query::exec::reads_level(&node, 1) => Some((node, scope)),
                _ => None,
            });
        }
        let ast::TableFactor::Derived {
            lateral: true,
            subquery,
            alias,
            ..
        } = relation
        else {
            return Ok(None);
        };
        let Some(alias) = alias else {
            return Err(Error::invalid(
                SqlState::SYNTAX_ERROR,
                "subquery in FROM must have an alias",
            ));
        };
        let node = self.subquery(left, |b| b.query(subquery))?;
        aliased(node, ident(&alias.name), Some(alias)).map(Some)
    }

    /// A subquery used as a value: it must give one column.
    fn one_column_subquery(&mut self, q: &ast::Query) -> Result<Node> {
        let plan = self.query(q)?;
        if plan.columns().len() != 1 {
            return Err(Error::invalid(
                SqlState::SYNTAX_ERROR,
                "subquery must return only one column",
            ));
        }
        Ok(plan)
    }

    /// The plan of a CTE named in FROM, if `name` is one.
    fn cte(&self, name: &ast::ObjectName) -> Result<Option<Node>> {
        if name.0.len() != 1 {
            return Ok(None);
        }
        let n = table_name(name)?;
        Ok(self
            .ctes
            .iter()
            .rev()
            .find(|(c, _)| *c == n)
            .map(|(_, node)| node.clone()))
    }

    /// `name AS (anchor UNION [ALL] recursive part)`, the recursive part reading `name`
    /// as the previous round's rows.
    fn recursive_cte(&mut self, name: &str, cte: &ast::Cte) -> Result<Node> {
        let ast::SetExpr::SetOperation {
            left,
            op: ast::SetOperator::Union,
            set_quantifier,
            right,
        } = cte.query.body.as_ref()
        else {
            return Err(Error::invalid(
                SqlState("42P19"),
                format!(
                    "recursive query \"{name}\" does not have the form non-recursive-term UNION [ALL] recursive-term"
                ),
            ));
        };
        if cte.query.order_by.is_some() || cte.query.limit_clause.is_some() {
            return Err(unsupported("ORDER BY or LIMIT in a recursive query"));
        }
        let all = set_quantifier_all(set_quantifier)?;
        let anchor = self.set_expr(left)?;
        let (anchor, _) = aliased(anchor, name.to_string(), Some(&cte.alias))?;
        let mut columns = anchor.columns();
        for c in &mut columns {
            if c.ty == SqlType::Unknown {
                c.ty = SqlType::Text;
            }
        }
        let id = self.recursive_unions;
        self.recursive_unions += 1;
        self.ctes.push((
            name.to_string(),
            Node::WorkTable {
                id,
                name: name.to_string(),
                columns: columns.clone(),
            },
        ));
        let recursive = self.set_expr(right);
        self.ctes.pop();
        let recursive = recursive?;
        let rcols = recursive.columns();
        if rcols.len() != columns.len() {
            return Err(Error::invalid(
                SqlState::SYNTAX_ERROR,
                "each UNION query must have the same number of columns",
            ));
        }
        // The recursive part's rows take the anchor's column types.
        let exprs = rcols
            .iter()
            .zip(&columns)
            .enumerate()
            .map(|(i, (r, a))| {
                if r.ty == a.ty || r.ty == SqlType::Unknown {
                    Expr::Column(i)
                } else {
                    Expr::Cast(Box::new(Expr::Column(i)), a.ty.clone())
                }
            })
            .collect();
        let recursive = Node::Project {
            input: Box::new(recursive),
            exprs,
            columns: columns.clone(),
        };
        Ok(Node::RecursiveUnion {
            id,
            anchor: Box::new(anchor),
            recursive: Box::new(recursive),
            all,
        })
    }

    /// A query body: SELECT, VALUES, a parenthesized query, or a set operation.
    fn set_expr(&mut self, body: &ast::SetExpr) -> Result<Node> {
        match body {
            ast::SetExpr::Select(s) => self.select(s, None, None),
            ast::SetExpr::Values(v) => self.values(v, &[]),
            ast::SetExpr::Query(inner) => self.query(inner),
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let op = match op {
                    ast::SetOperator::Union => SetOpKind::Union,
                    ast::SetOperator::Intersect => SetOpKind::Intersect,
                    ast::SetOperator::Except | ast::SetOperator::Minus => SetOpKind::Except,
                };
                let all = set_quantifier_all(set_quantifier)?;
                let l = self.set_expr(left)?;
                let r = self.set_expr(right)?;
                let (lc, rc) = (l.columns(), r.columns());
                if lc.len() != rc.len() {
                    return Err(Error::invalid(
                        SqlState::SYNTAX_ERROR,
                        format!(
                            "each {} query must have the same number of columns",
                            match op {
                                SetOpKind::Union => "UNION",
                                SetOpKind::Intersect => "INTERSECT",
                                SetOpKind::Except => "EXCEPT",
                            }
                        ),
                    ));
                }
                let mut types = Vec::with_capacity(lc.len());
                for (a, b) in lc.iter().zip(&rc) {
                    types.push(common_type(&[a.ty.clone(), b.ty.clone()])?);
                }
                let conform = |node: Node, cols: &[Column]| -> Node {
                    if cols.iter().zip(&types).all(|(c, t)| c.ty == *t) {
                        return node;
                    }
                    let exprs = cols
                        .iter()
                        .zip(&types)
                        .enumerate()
                        .map(|(i, (c, t))| {
                            if c.ty == *t {
                                Expr::Column(i)
                            } else {
                                Expr::Cast(Box::new(Expr::Column(i)), t.clone())
                            }
                        })
                        .collect();
                    let columns = cols
                        .iter()
                        .zip(&types)
                        .map(|(c, t)| Column::new(c.name.clone(), t.clone()))
                        .collect();
                    Node::Project {
                        input: Box::new(node),
                        exprs,
                        columns,
                    }
                };
                let l = conform(l, &lc);
                let r = conform(r, &rc);
                Ok(Node::SetOp {
                    left: Box::new(l),
                    right: Box::new(r),
                    op,
                    all,
                })
            }
            other => Err(unsupported(format!("query body {other}"))),
        }
    }

    /// `VALUES (...), (...)`, typed by `targets` where given.
    pub fn values(&mut self, v: &ast::Values, targets: &[SqlType]) -> Result<Node> {
        let empty = Scope::default();
        let mut rows = Vec::with_capacity(v.rows.len());
        let mut types: Vec<Vec<SqlType>> = Vec::new();
        let width = v.rows.first().map_or(0, |r| r.content.len());
        for row in &v.rows {
            if row.content.len() != width {
                return Err(Error::invalid(
                    SqlState::SYNTAX_ERROR,
                    "VALUES lists must all be the same length",
                ));
            }
            let mut out = Vec::with_capacity(width);
            for (i, e) in row.content.iter().enumerate() {
                let (x, t) = self.expr(e, &empty)?;
                let (x, t) = match (targets.get(i), x) {
                    // A parameter stored into a json column is JSON.
                    (Some(target), Expr::Param(p)) if target.is_json() && t == SqlType::Unknown => {
                        self.set_param_type(p, target);
                        (Expr::Param(p), target.clone())
                    }
                    (Some(target), x) => self.coerce_to(x, t, target)?,
                    (None, x) => (x, t),
                };
                if types.len() <= i {
                    types.push(Vec::new());
                }
                types[i].push(t);
                out.push(x);
            }
            rows.push(out);
        }
        let columns = types
            .iter()
            .enumerate()
            .map(|(i, ts)| Ok(Column::new(format!("column{}", i + 1), common_type(ts)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Node::Values { rows, columns })
    }

    fn from(&mut self, from: &[ast::TableWithJoins]) -> Result<(Node, Scope)> {
        if from.is_empty() {
            return Ok((
                Node::Values {
                    rows: vec![vec![]],
                    columns: vec![],
                },
                Scope::default(),
            ));
        }
        let mut acc: Option<(Node, Scope)> = None;
        for twj in from {
            // `FROM a, LATERAL (subquery) s`: s reads each row of what is to its left.
            if let Some((_, ls)) = &acc
                && twj.joins.is_empty()
                && let Some((right, rs)) = self.lateral(&twj.relation, ls)?
                && let Some((left, ls)) = acc.take()
            {
                acc = Some(lateral_node(left, ls, right, rs, false, None));
                continue;
            }
            let item = self.table_with_joins(twj)?;
            acc = Some(match acc {
                None => item,
                // `FROM a, b`: a cross join (WHERE conditions become join conditions
                // in the optimizer).
                Some((left, ls)) => join_node(left, ls, item.0, item.1, JoinKind::Inner, None),
            });
        }
        acc.ok_or_else(|| Error::Internal("empty FROM".into()))
    }

    fn table_with_joins(&mut self, twj: &ast::TableWithJoins) -> Result<(Node, Scope)> {
        let (mut node, mut scope) = self.table_factor(&twj.relation)?;
        for join in &twj.joins {
            if let Some((right, rscope)) = self.lateral(&join.relation, &scope)? {
                use ast::JoinOperator as J;
                let (outer, constraint) = match &join.join_operator {
                    J::Join(c) | J::Inner(c) | J::CrossJoin(c) => (false, c),
                    J::Left(c) | J::LeftOuter(c) => (true, c),
                    other => {
                        return Err(unsupported(format!("LATERAL in a join {other:?}")));
                    }
                };
                let joined = scope.clone().join(rscope.clone());
                let condition = match constraint {
                    ast::JoinConstraint::On(e) => Some(self.condition(e, &joined, "JOIN/ON")?),
                    ast::JoinConstraint::None => None,
                    _ => return Err(unsupported("USING or NATURAL with LATERAL")),
                };
                (node, scope) = lateral_node(node, scope, right, rscope, outer, condition);
                continue;
            }
            let (right, rscope) = self.table_factor(&join.relation)?;
            use ast::JoinOperator as J;
            let (kind, constraint) = match &join.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, c),
                J::FullOuter(c) => (JoinKind::Full, c),
                J::CrossJoin(c) => (JoinKind::Inner, c),
                other => return Err(unsupported(format!("join {other:?}"))),
            };
            let left_width = scope.columns.len();
            let using: Vec<String> = match constraint {
                ast::JoinConstraint::Using(names) => {
                    names.iter().map(table_name).collect::<Result<_>>()?
                }
                ast::JoinConstraint::Natural => scope
                    .columns
                    .iter()
                    .filter(|c| !c.hidden && rscope.find(&c.name).is_some())
                    .map(|c| c.name.clone())
                    .collect(),
                ast::JoinConstraint::UsingAlias(..) => {
                    return Err(unsupported("USING (...) AS alias"));
                }
                ast::JoinConstraint::On(_) | ast::JoinConstraint::None => Vec::new(),
            };
            let mut joined = scope.join(rscope);
            let mut merged: Vec<usize> = Vec::new();
            let condition = match constraint {
                ast::JoinConstraint::On(e) => Some(self.condition(e, &joined, "JOIN/ON")?),
                ast::JoinConstraint::Using(_) | ast::JoinConstraint::Natural => {
                    let mut conds = Vec::new();
                    for name in &using {
                        let l = joined
                            .columns
                            .iter()
                            .take(left_width)
                            .position(|c| c.name == *name && !c.hidden);
                        let r = joined
                            .columns
                            .iter()
                            .skip(left_width)
                            .position(|c| c.name == *name && !c.hidden)
                            .map(|i| i + left_width);
                        let (Some(l), Some(r)) = (l, r) else {
                            return Err(Error::invalid(
                                UNDEFINED_COLUMN,
                                format!(
                                    "column \"{name}\" specified in USING clause does not exist in both tables"
                                ),
                            ));
                        };
                        // The merged column shows once: the left copy, or the right one
                        // for a right join.
                        let (hide, keep) = if kind == JoinKind::Right {
                            (l, r)
                        } else {
                            (r, l)
                        };
                        joined.columns[hide].hidden = true;
                        merged.push(keep);
                        conds.push(Expr::Binary(
                            BinOp::Eq,
                            Box::new(Expr::Column(l)),
                            Box::new(Expr::Column(r)),
                        ));
                    }
                    conds
                        .into_iter()
                        .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)))
                }
                _ => None,
            };
            if !merged.is_empty() {
                // `*` lists the merged columns first, as PostgreSQL does.
                let rest: Vec<usize> = joined
                    .star_columns()
                    .into_iter()
                    .filter(|i| !merged.contains(i))
                    .collect();
                merged.extend(rest);
                joined.star = Some(merged);
            }
            node = Node::Join {
                left: Box::new(node),
                right: Box::new(right),
                kind,
                condition,
                equi: Vec::new(),
            };
            scope = joined;
        }
        Ok((node, scope))
    }

    fn table_factor(&mut self, relation: &ast::TableFactor) -> Result<(Node, Scope)> {
        match relation {
            ast::TableFactor::Table {
                name,
                alias,
                args,
                with_ordinality,
                ..
            } => {
                if let Some(args) = args {
                    self.cacheable.set(false);
                    let function = name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(ident)
                        .unwrap_or_default();
                    if let Some(func) = TableFunc::by_name(&function) {
                        return self.table_function(func, args, alias.as_ref(), *with_ordinality);
                    }
                    if *with_ordinality {
                        return Err(unsupported(format!("{function}() WITH ORDINALITY")));
                    }
                    if ScalarFunc::by_name(&function).is_some()
                        || matches!(function.as_str(), "current_setting" | "to_regclass")
                    {
                        return self.scalar_function_table(name, &function, args, alias.as_ref());
                    }
                    return self.graph_table(name, args, alias.as_ref());
                }
                if let Some((cols, rows)) =
                    crate::query::system::view(self.catalog, name, || self.system_settings())
                {
                    self.cacheable.set(false);
                    let scope = Scope::of_columns(
                        Some(
                            alias
                                .as_ref()
                                .map(|a| ident(&a.name))
                                .or_else(|| name.0.last().and_then(|p| p.as_ident()).map(ident))
                                .unwrap_or_default(),
                        ),
                        cols.clone(),
                    );
                    let columns = cols.into_iter().map(|(n, t)| Column::new(n, t)).collect();
                    let rows = rows
                        .into_iter()
                        .map(|r| r.into_iter().map(Expr::Literal).collect())
                        .collect();
                    return Ok((Node::Values { rows, columns }, scope));
                }
                if let Some(node) = self.cte(name)? {
                    let table = alias
                        .as_ref()
                        .map(|a| ident(&a.name))
                        .unwrap_or_else(|| table_name(name).unwrap_or_default());
                    return aliased(node, table, alias.as_ref());
                }
                let collection = self.collection(name)?;
                if let Some(a) = alias
                    && !a.columns.is_empty()
                {
                    return Err(unsupported("column aliases on a table"));
                }
                let scope =
                    Scope::of_collection(&collection, alias.as_ref().map(|a| ident(&a.name)));
                let columns = scope
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Column {
                        name: c.name.clone(),
                        ty: c.ty.clone(),
                        table_oid: collection.oid(),
                        column_number: (i + 1) as i16,
                        path: Vec::new(),
                        json_encoded: false,
                    })
                    .collect();
                Ok((
                    Node::Scan {
                        collection,
                        columns,
                        access: Access::Full,
                        filter: None,
                        read: None,
                    },
                    scope,
                ))
            }
            ast::TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                // LATERAL with nothing to its left is a plain subquery.
                let _ = lateral;
                let Some(alias) = alias else {
                    return Err(Error::invalid(
                        SqlState::SYNTAX_ERROR,
                        "subquery in FROM must have an alias",
                    ));
                };
                let node = self.query(subquery)?;
                aliased(node, ident(&alias.name), Some(alias))
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let (node, scope) = self.table_with_joins(table_with_joins)?;
                match alias {
                    None => Ok((node, scope)),
                    Some(a) => aliased(node, ident(&a.name), Some(a)),
                }
            }
            other => Err(unsupported(format!("FROM {other}"))),
        }
    }

    fn output_name(e: &ast::Expr) -> String {
        match e {
            ast::Expr::Identifier(i) => ident(i),
            ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident).unwrap_or_default(),
            ast::Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(ident)
                .unwrap_or_default(),
            ast::Expr::Cast {
                expr,
                data_type: dt,
                ..
            } => match Self::output_name(expr).as_str() {
                "?column?" => data_type(dt)
                    .map(|t| t.name())
                    .unwrap_or_else(|_| "?column?".into()),
                n => n.to_string(),
            },
            ast::Expr::Nested(inner) => Self::output_name(inner),
            ast::Expr::BinaryOp {
                op: ast::BinaryOperator::Arrow | ast::BinaryOperator::LongArrow,
                ..
            } => "?column?".into(),
            ast::Expr::Substring { .. } => "substring".into(),
            ast::Expr::Trim { .. } => "btrim".into(),
            ast::Expr::Extract { .. } => "extract".into(),
            ast::Expr::Position { .. } => "position".into(),
            ast::Expr::Case { .. } => "case".into(),
            ast::Expr::Ceil { .. } => "ceil".into(),
            ast::Expr::Floor { .. } => "floor".into(),
            _ => "?column?".into(),
        }
    }

    /// The document path a select item projects, for nesting REST answers: the item's
    /// parts without the table qualifier, when it is a plain field path.
    pub fn item_path(item: &ast::SelectItem, scope: &Scope) -> Vec<String> {
        let ast::SelectItem::UnnamedExpr(ast::Expr::CompoundIdentifier(parts)) = item else {
            return Vec::new();
        };
        let mut names: Vec<String> = parts.iter().map(ident).collect();
        if names.len() > 1 && scope.has_table(&names[0]) && scope.find(&names[0]).is_none() {
            names.remove(0);
        }
        if names.len() > 1 { names } else { Vec::new() }
    }

    /// Binds a select list: expressions, their types and output names.
    pub fn select_items(
        &mut self,
        items: &[ast::SelectItem],
        scope: &Scope,
    ) -> Result<Vec<(Expr, SqlType, String)>> {
        let mut out = Vec::new();
        for item in items {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let (x, t) = self.expr(e, scope)?;
                    out.push((x, t, Self::output_name(e)));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let (x, t) = self.expr(expr, scope)?;
                    out.push((x, t, ident(alias)));
                }
                ast::SelectItem::Wildcard(_) => {
                    for i in scope.star_columns() {
                        let c = &scope.columns[i];
                        out.push((Expr::Column(i), c.ty.clone(), c.name.clone()));
                    }
                }
                ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(unsupported("multiple aliases"));
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let name = kind.to_string();
                    let want = name
                        .trim_end_matches(".*")
                        .trim_end_matches('.')
                        .to_lowercase();
                    if !scope.has_table(&want) {
                        return Err(Error::not_found(
                            SqlState::UNDEFINED_TABLE,
                            format!("missing FROM-clause entry for table \"{want}\""),
                        ));
                    }
                    for (i, c) in scope.columns.iter().enumerate() {
                        if c.table.as_deref() == Some(want.as_str()) {
                            out.push((Expr::Column(i), c.ty.clone(), c.name.clone()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn select(
        &mut self,
        s: &ast::Select,
        order_by: Option<&ast::OrderBy>,
        limit: Option<&ast::LimitClause>,
    ) -> Result<Node> {
        if s.top.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.qualify.is_some()
            || s.prewhere.is_some()
            || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
        {
            return Err(unsupported("this SELECT clause"));
        }
        if !s.named_window.is_empty() {
            return Err(unsupported("named windows (WINDOW clauses)"));
        }
        let (mut node, scope) = self.from(&s.from)?;
        if let Some(w) = &s.selection {
            let pred = self.condition(w, &scope, "WHERE")?;
            window::forbid_in(&pred, "WHERE")?;
            let mut has_agg = false;
            pred.walk(&mut |e| has_agg |= matches!(e, Expr::Agg(_)));
            if has_agg {
                return Err(Error::invalid(
                    GROUPING_ERROR,
                    "aggregate functions are not allowed in WHERE",
                ));
            }
            node = Node::Filter {
                input: Box::new(node),
                predicate: pred,
            };
        }
        // Only a select list with set-returning functions is rewritten (cloning an item
        // copies its whole expression tree, which may be deep).
        let rewritten;
        let (scope, projection) = if s.projection.iter().any(has_set_function) {
            let (with_sets, scope, items) = self.select_list_sets(node, scope, &s.projection)?;
            node = with_sets;
            rewritten = items;
            (scope, rewritten.as_slice())
        } else {
            (scope, s.projection.as_slice())
        };
        let items = self.select_items(projection, &scope)?;

        // GROUP BY: ordinals and output aliases refer to the select list.
        let mut group_by = Vec::new();
        match &s.group_by {
            ast::GroupByExpr::Expressions(exprs, modifiers) => {
                if !modifiers.is_empty() {
                    return Err(unsupported("GROUP BY modifiers"));
                }
                for g in exprs {
                    let position = ordinal(g, items.len(), "GROUP BY")?;
                    let bound = match (g, position.and_then(|p| items.get(p))) {
                        (_, Some((e, _, _))) => e.clone(),
                        (ast::Expr::Identifier(i), None) if scope.find(&ident(i)).is_none() => {
                            match items.iter().find(|(_, _, n)| *n == ident(i)) {
                                Some((e, _, _)) => e.clone(),
                                None => self.expr(g, &scope)?.0,
                            }
                        }
                        (_, None) => self.expr(g, &scope)?.0,
                    };
                    window::forbid_in(&bound, "GROUP BY")?;
                    group_by.push(bound);
                }
            }
            ast::GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
        }
        let having = match &s.having {
            Some(h) => Some(self.condition(h, &scope, "HAVING")?),
            None => None,
        };
        if let Some(h) = &having {
            window::forbid_in(h, "HAVING")?;
        }
        // ORDER BY keys, bound against the input (output aliases and ordinals resolved later).
        let mut order_keys: Vec<(OrderTarget, bool, bool)> = Vec::new();
        if let Some(ob) = order_by {
            for o in order_exprs(ob)? {
                let (desc, nulls_first) = sort_direction(o);
                let position = ordinal(&o.expr, items.len(), "ORDER BY")?;
                let target = match (&o.expr, position) {
                    (_, Some(p)) => OrderTarget::Output(p),
                    (ast::Expr::Identifier(i), None)
                        if items.iter().any(|(_, _, n)| *n == ident(i))
                            && (scope.find(&ident(i)).is_none()
                                || scope.resolve(&ident(i)).is_err()
                                || items.iter().any(|(e, _, n)| {
                                    *n == ident(i) && !matches!(e, Expr::Column(_))
                                })) =>
                    {
                        let pos = items
                            .iter()
                            .position(|(_, _, n)| *n == ident(i))
                            .unwrap_or(0);
                        OrderTarget::Output(pos)
                    }
                    (e, None) => OrderTarget::Expr(self.expr(e, &scope)?.0),
                };
                order_keys.push((target, desc, nulls_first));
            }
        }

        let mut has_agg = !group_by.is_empty() || having.is_some();
        for (e, _, _) in &items {
            e.walk(&mut |x| has_agg |= matches!(x, Expr::Agg(_)));
        }
        for (t, _, _) in &order_keys {
            if let OrderTarget::Expr(e) = t {
                e.walk(&mut |x| has_agg |= matches!(x, Expr::Agg(_)));
            }
        }

        let mut exprs: Vec<Expr> = items.iter().map(|(e, _, _)| e.clone()).collect();
        let source_columns = node.columns();
        let mut paths: Vec<Vec<String>> = Vec::new();
        for item in &s.projection {
            match item {
                ast::SelectItem::Wildcard(_) => {
                    paths.extend(scope.star_columns().iter().map(|_| Vec::new()));
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let want = kind.to_string().trim_end_matches(".*").to_lowercase();
                    paths.extend(
                        scope
                            .columns
                            .iter()
                            .filter(|c| c.table.as_deref() == Some(want.as_str()))
                            .map(|_| Vec::new()),
                    );
                }
                other => paths.push(Self::item_path(other, &scope)),
            }
        }
        let mut columns: Vec<Column> = items
            .iter()
            .enumerate()
            .map(|(k, (e, t, n))| {
                // An untyped literal comes out as text, as in PostgreSQL.
                let t = if *t == SqlType::Unknown {
                    SqlType::Text
                } else {
                    t.clone()
                };
                let mut c = Column::new(n.clone(), t);
                c.path = paths.get(k).cloned().unwrap_or_default();
                if let Expr::Column(i) = e
                    && let Some(src) = source_columns.get(*i)
                {
                    c.table_oid = src.table_oid;
                    c.column_number = src.column_number;
                }
                c
            })
            .collect();
        let mut order_exprs: Vec<(OrderTarget, bool, bool)> = order_keys;

        if has_agg {
            let mut aggs: Vec<AggCall> = Vec::new();
            let input_cols = node.columns();
            let mut rewrite = |e: Expr| -> Result<Expr> { to_agg_output(e, &group_by, &mut aggs) };
            exprs = exprs.into_iter().map(&mut rewrite).collect::<Result<_>>()?;
            let having = having.map(&mut rewrite).transpose()?;
            for (t, _, _) in order_exprs.iter_mut() {
                if let OrderTarget::Expr(e) = t {
                    *e = rewrite(std::mem::replace(e, Expr::Literal(Value::Null)))?;
                }
            }
            let mut agg_columns: Vec<Column> = group_by
                .iter()
                .map(|g| {
                    let ty = match g {
                        Expr::Column(i) => input_cols
                            .get(*i)
                            .map(|c| c.ty.clone())
                            .unwrap_or(SqlType::Unknown),
                        _ => SqlType::Unknown,
                    };
                    Column::new("?column?", ty)
                })
                .collect();
            for a in &aggs {
                agg_columns.push(Column::new(
                    a.func.name(),
                    aggregate_result_type(a.func, &a.arg_type),
                ));
            }
            node = Node::Aggregate {
                input: Box::new(node),
                group_by,
                aggs,
                columns: agg_columns,
            };
            if let Some(h) = having {
                node = Node::Filter {
                    input: Box::new(node),
                    predicate: h,
                };
            }
        }

        node = window::lower_windows(node, &mut exprs, &mut order_exprs)?;

        // Sort keys that are not in the output become hidden output columns.
        let visible = exprs.len();
        let mut sort_keys = Vec::new();
        for (target, desc, nulls_first) in order_exprs {
            let index = match target {
                OrderTarget::Output(i) => i,
                OrderTarget::Expr(e) => match exprs.iter().position(|x| *x == e) {
                    Some(i) => i,
                    None => {
                        if s.distinct.is_some() {
                            return Err(Error::invalid(
                                INVALID_COLUMN_REFERENCE,
                                "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                            ));
                        }
                        exprs.push(e);
                        columns.push(Column::new("?sort?", SqlType::Unknown));
                        exprs.len() - 1
                    }
                },
            };
            sort_keys.push(SortKey {
                expr: Expr::Column(index),
                desc,
                nulls_first,
            });
        }
        node = Node::Project {
            input: Box::new(node),
            exprs,
            columns: columns.clone(),
        };
        match &s.distinct {
            None | Some(ast::Distinct::All) => {}
            Some(ast::Distinct::Distinct) => {
                node = Node::Distinct {
                    input: Box::new(node),
                }
            }
            Some(_) => return Err(unsupported("DISTINCT ON")),
        }
        if !sort_keys.is_empty() {
            node = Node::Sort {
                input: Box::new(node),
                keys: sort_keys,
            };
        }
        node = self.limit(node, limit)?;
        if columns.len() > visible {
            let keep: Vec<Expr> = (0..visible).map(Expr::Column).collect();
            columns.truncate(visible);
            node = Node::Project {
                input: Box::new(node),
                exprs: keep,
                columns,
            };
        }
        Ok(node)
    }

    fn order_and_limit(
        &mut self,
        mut node: Node,
        order_by: Option<&ast::OrderBy>,
        limit: Option<&ast::LimitClause>,
    ) -> Result<Node> {
        if let Some(ob) = order_by {
            let cols = node.columns();
            let scope = Scope::of_columns(
                None,
                cols.iter()
                    .map(|c| (c.name.clone(), c.ty.clone()))
                    .collect(),
            );
            let mut keys = Vec::new();
            for o in order_exprs(ob)? {
                let (desc, nulls_first) = sort_direction(o);
                let expr = match ordinal(&o.expr, cols.len(), "ORDER BY")? {
                    Some(i) => Expr::Column(i),
                    None => self.expr(&o.expr, &scope)?.0,
                };
                keys.push(SortKey {
                    expr,
                    desc,
                    nulls_first,
                });
            }
            node = Node::Sort {
                input: Box::new(node),
                keys,
            };
        }
        self.limit(node, limit)
    }

    fn limit(&mut self, node: Node, limit: Option<&ast::LimitClause>) -> Result<Node> {
        let Some(limit) = limit else {
            return Ok(node);
        };
        let empty = Scope::default();
        let (l, o) = match limit {
            ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            } => {
                if !limit_by.is_empty() {
                    return Err(unsupported("LIMIT BY"));
                }
                (limit.clone(), offset.as_ref().map(|o| o.value.clone()))
            }
            ast::LimitClause::OffsetCommaLimit { offset, limit } => {
                (Some(limit.clone()), Some(offset.clone()))
            }
        };
        let mut bind = |e: Option<ast::Expr>| -> Result<Option<Expr>> {
            match e {
                None => Ok(None),
                Some(e) => {
                    let (x, t) = self.expr(&e, &empty)?;
                    Ok(Some(self.coerce_to(x, t, &SqlType::Int8)?.0))
                }
            }
        };
        let (limit, offset) = (bind(l)?, bind(o)?);
        Ok(Node::Limit {
            input: Box::new(node),
            limit,
            offset,
        })
    }
}

/// The keys of an ORDER BY (`ORDER BY ALL` is not supported).
fn order_exprs(ob: &ast::OrderBy) -> Result<&Vec<ast::OrderByExpr>> {
    match &ob.kind {
        ast::OrderByKind::Expressions(e) => Ok(e),
        ast::OrderByKind::All(_) => Err(unsupported("ORDER BY ALL")),
    }
}

/// (descending, nulls first) of a sort key; NULLs sort as if larger than any value.
fn sort_direction(o: &ast::OrderByExpr) -> (bool, bool) {
    let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
    (desc, o.options.nulls_first.unwrap_or(desc))
}

/// For a number literal in ORDER BY or GROUP BY, the 0-based select-list position it
/// names (42P10 when there is no such item); None for any other expression.
fn ordinal(e: &ast::Expr, items: usize, clause: &str) -> Result<Option<usize>> {
    let ast::Expr::Value(v) = e else {
        return Ok(None);
    };
    if !matches!(v.value, ast::Value::Number(_, _)) {
        return Ok(None);
    }
    let n: usize = v.value.to_string().parse().unwrap_or(0);
    if n == 0 || n > items {
        return Err(Error::invalid(
            INVALID_COLUMN_REFERENCE,
            format!("{clause} position {n} is not in select list"),
        ));
    }
    Ok(Some(n - 1))
}

enum OrderTarget {
    Output(usize),
    Expr(Expr),
}

fn check_bool(ty: &SqlType, clause: &str) -> Result<()> {
    if matches!(
        ty,
        SqlType::Bool | SqlType::Unknown | SqlType::Jsonb | SqlType::Json
    ) {
        Ok(())
    } else {
        Err(Error::invalid(
            types::DATATYPE_MISMATCH,
            format!(
                "argument of {clause} must be type boolean, not type {}",
                ty.name()
            ),
        ))
    }
}

/// Rewrites an expression over an aggregate's input into one over its output: group
/// expressions become their columns, aggregate calls become theirs.
fn to_agg_output(e: Expr, group_by: &[Expr], aggs: &mut Vec<AggCall>) -> Result<Expr> {
    if let Some(i) = group_by.iter().position(|g| *g == e) {
        return Ok(Expr::Column(i));
    }
    match e {
        Expr::Agg(call) => {
            let i = match aggs.iter().position(|a| *a == call) {
                Some(i) => i,
                None => {
                    aggs.push(call);
                    aggs.len() - 1
                }
            };
            Ok(Expr::Column(group_by.len() + i))
        }
        Expr::Column(_) => Err(Error::invalid(
            GROUPING_ERROR,
            "column must appear in the GROUP BY clause or be used in an aggregate function",
        )),
        other => other.map_children(&mut |c| to_agg_output(c, group_by, aggs)),
    }
}
