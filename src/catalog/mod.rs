//! The catalog: which collections exist, under which ids.
//!
//! Collections are stored in the catalog's own key range (collection 0) of the same LSM
//! store, so they are written through the WAL, recovered with the data and never out of
//! step with it. Ids are never reused: a dropped collection's id stays dead, and flush
//! and compaction purge its keys (see [`Catalog::key_filter`]).

mod names;

pub use names::{validate_collection_name, validate_document_id};

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
            let id = u32::try_from(int("collection_id")?)
                .map_err(|_| Error::Corruption("collection id out of range".into()))?;
            let created_at = match doc.get("created_at") {
                Some(Value::DateTime(t)) => *t,
                _ => 0,
            };
            by_name.insert(
                name.to_string(),
                Collection {
                    id,
                    name: name.to_string(),
                    created_at,
                },
            );
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

    /// Creates a collection; 42P07 if it exists.
    pub fn create(&self, name: &str) -> Result<Collection> {
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
        let mut entry = Object::new();
        entry.insert("collection_id".into(), Value::Int(i64::from(id)));
        entry.insert("created_at".into(), Value::DateTime(created_at));
        let mut counter = Object::new();
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
        let collection = Collection {
            id,
            name: name.to_string(),
            created_at,
        };
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
}
