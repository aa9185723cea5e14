//! The logical plan: a tree of [`Node`]s, each knowing its output columns, and its
//! EXPLAIN rendering.

use crate::catalog::Collection;
use crate::doc::Value;
use crate::query::Column;
use crate::query::exec::OperatorStats;
use crate::query::expr::{
    AggCall, AggFunc, Expr, FrameBound, PathStep, UnaryOp, WindowCall, WindowFunc,
};
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
    /// The documents a secondary index lists within some bounds.
    Index(Box<IndexAccess>),
    /// The documents whose keys lie within bounds, in key order or its reverse: a table
    /// whose integer key is stored in its ordered form (see [`crate::catalog::KeyForm`]).
    KeyRange(Box<KeyRange>),
}

/// Bounds on an ordered integer key, and the direction to walk them.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRange {
    pub lower: Option<RangeBound>,
    pub upper: Option<RangeBound>,
    /// From the last key down (`ORDER BY key DESC`, `max(key)`).
    pub reverse: bool,
}

/// What an equality prefix pins one index field to.
#[derive(Clone, Debug, PartialEq)]
pub enum Pin {
    /// `field = value` (no row matches when the value is NULL).
    Value(Expr),
    /// `field IS NULL`.
    Null,
}

/// One bound of a range on an index field.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeBound {
    pub value: Expr,
    pub inclusive: bool,
}

/// Where index-ordered output puts the NULLs of the ordering field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexOrder {
    /// No order asked for: entries in index order.
    Any,
    /// Ascending or descending by the first field after the pinned prefix, with NULLs
    /// first or last.
    By { desc: bool, nulls_first: bool },
}

/// An index scan: for each alternative equality prefix (one, or several for IN lists),
/// the entries whose next field lies within `lower`..`upper`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexAccess {
    pub index: crate::catalog::IndexDef,
    /// Alternatives, each pinning the index's first fields (all of the same length).
    pub prefixes: Vec<Vec<Pin>>,
    pub lower: Option<RangeBound>,
    pub upper: Option<RangeBound>,
    pub order: IndexOrder,
    /// Rows are built from the index entries alone (every column the query reads is an
    /// indexed field), without reading the documents.
    pub covering: bool,
    /// The conditions the bounds implement, re-checked on each fetched document (an
    /// entry may be older than the document it names) and shown by EXPLAIN.
    pub conditions: Vec<Expr>,
    /// The planner's row estimate (EXPLAIN).
    pub estimate: u64,
}

/// Which rows a join keeps besides the matching pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    /// Every left row, with NULLs when nothing on the right matches.
    Left,
    /// Every right row, with NULLs when nothing on the left matches.
    Right,
    /// Both.
    Full,
    /// Each left row that has a match, once (EXISTS, IN); the output is the left row.
    Semi,
    /// Each left row that has no match (NOT EXISTS); the output is the left row.
    Anti,
}

impl JoinKind {
    fn label(self) -> &'static str {
        match self {
            JoinKind::Inner => "",
            JoinKind::Left => " Left",
            JoinKind::Right => " Right",
            JoinKind::Full => " Full",
            JoinKind::Semi => " Semi",
            JoinKind::Anti => " Anti",
        }
    }
}

/// UNION, INTERSECT or EXCEPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOpKind {
    Union,
    Intersect,
    Except,
}

