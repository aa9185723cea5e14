//! `Session`: the one engine API the front-ends call. It holds no protocol state; the
//! REST front-end makes one per request, the wire front-end one per connection.
//!
//! Document operations take and return bodies as [`Object`]s without the `id` field:
//! the id is the document's key, passed beside the body.

use std::ops::Bound;
use std::sync::Arc;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use crate::catalog::{self, Catalog, Collection, DocWrite, IndexDef};
use crate::database::Database;
use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::query::sink::RowSink;
use crate::query::{Column, Outcome, SqlType, references};
use crate::storage::keys;
use crate::storage::shape::{Presence, Shape};
use crate::txn::{PendingWrite, ReadView, Transaction};

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
    /// The result columns; empty for statements that return no rows. (Shared: each
    /// execution's answer is encoded by them.)
    pub columns: Arc<Vec<Column>>,
    /// True when running the statement writes nothing and never waits for the disk to
    /// sync (SELECT, SHOW, EXPLAIN): front-ends may run it without a thread hand-off.
    pub read_only: bool,
    /// True for a read whose plan (when prepared) touches a few documents: key lookups
    /// and index lookups estimated at no more than a few rows. Front-ends may run such
    /// statements without any thread hand-off.
    pub point: bool,
    /// True for an UPDATE or DELETE whose plan, as prepared, reads a few documents by
    /// key; worked out for simple-protocol templates only (see
    /// [`crate::query::auto_param::usable`]), false elsewhere.
    pub point_write: bool,
    /// The statement's optimized plan, kept between executions (SELECTs only; see
    /// [`crate::query::plan_cache`]).
    pub plan_cache: std::sync::Arc<crate::query::plan_cache::PlanCache>,
}

/// A notice for the client (PostgreSQL's NoticeResponse), such as the WARNING for a
/// COMMIT outside a transaction block.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// `WARNING`, `NOTICE`, ...
    pub severity: &'static str,
    pub code: SqlState,
    pub message: String,
    /// PostgreSQL's DETAIL line, if any.
    pub detail: Option<String>,
    /// In a batch of statements, the number of results produced before it (it goes
    /// before the result of the statement that raised it).
    pub before_result: usize,
}

/// What a savepoint statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavepointAction {
    Set,
    RollbackTo,
    Release,
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

/// Why an import ([`Session::import_documents`]) stored nothing: the error, and the
/// 0-based position in the input of the document it is about, when it is about one.
#[derive(Debug)]
pub struct ImportError {
    pub row: Option<usize>,
    pub error: Error,
}

impl From<Error> for ImportError {
    fn from(error: Error) -> Self {
        ImportError { row: None, error }
    }
}

/// A session on a database. See the module doc.
pub struct Session {
    db: Arc<Database>,
    /// Session settings (`SET name = value`), on top of the defaults.
    pub(crate) settings: BTreeMap<String, String>,
    pub(crate) transaction: TransactionStatus,
    /// The open transaction (while `transaction` is `InBlock`).
    pub(crate) txn: Option<Transaction>,
    /// Notices raised since the front-end last took them.
    notices: Vec<Notice>,
    /// Results produced so far by the running batch (see [`Notice::before_result`]).
    pub(crate) results_so_far: usize,
    /// Set (from any thread) to cancel the running statement.
    pub(crate) cancel: Arc<AtomicBool>,
    /// A COPY to or from the client in progress (see [`crate::query::copy`]).
    pub(crate) copy: crate::query::copy::ClientCopy,
    /// Open cursors (`DECLARE ... CURSOR`).
    pub(crate) cursors: crate::query::cursor::Cursors,
    /// Statements prepared by name in SQL (`PREPARE`).
    pub(crate) named: crate::query::named::NamedStatements,
    /// Statements prepared lately, for the next Parse of the same text (see
    /// [`Session::prepare_kept`]).
    kept: Vec<KeptStatement>,
    /// Templates of simple-protocol statements that did not prepare (see
    /// [`crate::query::auto_param`]), with the catalog version they failed at, newest
    /// first: their statements run as written until the catalog changes.
    refused_templates: Vec<(String, u64)>,
    /// Hashes of templates met once, not yet prepared.
    seen_templates: std::collections::HashSet<u64>,
    /// Whether the rows of this session's queries may come with json columns encoded
    /// (see [`Session::set_json_encoded_results`]).
    pub(crate) json_encoded_results: bool,
    /// Where the running query's answer goes as it is made (see
    /// [`Session::execute_into`]).
    row_sink: std::sync::Mutex<Option<Box<dyn RowSink>>>,
}

/// Templates a session remembers as refused.
const REFUSED_TEMPLATES: usize = 32;
/// Templates a session remembers as met once; past this it starts over.
const SEEN_TEMPLATES: usize = 1024;

/// Statements a session keeps for the next Parse of the same text.
pub const KEPT_STATEMENTS: usize = 32;
/// Longest statement text kept.
pub const KEPT_STATEMENT_TEXT: usize = 8192;

