//! Scan: the rows of one collection, by full scan or by key lookups, with the pushed-down
//! filter applied as rows are produced.

use std::ops::Bound;
use std::sync::Arc;

use super::{ExecContext, RowIter};
use crate::catalog::{Collection, KeyForm, Kind};
use crate::doc::{Object, Value, keycode};
use crate::error::{Error, Result};
use crate::query::Row;
use crate::query::expr::{BinOp, Expr, PathStep, as_text};
use crate::query::optimizer;
use crate::query::plan::{Access, IndexAccess, RangeBound};
use crate::query::predicate::Predicate;
use crate::query::types::SqlType;
use crate::storage::cursor::RowCursor;
use crate::storage::recycle;
use crate::storage::shape::Columns;
use crate::storage::shape::{Shape, Whole};
use crate::storage::{NearBlocks, keys};
use crate::txn::{KeyedDocuments, ReadView};

/// The row of a document: `id` then the observed fields (schemaless), or the declared
/// columns (table). Missing fields are NULL.
pub fn document_row(collection: &Collection, id: &str, doc: &Object) -> Row {
    match collection.kind {
        Kind::Schemaless => {
            let mut row = Vec::with_capacity(collection.observed.len() + 1);
            row.push(Value::String(id.to_string()));
            for f in &collection.observed {
                row.push(doc.get(&f.name).cloned().unwrap_or(Value::Null));
            }
            row
        }
        Kind::Table => collection
            .columns
            .iter()
            .map(|c| doc.get(&c.name).cloned().unwrap_or(Value::Null))
            .collect(),
    }
}

/// [`document_row`] for a document the caller owns: values move into the row instead of
/// being copied.
pub fn document_row_owned(collection: &Collection, id: String, mut doc: Object) -> Row {
    match collection.kind {
        Kind::Schemaless => {
            let mut row = Vec::with_capacity(collection.observed.len() + 1);
            row.push(Value::String(id));
            for f in &collection.observed {
                row.push(doc.swap_remove(&f.name).unwrap_or(Value::Null));
            }
            row
        }
        Kind::Table => collection
            .columns
            .iter()
            .map(|c| doc.swap_remove(&c.name).unwrap_or(Value::Null))
            .collect(),
    }
}

/// A float or numeric with no fraction as the integer it equals; anything else as it is.
fn integral(v: Value) -> Value {
    let whole = match &v {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        Value::Numeric(n) => crate::query::types::parse_decimal(n)
            .filter(|d| d.fract().is_zero())
            .and_then(|d| i64::try_from(d).ok()),
        _ => None,
    };
    whole.map_or(v, Value::Int)
}

/// The document key a key expression's value names.
pub fn key_text(v: &Value) -> Option<String> {
    as_text(v)
}

/// A stream of (id, document) pairs.
pub type Documents = Box<dyn Iterator<Item = Result<(String, Object)>> + Send>;

/// Every document of `collection`, optionally only those with the given key values, as
/// (id, document) pairs.
pub fn documents(collection: &Collection, access: &Access, ctx: &ExecContext) -> Result<Documents> {
    let view = ctx.view.clone();
    let cid = collection.id;
    match picked(collection, access, ctx)? {
        None => Ok(Box::new(
            span(collection, access, ctx)?
                .read(&view, cid, Whole)
                .filter_map(move |item| match item {
                    Ok((key, doc)) => keys::decode(&key).map(|(_, id)| Ok((id.to_string(), doc))),
                    Err(e) => Some(Err(e)),
                }),
        )),
        Some(picked) => Ok(Box::new(picked.filter_map(move |p| {
            let doc = p
                .and_then(Picked::into_id)
                .and_then(|id| Ok(view.get(&keys::encode(cid, &id))?.map(|d| (id, d))));
            doc.transpose()
        }))),
    }
}

/// A document an access by keys or by index picks: its id, or the index entry that
/// names it (its id is read from the entry only when needed).
enum Picked {
    Id(String),
    Entry(Vec<u8>),
}

impl Picked {
    /// Writes the document's storage key in `collection` over `key`.
    fn key_into(&self, collection: u32, key: &mut Vec<u8>) -> Result<()> {
        keys::start_into(collection, key);
        match self {
            Picked::Id(id) => key.extend_from_slice(id.as_bytes()),
            Picked::Entry(entry) => keycode::append_entry_doc_id(entry, key)?,
        }
        Ok(())
    }

    fn into_id(self) -> Result<String> {
        match self {
            Picked::Id(id) => Ok(id),
            Picked::Entry(entry) => keycode::entry_doc_id(&entry),
        }
    }
}