/// What EXPLAIN adds to the plan's own lines: EXPLAIN ANALYZE's figures per operator
/// (in pre-order), and notes under operators the executor runs another way than their
/// lines say (by address).
#[derive(Clone, Copy, Default)]
struct Annotations<'a> {
    stats: Option<&'a [OperatorStats]>,
    notes: &'a [(*const Node, String)],
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
        /// The columns the plan reads (None: all); the others come out NULL, and a
        /// full scan decodes only these fields where it can (see
        /// [`crate::query::optimizer::prune_columns`]).
        read: Option<Vec<usize>>,
    },
    /// Literal rows.
    Values {
        rows: Vec<Vec<Expr>>,
        columns: Vec<Column>,
    },
    /// `left [LEFT] JOIN LATERAL (subquery) ON condition` (or `, LATERAL`): for each left
    /// row, `right` runs with its references to the left row (`Expr::Outer` depth 1)
    /// bound to that row; the combined rows that pass `condition` come out, or with
    /// `outer` the left row NULL-extended when none does. `right` is planned when it
    /// runs, like a correlated subquery, so optimizer passes and `map_exprs` do not
    /// enter it.
    Lateral {
        left: Box<Node>,
        right: Box<Node>,
        outer: bool,
        condition: Option<Expr>,
        columns: Vec<Column>,
    },
    /// Set-returning functions in a select list (`SELECT unnest(a), ...`): each input
    /// row is repeated once per result of the longest function, the functions' results
    /// (NULL-padded) appended after the input's columns.
    ProjectSet {
        input: Box<Node>,
        funcs: Vec<(crate::query::exec::table_function::TableFunc, Vec<Expr>)>,
        columns: Vec<Column>,
    },
    /// The rows of a set-returning function in FROM (`generate_series(1, 10)`), its
    /// arguments evaluated once when it starts.
    TableFunction {
        func: crate::query::exec::table_function::TableFunc,
        args: Vec<Expr>,
        columns: Vec<Column>,
        /// `WITH ORDINALITY`: each row ends with its number, from 1.
        ordinality: bool,
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
    /// Window functions: each input row followed by the value of each call over its
    /// window (rows come out in the order of the last call's window).
    Window {
        input: Box<Node>,
        funcs: Vec<WindowCall>,
        columns: Vec<Column>,
    },
    Limit {
        input: Box<Node>,
        limit: Option<Expr>,
        offset: Option<Expr>,
    },
    Distinct {
        input: Box<Node>,
    },
    /// Rows of `left` joined with rows of `right`: each output row is a left row then a
    /// right row. `equi` pairs (an expression over the left row, one over the right
    /// row) are equalities the optimizer took out of `condition` for a hash join;
    /// `condition` is whatever remains, over the joined row.
    Join {
        left: Box<Node>,
        right: Box<Node>,
        kind: JoinKind,
        condition: Option<Expr>,
        equi: Vec<(Expr, Expr)>,
    },
    /// `left UNION|INTERSECT|EXCEPT [ALL] right` (inputs of the same width and types).
    SetOp {
        left: Box<Node>,
        right: Box<Node>,
        op: SetOpKind,
        all: bool,
    },
    /// `WITH RECURSIVE`: the anchor's rows, then the recursive part's rows run again and
    /// again over the rows of the previous round (read by [`Node::WorkTable`] `id`)
    /// until a round adds none. Without `all`, rows already produced are dropped.
    RecursiveUnion {
        id: usize,
        anchor: Box<Node>,
        recursive: Box<Node>,
        all: bool,
    },
    /// The previous round's rows of the recursive union `id`.
    WorkTable {
        id: usize,
        name: String,
        columns: Vec<Column>,
    },
}

impl Node {
    /// The columns of the rows this node produces.
    pub fn columns(&self) -> Vec<Column> {
        match self {
            Node::Scan { columns, .. }
            | Node::Values { columns, .. }
            | Node::TableFunction { columns, .. }
            | Node::ProjectSet { columns, .. }
            | Node::Lateral { columns, .. }
            | Node::Project { columns, .. }
            | Node::Aggregate { columns, .. }
            | Node::Window { columns, .. } => columns.clone(),
            Node::Filter { input, .. }
            | Node::Sort { input, .. }
            | Node::Limit { input, .. }
            | Node::Distinct { input } => input.columns(),
            Node::Join {
                left,
                kind: JoinKind::Semi | JoinKind::Anti,
                ..
            } => left.columns(),
            Node::Join { left, right, .. } => {
                let mut c = left.columns();
                c.extend(right.columns());
                c
            }
            Node::SetOp { left, .. } => left.columns(),
            Node::RecursiveUnion { anchor, .. } => anchor.columns(),
            Node::WorkTable { columns, .. } => columns.clone(),
        }
    }

    /// How many operators EXPLAIN lists for this plan (the slots EXPLAIN ANALYZE
    /// numbers them by, in pre-order).
    pub fn operator_count(&self) -> usize {
        let mut next = 0;
        self.explain_into(0, &mut Vec::new(), Annotations::default(), &mut next);
        next
    }

