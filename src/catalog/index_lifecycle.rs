//! The life of an index in the catalog: registering it (so every later write maintains
//! it), filling it from a build, marking it ready, dropping it, and checking it against
//! the documents.

use std::collections::HashSet;
use std::sync::Arc;

use super::{
    Catalog, Collection, IndexDef, Kind, MAX_INDEX_FIELDS, NEXT_INDEX_ID_KEY, catalog_key, dotted,
    schema, validate_collection_name,
};
use crate::doc::Object;
use crate::error::{Error, Result, SqlState};
use crate::storage::{Op, keys};

impl Catalog {
    /// Registers a new index on collection `collection`, not yet ready: from now on every
    /// write maintains it. The caller fills it from the data, then calls
    /// [`Catalog::finish_index`] (or [`Catalog::abort_index`]).
    pub fn begin_index(
        &self,
        collection: &str,
        name: &str,
        fields: Vec<Vec<String>>,
        unique: bool,
    ) -> Result<IndexDef> {
        let _ic = self.index_change.write();
        let _ddl = self.ddl.lock();
        validate_collection_name(name)?;
        let c = self.get(collection)?;
        if self.relation_exists(name) {
            return Err(Error::conflict(
                SqlState::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        validate_index_fields(&c, &fields)?;
        let id = self.state.read().next_index_id;
        let next = id
            .checked_add(1)
            .ok_or_else(|| Error::limit("no index ids left"))?;
        let mut counter = Object::default();
        counter.insert("value".into(), crate::doc::Value::Int(i64::from(next)));
        self.storage.write(vec![Op::Put {
            key: catalog_key(NEXT_INDEX_ID_KEY),
            doc: counter,
        }])?;
        self.state_mut().next_index_id = next;
        self.storage.indexes().create(id)?;
        let def = IndexDef {
            id,
            name: name.to_string(),
            fields,
            unique,
            ready: false,
        };
        if let Some(c) = self.state_mut().by_name.get_mut(collection) {
            Arc::make_mut(c).indexes.push(def.clone());
        }
        Ok(def)
    }

    /// Adds entries an index build computed (entry, indexed values) straight to the
    /// index tree; for a unique index, 23505 if one of them repeats a value already there.
    pub fn add_built_entries(
        &self,
        def: &IndexDef,
        entries: Vec<(Vec<u8>, Vec<crate::doc::Value>)>,
    ) -> Result<()> {
        let _guards = if def.unique {
            let added: Vec<(Vec<u8>, Vec<crate::doc::Value>)> = entries
                .iter()
                .filter(|(_, v)| !v.iter().any(|x| matches!(x, crate::doc::Value::Null)))
                .cloned()
                .collect();
            let guards = self.lock_stripes(super::writes::unique_stripes(def, &added)?);
            self.check_unique(def, &added, &HashSet::new())?;
            guards
        } else {
            Vec::new()
        };
        self.storage
            .indexes()
            .insert_built(def.id, entries.into_iter().map(|(e, _)| e).collect())
    }

    /// Recounts the statistics of an index a build filled (the build adds entries
    /// without them) with writers held off, and commits its tree.
    pub fn seal_built_index(&self, id: u32) -> Result<()> {
        let _ic = self.index_change.write();
        self.storage.indexes().recount(id)?;
        self.storage.commit_indexes()
    }

    /// Marks a built index ready and records it in the catalog.
    pub fn finish_index(&self, collection: &str, id: u32) -> Result<IndexDef> {
        let _ddl = self.ddl.lock();
        let mut current = Arc::unwrap_or_clone(self.get(collection)?);
        let Some(def) = current.indexes.iter_mut().find(|i| i.id == id) else {
            return Err(Error::not_found(
                SqlState::UNDEFINED_OBJECT,
                format!("index {id} of \"{collection}\" vanished while it was built"),
            ));
        };
        def.ready = true;
        let def = def.clone();
        self.storage.write(vec![Op::Put {
            key: catalog_key(collection),
            doc: schema::encode_entry(&current),
        }])?;
        if let Some(c) = self.state_mut().by_name.get_mut(collection)
            && c.id == current.id
            && let Some(d) = Arc::make_mut(c).indexes.iter_mut().find(|i| i.id == id)
        {
            d.ready = true;
        }
        Ok(def)
    }

    /// Forgets an index whose build failed and deletes its file.
    pub fn abort_index(&self, collection: &str, id: u32) -> Result<()> {
        {
            let _ic = self.index_change.write();
            if let Some(c) = self.state_mut().by_name.get_mut(collection) {
                Arc::make_mut(c).indexes.retain(|i| i.id != id);
            }
        }
        self.storage.indexes().remove(id)
    }

    /// The collection holding index `name`, and the index.
    pub fn find_index(&self, name: &str) -> Option<(Collection, IndexDef)> {
        let st = self.state.read();
        st.by_name.values().find_map(|c| {
            c.indexes
                .iter()
                .find(|i| i.name == name)
                .map(|i| ((**c).clone(), i.clone()))
        })
    }

    /// Drops index `name`; 42704 if there is none (or it is still being built).
    pub fn drop_index(&self, name: &str) -> Result<()> {
        let _ic = self.index_change.write();
        let _ddl = self.ddl.lock();
        let Some((mut c, def)) = self.find_index(name).filter(|(_, d)| d.ready) else {
            return Err(Error::not_found(
                SqlState::UNDEFINED_OBJECT,
                format!("index \"{name}\" does not exist"),
            ));
        };
        c.indexes.retain(|i| i.id != def.id);
        self.storage.write(vec![Op::Put {
            key: catalog_key(&c.name),
            doc: schema::encode_entry(&c),
        }])?;
        if let Some(cur) = self.state_mut().by_name.get_mut(&c.name) {
            Arc::make_mut(cur).indexes.retain(|i| i.id != def.id);
        }
        self.storage.indexes().remove(def.id)
    }

    /// Verifies every ready index of `collection` against the data: the tree's structure
    /// and statistics, and that its entries are exactly those the documents give. Writes
    /// to the database wait while it runs. Returns each index's name and entry count;
    /// XX001 (data corrupted) naming the first difference otherwise.
    pub fn check_indexes(&self, collection: &str) -> Result<Vec<(String, u64)>> {
        let _ic = self.index_change.write();
        let c = self.get(collection)?;
        let mut report = Vec::new();
        for def in c.ready_indexes() {
            let entries = self.storage.indexes().check(def.id)?;
            let mut expected = Vec::new();
            let start = keys::collection_start(c.id);
            let end = keys::collection_end(c.id)
                .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
            for item in self.storage.scan(std::ops::Bound::Included(start), end) {
                let (key, doc) = item?;
                let (_, id) = keys::decode(&key)
                    .ok_or_else(|| Error::Corruption("malformed document key".into()))?;
                expected.push(def.entry(id, &doc)?);
            }
            expected.sort_unstable();
            let mut actual = self.storage.indexes().scan(
                def.id,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
            )?;
            for want in &expected {
                match actual.next().transpose()? {
                    Some(got) if got == *want => {}
                    Some(got) => {
                        return Err(index_mismatch(def, &got, want));
                    }
                    None => {
                        return Err(Error::Corruption(format!(
                            "index \"{}\" lacks the entry of a document ({} entries, {} documents)",
                            def.name,
                            entries,
                            expected.len()
                        )));
                    }
                }
            }
            if actual.next().transpose()?.is_some() {
                return Err(Error::Corruption(format!(
                    "index \"{}\" has {} entries for {} documents",
                    def.name,
                    entries,
                    expected.len()
                )));
            }
            report.push((def.name.clone(), entries));
        }
        Ok(report)
    }

    /// Whether a collection or an index is named `name` (they share one namespace, as
    /// tables and indexes do in PostgreSQL).
    pub(super) fn relation_exists(&self, name: &str) -> bool {
        let st = self.state.read();
        st.by_name.contains_key(name)
            || st
                .by_name
                .values()
                .any(|c| c.indexes.iter().any(|i| i.name == name))
    }
}

fn index_mismatch(def: &IndexDef, got: &[u8], want: &[u8]) -> Error {
    let show = |e: &[u8]| match crate::doc::keycode::split_index_entry(e) {
        Ok((values, id)) => format!("{values:?} of document {id:?}"),
        Err(_) => format!("{e:?}"),
    };
    Error::Corruption(format!(
        "index \"{}\" holds {} where the data gives {}",
        def.name,
        show(got),
        show(want)
    ))
}

/// Checks the fields of a new index on `c`: 1 to [`MAX_INDEX_FIELDS`] non-empty paths;
/// on a table, each starts at a declared column (and only json columns have paths).
fn validate_index_fields(c: &Collection, fields: &[Vec<String>]) -> Result<()> {
    if fields.is_empty() || fields.len() > MAX_INDEX_FIELDS {
        return Err(Error::invalid(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("an index covers 1 to {MAX_INDEX_FIELDS} fields"),
        ));
    }
    for path in fields {
        let Some(first) = path.first() else {
            return Err(Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                "an index field cannot be empty",
            ));
        };
        if path.iter().any(|s| s.is_empty()) {
            return Err(Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("index field \"{}\" has an empty step", dotted(path)),
            ));
        }
        match c.kind {
            Kind::Schemaless if first == "id" && path.len() == 1 => {
                return Err(Error::invalid(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "\"id\" is the document key, which every collection is ordered by already",
                ));
            }
            Kind::Schemaless => {}
            Kind::Table => {
                let Some(col) = c.columns.iter().find(|col| col.name == *first) else {
                    return Err(Error::not_found(
                        SqlState("42703"),
                        format!("column \"{first}\" does not exist in \"{}\"", c.name),
                    ));
                };
                if path.len() > 1
                    && !matches!(
                        col.ty,
                        crate::query::types::SqlType::Json | crate::query::types::SqlType::Jsonb
                    )
                {
                    return Err(Error::invalid(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!(
                            "\"{}\" is not a json column, so \"{}\" has no fields",
                            first,
                            dotted(path)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