/// The documents an access by keys or by index picks, in order (None for a full scan).
fn picked(
    collection: &Collection,
    access: &Access,
    ctx: &ExecContext,
) -> Result<Option<Box<dyn Iterator<Item = Result<Picked>> + Send>>> {
    match access {
        Access::Full | Access::KeyRange(_) => Ok(None),
        Access::Keys(exprs) => {
            let ectx = ctx.eval_context();
            let integer_key = collection.kind == Kind::Table
                && collection
                    .key_position()
                    .and_then(|k| collection.columns.get(k))
                    .is_some_and(|c| matches!(c.ty, SqlType::Int2 | SqlType::Int4 | SqlType::Int8));
            let mut ids: Vec<String> = Vec::new();
            for e in exprs {
                let mut v = e.eval(&[], &ectx)?;
                if integer_key {
                    // `id = 3.0` names the row of 3 (the filter still compares).
                    v = integral(v);
                }
                if let Some(id) = collection.document_id(&v)
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
            }
            ids.sort();
            Ok(Some(Box::new(ids.into_iter().map(|id| Ok(Picked::Id(id))))))
        }
        Access::Index(a) => {
            ctx.view
                .index_read(collection.id, ctx.db.catalog().conflicts())?;
            let entries = super::index_scan::entries(ctx.db.storage(), a, ctx)?;
            Ok(Some(Box::new(entries.map(|e| e.map(Picked::Entry)))))
        }
    }
}

/// The keys a full or key-range scan reads, and in which direction.
struct Span {
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    backward: bool,
    /// No key can match (a NULL bound, a lower bound above the upper).
    empty: bool,
    /// Whether the span's start and its end are exactly the key range's lower and upper
    /// bounds (or there is no such bound): every key inside passes those conjuncts of
    /// the filter. (A bound that is no number leaves its side open to the filter.)
    exact: [bool; 2],
}

impl Span {
    /// The documents of collection `cid` in the span, in `shape`.
    fn read<S: Shape>(self, view: &ReadView, cid: u32, shape: S) -> KeyedDocuments<S::Doc>
    where
        S::Doc: Send + 'static,
    {
        if self.empty {
            Box::new(std::iter::empty())
        } else if self.backward {
            view.scan_range_backward_shaped(cid, self.start, self.end, shape)
        } else {
            view.scan_range_shaped(cid, self.start, self.end, shape)
        }
    }
}

/// Where one side of a key range puts an integer key.
enum Side {
    /// Every key passes this side.
    Open,
    /// Keys from (a lower side) or up to (an upper side) this one, included.
    At(i64),
    /// No key passes.
    Shut,
}

/// The side bound `b` puts on an integer key: the nearest integer inside it (a
/// fractional bound is rounded inwards), open for a value that is no number (the filter
/// compares it), shut for NULL or a bound past the integers in that direction.
fn integer_side(
    b: &RangeBound,
    lower: bool,
    ectx: &crate::query::expr::EvalContext<'_>,
) -> Result<Side> {
    use rust_decimal::prelude::ToPrimitive;
    let v = b.value.eval(&[], ectx)?;
    let d = match v {
        Value::Null => return Ok(Side::Shut),
        Value::Int(i) => rust_decimal::Decimal::from(i),
        Value::Float(f) if f.is_nan() => return Ok(if lower { Side::Shut } else { Side::Open }),
        Value::Float(f) => match rust_decimal::Decimal::from_f64_retain(f) {
            Some(d) => d,
            None => {
                return Ok(if (f > 0.0) == lower {
                    Side::Shut
                } else {
                    Side::Open
                });
            }
        },
        Value::Numeric(n) => match crate::query::types::parse_decimal(&n) {
            Some(d) => d,
            None => return Ok(Side::Open),
        },
        _ => return Ok(Side::Open),
    };
    let one = rust_decimal::Decimal::ONE;
    let at = match (lower, b.inclusive) {
        (true, true) => d.ceil(),
        (true, false) => d.floor() + one,
        (false, true) => d.floor(),
        (false, false) => d.ceil() - one,
    };
    Ok(match at.to_i64() {
        Some(i) => Side::At(i),
        // Past the integers: above them shuts a lower side, opens an upper one.
        None => {
            if at.is_sign_positive() == lower {
                Side::Shut
            } else {
                Side::Open
            }
        }
    })
}

