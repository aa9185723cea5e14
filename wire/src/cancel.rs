//! Cancel requests: a client's cancel arrives on a new connection naming a process id
//! and secret key. Besides waking the cancelled connection (pgwire's handler), it sets
//! that connection's engine cancel flag at once, so a statement running on any thread —
//! including one running inline on the connection's own task — stops with 57014.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;

/// What a cancel request reaches on one connection.
#[derive(Clone)]
pub struct CancelTarget {
    /// The engine's flag: the running statement checks it as it reads rows and before
    /// it writes.
    pub engine: Arc<AtomicBool>,
    /// Set while the connection runs a write: a cancel then reaches only the engine, so
    /// a write that went ahead is never reported cancelled while its fsync is awaited.
    pub committing: Arc<AtomicBool>,
}

/// The cancel flags of the open connections, by process id.
#[derive(Default)]
pub struct CancelFlags {
    flags: Mutex<HashMap<i32, (SecretKey, CancelTarget)>>,
}

impl CancelFlags {
    /// Registers a connection; the returned guard unregisters it when dropped.
    pub fn register(self: &Arc<Self>, pid: i32, key: SecretKey, target: CancelTarget) -> FlagGuard {
        self.flags.lock().insert(pid, (key, target));
        FlagGuard {
            flags: self.clone(),
            pid,
        }
    }

    /// Sets the engine flag of connection `pid` if `key` is its key; true if the
    /// connection's async wait should be woken too (it is not committing).
    fn set(&self, pid: i32, key: &SecretKey) -> bool {
        match self.flags.lock().get(&pid) {
            Some((k, target)) if key_bytes(k) == key_bytes(key) => {
                target.engine.store(true, Ordering::Relaxed);
                !target.committing.load(Ordering::Acquire)
            }
            _ => false,
        }
    }
}

/// A secret key as bytes: a cancel request's 4-byte key may parse as bytes while the
/// key handed out at startup is an i32.
fn key_bytes(key: &SecretKey) -> Vec<u8> {
    match key {
        SecretKey::I32(i) => i.to_be_bytes().to_vec(),
        SecretKey::Bytes(b) => b.to_vec(),
    }
}

/// Removes a connection's entry from [`CancelFlags`] when the connection ends.
pub struct FlagGuard {
    flags: Arc<CancelFlags>,
    pid: i32,
}

impl Drop for FlagGuard {
    fn drop(&mut self) {
        self.flags.flags.lock().remove(&self.pid);
    }
}

/// pgwire's cancel handler plus the engine flag.
pub struct Canceller {
    default: DefaultCancelHandler,
    flags: Arc<CancelFlags>,
}

impl Canceller {
    pub fn new(default: DefaultCancelHandler, flags: Arc<CancelFlags>) -> Self {
        Canceller { default, flags }
    }
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        if self.flags.set(request.pid, &request.secret_key) {
            self.default.on_cancel_request(request).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_sets_only_the_named_connections_flag() {
        let flags = Arc::new(CancelFlags::default());
        let (a, b) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let target = |engine: &Arc<AtomicBool>| CancelTarget {
            engine: engine.clone(),
            committing: Arc::default(),
        };
        let _ga = flags.register(1, SecretKey::I32(42), target(&a));
        let gb = flags.register(2, SecretKey::I32(7), target(&b));
        // A wrong key does nothing; the right key as bytes (how requests parse) works.
        flags.set(1, &SecretKey::I32(41));
        assert!(!a.load(Ordering::Relaxed));
        flags.set(1, &SecretKey::Bytes(42i32.to_be_bytes().to_vec().into()));
        assert!(a.load(Ordering::Relaxed));
        assert!(!b.load(Ordering::Relaxed));
        drop(gb);
        flags.set(2, &SecretKey::I32(7));
        assert!(
            !b.load(Ordering::Relaxed),
            "unregistered when the connection ended"
        );
    }

    #[test]
    fn a_committing_connection_is_cancelled_only_in_the_engine() {
        let flags = Arc::new(CancelFlags::default());
        let target = CancelTarget {
            engine: Arc::default(),
            committing: Arc::default(),
        };
        let _g = flags.register(3, SecretKey::I32(9), target.clone());
        assert!(
            flags.set(3, &SecretKey::I32(9)),
            "idle: the async wait is woken too"
        );
        target.engine.store(false, Ordering::Relaxed);
        target.committing.store(true, Ordering::Release);
        assert!(
            !flags.set(3, &SecretKey::I32(9)),
            "committing: the engine only"
        );
        assert!(target.engine.load(Ordering::Relaxed));
        assert!(!flags.set(4, &SecretKey::I32(9)), "no such connection");
    }
}
