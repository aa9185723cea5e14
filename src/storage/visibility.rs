//! Which writes readers may see: the *published* sequence number, below which every
//! WAL record is durable and has been applied to the memtable and the index trees.
//!
//! Records get their sequence numbers in WAL order but are applied by their writers
//! concurrently, in any order, and become durable a group at a time, when the WAL's
//! fsync returns. A reader that took "whatever is applied now" could see a later batch
//! without an earlier one, half of a batch in a scan, or a write that a crash would
//! lose. Readers instead read at the published sequence number: the smaller of the
//! gapless applied prefix and the durable one, so every batch is wholly in or wholly
//! out, and nothing unacknowledged is seen. A writer is acknowledged only once its own
//! record is published, so a session always reads its own writes.
//!
//! Writers wait for their record either by blocking ([`Visibility::wait`]) or as a
//! future ([`Published`]), which an async front end awaits without holding a thread.
//! A failed WAL write ends publication for good ([`Visibility::failed`]); waiters are
//! woken with the reason.
//!
//! Relayed wake-ups: a future's task, woken from the publishing thread (the WAL's
//! flusher), costs that thread a system call when the task runs on another thread's
//! async runtime (tokio's current-thread runtime writes its eventfd for each), though
//! only the first wakes the thread: with 8 clients committing, eight writes for every
//! WAL write, where two connection threads needed waking. A thread that runs such a
//! runtime and wakes relayed futures before it sleeps ([`relay_here`],
//! [`wake_relayed`]) has its futures registered with its [`Relay`]: of the futures of
//! one publication waiting on one relay, the publisher wakes the first and leaves the
//! others to the relay, whose thread wakes them, without a system call, as soon as one
//! of its futures completes or before it sleeps.

use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};

/// The published sequence number and what it is made of. See the module doc.
pub struct Visibility {
    published: AtomicU64,
    progress: Mutex<Progress>,
    advanced: Condvar,
}

struct Progress {
    /// Every record up to here is applied.
    applied: u64,
    /// Records applied out of order, above `applied`.
    ahead: BTreeSet<u64>,
    /// Every record up to here is durable.
    durable: u64,
    /// Why no record will become durable any more.
    failed: Option<String>,
    /// Futures waiting for a sequence number to be published.
    wakers: Vec<Waiting>,
}

/// A future waiting for `seq`: its waker, and the relay of the thread it waits on.
struct Waiting {
    seq: u64,
    waker: Waker,
    relay: Option<Arc<Relay>>,
}

/// Wakers a publisher left to their thread to wake (see the module doc).
#[derive(Default)]
pub struct Relay {
    left: Mutex<Vec<Waker>>,
}

thread_local! {
    /// This thread's relay, if its futures are woken through one.
    static RELAY: RefCell<Option<Arc<Relay>>> = const { RefCell::new(None) };
}

/// Makes the futures this thread waits on be woken through a relay (see the module
/// doc). Only for a thread that calls [`wake_relayed`] before it sleeps, and whose
/// futures run on this thread.
pub fn relay_here() {
    RELAY.with(|r| {
        r.borrow_mut().get_or_insert_with(Default::default);
    });
}

/// Wakes the futures a publisher left to this thread's relay, if any.
pub fn wake_relayed() {
    let left = RELAY.with(|r| {
        r.borrow()
            .as_ref()
            .map(|relay| std::mem::take(&mut *relay.left.lock()))
    });
    for waker in left.into_iter().flatten() {
        waker.wake();
    }
}

impl Visibility {
    /// Everything up to `published` is durable and applied (after recovery, the last
    /// replayed record).
    pub fn new(published: u64) -> Self {
        Visibility {
            published: AtomicU64::new(published),
            progress: Mutex::new(Progress {
                applied: published,
                ahead: BTreeSet::new(),
                durable: published,
                failed: None,
                wakers: Vec::new(),
            }),
            advanced: Condvar::new(),
        }
    }

    /// Every record with a sequence number at or below this one is durable and applied.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Records that `seq` is applied; it is published once every earlier record is
    /// applied and it is durable.
    pub fn applied(&self, seq: u64) {
        let mut p = self.progress.lock();
        if seq <= p.applied {
            return;
        }
        if seq != p.applied + 1 {
            p.ahead.insert(seq);
            return;
        }
        let mut applied = seq;
        while p.ahead.remove(&(applied + 1)) {
            applied += 1;
        }
        p.applied = applied;
        let ready = self.publish(&mut p);
        drop(p);
        wake(ready);
    }