/// The span a full scan or a key-range scan of `collection` reads.
fn span(collection: &Collection, access: &Access, ctx: &ExecContext) -> Result<Span> {
    let cid = collection.id;
    let mut span = Span {
        start: Bound::Included(keys::collection_start(cid)),
        end: keys::collection_end(cid).map_or(Bound::Unbounded, Bound::Excluded),
        backward: false,
        empty: false,
        exact: [true, true],
    };
    let Access::KeyRange(r) = access else {
        return Ok(span);
    };
    span.backward = r.reverse;
    let ectx = ctx.eval_context();
    let key = |i: i64| keys::encode(cid, &keys::integer_id(i));
    let mut low = None;
    if let Some(b) = &r.lower {
        match integer_side(b, true, &ectx)? {
            Side::Open => span.exact[0] = false,
            Side::At(i) => {
                low = Some(i);
                span.start = Bound::Included(key(i));
            }
            Side::Shut => span.empty = true,
        }
    }
    if let Some(b) = &r.upper {
        match integer_side(b, false, &ectx)? {
            Side::Open => span.exact[1] = false,
            Side::At(i) => {
                span.empty |= low.is_some_and(|l| l > i);
                span.end = Bound::Included(key(i));
            }
            Side::Shut => span.empty = true,
        }
    }
    Ok(span)
}

/// For a covering index scan: the column of the document id and the column of each
/// index field (top-level fields only; nested ones feed no column).
fn covering_columns(
    collection: &Collection,
    a: &IndexAccess,
) -> (Option<usize>, Vec<Option<usize>>) {
    let names: Vec<String> = collection
        .sql_columns()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let id_column = match collection.kind {
        Kind::Schemaless => Some(0),
        Kind::Table => collection
            .primary_key
            .as_ref()
            .and_then(|pk| names.iter().position(|n| n == pk)),
    };
    let fields = a
        .index
        .fields
        .iter()
        .map(|path| match path.as_slice() {
            [name] => names
                .iter()
                .enumerate()
                .position(|(i, n)| n == name && Some(i) != id_column),
            _ => None,
        })
        .collect();
    (id_column, fields)
}

pub fn build(
    collection: &Collection,
    access: &Access,
    filter: Option<&Expr>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    build_reading(collection, access, filter, None, Vec::new(), ctx)
}

/// The shape of rows that read only the columns `read`: each column's field
/// by position (the id of a schemaless row comes from the key, not a field), or the
/// value at `paths[i]` inside column `i`'s field where that path is not empty.
fn row_shape(
    collection: &Collection,
    read: &[bool],
    paths: Vec<Vec<PathStep>>,
    encoded: Vec<bool>,
) -> Columns {
    let wanted = |i: usize| read.get(i).copied().unwrap_or(true);
    let skip_id = collection.kind == Kind::Schemaless;
    Columns::with_paths(
        collection
            .sql_column_names()
            .enumerate()
            .map(|(i, name)| (wanted(i) && !(skip_id && i == 0)).then(|| name.to_string()))
            .collect(),
        paths,
    )
    .with_encoded(encoded)
}

/// A projection over a scan, with the paths it takes into the scan's columns taken by
/// the scan instead: the projection's expressions rewritten (`Path(Column(c), p)` to
/// `Column(c)`) and, per column, the path the scan takes (empty: the whole field).
pub type PushedPaths = (Vec<Expr>, Vec<Vec<PathStep>>);

/// The paths a projection over a scan can leave to the scan: those into a column that
/// it reads through one path only, which the scan's filter does not read (it sees the
/// scan's rows), in a scan that shapes rows from documents (`read` set, not a covering
/// index). None when there are none, or when an expression holds a subquery (which may
/// read the row's columns unseen).
pub fn pushed_paths(
    exprs: &[Expr],
    collection: &Collection,
    access: &Access,
    filter: Option<&Expr>,
    read: Option<&[usize]>,
) -> Option<PushedPaths> {
    let read = read?;
    if matches!(access, Access::Index(a) if a.covering) {
        return None;
    }
    let mut path = false;
    for e in exprs {
        e.walk(&mut |x| path |= matches!(x, Expr::Path(..)));
    }
    if !path || has_subquery(exprs) {
        return None;
    }
    let in_filter = columns_read(filter);
    let skip_id = collection.kind == Kind::Schemaless;
    let mut paths: Vec<Vec<PathStep>> = Vec::new();
    for &c in read {
        if in_filter.contains(&c) || (skip_id && c == 0) {
            continue;
        }
        // Every use of the column must be the base of a path, all the same path.
        let (mut uses, mut through, mut same) = (0, 0, true);
        let mut first: Option<Vec<PathStep>> = None;
        for e in exprs {
            e.walk(&mut |x| match x {
                Expr::Column(i) if *i == c => uses += 1,
                Expr::Path(base, steps) if matches!(**base, Expr::Column(i) if i == c) => {
                    through += 1;
                    match &first {
                        None => first = Some(steps.clone()),
                        Some(f) => same &= f == steps,
                    }
                }
                _ => {}
            });
        }
        let Some(first) = first else {
            continue;
        };
        if uses == through && same && !first.is_empty() {
            if paths.len() <= c {
                paths.resize(c + 1, Vec::new());
            }
            if let Some(slot) = paths.get_mut(c) {
                *slot = first;
            }
        }
    }
    if paths.iter().all(Vec::is_empty) {
        return None;
    }
    let pushed = |c: usize| paths.get(c).is_some_and(|p| !p.is_empty());
    let exprs = exprs
        .iter()
        .map(|e| {
            e.clone().transform(&mut |x| {
                Ok(match x {
                    Expr::Path(base, _) if matches!(*base, Expr::Column(c) if pushed(c)) => *base,
                    other => other,
                })
            })
        })
        .collect::<Result<Vec<_>>>()
        .ok()?;
    Some((exprs, paths))
}