/// A statement [`Session::prepare_kept`] prepared, and what it was prepared under.
struct KeptStatement {
    sql: String,
    hints: Vec<Option<SqlType>>,
    catalog_version: u64,
    settings: BTreeMap<String, String>,
    prepared: Arc<Prepared>,
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

/// 22023: a body's id that is not the one the request's path names.
fn id_mismatch(body_id: &str, path_id: &str) -> Error {
    Error::invalid(
        SqlState::INVALID_PARAMETER_VALUE,
        format!("the body's id \"{body_id}\" differs from the path's id \"{path_id}\""),
    )
}

impl Session {
    pub fn new(db: Arc<Database>) -> Session {
        Session {
            db,
            settings: BTreeMap::new(),
            transaction: TransactionStatus::Idle,
            txn: None,
            notices: Vec::new(),
            results_so_far: 0,
            cancel: Arc::new(AtomicBool::new(false)),
            copy: Default::default(),
            cursors: Default::default(),
            named: Default::default(),
            kept: Vec::new(),
            refused_templates: Vec::new(),
            seen_templates: Default::default(),
            json_encoded_results: false,
            row_sink: std::sync::Mutex::new(None),
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

    /// [`Session::prepare`] for drivers that parse every statement they run (the unnamed
    /// statement of node-postgres, pgjdbc and psycopg below their prepare thresholds,
    /// `pgbench -M extended`): the statement this session last prepared from the same
    /// text and parameter hints is handed out again, with the plan its executions keep,
    /// while the catalog and the session settings are as they were then. Not inside a
    /// transaction that wrote to a schemaless collection (its pending writes may add
    /// columns); the [`KEPT_STATEMENTS`] most recently used texts of up to
    /// [`KEPT_STATEMENT_TEXT`] bytes are kept.
    pub fn prepare_kept(
        &mut self,
        sql: &str,
        param_hints: &[Option<SqlType>],
    ) -> Result<Arc<Prepared>> {
        if let Some(kept) = self.kept_prepared(sql, param_hints) {
            return Ok(kept);
        }
        let keep = self.keeps_statements() && sql.len() <= KEPT_STATEMENT_TEXT;
        // The version before binding: a change during it makes the entry stale at once.
        let catalog_version = self.db.catalog().version();
        let prepared = Arc::new(self.prepare(sql, param_hints)?);
        if keep && prepared.statement.is_some() {
            self.keep(sql, param_hints, catalog_version, &prepared);
        }
        Ok(prepared)
    }

    fn keep(
        &mut self,
        sql: &str,
        param_hints: &[Option<SqlType>],
        catalog_version: u64,
        prepared: &Arc<Prepared>,
    ) {
        if self.kept.len() >= KEPT_STATEMENTS {
            self.kept.pop();
        }
        self.kept.insert(
            0,
            KeptStatement {
                sql: sql.to_string(),
                hints: param_hints.to_vec(),
                catalog_version,
                settings: self.settings.clone(),
                prepared: prepared.clone(),
            },
        );
    }

    /// Runs a simple-protocol statement through its template (see
    /// [`crate::query::auto_param`]): None when it has none, or the template does not
    /// prepare or may not stand in for it, or a literal does not read as its
    /// parameter's type; the statement then runs as written.
    pub(crate) fn run_template(&mut self, sql: &str) -> Option<Result<crate::query::Outcome>> {
        use crate::query::auto_param;
        if self.transaction == TransactionStatus::Failed || !self.keeps_statements() {
            return None;
        }
        let template = auto_param::template(sql)?;
        let hints: Vec<Option<SqlType>> = template.literals.iter().map(|l| l.hint()).collect();
        let prepared = match self.kept_prepared(&template.text, &hints) {
            Some(p) => p,
            None => {
                let hash = {
                    use std::hash::{BuildHasher, BuildHasherDefault};
                    BuildHasherDefault::<std::hash::DefaultHasher>::default()
                        .hash_one(&template.text)
                };
                if self.seen_templates.len() >= SEEN_TEMPLATES {
                    self.seen_templates.clear();
                }
                if self.seen_templates.insert(hash) {
                    return None;
                }
                let version = self.db.catalog().version();
                if self
                    .refused_templates
                    .iter()
                    .any(|(t, v)| *v == version && *t == template.text)
                {
                    return None;
                }
                match crate::query::statement::prepare(self, &template.text, &hints) {
                    Ok(mut p) => {
                        if let Some(stmt) = p.statement.as_ref().filter(|_| !p.read_only) {
                            p.point_write =
                                crate::query::statement::is_point_modify(self, stmt, &hints);
                        }
                        let p = Arc::new(p);
                        self.keep(&template.text, &hints, version, &p);
                        p
                    }
                    Err(_) => {
                        if self.refused_templates.len() >= REFUSED_TEMPLATES {
                            self.refused_templates.pop();
                        }
                        self.refused_templates.insert(0, (template.text, version));
                        return None;
                    }
                }
            }
        };
        if !auto_param::usable(&prepared) || prepared.param_types.len() != hints.len() {
            return None;
        }
        let params = template
            .literals
            .iter()
            .zip(&prepared.param_types)
            .map(|(l, ty)| l.value(ty))
            .collect::<Option<Vec<Value>>>()?;
        self.db.count_template_run();
        Some(self.execute(&prepared, &params))
    }

    /// The statement [`Session::prepare_kept`] keeps for `sql` and `param_hints`, if it
    /// is still valid (None: prepare it).
    pub fn kept_prepared(
        &mut self,
        sql: &str,
        param_hints: &[Option<SqlType>],
    ) -> Option<Arc<Prepared>> {
        if !self.keeps_statements() {
            return None;
        }
        let at = self
            .kept
            .iter()
            .position(|k| k.sql == sql && k.hints == param_hints)?;
        let k = self.kept.remove(at);
        if k.catalog_version != self.db.catalog().version() || k.settings != self.settings {
            return None;
        }
        let prepared = k.prepared.clone();
        self.kept.insert(0, k);
        Some(prepared)
    }

    /// Whether statements are kept and handed out again now: outside transaction blocks,
    /// and inside one until it writes to a schemaless collection (its statements then
    /// see that collection's fields widened by the pending writes, see
    /// [`crate::txn::Transaction::widen`]).
    fn keeps_statements(&self) -> bool {
        match (&self.txn, self.transaction) {
            (None, TransactionStatus::Idle) => true,
            (Some(t), TransactionStatus::InBlock) => !t.wrote_schemaless(),
            _ => false,
        }
    }

    /// Lets the rows of this session's queries come with json and jsonb columns in
    /// their binary encoding where a query passes stored values on as they are
    /// (`SELECT *`, `SELECT doc`): such columns have [`crate::query::Column::json_encoded`]
    /// set, and the front-end writes their JSON text straight from the encoding
    /// ([`crate::query::types::write_json_encoded`]) without the documents being decoded.
    /// For a front-end that writes every result itself (the wire protocol, REST
    /// `_query`) and decodes such values where it needs them
    /// ([`crate::query::decode_json_encoded`]); off by default.
    pub fn set_json_encoded_results(&mut self, on: bool) {
        self.json_encoded_results = on;
    }

    /// Notes a statement the front-end prepared by name over the wire (Parse): SQL's
    /// `DEALLOCATE` may name it (see [`crate::query::named`]).
    pub fn front_end_prepared(&mut self, name: &str) {
        self.named.front_end_prepared(name);
    }

    /// Notes that the front-end closed its statement `name` (Close).
    pub fn front_end_closed(&mut self, name: &str) {
        self.named.front_end_closed(name);
    }

    /// Statements the front-end prepared that a SQL `DEALLOCATE` dropped since the last
    /// call: the front-end forgets them.
    pub fn take_deallocated(&mut self) -> Vec<String> {
        self.named.take_deallocated()
    }

    /// Runs a prepared statement with parameter values (already of `param_types`).
    pub fn execute(&mut self, prepared: &Prepared, params: &[Value]) -> Result<Outcome> {
        crate::query::statement::execute(self, prepared, params)
    }

    /// [`Session::execute`], the rows of a query's answer handed to `sink` as they are
    /// made when it takes them ([`RowSink::start`]): the outcome then holds no rows.
    /// After an error the sink may hold some of the answer's rows.
    pub fn execute_into<S: RowSink + Default>(
        &mut self,
        prepared: &Prepared,
        params: &[Value],
        sink: &mut S,
    ) -> Result<Outcome> {
        self.with_row_sink(sink, |s| {
            crate::query::statement::execute(s, prepared, params)
        })
        .and_then(|outcome| outcome)
    }

    /// [`Session::execute_batch`], the rows of the answer of a lone query statement
    /// handed to `sink` as [`Session::execute_into`] does (the answers of a batch of
    /// several statements are never a sink's).
    pub fn execute_batch_into<S: RowSink + Default>(
        &mut self,
        sql: &str,
        sink: &mut S,
    ) -> Vec<Result<Outcome>> {
        match self.with_row_sink(sink, |s| crate::query::statement::execute_batch(s, sql)) {
            Ok(results) => results,
            Err(e) => vec![Err(e)],
        }
    }

    /// Runs `run` with `sink` in the session's slot, and puts it back in `sink`.
    fn with_row_sink<S: RowSink + Default, T>(
        &mut self,
        sink: &mut S,
        run: impl FnOnce(&mut Session) -> T,
    ) -> Result<T> {
        self.put_row_sink(Box::new(std::mem::take(sink)));
        let out = run(self);
        let back = self.take_row_sink().map(|s| s as Box<dyn std::any::Any>);
        match back.map(|s| s.downcast::<S>()) {
            Some(Ok(back)) => {
                *sink = *back;
                Ok(out)
            }
            // Only run_plan and execute_batch take the sink out, and they put it back.
            _ => Err(Error::Internal(
                "a row sink lost while its statement ran".into(),
            )),
        }
    }

    /// Tells the row sink in place, if any, the columns the statement about to run was
    /// described with (see [`RowSink::described`]).
    pub(crate) fn describe_to_sink(&self, columns: &Arc<Vec<Column>>) {
        if columns.is_empty() {
            return;
        }
        if let Some(mut sink) = self.take_row_sink() {
            sink.described(columns);
            self.put_row_sink(sink);
        }
    }

    /// The row sink of the running statement, taken out (see [`Session::execute_into`]).
    pub(crate) fn take_row_sink(&self) -> Option<Box<dyn RowSink>> {
        self.row_sink.lock().ok().and_then(|mut s| s.take())
    }

    /// Puts a row sink (back) in place.
    pub(crate) fn put_row_sink(&self, sink: Box<dyn RowSink>) {
        if let Ok(mut slot) = self.row_sink.lock() {
            *slot = Some(sink);
        }
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

    fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        self.db.catalog().get(name)
    }

    /// Takes the notices raised since the last call, to send to the client.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Raises a WARNING notice.
    pub(crate) fn warn(&mut self, code: SqlState, message: impl Into<String>) {
        self.notices.push(Notice {
            severity: "WARNING",
            code,
            message: message.into(),
            detail: None,
            before_result: self.results_so_far,
        });
    }

    /// Raises a NOTICE (severity `NOTICE`, SQLSTATE 00000) with an optional DETAIL line.
    pub(crate) fn notice(&mut self, message: impl Into<String>, detail: Option<String>) {
        self.notices.push(Notice {
            severity: "NOTICE",
            code: SqlState("00000"),
            message: message.into(),
            detail,
            before_result: self.results_so_far,
        });
    }

    // ---- transactions -------------------------------------------------------------

    /// Whether a transaction block is open (failed or not).
    pub fn in_transaction(&self) -> bool {
        self.transaction != TransactionStatus::Idle
    }

    /// Opens a transaction block (`BEGIN`); nothing happens if one is open.
    pub fn begin(&mut self, read_only: bool) {
        if self.transaction == TransactionStatus::Idle {
            self.txn = Some(Transaction::begin(&self.db, read_only));
            self.transaction = TransactionStatus::InBlock;
        } else {
            self.warn(
                SqlState::ACTIVE_SQL_TRANSACTION,
                "there is already a transaction in progress",
            );
        }
    }

    /// Ends the transaction block: commits it (a failed block is rolled back; the
    /// result says which: true if committed). On an error (40001) nothing was written;
    /// either way the session is out of the block.
    pub fn commit(&mut self) -> Result<bool> {
        let status = std::mem::replace(&mut self.transaction, TransactionStatus::Idle);
        let txn = self.txn.take();
        self.cursors.end_transaction();
        match (status, txn) {
            (TransactionStatus::InBlock, Some(t)) => t.commit(&self.db).map(|()| true),
            (TransactionStatus::Failed, _) => Ok(false),
            _ => {
                self.warn(
                    SqlState::NO_ACTIVE_SQL_TRANSACTION,
                    "there is no transaction in progress",
                );
                Ok(true)
            }
        }
    }

    /// Ends the transaction block, forgetting its writes.
    pub fn rollback(&mut self) {
        if self.transaction == TransactionStatus::Idle {
            self.warn(
                SqlState::NO_ACTIVE_SQL_TRANSACTION,
                "there is no transaction in progress",
            );
        }
        self.transaction = TransactionStatus::Idle;
        self.txn = None;
        self.cursors.end_transaction();
    }

    /// `SAVEPOINT`, `ROLLBACK TO SAVEPOINT`, `RELEASE SAVEPOINT` (25P01 outside a block).
    pub fn savepoint(&mut self, action: SavepointAction, name: &str) -> Result<()> {
        let Some(t) = self.txn.as_mut() else {
            let what = match action {
                SavepointAction::Set => "SAVEPOINT",
                SavepointAction::RollbackTo => "ROLLBACK TO SAVEPOINT",
                SavepointAction::Release => "RELEASE SAVEPOINT",
            };
            return Err(Error::invalid(
                SqlState::NO_ACTIVE_SQL_TRANSACTION,
                format!("{what} can only be used in transaction blocks"),
            ));
        };
        match action {
            SavepointAction::Set => {
                t.savepoint(name);
                Ok(())
            }
            SavepointAction::RollbackTo => {
                t.rollback_to(name)?;
                self.transaction = TransactionStatus::InBlock;
                Ok(())
            }
            SavepointAction::Release => t.release(name),
        }
    }

    /// 25P04 (and the block rolled back, now failed) if the open transaction is older
    /// than `max_transaction_duration`.
    pub fn check_transaction_age(&mut self) -> Result<()> {
        let max = std::time::Duration::from_secs(self.db.config().max_transaction_duration);
        if let Some(t) = &self.txn
            && let Err(e) = t.check_duration(max)
        {
            self.txn = None;
            self.transaction = TransactionStatus::Failed;
            return Err(e);
        }
        Ok(())
    }

    /// After a failed statement in a transaction block (which wrote nothing: pending
    /// writes are added whole or not at all), lets the block go on instead of waiting
    /// for ROLLBACK. For front-ends whose clients expect that (REST); the wire protocol
    /// keeps PostgreSQL's failed-block rule.
    pub fn recover_failed_statement(&mut self) {
        if self.transaction == TransactionStatus::Failed && self.txn.is_some() {
            self.transaction = TransactionStatus::InBlock;
        }
    }

    /// Whether the open transaction is READ ONLY.
    pub fn transaction_read_only(&self) -> bool {
        self.txn.as_ref().is_some_and(Transaction::is_read_only)
    }

    /// What a statement reads through: the transaction's view, or a fresh snapshot.
    pub fn read_view(&self) -> ReadView {
        match &self.txn {
            Some(t) => t.view(),
            None => ReadView::autocommit(self.db.storage().snapshot()),
        }
    }

    /// Collections whose indexes statements may not use: inside a transaction, those it
    /// wrote (the indexes lack its pending writes) and those written by others since its
    /// snapshot (the indexes no longer show the snapshot's state). Such queries scan.
    pub fn unindexed_collections(&self) -> Vec<u32> {
        let Some(t) = &self.txn else {
            return Vec::new();
        };
        let mut out = t.written_collections();
        let conflicts = self.db.catalog().conflicts();
        for c in self.db.catalog().list() {
            if conflicts.last_write(c.id) > t.snapshot_seq() && !out.contains(&c.id) {
                out.push(c.id);
            }
        }
        out
    }

    /// The current version of the document under `key` for a read-modify-write: in a
    /// transaction, its view; otherwise the newest stored (the caller holds the key lock).
    pub(crate) fn current(&self, key: &[u8]) -> Result<Option<Object>> {
        match &self.txn {
            Some(t) => t.view().get(key),
            None => self.db.storage().get(key),
        }
    }

    /// Whether a document is stored under `key`, for an insert's duplicate check: in a
    /// transaction, its view (the read is recorded for validation at commit, as
    /// [`Session::current`]'s is); otherwise the newest stored, without decoding it.
    pub(crate) fn exists(&self, key: &[u8]) -> Result<bool> {
        match &self.txn {
            Some(t) => Ok(t.view().get(key)?.is_some()),
            None => Ok(self.db.storage().get_shaped(key, &mut Presence)?.is_some()),
        }
    }

    /// Locks document keys for a read-modify-write outside a transaction (inside one,
    /// commit takes the locks and nothing is needed now).
    pub(crate) fn lock_for_write<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Vec<parking_lot::MutexGuard<'_, ()>> {
        if self.txn.is_some() {
            return Vec::new();
        }
        self.db.lock_keys(keys)
    }

    /// Writes documents of `collection`: at once outside a transaction (the caller holds
    /// the key locks; the write door checks foreign keys), buffered until COMMIT inside
    /// one (with the checks and ON DELETE actions of foreign keys applied in the
    /// transaction's view, see [`crate::query::references`]). A delete of a document
    /// that a CASCADE or SET NULL foreign key references must go through
    /// [`Session::write_with_references`] outside a transaction.
    pub(crate) fn write_documents(
        &self,
        collection: &Collection,
        writes: Vec<DocWrite>,
    ) -> Result<()> {
        let Some(t) = &self.txn else {
            return self.db.catalog().write_documents(&collection.name, writes);
        };
        let groups = references::expand(self, &t.view(), collection, writes, true)?;
        if groups
            .iter()
            .any(|(c, _)| c.kind == crate::catalog::Kind::Schemaless)
        {
            t.note_schemaless_write();
        }
        let pending = groups
            .into_iter()
            .flat_map(|(c, writes)| {
                writes.into_iter().map(move |w| {
                    (
                        w.key,
                        PendingWrite {
                            collection: c.name.clone(),
                            cid: c.id,
                            id: w.id,
                            new: w.new,
                        },
                    )
                })
            })
            .collect();
        t.buffer(pending, self.db.config().max_transaction_size)
    }

    /// Writes what `build` returns — documents of `collection` under `keys`, read again
    /// by `build` under their key locks — together with the writes the ON DELETE actions
    /// of foreign keys bring (CASCADE, SET NULL), each document written under its key
    /// lock: the documents those actions reach are found, their keys locked with the
    /// others (all at once, in order, so nothing deadlocks), and `build` runs again until
    /// nothing new is found. Inside a transaction `build` runs once. Returns the writes
    /// `build` made.
    pub(crate) fn write_with_references(
        &self,
        collection: &Collection,
        keys: Vec<Vec<u8>>,
        mut build: impl FnMut(&Session) -> Result<Vec<DocWrite>>,
    ) -> Result<Vec<DocWrite>> {
        /// Rounds of finding and locking before giving up (concurrent writers keep adding
        /// referencing documents).
        const MAX_ROUNDS: usize = 16;
        if self.txn.is_some() {
            let writes = build(self)?;
            if !writes.is_empty() {
                self.write_documents(collection, writes.clone())?;
            }
            return Ok(writes);
        }
        let catalog = self.db.catalog();
        let mut locked: std::collections::BTreeSet<Vec<u8>> = keys.into_iter().collect();
        for _ in 0..MAX_ROUNDS {
            let _guards = self.db.lock_keys(locked.iter().map(Vec::as_slice));
            let writes = build(self)?;
            if writes.is_empty() {
                return Ok(writes);
            }
            if !references::deletes_write_others(catalog, collection) {
                catalog.write_documents(&collection.name, writes.clone())?;
                return Ok(writes);
            }
            let view = ReadView::autocommit(self.db.storage().snapshot());
            let groups = references::expand(self, &view, collection, writes.clone(), false)?;
            let missing: Vec<Vec<u8>> = groups
                .iter()
                .flat_map(|(_, ws)| ws.iter().map(|w| &w.key))
                .filter(|k| !locked.contains(*k))
                .cloned()
                .collect();
            if missing.is_empty() {
                catalog.write_batch(
                    groups
                        .into_iter()
                        .map(|(c, writes)| catalog::WriteGroup {
                            collection: c.name,
                            cid: Some(c.id),
                            writes,
                        })
                        .collect(),
                    None,
                )?;
                return Ok(writes);
            }
            locked.extend(missing);
        }
        Err(crate::txn::serialization_failure(
            "the documents referencing the deleted ones kept changing",
        ))
    }

    /// Creates a schemaless collection (42P07 if it exists).
    pub fn create_collection(&self, name: &str) -> Result<Collection> {
        self.db.catalog().create(name)
    }

    /// Drops a collection and all its documents (42P01 if absent; 2BP01 if a foreign key
    /// of another table references it).
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        self.db.catalog().drop_collection(name, false).map(|_| ())
    }

