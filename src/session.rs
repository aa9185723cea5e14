//! `Session`: the one engine API the front-ends call. It holds no protocol state; the
//! REST front-end makes one per request, the wire front-end one per connection.
//!
//! Document operations take and return bodies as [`Object`]s without the `id` field:
//! the id is the document's key, passed beside the body.

use std::ops::Bound;
use std::sync::Arc;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use crate::catalog::{self, Collection};
use crate::database::Database;
use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::query::{Column, Outcome, SqlType};
use crate::storage::{Op, keys};

/// Where the session is with respect to transactions (the ReadyForQuery status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Not in a transaction block.
    Idle,
    /// Inside `BEGIN ... COMMIT`.
    InBlock,
    /// Inside a block where a statement failed; only ROLLBACK is accepted.
    Failed,
}

/// A statement parsed and bound, ready to run with parameters: what the extended query
/// protocol's Parse and Describe produce.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The statement text.
    pub sql: String,
    /// The parsed statement; None for an empty query.
    pub statement: Option<crate::query::statement::Statement>,
    /// The type of each `$n` parameter, inferred from context (as many as the client
    /// declared, or as the statement references, whichever is more).
    pub param_types: Vec<SqlType>,
    /// The highest `$n` the statement references.
    pub param_refs: usize,
    /// The result columns; empty for statements that return no rows.
    pub columns: Vec<Column>,
    /// True when running the statement writes nothing and never waits for the disk to
    /// sync (SELECT, SHOW, EXPLAIN): front-ends may run it without a thread hand-off.
    pub read_only: bool,
}

/// One page of a collection listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// (id, body) pairs in id order.
    pub documents: Vec<(String, Object)>,
    /// The id to pass as `after` for the next page, if there may be one.
    pub next_after: Option<String>,
}

/// Whether a replace created the document or overwrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replaced {
    Created,
    Updated,
}

/// A session on a database. See the module doc.
pub struct Session {
    db: Arc<Database>,
    /// Session settings (`SET name = value`), on top of the defaults.
    pub(crate) settings: BTreeMap<String, String>,
    pub(crate) transaction: TransactionStatus,
    /// Set (from any thread) to cancel the running statement.
    pub(crate) cancel: Arc<AtomicBool>,
}

/// Takes the `id` field out of a client document: a string, or an integer written as
/// text; absent means "generate one".
fn take_id(doc: &mut Object) -> Result<Option<String>> {
    match doc.shift_remove("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Int(i)) => Ok(Some(i.to_string())),
        Some(other) => Err(Error::invalid(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("document id must be a string, not {}", other.type_name()),
        )),
    }
}

impl Session {
    pub fn new(db: Arc<Database>) -> Session {
        Session {
            db,
            settings: BTreeMap::new(),
            transaction: TransactionStatus::Idle,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that cancels the statement running in this session when set (from another
    /// thread); the statement fails with 57014. Each statement clears it when it starts.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Marks an open transaction block as failed (for errors a front-end detects itself,
    /// such as an undecodable parameter): later statements fail with 25P02 until ROLLBACK.
    pub fn fail_transaction(&mut self) {
        if self.transaction == TransactionStatus::InBlock {
            self.transaction = TransactionStatus::Failed;
        }
    }

    /// Sets a session setting, as `SET name = value` does (front-ends use it for the
    /// startup parameters a client sends).
    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.settings
            .insert(name.to_ascii_lowercase(), value.to_string());
    }

    /// Runs every statement of `sql` in order (the simple query protocol), stopping after
    /// the first that fails. An empty string gives an empty list.
    pub fn execute_batch(&mut self, sql: &str) -> Vec<Result<Outcome>> {
        crate::query::statement::execute_batch(self, sql)
    }

    /// Parses and binds one statement without running it: parameter types and result
    /// columns are known afterwards. `param_hints` are types the client declared.
    pub fn prepare(&mut self, sql: &str, param_hints: &[Option<SqlType>]) -> Result<Prepared> {
        let prepared = crate::query::statement::prepare(self, sql, param_hints);
        if prepared.is_err() {
            self.fail_transaction();
        }
        prepared
    }

    /// Runs a prepared statement with parameter values (already of `param_types`).
    pub fn execute(&mut self, prepared: &Prepared, params: &[Value]) -> Result<Outcome> {
        crate::query::statement::execute(self, prepared, params)
    }

    /// The transaction status, as ReadyForQuery reports it.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.transaction
    }

    /// A session setting's current value (`SHOW name`).
    pub fn setting(&self, name: &str) -> Option<String> {
        crate::query::statement::show_setting(self, name)
    }

    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    fn collection(&self, name: &str) -> Result<Collection> {
        self.db.catalog().get(name)
    }

    /// Creates a schemaless collection (42P07 if it exists).
    pub fn create_collection(&self, name: &str) -> Result<Collection> {
        self.db.catalog().create(name)
    }

    /// Drops a collection and all its documents (42P01 if absent).
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        self.db.catalog().drop_collection(name)
    }