/// The columns of a scan (per column; empty: none) that a projection right over it may
/// take in their binary encoding, undecoded, for a client's writer that writes JSON text
/// straight from there (see [`crate::query::Column::json_encoded`]): json and jsonb
/// columns that the scan shapes from documents (`read` set, not a covering index), that
/// its filter does not read, that take their whole field (no path in `paths`), and that
/// the projection only passes on as they are (`SELECT *`, `SELECT specs`), not into
/// any expression. None when an expression holds a subquery (which may read the row's
/// columns unseen).
pub fn encoded_columns(
    exprs: &[Expr],
    columns: &[crate::query::Column],
    collection: &Collection,
    access: &Access,
    filter: Option<&Expr>,
    read: Option<&[usize]>,
    paths: &[Vec<PathStep>],
) -> Vec<bool> {
    let Some(read) = read else {
        return Vec::new();
    };
    if matches!(access, Access::Index(a) if a.covering) {
        return Vec::new();
    }
    if has_subquery(exprs) {
        return Vec::new();
    }
    let in_filter = columns_read(filter);
    let skip_id = collection.kind == Kind::Schemaless;
    let mut encoded = vec![false; columns.len()];
    for &c in read {
        let json = columns.get(c).is_some_and(|col| col.ty.is_json());
        let pathless = paths.get(c).is_none_or(Vec::is_empty);
        if !json || !pathless || in_filter.contains(&c) || (skip_id && c == 0) {
            continue;
        }
        // Every use of the column must be a whole output expression.
        let mut uses = 0;
        for e in exprs {
            e.walk(&mut |x| {
                if matches!(x, Expr::Column(i) if *i == c) {
                    uses += 1;
                }
            });
        }
        let whole = exprs
            .iter()
            .filter(|e| matches!(e, Expr::Column(i) if *i == c))
            .count();
        if let Some(slot) = encoded.get_mut(c) {
            *slot = uses > 0 && uses == whole;
        }
    }
    if encoded.iter().any(|e| *e) {
        encoded
    } else {
        Vec::new()
    }
}

/// Whether any of `exprs` holds a subquery (which may read the row's columns unseen).
fn has_subquery(exprs: &[Expr]) -> bool {
    let mut found = false;
    for e in exprs {
        e.walk(&mut |x| {
            found |= matches!(
                x,
                Expr::Subquery(..) | Expr::InSubquery { .. } | Expr::Quantified { .. }
            );
        });
    }
    found
}

/// The columns `filter` reads.
fn columns_read(filter: Option<&Expr>) -> Vec<usize> {
    let mut read = Vec::new();
    if let Some(f) = filter {
        f.walk(&mut |x| {
            if let Expr::Column(c) = x {
                read.push(*c);
            }
        });
    }
    read
}

/// What a scan makes its rows with, worked out from the plan alone: kept with a prepared
/// statement's plan (see [`super::memo`]), so that its executions skip this work.
pub struct ScanSetup {
    /// The columns decoded and how (None: rows are made from whole documents).
    read: Option<(Vec<bool>, Columns)>,
    filter: Option<Arc<Expr>>,
    /// The filter compiled, when it has no parameter-only parts to compute first.
    predicate: Option<Arc<Predicate>>,
    /// Whether the filter computes a value from parameters alone (see
    /// [`optimizer::folds_params`]), computed once per execution instead of per row.
    filter_folds: bool,
}

impl ScanSetup {
    /// The setup of a scan of `collection` that reads only the columns `read` (None:
    /// all); where `paths[i]` is not empty, column `i` holds the value at that path
    /// inside its field (see [`pushed_paths`]; only with `read` set), and where
    /// `encoded[i]` is set, its value in its binary encoding (see [`encoded_columns`]).
    pub fn new(
        collection: &Collection,
        filter: Option<&Expr>,
        read: Option<&[usize]>,
        paths: Vec<Vec<PathStep>>,
        encoded: Vec<bool>,
    ) -> ScanSetup {
        let read = read.map(|r| {
            let mask = read_mask(collection, r);
            let shape = row_shape(collection, &mask, paths, encoded);
            (mask, shape)
        });
        let filter_folds = filter.is_some_and(optimizer::folds_params);
        ScanSetup {
            read,
            filter_folds,
            predicate: filter
                .filter(|_| !filter_folds)
                .map(|f| Arc::new(Predicate::compile(f))),
            filter: filter.map(|f| Arc::new(f.clone())),
        }
    }

