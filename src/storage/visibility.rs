//! Which writes readers may see: the *published* sequence number, below which every
//! WAL record has been applied to the memtable and the index trees.
//!
//! Records get their sequence numbers in WAL order but are applied by their writers
//! concurrently, in any order. A reader that took "whatever is applied now" could see
//! a later batch without an earlier one, or half of a batch in a scan. Readers instead
//! read at the published sequence number: a prefix of the WAL, with every batch wholly
//! in or wholly out. A writer returns only once its own record is published, so a
//! session always reads its own writes.

use parking_lot::{Condvar, Mutex};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// The published sequence number and the applied records beyond it. See the module doc.
pub struct Visibility {
    published: AtomicU64,
    /// Records applied out of order, above `published`.
    ahead: Mutex<BTreeSet<u64>>,
    advanced: Condvar,
}

impl Visibility {
    /// Everything up to `published` is applied (after recovery, the last replayed record).
    pub fn new(published: u64) -> Self {
        Visibility {
            published: AtomicU64::new(published),
            ahead: Mutex::new(BTreeSet::new()),
            advanced: Condvar::new(),
        }
    }

    /// Every record with a sequence number at or below this one is applied.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Records that `seq` is applied, publishing it and any applied records after it once
    /// every earlier record is applied.
    pub fn applied(&self, seq: u64) {
        let mut ahead = self.ahead.lock();
        let mut p = self.published.load(Ordering::Acquire);
        if seq <= p {
            return;
        }
        if seq != p + 1 {
            ahead.insert(seq);
            return;
        }
        p = seq;
        while ahead.remove(&(p + 1)) {
            p += 1;
        }
        self.published.store(p, Ordering::Release);
        self.advanced.notify_all();
    }

    /// Waits until `seq` is published (the records before it are being applied by their
    /// writers, which takes microseconds), or `limit` passes; true if it was published.
    pub fn wait(&self, seq: u64, limit: std::time::Duration) -> bool {
        if self.published() >= seq {
            return true;
        }
        let deadline = std::time::Instant::now() + limit;
        let mut ahead = self.ahead.lock();
        while self.published() < seq {
            if self.advanced.wait_until(&mut ahead, deadline).timed_out() {
                return self.published() >= seq;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_only_a_gapless_prefix() {
        let v = Visibility::new(10);
        v.applied(12);
        v.applied(13);
        assert_eq!(v.published(), 10, "11 is still being applied");
        v.applied(11);
        assert_eq!(v.published(), 13);
        v.applied(9);
        assert_eq!(v.published(), 13);
        v.applied(14);
        assert_eq!(v.published(), 14);
    }

    #[test]
    fn a_waiter_wakes_when_its_record_is_published() {
        let v = std::sync::Arc::new(Visibility::new(0));
        v.applied(2);
        let w = v.clone();
        let waiter = std::thread::spawn(move || w.wait(2, std::time::Duration::from_secs(10)));
        std::thread::sleep(std::time::Duration::from_millis(20));
        v.applied(1);
        assert!(waiter.join().unwrap());
        assert!(!v.wait(3, std::time::Duration::from_millis(10)));
    }
}
