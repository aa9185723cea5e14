//! Enforcing foreign keys at the write door: every batch [`Catalog::write_batch`] writes
//! is checked here, under the stripes of the referenced keys, so no interleaving of
//! writers leaves a reference to a missing document.
//!
//! * A new or changed non-NULL reference must name a document that exists once the batch
//!   is applied: one written by the batch, or a stored one the batch does not delete
//!   (23503 `insert or update on table ...`).
//! * A deleted document must not be referenced once the batch is applied: every stored
//!   document referencing it must be deleted or re-pointed by the same batch. For
//!   RESTRICT and NO ACTION that is the user's error (23503 `update or delete on table
//!   ...`); CASCADE and SET NULL are carried out by the statement that deletes (see
//!   `query::references`), so a referencing document it did not see was written
//!   concurrently (40001, retry).
//!
//! Both checks lock the stripe of the referenced document's key (the same stripes as
//! unique values, taken together, in order), so a writer adding a reference and a writer
//! deleting the referenced document never both pass. Finding the documents that
//! reference a deleted one reads an index whose first field is the referencing column
//! when the referencing collection has one, and otherwise scans that collection once per
//! batch: deleting from a referenced table costs a scan of each referencing table without
//! such an index.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use super::{Catalog, Collection, ForeignKey, KeyForm, WriteGroup};
use crate::doc::keycode::{encode_key, prefix_successor};
use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::query::types::SqlType;
use crate::storage::keys;
use crate::txn::ReadView;

/// A document found referencing a deleted one.
#[derive(Clone, Debug)]
pub struct Referencing {
    pub id: String,
    pub key: Vec<u8>,
    pub doc: Object,
    /// The id of the document it references.
    pub parent: String,
}

/// The documents of `child` whose column `column` names one of the documents whose keys
/// (as text) are `parents`, read through `view`: by an index whose first field is the
/// column when `child` has one the view can use, else by one scan of `child`.
pub fn find_referencing(
    catalog: &Catalog,
    view: &ReadView,
    child: &Collection,
    column: &str,
    parent_form: KeyForm,
    parents: &BTreeSet<String>,
) -> Result<Vec<Referencing>> {
    let mut out = Vec::new();
    if parents.is_empty() {
        return Ok(out);
    }
    let names = |doc: &Object| doc.get(column).and_then(|v| parent_form.document_id(v));
    let index = child.ready_indexes().find(|i| {
        i.fields
            .first()
            .is_some_and(|p| p.len() == 1 && p[0] == column)
    });
    if let Some(def) = index
        && view.index_usable(child.id, catalog.conflicts())
    {
        view.index_read(child.id, catalog.conflicts())?;
        let ty = child
            .columns
            .iter()
            .find(|c| c.name == column)
            .map_or(SqlType::Text, |c| c.ty.clone());
        let mut seen: HashSet<String> = HashSet::new();
        for text in parents {
            // The key as the column holds it; a key no value of the column can name (text
            // for an integer column) has no referencing document.
            let Ok(value) = crate::query::types::cast(parent_form.key_value(text), &ty) else {
                continue;
            };
            let mut prefix = Vec::new();
            encode_key(std::slice::from_ref(&value), &mut prefix);
            let end = prefix_successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
            for entry in
                catalog
                    .storage
                    .indexes()
                    .scan(def.id, Bound::Included(prefix), end, false)?
            {
                let id = crate::doc::keycode::entry_doc_id(&entry?)?;
                if !seen.insert(id.clone()) {
                    continue;
                }
                let key = keys::encode(child.id, &id);
                // The entry may be stale (the index is not versioned): the document says.
                if let Some(doc) = view.get(&key)?
                    && names(&doc).as_deref() == Some(text.as_str())
                {
                    out.push(Referencing {
                        id,
                        key,
                        doc,
                        parent: text.clone(),
                    });
                }
            }
        }
        return Ok(out);
    }
    for item in view.scan_collection(child.id) {
        let (key, doc) = item?;
        let Some(text) = names(&doc) else {
            continue;
        };
        if parents.contains(&text) {
            let id = keys::decode(&key)
                .map(|(_, id)| id.to_string())
                .ok_or_else(|| Error::Corruption("malformed document key".into()))?;
            out.push(Referencing {
                id,
                key,
                doc,
                parent: text,
            });
        }
    }
    Ok(out)
}