    /// The filter for one execution of a key-range scan reading `span`, without the
    /// conjuncts that gave the range bounds the span applies exactly (their column
    /// then needs no test per row); None when it drops none.
    fn filter_within(
        &self,
        collection: &Collection,
        access: &Access,
        span: &Span,
        ctx: &ExecContext,
    ) -> Option<Option<Arc<Predicate>>> {
        let (Access::KeyRange(planned), Some(filter)) = (access, &self.filter) else {
            return None;
        };
        let (range, [lower, upper]) =
            optimizer::key_range_sources(filter, collection.key_position()?)?;
        // The conjuncts found now must be the ones the plan's range came from (a filter
        // changed after the range was made keeps all its conjuncts).
        if range.lower != planned.lower || range.upper != planned.upper {
            return None;
        }
        let applied = |at: usize| {
            (lower == Some(at) || upper == Some(at))
                && (lower != Some(at) || span.exact[0])
                && (upper != Some(at) || span.exact[1])
        };
        let mut parts = Vec::new();
        optimizer::conjuncts(filter, &mut parts);
        if !(0..parts.len()).any(applied) {
            return None;
        }
        let rest = parts
            .into_iter()
            .enumerate()
            .filter(|(at, _)| !applied(*at))
            .map(|(_, e)| e)
            .reduce(|a, b| Expr::Binary(BinOp::And, Box::new(a), Box::new(b)));
        Some(rest.map(|e| {
            let e = match self.filter_folds {
                true => optimizer::fold_params(&e, &ctx.eval_context()),
                false => e,
            };
            Arc::new(Predicate::compile(&e))
        }))
    }

    /// The filter for one execution, with its parameter-only parts computed.
    fn filter(&self, ctx: &ExecContext) -> Option<Arc<Predicate>> {
        match &self.filter {
            Some(f) if self.filter_folds => Some(Arc::new(Predicate::compile(
                &optimizer::fold_params(f, &ctx.eval_context()),
            ))),
            _ => self.predicate.clone(),
        }
    }
}

/// [`build`] for a plan that reads only the columns `read` (None: all); the others
/// come out NULL. Where `paths[i]` is not empty, column `i` holds the value at that
/// path inside its field (see [`pushed_paths`]; only with `read` set).
pub fn build_reading(
    collection: &Collection,
    access: &Access,
    filter: Option<&Expr>,
    read: Option<&[usize]>,
    paths: Vec<Vec<PathStep>>,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    let setup = ScanSetup::new(collection, filter, read, paths, Vec::new());
    build_set_up(collection, access, &setup, ctx)
}

/// [`build_reading`] with its setup worked out.
pub fn build_set_up(
    collection: &Collection,
    access: &Access,
    setup: &ScanSetup,
    ctx: &Arc<ExecContext>,
) -> Result<RowIter> {
    build_set_up_scanned(collection, access, setup, ctx).map(Scanned::into_rows)
}