    /// EXPLAIN lines, indented like PostgreSQL's.
    pub fn explain(&self) -> Vec<String> {
        self.explain_analyzed(None)
    }

    /// EXPLAIN lines with a line under each operator `notes` names (by address): what
    /// the executor does there instead of what the operator's lines show.
    pub fn explain_noted(&self, notes: &[(*const Node, String)]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut next = 0;
        let annotations = Annotations { stats: None, notes };
        self.explain_into(0, &mut lines, annotations, &mut next);
        lines
    }

    /// EXPLAIN lines; with `stats` (per operator in pre-order, from EXPLAIN ANALYZE),
    /// each operator's line ends with its actual rows and time.
    pub fn explain_analyzed(&self, stats: Option<&[OperatorStats]>) -> Vec<String> {
        let mut lines = Vec::new();
        let mut next = 0;
        let annotations = Annotations { stats, notes: &[] };
        self.explain_into(0, &mut lines, annotations, &mut next);
        lines
    }

    fn explain_into(
        &self,
        depth: usize,
        out: &mut Vec<String>,
        stats: Annotations<'_>,
        next: &mut usize,
    ) {
        let slot = *next;
        *next += 1;
        let first_line = out.len();
        self.explain_node(depth, out, stats, next);
        if let Some((_, note)) = stats.notes.iter().find(|(n, _)| std::ptr::eq(*n, self)) {
            let detail = "      ".repeat(depth) + "  ";
            out.insert((first_line + 1).min(out.len()), format!("{detail}{note}"));
        }
        if let Some(st) = stats.stats.and_then(|s| s.get(slot))
            && let Some(line) = out.get_mut(first_line)
        {
            line.push_str(&format!(
                "  (actual rows={} time={:.3} ms)",
                st.rows,
                st.nanos as f64 / 1e6
            ));
            if st.workers > 0 {
                let detail = "      ".repeat(depth) + "  ";
                out.insert(
                    first_line + 1,
                    format!("{detail}Workers Launched: {}", st.workers),
                );
            }
        }
    }