/// 23503 for a reference to a missing document, with PostgreSQL's message and DETAIL.
/// The reference document `new` makes through `fk`: its value and the key text it
/// names; None when the field is absent or NULL; 23503 when no key can be that value.
pub fn reference_of<'d>(
    child: &Collection,
    parent: &Collection,
    fk: &ForeignKey,
    new: &'d Object,
) -> Result<Option<(&'d Value, String)>> {
    let value = match new.get(&fk.column) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    match parent.document_id(value) {
        Some(text) => Ok(Some((value, text))),
        None => Err(missing_parent(child, fk, value)),
    }
}

pub fn missing_parent(child: &Collection, fk: &ForeignKey, value: &Value) -> Error {
    let ty = child
        .columns
        .iter()
        .find(|c| c.name == fk.column)
        .map_or(SqlType::Text, |c| c.ty.clone());
    Error::violation(
        SqlState::FOREIGN_KEY_VIOLATION,
        format!(
            "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
            child.name, fk.name
        ),
        format!(
            "Key ({})=({}) is not present in table \"{}\".",
            fk.column,
            ty.format_text(value).unwrap_or_default(),
            fk.table
        ),
    )
}

/// 23503 for deleting a document still referenced (RESTRICT, NO ACTION).
pub fn still_referenced(child: &str, fk: &ForeignKey, parent_key: &str) -> Error {
    Error::violation(
        SqlState::FOREIGN_KEY_VIOLATION,
        format!(
            "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{child}\"",
            fk.table, fk.name
        ),
        format!(
            "Key ({})=({parent_key}) is still referenced from table \"{child}\".",
            fk.ref_column
        ),
    )
}

/// Deleted documents of one referenced collection, and one foreign key naming it.
struct Deletion {
    child: Collection,
    fk: ForeignKey,
    /// How the referenced collection spells its keys.
    parent_form: KeyForm,
    /// Ids of the deleted documents.
    parents: BTreeSet<String>,
}

/// The checks a batch needs; see the module doc.
#[derive(Default)]
pub(super) struct Checks {
    /// (referencing collection, foreign key) pairs the needs point into.
    contexts: Vec<(Collection, ForeignKey)>,
    /// References the batch adds to documents it does not write: (referenced key,
    /// context, referencing value), each key once, in the order of the writes.
    needs: Vec<(Vec<u8>, usize, Value)>,
    needed: HashSet<Vec<u8>>,
    deletions: Vec<Deletion>,
    /// Keys of every document the batch writes (when it deletes referenced ones).
    written: HashSet<Vec<u8>>,
    /// Keys of the deleted referenced documents.
    deleted_keys: Vec<Vec<u8>>,
}

