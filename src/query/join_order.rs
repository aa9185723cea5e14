//! Join order: a tree of inner joins (`FROM a, b, c` or `a JOIN b ON ... JOIN c ON ...`,
//! with the WHERE above it) is flattened into its inputs and its conditions, and joined
//! again in the order the statistics say is cheapest.
//!
//! - **Estimates.** A collection scan starts from the collection's exact document
//!   count ([`crate::catalog::Catalog::document_count`]); a condition pinning its key
//!   leaves one row per value, an equality on another field `1 / distinct values`
//!   (an index's count of distinct first values, else a tenth of the rows), anything
//!   else a third. An equality between two inputs keeps `1 / max(distinct values)` of
//!   their pairs. Other inputs (derived tables, functions) count 1000 rows.
//! - **Order.** Greedy: the input with the fewest estimated rows first, then each time
//!   the input whose join with those already joined gives the fewest rows (inputs with
//!   a condition linking them before a cross product).
//! - **Sides.** The executor builds the hash table of the right side and can probe a
//!   right-side collection by its key or an index when the left side is small
//!   ([`crate::query::exec::join`]): a side of at most that many rows whose partner can
//!   be probed goes left; otherwise the smaller side goes right.
//! - **Only when it pays.** Both trees, as written and as chosen, are costed (per join:
//!   rows probing, rows hashed at three times that, rows produced; a probed join: its
//!   left rows and twice the rows produced); the chosen one replaces the written one
//!   only if it costs less than 70% of it and saves the work of 1000 rows, so small or
//!   well-written joins keep their order.
//!
//! The reordered tree's columns are put back in the written order by a projection, so
//! the plan above is unchanged. Conditions holding a subquery stay above that
//! projection: a correlated subquery reads the row by its written column positions.

use std::ops::Bound;

use crate::catalog::KeyForm;
use crate::doc::Value;
use crate::error::Result;
use crate::query::access::PlanContext;
use crate::query::exec::join::PROBE_MAX_ROWS;
use crate::query::expr::{BinOp, Expr};
use crate::query::optimizer::{self, conjuncts, has_subquery, reads_no_row};
use crate::query::plan::{JoinKind, Node, RangeBound};
use crate::storage::keys;
use crate::storage::shape::Presence;

/// Inputs beyond which joins keep their written order.
const MAX_INPUTS: usize = 10;
/// Rows assumed for an input that is not a collection scan.
const DEFAULT_ROWS: f64 = 1000.0;
/// A row put into a hash table (kept in memory, hashed) against a row probing it.
const BUILD_COST: f64 = 3.0;
/// The chosen order replaces the written one if it costs less than this share of it,
/// and saves at least this many rows' work.
const WORTH_IT: f64 = 0.7;
const MIN_SAVING: f64 = 1000.0;

/// The pass: every inner-join tree of the plan, reordered where it pays.
pub fn order_joins(node: Node, ctx: &PlanContext<'_>) -> Result<Node> {
    let is_cluster =
        |n: &Node| matches!(n, Node::Join { kind: JoinKind::Inner, equi, .. } if equi.is_empty());
    match node {
        Node::Filter { input, predicate } if is_cluster(&input) => {
            reorder(*input, Some(predicate), ctx)
        }
        n if is_cluster(&n) => reorder(n, None, ctx),
        other => other.map_children(&mut |n| order_joins(n, ctx)),
    }
}

/// One input of a join tree: its first column in the written row, and its width.
struct Input {
    offset: usize,
    width: usize,
}

/// The inputs (in written order, with their nodes) and the conjuncts (over the written
/// row) of the inner join tree `node`.
fn flatten<'n>(
    node: &'n Node,
    offset: usize,
    inputs: &mut Vec<(Input, &'n Node)>,
    conds: &mut Vec<Expr>,
) -> Result<()> {
    match node {
        Node::Join {
            left,
            right,
            kind: JoinKind::Inner,
            condition,
            equi,
        } if equi.is_empty() => {
            let lw = left.columns().len();
            flatten(left, offset, inputs, conds)?;
            flatten(right, offset + lw, inputs, conds)?;
            if let Some(c) = condition {
                let mut parts = Vec::new();
                conjuncts(c, &mut parts);
                for p in parts {
                    conds.push(shift(p, offset)?);
                }
            }
        }
        other => inputs.push((
            Input {
                offset,
                width: other.columns().len(),
            },
            other,
        )),
    }
    Ok(())
}

