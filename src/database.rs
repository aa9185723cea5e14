//! `Database`: one open TissDB data directory — storage, catalog and configuration —
//! shared by every session. It holds an exclusive lock on the directory so that two
//! servers never write the same files.

use std::fs::{File, OpenOptions};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use std::ops::Bound;

use crate::catalog::{Catalog, IndexDef, value_in};
use crate::config::Config;
use crate::doc::{Limits, Value};
use crate::error::{Error, Result};
use crate::storage::keys;
use crate::storage::shape::Columns;
use crate::storage::{NearBlocks, Storage, StorageOptions};

/// Number of stripes of the per-key lock that makes check-then-write atomic.
const KEY_LOCK_STRIPES: usize = 256;

/// An open database. See the module doc.
pub struct Database {
    config: Config,
    storage: Arc<Storage>,
    catalog: Catalog,
    key_locks: Vec<Mutex<()>>,
    /// The last value each serial column handed out, by (collection id, column): see
    /// [`Database::next_serial`].
    serials: Mutex<std::collections::HashMap<(u32, String), i64>>,
    /// Simple-protocol statements run through a prepared template (see
    /// [`crate::query::auto_param`]).
    template_runs: std::sync::atomic::AtomicU64,
    _lock_file: File,
}

impl Database {
    /// Simple-protocol statements run through a prepared template since the server
    /// started (see [`crate::query::auto_param`]).
    pub fn template_runs(&self) -> u64 {
        self.template_runs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_template_run(&self) {
        self.template_runs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Opens (or creates) the database in `config.data_dir`, recovering it.
    pub fn open(config: Config) -> Result<Arc<Database>> {
        config.validate()?;
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join("LOCK");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("opening {}", lock_path.display()), e))?;
        lock_file.try_lock().map_err(|_| {
            Error::Config(format!(
                "{} is in use by another TissDB process",
                dir.display()
            ))
        })?;
        let storage = Arc::new(Storage::open(dir, StorageOptions::from(&config))?);
        let catalog = Catalog::load(storage.clone())?;
        storage.set_key_filter(catalog.key_filter());
        storage.start_background()?;
        let rebuild = catalog.indexes_to_rebuild();
        let report = storage.recovery_report();
        tracing::info!(
            segments = report.segments,
            replayed = report.replayed_records,
            collections = catalog.list().len(),
            "opened {}",
            dir.display()
        );
        let db = Database {
            config,
            storage,
            catalog,
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            serials: Mutex::new(std::collections::HashMap::new()),
            template_runs: Default::default(),
            _lock_file: lock_file,
        };
        for (collection, def) in rebuild {
            tracing::warn!(index = %def.name, "rebuilding an index from the data");
            db.build_index(&collection, &def)?;
        }
        Ok(Arc::new(db))
    }