impl Checks {
    /// The checks `groups` need. What the batch decides by itself (a reference to a
    /// document the same batch deletes) fails here, before any lock.
    pub(super) fn plan(catalog: &Catalog, groups: &[WriteGroup]) -> Result<Checks> {
        let st = catalog.state.read();
        if st.referenced_by.is_empty() {
            // No foreign key anywhere: the common case costs one map check.
            return Ok(Checks::default());
        }
        let involved = groups.iter().any(|g| {
            st.referenced_by.contains_key(&g.collection)
                || st
                    .by_name
                    .get(&g.collection)
                    .is_some_and(|c| !c.foreign_keys.is_empty())
        });
        if !involved {
            return Ok(Checks::default());
        }
        let mut checks = Checks::default();
        // Every key the batch writes, with whether it stays (a put) or goes.
        let mut batch: HashMap<&[u8], bool> = HashMap::new();
        for g in groups {
            for w in &g.writes {
                batch.insert(&w.key, w.new.is_some());
            }
        }
        for g in groups {
            let Some(c) = st.by_name.get(&g.collection) else {
                continue;
            };
            // References the batch's documents make.
            for fk in &c.foreign_keys {
                let Some(parent) = st.by_name.get(&fk.table) else {
                    continue;
                };
                let mut context = None;
                for w in &g.writes {
                    let Some(new) = &w.new else { continue };
                    let Some((value, text)) = reference_of(c, parent, fk, new)? else {
                        continue;
                    };
                    let key = keys::encode(parent.id, &text);
                    match batch.get(key.as_slice()) {
                        Some(true) => continue,
                        Some(false) => return Err(missing_parent(c, fk, value)),
                        None => {}
                    }
                    let unchanged = w
                        .old
                        .as_ref()
                        .and_then(|o| o.get(&fk.column))
                        .and_then(|v| parent.document_id(v))
                        .is_some_and(|old| old == text);
                    if unchanged || checks.needed.contains(&key) {
                        // Unchanged: the caller read the old version under its key lock,
                        // and a referenced document is never deleted while referenced.
                        continue;
                    }
                    let ctx = *context.get_or_insert_with(|| {
                        checks.contexts.push(((**c).clone(), fk.clone()));
                        checks.contexts.len() - 1
                    });
                    checks.needed.insert(key.clone());
                    checks.needs.push((key, ctx, value.clone()));
                }
            }
            // Documents the batch deletes that others may reference.
            let Some(incoming) = st.referenced_by.get(&g.collection) else {
                continue;
            };
            let mut deleted: BTreeSet<String> = BTreeSet::new();
            for w in &g.writes {
                if let (Some(_), None) = (&w.old, &w.new) {
                    deleted.insert(w.id.clone());
                    checks.deleted_keys.push(w.key.clone());
                }
            }
            if deleted.is_empty() {
                continue;
            }
            for (child, fk) in incoming {
                let Some(child) = st.by_name.get(child) else {
                    continue;
                };
                checks.deletions.push(Deletion {
                    child: (**child).clone(),
                    fk: fk.clone(),
                    parent_form: c.key_form,
                    parents: deleted.clone(),
                });
            }
        }
        if !checks.deletions.is_empty() {
            checks.written = batch.keys().map(|k| k.to_vec()).collect();
        }
        Ok(checks)
    }

    /// The stripes to hold while [`Checks::run`] runs and the batch is written: those of
    /// the referenced keys, added and deleted.
    pub(super) fn stripes(&self) -> impl Iterator<Item = usize> + '_ {
        self.needs
            .iter()
            .map(|(k, _, _)| k)
            .chain(&self.deleted_keys)
            .map(|k| super::writes::stripe_of(k, 0))
    }

    /// Runs the checks against the stored documents; the caller holds the stripes.
    pub(super) fn run(&self, catalog: &Catalog) -> Result<()> {
        for (key, ctx, value) in &self.needs {
            if catalog.storage.get(key)?.is_none() {
                return Err(match self.contexts.get(*ctx) {
                    Some((child, fk)) => missing_parent(child, fk, value),
                    None => Error::Internal("foreign key check without its context".into()),
                });
            }
        }
        if self.deletions.is_empty() {
            return Ok(());
        }
        // Taken after the stripes: every write that could add a reference to a deleted
        // document is either in it or waits for them.
        let view = ReadView::autocommit(catalog.storage.snapshot());
        for d in &self.deletions {
            let (child, form) = (&d.child, d.parent_form);
            for r in find_referencing(catalog, &view, child, &d.fk.column, form, &d.parents)? {
                if self.written.contains(&r.key) {
                    continue;
                }
                return Err(if d.fk.on_delete.writes() {
                    crate::txn::serialization_failure(&format!(
                        "a row of \"{}\" referencing a deleted row of \"{}\" was written concurrently",
                        d.child.name, d.fk.table
                    ))
                } else {
                    still_referenced(&d.child.name, &d.fk, &form.id_text(&r.parent))
                });
            }
        }
        Ok(())
    }
}
