//! The catalog: which collections exist, under which ids, with which indexes; and the
//! one door every document write goes through ([`Catalog::write_documents`]), which adds
//! the schema changes and index entries a write brings to the same atomic batch.
//!
//! Collections are stored in the catalog's own key range (collection 0) of the same LSM
//! store, so they are written through the WAL, recovered with the data and never out of
//! step with it. Ids are never reused: a dropped collection's id stays dead, and flush
//! and compaction purge its keys (see [`Catalog::key_filter`]). Index ids are never
//! reused either, so a dropped index's changes still in the WAL name no live index.
//!
//! Locks, always taken in this order: `index_change` (writers share it for the whole
//! write; adding or dropping an index takes it exclusively, so once an index is added
//! every later write maintains it), then `ddl` (serializes catalog changes), then
//! `state`; unique-value stripes are taken inside a write, after the callers' key locks.

mod indexes;
mod names;
mod schema;

pub use indexes::{IndexDef, MAX_INDEX_FIELDS, dotted, value_at};
pub use names::{validate_collection_name, validate_document_id};
pub use schema::{ColumnDef, Kind, Observed, ObservedField};

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::doc::{Object, Value};

use crate::error::{Error, Result, SqlState};
use crate::storage::keys::{self, CATALOG_COLLECTION};
use crate::storage::{Op, Storage};

/// Catalog key holding the next collection id.
const NEXT_ID_KEY: &str = "#next_collection_id";
/// Catalog key holding the next index id.
const NEXT_INDEX_ID_KEY: &str = "#next_index_id";
/// Stripes of the lock that serializes unique checks on one value.
const UNIQUE_LOCK_STRIPES: usize = 64;

/// A collection as the catalog knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Collection {
    pub id: u32,
    pub name: String,
    /// Creation time, microseconds since the Unix epoch.
    pub created_at: i64,
    pub kind: Kind,
    /// Declared columns (tables only).
    pub columns: Vec<ColumnDef>,
    /// The declared primary key column (tables only); its value is the document key.
    pub primary_key: Option<String>,
    /// The block format asked for with `WITH (format = ...)`.
    pub format: Option<String>,
    /// Top-level fields seen so far, in order of first appearance (schemaless only).
    pub observed: Vec<ObservedField>,
    /// Secondary indexes, in creation order (those being built included).
    pub indexes: Vec<IndexDef>,
}

impl Collection {
    /// The indexes queries may use.
    pub fn ready_indexes(&self) -> impl Iterator<Item = &IndexDef> {
        self.indexes.iter().filter(|i| i.ready)
    }
}

/// One document write: its id and key, the version it replaces (None if new) and the
/// new version (None to delete). The caller holds the key's lock and read `old` under it.
#[derive(Clone, Debug)]
pub struct DocWrite {
    pub id: String,
    pub key: Vec<u8>,
    pub old: Option<Object>,
    pub new: Option<Object>,
}

struct State {
    by_name: BTreeMap<String, Collection>,
    next_id: u32,
    next_index_id: u32,
}

/// The collection catalog. See the module doc.
pub struct Catalog {
    storage: Arc<Storage>,
    state: RwLock<State>,
    live_ids: Arc<RwLock<HashSet<u32>>>,
    index_change: RwLock<()>,
    ddl: Mutex<()>,
    unique_locks: Vec<Mutex<()>>,
    rebuild: Mutex<Vec<u32>>,
}

fn catalog_key(name: &str) -> Vec<u8> {
    keys::encode(CATALOG_COLLECTION, name)
}

