//! The logical plan: a tree of [`Node`]s, each knowing its output columns, and its
//! EXPLAIN rendering.

use crate::catalog::Collection;
use crate::doc::Value;
use crate::query::Column;
use crate::query::expr::{AggCall, AggFunc, Expr, PathStep, UnaryOp};
use crate::query::types::{SqlType, to_json_text};

/// One ORDER BY key.
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

/// How a scan reaches its documents.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// Every document of the collection, in key order.
    Full,
    /// The documents whose keys are these values (`id = x`, `id IN (...)`).
    Keys(Vec<Expr>),
}

/// A plan node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Rows of one collection; `filter` is applied inside the scan.
    Scan {
        collection: Collection,
        columns: Vec<Column>,
        access: Access,
        filter: Option<Expr>,
    },
    /// Literal rows.
    Values {
        rows: Vec<Vec<Expr>>,
        columns: Vec<Column>,
    },
    Filter {
        input: Box<Node>,
        predicate: Expr,
    },
    Project {
        input: Box<Node>,
        exprs: Vec<Expr>,
        columns: Vec<Column>,
    },
    /// Output: the group expressions' values, then the aggregates' values.
    Aggregate {
        input: Box<Node>,
        group_by: Vec<Expr>,
        aggs: Vec<AggCall>,
        columns: Vec<Column>,
    },
    Sort {
        input: Box<Node>,
        keys: Vec<SortKey>,
    },
    Limit {
        input: Box<Node>,
        limit: Option<Expr>,
        offset: Option<Expr>,
    },
    Distinct {
        input: Box<Node>,
    },
}

impl Node {
    /// The columns of the rows this node produces.
    pub fn columns(&self) -> Vec<Column> {
        match self {
            Node::Scan { columns, .. }
            | Node::Values { columns, .. }
            | Node::Project { columns, .. }
            | Node::Aggregate { columns, .. } => columns.clone(),
            Node::Filter { input, .. }
            | Node::Sort { input, .. }
            | Node::Limit { input, .. }
            | Node::Distinct { input } => input.columns(),
        }
    }

    /// EXPLAIN lines, indented like PostgreSQL's.
    pub fn explain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.explain_into(0, &mut lines);
        lines
    }

    fn explain_into(&self, depth: usize, out: &mut Vec<String>) {
        let pad = if depth == 0 {
            String::new()
        } else {
            format!("{}->  ", "      ".repeat(depth - 1) + "  ")
        };
        let detail = "      ".repeat(depth) + "  ";
        match self {
            Node::Scan {
                collection,
                columns,
                access,
                filter,
            } => {
                match access {
                    Access::Full => out.push(format!("{pad}Seq Scan on {}", collection.name)),
                    Access::Keys(keys) => {
                        out.push(format!("{pad}Key Lookup on {}", collection.name));
                        let keys: Vec<String> = keys.iter().map(|k| show(k, columns)).collect();
                        out.push(format!("{detail}Keys: {}", keys.join(", ")));
                    }
                }
                if let Some(f) = filter {
                    out.push(format!("{detail}Filter: {}", show(f, columns)));
                }
            }
            Node::Values { rows, .. } => out.push(format!("{pad}Values ({} rows)", rows.len())),
            Node::Filter { input, predicate } => {
                out.push(format!("{pad}Filter"));
                out.push(format!(
                    "{detail}Filter: {}",
                    show(predicate, &input.columns())
                ));
                input.explain_into(depth + 1, out);
            }
            Node::Project { input, exprs, .. } => {
                let cols = input.columns();
                let list: Vec<String> = exprs.iter().map(|e| show(e, &cols)).collect();
                out.push(format!("{pad}Project"));
                out.push(format!("{detail}Output: {}", list.join(", ")));
                input.explain_into(depth + 1, out);
            }
            Node::Aggregate {
                input,
                group_by,
                aggs,
                ..
            } => {
                let cols = input.columns();
                out.push(format!(
                    "{pad}{}",
                    if group_by.is_empty() {
                        "Aggregate"
                    } else {
                        "HashAggregate"
                    }
                ));
                if !group_by.is_empty() {
                    let keys: Vec<String> = group_by.iter().map(|e| show(e, &cols)).collect();
                    out.push(format!("{detail}Group Key: {}", keys.join(", ")));
                }
                let list: Vec<String> = aggs.iter().map(|a| show_agg(a, &cols)).collect();
                out.push(format!("{detail}Aggregates: {}", list.join(", ")));
                input.explain_into(depth + 1, out);
            }
            Node::Sort { input, keys } => {
                let cols = input.columns();
                let list: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let mut s = show(&k.expr, &cols);
                        if k.desc {
                            s.push_str(" DESC");
                        }
                        if k.nulls_first != k.desc {
                            s.push_str(if k.nulls_first {
                                " NULLS FIRST"
                            } else {
                                " NULLS LAST"
                            });
                        }
                        s
                    })
                    .collect();
                out.push(format!("{pad}Sort"));
                out.push(format!("{detail}Sort Key: {}", list.join(", ")));
                input.explain_into(depth + 1, out);
            }
            Node::Limit {
                input,
                limit,
                offset,
            } => {
                let cols = input.columns();
                let mut s = format!("{pad}Limit");
                if let Some(l) = limit {
                    s.push_str(&format!(" (limit {})", show(l, &cols)));
                }
                if let Some(o) = offset {
                    s.push_str(&format!(" (offset {})", show(o, &cols)));
                }
                out.push(s);
                input.explain_into(depth + 1, out);
            }
            Node::Distinct { input } => {
                out.push(format!("{pad}HashDistinct"));
                input.explain_into(depth + 1, out);
            }
        }
    }
}

