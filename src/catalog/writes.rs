//! The one door every document write goes through: [`Catalog::write_documents`] adds
//! the schema changes and the index entries a write brings to the same atomic batch,
//! and checks unique indexes and foreign keys (see [`super::references`]) under value
//! stripes, all taken at once in stripe order.

use std::collections::HashSet;
use std::sync::Arc;

use super::references::Checks;
use super::{
    Catalog, Collection, DocWrite, EncodedInsert, IndexDef, Kind, UNIQUE_LOCK_STRIPES, WriteGroup,
    catalog_key, schema,
};
use crate::doc::Object;
use crate::error::{Error, Result, SqlState};
use crate::storage::Op;
use crate::storage::bulk::{Built, BulkLoad};
use crate::txn::{Conflicts, ScanCheck};

impl Catalog {
    /// Writes documents (puts and deletes) atomically, together with the schema changes
    /// the new versions bring (new top-level fields, widened types) and the entries of
    /// every index of the collection; 23505 if a unique index would hold a value twice,
    /// 23503 if a foreign key would name a missing document. The callers hold the
    /// documents' key locks.
    pub fn write_documents(&self, name: &str, writes: Vec<DocWrite>) -> Result<()> {
        self.write_batch(
            vec![WriteGroup {
                collection: name.to_string(),
                cid: None,
                writes,
            }],
            None,
        )
    }

    /// Inserts documents given in the storage's binary form into collection `name`,
    /// which must still have id `cid`, in one atomic batch. The caller holds the keys'
    /// locks and knows no document is stored under them (a bulk load).
    ///
    /// A table with no secondary index and no foreign key needs nothing from the
    /// documents but their bytes, so they are written as they are: no decoding, no
    /// encoding again. Otherwise they are decoded and written by [`Catalog::write_batch`]
    /// (index entries, unique and reference checks, observed fields).
    pub fn insert_encoded(&self, name: &str, cid: u32, rows: Vec<EncodedInsert>) -> Result<()> {
        {
            // Held while writing: an index created meanwhile sees the rows.
            let _ic = self.index_change.read();
            let plain = self.with_live(name, cid, Self::bulk_loadable)?;
            if plain {
                let mut ops = Vec::with_capacity(rows.len() + 1);
                ops.push(Op::Count {
                    collection: cid,
                    delta: rows.len() as i64,
                });
                ops.extend(rows.into_iter().map(|r| Op::PutEncoded {
                    key: r.key,
                    value: r.doc,
                }));
                let conflicts = &self.conflicts;
                self.storage
                    .write_checked(ops, &mut |seq| conflicts.register(seq, &[cid], None))?;
                return Ok(());
            }
        }
        let writes = rows
            .into_iter()
            .map(EncodedInsert::decoded)
            .collect::<Result<Vec<_>>>()?;
        self.write_batch(
            vec![WriteGroup {
                collection: name.to_string(),
                cid: Some(cid),
                writes,
            }],
            None,
        )
    }

    /// `f` of collection `name` if it still has id `cid` (42P01 if it was dropped).
    fn with_live<T>(&self, name: &str, cid: u32, f: impl FnOnce(&Collection) -> T) -> Result<T> {
        let st = self.state.read();
        let c = st
            .by_name
            .get(name)
            .filter(|c| c.id == cid)
            .ok_or_else(|| {
                Error::not_found(
                    SqlState::UNDEFINED_TABLE,
                    format!("relation \"{name}\" was dropped during the write"),
                )
            })?;
        Ok(f(c))
    }

    /// Whether COPY may load collection `c` as new segments ([`Catalog::bulk_load`])
    /// rather than through the WAL: a table with no secondary index and no foreign key,
    /// whose rows need nothing but their bytes written.
    pub fn bulk_loadable(c: &Collection) -> bool {
        c.kind == Kind::Table && c.indexes.is_empty() && c.foreign_keys.is_empty()
    }

    /// Starts a bulk load of documents in the storage's binary form (see
    /// [`crate::storage::bulk`]); [`Catalog::install_bulk`] ends it.
    pub fn bulk_load(&self) -> Result<BulkLoad> {
        self.storage.bulk_load()
    }

    /// Installs the rows of a bulk load into collection `name`, which must still have
    /// id `cid` and still be [`Catalog::bulk_loadable`] (40001 if an index or foreign
    /// key came meanwhile: the rows did not go through it). The caller holds the keys'
    /// locks and knows no document is stored under them. Durable when it returns.
    pub fn install_bulk(&self, name: &str, cid: u32, built: Built) -> Result<()> {
        // Held while installing: an index created meanwhile sees the rows.
        let _ic = self.index_change.read();
        if !self.with_live(name, cid, Self::bulk_loadable)? {
            return Err(crate::txn::serialization_failure(
                "the table gained an index or a foreign key during the load",
            ));
        }
        let rows = i64::try_from(built.rows()).unwrap_or(i64::MAX);
        self.storage.install_bulk(built, &[(cid, rows)])?;
        // Sequences the load among commits: a transaction that read the table before
        // it fails its commit, as after any other write to the table.
        let conflicts = &self.conflicts;
        self.storage.write_checked(
            vec![Op::Count {
                collection: cid,
                delta: 0,
            }],
            &mut |seq| conflicts.register(seq, &[cid], None),
        )?;
        Ok(())
    }

