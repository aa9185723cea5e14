//! Connection threads: each drives the connections handed to it, of both front-ends
//! (PostgreSQL wire and REST), on a single-threaded runtime of its own, so a
//! connection's requests are read, run and answered on one thread, with no hand-off
//! between a runtime's workers.
//!
//! On the multi-threaded runtime every ready connection is a task that any worker may
//! take: a worker that finds more than one ready wakes another to steal, and an idle one
//! parks, so a point read at 8 clients cost about 20 us of server CPU, a quarter of it
//! in wake-ups and context switches (on 2 cores, W2 prepared); a REST POST woke three
//! threads (the WAL flusher woke an idle worker, which woke the one parked in epoll)
//! where the wire's INSERT woke one. One thread per core, each given connections by the
//! front-ends (a client thread's burst of connections to one thread, see [`place`]; a
//! connection moves later to the thread running where its client runs,
//! [`tissdb_net::follow`]), sleeps only when none of its connections has anything to do.
//! Calls too long to run in place go to the thread's blocking pool, so a long query
//! does not hold the other connections of its thread. A thread tells the wire front-end
//! when it goes to sleep, which batches the answers of one wake-up
//! ([`tissdb_wire::batching`]) and sends the ones it held then, in one system call
//! ([`tissdb_net::outbox`]). The commits a WAL write makes durable wake one connection
//! of each thread from the WAL's thread, and the thread wakes the others itself
//! ([`tissdb::storage::visibility::relay_here`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinSet;

use tissdb_net::follow::{self, CpuNote, Seat, Served, Threads};

/// Stack of every connection thread and of their blocking threads: parsing and binding
/// recurse on nested expressions, up to the parser's recursion limit.
const STACK_SIZE: usize = 16 << 20;

/// How long a connection thread waits for its blocking calls when it stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Pins the calling thread to `cpu` (if known); says whether it is pinned.
fn pin_to(cpu: Option<usize>) -> bool {
    let Some(cpu) = cpu else { return false };
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    match rustix::thread::sched_setaffinity(None, &set) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("cannot pin a connection thread to CPU {cpu}: {e}");
            false
        }
    }
}

/// Lets the calling thread run on every CPU of `allowed` again (a blocking thread, which
/// inherits its connection thread's pinning).
fn unpin(allowed: &Option<rustix::thread::CpuSet>) {
    if let Some(set) = allowed {
        let _ = rustix::thread::sched_setaffinity(None, set);
    }
}

/// The connection threads. See the module doc.
pub struct ConnectionThreads {
    shared: Arc<Threads>,
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl ConnectionThreads {
    /// Starts `count` connection threads (at least one), each pinned to a CPU of its
    /// own when `pin` (the `pin_connection_threads` setting), its blocking threads free
    /// to run anywhere.
    pub fn start(count: usize, pin: bool) -> std::io::Result<ConnectionThreads> {
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        let notes: Vec<CpuNote> = (0..count.max(1)).map(|_| CpuNote::default()).collect();
        let allowed = rustix::thread::sched_getaffinity(None).ok();
        let cpus: Vec<usize> = match &allowed {
            Some(set) => (0..rustix::thread::CpuSet::MAX_CPU)
                .filter(|&c| set.is_set(c))
                .collect(),
            None => Vec::new(),
        };
        for (i, note) in notes.iter().enumerate() {
            let note = note.clone();
            let note_here = note.clone();
            let cpu = cpus.get(i % cpus.len().max(1)).copied().filter(|_| pin);
            let allowed_all = allowed;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_stack_size(STACK_SIZE)
                .thread_name("tissdb-blocking")
                .on_thread_park(|| {
                    tissdb::storage::visibility::wake_relayed();
                    tissdb::company::thread_sleeps();
                    tissdb_net::outbox::send_held();
                })
                .on_thread_unpark(move || note.note())
                .on_thread_start(move || unpin(&allowed_all))
                .build()?;
            handles.push(runtime.handle().clone());
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new()
                .name(format!("tissdb-conn-{i}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    if pin_to(cpu)
                        && let (Some(cpu), Some(free)) = (cpu, allowed)
                    {
                        follow::pinned_here(cpu, free);
                    }
                    // Where it runs, before it first wakes up (see follow's doc).
                    note_here.note();
                    tissdb_net::outbox::send_at_park();
                    tissdb::storage::visibility::relay_here();
                    runtime.block_on(async {
                        let _ = stopped.wait_for(|s| *s).await;
                    });
                    runtime.shutdown_timeout(STOP_GRACE);
                })?;
            threads.push(thread);
        }
        Ok(ConnectionThreads {
            shared: Threads::new(handles, &notes),
            threads,
            stop,
        })
    }

    /// The threads as the front-ends see them, to hand connections to (never empty).
    pub fn shared(&self) -> Arc<Threads> {
        self.shared.clone()
    }

    /// Stops the threads once their connections are gone, and waits for them.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a connection thread panicked");
            }
        }
    }
}