impl Catalog {
    /// Loads the catalog from storage.
    pub fn load(storage: Arc<Storage>) -> Result<Catalog> {
        let mut by_name = BTreeMap::new();
        let mut next_id = 1u32;
        let mut next_index_id = 1u32;
        let start = keys::collection_start(CATALOG_COLLECTION);
        let end = keys::collection_end(CATALOG_COLLECTION)
            .ok_or_else(|| Error::Internal("no catalog range".into()))?;
        for item in storage.scan(
            std::ops::Bound::Included(start),
            std::ops::Bound::Excluded(end),
        ) {
            let (key, doc) = item?;
            let (_, name) = keys::decode(&key)
                .ok_or_else(|| Error::Corruption("malformed catalog key".into()))?;
            let int = |field: &str| match doc.get(field) {
                Some(Value::Int(i)) => Ok(*i),
                _ => Err(Error::Corruption(format!(
                    "catalog entry {name:?} lacks {field}"
                ))),
            };
            if name == NEXT_ID_KEY {
                next_id = u32::try_from(int("value")?)
                    .map_err(|_| Error::Corruption("next collection id out of range".into()))?;
                continue;
            }
            if name == NEXT_INDEX_ID_KEY {
                next_index_id = u32::try_from(int("value")?)
                    .map_err(|_| Error::Corruption("next index id out of range".into()))?;
                continue;
            }
            let collection = schema::decode_entry(name, &doc)?;
            by_name.insert(name.to_string(), collection);
        }
        let live: HashSet<u32> = by_name.values().map(|c| c.id).collect();
        // Index files no ready index names were being built (or dropped) at a crash.
        let named: HashSet<u32> = by_name
            .values()
            .flat_map(|c| c.indexes.iter().map(|i| i.id))
            .collect();
        let open: HashSet<u32> = storage.indexes().ids().into_iter().collect();
        for id in open.difference(&named) {
            tracing::info!(index = id, "removing an index file no catalog entry names");
            storage.indexes().remove(*id)?;
        }
        // Unreadable or missing files of named indexes are made anew, empty; the database
        // refills them from the data (see `Catalog::indexes_to_rebuild`).
        let mut rebuild = Vec::new();
        for id in storage.indexes().take_unreadable() {
            storage.indexes().remove_file(id)?;
            if named.contains(&id) {
                rebuild.push(id);
            }
        }
        for id in named.difference(&open) {
            if !rebuild.contains(id) {
                tracing::error!(index = id, "the file of an index is missing; rebuilding it");
                rebuild.push(*id);
            }
        }
        for id in &rebuild {
            storage.indexes().create(*id)?;
        }
        Ok(Catalog {
            storage,
            state: RwLock::new(State {
                by_name,
                next_id,
                next_index_id,
            }),
            live_ids: Arc::new(RwLock::new(live)),
            index_change: RwLock::new(()),
            ddl: Mutex::new(()),
            unique_locks: (0..UNIQUE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            rebuild: Mutex::new(rebuild),
        })
    }

    /// Indexes whose files were unreadable or missing at open, now empty: (collection,
    /// index) pairs for the database to refill from the data. Taken once.
    pub fn indexes_to_rebuild(&self) -> Vec<(String, IndexDef)> {
        let ids = std::mem::take(&mut *self.rebuild.lock());
        let st = self.state.read();
        st.by_name
            .values()
            .flat_map(|c| {
                c.indexes
                    .iter()
                    .filter(|i| ids.contains(&i.id))
                    .map(|i| (c.name.clone(), i.clone()))
            })
            .collect()
    }

    /// A predicate for the storage engine: false for keys of dropped collections.
    pub fn key_filter(&self) -> crate::storage::engine::KeyFilter {
        let live = self.live_ids.clone();
        Arc::new(move |key: &[u8]| {
            let c = keys::collection_of(key);
            c == CATALOG_COLLECTION || live.read().contains(&c)
        })
    }

    /// The collection named `name`, or 42P01.
    pub fn get(&self, name: &str) -> Result<Collection> {
        self.state.read().by_name.get(name).cloned().ok_or_else(|| {
            Error::not_found(
                SqlState::UNDEFINED_TABLE,
                format!("collection \"{name}\" does not exist"),
            )
        })
    }

    /// All collections, by name.
    pub fn list(&self) -> Vec<Collection> {
        self.state.read().by_name.values().cloned().collect()
    }

    /// Creates a schemaless collection; 42P07 if it exists.
    pub fn create(&self, name: &str) -> Result<Collection> {
        self.create_with(Collection {
            id: 0,
            name: name.to_string(),
            created_at: 0,
            kind: Kind::Schemaless,
            columns: Vec::new(),
            primary_key: None,
            format: None,
            observed: Vec::new(),
            indexes: Vec::new(),
        })
    }

    /// Creates a collection described by `template` (its id and creation time are
    /// assigned here); 42P07 if one of that name exists.
    pub fn create_with(&self, template: Collection) -> Result<Collection> {
        let name = template.name.as_str();
        validate_collection_name(name)?;
        let _ddl = self.ddl.lock();
        if self.state.read().by_name.contains_key(name) {
            return Err(Error::conflict(
                SqlState::DUPLICATE_TABLE,
                format!("collection \"{name}\" already exists"),
            ));
        }
        let id = self.state.read().next_id;
        let next = id
            .checked_add(1)
            .ok_or_else(|| Error::limit("no collection ids left"))?;
        let created_at = chrono::Utc::now().timestamp_micros();
        let collection = Collection {
            id,
            created_at,
            ..template.clone()
        };
        let entry = schema::encode_entry(&collection);
        let mut counter = Object::default();
        counter.insert("value".into(), Value::Int(i64::from(next)));
        self.storage.write(vec![
            Op::Put {
                key: catalog_key(name),
                doc: entry,
            },
            Op::Put {
                key: catalog_key(NEXT_ID_KEY),
                doc: counter,
            },
        ])?;
        let mut st = self.state.write();
        st.next_id = next;
        st.by_name.insert(name.to_string(), collection.clone());
        self.live_ids.write().insert(id);
        Ok(collection)
    }

    /// Drops a collection; 42P01 if it does not exist. Its documents become unreachable
    /// at once and leave the disk with the next compaction.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let _ic = self.index_change.write();
        let _ddl = self.ddl.lock();
        let collection = self.get(name)?;
        self.storage.write(vec![Op::Delete {
            key: catalog_key(name),
        }])?;
        self.state.write().by_name.remove(name);
        self.live_ids.write().remove(&collection.id);
        for index in &collection.indexes {
            self.storage.indexes().remove(index.id)?;
        }
        Ok(())
    }

