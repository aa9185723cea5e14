//! Top groups: `SELECT k, ..., agg(...) FROM c GROUP BY k, ... ORDER BY k, ... LIMIT n`
//! over a table with an index whose first field is `k`. The groups of a value of `k`
//! sort before those of every later value, so once the groups of the first `j` values
//! (in the order asked for) number `n` or more, they hold the answer. The index gives
//! the `j`-th distinct value (one seek per value), and the aggregate runs over the rows
//! with `k` up to it only (an index range), for `j` = 1, 2, 4, ... until it makes
//! enough groups; past `n` values it would need no more (each value makes a group).
//!
//! Taken only where that holds exactly: a plain scan of a table with no filter (a
//! filter could leave a value without rows), no HAVING (the projection sits right on
//! the aggregate), the first sort key a plain grouped column, NULLs sorting last.

use std::sync::Arc;

use super::{ExecContext, RowIter, index_scan};
use crate::catalog::{Collection, IndexDef, Kind};
use crate::doc::{Value, keycode};
use crate::error::Result;
use crate::query::Row;
use crate::query::expr::{BinOp, Expr};
use crate::query::plan::{Access, IndexAccess, IndexOrder, Node, RangeBound, SortKey};

/// Most groups (LIMIT plus OFFSET) the narrowing is tried for: beyond, the index walk
/// would cost about what it saves.
const MAX_GROUPS: usize = 1000;

/// Where the narrowing applies (see the module doc): the index it walks and the
/// grouped scan column that is its first field.
pub struct Narrowing<'a> {
    /// The index whose first field the first sort key is.
    pub index: &'a IndexDef,
    column: usize,
    first: &'a SortKey,
    collection: &'a Collection,
}

/// The narrowing of `sorted` (the input of a `Sort` by `keys` under a `Limit` passing
/// `groups` rows), where it applies; nothing is read.
pub fn narrowing<'a>(
    sorted: &'a Node,
    keys: &'a [SortKey],
    groups: Option<usize>,
    ctx: &ExecContext,
) -> Option<Narrowing<'a>> {
    groups.filter(|g| (1..=MAX_GROUPS).contains(g))?;
    let Node::Project {
        input: aggregate,
        exprs,
        ..
    } = sorted
    else {
        return None;
    };
    let Node::Aggregate {
        input: scan,
        group_by,
        ..
    } = &**aggregate
    else {
        return None;
    };
    let Node::Scan {
        collection,
        columns: scan_columns,
        access: Access::Full,
        filter: None,
        ..
    } = &**scan
    else {
        return None;
    };
    let first = keys.first()?;
    // The first sort key, through the projection, as a grouped scan column.
    let column = match &first.expr {
        Expr::Column(p) => match exprs.get(*p) {
            Some(Expr::Column(a)) => match group_by.get(*a) {
                Some(Expr::Column(c)) => *c,
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    let name = scan_columns.get(column).map(|c| c.name.clone())?;
    if collection.kind != Kind::Table || first.nulls_first {
        return None;
    }
    let index = collection
        .ready_indexes()
        .find(|i| i.fields.first().is_some_and(|f| *f == [name.clone()]))?;
    if !ctx
        .view
        .index_usable(collection.id, ctx.db.catalog().conflicts())
    {
        return None;
    }
    Some(Narrowing {
        index,
        column,
        first,
        collection,
    })
}

/// The rows of `sorted` (the input of a `Sort` under a `Limit` passing `groups` rows)
/// that the first `groups` rows of the sort come from, as the module doc says, built as
/// plan nodes numbered from `next` on; None where that does not apply (then nothing was
/// built or read).
pub fn first_groups(
    sorted: &Node,
    keys: &[SortKey],
    groups: Option<usize>,
    ctx: &Arc<ExecContext>,
    next: &mut usize,
) -> Result<Option<RowIter>> {
    let Some(Narrowing {
        index,
        column,
        first,
        collection,
    }) = narrowing(sorted, keys, groups, ctx)
    else {
        return Ok(None);
    };
    let groups = groups.unwrap_or(MAX_GROUPS);
    ctx.view
        .index_read(collection.id, ctx.db.catalog().conflicts())?;
    let first_slot = *next;
    let mut values: Vec<Value> = Vec::new();
    let mut want = 1usize;
    loop {
        // The first `want` distinct values (fewer when the index has fewer).
        while values.len() < want {
            match next_value(index, first.desc, values.last(), ctx)? {
                Some(v) => values.push(v),
                None => break,
            }
        }
        let Some(edge) = values.get(want - 1).cloned() else {
            // The index ran out of values: every row is needed.
            return Ok(None);
        };
        let bound = RangeBound {
            value: Expr::Literal(edge.clone()),
            inclusive: true,
        };
        let op = if first.desc { BinOp::GtEq } else { BinOp::LtEq };
        let condition = Expr::Binary(
            op,
            Box::new(Expr::Column(column)),
            Box::new(Expr::Literal(edge)),
        );
        let (lower, upper) = if first.desc {
            (Some(bound), None)
        } else {
            (None, Some(bound))
        };
        // The same plan, its scan narrowed to the index range.
        let mut narrowed = sorted.clone();
        if let Node::Project { input, .. } = &mut narrowed
            && let Node::Aggregate { input, .. } = &mut **input
            && let Node::Scan { access, filter, .. } = &mut **input
        {
            *access = Access::Index(Box::new(IndexAccess {
                index: index.clone(),
                prefixes: vec![Vec::new()],
                lower,
                upper,
                order: IndexOrder::Any,
                covering: false,
                conditions: vec![condition.clone()],
                estimate: 0,
            }));
            *filter = Some(condition);
        }
        // Under EXPLAIN ANALYZE each try counts in the same operators.
        *next = first_slot;
        let rows: Vec<Row> = super::build_numbered(&narrowed, ctx, next)?.collect::<Result<_>>()?;
        if rows.len() >= groups || want >= groups {
            return Ok(Some(Box::new(rows.into_iter().map(Ok))));
        }
        want = (want * 2).min(groups);
    }
}

/// The first value of `index`'s first field after `after` (None: the first of all) in
/// ascending or descending order, NULLs left out; None when there is none.
fn next_value(
    index: &IndexDef,
    desc: bool,
    after: Option<&Value>,
    ctx: &Arc<ExecContext>,
) -> Result<Option<Value>> {
    let past = after.map(|v| RangeBound {
        value: Expr::Literal(v.clone()),
        inclusive: false,
    });
    let (lower, upper) = if desc { (None, past) } else { (past, None) };
    let walk = IndexAccess {
        index: index.clone(),
        prefixes: vec![Vec::new()],
        lower,
        upper,
        order: IndexOrder::By {
            desc,
            nulls_first: false,
        },
        covering: false,
        conditions: Vec::new(),
        estimate: 0,
    };
    let Some(entry) = index_scan::entries(ctx.db.storage(), &walk, ctx)?.next() else {
        return Ok(None);
    };
    let mut value = Value::Null;
    keycode::read_index_entry(&entry?, |i| i == 0, false, |_, v| value = v)?;
    Ok((!matches!(value, Value::Null)).then_some(value))
}
