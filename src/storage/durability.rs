//! Deferred durability: writes that return before their fsync, for callers that can
//! await it without holding a thread.
//!
//! A write normally returns once its WAL record is durable and published, so the
//! thread that made it sleeps through the fsync. Inside [`deferred`], the storage
//! engine's writes only append their record to the WAL buffer, apply it and hand the
//! fsync to the WAL's flusher thread; [`deferred`] then returns a [`Published`] future
//! for the last of them. An async front end runs a statement this way and awaits the
//! future before it acknowledges the statement, so its worker serves other connections
//! meanwhile, and one fsync acknowledges every statement that came in during the last.
//!
//! Nothing becomes visible earlier for it: readers still read at the published sequence
//! number, which never passes what is durable. Within the scope, a read that takes a
//! snapshot first waits (blocking) for the scope's own writes to be published, so a
//! statement that reads after writing (the second statement of a batch, a DDL step that
//! reads its catalog) sees what it wrote, exactly as without deferral.
//!
//! A front-end whose thread has nobody else to serve ([`crate::company`]) may let an
//! idle WAL be written on the spot ([`deferred_with`], [`WhenIdle::WriteHere`]): a write
//! that finds no flush in progress, nothing else buffered and the last flush carrying
//! one record (a lone writer) then writes and fsyncs the WAL itself, as a PostgreSQL
//! backend does at commit, instead of waking the WAL's flusher thread and being woken
//! by it. On two cores that hand-off cost a single client's INSERT 6-15% of its rate.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::error::Result;
pub use crate::storage::visibility::Published;

/// A store whose writes can be deferred: it can make a record durable and published
/// now, or tell when it is.
pub(crate) trait Durable: Send + Sync {
    /// Blocks until record `seq` is durable and published.
    fn settle(&self, seq: u64) -> Result<()>;
    /// A future for record `seq`'s publication.
    fn published(&self, seq: u64) -> Published;
}

/// The last write made in the current scope, if any.
struct Pending {
    store: Arc<dyn Durable>,
    seq: u64,
}

thread_local! {
    /// `Some` inside [`deferred`]: the pending write of the scope, if any.
    static SCOPE: RefCell<Option<Option<Pending>>> = const { RefCell::new(None) };
    /// Inside [`deferred_with`]: what a write that finds the WAL idle does.
    static WHEN_IDLE: Cell<WhenIdle> = const { Cell::new(WhenIdle::Defer) };
}

/// What a deferred write does when it finds the WAL idle (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenIdle {
    /// Hands its record to the flusher thread, as every deferred write does.
    Defer,
    /// Writes and fsyncs the WAL on this thread, returning once it is durable.
    WriteHere,
}

/// Runs `f` with its storage writes deferred (see the module doc). Returns what `f`
/// returned and, if it wrote, a future that completes once its last write (and so every
/// earlier one) is durable and published, or fails if the WAL did. Until then the writes
/// must not be acknowledged to anyone.
pub fn deferred<T>(f: impl FnOnce() -> T) -> (T, Option<Published>) {
    deferred_with(WhenIdle::Defer, f)
}

/// [`deferred`], with `when_idle` saying what a write that finds the WAL idle does.
pub fn deferred_with<T>(when_idle: WhenIdle, f: impl FnOnce() -> T) -> (T, Option<Published>) {
    /// Restores the enclosing scope (none, usually) when this one ends, even if `f`
    /// panics: the writes then become durable on their own, unawaited.
    struct Scope(Option<Option<Pending>>, WhenIdle);
    impl Drop for Scope {
        fn drop(&mut self) {
            SCOPE.with(|s| s.replace(self.0.take()));
            WHEN_IDLE.with(|w| w.set(self.1));
        }
    }
    let _scope = Scope(
        SCOPE.with(|s| s.replace(Some(None))),
        WHEN_IDLE.with(|w| w.replace(when_idle)),
    );
    let out = f();
    let pending = SCOPE.with(|s| s.borrow_mut().as_mut().and_then(Option::take));
    (out, pending.map(|p| p.store.published(p.seq)))
}

/// Whether writes on this thread are deferred.
pub(crate) fn deferring() -> bool {
    SCOPE.with(|s| s.borrow().is_some())
}

/// What a deferred write on this thread does when it finds the WAL idle.
pub(crate) fn when_idle() -> WhenIdle {
    WHEN_IDLE.with(Cell::get)
}

/// Records a deferred write of `store`; false if the scope already waits for another
/// store, in which case the caller must wait for this write itself.
pub(crate) fn record(store: &Arc<dyn Durable>, seq: u64) -> bool {
    SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let Some(slot) = s.as_mut() else {
            return false;
        };
        match slot {
            Some(p) if same(&p.store, store) => {
                p.seq = p.seq.max(seq);
                true
            }
            Some(_) => false,
            None => {
                *slot = Some(Pending {
                    store: store.clone(),
                    seq,
                });
                true
            }
        }
    })
}

/// Before a read of the store at `store` (its address): waits for this scope's pending
/// write to it, so the read sees it. If that fails, the write stays pending, and the
/// scope's future reports the failure.
pub(crate) fn settle(store: *const ()) {
    let pending = SCOPE.with(|s| match s.borrow().as_ref() {
        Some(Some(p)) if address(&p.store) == store => Some((p.store.clone(), p.seq)),
        _ => None,
    });
    let Some((durable, seq)) = pending else {
        return;
    };
    if durable.settle(seq).is_ok() {
        SCOPE.with(|s| {
            if let Some(slot) = s.borrow_mut().as_mut()
                && slot.as_ref().is_some_and(|p| p.seq <= seq)
            {
                *slot = None;
            }
        });
    }
}

fn address(store: &Arc<dyn Durable>) -> *const () {
    Arc::as_ptr(store) as *const ()
}

fn same(a: &Arc<dyn Durable>, b: &Arc<dyn Durable>) -> bool {
    address(a) == address(b)
}