    /// Writes documents (puts and deletes) atomically, together with the schema changes
    /// the new versions bring (new top-level fields, widened types) and the entries of
    /// every index of the collection; 23505 if a unique index would hold a value twice.
    /// The callers hold the documents' key locks.
    pub fn write_documents(&self, name: &str, writes: Vec<DocWrite>) -> Result<()> {
        let _ic = self.index_change.read();
        // The common case, no new field: decided under the read lock, without copying
        // the collection's description on every write.
        let (changes, indexes) = {
            let st = self.state.read();
            let c = st.by_name.get(name).ok_or_else(|| {
                Error::not_found(
                    SqlState::UNDEFINED_TABLE,
                    format!("collection \"{name}\" does not exist"),
                )
            })?;
            let news: Vec<&Object> = writes.iter().filter_map(|w| w.new.as_ref()).collect();
            let changes = c.kind == Kind::Schemaless
                && !news.is_empty()
                && schema::observe(&c.observed, &news).is_some();
            (changes, c.indexes.clone())
        };
        let mut ops = Vec::with_capacity(writes.len() * (1 + 2 * indexes.len()));
        let mut unique_guards = Vec::new();
        for def in &indexes {
            self.index_ops(def, &writes, &mut ops, &mut unique_guards)?;
        }
        let mut news: Vec<Object> = Vec::new();
        for w in writes {
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
        if !changes {
            self.storage.write(ops)?;
            return Ok(());
        }
        // The schema changes: serialize with other schema changes and recompute.
        let _ddl = self.ddl.lock();
        let mut current = self.get(name)?;
        let refs: Vec<&Object> = news.iter().collect();
        if let Some(observed) = schema::observe(&current.observed, &refs) {
            current.observed = observed;
            ops.push(Op::Put {
                key: catalog_key(name),
                doc: schema::encode_entry(&current),
            });
            self.storage.write(ops)?;
            if let Some(c) = self.state.write().by_name.get_mut(name)
                && c.id == current.id
            {
                c.observed = current.observed;
            }
        } else {
            self.storage.write(ops)?;
        }
        Ok(())
    }

    /// Adds to `ops` the entry changes of index `def` for `writes`, checking uniqueness
    /// (under the value stripes it pushes to `guards`).
    fn index_ops<'a>(
        &'a self,
        def: &IndexDef,
        writes: &[DocWrite],
        ops: &mut Vec<Op>,
        guards: &mut Vec<parking_lot::MutexGuard<'a, ()>>,
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
        self.check_unique(def, &added, &removed, guards)
    }