    /// Records that every record up to `seq` is durable.
    pub fn durable(&self, seq: u64) {
        let mut p = self.progress.lock();
        if seq > p.durable {
            p.durable = seq;
            let ready = self.publish(&mut p);
            drop(p);
            wake(ready);
        }
    }

    /// Records that nothing more will become durable, and wakes every waiter.
    pub fn failed(&self, why: &str) {
        let mut p = self.progress.lock();
        p.failed.get_or_insert_with(|| why.to_owned());
        for waiting in p.wakers.drain(..) {
            waiting.waker.wake();
        }
        self.advanced.notify_all();
    }

    /// Publishes what `p` allows; returns the futures now ready, for the caller to wake
    /// once it has let go of the lock (a wake-up from another thread is a system call,
    /// and writers wait for this lock).
    #[must_use]
    fn publish(&self, p: &mut Progress) -> Vec<Waiting> {
        let published = p.applied.min(p.durable);
        if published <= self.published.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.published.store(published, Ordering::Release);
        self.advanced.notify_all();
        if p.wakers.is_empty() {
            return Vec::new();
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut p.wakers)
            .into_iter()
            .partition(|w| w.seq <= published);
        p.wakers = waiting;
        ready
    }

    /// Waits until `seq` is published, or `limit` passes; true if it was published.
    /// (The caller makes sure its record becomes durable: see [`super::wal::Wal`].)
    pub fn wait(&self, seq: u64, limit: std::time::Duration) -> bool {
        if self.published() >= seq {
            return true;
        }
        let deadline = std::time::Instant::now() + limit;
        let mut p = self.progress.lock();
        while self.published() < seq {
            if p.failed.is_some() || self.advanced.wait_until(&mut p, deadline).timed_out() {
                return self.published() >= seq;
            }
        }
        true
    }

    /// A future that completes once `seq` is published, or fails once the WAL has.
    pub fn published_future(self: &Arc<Self>, seq: u64) -> Published {
        Published {
            visibility: self.clone(),
            seq,
        }
    }
}

/// Completes once its sequence number is published: see [`Visibility::published_future`].
pub struct Published {
    visibility: Arc<Visibility>,
    seq: u64,
}

impl Published {
    /// The sequence number waited for.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Future for Published {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let v = &self.visibility;
        if v.published() >= self.seq {
            // The others of this thread that the publisher left to it go next.
            wake_relayed();
            return Poll::Ready(Ok(()));
        }
        let mut p = v.progress.lock();
        if v.published() >= self.seq {
            drop(p);
            wake_relayed();
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = &p.failed {
            return Poll::Ready(Err(Error::ReadOnly(why.clone())));
        }
        let seq = self.seq;
        match p
            .wakers
            .iter_mut()
            .find(|w| w.seq == seq && w.waker.will_wake(cx.waker()))
        {
            Some(_) => {}
            None => p.wakers.push(Waiting {
                seq,
                waker: cx.waker().clone(),
                relay: RELAY.with(|r| r.borrow().clone()),
            }),
        }
        Poll::Pending
    }
}