/// [`build_set_up`], its rows lent where they come through a cursor.
pub fn build_set_up_scanned(
    collection: &Collection,
    access: &Access,
    setup: &ScanSetup,
    ctx: &Arc<ExecContext>,
) -> Result<Scanned> {
    let filter = setup.filter(ctx);
    if let Access::Index(a) = access
        && a.covering
    {
        // A table's entries hold its typed values and the view's state: where the bounds
        // apply the whole filter, the entries they give are the rows that pass it.
        let exact =
            crate::query::plan::index_applies_filter(collection, a, setup.filter.as_deref());
        let filter = if exact { None } else { filter };
        let (id_column, fields) = covering_columns(collection, a);
        // Only the columns the query reads (its filter's included) are filled.
        let read = |c: &usize| {
            setup
                .read
                .as_ref()
                .is_none_or(|(mask, _)| mask.get(*c) == Some(&true))
        };
        let id_column = id_column.filter(read);
        let fields: Vec<Option<usize>> = fields.into_iter().map(|f| f.filter(read)).collect();
        let sql_columns = collection.sql_columns();
        let width = sql_columns.len();
        let id_is_integer = id_column
            .and_then(|c| sql_columns.get(c))
            .is_some_and(|(_, t)| matches!(t, SqlType::Int2 | SqlType::Int4 | SqlType::Int8));
        let key_form = collection.key_form;
        let id_value = move |id: String| match key_form {
            KeyForm::Integer => key_form.key_value(&id),
            // A table made before ordered keys: its integer keys are their text.
            KeyForm::Text => match id.parse::<i64>() {
                Ok(i) if id_is_integer => Value::Int(i),
                _ => Value::String(id),
            },
        };
        ctx.view
            .index_read(collection.id, ctx.db.catalog().conflicts())?;
        let rows = super::index_scan::covering_rows(
            ctx.db.storage(),
            a,
            ctx,
            width,
            id_column,
            id_value,
            fields,
        )?;
        let ctx = ctx.clone();
        return Ok(Scanned::Rows(Box::new(
            rows.filter_map(move |item| keep(item, filter.as_deref(), &ctx)),
        )));
    }
    let ctx = ctx.clone();
    if let Some((mask, shape)) = &setup.read {
        // The rows come straight out of the storage in column order.
        let mut shape = shape.clone();
        let with_id = id_filler(collection, mask);
        let mut filter = filter;
        let rows: Box<dyn Iterator<Item = Result<Row>> + Send> =
            match picked(collection, access, &ctx)? {
                None => {
                    let span = span(collection, access, &ctx)?;
                    if let Some(within) = setup.filter_within(collection, access, &span, &ctx) {
                        filter = within;
                    }
                    if !span.empty
                        && !span.backward
                        && let Some(cursor) = ctx.view.cursor_range(
                            collection.id,
                            span.start.clone(),
                            span.end.clone(),
                            shape.clone(),
                        )
                    {
                        let rows = CursorRows::new(cursor, filter, fills_id(collection, mask), ctx);
                        return Ok(Scanned::Lent(Box::new(rows)));
                    }
                    Box::new(span.read(&ctx.view, collection.id, shape).map(move |item| {
                        item.and_then(|(key, mut row)| {
                            let filled = with_id(&key, &mut row);
                            recycle::give_key(key);
                            filled.map(|()| row)
                        })
                    }))
                }
                Some(picked) => {
                    let (view, cid) = (ctx.view.clone(), collection.id);
                    // One key buffer for every document read; the documents come in
                    // key order or close to it (an index's entries of one value).
                    let mut key = Vec::new();
                    let mut near = NearBlocks::default();
                    Box::new(picked.filter_map(move |p| {
                        let row = p.and_then(|p| {
                            p.key_into(cid, &mut key)?;
                            view.get_shaped_near(&key, &mut shape, &mut near)?
                                .map(|mut row| with_id(&key, &mut row).map(|()| row))
                                .transpose()
                        });
                        row.transpose()
                    }))
                }
            };
        return Ok(Scanned::Rows(Box::new(
            rows.filter_map(move |row| keep(row, filter.as_deref(), &ctx)),
        )));
    }
    let docs = documents(collection, access, &ctx)?;
    // Only rows made from whole documents need the description (a copy per statement).
    let collection = collection.clone();
    Ok(Scanned::Rows(Box::new(docs.filter_map(move |item| {
        let row = item.map(|(id, doc)| document_row_owned(&collection, id, doc));
        keep(row, filter.as_deref(), &ctx)
    }))))
}

