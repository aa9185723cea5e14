//! Connections that follow their clients: which connection thread serves a connection,
//! and moving a connection to the thread that runs where its client does.
//!
//! A client thread that drives several connections at once (pgbench's threads, an event
//! loop's pool) is served best when one connection thread answers all of them: the
//! thread answers them in one wake-up and wakes that client thread once, and the two
//! take turns on one core. Where its connections are spread over both threads, each of
//! its requests wakes a thread on the other core and each answer the client across
//! cores. The server places a connection when it accepts it, by the CPU the client
//! connected from (`conn_threads::place` in the server), but the kernel moves threads:
//! a client thread that changed CPUs in the middle of opening its connections, or two
//! client threads that connected from one CPU, left them split. D3 prepared, 8 clients
//! from 2 pgbench threads on 2 cores, its connections traced to their pgbench threads:
//! 98-108k queries/s with each pgbench thread's connections on one connection thread,
//! 65-69k when split 2/2 (pgbench then spent 10.5 us of CPU a query against 4.5), one
//! run in three split. A lone client gains most: its connection's thread and its own
//! thread then take turns on one core, no wake-up crossing to the other.
//!
//! So a connection keeps looking at where its client is: every [`SAMPLE_EVERY`]
//! messages it asks the kernel which CPU its client's last packet came from (on
//! loopback, the CPU the client's thread sent it on: `SO_INCOMING_CPU`) and compares it
//! with the CPU its own thread runs on. When [`MOVE_AFTER`] samples in a row point to the
//! CPU another connection thread last ran on, the connection moves there (between two
//! messages, nothing of it held back: [`Movable`]), if that thread does not serve more
//! connections than its own (so one busy core cannot draw every connection), and at
//! most once every [`MOVE_GAP`].
//!
//! A connection's task is then a chain of parts, each run on one thread ([`drive`]): a
//! part ends with the connection ([`Served::Ended`]) or with the rest of it to run on
//! another thread ([`Served::Moved`]), which registers the socket with that thread's
//! reactor when it first runs there. Both front-ends run a connection as a [`Movable`]:
//! it moves between two messages or requests, once its answer is out, the whole
//! connection future going to the other thread ([`crate::outbox::Outbox::rehome`]).
//!
//! Connection threads are pinned, one to a CPU (`pin_connection_threads`, on by
//! default): a lone client and its connection's thread then take turns on one core. On
//! 2 cores (a virtual machine), prepared point reads at 1 client made 80k a second with
//! the client and the thread held on one CPU, 12-13k on two, whichever two: each wake-up
//! across cores costs about 30 us there. Unpinned, the kernel keeps a lone client and
//! the thread it wakes apart (the other core is idle), and the connection cannot follow
//! a thread that does not stay anywhere: its reads came out at 12-47k from one run to
//! the next. Pinned, the client still moves, and its connection chases it, at most once
//! in [`MOVE_GAP`] (5 ms: 60-71k reads a second; at 50 ms, 42-48k). A pinned thread
//! notes its CPU when it starts, so that one which never served anyone can be moved to.
//!
//! A connection that writes alone waits for the disk on its thread (it writes the WAL
//! itself, `tissdb::storage::durability`), and the disk's completion wakes it from the
//! CPU that takes the disk's interrupts: held on another CPU, a lone client's inserts
//! fell from 5.9k to 3.9k a second. A thread whose lone connection only writes (every
//! statement between two samples a lone write, [`writes_alone`]) runs loose, so that
//! the kernel wakes it where it likes, and is pinned again at the first sample that
//! finds anything else (statements are counted as they are answered,
//! [`statement_ends`]), or when its connection leaves it. A client that mixes reads and
//! writes keeps its thread pinned: loose, its reads after each commit crossed cores
//! (three reads and an insert a transaction: 1.9-2.3k a second loose, 2.6-3.2k pinned).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::outbox::Outbox;

/// A connection looks at its client's CPU once in this many messages (a `getsockopt`).
pub const SAMPLE_EVERY: u32 = 8;

/// Samples in a row that must point to one other thread before a connection moves.
pub const MOVE_AFTER: u32 = 4;