/// The inputs of the inner join tree `node`, owned, in written order; the joins'
/// conditions are dropped (`flatten` took copies).
fn take_inputs(node: Node, out: &mut Vec<Node>) {
    match node {
        Node::Join {
            left,
            right,
            kind: JoinKind::Inner,
            equi,
            ..
        } if equi.is_empty() => {
            take_inputs(*left, out);
            take_inputs(*right, out);
        }
        other => out.push(other),
    }
}

/// Whether input `node` can be probed by `local` (an expression over its row): its
/// key, or the first field of one of its indexes, of a plain collection scan.
fn probeable(local: &Expr, node: &Node, s: &Stats) -> bool {
    let Node::Scan {
        collection,
        columns,
        ..
    } = node
    else {
        return false;
    };
    if matches!(local, Expr::Column(c) if Some(*c) == s.key) {
        return true;
    }
    crate::query::access::field_path(local, collection, columns).is_some_and(|path| {
        collection
            .ready_indexes()
            .any(|i| i.fields.first() == Some(&path))
    })
}

/// `e` with every column index raised by `by`.
fn shift(e: Expr, by: usize) -> Result<Expr> {
    if by == 0 {
        return Ok(e);
    }
    e.transform(&mut |x| {
        Ok(match x {
            Expr::Column(i) => Expr::Column(i + by),
            other => other,
        })
    })
}

/// The planner's view of one input.
struct Stats {
    /// Rows before any condition.
    base: f64,
    /// Rows after the conditions that read only this input.
    rows: f64,
    /// The input's key column, for a collection scan (its values are distinct).
    key: Option<usize>,
}

/// Distinct values of `local` (an expression over input `s`'s row).
fn distinct(local: &Expr, input: &Node, s: &Stats, ctx: &PlanContext<'_>) -> f64 {
    if matches!(local, Expr::Column(c) if Some(*c) == s.key) {
        return s.base.max(1.0);
    }
    if let Node::Scan {
        collection,
        columns,
        ..
    } = input
        && let Some(path) = crate::query::access::field_path(local, collection, columns)
        && let Some(index) = collection
            .ready_indexes()
            .find(|i| i.fields.first() == Some(&path))
        && let Ok(st) = ctx.storage.indexes().stats(index.id)
        && st.distinct_first > 0
    {
        return st.distinct_first as f64;
    }
    (s.base / 10.0).max(1.0)
}

/// Which inputs an expression over the written row reads (a bit set).
fn reads(e: &Expr, inputs: &[Input]) -> u64 {
    let mut set = 0u64;
    e.walk(&mut |x| {
        if let Expr::Column(c) = x
            && let Some(i) = inputs
                .iter()
                .position(|inp| *c >= inp.offset && *c < inp.offset + inp.width)
        {
            set |= 1 << i;
        }
    });
    set
}

/// `e` (over the written row) as an expression over input `i`'s own row.
fn localize(e: &Expr, inp: &Input) -> Result<Expr> {
    e.clone().transform(&mut |x| {
        Ok(match x {
            Expr::Column(c) => Expr::Column(c.saturating_sub(inp.offset)),
            other => other,
        })
    })
}

/// A condition between inputs: the equality `a = b` of an expression over input `l`
/// and one over input `r` keeps `1 / sel` of the pairs.
struct Link {
    set: u64,
    /// For an equality: for both sides, the input it reads and whether that input can
    /// be probed by it (its key, or an index's first field, of a collection scan).
    sides: Option<[(usize, bool); 2]>,
    selectivity: f64,
}

/// The join tree being costed or built: inputs by position, or a join of two trees.
#[derive(Clone, Debug)]
enum Tree {
    Input(usize),
    Join(Box<Tree>, Box<Tree>),
}

impl Tree {
    fn set(&self) -> u64 {
        match self {
            Tree::Input(i) => 1 << i,
            Tree::Join(l, r) => l.set() | r.set(),
        }
    }

    /// Inputs in output-column order.
    fn order(&self, out: &mut Vec<usize>) {
        match self {
            Tree::Input(i) => out.push(*i),
            Tree::Join(l, r) => {
                l.order(out);
                r.order(out);
            }
        }
    }
}

struct Model<'a> {
    stats: Vec<Stats>,
    links: Vec<Link>,
    inputs: &'a [Input],
}