    /// 23505 unless each of `added` (entry, values) is the only entry of its values in
    /// index `def`, not counting `removed` ones; locks the values' stripes into `guards`.
    fn check_unique<'a>(
        &'a self,
        def: &IndexDef,
        added: &[(Vec<u8>, Vec<crate::doc::Value>)],
        removed: &HashSet<Vec<u8>>,
        guards: &mut Vec<parking_lot::MutexGuard<'a, ()>>,
    ) -> Result<()> {
        if added.is_empty() {
            return Ok(());
        }
        let mut prefixes = Vec::with_capacity(added.len());
        for (entry, _) in added {
            let ends = crate::doc::keycode::entry_value_ends(entry)?;
            let len = ends.last().copied().unwrap_or(0);
            prefixes.push(entry.get(..len).unwrap_or(entry).to_vec());
        }
        let mut stripes: Vec<usize> = prefixes
            .iter()
            .map(|p| {
                let mut h = xxhash_rust::xxh3::xxh3_64(p);
                h ^= u64::from(def.id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                (h % UNIQUE_LOCK_STRIPES as u64) as usize
            })
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        for s in stripes {
            if let Some(m) = self.unique_locks.get(s) {
                guards.push(m.lock());
            }
        }
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for ((entry, values), prefix) in added.iter().zip(&prefixes) {
            let mut taken = !seen.insert(prefix.as_slice());
            if !taken {
                let upper = crate::doc::keycode::prefix_successor(prefix)
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
        self.state.write().next_index_id = next;
        self.storage.indexes().create(id)?;
        let def = IndexDef {
            id,
            name: name.to_string(),
            fields,
            unique,
            ready: false,
        };
        if let Some(c) = self.state.write().by_name.get_mut(collection) {
            c.indexes.push(def.clone());
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
        let mut guards = Vec::new();
        if def.unique {
            let added: Vec<(Vec<u8>, Vec<crate::doc::Value>)> = entries
                .iter()
                .filter(|(_, v)| !v.iter().any(|x| matches!(x, crate::doc::Value::Null)))
                .cloned()
                .collect();
            self.check_unique(def, &added, &HashSet::new(), &mut guards)?;
        }
        self.storage
            .indexes()
            .insert_built(def.id, entries.into_iter().map(|(e, _)| e).collect())
    }

    /// Recounts the statistics of an index a build filled (the build adds entries
    /// without them) with writers held off, and commits its tree.
    pub fn seal_built_index(&self, id: u32) -> Result<()> {
        let _ic = self.index_change.write();
        self.storage.indexes().recount(id)?;
        self.storage.indexes().commit()
    }

    /// Marks a built index ready and records it in the catalog.
    pub fn finish_index(&self, collection: &str, id: u32) -> Result<IndexDef> {
        let _ddl = self.ddl.lock();
        let mut current = self.get(collection)?;
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
        if let Some(c) = self.state.write().by_name.get_mut(collection)
            && c.id == current.id
            && let Some(d) = c.indexes.iter_mut().find(|i| i.id == id)
        {
            d.ready = true;
        }
        Ok(def)
    }

    /// Forgets an index whose build failed and deletes its file.
    pub fn abort_index(&self, collection: &str, id: u32) -> Result<()> {
        {
            let _ic = self.index_change.write();
            if let Some(c) = self.state.write().by_name.get_mut(collection) {
                c.indexes.retain(|i| i.id != id);
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
                .map(|i| (c.clone(), i.clone()))
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
        if let Some(cur) = self.state.write().by_name.get_mut(&c.name) {
            cur.indexes.retain(|i| i.id != def.id);
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
    fn relation_exists(&self, name: &str) -> bool {
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