    /// All collections.
    pub fn collections(&self) -> Vec<Collection> {
        self.db.catalog().list()
    }

    /// Inserts a new document. In a schemaless collection its id is the body's `id` field
    /// or a new UUID v4; in a table the body is a row by column name, shaped as INSERT
    /// shapes it (see [`Session::table_row`]) and keyed by its primary key. 23505 if a
    /// document with that id exists. Returns the id and the stored body.
    pub fn insert_document(&self, collection: &str, doc: Object) -> Result<(String, Object)> {
        self.insert_document_answered(collection, doc, |id, doc| (id.to_string(), doc.clone()))
    }

    /// [`Session::insert_document`] handing the id and the stored body to `answer`
    /// before the write takes the body (a REST answer written without a copy of it).
    pub fn insert_document_answered<T>(
        &self,
        collection: &str,
        doc: Object,
        answer: impl FnOnce(&str, &Object) -> T,
    ) -> Result<T> {
        let c = self.collection(collection)?;
        let (id, doc, generated) = self.document_body_keyed(&c, doc, None)?;
        let key = keys::encode(c.id, &id);
        let _guard = self.lock_for_write([key.as_slice()]);
        // A generated id names no stored document: no read to check it.
        if !generated && self.exists(&key)? {
            return Err(Error::conflict(
                SqlState::UNIQUE_VIOLATION,
                format!(
                    "a document with id \"{}\" already exists in \"{collection}\"",
                    c.id_text(&id)
                ),
            ));
        }
        let answer = answer(&c.id_text(&id), &doc);
        self.write_documents(
            &c,
            vec![DocWrite {
                id,
                key,
                old: None,
                new: Some(doc),
            }],
        )?;
        Ok(answer)
    }

