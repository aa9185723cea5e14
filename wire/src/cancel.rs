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

/// The cancel flags of the open connections, by process id.
#[derive(Default)]
pub struct CancelFlags {
    flags: Mutex<HashMap<i32, (SecretKey, Arc<AtomicBool>)>>,
}

impl CancelFlags {
    /// Registers a connection; the returned guard unregisters it when dropped.
    pub fn register(
        self: &Arc<Self>,
        pid: i32,
        key: SecretKey,
        flag: Arc<AtomicBool>,
    ) -> FlagGuard {
        self.flags.lock().insert(pid, (key, flag));
        FlagGuard {
            flags: self.clone(),
            pid,
        }
    }

    fn set(&self, pid: i32, key: &SecretKey) {
        if let Some((k, flag)) = self.flags.lock().get(&pid)
            && key_bytes(k) == key_bytes(key)
        {
            flag.store(true, Ordering::Relaxed);
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
        self.flags.set(request.pid, &request.secret_key);
        self.default.on_cancel_request(request).await;
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
        let _ga = flags.register(1, SecretKey::I32(42), a.clone());
        let gb = flags.register(2, SecretKey::I32(7), b.clone());
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
}
