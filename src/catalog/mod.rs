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
//! Files: `schema` (declared and observed columns, the stored form of an entry),
//! `indexes` (index definitions and entries), `index_lifecycle` (creating, building,
//! dropping and checking indexes), `writes` (the write door and unique checks),
//! `foreign_keys` (declared references: definitions, checks at CREATE TABLE),
//! `references` (enforcing them at the write door), `names`.
//!
//! Locks, always taken in this order: `index_change` (writers share it for the whole
//! write; adding or dropping an index takes it exclusively, so once an index is added
//! every later write maintains it), then `ddl` (serializes catalog changes), then
//! `state`; value stripes (unique values, referenced keys) are taken inside a write,
//! after the callers' key locks, all at once in stripe order.

mod foreign_keys;
mod graphs;
mod index_lifecycle;
mod indexes;
mod names;
pub mod references;
mod schema;
mod writes;

pub use foreign_keys::{
    Action, ForeignKey, ForeignKeySpec, MAX_FOREIGN_KEYS, resolve as resolve_foreign_keys,
};
pub use indexes::{IndexDef, MAX_INDEX_FIELDS, dotted, value_at, value_in};
pub use names::{validate_collection_name, validate_document_id};
pub use schema::{
    ColumnDef, KeyForm, Kind, MAX_NESTED_DEPTH, MAX_NESTED_FIELDS, NestedField, Observed,
    ObservedField, observe, observe_nested,
};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

use crate::doc::{Object, Value};

use crate::error::{Error, Result, SqlState};
use crate::storage::keys::{self, CATALOG_COLLECTION};
use crate::storage::{Op, Storage};

/// Catalog key holding the next collection id.
const NEXT_ID_KEY: &str = "#next_collection_id";
/// Catalog key holding the next index id.
const NEXT_INDEX_ID_KEY: &str = "#next_index_id";
/// Stripes of the lock that serializes checks on one value: a unique index's value, or
/// a referenced document's key (see [`references`]).
const UNIQUE_LOCK_STRIPES: usize = 256;

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
    /// How the key's values are spelled as document ids.
    pub key_form: KeyForm,
    /// The block format asked for with `WITH (format = ...)`.
    pub format: Option<String>,
    /// Top-level fields seen so far, in order of first appearance (schemaless only).
    pub observed: Vec<ObservedField>,
    /// Fields inside object fields seen so far (schemaless only).
    pub nested: Vec<NestedField>,
    /// Secondary indexes, in creation order (those being built included).
    pub indexes: Vec<IndexDef>,
    /// Declared foreign keys (tables only), in declaration order.
    pub foreign_keys: Vec<ForeignKey>,
}

impl Collection {
    /// The indexes queries may use.
    pub fn ready_indexes(&self) -> impl Iterator<Item = &IndexDef> {
        self.indexes.iter().filter(|i| i.ready)
    }

    /// The position of the column holding the document key in a scan's row: `id`
    /// (first) for a schemaless collection, the declared primary key for a table
    /// (None for a table declared without one).
    pub fn key_position(&self) -> Option<usize> {
        match self.kind {
            Kind::Schemaless => Some(0),
            Kind::Table => self
                .primary_key
                .as_ref()
                .and_then(|pk| self.columns.iter().position(|c| c.name == *pk)),
        }
    }

    /// The id of the document whose key is `v` ([`KeyForm::document_id`]).
    pub fn document_id(&self, v: &Value) -> Option<String> {
        self.key_form.document_id(v)
    }

    /// The key value document id `id` spells ([`KeyForm::key_value`]).
    pub fn key_value(&self, id: &str) -> Value {
        self.key_form.key_value(id)
    }