    /// Inserts new documents as one write: all of them or, on any error, none. Each
    /// document's key is its `id` field (generated when absent) in a schemaless
    /// collection; in a table each document is a row by column name, given types,
    /// defaults and NOT NULL as INSERT does (42703 for a field that is no column).
    /// 23505 for an id repeated in the input or already stored. Inside a transaction
    /// the writes are buffered (within `max_transaction_size`). Returns the count.
    pub fn import_documents(
        &self,
        collection: &str,
        docs: Vec<Object>,
    ) -> std::result::Result<usize, ImportError> {
        let c = self.collection(collection)?;
        let mut rows: Vec<(String, Object)> = Vec::with_capacity(docs.len());
        for (i, doc) in docs.into_iter().enumerate() {
            let at = |error: Error| ImportError {
                row: Some(i),
                error,
            };
            rows.push(self.import_row(&c, doc).map_err(at)?);
        }
        let keys: Vec<Vec<u8>> = rows.iter().map(|(id, _)| keys::encode(c.id, id)).collect();
        let _guard = self.lock_for_write(keys.iter().map(Vec::as_slice));
        let mut first_row: std::collections::HashMap<&[u8], usize> =
            std::collections::HashMap::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let id = c.id_text(&rows[i].0);
            let duplicate = |message: String| ImportError {
                row: Some(i),
                error: Error::conflict(SqlState::UNIQUE_VIOLATION, message),
            };
            if let Some(first) = first_row.insert(key.as_slice(), i) {
                return Err(duplicate(format!(
                    "id \"{id}\" appears twice in the input (documents {} and {})",
                    first + 1,
                    i + 1
                )));
            }
            if self.exists(key)? {
                return Err(duplicate(format!(
                    "a document with id \"{id}\" already exists in \"{collection}\""
                )));
            }
        }
        drop(first_row);
        let n = rows.len();
        let writes = rows
            .into_iter()
            .zip(keys)
            .map(|((id, doc), key)| DocWrite {
                id,
                key,
                old: None,
                new: Some(doc),
            })
            .collect::<Vec<_>>();
        if !writes.is_empty() {
            self.write_documents(&c, writes)?;
        }
        Ok(n)
    }

