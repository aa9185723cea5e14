//! A connection's engine [`Session`], run off the async threads.
//!
//! Engine calls block (they read segments and fsync the WAL), so each runs with the
//! session locked either in place (a point read, which costs less than any hand-off),
//! under `block_in_place` on a multi-threaded runtime, or on a blocking thread (on the
//! single-threaded runtimes of the server's connection threads, and
//! whenever an earlier call still holds the session). A cancelled or aborted query drops
//! only the future waiting for that thread: the call itself runs to its end, still
//! holding the lock, so the next statement on the connection waits for it. The
//! transaction status is copied out after every call, so ReadyForQuery can report it
//! without taking the lock.
//! [`InFlight`] counts running calls, so shutdown can wait for them before the database
//! closes.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use pgwire::error::PgWireResult;
use pgwire::messages::response::TransactionStatus;
use tissdb::company::Company;
use tissdb::session::TransactionStatus as EngineStatus;
use tissdb::storage::durability;
use tissdb::{Database, Session};
use tokio::sync::Notify;

use crate::cancel::CancelTarget;
use crate::error;
use crate::quick_reads::QuickReads;

/// Engine calls in progress on all connections.
#[derive(Clone, Default)]
pub struct InFlight {
    inner: Arc<InFlightInner>,
}

#[derive(Default)]
struct InFlightInner {
    count: AtomicUsize,
    idle: Notify,
}