    /// The next value of a serial (or identity) column: one above the last it handed
    /// out in this process, which starts above the largest value the column holds. Values
    /// are never handed out twice while the server runs; after a restart the count
    /// resumes above what the table holds, so a value whose row is gone (deleted, or
    /// rolled back) may come again, where a PostgreSQL sequence would skip it.
    pub fn next_serial(
        &self,
        collection: &crate::catalog::Collection,
        column: &str,
    ) -> Result<i64> {
        let mut serials = self.serials.lock();
        let key = (collection.id, column.to_string());
        let last = match serials.get(&key) {
            Some(last) => *last,
            None => {
                let start = Bound::Included(keys::collection_start(collection.id));
                let end =
                    keys::collection_end(collection.id).map_or(Bound::Unbounded, Bound::Excluded);
                let mut max = 0i64;
                let scan = self.storage.snapshot().scan_shaped(
                    start,
                    end,
                    Columns::new(vec![Some(column.to_string())]),
                );
                for item in scan {
                    if let Some(Value::Int(v)) = item?.1.first() {
                        max = max.max(*v);
                    }
                }
                max
            }
        };
        let next = last.checked_add(1).ok_or_else(|| {
            Error::invalid(
                crate::error::SqlState("2200H"),
                format!(
                    "the sequence of column \"{column}\" of \"{}\" reached its maximum",
                    collection.name
                ),
            )
        })?;
        serials.insert(key, next);
        Ok(next)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Limits for decoding client documents.
    pub fn limits(&self) -> Limits {
        Limits {
            max_depth: self.config.max_depth,
        }
    }

    /// Locks the stripe of `key`, serializing read-check-write sequences on it.
    pub fn lock_key(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        let stripe = (xxhash_rust::xxh3::xxh3_64(key) % KEY_LOCK_STRIPES as u64) as usize;
        self.key_locks[stripe].lock()
    }

    /// Locks the stripes of several keys, in stripe order (so two callers never deadlock).
    pub fn lock_keys<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys
            .into_iter()
            .map(|k| (xxhash_rust::xxh3::xxh3_64(k) % KEY_LOCK_STRIPES as u64) as usize)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|s| self.key_locks[s].lock())
            .collect()
    }

    /// Creates an index on `collection` and fills it from the documents while reads and
    /// writes go on: the index is registered first (so every later write maintains it),
    /// then each document is re-read under its key lock and its entry added, in batches;
    /// progress goes to the log every `index_build_progress` documents. On any failure
    /// (23505 for duplicates under a unique index) nothing of the index is left.
    pub fn create_index(
        &self,
        collection: &str,
        name: &str,
        fields: Vec<Vec<String>>,
        unique: bool,
    ) -> Result<IndexDef> {
        let def = self.catalog.begin_index(collection, name, fields, unique)?;
        match self.build_index(collection, &def) {
            Ok(()) => self.catalog.finish_index(collection, def.id),
            Err(e) => {
                if let Err(cleanup) = self.catalog.abort_index(collection, def.id) {
                    tracing::error!(error = %cleanup, index = %def.name, "removing a failed index");
                }
                Err(e)
            }
        }
    }

    fn build_index(&self, collection: &str, def: &IndexDef) -> Result<()> {
        const BATCH: usize = 512;
        let c = self.catalog.get(collection)?;
        let start = Bound::Included(keys::collection_start(c.id));
        let end = keys::collection_end(c.id).map_or(Bound::Unbounded, Bound::Excluded);
        let mut fields: Vec<String> = Vec::new();
        for path in &def.fields {
            if let Some(top) = path.first()
                && !fields.contains(top)
            {
                fields.push(top.clone());
            }
        }
        let mut shape = Columns::new(fields.iter().cloned().map(Some).collect());
        // One pass: the scan hands out each document's indexed fields as its snapshot
        // has them. Under a batch's key locks no write to its documents is under way
        // (writers of a document hold its lock), so if none was made to the collection
        // since the snapshot, the scanned values are the current ones; otherwise each
        // document is read again there. Neither the scan nor the reads put the table's
        // blocks in the block cache: the build reads all of it once, and the cache keeps
        // what the other work reads.
        let snapshot = self.storage.snapshot();
        let since = snapshot.seq();
        let mut scan = snapshot.scan_shaped_passing(start, end, shape.clone());
        let mut near = NearBlocks::passing();
        let mut done: u64 = 0;
        let progress = self.config.index_build_progress.max(1);
        let began = std::time::Instant::now();
        loop {
            let mut batch: Vec<(Vec<u8>, Vec<Value>)> = Vec::with_capacity(BATCH);
            for item in scan.by_ref().take(BATCH) {
                batch.push(item?);
            }
            if batch.is_empty() {
                break;
            }
            let _locks = self.lock_keys(batch.iter().map(|(key, _)| key.as_slice()));
            let written = self.catalog.conflicts().last_write(c.id) > since;
            let mut changes = Vec::with_capacity(batch.len());
            for (key, scanned) in &batch {
                let current;
                let values = match written {
                    false => scanned,
                    true => match self.storage.get_shaped_near(key, &mut shape, &mut near)? {
                        Some(values) => {
                            current = values;
                            &current
                        }
                        None => continue,
                    },
                };
                // Each index field's value, from its top-level field's.
                let indexed: Vec<Value> = def
                    .fields
                    .iter()
                    .map(|path| {
                        let (top, rest) = path.split_first()?;
                        let at = fields.iter().position(|f| f == top)?;
                        value_in(values.get(at)?, rest).cloned()
                    })
                    .map(|v| v.unwrap_or(Value::Null))
                    .collect();
                let (_, id) = keys::decode(key)
                    .ok_or_else(|| Error::Corruption("malformed document key".into()))?;
                changes.push((def.entry_of_values(id, &indexed)?, indexed));
            }
            self.catalog.add_built_entries(def, changes)?;
            let before = done;
            done += batch.len() as u64;
            if done / progress != before / progress {
                tracing::info!(
                    index = %def.name,
                    documents = done,
                    seconds = began.elapsed().as_secs_f64(),
                    "building index"
                );
            }
        }
        self.catalog.seal_built_index(def.id)?;
        tracing::info!(
            index = %def.name,
            documents = done,
            seconds = began.elapsed().as_secs_f64(),
            "index built"
        );
        Ok(())
    }

    /// Flushes and stops background work; the database should not be used afterwards.
    pub fn close(&self) -> Result<()> {
        self.storage.close()
    }
}