fn show_agg(a: &AggCall, cols: &[Column]) -> String {
    match (&a.func, &a.arg) {
        (AggFunc::CountStar, _) => "count(*)".into(),
        (f, Some(arg)) => format!(
            "{}({}{})",
            f.name(),
            if a.distinct { "DISTINCT " } else { "" },
            show(arg, cols)
        ),
        (f, None) => format!("{}()", f.name()),
    }
}

/// Renders an expression for EXPLAIN, naming columns.
pub fn show(e: &Expr, cols: &[Column]) -> String {
    match e {
        Expr::Literal(Value::String(s)) => format!("'{}'", s.replace('\'', "''")),
        Expr::Literal(Value::Null) => "NULL".into(),
        Expr::Literal(v) => SqlType::of_value(v)
            .format_text(v)
            .unwrap_or_else(|| to_json_text(v)),
        Expr::Column(i) => cols
            .get(*i)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| format!("#{i}")),
        Expr::Param(i) => format!("${}", i + 1),
        Expr::Path(base, steps) => {
            let mut s = show(base, cols);
            for step in steps {
                match step {
                    PathStep::Key(k) => s.push_str(&format!(".{k}")),
                    PathStep::Index(i) => s.push_str(&format!("[{i}]")),
                }
            }
            s
        }
        Expr::Unary(UnaryOp::Not, e) => format!("(NOT {})", show(e, cols)),
        Expr::Unary(UnaryOp::Neg, e) => format!("(- {})", show(e, cols)),
        Expr::Binary(op, l, r) => format!("({} {} {})", show(l, cols), op.symbol(), show(r, cols)),
        Expr::IsNull(e, neg) => format!(
            "({} IS {}NULL)",
            show(e, cols),
            if *neg { "NOT " } else { "" }
        ),
        Expr::IsBool(e, v, neg) => format!(
            "({} IS {}{})",
            show(e, cols),
            if *neg { "NOT " } else { "" },
            if *v { "TRUE" } else { "FALSE" }
        ),
        Expr::InList {
            expr,
            list,
            negated,
        } => format!(
            "({} {}IN ({}))",
            show(expr, cols),
            if *negated { "NOT " } else { "" },
            list.iter()
                .map(|e| show(e, cols))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => format!(
            "({} {}BETWEEN {} AND {})",
            show(expr, cols),
            if *negated { "NOT " } else { "" },
            show(low, cols),
            show(high, cols)
        ),
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => format!(
            "({} {}{} {})",
            show(expr, cols),
            if *negated { "NOT " } else { "" },
            if *case_insensitive { "ILIKE" } else { "LIKE" },
            show(pattern, cols)
        ),
        Expr::Case { .. } => "CASE ... END".into(),
        Expr::Cast(e, ty) => format!("({})::{}", show(e, cols), ty.name()),
        Expr::Func(f, args) => format!(
            "{}({})",
            f.name(),
            args.iter()
                .map(|e| show(e, cols))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Agg(a) => show_agg(a, cols),
    }
}