/// Answers a connection past the limit and closes it (the front-end's own refusal).
pub type Refuse = Arc<dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The most connections a front-end serves at once, and how one more is refused.
pub struct Limit {
    pub max_connections: usize,
    pub refuse: Refuse,
}

/// How many more open connections than the least busy thread a thread may serve and
/// still take the next connection of a burst.
const PLACEMENT_SLACK: usize = 4;

/// Connections from one CPU less than this apart are one burst (a client thread opening
/// its connections one after the other; each takes a round trip or two to start).
const BURST: Duration = Duration::from_millis(50);

/// The last connection from the CPUs of one thread's slot (`cpu % threads`): when it
/// came and the thread it went to, which the rest of its burst follows.
#[derive(Clone, Copy, Debug)]
struct Burst {
    at: Instant,
    thread: usize,
}

/// The thread for a new connection (see [`place`]), and what placing takes.
struct Placement {
    /// The threads, with the connections open on each.
    threads: Arc<Threads>,
    /// The last connection from each slot's CPUs.
    bursts: Vec<Option<Burst>>,
    /// The last thread given a connection whose CPU is not known.
    turn: usize,
}

/// The thread for a new connection from `cpu` (on loopback, the CPU the client's thread
/// ran on when it connected). One that continues a burst from its CPU (see [`BURST`])
/// goes where the burst's last went while that thread serves fewer than
/// [`PLACEMENT_SLACK`] more connections than the least busy, and else to the least busy,
/// where the rest of the burst follows. One that starts a burst goes to the thread its
/// CPU points to (`cpu % threads`) if that is among the least busy (fewest `open`
/// connections), else to the least busy. A connection whose CPU is not known goes to the
/// next thread in turn, or the least busy if that one is busier.
///
/// A client thread that drives several connections at once (pgbench's threads, an
/// event loop's pool) then has them served by one connection thread, which answers them
/// in one wake-up and wakes that client thread once; spread over both threads, each of
/// its requests woke a thread on the other core and each answer the client across
/// cores. D3 prepared, 8 clients from 2 pgbench threads: 65-66k queries/s with each
/// pgbench thread's four connections on one connection thread, 45-51k split 2/2 or 3/1,
/// as accepting them in turn left them. Two client threads that connect from one CPU,
/// one after the other (wrk's, started together), fill one thread up to the slack and
/// then the other, rather than alternating past it: REST POST at 8 connections, 18.0k
/// requests/s with the connections 6/2, 20.5-23.2k at 4/4. Clients that connect at
/// different times from the same CPU are still spread.
fn place(
    open: &[usize],
    cpu: Option<u32>,
    now: Instant,
    bursts: &mut [Option<Burst>],
    turn: &mut usize,
) -> usize {
    let n = open.len().max(1);
    let count = |i: usize| open.get(i).copied().unwrap_or(0);
    let least = (0..n).min_by_key(|&i| count(i)).unwrap_or(0);
    let Some(cpu) = cpu else {
        *turn = (*turn + 1) % n;
        return match count(*turn) > count(least) {
            true => least,
            false => *turn,
        };
    };
    let slot = cpu as usize % n;
    let continued = bursts
        .get(slot)
        .copied()
        .flatten()
        .filter(|b| now.saturating_duration_since(b.at) < BURST);
    let thread = match continued {
        Some(b) if count(b.thread) < count(least) + PLACEMENT_SLACK => b.thread,
        Some(_) => least,
        None if count(slot) == count(least) => slot,
        None => least,
    };
    if let Some(b) = bursts.get_mut(slot) {
        *b = Some(Burst { at: now, thread });
    }
    thread
}

impl Placement {
    fn new(threads: Arc<Threads>) -> Placement {
        let n = threads.len();
        Placement {
            threads,
            bursts: vec![None; n],
            turn: 0,
        }
    }

    /// Places a connection that came in on `socket`: its seat on its thread, and the
    /// CPU it came from if known.
    fn place(&mut self, socket: &TcpStream) -> (Seat, Option<u32>) {
        // The kernel says -1 for a socket that has received nothing yet.
        let cpu = rustix::net::sockopt::socket_incoming_cpu(socket)
            .ok()
            .filter(|&cpu| i32::try_from(cpu).is_ok());
        let open = self.threads.open();
        let at = place(&open, cpu, Instant::now(), &mut self.bursts, &mut self.turn);
        (self.threads.seat(at), cpu)
    }
}