    /// One imported document as (id, stored body); see [`Session::import_documents`].
    fn import_row(&self, c: &Collection, doc: Object) -> Result<(String, Object)> {
        self.document_body(c, doc, None)
    }

    /// A client's document for `c` as (id, stored body), the one shaping every document
    /// write (insert, replace, import) goes through. `path_id` is the id the request
    /// names beside the body (a PUT's path), if any.
    ///
    /// In a schemaless collection the body's `id` field is taken out as the id (it must
    /// equal `path_id` when both are given; absent, the id is `path_id` or a new UUID
    /// v4). In a table see [`Session::table_row`].
    fn document_body(
        &self,
        c: &Collection,
        doc: Object,
        path_id: Option<&str>,
    ) -> Result<(String, Object)> {
        let (id, body, _) = self.document_body_keyed(c, doc, path_id)?;
        Ok((id, body))
    }

    /// [`Session::document_body`], and whether the id is a UUID v4 made here (no stored
    /// document can have it: 122 random bits from the operating system's generator).
    fn document_body_keyed(
        &self,
        c: &Collection,
        mut doc: Object,
        path_id: Option<&str>,
    ) -> Result<(String, Object, bool)> {
        let mut generated = false;
        let (id, body) = match c.kind {
            catalog::Kind::Schemaless => {
                let id = match (take_id(&mut doc)?, path_id) {
                    (Some(body_id), Some(path_id)) if body_id != path_id => {
                        return Err(id_mismatch(&body_id, path_id));
                    }
                    (Some(id), _) => id,
                    (None, Some(path_id)) => path_id.to_string(),
                    (None, None) => {
                        generated = true;
                        uuid::Uuid::new_v4().to_string()
                    }
                };
                (id, doc)
            }
            catalog::Kind::Table => self.table_row(c, doc, path_id)?,
        };
        catalog::validate_document_id(&id)?;
        Ok((id, body, generated))
    }