/// The least time between two moves of one connection (see the module doc).
pub const MOVE_GAP: Duration = Duration::from_millis(5);

/// A CPU not known yet.
const NO_CPU: usize = usize::MAX;

thread_local! {
    /// How the calling connection thread is pinned (see [`writes_alone`]).
    static PINNING: RefCell<Option<Pinning>> = const { RefCell::new(None) };
}

/// A pinned connection thread: its CPU, the CPUs it may run on while loose, and whether
/// it is loose now and why.
struct Pinning {
    cpu: usize,
    free: rustix::thread::CpuSet,
    loose: bool,
    /// Statements of the thread's connections since the last sample, and how many of
    /// them wrote alone.
    statements: u32,
    lone_writes: u32,
    /// The statement running wrote alone.
    writing_now: bool,
}

/// Records that the calling thread is pinned to `cpu`, and may run on `free` while
/// loose.
pub fn pinned_here(cpu: usize, free: rustix::thread::CpuSet) {
    PINNING.with(|p| {
        *p.borrow_mut() = Some(Pinning {
            cpu,
            free,
            loose: false,
            statements: 0,
            lone_writes: 0,
            writing_now: false,
        })
    });
}

/// A connection of the calling thread is about to write alone, and may wait for the
/// disk on it (see the module doc).
pub fn writes_alone() {
    PINNING.with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            p.writing_now = true;
        }
    });
}

/// A connection of the calling thread has answered a statement (a simple query, or
/// the Sync that closes an extended one), which [`writes_alone`] may have marked.
pub fn statement_ends() {
    PINNING.with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            p.statements = p.statements.saturating_add(1);
            if std::mem::take(&mut p.writing_now) {
                p.lone_writes = p.lone_writes.saturating_add(1);
            }
        }
    });
}

impl Pinning {
    /// Lets the thread run on its free CPUs (`loose`), or holds it to its own again.
    fn set_loose(&mut self, loose: bool) {
        if loose == self.loose {
            return;
        }
        let mut one = rustix::thread::CpuSet::new();
        one.set(self.cpu);
        let set = if loose { &self.free } else { &one };
        if rustix::thread::sched_setaffinity(None, set).is_ok() {
            self.loose = loose;
        }
    }
}

/// At a sample: a pinned thread whose connections' statements since the last sample
/// were all lone writes runs loose, any other is pinned (see the module doc).
fn loosen_while_writing() {
    PINNING.with(|p| {
        let mut p = p.borrow_mut();
        let Some(p) = p.as_mut() else { return };
        let statements = std::mem::take(&mut p.statements);
        let lone_writes = std::mem::take(&mut p.lone_writes);
        p.set_loose(statements > 0 && lone_writes >= statements);
    });
}

/// A connection leaves the calling thread (it moves, or ends): a loose thread is pinned
/// again, as it serves no lone writer any more, and what was counted for the
/// connection is forgotten.
fn leaving_here() {
    PINNING.with(|p| {
        let mut p = p.borrow_mut();
        let Some(p) = p.as_mut() else { return };
        (p.statements, p.lone_writes, p.writing_now) = (0, 0, false);
        p.set_loose(false);
    });
}

/// The connection threads, as the connections see them: each one's runtime, the CPU it
/// last ran on, and the connections it serves.
#[derive(Debug)]
pub struct Threads {
    slots: Vec<Slot>,
    /// Connections moved from one thread to another since the server started.
    moves: AtomicU64,
}

#[derive(Debug)]
struct Slot {
    handle: Handle,
    cpu: Arc<AtomicUsize>,
    open: AtomicUsize,
}

/// Where a connection thread says it runs (see [`CpuNote::note`]).
#[derive(Clone, Debug)]
pub struct CpuNote(Arc<AtomicUsize>);

impl Default for CpuNote {
    fn default() -> CpuNote {
        CpuNote(Arc::new(AtomicUsize::new(NO_CPU)))
    }
}

impl CpuNote {
    /// Notes the CPU the calling thread runs on now (its runtime's `on_thread_unpark`).
    pub fn note(&self) {
        self.0
            .store(rustix::thread::sched_getcpu(), Ordering::Relaxed);
    }
}