/// Counts one call while alive.
struct InFlightGuard(Arc<InFlightInner>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        self.inner.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.inner.clone())
    }

    /// Returns once no engine call is running.
    pub async fn wait_idle(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            // Register before checking, so a call ending in between still wakes us.
            idle.as_mut().enable();
            if self.inner.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One connection's session, shared by its handlers.
#[derive(Clone)]
pub struct SessionHandle {
    session: Arc<Mutex<Session>>,
    /// The session's cancel flag, reachable while a statement holds the session lock.
    cancel: Arc<std::sync::atomic::AtomicBool>,
    /// Set while a write runs and its fsync is awaited (see [`SessionHandle::run_write`]).
    committing: Arc<std::sync::atomic::AtomicBool>,
    status: Arc<AtomicU8>,
    in_flight: InFlight,
}

fn status_byte(status: EngineStatus) -> u8 {
    match status {
        EngineStatus::Idle => b'I',
        EngineStatus::InBlock => b'T',
        EngineStatus::Failed => b'E',
    }
}

impl SessionHandle {
    pub fn new(db: Arc<Database>, in_flight: InFlight) -> Self {
        let mut session = Session::new(db);
        session.allow_client_copy();
        // Every result is written here (crate::encode), json columns from their encoding.
        session.set_json_encoded_results(true);
        let status = AtomicU8::new(status_byte(session.transaction_status()));
        SessionHandle {
            cancel: session.cancel_flag(),
            committing: Arc::default(),
            session: Arc::new(Mutex::new(session)),
            status: Arc::new(status),
            in_flight,
        }
    }

    /// Runs `f` on the session on a blocking thread and records the transaction status
    /// it leaves behind. A panic in the engine becomes an XX000 error.
    pub async fn run<T, F>(&self, f: F) -> PgWireResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session) -> T + Send + 'static,
    {
        let guard = self.in_flight.enter();
        // When no earlier call still holds the session (the usual case), run right here:
        // block_in_place hands this worker's other duties to another thread, which costs
        // less than the two hand-offs to a blocking thread and back (W1 INSERT at 1
        // client: 7 futex calls per statement that way, 1 this way). A cancel then
        // reaches the statement through the engine's flag. While the session is busy,
        // the call waits on a blocking thread instead, so the caller can race a cancel
        // against it and answer at once.
        let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        if multi_thread && let Ok(mut session) = self.session.try_lock() {
            let ran = tokio::task::block_in_place(|| {
                let _guard = guard;
                let out =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut session)));
                self.status
                    .store(status_byte(session.transaction_status()), Ordering::Release);
                out
            });
            return ran.map_err(|_| error::internal("the statement failed unexpectedly"));
        }
        let session = self.session.clone();
        let status = self.status.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            // A panic in an earlier call poisons the lock; the session itself holds only
            // settings and the transaction status, so carry on with it.
            let mut session = session.lock().unwrap_or_else(PoisonError::into_inner);
            let out = f(&mut session);
            status.store(status_byte(session.transaction_status()), Ordering::Release);
            out
        });
        task.await
            .map_err(|e| error::internal(format!("the statement failed unexpectedly: {e}")))
    }

    /// [`SessionHandle::run`] for a statement that may write: its writes are deferred
    /// ([`durability::deferred`]), so no thread sleeps through the fsync, and this
    /// returns once they are durable and visible, the worker serving other connections
    /// meanwhile (one fsync then acknowledges the writes of every connection that came
    /// in during the last). A cancel request reaches only the engine's flag meanwhile:
    /// the statement stops if it has not written yet, and a write that went ahead is
    /// acknowledged, as in PostgreSQL, where a commit's WAL flush holds off interrupts.
    ///
    /// With `quick` (the connection's [`QuickReads`] and the statement's shape), a shape
    /// that has proved quick runs directly on the worker, as point reads do, and how long
    /// the run took (without the fsync) is recorded. `company` is whom the connection
    /// shares its thread with: alone, a write that finds the WAL idle writes it right
    /// here ([`durability::WhenIdle::WriteHere`]).
    pub async fn run_write<T, F>(
        &self,
        quick: Option<(&QuickReads, u64)>,
        company: Company,
        f: F,
    ) -> PgWireResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session) -> T + Send + 'static,
    {
        /// Clears the committing flag however the wait ends.
        struct Committing<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Committing<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.committing.store(true, Ordering::Release);
        let _committing = Committing(&self.committing);
        let direct = quick.is_some_and(|(reads, shape)| reads.is_quick(shape));
        let started = Instant::now();
        let when_idle = company.when_idle();
        if when_idle == durability::WhenIdle::WriteHere {
            tissdb_net::follow::writes_alone();
        }
        let run = move |s: &mut Session| durability::deferred_with(when_idle, || f(s));
        let (out, published) = match direct {
            true => self.try_run_direct(run).await?,
            false => self.run(run).await?,
        };
        if let Some((reads, shape)) = quick {
            reads.record(shape, direct, started.elapsed());
        }
        if let Some(published) = published {
            published.await.map_err(|e| error::engine(&e))?;
        }
        Ok(out)
    }

    /// [`SessionHandle::run_direct`] when the session is free (a panic becomes an XX000
    /// error); else, as [`SessionHandle::run`], on a blocking thread.
    pub(crate) async fn try_run_direct<T, F>(&self, f: F) -> PgWireResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session) -> T + Send + 'static,
    {
        let Ok(mut session) = self.session.try_lock() else {
            return self.run(f).await;
        };
        let _guard = self.in_flight.enter();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut session)));
        self.status
            .store(status_byte(session.transaction_status()), Ordering::Release);
        out.map_err(|_| error::internal("the statement failed unexpectedly"))
    }

    /// Runs `f` on the session right on the async worker, without handing the worker's
    /// duties to another thread: only for statements known to read a few documents (a
    /// key or index point lookup), where the hand-off costs more than the statement
    /// (W2 point SELECT at 8 clients: 36k statements/s this way, 21k through
    /// [`SessionHandle::run_inline`]). Anything long here would hold the worker and the
    /// I/O it drives.
    pub fn run_direct<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let _guard = self.in_flight.enter();
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let out = f(&mut session);
        self.status
            .store(status_byte(session.transaction_status()), Ordering::Release);
        out
    }

    /// Runs `f` on the session for a statement that only reads: on the calling thread
    /// (a point lookup costs less than the two thread hand-offs of
    /// [`SessionHandle::run`]) where the runtime can hand this worker's other duties to
    /// another thread meanwhile, else as [`SessionHandle::run`] does.
    pub async fn run_inline<T, F>(&self, f: F) -> PgWireResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session) -> T + Send + 'static,
    {
        let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        if !multi_thread {
            return self.run(f).await;
        }
        let _guard = self.in_flight.enter();
        // block_in_place hands this worker's other duties (its queue, the I/O driver) to
        // another thread, so a long statement never stalls other connections.
        Ok(tokio::task::block_in_place(|| {
            let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
            let out = f(&mut session);
            self.status
                .store(status_byte(session.transaction_status()), Ordering::Release);
            out
        }))
    }

    /// What a cancel request sets (cancel requests arrive on other connections).
    pub fn cancel_target(&self) -> CancelTarget {
        CancelTarget {
            engine: self.cancel.clone(),
            committing: self.committing.clone(),
        }
    }

    /// Asks the running statement to stop: the engine checks the flag as it reads rows
    /// and before it writes, and fails the statement with 57014.
    pub fn cancel_running(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The transaction status after the last finished call, for ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        match self.status.load(Ordering::Acquire) {
            b'T' => TransactionStatus::Transaction,
            b'E' => TransactionStatus::Error,
            _ => TransactionStatus::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::open_db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_idle_waits_for_running_calls() {
        let (_dir, db) = open_db();
        let in_flight = InFlight::default();
        in_flight.wait_idle().await;
        let session = SessionHandle::new(db, in_flight.clone());
        let running = session.clone();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done_in_call = done.clone();
        let call = tokio::spawn(async move {
            running
                .run(move |_| {
                    std::thread::sleep(Duration::from_millis(300));
                    done_in_call.store(true, Ordering::Release);
                })
                .await
        });
        while in_flight.inner.count.load(Ordering::Acquire) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        in_flight.wait_idle().await;
        assert!(
            done.load(Ordering::Acquire),
            "returned before the call ended"
        );
        call.await.unwrap().unwrap();
        assert_eq!(session.transaction_status(), TransactionStatus::Idle);
    }

    /// On a multi-thread runtime a call on a free session runs in place.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_call_in_place_is_an_internal_error_and_the_session_goes_on() {
        a_panicking_call_is_an_internal_error_and_the_session_goes_on().await;
    }

    /// On a current-thread runtime every call goes to a blocking thread.
    #[tokio::test]
    async fn a_panicking_call_on_a_blocking_thread_is_an_internal_error() {
        a_panicking_call_is_an_internal_error_and_the_session_goes_on().await;
    }

    async fn a_panicking_call_is_an_internal_error_and_the_session_goes_on() {
        let (_dir, db) = open_db();
        let session = SessionHandle::new(db, InFlight::default());
        let e = session.run(|_| -> () { panic!("boom") }).await.unwrap_err();
        let pgwire::error::PgWireError::UserError(info) = e else {
            panic!("not a user error");
        };
        assert_eq!(info.code, "XX000");
        assert_eq!(
            session.run(|s| s.transaction_status()).await.unwrap(),
            EngineStatus::Idle
        );
    }
}