impl Model<'_> {
    /// Estimated rows of joining the inputs of `set` with every condition among them.
    fn rows(&self, set: u64) -> f64 {
        let mut rows: f64 = (0..self.stats.len())
            .filter(|i| set & (1 << i) != 0)
            .map(|i| self.stats[i].rows)
            .product();
        for l in &self.links {
            if l.set & set == l.set {
                rows *= l.selectivity;
            }
        }
        rows.max(1.0)
    }

    /// Whether the single input `right` can be probed by a key linking it to `left`.
    fn probeable(&self, left: u64, right: &Tree) -> bool {
        let Tree::Input(r) = right else {
            return false;
        };
        self.links.iter().any(|l| {
            let Some(sides) = &l.sides else {
                return false;
            };
            sides.iter().any(|(i, probe)| {
                *i == *r && *probe && sides.iter().any(|(j, _)| left & (1 << j) != 0)
            })
        })
    }

    /// Cost of joining `l` and `r` in this order (`r` is built or probed).
    fn join_cost(&self, l: &Tree, r: &Tree) -> f64 {
        let (lr, rr) = (self.rows(l.set()), self.rows(r.set()));
        let out = self.rows(l.set() | r.set());
        if lr <= PROBE_MAX_ROWS as f64 && self.probeable(l.set(), r) {
            lr + 2.0 * out
        } else {
            lr + BUILD_COST * rr + out
        }
    }

    /// The joins' cost (reading the inputs costs the same in any order).
    fn cost(&self, t: &Tree) -> f64 {
        match t {
            Tree::Input(_) => 0.0,
            Tree::Join(l, r) => self.cost(l) + self.cost(r) + self.join_cost(l, r),
        }
    }

    /// The greedy order (see the module doc).
    fn choose(&self) -> Tree {
        let n = self.stats.len();
        let first = (0..n)
            .min_by(|a, b| self.stats[*a].rows.total_cmp(&self.stats[*b].rows))
            .unwrap_or(0);
        let mut tree = Tree::Input(first);
        let mut done = 1u64 << first;
        while done.count_ones() < n as u32 {
            let linked = |i: usize| {
                self.links.iter().any(|l| {
                    l.set & (1 << i) != 0 && l.set & done != 0 && l.set & !(done | 1 << i) == 0
                })
            };
            let candidates: Vec<usize> = (0..n).filter(|i| done & (1 << i) == 0).collect();
            let pool: Vec<usize> = if candidates.iter().any(|i| linked(*i)) {
                candidates.into_iter().filter(|i| linked(*i)).collect()
            } else {
                candidates
            };
            let Some(next) = pool.into_iter().min_by(|a, b| {
                self.rows(done | 1 << a)
                    .total_cmp(&self.rows(done | 1 << b))
            }) else {
                break;
            };
            let leaf = Tree::Input(next);
            let as_right = Tree::Join(Box::new(tree.clone()), Box::new(leaf.clone()));
            let as_left = Tree::Join(Box::new(leaf), Box::new(tree));
            tree = if self.join_cost_of(&as_right) <= self.join_cost_of(&as_left) {
                as_right
            } else {
                as_left
            };
            done |= 1 << next;
        }
        tree
    }

    fn join_cost_of(&self, t: &Tree) -> f64 {
        match t {
            Tree::Join(l, r) => self.join_cost(l, r),
            Tree::Input(_) => 0.0,
        }
    }
}

/// The written tree's shape, over input positions.
fn written(node: &Node, next: &mut usize) -> Tree {
    match node {
        Node::Join {
            left,
            right,
            kind: JoinKind::Inner,
            equi,
            ..
        } if equi.is_empty() => {
            let l = written(left, next);
            let r = written(right, next);
            Tree::Join(Box::new(l), Box::new(r))
        }
        _ => {
            *next += 1;
            Tree::Input(*next - 1)
        }
    }
}

fn stats_of(node: &Node, conds: &[Expr], ctx: &PlanContext<'_>) -> Stats {
    let (base, key) = match node {
        Node::Scan { collection, .. } => (
            ctx.storage.document_count(collection.id) as f64,
            collection.key_position(),
        ),
        Node::Values { rows, .. } => (rows.len() as f64, None),
        _ => (DEFAULT_ROWS, None),
    };
    let mut s = Stats {
        base,
        rows: base,
        key,
    };
    // Bounds on an ordered integer key: the rows inside them counted, where few.
    let counted = key.and_then(|k| key_range_rows(node, conds, k, ctx));
    if let Some(n) = counted {
        s.rows = n;
    }
    for c in conds {
        if counted.is_some() && key.is_some_and(|k| optimizer::key_range(c, k).is_some()) {
            continue;
        }
        let keep = match c {
            Expr::Binary(BinOp::Eq, a, b) if reads_no_row(b) || reads_no_row(a) => {
                let col = if reads_no_row(b) { a } else { b };
                1.0 / distinct(col, node, &s, ctx)
            }
            Expr::InList {
                expr,
                list,
                negated: false,
            } => (list.len() as f64 / distinct(expr, node, &s, ctx)).min(1.0),
            _ => 1.0 / 3.0,
        };
        s.rows *= keep;
    }
    s.rows = s.rows.max(1.0);
    s
}