impl Threads {
    /// The threads of `handles`, each noting its CPU in the note of the same index
    /// (missing notes are never known).
    pub fn new(handles: Vec<Handle>, notes: &[CpuNote]) -> Arc<Threads> {
        let slots = handles
            .into_iter()
            .enumerate()
            .map(|(i, handle)| Slot {
                handle,
                cpu: notes.get(i).cloned().unwrap_or_default().0,
                open: AtomicUsize::new(0),
            })
            .collect();
        Arc::new(Threads {
            slots,
            moves: AtomicU64::new(0),
        })
    }

    /// How many threads.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no thread.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Connections open on each thread.
    pub fn open(&self) -> Vec<usize> {
        self.slots
            .iter()
            .map(|s| s.open.load(Ordering::Relaxed))
            .collect()
    }

    /// The runtime of thread `i` (the last one's if there is no such thread).
    pub fn handle(&self, i: usize) -> Option<Handle> {
        self.slots
            .get(i)
            .or(self.slots.last())
            .map(|s| s.handle.clone())
    }

    /// Connections moved from one thread to another so far.
    pub fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }

    /// A connection's seat on thread `at`, counted open there while it lasts.
    pub fn seat(self: &Arc<Threads>, at: usize) -> Seat {
        let at = at.min(self.slots.len().saturating_sub(1));
        if let Some(slot) = self.slots.get(at) {
            slot.open.fetch_add(1, Ordering::Relaxed);
        }
        Seat {
            threads: self.clone(),
            at,
            messages: 0,
            toward: None,
            moved_at: None,
        }
    }

    fn cpu(&self, i: usize) -> usize {
        self.slots
            .get(i)
            .map_or(NO_CPU, |s| s.cpu.load(Ordering::Relaxed))
    }

    fn count(&self, i: usize) -> usize {
        self.slots
            .get(i)
            .map_or(usize::MAX, |s| s.open.load(Ordering::Relaxed))
    }
}

/// A connection's place among the threads: the thread serving it, and what it saw of
/// its client (see the module doc).
#[derive(Debug)]
pub struct Seat {
    threads: Arc<Threads>,
    at: usize,
    /// Messages seen on this thread, to sample one in [`SAMPLE_EVERY`].
    messages: u32,
    /// The other thread the last samples pointed to, and how many in a row.
    toward: Option<(usize, u32)>,
    /// When the connection last moved.
    moved_at: Option<Instant>,
}

impl Seat {
    /// The thread serving the connection.
    pub fn thread(&self) -> usize {
        self.at
    }

    /// Counts a message of the connection, and says which thread the connection should
    /// move to now, if any (see the module doc); `incoming_cpu` says where the client's
    /// last packet came from ([`crate::outbox::Outbox::incoming_cpu`]), asked once in
    /// [`SAMPLE_EVERY`] messages. The answer is [`Seat::move_due`]'s, which a
    /// [`Movable`] asks when the connection can move.
    pub fn observe(&mut self, incoming_cpu: impl FnOnce() -> Option<u32>) -> Option<usize> {
        if self.threads.len() < 2 {
            return None;
        }
        self.messages = self.messages.wrapping_add(1);
        if !self.messages.is_multiple_of(SAMPLE_EVERY) {
            return None;
        }
        loosen_while_writing();
        let here = rustix::thread::sched_getcpu();
        if let Some(slot) = self.threads.slots.get(self.at) {
            slot.cpu.store(here, Ordering::Relaxed);
        }
        let from = incoming_cpu().and_then(|cpu| usize::try_from(cpu).ok());
        let target = from.filter(|&cpu| cpu != here).and_then(|cpu| {
            (0..self.threads.len()).find(|&i| i != self.at && self.threads.cpu(i) == cpu)
        });
        let Some(target) = target else {
            self.toward = None;
            return None;
        };
        let streak = match self.toward {
            Some((t, n)) if t == target => n.saturating_add(1),
            _ => 1,
        };
        self.toward = Some((target, streak));
        self.move_due()
    }

