//! Foreign keys at statement level: what a statement's writes bring about through the
//! foreign keys of the collections they touch, before the write door checks the result
//! (see [`crate::catalog::references`]).
//!
//! * Deleting a referenced document applies the `ON DELETE` action of every foreign key
//!   that references it: CASCADE deletes the referencing documents (and so on, down the
//!   chain), SET NULL nulls their column, RESTRICT and NO ACTION fail the statement
//!   (23503). The documents found are read through the statement's view; outside a
//!   transaction the caller locks their keys too (see [`Session::write_with_references`]).
//! * Inside a transaction, each reference written is checked against the transaction's
//!   view at once (23503 at the statement, as PostgreSQL reports it), and the referenced
//!   document is remembered as read, so a concurrent delete of it fails the commit's
//!   validation (40001). Outside one, the write door checks under its locks.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::catalog::references::{
    find_referencing, missing_parent, reference_of, still_referenced,
};
use crate::catalog::{Catalog, Collection, DocWrite};
use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::session::Session;
use crate::storage::keys;
use crate::txn::ReadView;

/// Writes grouped by collection, the statement's own collection first.
pub type Groups = Vec<(Collection, Vec<DocWrite>)>;

/// Whether deleting documents of `collection` writes others: a foreign key referencing
/// it has ON DELETE CASCADE or SET NULL.
pub fn deletes_write_others(catalog: &Catalog, collection: &Collection) -> bool {
    catalog
        .referencing(&collection.name)
        .iter()
        .any(|(_, fk)| fk.on_delete.writes())
}

/// Whether any foreign key involves `collection`, as referencing or referenced table.
fn involved(catalog: &Catalog, collection: &Collection) -> bool {
    !collection.foreign_keys.is_empty() || !catalog.referencing(&collection.name).is_empty()
}

/// `writes` of `collection` with the writes the ON DELETE actions of the foreign keys
/// bring, read through `view`; with `check_references`, each reference the writes make
/// is checked in `view` (see the module doc). 23503 for a RESTRICT or NO ACTION
/// reference to a deleted document, or a reference to a missing one; 23502 when SET
/// NULL meets a NOT NULL column.
pub fn expand(
    session: &Session,
    view: &ReadView,
    collection: &Collection,
    writes: Vec<DocWrite>,
    check_references: bool,
) -> Result<Groups> {
    let catalog = session.database().catalog();
    if writes.is_empty() || !involved(catalog, collection) {
        return Ok(vec![(collection.clone(), writes)]);
    }
    let mut plan = Plan::default();
    // Deleted documents whose referencing ones are still to be looked for, a batch per
    // collection and round (one lookup per referencing table and batch).
    let mut deletions: VecDeque<(Collection, BTreeSet<String>)> = VecDeque::new();
    let first: BTreeSet<String> = writes
        .iter()
        .filter(|w| w.new.is_none() && w.old.is_some())
        .map(|w| w.id.clone())
        .collect();
    plan.add_group(collection.clone(), writes);
    if !first.is_empty() {
        deletions.push_back((collection.clone(), first));
    }
    while let Some((parent, parents)) = deletions.pop_front() {
        let mut cascaded: Vec<(Collection, BTreeSet<String>)> = Vec::new();
        for (child, fk) in catalog.referencing(&parent.name) {
            let form = parent.key_form;
            for r in find_referencing(catalog, view, &child, &fk.column, form, &parents)? {
                let doc = match plan.planned(&r.key) {
                    // Deleted by the statement (or an earlier cascade): nothing to do.
                    Some(None) => continue,
                    Some(Some(doc)) => {
                        if doc
                            .get(&fk.column)
                            .and_then(|v| form.document_id(v))
                            .as_deref()
                            != Some(r.parent.as_str())
                        {
                            continue;
                        }
                        doc.clone()
                    }
                    None => r.doc.clone(),
                };
                match fk.on_delete {
                    crate::catalog::Action::NoAction | crate::catalog::Action::Restrict => {
                        return Err(still_referenced(&child.name, &fk, &form.id_text(&r.parent)));
                    }
                    crate::catalog::Action::Cascade => {
                        if plan.set(&child, &r, None) {
                            match cascaded.iter_mut().find(|(c, _)| c.id == child.id) {
                                Some((_, ids)) => {
                                    ids.insert(r.id.clone());
                                }
                                None => {
                                    cascaded.push((child.clone(), BTreeSet::from([r.id.clone()])))
                                }
                            }
                        }
                    }
                    crate::catalog::Action::SetNull => {
                        if child
                            .columns
                            .iter()
                            .any(|c| c.name == fk.column && c.not_null)
                        {
                            return Err(Error::invalid(
                                SqlState::NOT_NULL_VIOLATION,
                                format!(
                                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                                    fk.column, child.name
                                ),
                            ));
                        }
                        let mut nulled = doc;
                        nulled.insert(fk.column.clone(), Value::Null);
                        plan.set(&child, &r, Some(nulled));
                    }
                }
            }
        }
        deletions.extend(cascaded);
    }
    if check_references {
        plan.check_references(catalog, view)?;
    }
    Ok(plan.groups)
}