/// Accepts connections on `listener` (of the front-end named `what`) until `stop` turns
/// true or its sender goes away, handing each to one of `threads` ([`place`]):
/// `connection(peer)` prepares it where it was accepted, and what that returns serves
/// the socket, with its seat, on the thread, and on the threads it moves to
/// ([`follow::drive`]). A connection past `limit` is refused (`limit.refuse`).
/// Returns the connections still open, for the caller to close.
pub async fn accept<P, S, F>(
    listener: TcpListener,
    threads: Arc<Threads>,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    limit: Limit,
    connection: P,
) -> JoinSet<()>
where
    P: Fn(SocketAddr) -> S,
    S: FnOnce(TcpStream, Seat) -> F + Send + 'static,
    F: Future<Output = Served> + Send + 'static,
{
    let threads = match threads.is_empty() {
        true => Threads::new(vec![Handle::current()], &[]),
        false => threads,
    };
    let mut placement = Placement::new(threads.clone());
    let mut open = JoinSet::new();
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) if open.len() >= limit.max_connections => {
                    tracing::warn!(%peer, max_connections = limit.max_connections, "refusing a {what} connection: too many");
                    tokio::spawn((limit.refuse)(socket));
                }
                Ok((socket, peer)) => {
                    let (seat, cpu) = placement.place(&socket);
                    tracing::debug!(%peer, ?cpu, thread = seat.thread(), "placed a {what} connection");
                    let Some(thread) = threads.handle(seat.thread()) else {
                        unreachable!("there is a thread")
                    };
                    // The socket moves to its connection thread's reactor.
                    let socket = match socket.into_std() {
                        Ok(socket) => socket,
                        Err(e) => {
                            tracing::warn!(%peer, "cannot hand a {what} connection over: {e}");
                            continue;
                        }
                    };
                    let serve = connection(peer);
                    // Runs on the connection's thread, then on the threads it moves to.
                    let first = Box::pin(async move {
                        match TcpStream::from_std(socket) {
                            Ok(socket) => serve(socket, seat).await,
                            Err(e) => {
                                tracing::warn!(%peer, "cannot take a {what} connection over: {e}");
                                Served::Ended
                            }
                        }
                    });
                    open.spawn(follow::drive(thread, first));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a {what} connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = open.join_next(), if !open.is_empty() => {}
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places connections from `cpus` (with the time each comes, in ms) on `threads`
    /// threads none of which closes: where each went.
    fn placed(threads: usize, cpus: &[(Option<u32>, u64)]) -> Vec<usize> {
        let start = Instant::now();
        let mut open = vec![0; threads];
        let mut bursts = vec![None; threads];
        let mut turn = 0;
        cpus.iter()
            .map(|&(cpu, ms)| {
                let now = start + Duration::from_millis(ms);
                let at = place(&open, cpu, now, &mut bursts, &mut turn);
                open[at] += 1;
                at
            })
            .collect()
    }

    #[test]
    fn a_client_threads_burst_of_connections_shares_a_thread() {
        // Two client threads on CPUs 0 and 1 open four connections each, 2 ms apart,
        // interleaved or one ahead of the other: each client's on one thread.
        let at = |cpus: &[u32]| {
            let timed: Vec<_> = cpus
                .iter()
                .zip(0..)
                .map(|(&c, i)| (Some(c), i * 2))
                .collect();
            placed(2, &timed)
        };
        assert_eq!(at(&[0, 1, 1, 0, 0, 1, 0, 1]), vec![0, 1, 1, 0, 0, 1, 0, 1]);
        assert_eq!(at(&[0, 0, 0, 1, 1, 1, 0, 1]), vec![0, 0, 0, 1, 1, 1, 0, 1]);
        // Eight from one CPU (one client thread's, or two client threads' one after
        // the other): four on its thread, then the rest of the burst on the other.
        assert_eq!(at(&[2; 8]), vec![0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(at(&[1; 10]), vec![1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
        // CPUs beyond the threads wrap around.
        assert_eq!(placed(3, &[(Some(4), 0)]), vec![1]);
    }

    #[test]
    fn clients_connecting_apart_from_one_cpu_are_spread() {
        // Single-connection clients, a second apart, all from CPU 0.
        let timed: Vec<_> = (0..4).map(|i| (Some(0), i * 1000)).collect();
        assert_eq!(placed(2, &timed), vec![0, 1, 0, 1]);
        // A burst after that still starts on its CPU's thread when it is among the
        // least busy.
        let mut timed = timed;
        timed.extend([(Some(1), 5000), (Some(1), 5002), (Some(1), 5004)]);
        assert_eq!(placed(2, &timed)[4..], [1, 1, 1]);
    }

    #[test]
    fn connections_of_unknown_cpu_go_in_turn_to_the_least_busy() {
        let timed: Vec<_> = (0..4).map(|i| (None, i)).collect();
        assert_eq!(placed(2, &timed), vec![1, 0, 1, 0]);
        // Behind a burst on thread 0, they fill thread 1 first.
        let mut timed: Vec<_> = (0..3).map(|i| (Some(0), i)).collect();
        timed.extend((0..3).map(|i| (None, 10 + i)));
        assert_eq!(placed(2, &timed), vec![0, 0, 0, 1, 1, 1]);
    }
}