    /// A document id as a user reads it ([`KeyForm::id_text`]).
    pub fn id_text<'i>(&self, id: &'i str) -> std::borrow::Cow<'i, str> {
        self.key_form.id_text(id)
    }

    /// The document id a user's id text names ([`KeyForm::stored_id`]).
    pub fn stored_id(&self, text: &str) -> Option<String> {
        self.key_form.stored_id(text)
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

/// One new document in the storage's binary form (a bulk load's row, see
/// [`Catalog::insert_encoded`]).
#[derive(Clone, Debug)]
pub struct EncodedInsert {
    pub id: String,
    pub key: Vec<u8>,
    /// The document as [`crate::doc::binary::encode_object`] encodes it.
    pub doc: Vec<u8>,
}

impl EncodedInsert {
    /// The insert as a [`DocWrite`], its document decoded.
    pub fn decoded(self) -> Result<DocWrite> {
        Ok(DocWrite {
            new: Some(crate::doc::binary::decode_object(&self.doc)?),
            id: self.id,
            key: self.key,
            old: None,
        })
    }
}

/// The writes of one collection in a batch; `cid`, when given, must still be the
/// collection's id (it was not dropped and created again since the writes were made).
#[derive(Clone, Debug)]
pub struct WriteGroup {
    pub collection: String,
    pub cid: Option<u32>,
    pub writes: Vec<DocWrite>,
}

struct State {
    /// Shared: readers hold a collection without copying it; a change copies on write.
    by_name: BTreeMap<String, Arc<Collection>>,
    /// For each referenced collection, the (referencing collection, foreign key) pairs
    /// naming it; derived from `by_name` (see [`State::index_references`]).
    referenced_by: HashMap<String, Vec<(String, ForeignKey)>>,
    graphs: BTreeMap<String, tissdb_dialect::graph::PropertyGraph>,
    next_id: u32,
    next_index_id: u32,
}

impl State {
    /// Recomputes `referenced_by` after a collection was created or dropped.
    fn index_references(&mut self) {
        let mut map: HashMap<String, Vec<(String, ForeignKey)>> = HashMap::new();
        for c in self.by_name.values() {
            for fk in &c.foreign_keys {
                map.entry(fk.table.clone())
                    .or_default()
                    .push((c.name.clone(), fk.clone()));
            }
        }
        self.referenced_by = map;
    }
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
    conflicts: crate::txn::Conflicts,
    /// Counts changes to `state`; see [`Catalog::version`].
    version: AtomicU64,
}

/// Write access to the catalog's state that counts one change when it ends, while the
/// lock is still held: whoever read the version before reading the state sees a newer
/// version afterwards if the state changed in between.
struct StateWrite<'a> {
    guard: RwLockWriteGuard<'a, State>,
    version: &'a AtomicU64,
}