/// Wakes the futures [`Visibility::publish`] found ready: of those waiting on one
/// relay, the first here and the others through the relay (left to it before the first
/// is woken, so that its thread finds them).
fn wake(ready: Vec<Waiting>) {
    let mut here = Vec::with_capacity(ready.len());
    let mut relays: Vec<Arc<Relay>> = Vec::new();
    for waiting in ready {
        match waiting.relay {
            Some(relay) if relays.iter().any(|r| Arc::ptr_eq(r, &relay)) => {
                relay.left.lock().push(waiting.waker);
            }
            Some(relay) => {
                relays.push(relay);
                here.push(waiting.waker);
            }
            None => here.push(waiting.waker),
        }
    }
    for waker in here {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn publishes_only_a_gapless_prefix() {
        let v = Visibility::new(10);
        v.durable(100);
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
    fn publishes_only_what_is_durable() {
        let v = Visibility::new(0);
        v.applied(1);
        v.applied(2);
        assert_eq!(v.published(), 0, "applied, but not yet durable");
        v.durable(1);
        assert_eq!(v.published(), 1);
        v.durable(3);
        assert_eq!(v.published(), 2, "3 is durable but not applied");
        v.applied(3);
        assert_eq!(v.published(), 3);
    }

    #[test]
    fn a_waiter_wakes_when_its_record_is_published() {
        let v = Arc::new(Visibility::new(0));
        v.durable(5);
        v.applied(2);
        let w = v.clone();
        let waiter = std::thread::spawn(move || w.wait(2, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        v.applied(1);
        assert!(waiter.join().unwrap());
        assert!(!v.wait(3, Duration::from_millis(10)));
    }

    /// Polls `fut` by hand, counting wake-ups.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_relay_thread_is_woken_once_and_wakes_its_other_futures_itself() {
        let v = Arc::new(Visibility::new(0));
        for seq in 1..=4 {
            v.applied(seq);
        }
        // Four futures waiting on a relay thread, one on a thread without a relay.
        let counters: Vec<Arc<CountingWaker>> = (0..5)
            .map(|_| Arc::new(CountingWaker(Default::default())))
            .collect();
        let count = |i: usize| counters[i].0.load(Ordering::SeqCst);
        let (on_relay, plain) = std::thread::scope(|scope| {
            let relayed = scope.spawn(|| {
                relay_here();
                let mut futures: Vec<Published> =
                    (1..=4).map(|seq| v.published_future(seq)).collect();
                for (i, fut) in futures.iter_mut().enumerate() {
                    let waker = Waker::from(counters[i].clone());
                    assert!(
                        Pin::new(fut)
                            .poll(&mut Context::from_waker(&waker))
                            .is_pending()
                    );
                }
                futures
            });
            let plain = scope.spawn(|| {
                let mut fut = v.published_future(3);
                let waker = Waker::from(counters[4].clone());
                assert!(
                    Pin::new(&mut fut)
                        .poll(&mut Context::from_waker(&waker))
                        .is_pending()
                );
                fut
            });
            (relayed.join().unwrap(), plain.join().unwrap())
        });
        drop(plain);
        let _futures = on_relay;
        // Publication from this thread: the first of the relay's ready futures is woken,
        // the others are left to it; the future without a relay is woken too.
        v.durable(3);
        assert_eq!(
            (count(0), count(1), count(2), count(3), count(4)),
            (1, 0, 0, 0, 1)
        );
        // The relay's thread is gone here; the futures' relay still holds what was left
        // to it: wake that as its thread would.
        let relay_of_futures = v
            .progress
            .lock()
            .wakers
            .first()
            .and_then(|w| w.relay.clone());
        assert!(relay_of_futures.is_some(), "the fourth still waits");
        let left: Vec<Waker> = std::mem::take(&mut *relay_of_futures.unwrap().left.lock());
        assert_eq!(left.len(), 2, "the second and third were left to the relay");
        for waker in left {
            waker.wake();
        }
        assert_eq!((count(1), count(2), count(3)), (1, 1, 0));
        // A failure wakes every waiter directly.
        v.failed("disk full");
        assert_eq!(count(3), 1);
    }

    #[test]
    fn wake_relayed_wakes_what_the_publisher_left_to_this_thread() {
        let v = Arc::new(Visibility::new(0));
        v.applied(1);
        v.applied(2);
        relay_here();
        let counter = Arc::new(CountingWaker(Default::default()));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut a = v.published_future(1);
        let mut b = v.published_future(2);
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        let other = v.clone();
        std::thread::spawn(move || other.durable(2)).join().unwrap();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "one woken from the publisher"
        );
        wake_relayed();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            2,
            "the other by this thread"
        );
        wake_relayed();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        // A future completing wakes what was left too.
        v.applied(3);
        v.applied(4);
        let (mut c, mut d) = (v.published_future(3), v.published_future(4));
        assert!(Pin::new(&mut c).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut d).poll(&mut cx).is_pending());
        let other = v.clone();
        std::thread::spawn(move || other.durable(4)).join().unwrap();
        assert_eq!(counter.0.load(Ordering::SeqCst), 3);
        assert!(Pin::new(&mut c).poll(&mut cx).is_ready());
        assert_eq!(counter.0.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn the_future_completes_on_publication_and_fails_with_the_wal() {
        let v = Arc::new(Visibility::new(0));
        let counter = Arc::new(CountingWaker(Default::default()));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut first = v.published_future(1);
        let mut second = v.published_future(2);
        assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
        v.applied(1);
        v.applied(2);
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            0,
            "nothing is durable yet"
        );
        v.durable(1);
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "only the first is woken"
        );
        assert!(matches!(
            Pin::new(&mut first).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
        v.failed("disk full");
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        match Pin::new(&mut second).poll(&mut cx) {
            Poll::Ready(Err(Error::ReadOnly(why))) => assert_eq!(why, "disk full"),
            other => panic!("expected the WAL's failure, got {other:?}"),
        }
        assert_eq!(v.published(), 1);
    }
}
