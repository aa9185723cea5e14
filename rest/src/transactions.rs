//! REST transactions: `POST /_transaction/begin` opens one and answers its id; requests
//! carrying `X-Transaction-ID: <id>` run in it; `/_transaction/commit` and
//! `/_transaction/rollback` end it. Each open transaction is a [`Session`] kept here.
//!
//! An id that is unknown, ended or expired answers 404. A transaction unused for
//! `transaction_idle_timeout` seconds is rolled back by a reaper task (and, should the
//! reaper lag, by the next request that names it). At most [`MAX_OPEN`] are open at once
//! (53400 beyond). A request that fails inside a transaction writes nothing and leaves
//! the transaction open, so the client may go on or roll back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use tissdb::{Database, Session, SqlState};

use crate::error::ApiError;

/// The header naming the transaction a request runs in.
pub const HEADER: &str = "x-transaction-id";
/// Most REST transactions open at once.
pub const MAX_OPEN: usize = 10_000;

/// One open transaction.
pub struct Entry {
    pub session: Session,
    last_used: Instant,
}

/// The open REST transactions. See the module doc.
pub struct Transactions {
    open: Mutex<HashMap<String, Arc<Mutex<Entry>>>>,
    idle: Duration,
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        SqlState::NO_ACTIVE_SQL_TRANSACTION,
        format!(
            "no open transaction with id \"{id}\" (unknown, ended, or expired after being idle)"
        ),
    )
}

fn poisoned() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        SqlState::INTERNAL_ERROR,
        "a transaction's lock was poisoned by a failed request",
    )
}

impl Transactions {
    /// A registry rolling back transactions idle longer than `idle`; starts the reaper
    /// when called inside a Tokio runtime.
    pub fn new(idle: Duration) -> Arc<Transactions> {
        let t = Arc::new(Transactions {
            open: Mutex::new(HashMap::new()),
            idle,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Transactions> = Arc::downgrade(&t);
            let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match weak.upgrade() {
                        Some(t) => t.reap(),
                        None => return,
                    }
                }
            });
        }
        t
    }

    /// Opens a transaction; answers its id.
    pub fn begin(&self, db: &Arc<Database>) -> Result<String, ApiError> {
        self.reap();
        let mut open = self.open.lock().map_err(|_| poisoned())?;
        if open.len() >= MAX_OPEN {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                SqlState::CONFIGURATION_LIMIT_EXCEEDED,
                format!("{MAX_OPEN} REST transactions are open; commit or roll some back"),
            ));
        }
        let mut session = Session::new(db.clone());
        // As a request's own session (see `handlers::rest_session`).
        session.set_json_encoded_results(true);
        session.begin(false);
        let id = uuid::Uuid::new_v4().to_string();
        open.insert(
            id.clone(),
            Arc::new(Mutex::new(Entry {
                session,
                last_used: Instant::now(),
            })),
        );
        Ok(id)
    }

    /// The transaction `id`, to run a request in; 404 if there is none.
    pub fn get(&self, id: &str) -> Result<Arc<Mutex<Entry>>, ApiError> {
        self.open
            .lock()
            .map_err(|_| poisoned())?
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// Removes transaction `id` to end it; 404 if there is none.
    pub fn take(&self, id: &str) -> Result<Arc<Mutex<Entry>>, ApiError> {
        self.open
            .lock()
            .map_err(|_| poisoned())?
            .remove(id)
            .ok_or_else(|| not_found(id))
    }

    /// Runs `f` in transaction `id` (on the calling thread: call from a blocking task).
    /// An expired transaction is rolled back and answers 404.
    pub fn run<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Session) -> tissdb::Result<T>,
    ) -> Result<T, ApiError> {
        let entry = self.get(id)?;
        let mut e = entry.lock().map_err(|_| poisoned())?;
        if e.last_used.elapsed() > self.idle {
            drop(e);
            self.take(id).ok();
            return Err(not_found(id));
        }
        if let Err(err) = e.session.check_transaction_age() {
            drop(e);
            self.take(id).ok();
            return Err(err.into());
        }
        let out = f(&mut e.session);
        // A failed request wrote nothing; the transaction stays usable.
        e.session.recover_failed_statement();
        e.last_used = Instant::now();
        Ok(out?)
    }

    /// Rolls back transactions idle longer than the timeout (busy ones are skipped).
    pub fn reap(&self) {
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        let idle = self.idle;
        open.retain(|id, entry| {
            let expired = entry
                .try_lock()
                .map(|e| e.last_used.elapsed() > idle)
                .unwrap_or(false);
            if expired {
                tracing::info!(transaction = %id, "rolled back an idle REST transaction");
            }
            !expired
        });
    }
}

/// The transaction id a request names, if any (400 if the header is not text).
pub fn requested(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(HEADER) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                SqlState::INVALID_PARAMETER_VALUE,
                "X-Transaction-ID must be text",
            )
        }),
    }
}