    /// The thread the connection should move to now, if any: the one its last
    /// [`MOVE_AFTER`] samples pointed to, if that thread serves no more connections than
    /// this one's and the connection did not move in the last [`MOVE_GAP`].
    pub fn move_due(&self) -> Option<usize> {
        let (target, streak) = self.toward?;
        if streak < MOVE_AFTER
            || self.threads.count(target) > self.threads.count(self.at)
            || self.moved_at.is_some_and(|t| t.elapsed() < MOVE_GAP)
        {
            return None;
        }
        Some(target)
    }

    /// Counts the connection on thread `to` from now on, and returns that thread's
    /// runtime, where the rest of the connection is to run.
    pub fn move_to(&mut self, to: usize) -> Option<Handle> {
        let handle = self.threads.handle(to)?;
        leaving_here();
        let to = to.min(self.threads.len().saturating_sub(1));
        if let Some(slot) = self.threads.slots.get(self.at) {
            slot.open.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(slot) = self.threads.slots.get(to) {
            slot.open.fetch_add(1, Ordering::Relaxed);
        }
        self.threads.moves.fetch_add(1, Ordering::Relaxed);
        self.at = to;
        self.toward = None;
        self.messages = 0;
        self.moved_at = Some(Instant::now());
        Some(handle)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        leaving_here();
        if let Some(slot) = self.threads.slots.get(self.at) {
            slot.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The rest of a connection, run on one thread.
pub type Part = Pin<Box<dyn Future<Output = Served> + Send>>;

/// How one part of a connection ended.
pub enum Served {
    /// The connection is over.
    Ended,
    /// The rest of the connection runs on `to`.
    Moved { to: Handle, rest: Part },
}

/// Runs a connection from its first part on `at` to its end, each part on the thread
/// it names. Dropping this future aborts the part running.
pub async fn drive(at: Handle, first: Part) {
    let (mut at, mut part) = (at, first);
    loop {
        let running = AbortOnDrop(at.spawn(part));
        match running.await {
            Ok(Served::Moved { to, rest }) => (at, part) = (to, rest),
            Ok(Served::Ended) => return,
            Err(e) => {
                if e.is_panic() {
                    tracing::error!("a connection's task panicked");
                }
                return;
            }
        }
    }
}

/// A spawned task aborted when its handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A connection's part in following its client: its seat, which its messages or
/// requests keep informed ([`Follower::observe`]), and whether one is being answered
/// ([`Follower::busy`]), when it cannot move.
#[derive(Debug)]
pub struct Follower {
    seat: Mutex<Seat>,
    busy: AtomicUsize,
}

impl Follower {
    /// The follower of the connection sitting as `seat`.
    pub fn new(seat: Seat) -> Arc<Follower> {
        Arc::new(Follower {
            seat: Mutex::new(seat),
            busy: AtomicUsize::new(0),
        })
    }

    /// Counts a message or request of the connection, whose client's CPU `outbox`
    /// knows (see [`Seat::observe`]).
    pub fn observe(&self, outbox: &Outbox) {
        self.seat.lock().observe(|| outbox.incoming_cpu());
    }

    /// Marks the connection as answering something, which it does not leave its thread
    /// in the middle of, until the guard is dropped.
    pub fn busy(self: &Arc<Follower>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// A connection answering something (see [`Follower::busy`]).
#[derive(Debug)]
pub struct Busy(Arc<Follower>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's task on one thread ([`Part`]): it runs the connection until it ends,
/// or, while it answers nothing ([`Follower::busy`]) and nothing of it waits in its
/// outbox, until its samples say it should move ([`Seat::move_due`]); then the rest of
/// it runs on that thread, its socket registered there before it is next read or
/// written ([`Outbox::rehome`]). Checked before the connection runs as well as after:
/// an answer held when it last ran has left since (its thread sent it when it slept),
/// and the message that woke it waits in the socket for the thread it moves to.
pub struct Movable {
    connection: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    follower: Arc<Follower>,
    outbox: Arc<Outbox>,
}

impl Movable {
    /// `connection`, following its client as `follower` says, its answers waiting in
    /// `outbox`.
    pub fn new(
        connection: impl Future<Output = ()> + Send + 'static,
        follower: Arc<Follower>,
        outbox: Arc<Outbox>,
    ) -> Movable {
        Movable {
            connection: Some(Box::pin(connection)),
            follower,
            outbox,
        }
    }

    /// The rest of the connection, to run on another thread, if it is to move there now.
    fn move_if_due(&mut self) -> Option<Served> {
        if self.connection.is_none()
            || self.follower.busy.load(Ordering::Relaxed) > 0
            || !self.outbox.idle()
        {
            return None;
        }
        let to = {
            let mut seat = self.follower.seat.lock();
            seat.move_due().and_then(|to| seat.move_to(to))
        }?;
        self.outbox.rehome();
        let rest = Movable {
            connection: self.connection.take(),
            follower: self.follower.clone(),
            outbox: self.outbox.clone(),
        };
        Some(Served::Moved {
            to,
            rest: Box::pin(rest),
        })
    }
}

impl Future for Movable {
    type Output = Served;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Served> {
        if let Some(moved) = self.move_if_due() {
            return Poll::Ready(moved);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Poll::Ready(Served::Ended);
        };
        if connection.as_mut().poll(cx).is_ready() {
            self.connection = None;
            return Poll::Ready(Served::Ended);
        }
        match self.move_if_due() {
            Some(moved) => Poll::Ready(moved),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads(n: usize) -> (tokio::runtime::Runtime, Arc<Threads>, Vec<CpuNote>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let notes: Vec<CpuNote> = (0..n).map(|_| CpuNote::default()).collect();
        let handles = (0..n).map(|_| rt.handle().clone()).collect();
        let threads = Threads::new(handles, &notes);
        (rt, threads, notes)
    }

    fn incoming(socket: &std::net::TcpStream) -> Option<u32> {
        rustix::net::sockopt::socket_incoming_cpu(socket).ok()
    }

    #[test]
    fn seats_count_their_connections_where_they_are() {
        let (_rt, threads, _) = threads(2);
        let mut a = threads.seat(0);
        let b = threads.seat(0);
        let c = threads.seat(7);
        assert_eq!(
            threads.open(),
            vec![2, 1],
            "a seat past the last is on the last"
        );
        assert!(a.move_to(1).is_some());
        assert_eq!((a.thread(), threads.open()), (1, vec![1, 2]));
        assert_eq!(threads.moves(), 1);
        drop((b, c));
        assert_eq!(threads.open(), vec![0, 1]);
        drop(a);
        assert_eq!(threads.open(), vec![0, 0]);
    }

    #[test]
    fn a_connection_moves_to_the_thread_on_its_clients_cpu_after_samples_in_a_row() {
        let (_rt, threads, notes) = threads(2);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut client, b"x").unwrap();
        let from = rustix::net::sockopt::socket_incoming_cpu(&server).unwrap() as usize;
        // Thread 1 says it runs on the client's CPU, thread 0 (the connection's) on
        // another: every sample points to thread 1, unless this test runs there itself.
        notes[1].0.store(from, Ordering::Relaxed);
        notes[0].0.store(from + 1, Ordering::Relaxed);
        let mut seat = threads.seat(0);
        let mut moved_at = None;
        for message in 1..=(SAMPLE_EVERY * MOVE_AFTER * 4) {
            if rustix::thread::sched_getcpu() == from {
                // Sampled on the client's own CPU: nothing to follow.
                return;
            }
            if let Some(to) = seat.observe(|| incoming(&server)) {
                moved_at = Some((message, to));
                break;
            }
        }
        assert_eq!(moved_at, Some((SAMPLE_EVERY * MOVE_AFTER, 1)));
        // A thread that serves more connections than this one's draws none.
        let _others: Vec<Seat> = (0..2).map(|_| threads.seat(1)).collect();
        assert!(
            (0..SAMPLE_EVERY * MOVE_AFTER * 2)
                .all(|_| seat.observe(|| incoming(&server)).is_none())
        );
    }
}