/// Most rows [`key_range_rows`] counts.
const KEY_RANGE_COUNT_CAP: usize = 4 * PROBE_MAX_ROWS;

/// The rows of collection scan `node` inside the bounds its conditions `conds` put on
/// its key column `key`, where the key is stored in its ordered integer form and the
/// bounds are integer literals: counted in the storage (keys only), up to
/// [`KEY_RANGE_COUNT_CAP`]. None without such bounds, or past the cap.
fn key_range_rows(node: &Node, conds: &[Expr], key: usize, ctx: &PlanContext<'_>) -> Option<f64> {
    let Node::Scan { collection, .. } = node else {
        return None;
    };
    if collection.key_form != KeyForm::Integer {
        return None;
    }
    let all = conds
        .iter()
        .cloned()
        .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)))?;
    let range = optimizer::key_range(&all, key)?;
    let cid = collection.id;
    let at = |i: i64| keys::encode(cid, &keys::integer_id(i));
    let side = |b: &Option<RangeBound>| -> Option<Option<(i64, bool)>> {
        match b {
            None => Some(None),
            Some(RangeBound {
                value: Expr::Literal(Value::Int(i)),
                inclusive,
            }) => Some(Some((*i, *inclusive))),
            Some(_) => None,
        }
    };
    let start = match side(&range.lower)? {
        None => Bound::Included(keys::collection_start(cid)),
        Some((i, true)) => Bound::Included(at(i)),
        Some((i, false)) => Bound::Excluded(at(i)),
    };
    let end = match side(&range.upper)? {
        None => keys::collection_end(cid).map_or(Bound::Unbounded, Bound::Excluded),
        Some((i, true)) => Bound::Included(at(i)),
        Some((i, false)) => Bound::Excluded(at(i)),
    };
    let counted = ctx
        .storage
        .snapshot()
        .scan_shaped(start, end, Presence)
        .take(KEY_RANGE_COUNT_CAP + 1)
        .map_while(|item| item.ok())
        .count();
    (counted <= KEY_RANGE_COUNT_CAP).then_some(counted.max(1) as f64)
}

