//! The company a connection keeps on its connection thread: how many other connections
//! the thread served in its current wake-up and in the one before.
//!
//! The server runs each front-end connection (PostgreSQL wire or HTTP) as a task on one
//! of a few connection threads, a thread serving its connections in turn. Two decisions
//! of the front-ends depend on whether a connection has its thread to itself:
//!
//! - a read's answer may wait for the answers of the other connections of the same
//!   wake-up, so that they leave together (`tissdb_wire::batching`);
//! - a write that finds the WAL idle may write and fsync it on the connection's own
//!   thread instead of handing the record to the WAL's flusher thread
//!   ([`crate::storage::durability::deferred_with`]): a lone connection then saves the
//!   two wake-ups of the hand-off, while a thread serving others never blocks on a disk.
//!
//! The counts are per thread and cheap (two thread-local cells): each connection holds a
//! [`Presence`] and notes itself once per wake-up ([`Presence::served`]); the server's
//! connection threads call [`thread_sleeps`] before they sleep. On threads that never
//! call it (a runtime of another kind, a test), one wake-up lasts for ever, so
//! connections sharing such a thread always see each other.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::durability::WhenIdle;

thread_local! {
    /// Wake-ups of this thread so far (the cycle a connection was last served in).
    static CYCLE: Cell<u64> = const { Cell::new(1) };
    /// Distinct connections served in this wake-up, and in the one before.
    static SERVED: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// To be called by a connection thread just before it sleeps (tokio's
/// `on_thread_park`): a wake-up ends.
pub fn thread_sleeps() {
    CYCLE.with(|c| c.set(c.get().wrapping_add(1)));
    SERVED.with(|a| a.set((0, a.get().0)));
}

/// One connection's place in its thread's wake-ups.
#[derive(Debug, Default)]
pub struct Presence {
    /// The wake-up this connection was last served in (0: none yet).
    last_cycle: AtomicU64,
}

/// What a connection saw of its thread when it was served (see [`Presence::served`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Company {
    /// Other connections served in this wake-up so far.
    pub others_now: u32,
    /// Connections served in the wake-up before (this one included, if it was).
    pub before: u32,
}

impl Company {
    /// Whether the connection has its thread to itself: nobody else served in this
    /// wake-up, and at most one connection (itself, usually) in the last.
    pub fn alone(&self) -> bool {
        self.others_now == 0 && self.before <= 1
    }

    /// What a deferred write of this connection does when it finds the WAL idle: alone,
    /// it writes the WAL itself; else it leaves it to the WAL's thread.
    pub fn when_idle(&self) -> WhenIdle {
        match self.alone() {
            true => WhenIdle::WriteHere,
            false => WhenIdle::Defer,
        }
    }
}

impl Presence {
    /// Counts the connection as served in the current wake-up (once per wake-up,
    /// however often it is called) and says whom it shares the thread with.
    pub fn served(&self) -> Company {
        let cycle = CYCLE.with(Cell::get);
        let (now, before) = SERVED.with(Cell::get);
        let first_this_cycle = self.last_cycle.swap(cycle, Ordering::Relaxed) != cycle;
        if first_this_cycle {
            SERVED.with(|a| a.set((now.saturating_add(1), before)));
        }
        Company {
            others_now: if first_this_cycle {
                now
            } else {
                now.saturating_sub(1)
            },
            before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_alone_on_its_thread_sees_no_company() {
        std::thread::spawn(|| {
            let (a, b) = (Presence::default(), Presence::default());
            // One connection, wake-up after wake-up, served several times in each.
            for _ in 0..3 {
                assert!(a.served().alone());
                assert!(a.served().alone());
                thread_sleeps();
            }
            // Two in one wake-up: the second sees the first, the first sees it after.
            assert!(a.served().alone());
            assert_eq!(
                b.served(),
                Company {
                    others_now: 1,
                    before: 1
                }
            );
            assert!(!a.served().alone());
            thread_sleeps();
            // The next wake-up remembers both.
            assert_eq!(
                a.served(),
                Company {
                    others_now: 0,
                    before: 2
                }
            );
            thread_sleeps();
            // One wake-up with one connection, and it is alone again.
            assert!(a.served().alone());
        })
        .join()
        .unwrap();
    }
}