    fn explain_node(
        &self,
        depth: usize,
        out: &mut Vec<String>,
        stats: Annotations<'_>,
        next: &mut usize,
    ) {
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
                ..
            } => {
                match access {
                    Access::Full => out.push(format!("{pad}Seq Scan on {}", collection.name)),
                    Access::KeyRange(r) => {
                        out.push(format!(
                            "{pad}Key Range Scan{} on {}",
                            if r.reverse { " Backward" } else { "" },
                            collection.name
                        ));
                        let key = collection
                            .key_position()
                            .and_then(|k| columns.get(k))
                            .map_or("id", |c| c.name.as_str());
                        let mut bounds = Vec::new();
                        if let Some(b) = &r.lower {
                            let op = if b.inclusive { ">=" } else { ">" };
                            bounds.push(format!("{key} {op} {}", show(&b.value, columns)));
                        }
                        if let Some(b) = &r.upper {
                            let op = if b.inclusive { "<=" } else { "<" };
                            bounds.push(format!("{key} {op} {}", show(&b.value, columns)));
                        }
                        if !bounds.is_empty() {
                            out.push(format!("{detail}Key Cond: {}", bounds.join(" AND ")));
                        }
                    }
                    Access::Keys(keys) => {
                        out.push(format!("{pad}Key Lookup on {}", collection.name));
                        let keys: Vec<String> = keys.iter().map(|k| show(k, columns)).collect();
                        out.push(format!("{detail}Keys: {}", keys.join(", ")));
                    }
                    Access::Index(a) => {
                        let backward = matches!(a.order, IndexOrder::By { desc: true, .. });
                        out.push(format!(
                            "{pad}{}{} using {} on {}",
                            if a.covering {
                                "Index Only Scan"
                            } else {
                                "Index Scan"
                            },
                            if backward { " Backward" } else { "" },
                            a.index.name,
                            collection.name
                        ));
                        out.push(format!("{detail}Index: ({})", a.index.field_list()));
                        if !a.conditions.is_empty() {
                            let conds: Vec<String> =
                                a.conditions.iter().map(|c| show(c, columns)).collect();
                            out.push(format!("{detail}Index Cond: {}", conds.join(" AND ")));
                        }
                        out.push(format!(
                            "{detail}Bounds: {}  (estimated rows: {})",
                            show_bounds(a, columns),
                            a.estimate
                        ));
                    }
                }
                // An index scan shows the conjuncts its bounds do not already apply.
                let shown = match (filter, access) {
                    (Some(f), Access::Index(a)) => residual(f, &a.conditions),
                    (f, _) => f.clone(),
                };
                if let Some(f) = shown {
                    out.push(format!("{detail}Filter: {}", show(&f, columns)));
                }
            }
            Node::Values { rows, .. } => out.push(format!("{pad}Values ({} rows)", rows.len())),
            Node::TableFunction { func, args, .. } => out.push(format!(
                "{pad}Function Scan on {}({})",
                func.name(),
                args.iter()
                    .map(|a| show(a, &[]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Node::Filter { input, predicate } => {
                out.push(format!("{pad}Filter"));
                out.push(format!(
                    "{detail}Filter: {}",
                    show(predicate, &input.columns())
                ));
                input.explain_into(depth + 1, out, stats, next);
            }
            Node::Project { input, exprs, .. } => {
                let cols = input.columns();
                let list: Vec<String> = exprs.iter().map(|e| show(e, &cols)).collect();
                out.push(format!("{pad}Project"));
                out.push(format!("{detail}Output: {}", list.join(", ")));
                input.explain_into(depth + 1, out, stats, next);
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
                input.explain_into(depth + 1, out, stats, next);
            }
            Node::Sort { input, keys } => {
                let cols = input.columns();
                out.push(format!("{pad}Sort"));
                out.push(format!("{detail}Sort Key: {}", show_sort_keys(keys, &cols)));
                input.explain_into(depth + 1, out, stats, next);
            }
            Node::Lateral {
                left,
                right,
                outer,
                condition,
                columns,
            } => {
                out.push(format!(
                    "{pad}Nested Loop{} Lateral",
                    if *outer { " Left" } else { "" }
                ));
                if let Some(c) = condition {
                    out.push(format!("{detail}Join Filter: {}", show(c, columns)));
                }
                left.explain_into(depth + 1, out, stats, next);
                right.explain_into(depth + 1, out, stats, next);
            }
            Node::ProjectSet { input, funcs, .. } => {
                let cols = input.columns();
                out.push(format!("{pad}ProjectSet"));
                let list: Vec<String> = funcs
                    .iter()
                    .map(|(f, args)| {
                        let args: Vec<String> = args.iter().map(|a| show(a, &cols)).collect();
                        format!("{}({})", f.name(), args.join(", "))
                    })
                    .collect();
                out.push(format!("{detail}Functions: {}", list.join(", ")));
                input.explain_into(depth + 1, out, stats, next);
            }
            Node::Window { input, funcs, .. } => {
                let cols = input.columns();
                out.push(format!("{pad}WindowAgg"));
                let list: Vec<String> = funcs.iter().map(|c| show_window(c, &cols)).collect();
                out.push(format!("{detail}Functions: {}", list.join(", ")));
                input.explain_into(depth + 1, out, stats, next);
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
                input.explain_into(depth + 1, out, stats, next);
            }
            Node::Distinct { input } => {
                out.push(format!("{pad}HashDistinct"));
                input.explain_into(depth + 1, out, stats, next);
            }
            Node::Join {
                left,
                right,
                kind,
                condition,
                equi,
            } => {
                let mut cols = left.columns();
                let lcols = cols.clone();
                let rcols = right.columns();
                cols.extend(rcols.clone());
                if equi.is_empty() {
                    out.push(format!("{pad}Nested Loop{} Join", kind.label()));
                } else {
                    out.push(format!("{pad}Hash{} Join", kind.label()));
                    let conds: Vec<String> = equi
                        .iter()
                        .map(|(l, r)| format!("({} = {})", show(l, &lcols), show(r, &rcols)))
                        .collect();
                    out.push(format!("{detail}Hash Cond: {}", conds.join(" AND ")));
                }
                if let Some(c) = condition {
                    out.push(format!("{detail}Join Filter: {}", show(c, &cols)));
                }
                if let Some(p) = crate::query::exec::join::probe_for(*kind, right, equi) {
                    let by = match &p.key {
                        crate::query::exec::join::ProbeKey::DocumentKey => "key".to_string(),
                        crate::query::exec::join::ProbeKey::Index(i) => format!("index {}", i.name),
                    };
                    out.push(format!(
                        "{detail}Index Probe: {} by {by} when the outer side has at most {} distinct keys",
                        p.collection.name,
                        crate::query::exec::join::PROBE_MAX_ROWS
                    ));
                }
                left.explain_into(depth + 1, out, stats, next);
                if !equi.is_empty() {
                    out.push(format!("{}{}Hash", "      ".repeat(depth) + "  ", "->  "));
                    right.explain_into(depth + 2, out, stats, next);
                } else {
                    right.explain_into(depth + 1, out, stats, next);
                }
            }
            Node::SetOp {
                left,
                right,
                op,
                all,
            } => {
                let name = match op {
                    SetOpKind::Union => "Append",
                    SetOpKind::Intersect => "HashSetOp Intersect",
                    SetOpKind::Except => "HashSetOp Except",
                };
                let all_suffix = if *all && *op != SetOpKind::Union {
                    " All"
                } else {
                    ""
                };
                if *op == SetOpKind::Union && !*all {
                    out.push(format!("{pad}HashDistinct"));
                    out.push(format!("{detail}->  Append"));
                    left.explain_into(depth + 2, out, stats, next);
                    right.explain_into(depth + 2, out, stats, next);
                } else {
                    out.push(format!("{pad}{name}{all_suffix}"));
                    left.explain_into(depth + 1, out, stats, next);
                    right.explain_into(depth + 1, out, stats, next);
                }
            }
            Node::RecursiveUnion {
                anchor,
                recursive,
                all,
                ..
            } => {
                out.push(format!(
                    "{pad}Recursive Union{}",
                    if *all { " All" } else { "" }
                ));
                anchor.explain_into(depth + 1, out, stats, next);
                recursive.explain_into(depth + 1, out, stats, next);
            }
            Node::WorkTable { name, .. } => {
                out.push(format!("{pad}WorkTable Scan on {name}"));
            }
        }
    }
}

/// `filter` without the conjuncts in `applied`.
/// Whether an index-only scan applies all of `filter` by its bounds: for a table, whose
/// entries hold its typed values and the view's state, the entries the bounds give are
/// then the rows that pass it (the filter is not tested, nor its columns read).
pub(crate) fn index_applies_filter(
    collection: &crate::catalog::Collection,
    a: &IndexAccess,
    filter: Option<&Expr>,
) -> bool {
    a.covering
        && collection.kind == crate::catalog::Kind::Table
        && filter.is_none_or(|f| residual(f, &a.conditions).is_none())
}

pub(crate) fn residual(filter: &Expr, applied: &[Expr]) -> Option<Expr> {
    fn walk(e: &Expr, applied: &[Expr], out: &mut Vec<Expr>) {
        match e {
            Expr::Binary(crate::query::expr::BinOp::And, l, r) => {
                walk(l, applied, out);
                walk(r, applied, out);
            }
            other if applied.contains(other) => {}
            other => out.push(other.clone()),
        }
    }
    let mut rest = Vec::new();
    walk(filter, applied, &mut rest);
    rest.into_iter()
        .reduce(|a, b| Expr::Binary(crate::query::expr::BinOp::And, Box::new(a), Box::new(b)))
}

/// The key ranges an index scan reads, as `[lower, upper]` tuples over the index's
/// fields (`-inf`/`+inf` where unbounded).
fn show_bounds(a: &IndexAccess, cols: &[Column]) -> String {
    let pin = |p: &Pin| match p {
        Pin::Value(e) => show(e, cols),
        Pin::Null => "NULL".to_string(),
    };
    let ranges: Vec<String> = a
        .prefixes
        .iter()
        .map(|prefix| {
            let fixed: Vec<String> = prefix.iter().map(pin).collect();
            let bound = |b: &Option<RangeBound>, open: &str| {
                b.as_ref()
                    .map_or(open.to_string(), |b| show(&b.value, cols))
            };
            let (lo, hi) = if prefix.len() < a.index.fields.len() {
                let (lo, hi) = (bound(&a.lower, "-inf"), bound(&a.upper, "+inf"));
                let mut l = fixed.clone();
                l.push(lo);
                let mut h = fixed;
                h.push(hi);
                (l, h)
            } else {
                (fixed.clone(), fixed)
            };
            let lb = if a.lower.as_ref().is_some_and(|b| !b.inclusive) {
                "("
            } else {
                "["
            };
            let ub = if a.upper.as_ref().is_some_and(|b| !b.inclusive) {
                ")"
            } else {
                "]"
            };
            format!("{lb}{}; {}{ub}", lo.join(", "), hi.join(", "))
        })
        .collect();
    ranges.join(" ")
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

/// `f(args) OVER (PARTITION BY ... ORDER BY ... frame)`.
fn show_window(c: &WindowCall, cols: &[Column]) -> String {
    let mut window = Vec::new();
    if !c.partition_by.is_empty() {
        let keys: Vec<String> = c.partition_by.iter().map(|e| show(e, cols)).collect();
        window.push(format!("PARTITION BY {}", keys.join(", ")));
    }
    if !c.order_by.is_empty() {
        window.push(format!("ORDER BY {}", show_sort_keys(&c.order_by, cols)));
    }
    if c.frame != Default::default() {
        let bound = |b: &FrameBound| match b {
            FrameBound::UnboundedPreceding => "UNBOUNDED PRECEDING".to_string(),
            FrameBound::Preceding(e) => format!("{} PRECEDING", show(e, cols)),
            FrameBound::CurrentRow => "CURRENT ROW".to_string(),
            FrameBound::Following(e) => format!("{} FOLLOWING", show(e, cols)),
            FrameBound::UnboundedFollowing => "UNBOUNDED FOLLOWING".to_string(),
        };
        window.push(format!(
            "{} BETWEEN {} AND {}",
            if c.frame.rows { "ROWS" } else { "RANGE" },
            bound(&c.frame.start),
            bound(&c.frame.end)
        ));
    }
    let args = if c.func == WindowFunc::Agg(AggFunc::CountStar) {
        "*".to_string()
    } else {
        let a: Vec<String> = c.args.iter().map(|e| show(e, cols)).collect();
        a.join(", ")
    };
    format!("{}({args}) OVER ({})", c.func.name(), window.join(" "))
}

/// Sort keys as EXPLAIN shows them: `x DESC NULLS LAST, y`.
fn show_sort_keys(keys: &[SortKey], cols: &[Column]) -> String {
    let list: Vec<String> = keys
        .iter()
        .map(|k| {
            let mut s = show(&k.expr, cols);
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
    list.join(", ")
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
        Expr::Outer { depth, index } => format!("outer{depth}.${}", index + 1),
        Expr::Window(c) => show_window(c, cols),
        Expr::Subquery(crate::query::expr::SubqueryKind::Scalar, _) => "(SubPlan)".into(),
        Expr::Subquery(crate::query::expr::SubqueryKind::Exists, _) => "EXISTS(SubPlan)".into(),
        Expr::Subquery(crate::query::expr::SubqueryKind::Array, _) => "ARRAY(SubPlan)".into(),
        Expr::Lookup(t, e) => format!("{:?}({})", t.kind, show(e, cols)),
        Expr::Quantified {
            op,
            all,
            left,
            right,
        } => format!(
            "({} {} {}({}))",
            show(left, cols),
            op.symbol(),
            if *all { "ALL" } else { "ANY" },
            show(right, cols)
        ),
        Expr::InSubquery { expr, negated, .. } => format!(
            "({} {}IN (SubPlan))",
            show(expr, cols),
            if *negated { "NOT " } else { "" }
        ),
    }
}

impl Node {
    /// Replaces each input node `n` by `f(n)` (not recursively).
    pub fn map_children(
        self,
        f: &mut dyn FnMut(Node) -> crate::error::Result<Node>,
    ) -> crate::error::Result<Node> {
        use crate::error::Result;
        let b = |n: Box<Node>, f: &mut dyn FnMut(Node) -> Result<Node>| -> Result<Box<Node>> {
            Ok(Box::new(f(*n)?))
        };
        Ok(match self {
            n @ (Node::Scan { .. } | Node::Values { .. } | Node::TableFunction { .. }) => n,
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
            Node::Window {
                input,
                funcs,
                columns,
            } => Node::Window {
                input: b(input, f)?,
                funcs,
                columns,
            },
            Node::ProjectSet {
                input,
                funcs,
                columns,
            } => Node::ProjectSet {
                input: b(input, f)?,
                funcs,
                columns,
            },
            // The right side is planned per left row (see `Node::Lateral`).
            Node::Lateral {
                left,
                right,
                outer,
                condition,
                columns,
            } => Node::Lateral {
                left: b(left, f)?,
                right,
                outer,
                condition,
                columns,
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
            Node::Join {
                left,
                right,
                kind,
                condition,
                equi,
            } => Node::Join {
                left: b(left, f)?,
                right: b(right, f)?,
                kind,
                condition,
                equi,
            },
            Node::SetOp {
                left,
                right,
                op,
                all,
            } => Node::SetOp {
                left: b(left, f)?,
                right: b(right, f)?,
                op,
                all,
            },
            Node::RecursiveUnion {
                id,
                anchor,
                recursive,
                all,
            } => Node::RecursiveUnion {
                id,
                anchor: b(anchor, f)?,
                recursive: b(recursive, f)?,
                all,
            },
            n @ Node::WorkTable { .. } => n,
        })
    }

    /// Replaces every expression of the plan (inputs included) by `f` of it. Index
    /// accesses, which only the optimizer builds, are left as they are.
    pub fn map_exprs(
        self,
        f: &mut dyn FnMut(Expr) -> crate::error::Result<Expr>,
    ) -> crate::error::Result<Node> {
        use crate::error::Result;
        let all = |v: Vec<Expr>, f: &mut dyn FnMut(Expr) -> Result<Expr>| -> Result<Vec<Expr>> {
            v.into_iter().map(&mut *f).collect()
        };
        // Inputs first, then this node's own expressions.
        let node = self.map_children(&mut |n| n.map_exprs(&mut *f))?;
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
                access: match access {
                    Access::Keys(keys) => Access::Keys(all(keys, f)?),
                    other => other,
                },
                filter: filter.map(&mut *f).transpose()?,
            },
            Node::Values { rows, columns } => Node::Values {
                rows: rows.into_iter().map(|r| all(r, f)).collect::<Result<_>>()?,
                columns,
            },
            Node::TableFunction {
                func,
                args,
                columns,
                ordinality,
            } => Node::TableFunction {
                func,
                args: all(args, f)?,
                columns,
                ordinality,
            },
            Node::Filter { input, predicate } => Node::Filter {
                input,
                predicate: f(predicate)?,
            },
            Node::Project {
                input,
                exprs,
                columns,
            } => Node::Project {
                input,
                exprs: all(exprs, f)?,
                columns,
            },
            Node::Aggregate {
                input,
                group_by,
                aggs,
                columns,
            } => Node::Aggregate {
                input,
                group_by: all(group_by, f)?,
                aggs: aggs
                    .into_iter()
                    .map(|mut a| {
                        a.arg = a.arg.map(|x| f(*x).map(Box::new)).transpose()?;
                        Ok(a)
                    })
                    .collect::<Result<_>>()?,
                columns,
            },
            Node::Sort { input, keys } => Node::Sort {
                input,
                keys: keys
                    .into_iter()
                    .map(|k| {
                        Ok(SortKey {
                            expr: f(k.expr)?,
                            ..k
                        })
                    })
                    .collect::<Result<_>>()?,
            },
            Node::Window {
                input,
                funcs,
                columns,
            } => Node::Window {
                input,
                funcs: funcs
                    .into_iter()
                    .map(|c| c.map_exprs(f))
                    .collect::<Result<_>>()?,
                columns,
            },
            Node::Lateral {
                left,
                right,
                outer,
                condition,
                columns,
            } => Node::Lateral {
                left,
                right,
                outer,
                condition: condition.map(&mut *f).transpose()?,
                columns,
            },
            Node::ProjectSet {
                input,
                funcs,
                columns,
            } => Node::ProjectSet {
                input,
                funcs: funcs
                    .into_iter()
                    .map(|(func, args)| Ok((func, all(args, f)?)))
                    .collect::<Result<_>>()?,
                columns,
            },
            Node::Limit {
                input,
                limit,
                offset,
            } => Node::Limit {
                input,
                limit: limit.map(&mut *f).transpose()?,
                offset: offset.map(&mut *f).transpose()?,
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
                condition: condition.map(&mut *f).transpose()?,
                equi: equi
                    .into_iter()
                    .map(|(l, r)| Ok((f(l)?, f(r)?)))
                    .collect::<Result<_>>()?,
            },
            other => other,
        })
    }

    /// The input nodes [`Node::map_children`] replaces (not the right side of a
    /// lateral join, planned per left row).
    pub fn children(&self) -> Vec<&Node> {
        match self {
            Node::Scan { .. } | Node::Values { .. } | Node::TableFunction { .. } => vec![],
            Node::WorkTable { .. } => vec![],
            Node::Filter { input, .. }
            | Node::Project { input, .. }
            | Node::Aggregate { input, .. }
            | Node::Sort { input, .. }
            | Node::Window { input, .. }
            | Node::ProjectSet { input, .. }
            | Node::Limit { input, .. }
            | Node::Distinct { input } => vec![input],
            Node::Lateral { left, .. } => vec![left],
            Node::Join { left, right, .. } | Node::SetOp { left, right, .. } => vec![left, right],
            Node::RecursiveUnion {
                anchor, recursive, ..
            } => vec![anchor, recursive],
        }
    }

    /// Calls `f` on every expression [`Node::map_exprs`] would replace, inputs first,
    /// without taking the plan apart.
    pub fn for_each_expr(&self, f: &mut dyn FnMut(&Expr)) {
        for child in self.children() {
            child.for_each_expr(f);
        }
        match self {
            Node::Scan { access, filter, .. } => {
                if let Access::Keys(keys) = access {
                    keys.iter().for_each(&mut *f);
                }
                filter.iter().for_each(f);
            }
            Node::Values { rows, .. } => rows.iter().flatten().for_each(f),
            Node::TableFunction { args, .. } => args.iter().for_each(f),
            Node::Filter { predicate, .. } => f(predicate),
            Node::Project { exprs, .. } => exprs.iter().for_each(f),
            Node::Aggregate { group_by, aggs, .. } => {
                group_by.iter().for_each(&mut *f);
                aggs.iter().filter_map(|a| a.arg.as_deref()).for_each(f);
            }
            Node::Sort { keys, .. } => keys.iter().for_each(|k| f(&k.expr)),
            Node::Window { funcs, .. } => funcs.iter().flat_map(|c| c.exprs()).for_each(f),
            Node::Lateral { condition, .. } => condition.iter().for_each(f),
            Node::ProjectSet { funcs, .. } => funcs.iter().flat_map(|(_, args)| args).for_each(f),
            Node::Limit { limit, offset, .. } => limit.iter().chain(offset).for_each(f),
            Node::Join {
                condition, equi, ..
            } => {
                condition.iter().for_each(&mut *f);
                equi.iter().for_each(|(l, r)| {
                    f(l);
                    f(r);
                });
            }
            Node::Distinct { .. }
            | Node::SetOp { .. }
            | Node::RecursiveUnion { .. }
            | Node::WorkTable { .. } => {}
        }
    }

    /// Whether any expression of the plan holds a subquery.
    pub fn has_subqueries(&self) -> bool {
        let mut found = false;
        self.for_each_expr(&mut |e| {
            e.walk(&mut |x| {
                found |= matches!(x, Expr::Subquery(..) | Expr::InSubquery { .. });
            });
        });
        found
    }
}