    /// All collections.
    pub fn collections(&self) -> Vec<Collection> {
        self.db.catalog().list()
    }

    /// Inserts a new document. Its id is the body's `id` field or a new UUID v4; 23505 if
    /// a document with that id exists. Returns the id and the stored body.
    pub fn insert_document(&self, collection: &str, mut doc: Object) -> Result<(String, Object)> {
        let c = self.collection(collection)?;
        let id = match take_id(&mut doc)? {
            Some(id) => id,
            None => uuid::Uuid::new_v4().to_string(),
        };
        catalog::validate_document_id(&id)?;
        let key = keys::encode(c.id, &id);
        let _guard = self.db.lock_key(&key);
        if self.db.storage().get(&key)?.is_some() {
            return Err(Error::conflict(
                SqlState::UNIQUE_VIOLATION,
                format!("a document with id \"{id}\" already exists in \"{collection}\""),
            ));
        }
        self.db.catalog().write_observing(
            collection,
            &[&doc],
            vec![Op::Put {
                key,
                doc: doc.clone(),
            }],
        )?;
        Ok((id, doc))
    }

    /// The document `id`, or None.
    pub fn get_document(&self, collection: &str, id: &str) -> Result<Option<Object>> {
        let c = self.collection(collection)?;
        catalog::validate_document_id(id)?;
        self.db.storage().get(&keys::encode(c.id, id))
    }

    /// Stores `doc` as document `id`, replacing any previous version. A body `id` field,
    /// if present, must equal `id`.
    pub fn replace_document(
        &self,
        collection: &str,
        id: &str,
        mut doc: Object,
    ) -> Result<Replaced> {
        let c = self.collection(collection)?;
        catalog::validate_document_id(id)?;
        if let Some(body_id) = take_id(&mut doc)?
            && body_id != id
        {
            return Err(Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("the body's id \"{body_id}\" differs from the path's id \"{id}\""),
            ));
        }
        let key = keys::encode(c.id, id);
        let _guard = self.db.lock_key(&key);
        let existed = self.db.storage().get(&key)?.is_some();
        self.db.catalog().write_observing(
            collection,
            &[&doc],
            vec![Op::Put {
                key,
                doc: doc.clone(),
            }],
        )?;
        Ok(if existed {
            Replaced::Updated
        } else {
            Replaced::Created
        })
    }

    /// Deletes document `id`; 02000 (not found) if there is none.
    pub fn delete_document(&self, collection: &str, id: &str) -> Result<()> {
        let c = self.collection(collection)?;
        catalog::validate_document_id(id)?;
        let key = keys::encode(c.id, id);
        let _guard = self.db.lock_key(&key);
        if self.db.storage().get(&key)?.is_none() {
            return Err(Error::not_found(
                SqlState::NO_DATA,
                format!("no document with id \"{id}\" in \"{collection}\""),
            ));
        }
        self.db.storage().write(vec![Op::Delete { key }])?;
        Ok(())
    }

    /// Up to `limit` documents with ids after `after`, in id order.
    pub fn list_documents(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        let c = self.collection(collection)?;
        let max = self.db.config().max_page_size;
        if limit == 0 || limit > max {
            return Err(Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("limit must be between 1 and {max}"),
            ));
        }
        let start = match after {
            Some(a) => Bound::Excluded(keys::encode(c.id, a)),
            None => Bound::Included(keys::collection_start(c.id)),
        };
        let end = match keys::collection_end(c.id) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        let mut documents = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for item in self.db.storage().scan(start, end) {
            let (key, doc) = item?;
            if documents.len() == limit {
                more = true;
                break;
            }
            let (_, id) = keys::decode(&key)
                .ok_or_else(|| Error::Corruption("malformed document key".into()))?;
            documents.push((id.to_string(), doc));
        }
        let next_after = if more {
            documents.last().map(|(id, _)| id.clone())
        } else {
            None
        };
        Ok(Page {
            documents,
            next_after,
        })
    }

    /// Runs a full compaction now and returns when it is done.
    pub fn compact(&self) -> Result<()> {
        self.db.storage().compact_all()
    }
}
