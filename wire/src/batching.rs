//! Reply batching: when several connections of one connection thread have answers to
//! send in the same wake-up, the answers go out together, after the thread has run
//! every request that was ready, instead of one as each is done.
//!
//! A thread serves its connections in turn: it wakes with, say, four requests ready,
//! runs them one by one and sends each answer as it finishes. Each send wakes the
//! client's thread for that one answer; a client driving several connections (a
//! connection pool, pgbench) then sleeps and wakes once per answer. Measured with
//! pgbench at 8 clients (W4 prepared, 2 cores): about one ppoll and one context switch
//! per transaction in pgbench, against 0.2 and 0.4 with PostgreSQL, whose backends answer
//! at scattered times; those wake-ups cost pgbench 4 us of CPU per transaction more.
//!
//! So a connection whose thread is serving others holds its answer back (ReadyForQuery
//! ends an extended-protocol exchange, after Sync) and the thread sends the held answers
//! when none of its connections has anything left to do, all in one system call
//! ([`tissdb_net::outbox`]). Redis writes its replies before it sleeps for the same reason.
//! Where answers cannot be held (no `io_uring`), the connection yields instead: tokio
//! runs the other ready connections first, and the yielded ones send one after the
//! other. The guess of
//! whether others are being served comes from the thread itself: the connections it
//! answered since it last slept, and in the wake-up before. A lone busy connection
//! (one client, or one pipelining client) never yields, so its latency is unchanged;
//! a yield costs one poll of the reactor without sleeping.
//!
//! Answers to writes are not held: a write's answer waits for its WAL flush already, and
//! holding it back delays the client's next commit past the flush being gathered (W3,
//! UPDATE by key at 8 clients: 3-7% fewer transactions when writes yielded too; held
//! and sent in one submission, W1 and W3 at 8 clients on disk came out the same, five
//! alternating rounds each).
//!
//! Whether others are being served comes from [`tissdb::company`], which the server's
//! connection threads keep up to date.

use std::sync::atomic::{AtomicBool, Ordering};
use tissdb::company::{Company, Presence};

/// One connection's place in its thread's wake-ups.
#[derive(Debug, Default)]
pub struct Replies {
    /// The connection's presence among its thread's connections.
    presence: Presence,
    /// Whether the exchange being answered ran a write.
    wrote: AtomicBool,
}

impl Replies {
    /// Marks the exchange being answered as one that ran a write (never held back).
    pub fn wrote(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// Counts the connection as served in this wake-up and says whom it shares its
    /// thread with.
    pub fn company(&self) -> Company {
        self.presence.served()
    }

    /// Counts an answer of this connection about to be sent, and says whether to yield
    /// first: it answers no write, and other connections are answering in this
    /// wake-up, or did in the last one.
    pub fn should_yield(&self) -> bool {
        let wrote = self.wrote.swap(false, Ordering::Relaxed);
        let company = self.presence.served();
        !wrote && (company.others_now > 0 || company.before > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tissdb::company::thread_sleeps;

    #[test]
    fn a_lone_connection_never_yields_and_several_do() {
        std::thread::spawn(|| {
            let (a, b) = (Replies::default(), Replies::default());
            // One connection answering, alone, wake-up after wake-up (pipelined too).
            for _ in 0..3 {
                assert!(!a.should_yield());
                assert!(!a.should_yield());
                thread_sleeps();
            }
            // Two in one wake-up: the second sees the first.
            assert!(!a.should_yield());
            assert!(b.should_yield());
            assert!(a.should_yield(), "another answered in this wake-up");
            thread_sleeps();
            // The next wake-up expects the same: the first answer yields too.
            assert!(b.should_yield());
            thread_sleeps();
            // A wake-up with one connection answering, then the counts calm down.
            assert!(!a.should_yield(), "one answered in the wake-up before");
            thread_sleeps();
            assert!(!a.should_yield());
            // An answer to a write is never held back, though it counts.
            b.wrote();
            assert!(!b.should_yield(), "a write's answer");
            assert!(a.should_yield(), "b answered in this wake-up");
            assert!(b.should_yield(), "the mark lasts one answer");
        })
        .join()
        .unwrap();
    }
}