/// Reorders the inner join tree `join` with the WHERE `filter` above it, if it pays.
fn reorder(join: Node, filter: Option<Expr>, ctx: &PlanContext<'_>) -> Result<Node> {
    let mut flat = Vec::new();
    let mut conds = Vec::new();
    flatten(&join, 0, &mut flat, &mut conds)?;
    let (inputs, inputs_ref): (Vec<Input>, Vec<&Node>) = flat.into_iter().unzip();
    if let Some(f) = &filter {
        conjuncts(f, &mut conds);
    }
    let keep_written = |join: Node, filter: Option<Expr>| -> Result<Node> {
        let join = join.map_children(&mut |n| order_joins(n, ctx))?;
        Ok(match filter {
            Some(predicate) => Node::Filter {
                input: Box::new(join),
                predicate,
            },
            None => join,
        })
    };
    if inputs.len() < 2 || inputs.len() > MAX_INPUTS {
        return keep_written(join, filter);
    }
    // Conjuncts: per input, between inputs, and the rest (subqueries, constants).
    let mut local: Vec<Vec<Expr>> = vec![Vec::new(); inputs.len()];
    let mut links = Vec::new();
    for c in &conds {
        if has_subquery(c) {
            continue;
        }
        let set = reads(c, &inputs);
        match set.count_ones() {
            0 => {}
            1 => {
                let i = set.trailing_zeros() as usize;
                local[i].push(localize(c, &inputs[i])?);
            }
            _ => links.push((c.clone(), set)),
        }
    }
    let stats: Vec<Stats> = inputs_ref
        .iter()
        .zip(&local)
        .map(|(n, conds)| stats_of(n, conds, ctx))
        .collect();
    let mut model_links = Vec::new();
    for (c, set) in links {
        let mut link = Link {
            set,
            sides: None,
            selectivity: 1.0 / 3.0,
        };
        if let Expr::Binary(BinOp::Eq, a, b) = &c {
            let (sa, sb) = (reads(a, &inputs), reads(b, &inputs));
            if sa.count_ones() == 1 && sb.count_ones() == 1 && sa != sb {
                let (ia, ib) = (sa.trailing_zeros() as usize, sb.trailing_zeros() as usize);
                let (la, lb) = (localize(a, &inputs[ia])?, localize(b, &inputs[ib])?);
                let da = distinct(&la, inputs_ref[ia], &stats[ia], ctx);
                let db = distinct(&lb, inputs_ref[ib], &stats[ib], ctx);
                link.selectivity = 1.0 / da.max(db).max(1.0);
                link.sides = Some([
                    (ia, probeable(&la, inputs_ref[ia], &stats[ia])),
                    (ib, probeable(&lb, inputs_ref[ib], &stats[ib])),
                ]);
            }
        }
        model_links.push(link);
    }
    let model = Model {
        stats,
        links: model_links,
        inputs: &inputs,
    };
    let as_written = written(&join, &mut 0);
    let chosen = model.choose();
    let (cost, written_cost) = (model.cost(&chosen), model.cost(&as_written));
    if cost >= WORTH_IT * written_cost || written_cost - cost < MIN_SAVING {
        return keep_written(join, filter);
    }
    drop(inputs_ref);
    let mut owned = Vec::new();
    take_inputs(join, &mut owned);
    let mut slots: Vec<Option<Node>> = Vec::with_capacity(owned.len());
    for n in owned {
        slots.push(Some(order_joins(n, ctx)?));
    }
    // The chosen tree's row: the inputs' columns in the chosen order.
    let mut order = Vec::new();
    chosen.order(&mut order);
    let mut layout: Vec<usize> = Vec::new();
    for i in &order {
        let inp = &model.inputs[*i];
        layout.extend(inp.offset..inp.offset + inp.width);
    }
    let mut position = vec![0usize; layout.len()];
    for (p, g) in layout.iter().enumerate() {
        position[*g] = p;
    }
    // Each condition goes to the lowest join holding every input it reads; those
    // reading no input, or holding a subquery, stay above.
    let mut placed: Vec<(u64, Expr)> = Vec::new();
    let mut above = Vec::new();
    for c in conds {
        let set = reads(&c, model.inputs);
        if has_subquery(&c) || set == 0 {
            above.push(c);
        } else {
            placed.push((set, c));
        }
    }
    let (tree_node, _) = build(&chosen, &mut slots, &mut placed, model.inputs)?;
    debug_assert!(placed.is_empty());
    let columns = tree_node.columns();
    let written_columns: Vec<_> = (0..layout.len())
        .map(|g| columns[position[g]].clone())
        .collect();
    let node = Node::Project {
        input: Box::new(tree_node),
        exprs: (0..layout.len())
            .map(|g| Expr::Column(position[g]))
            .collect(),
        columns: written_columns,
    };
    Ok(match above.into_iter().reduce(and) {
        Some(predicate) => Node::Filter {
            input: Box::new(node),
            predicate,
        },
        None => node,
    })
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::Binary(BinOp::And, Box::new(a), Box::new(b))
}

/// Builds the chosen tree; returns the node and the written-row columns of its output,
/// in order. Conditions in `placed` whose inputs the subtree holds become its joins'.
fn build(
    t: &Tree,
    slots: &mut [Option<Node>],
    placed: &mut Vec<(u64, Expr)>,
    inputs: &[Input],
) -> Result<(Node, Vec<usize>)> {
    match t {
        Tree::Input(i) => {
            let node = slots
                .get_mut(*i)
                .and_then(Option::take)
                .ok_or_else(|| crate::error::Error::Internal("join input used twice".into()))?;
            let inp = &inputs[*i];
            Ok((node, (inp.offset..inp.offset + inp.width).collect()))
        }
        Tree::Join(l, r) => {
            let (left, mut layout) = build(l, slots, placed, inputs)?;
            let (right, rl) = build(r, slots, placed, inputs)?;
            layout.extend(rl);
            let set = t.set();
            let mut here = Vec::new();
            let mut i = 0;
            while i < placed.len() {
                if placed[i].0 & set == placed[i].0 {
                    here.push(placed.swap_remove(i).1);
                } else {
                    i += 1;
                }
            }
            let max = layout.iter().copied().max().map_or(0, |m| m + 1);
            let mut pos = vec![usize::MAX; max];
            for (p, g) in layout.iter().enumerate() {
                pos[*g] = p;
            }
            let mut condition = None;
            for c in here {
                let c = c.transform(&mut |x| {
                    Ok(match x {
                        Expr::Column(g) => Expr::Column(pos.get(g).copied().unwrap_or(g)),
                        other => other,
                    })
                })?;
                condition = Some(match condition {
                    Some(prev) => and(prev, c),
                    None => c,
                });
            }
            Ok((
                Node::Join {
                    left: Box::new(left),
                    right: Box::new(right),
                    kind: JoinKind::Inner,
                    condition,
                    equi: Vec::new(),
                },
                layout,
            ))
        }
    }
}