    /// [`Catalog::write_documents`] for several collections in one atomic batch (a
    /// transaction's commit), checking `check` against the writes sequenced before it
    /// (see [`crate::txn`]).
    pub fn write_batch(&self, groups: Vec<WriteGroup>, check: Option<ScanCheck<'_>>) -> Result<()> {
        let _ic = self.index_change.read();
        let references = Checks::plan(self, &groups)?;
        let mut ops = Vec::new();
        let mut uniques: Vec<UniqueCheck> = Vec::new();
        let mut written: Vec<u32> = Vec::with_capacity(groups.len());
        // Collections whose observed fields change, with their new documents.
        let mut changed: Vec<(String, u32, Vec<Object>)> = Vec::new();
        for group in groups {
            // The common case, no new field: decided under the read lock, without
            // copying the collection's description on every write.
            let (cid, changes, indexes) = {
                let st = self.state.read();
                let c = st.by_name.get(&group.collection).ok_or_else(|| {
                    Error::not_found(
                        SqlState::UNDEFINED_TABLE,
                        format!("collection \"{}\" does not exist", group.collection),
                    )
                })?;
                if group.cid.is_some_and(|id| id != c.id) {
                    return Err(crate::txn::serialization_failure(
                        "a collection the transaction wrote was dropped and created again",
                    ));
                }
                let news: Vec<&Object> =
                    group.writes.iter().filter_map(|w| w.new.as_ref()).collect();
                let changes = c.kind == Kind::Schemaless
                    && !news.is_empty()
                    && (schema::observe(&c.observed, &news).is_some()
                        || schema::observe_nested(&c.nested, &news).is_some());
                (c.id, changes, c.indexes.clone())
            };
            written.push(cid);
            for def in &indexes {
                self.index_ops(def, &group.writes, &mut ops, &mut uniques)?;
            }
            let delta: i64 = group
                .writes
                .iter()
                .map(|w| i64::from(w.new.is_some()) - i64::from(w.old.is_some()))
                .sum();
            if delta != 0 {
                ops.push(Op::Count {
                    collection: cid,
                    delta,
                });
            }
            let mut news: Vec<Object> = Vec::new();
            for w in group.writes {
                match w.new {
                    Some(doc) => {
                        if changes {
                            news.push(doc.clone());
                        }
                        ops.push(Op::Put { key: w.key, doc });
                    }
                    None => ops.push(Op::Delete { key: w.key }),
                }
            }
            if changes {
                changed.push((group.collection, cid, news));
            }
        }
        // The value stripes, all at once, then the checks under them; held until written.
        let mut stripes: Vec<usize> = references.stripes().collect();
        for u in &uniques {
            stripes.extend(u.stripes()?);
        }
        let _stripes = self.lock_stripes(stripes);
        for u in &uniques {
            self.check_unique(&u.def, &u.added, &u.removed)?;
        }
        references.run(self)?;
        let conflicts = &self.conflicts;
        let mut register = |seq: u64| conflicts.register(seq, &written, check);
        if changed.is_empty() {
            self.storage.write_checked(ops, &mut register)?;
            return Ok(());
        }
        // The schema changes: serialize with other schema changes and recompute.
        let _ddl = self.ddl.lock();
        let mut updated: Vec<(String, Collection)> = Vec::new();
        for (name, cid, news) in &changed {
            let mut current = Arc::unwrap_or_clone(self.get(name)?);
            if current.id != *cid {
                return Err(crate::txn::serialization_failure(
                    "a collection was dropped and created again during the write",
                ));
            }
            let refs: Vec<&Object> = news.iter().collect();
            let observed = schema::observe(&current.observed, &refs);
            let nested = schema::observe_nested(&current.nested, &refs);
            if observed.is_some() || nested.is_some() {
                if let Some(observed) = observed {
                    current.observed = observed;
                }
                if let Some(nested) = nested {
                    current.nested = nested;
                }
                ops.push(Op::Put {
                    key: catalog_key(name),
                    doc: schema::encode_entry(&current),
                });
                updated.push((name.clone(), current));
            }
        }
        self.storage.write_checked(ops, &mut register)?;
        if updated.is_empty() {
            return Ok(());
        }
        let mut st = self.state_mut();
        for (name, current) in updated {
            if let Some(c) = st.by_name.get_mut(&name)
                && c.id == current.id
            {
                let c = Arc::make_mut(c);
                c.observed = current.observed;
                c.nested = current.nested;
            }
        }
        Ok(())
    }

    /// The per-collection write tracking transactions validate against.
    pub fn conflicts(&self) -> &Conflicts {
        &self.conflicts
    }