    /// A client's document for table `c` as (key, stored row): the body is a row by
    /// column name, given types, defaults and NOT NULL as INSERT does (42703 for a field
    /// that is no column, 22P02 or 42846 for a value its column's type refuses, 23502
    /// for a missing NOT NULL value, the primary key included). The key is the primary
    /// key's value as text (a new UUID v4 in a table without one).
    ///
    /// With `path_id`, the row is stored under that key: a primary key missing from the
    /// body is read from it (as a value of the key's type); one given must name the same
    /// key (22023 otherwise).
    ///
    /// In a table with no `id` column, an `id` field is the key as REST shows it (a GET
    /// returns one): it is no column, and must name the row's key (22023 otherwise), so
    /// a row read over REST can be written back as it came.
    fn table_row(
        &self,
        c: &Collection,
        mut doc: Object,
        path_id: Option<&str>,
    ) -> Result<(String, Object)> {
        let shown_id = match c.columns.iter().any(|col| col.name == "id") {
            true => None,
            false => take_id(&mut doc)?,
        };
        if c.primary_key.is_none() {
            // The shown id is the document id itself.
            let id = match (shown_id.as_deref(), path_id) {
                (Some(shown), Some(path)) if shown != path => {
                    return Err(id_mismatch(shown, path));
                }
                (shown, path) => path.or(shown),
            };
            return self.table_row_by_columns(c, doc, id);
        }
        let (key, body) = self.table_row_by_columns(c, doc, path_id)?;
        match shown_id {
            Some(shown) if shown != c.id_text(&key) => Err(id_mismatch(&shown, &c.id_text(&key))),
            _ => Ok((key, body)),
        }
    }