/// The rows a covering index scan of `collection` gives, counted by its entries (none
/// is decoded): for a scan whose bounds apply its whole filter
/// ([`crate::query::plan::index_applies_filter`]), as `count(*)` over it.
pub fn count_index_entries(
    collection: &Collection,
    a: &IndexAccess,
    ctx: &Arc<ExecContext>,
) -> Result<i64> {
    ctx.view
        .index_read(collection.id, ctx.db.catalog().conflicts())?;
    let mut n = 0u64;
    for mut scan in super::index_scan::scans(ctx.db.storage(), a, ctx)? {
        while let Some(counted) = scan.count_batch()? {
            n += counted;
            ctx.check_cancel()?;
        }
    }
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Per index field of a covering scan, the column it feeds (see `covering_columns`).
pub fn index_field_columns(collection: &Collection, a: &IndexAccess) -> Vec<Option<usize>> {
    covering_columns(collection, a).1
}

/// The rows of `count(*)` grouped by the leading index fields `fields` (in GROUP BY
/// order) over a covering index scan whose bounds apply its whole filter, counted from
/// the entries: entries of one group share the bytes of those fields' values and lie
/// together, so only the first entry of each group is decoded and the others are counted
/// where they lie ([`crate::storage::indexes::IndexScan::skip_prefix`]). Groups come in the order their first entry
/// does, each as its values then `counts` counts, as the grouping of the scan's rows
/// gives them; each group counts against `query_memory_limit` as it does there.
pub fn count_index_groups(
    collection: &Collection,
    a: &IndexAccess,
    fields: &[usize],
    counts: usize,
    ctx: &Arc<ExecContext>,
) -> Result<Vec<Row>> {
    ctx.view
        .index_read(collection.id, ctx.db.catalog().conflicts())?;
    let leading = fields.len();
    let mut groups: indexmap::IndexMap<Vec<u8>, (Row, i64)> = indexmap::IndexMap::new();
    let mut bytes = 0usize;
    for mut scan in super::index_scan::scans(ctx.db.storage(), a, ctx)? {
        while let Some(entry) = scan.next() {
            let entry = entry?;
            let len = keycode::index_entry_prefix_len(&entry, leading)?;
            let prefix = entry.get(..len).unwrap_or_default();
            let at = match groups.get_index_of(prefix) {
                Some(at) => at,
                None => {
                    let keys = leading_values(&entry, fields)?;
                    let size = super::row_size(&keys) + prefix.len() + 64 * counts;
                    bytes += size;
                    if bytes > ctx.memory_limit {
                        return Err(ctx.over_memory("GROUP BY"));
                    }
                    groups.insert_full(prefix.to_vec(), (keys, 0)).0
                }
            };
            // The group's other entries follow this one: counted, not read.
            let rest = scan.skip_prefix(prefix)?;
            if let Some((_, (_, count))) = groups.get_index_mut(at) {
                *count += 1 + i64::try_from(rest).unwrap_or(i64::MAX);
            }
            recycle::give_key(entry);
            ctx.check_cancel()?;
        }
    }
    Ok(groups
        .into_values()
        .map(|(mut keys, count)| {
            keys.extend(std::iter::repeat_n(Value::Int(count), counts));
            keys
        })
        .collect())
}

/// The values of an index entry's first `fields.len()` fields, in the order `fields`
/// names them (each a position among those fields).
fn leading_values(entry: &[u8], fields: &[usize]) -> Result<Row> {
    let leading = fields.len();
    let mut values = vec![Value::Null; leading];
    keycode::read_index_entry(
        entry,
        |i| i < leading,
        false,
        |i, v| {
            if let Some(slot) = values.get_mut(i) {
                *slot = v;
            }
        },
    )?;
    Ok(fields
        .iter()
        .map(|f| values.get(*f).cloned().unwrap_or(Value::Null))
        .collect())
}

/// The distinct values of the leading fields of `index` (a ready index of `collection`
/// that shows the statement's view): a row per group of entries sharing those fields'
/// values, each the values of the fields `fields` names in that order, in the index's
/// order. Only each group's first entry is read; the rest of the group is skipped where
/// it lies ([`crate::storage::indexes::IndexScan::skip_prefix`]). The rows count
/// against `query_memory_limit` as DISTINCT's do.
pub fn distinct_index_values(
    collection: &Collection,
    index: &crate::catalog::IndexDef,
    fields: &[usize],
    ctx: &Arc<ExecContext>,
) -> Result<Vec<Row>> {
    ctx.view
        .index_read(collection.id, ctx.db.catalog().conflicts())?;
    let leading = fields.len();
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut scan =
        ctx.db
            .storage()
            .indexes()
            .scan(index.id, Bound::Unbounded, Bound::Unbounded, false)?;
    while let Some(entry) = scan.next() {
        let entry = entry?;
        let len = keycode::index_entry_prefix_len(&entry, leading)?;
        let row = leading_values(&entry, fields)?;
        bytes += super::row_size(&row);
        if bytes > ctx.memory_limit {
            return Err(ctx.over_memory("DISTINCT"));
        }
        rows.push(row);
        scan.skip_prefix(entry.get(..len).unwrap_or_default())?;
        recycle::give_key(entry);
        ctx.check_cancel()?;
    }
    Ok(rows)
}

/// [`build_reading`] for one part of a full scan of `collection` cut by key (see
/// [`crate::storage::Snapshot::split_points`]): the rows of documents with keys in
/// `range`, reading only the columns `read`.
pub fn build_part(
    collection: &Collection,
    filter: Option<Expr>,
    read: &[usize],
    range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    ctx: &Arc<ExecContext>,
) -> Scanned {
    let mask = read_mask(collection, read);
    let shape = row_shape(collection, &mask, Vec::new(), Vec::new());
    let with_id = id_filler(collection, &mask);
    let ctx = ctx.clone();
    let filter = filter.map(|f| Arc::new(Predicate::compile(&f)));
    if let Some(cursor) = ctx.view.cursor_range(
        collection.id,
        range.0.clone(),
        range.1.clone(),
        shape.clone(),
    ) {
        let rows = CursorRows::new(cursor, filter, fills_id(collection, &mask), ctx);
        return Scanned::Lent(Box::new(rows));
    }
    let rows = ctx
        .view
        .scan_range_shaped(collection.id, range.0, range.1, shape)
        .map(move |item| {
            item.and_then(|(key, mut row)| {
                let filled = with_id(&key, &mut row);
                recycle::give_key(key);
                filled.map(|()| row)
            })
        });
    Scanned::Rows(Box::new(
        rows.filter_map(move |row| keep(row, filter.as_deref(), &ctx)),
    ))
}

/// Which of `collection`'s columns a scan reading the columns `read` decodes.
fn read_mask(collection: &Collection, read: &[usize]) -> Vec<bool> {
    let mut mask = vec![false; collection.sql_column_count()];
    for c in read {
        if let Some(m) = mask.get_mut(*c) {
            *m = true;
        }
    }
    mask
}

/// What completes a row read in columns: a schemaless collection's `id` column comes
/// from the key, not the document.
fn id_filler(
    collection: &Collection,
    mask: &[bool],
) -> impl Fn(&[u8], &mut [Value]) -> Result<()> + Send + 'static {
    let with_id = fills_id(collection, mask);
    move |key: &[u8], row: &mut [Value]| -> Result<()> {
        match with_id {
            true => fill_id(key, row),
            false => Ok(()),
        }
    }
}