    /// Adds to `ops` the entry changes of index `def` for `writes`, and to `uniques` the
    /// values a unique index must check.
    fn index_ops(
        &self,
        def: &IndexDef,
        writes: &[DocWrite],
        ops: &mut Vec<Op>,
        uniques: &mut Vec<UniqueCheck>,
    ) -> Result<()> {
        let mut removed: HashSet<Vec<u8>> = HashSet::new();
        let mut added: Vec<(Vec<u8>, Vec<crate::doc::Value>)> = Vec::new();
        for w in writes {
            let old = w.old.as_ref().map(|d| def.entry(&w.id, d)).transpose()?;
            let new = w.new.as_ref().map(|d| def.entry(&w.id, d)).transpose()?;
            if old == new {
                continue;
            }
            if let Some(entry) = old {
                removed.insert(entry.clone());
                ops.push(Op::IndexDelete {
                    index: def.id,
                    entry,
                });
            }
            if let (Some(entry), Some(doc)) = (new, &w.new) {
                if def.unique {
                    let values = def.values(doc);
                    if !values.iter().any(|v| matches!(v, crate::doc::Value::Null)) {
                        added.push((entry.clone(), values));
                    }
                }
                ops.push(Op::IndexPut {
                    index: def.id,
                    entry,
                });
            }
        }
        if !added.is_empty() {
            uniques.push(UniqueCheck {
                def: def.clone(),
                added,
                removed,
            });
        }
        Ok(())
    }

    /// Locks value stripes (deduplicated, in order, so two writers never deadlock).
    pub(super) fn lock_stripes(
        &self,
        mut stripes: Vec<usize>,
    ) -> Vec<parking_lot::MutexGuard<'_, ()>> {
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .filter_map(|s| self.unique_locks.get(s).map(|m| m.lock()))
            .collect()
    }

    /// 23505 unless each of `added` (entry, values) is the only entry of its values in
    /// index `def`, not counting `removed` ones. The caller holds the values' stripes
    /// (see [`UniqueCheck::stripes`]).
    pub(super) fn check_unique(
        &self,
        def: &IndexDef,
        added: &[(Vec<u8>, Vec<crate::doc::Value>)],
        removed: &HashSet<Vec<u8>>,
    ) -> Result<()> {
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (entry, values) in added {
            let prefix = value_prefix(entry)?;
            let mut taken = !seen.insert(prefix.clone());
            if !taken {
                let upper = crate::doc::keycode::prefix_successor(&prefix)
                    .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
                for item in self.storage.indexes().scan(
                    def.id,
                    std::ops::Bound::Included(prefix.clone()),
                    upper,
                    false,
                )? {
                    let other = item?;
                    if other != *entry && !removed.contains(&other) {
                        taken = true;
                        break;
                    }
                }
            }
            if taken {
                return Err(unique_violation(def, values));
            }
        }
        Ok(())
    }
}

/// The values a unique index must check in one batch.
pub(super) struct UniqueCheck {
    pub def: IndexDef,
    /// New entries and their values.
    pub added: Vec<(Vec<u8>, Vec<crate::doc::Value>)>,
    /// Entries the batch removes.
    pub removed: HashSet<Vec<u8>>,
}

impl UniqueCheck {
    /// The stripes of its values.
    pub fn stripes(&self) -> Result<Vec<usize>> {
        unique_stripes(&self.def, &self.added)
    }
}

/// The stripes of the values of `added` entries of index `def`.
pub(super) fn unique_stripes(
    def: &IndexDef,
    added: &[(Vec<u8>, Vec<crate::doc::Value>)],
) -> Result<Vec<usize>> {
    added
        .iter()
        .map(|(entry, _)| Ok(stripe_of(&value_prefix(entry)?, def.id)))
        .collect()
}

/// The stripe of `bytes` (a value prefix, or a document key with `salt` 0).
pub(super) fn stripe_of(bytes: &[u8], salt: u32) -> usize {
    let mut h = xxhash_rust::xxh3::xxh3_64(bytes);
    h ^= u64::from(salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h % UNIQUE_LOCK_STRIPES as u64) as usize
}

/// The encoded values of an index entry, without the document id.
fn value_prefix(entry: &[u8]) -> Result<Vec<u8>> {
    let ends = crate::doc::keycode::entry_value_ends(entry)?;
    let len = ends.last().copied().unwrap_or(0);
    Ok(entry.get(..len).unwrap_or(entry).to_vec())
}

fn unique_violation(def: &IndexDef, values: &[crate::doc::Value]) -> Error {
    let shown: Vec<String> = values
        .iter()
        .map(|v| match v {
            crate::doc::Value::String(s) => s.clone(),
            other => crate::query::types::to_json_text(other),
        })
        .collect();
    Error::conflict(
        SqlState::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{}\": Key ({})=({}) already exists",
            def.name,
            def.field_list(),
            shown.join(", ")
        ),
    )
}