    /// [`Session::table_row`] once the shown `id` is set aside.
    fn table_row_by_columns(
        &self,
        c: &Collection,
        mut doc: Object,
        path_id: Option<&str>,
    ) -> Result<(String, Object)> {
        if let Some(unknown) = doc
            .keys()
            .find(|k| !c.columns.iter().any(|col| &col.name == *k))
        {
            return Err(Error::invalid(
                crate::query::binder::UNDEFINED_COLUMN,
                format!(
                    "column \"{unknown}\" of relation \"{}\" does not exist",
                    c.name
                ),
            ));
        }
        let from_path = match (path_id, &c.primary_key) {
            (Some(id), Some(pk)) if !doc.contains_key(pk) => {
                doc.insert(pk.clone(), Value::String(id.to_string()));
                true
            }
            _ => false,
        };
        let targets: Vec<String> = doc.keys().cloned().collect();
        let row: Vec<Value> = doc.into_values().collect();
        let (key, body) = crate::query::statement::table_document(c, &targets, row, self)?;
        let Some(path_id) = path_id else {
            return Ok((key, body));
        };
        match &c.primary_key {
            None => Ok((path_id.to_string(), body)),
            Some(_) if c.stored_id(path_id).as_deref() == Some(key.as_str()) => Ok((key, body)),
            Some(pk) if from_path => Err(Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "the path's id \"{path_id}\" is not a key of \"{}\": as column \"{pk}\" it reads {}",
                    c.name,
                    c.id_text(&key)
                ),
            )),
            Some(pk) => Err(Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "the body's key \"{}\" (column \"{pk}\") differs from the path's id \"{path_id}\"",
                    c.id_text(&key)
                ),
            )),
        }
    }

    /// The document `id`, or None.
    pub fn get_document(&self, collection: &str, id: &str) -> Result<Option<Object>> {
        let c = self.collection(collection)?;
        catalog::validate_document_id(id)?;
        let Some(id) = c.stored_id(id) else {
            return Ok(None);
        };
        self.read_view().get(&keys::encode(c.id, &id))
    }

    /// [`Session::get_document`] handing the document out in `shape` (a REST answer
    /// written straight from the stored form).
    pub fn get_document_shaped<S: Shape>(
        &self,
        collection: &str,
        id: &str,
        shape: &mut S,
    ) -> Result<Option<S::Doc>> {
        let c = self.collection(collection)?;
        catalog::validate_document_id(id)?;
        let Some(id) = c.stored_id(id) else {
            return Ok(None);
        };
        self.read_view().get_shaped(&keys::encode(c.id, &id), shape)
    }

    /// Stores `doc` as document `id`, replacing any previous version. A body `id` field
    /// (in a table, the primary key column), if present, must name `id`; in a table the
    /// body is shaped as [`Session::insert_document`] shapes it, the key read from `id`
    /// when the body leaves it out. Returns whether the document was created and the
    /// stored body.
    pub fn replace_document(
        &self,
        collection: &str,
        id: &str,
        doc: Object,
    ) -> Result<(Replaced, Object)> {
        let c = self.collection(collection)?;
        catalog::validate_document_id(id)?;
        let (id, doc) = self.document_body(&c, doc, Some(id))?;
        let key = keys::encode(c.id, &id);
        let _guard = self.lock_for_write([key.as_slice()]);
        let old = self.current(&key)?;
        let existed = old.is_some();
        self.write_documents(
            &c,
            vec![DocWrite {
                id,
                key,
                old,
                new: Some(doc.clone()),
            }],
        )?;
        let replaced = if existed {
            Replaced::Updated
        } else {
            Replaced::Created
        };
        Ok((replaced, doc))
    }

    /// Deletes document `id`; 02000 (not found) if there is none. Foreign keys that
    /// reference it act as on a SQL DELETE (23503, CASCADE, SET NULL).
    pub fn delete_document(&self, collection: &str, id: &str) -> Result<()> {
        let c = self.collection(collection)?;
        catalog::validate_document_id(id)?;
        let not_found = || {
            Error::not_found(
                SqlState::NO_DATA,
                format!("no document with id \"{id}\" in \"{collection}\""),
            )
        };
        let stored = c.stored_id(id).ok_or_else(not_found)?;
        let key = keys::encode(c.id, &stored);
        self.write_with_references(&c, vec![key.clone()], |s| {
            let Some(old) = s.current(&key)? else {
                return Err(not_found());
            };
            Ok(vec![DocWrite {
                id: stored.clone(),
                key: key.clone(),
                old: Some(old),
                new: None,
            }])
        })?;
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
            Some(a) => Bound::Excluded(keys::encode(
                c.id,
                &c.stored_id(a).ok_or_else(|| {
                    Error::invalid(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("after must be a key of \"{collection}\", not {a:?}"),
                    )
                })?,
            )),
            None => Bound::Included(keys::collection_start(c.id)),
        };
        let mut documents = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for item in self.read_view().scan_from(c.id, start) {
            let (key, doc) = item?;
            if documents.len() == limit {
                more = true;
                break;
            }
            let (_, id) = keys::decode(&key)
                .ok_or_else(|| Error::Corruption("malformed document key".into()))?;
            documents.push((c.id_text(id).into_owned(), doc));
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

    /// Creates an index on `collection` over `fields` (paths), named `name` or
    /// `<collection>_<fields>_idx`. With `if_not_exists`, an existing index of that name
    /// is left alone and returned with `false`.
    pub fn create_index(
        &self,
        collection: &str,
        name: Option<&str>,
        fields: Vec<Vec<String>>,
        unique: bool,
        if_not_exists: bool,
    ) -> Result<(IndexDef, bool)> {
        let catalog = self.db.catalog();
        let name = match name {
            Some(n) => {
                if if_not_exists && let Some((_, def)) = catalog.find_index(n) {
                    return Ok((def, false));
                }
                n.to_string()
            }
            None => default_index_name(catalog, collection, &fields),
        };
        let def = self.db.create_index(collection, &name, fields, unique)?;
        Ok((def, true))
    }

    /// Drops index `name` (42704 if absent, unless `if_exists`).
    pub fn drop_index(&self, name: &str, if_exists: bool) -> Result<()> {
        match self.db.catalog().drop_index(name) {
            Err(Error::NotFound { .. }) if if_exists => Ok(()),
            other => other,
        }
    }

    /// The ready indexes of `collection`.
    pub fn indexes(&self, collection: &str) -> Result<Vec<IndexDef>> {
        Ok(self
            .collection(collection)?
            .ready_indexes()
            .cloned()
            .collect())
    }

    /// Checks every index of `collection` against its documents (see
    /// [`crate::catalog::Catalog::check_indexes`]): each index's name and entry count.
    pub fn check_indexes(&self, collection: &str) -> Result<Vec<(String, u64)>> {
        self.db.catalog().check_indexes(collection)
    }

    /// Runs a full compaction now and returns when it is done.
    pub fn compact(&self) -> Result<()> {
        self.db.storage().compact_all()
    }
}

/// PostgreSQL's naming: `<table>_<field>_<field>_idx`, other characters than letters,
/// digits and `_` as `_`, cut to 63 bytes, and a number added until the name is free.
fn default_index_name(catalog: &Catalog, collection: &str, fields: &[Vec<String>]) -> String {
    let mut base = collection.to_string();
    for f in fields {
        base.push('_');
        base.push_str(&catalog::dotted(f));
    }
    let base: String = base
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    let cut = |s: &str, room: usize| -> String {
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    let taken = |n: &str| catalog.find_index(n).is_some() || catalog.get(n).is_ok();
    let first = format!("{}_idx", cut(&base, 59));
    if !taken(&first) {
        return first;
    }
    (1u32..)
        .map(|i| {
            let suffix = format!("_idx{i}");
            format!("{}{suffix}", cut(&base, 63 - suffix.len()))
        })
        .find(|n| !taken(n))
        .unwrap_or(first)
}
