//! The catalog: which collections exist, under which ids.
//!
//! Collections are stored in the catalog's own key range (collection 0) of the same LSM
//! store, so they are written through the WAL, recovered with the data and never out of
//! step with it. Ids are never reused: a dropped collection's id stays dead, and flush
//! and compaction purge its keys (see [`Catalog::key_filter`]).

mod names;
mod schema;

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
}

struct State {
    by_name: BTreeMap<String, Collection>,
    next_id: u32,
}

/// The collection catalog. See the module doc.
pub struct Catalog {
    storage: Arc<Storage>,
    state: RwLock<State>,
    live_ids: Arc<RwLock<HashSet<u32>>>,
    ddl: Mutex<()>,
}

fn catalog_key(name: &str) -> Vec<u8> {
    keys::encode(CATALOG_COLLECTION, name)
}

impl Catalog {
    /// Loads the catalog from storage.
    pub fn load(storage: Arc<Storage>) -> Result<Catalog> {
        let mut by_name = BTreeMap::new();
        let mut next_id = 1u32;
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
            let collection = schema::decode_entry(name, &doc)?;
            by_name.insert(name.to_string(), collection);
        }
        let live: HashSet<u32> = by_name.values().map(|c| c.id).collect();
        Ok(Catalog {
            storage,
            state: RwLock::new(State { by_name, next_id }),
            live_ids: Arc::new(RwLock::new(live)),
            ddl: Mutex::new(()),
        })
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
        let _ddl = self.ddl.lock();
        let collection = self.get(name)?;
        self.storage.write(vec![Op::Delete {
            key: catalog_key(name),
        }])?;
        self.state.write().by_name.remove(name);
        self.live_ids.write().remove(&collection.id);
        Ok(())
    }

    /// Writes `ops` together with the schema changes the documents `docs` bring to the
    /// collection `name` (new top-level fields, widened types), atomically, and keeps
    /// the in-memory schema in step.
    pub fn write_observing(&self, name: &str, docs: &[&Object], mut ops: Vec<Op>) -> Result<()> {
        // The common case, no new field: decided under the read lock, without copying
        // the collection's description on every write.
        let changes = {
            let st = self.state.read();
            let c = st.by_name.get(name).ok_or_else(|| {
                Error::not_found(
                    SqlState::UNDEFINED_TABLE,
                    format!("collection \"{name}\" does not exist"),
                )
            })?;
            c.kind == Kind::Schemaless && schema::observe(&c.observed, docs).is_some()
        };
        if !changes {
            self.storage.write(ops)?;
            return Ok(());
        }
        // The schema changes: serialize with other schema changes and recompute.
        let _ddl = self.ddl.lock();
        let mut current = self.get(name)?;
        if let Some(observed) = schema::observe(&current.observed, docs) {
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
}