/// The writes planned so far, by collection and by key.
#[derive(Default)]
struct Plan {
    groups: Groups,
    /// Key -> (group, position in it).
    by_key: HashMap<Vec<u8>, (usize, usize)>,
}

impl Plan {
    fn add_group(&mut self, collection: Collection, writes: Vec<DocWrite>) {
        let g = self.groups.len();
        for (i, w) in writes.iter().enumerate() {
            self.by_key.insert(w.key.clone(), (g, i));
        }
        self.groups.push((collection, writes));
    }

    /// The planned new version of `key`: None if nothing is planned for it.
    fn planned(&self, key: &[u8]) -> Option<Option<&Object>> {
        let (g, i) = self.by_key.get(key)?;
        let w = self.groups.get(*g)?.1.get(*i)?;
        Some(w.new.as_ref())
    }

    /// Plans `new` for the referencing document `r` of `child`; true when that deletes a
    /// document that exists (whose own referencing documents must then be looked for).
    fn set(
        &mut self,
        child: &Collection,
        r: &crate::catalog::references::Referencing,
        new: Option<Object>,
    ) -> bool {
        let deleting = new.is_none();
        if let Some((g, i)) = self.by_key.get(&r.key).copied()
            && let Some(w) = self.groups.get_mut(g).and_then(|(_, ws)| ws.get_mut(i))
        {
            w.new = new;
            return deleting && w.old.is_some();
        }
        let g = match self.groups.iter().position(|(c, _)| c.id == child.id) {
            Some(g) => g,
            None => {
                self.groups.push((child.clone(), Vec::new()));
                self.groups.len() - 1
            }
        };
        let Some((_, ws)) = self.groups.get_mut(g) else {
            return false;
        };
        ws.push(DocWrite {
            id: r.id.clone(),
            key: r.key.clone(),
            old: Some(r.doc.clone()),
            new,
        });
        self.by_key.insert(r.key.clone(), (g, ws.len() - 1));
        deleting
    }

    /// Inside a transaction: every new or changed reference names a document that the
    /// plan writes or `view` holds (which remembers it as read).
    fn check_references(&self, catalog: &Catalog, view: &ReadView) -> Result<()> {
        for (c, writes) in &self.groups {
            for fk in &c.foreign_keys {
                let Ok(parent) = catalog.get(&fk.table) else {
                    continue;
                };
                for w in writes {
                    let Some(new) = &w.new else { continue };
                    let Some((value, text)) = reference_of(c, &parent, fk, new)? else {
                        continue;
                    };
                    let unchanged = w
                        .old
                        .as_ref()
                        .and_then(|o| o.get(&fk.column))
                        .and_then(|v| parent.document_id(v))
                        .is_some_and(|old| old == text);
                    let key = keys::encode(parent.id, &text);
                    let present = match self.planned(&key) {
                        Some(new) => new.is_some(),
                        None if unchanged => true,
                        None => view.get(&key)?.is_some(),
                    };
                    if !present {
                        return Err(missing_parent(c, fk, value));
                    }
                }
            }
        }
        Ok(())
    }
}