impl std::ops::Deref for StateWrite<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateWrite<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateWrite<'_> {
    fn drop(&mut self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

fn catalog_key(name: &str) -> Vec<u8> {
    keys::encode(CATALOG_COLLECTION, name)
}

impl Catalog {
    /// Loads the catalog from storage.
    pub fn load(storage: Arc<Storage>) -> Result<Catalog> {
        let mut by_name = BTreeMap::new();
        let mut graph_defs = BTreeMap::new();
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
            if let Some(graph) = name.strip_prefix(graphs::GRAPH_PREFIX) {
                graph_defs.insert(graph.to_string(), graphs::decode(graph, &doc)?);
                continue;
            }
            if name == NEXT_INDEX_ID_KEY {
                next_index_id = u32::try_from(int("value")?)
                    .map_err(|_| Error::Corruption("next index id out of range".into()))?;
                continue;
            }
            let collection = schema::decode_entry(name, &doc)?;
            by_name.insert(name.to_string(), Arc::new(collection));
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
        let mut state = State {
            by_name,
            referenced_by: HashMap::new(),
            graphs: graph_defs,
            next_id,
            next_index_id,
        };
        state.index_references();
        Ok(Catalog {
            storage,
            state: RwLock::new(state),
            live_ids: Arc::new(RwLock::new(live)),
            index_change: RwLock::new(()),
            ddl: Mutex::new(()),
            unique_locks: (0..UNIQUE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            rebuild: Mutex::new(rebuild),
            conflicts: crate::txn::Conflicts::default(),
            version: AtomicU64::new(0),
        })
    }

    /// A number that grows whenever collections, their columns, indexes, foreign keys or
    /// graphs change: something bound against the catalog at one version is still
    /// valid while the version stays the same (read it before binding).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Write access to the state, counted as a change (see [`StateWrite`]).
    fn state_mut(&self) -> StateWrite<'_> {
        StateWrite {
            guard: self.state.write(),
            version: &self.version,
        }
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

    /// The collection named `name`, or 42P01 (shared: a change to the catalog makes a
    /// new one).
    pub fn get(&self, name: &str) -> Result<Arc<Collection>> {
        self.state
            .read()
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| undefined_collection(name))
    }

    /// The id of the collection named `name`, or 42P01: [`Catalog::get`] without a copy
    /// of the collection, for callers that need only its keys.
    pub fn id(&self, name: &str) -> Result<u32> {
        self.state
            .read()
            .by_name
            .get(name)
            .map(|c| c.id)
            .ok_or_else(|| undefined_collection(name))
    }

    /// The number of documents in collection `id` (exact: kept with every write).
    pub fn document_count(&self, id: u32) -> u64 {
        self.storage.document_count(id)
    }

    /// Bytes on disk of collection `id`'s flushed documents (compressed blocks).
    pub fn stored_bytes(&self, id: u32) -> u64 {
        self.storage.collection_bytes(id)
    }

    /// What the WAL has written since the store was opened, and when that was (in
    /// microseconds since 1970).
    pub fn wal_stats(&self) -> (crate::storage::wal::WalStats, i64) {
        (self.storage.wal_stats(), self.storage.opened_at())
    }

    /// All collections, by name.
    pub fn list(&self) -> Vec<Collection> {
        self.state
            .read()
            .by_name
            .values()
            .map(|c| (**c).clone())
            .collect()
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
            key_form: KeyForm::Text,
            format: None,
            observed: Vec::new(),
            nested: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
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
        // The collections it references must still exist (a DROP may have run since the
        // statement checked them; drops take `ddl` too).
        for fk in &template.foreign_keys {
            if fk.table != name && !self.state.read().by_name.contains_key(&fk.table) {
                return Err(Error::not_found(
                    SqlState::UNDEFINED_TABLE,
                    format!("relation \"{}\" does not exist", fk.table),
                ));
            }
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
        let mut st = self.state_mut();
        st.next_id = next;
        st.by_name
            .insert(name.to_string(), Arc::new(collection.clone()));
        if !collection.foreign_keys.is_empty() {
            st.index_references();
        }
        self.live_ids.write().insert(id);
        Ok(collection)
    }

    /// The foreign keys that reference collection `name`: (referencing collection, key).
    pub fn referencing(&self, name: &str) -> Vec<(Collection, ForeignKey)> {
        let st = self.state.read();
        st.referenced_by
            .get(name)
            .map(|list| {
                list.iter()
                    .filter_map(|(child, fk)| {
                        st.by_name.get(child).map(|c| ((**c).clone(), fk.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops a collection; 42P01 if it does not exist. Its documents become unreachable
    /// at once and leave the disk with the next compaction. Foreign keys of other tables
    /// that reference it make it fail with 2BP01, unless `cascade`, which drops them (in
    /// the same atomic write); returns the dropped ones as (constraint, table).
    pub fn drop_collection(&self, name: &str, cascade: bool) -> Result<Vec<(String, String)>> {
        let _ic = self.index_change.write();
        let _ddl = self.ddl.lock();
        let collection = self.get(name)?;
        let dependents: Vec<(String, ForeignKey)> = self
            .state
            .read()
            .referenced_by
            .get(name)
            .map(|list| list.iter().filter(|(c, _)| c != name).cloned().collect())
            .unwrap_or_default();
        if !dependents.is_empty() && !cascade {
            let lines: Vec<String> = dependents
                .iter()
                .map(|(c, fk)| {
                    format!(
                        "constraint {} on table {c} depends on table {name}",
                        fk.name
                    )
                })
                .collect();
            return Err(Error::violation(
                SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot drop table {name} because other objects depend on it"),
                lines.join("\n"),
            )
            .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
        }
        let mut ops = vec![Op::Delete {
            key: catalog_key(name),
        }];
        let mut changed: Vec<Collection> = Vec::new();
        for (child, _) in &dependents {
            if changed.iter().any(|c| c.name == *child) {
                continue;
            }
            let mut c = Arc::unwrap_or_clone(self.get(child)?);
            c.foreign_keys.retain(|fk| fk.table != name);
            ops.push(Op::Put {
                key: catalog_key(child),
                doc: schema::encode_entry(&c),
            });
            changed.push(c);
        }
        self.storage.write(ops)?;
        {
            let mut st = self.state_mut();
            st.by_name.remove(name);
            for c in changed {
                if let Some(entry) = st.by_name.get_mut(&c.name) {
                    Arc::make_mut(entry).foreign_keys = c.foreign_keys;
                }
            }
            st.index_references();
        }
        self.live_ids.write().remove(&collection.id);
        for index in &collection.indexes {
            self.storage.indexes().remove(index.id)?;
        }
        Ok(dependents.into_iter().map(|(c, fk)| (fk.name, c)).collect())
    }
}

/// 42P01 for a collection that does not exist.
fn undefined_collection(name: &str) -> Error {
    Error::not_found(
        SqlState::UNDEFINED_TABLE,
        format!("collection \"{name}\" does not exist"),
    )
}