/// Whether [`id_filler`] fills anything: the `id` column of a schemaless collection,
/// when read.
fn fills_id(collection: &Collection, mask: &[bool]) -> bool {
    collection.kind == Kind::Schemaless && mask.first() == Some(&true)
}

/// Puts the id of storage key `key` in the first column of `row`.
fn fill_id(key: &[u8], row: &mut [Value]) -> Result<()> {
    let (_, id) = keys::decode(key)
        .ok_or_else(|| Error::Corruption("a scanned key does not decode".into()))?;
    if let Some(slot) = row.first_mut() {
        recycle::put_str(slot, id);
    }
    Ok(())
}

/// The rows of a scan: as an iterator, or lent one at a time by a cursor (see
/// [`CursorRows`]), to a reader that only looks at each (an aggregate).
pub enum Scanned {
    Rows(RowIter),
    Lent(Box<CursorRows>),
}

impl Scanned {
    /// The rows as an iterator (a lent row is taken from its cursor).
    pub fn into_rows(self) -> RowIter {
        match self {
            Scanned::Rows(rows) => rows,
            Scanned::Lent(rows) => rows,
        }
    }
}

/// The rows of a scan read through a storage cursor ([`RowCursor`]): the id is filled
/// and the filter tested in the row the cursor lends, and only a row that passes is
/// taken from it (as an iterator), or lent on ([`CursorRows::advance`]); cancellation
/// is checked per document, as [`keep`] does.
pub struct CursorRows {
    cursor: RowCursor,
    filter: Option<Arc<Predicate>>,
    /// Whether the first column is the id (see [`fills_id`]).
    fills_id: bool,
    ctx: Arc<ExecContext>,
    done: bool,
}

impl CursorRows {
    /// The rows of `cursor` that pass `filter`, the first column filled with the id
    /// where `fills_id` (see [`fills_id`]).
    fn new(
        cursor: RowCursor,
        filter: Option<Arc<Predicate>>,
        fills_id: bool,
        ctx: Arc<ExecContext>,
    ) -> CursorRows {
        CursorRows {
            cursor,
            filter,
            fills_id,
            ctx,
            done: false,
        }
    }

    /// Moves to the next row that passes the filter ([`CursorRows::row`]); false at the
    /// end. An error ends the rows.
    pub fn advance(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let out = self.advance_inner();
        if !matches!(out, Ok(true)) {
            self.done = true;
        }
        out
    }

    fn advance_inner(&mut self) -> Result<bool> {
        loop {
            self.ctx.check_cancel()?;
            if !self.cursor.advance()? {
                return Ok(false);
            }
            if self.fills_id {
                let (key, row) = self.cursor.key_and_row();
                fill_id(key, row)?;
            }
            match &self.filter {
                Some(f) if !f.passes(self.cursor.row(), &self.ctx.eval_context())? => {}
                _ => return Ok(true),
            }
        }
    }

    /// The row under the cursor, lent until the next [`CursorRows::advance`].
    pub fn row(&self) -> &[Value] {
        self.cursor.row()
    }

    /// [`CursorRows::row`], its values to move out (the cursor writes every value of
    /// its row again when it moves on).
    pub fn row_mut(&mut self) -> &mut [Value] {
        self.cursor.row_mut()
    }
}

impl Iterator for CursorRows {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        match self.advance() {
            Ok(true) => Some(Ok(self.cursor.take_row())),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A scanned row if it passes the filter (None if not); errors, and cancellation,
/// pass through.
fn keep(item: Result<Row>, filter: Option<&Predicate>, ctx: &ExecContext) -> Option<Result<Row>> {
    if let Err(e) = ctx.check_cancel() {
        return Some(Err(e));
    }
    let row = match item {
        Ok(row) => row,
        Err(e) => return Some(Err(e)),
    };
    match filter {
        None => Some(Ok(row)),
        Some(f) => match f.passes(&row, &ctx.eval_context()) {
            Ok(true) => Some(Ok(row)),
            Ok(false) => {
                recycle::give_row(row);
                None
            }
            Err(e) => Some(Err(e)),
        },
    }
}
