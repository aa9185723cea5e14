//! Held answers, sent together: a connection thread that holds answers back for the
//! other connections it is serving (`tissdb_wire::batching`) sends all of them in one
//! system call when it goes to sleep, one `io_uring` submission of a send per
//! connection, instead of one `send` each.
//!
//! Each `send` that wakes a client's thread returns to user space through the
//! scheduler, and the kernel (preemption at system-call exit, not inside the kernel)
//! switches there to the woken client when it shares the core: with answers sent one by
//! one, the client wakes for one answer, sends its next request, sleeps, and the thread
//! comes back for the next answer. At 8 clients (D3 prepared, 2 cores) `send` was 39% of
//! the server's samples, half of it that switch, and pgbench went to sleep in `ppoll`
//! 0.62 times per query against PostgreSQL's 0.23. Sent in one submission, the answers
//! are all in the clients' sockets before the thread leaves the kernel.
//!
//! A connection's socket, as its front-end (pgwire, hyper) sees it, is a [`Transport`]: writes go straight to
//! the socket unless the connection asked to hold its next answer
//! ([`Outbox::hold_next`]); then the answer's bytes wait in its [`Outbox`], which joins
//! the thread's queue, sent by [`send_held`] (the thread's `on_thread_park`), or at once
//! when the queue is full ([`MAX_QUEUED`]). What a socket does not take (a full socket
//! buffer) stays in the outbox and goes out through tokio when the connection's task
//! next runs, which the sender wakes. Only a thread that sends at park
//! ([`send_at_park`]) and has a ring holds anything; elsewhere answers are written
//! directly.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use io_uring::{IoUring, opcode, types};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The most answers a thread holds: one more sends them all at once, so a thread that
/// never runs out of work still answers.
pub const MAX_QUEUED: usize = 64;

/// The longest answer held: a longer one is sent at once (holding saves a system call
/// and a switch, not worth copying much for).
pub const MAX_HELD_BYTES: usize = 64 << 10;

/// Submission entries of a thread's ring (a queue longer than this is sent in parts).
const RING_ENTRIES: u32 = 64;

thread_local! {
    /// Whether this thread calls [`send_held`] before it sleeps.
    static SENDS_AT_PARK: Cell<bool> = const { Cell::new(false) };
    /// The outboxes holding an answer, in the order they were held.
    static QUEUE: RefCell<Vec<Arc<Outbox>>> = const { RefCell::new(Vec::new()) };
    /// The thread's ring: created on first use; `None` inside when the kernel refuses one.
    static RING: RefCell<Option<Option<IoUring>>> = const { RefCell::new(None) };
}

/// Marks the calling thread as one that calls [`send_held`] whenever it goes to sleep.
pub fn send_at_park() {
    SENDS_AT_PARK.with(|s| s.set(true));
}

/// One connection's held answer.
#[derive(Debug, Default)]
pub struct Outbox {
    state: Mutex<OutState>,
}

#[derive(Debug, Default)]
struct OutState {
    /// The socket (None before the connection starts and after it ends).
    fd: Option<RawFd>,
    /// Whether the next flush holds what was written since the last.
    hold_next: bool,
    /// Bytes written but not sent yet, in order.
    held: Vec<u8>,
    /// Whether the outbox is in its thread's queue.
    queued: bool,
    /// The connection's task, woken when a send left bytes behind.
    waker: Option<Waker>,
    /// A send's failure, reported by the connection's next read or write.
    failed: Option<io::ErrorKind>,
    /// Whether the connection moved to another thread: its socket is registered with
    /// that thread's reactor before it is next read or written ([`Outbox::rehome`]).
    rehome: bool,
}

impl Outbox {
    /// Asks that the answer being written be held until the thread sleeps; false (and
    /// nothing held) when this thread cannot: not a connection thread, no ring, or the
    /// connection not started.
    pub fn hold_next(&self) -> bool {
        if !SENDS_AT_PARK.with(Cell::get) || !ring_available() {
            return false;
        }
        let mut state = self.state.lock();
        if state.fd.is_none() {
            return false;
        }
        state.hold_next = true;
        true
    }

    /// Whether nothing of the connection waits here: no answer held or queued, no
    /// failure to report. A connection moves to another thread only then.
    pub fn idle(&self) -> bool {
        let state = self.state.lock();
        !(state.queued || state.hold_next || !state.held.is_empty() || state.failed.is_some())
    }

    /// Marks the connection as moved to another thread: the first read or write of its
    /// [`Transport`] there registers the socket with that thread's reactor.
    pub fn rehome(&self) {
        self.state.lock().rehome = true;
    }

    /// The CPU the connection's last packet came from (`SO_INCOMING_CPU`; on loopback,
    /// the CPU its client's thread sent it from), if the socket is open and known.
    pub fn incoming_cpu(&self) -> Option<u32> {
        let state = self.state.lock();
        let fd = state.fd?;
        // SAFETY: `fd` is the connection's open socket: its `Transport` sets it and
        // clears it (under this lock, held here) before the socket closes.
        #[expect(unsafe_code)]
        let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        rustix::net::sockopt::socket_incoming_cpu(socket)
            .ok()
            .filter(|&cpu| i32::try_from(cpu).is_ok())
    }
}

/// Whether this thread has a ring (creating it on first use).
fn ring_available() -> bool {
    RING.with(|ring| {
        let mut ring = ring.borrow_mut();
        ring.get_or_insert_with(|| match IoUring::new(RING_ENTRIES) {
            Ok(ring) => Some(ring),
            Err(e) => {
                tracing::info!("no io_uring on this thread ({e}): answers are sent one by one");
                None
            }
        })
        .is_some()
    })
}

/// Sends every answer this thread holds: one submission for all of them.
pub fn send_held() {
    let queue = QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()));
    if queue.is_empty() {
        return;
    }
    RING.with(|ring_slot| {
        let mut ring_slot = ring_slot.borrow_mut();
        let Some(Some(ring)) = ring_slot.as_mut() else {
            // Never held without a ring; the tasks send what they hold.
            wake_unsent(&queue);
            return;
        };
        let mut parts = queue.chunks(RING_ENTRIES as usize);
        let failed = parts.any(|part| send_part(ring, part) == Sent::RingFailed);
        if failed {
            *ring_slot = Some(None);
            // The parts not sent go out through tokio.
            for part in parts {
                wake_unsent(part);
            }
        }
    });
    // The queue's allocation serves the next wake-up.
    let mut queue = queue;
    queue.clear();
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        if q.is_empty() {
            *q = queue;
        }
    });
}

/// Leaves queued outboxes to their tasks, which send what they hold through tokio.
fn wake_unsent(outboxes: &[Arc<Outbox>]) {
    for outbox in outboxes {
        let mut state = outbox.state.lock();
        state.queued = false;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

/// Sends one part of the queue (at most [`RING_ENTRIES`] outboxes) and settles each
/// outbox with what its socket took.
fn send_part(ring: &mut IoUring, part: &[Arc<Outbox>]) -> Sent {
    let mut states: Vec<_> = part.iter().map(|o| o.state.lock()).collect();
    let (results, sent) = submit_sends(ring, &states);
    for (state, result) in states.iter_mut().zip(results) {
        state.queued = false;
        let taken = match result {
            Some(Ok(taken)) => taken,
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Some(Err(e)) => {
                state.held.clear();
                state.failed = Some(e.kind());
                0
            }
            None => {
                // The kernel may still read these bytes: they are left to it, and the
                // connection fails rather than send them twice.
                std::mem::forget(std::mem::take(&mut state.held));
                state.failed = Some(io::ErrorKind::BrokenPipe);
                0
            }
        };
        let taken = taken.min(state.held.len());
        state.held.drain(..taken);
        if state.held.is_empty() && state.held.capacity() > MAX_HELD_BYTES {
            state.held = Vec::new();
        }
        if !state.held.is_empty() || state.failed.is_some() {
            // The task sends the rest through tokio (or learns of the failure).
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
    }
    sent
}

/// Whether every submitted send was seen to complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    All,
    /// The ring failed: it is not used again.
    RingFailed,
}

/// One send per outbox that has bytes and a socket, submitted together. Per outbox, the
/// bytes its socket took (`Some(Ok(0))` for one with nothing to send), or `None` when
/// the ring failed before its send was seen to complete.
fn submit_sends(
    ring: &mut IoUring,
    states: &[parking_lot::MutexGuard<'_, OutState>],
) -> (Vec<Option<io::Result<usize>>>, Sent) {
    let mut results: Vec<Option<io::Result<usize>>> = states.iter().map(|_| Some(Ok(0))).collect();
    let mut waiting = 0;
    {
        let mut sq = ring.submission();
        for (i, state) in states.iter().enumerate() {
            let Some(fd) = state.fd.filter(|_| !state.held.is_empty()) else {
                continue;
            };
            let len = u32::try_from(state.held.len()).unwrap_or(u32::MAX);
            let entry = opcode::Send::new(types::Fd(fd), state.held.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
                .build()
                .user_data(i as u64);
            // SAFETY: the entry points into `state.held`, which stays locked, unmoved and
            // unchanged until its completion is seen below, or, if the ring fails
            // first, is never freed (`send_part`).
            #[expect(unsafe_code)]
            let pushed = unsafe { sq.push(&entry) };
            if pushed.is_err() {
                // No room (never expected: a part fits the ring): tokio sends it.
                results[i] = Some(Err(io::ErrorKind::WouldBlock.into()));
                continue;
            }
            results[i] = None;
            waiting += 1;
        }
    }
    while waiting > 0 {
        match ring.submit_and_wait(waiting) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("io_uring failed ({e}): answers are sent one by one from now on");
                return (results, Sent::RingFailed);
            }
        }
        for cqe in ring.completion() {
            let Some(slot) = usize::try_from(cqe.user_data())
                .ok()
                .and_then(|i| results.get_mut(i))
            else {
                continue;
            };
            let res = cqe.result();
            *slot = Some(if res >= 0 {
                Ok(usize::try_from(res).unwrap_or(0))
            } else {
                Err(io::Error::from_raw_os_error(-res))
            });
            waiting -= 1;
        }
    }
    (results, Sent::All)
}

/// A connection's socket as its front-end uses it (see the module doc).
pub struct Transport {
    stream: TcpStream,
    outbox: Arc<Outbox>,
}

impl Transport {
    /// `stream`, whose held answers wait in `outbox` (the connection's handlers ask
    /// through the same outbox to hold them).
    pub fn new(stream: TcpStream, outbox: Arc<Outbox>) -> Transport {
        outbox.state.lock().fd = Some(stream.as_raw_fd());
        Transport { stream, outbox }
    }

    /// Registers the socket with the reactor of the thread running this, if the
    /// connection moved here ([`Outbox::rehome`]): a duplicate of its descriptor is
    /// registered here, and the old one leaves the reactor it was in and closes.
    fn settle(&mut self, state: &mut OutState) -> io::Result<()> {
        if !state.rehome {
            return Ok(());
        }
        state.rehome = false;
        let socket = std::net::TcpStream::from(self.stream.as_fd().try_clone_to_owned()?);
        socket.set_nonblocking(true)?;
        let moved = TcpStream::from_std(socket)?;
        state.fd = Some(moved.as_raw_fd());
        drop(std::mem::replace(&mut self.stream, moved));
        Ok(())
    }

    /// Writes what the outbox holds through tokio; Pending until the socket took all of
    /// it. (If the outbox is queued, the thread's send later finds less or nothing.)
    fn poll_drain(&mut self, cx: &mut Context<'_>, state: &mut OutState) -> Poll<io::Result<()>> {
        if let Some(kind) = state.failed.take() {
            return Poll::Ready(Err(kind.into()));
        }
        while !state.held.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &state.held) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    state.held.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // The socket closes after this: a queued send must not reach its number.
        let mut state = self.outbox.state.lock();
        state.fd = None;
        state.held.clear();
        state.waker = None;
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outbox = this.outbox.clone();
        let mut state = outbox.state.lock();
        if let Err(e) = this.settle(&mut state) {
            return Poll::Ready(Err(e));
        }
        if state.failed.is_some() || (!state.held.is_empty() && !state.queued) {
            // Left over from a send at park: sent before anything else is read.
            if let Poll::Ready(Err(e)) = this.poll_drain(cx, &mut state) {
                return Poll::Ready(Err(e));
            }
        }
        drop(state);
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outbox = this.outbox.clone();
        let mut state = outbox.state.lock();
        if let Err(e) = this.settle(&mut state) {
            return Poll::Ready(Err(e));
        }
        if let Some(kind) = state.failed.take() {
            return Poll::Ready(Err(kind.into()));
        }
        if state.hold_next {
            if state.held.len() + buf.len() <= MAX_HELD_BYTES {
                state.held.extend_from_slice(buf);
                return Poll::Ready(Ok(buf.len()));
            }
            // Too long to hold: it goes out now, after what was held of it.
            state.hold_next = false;
        }
        if !state.held.is_empty() {
            if state.queued {
                // Behind an answer that leaves with the thread's others: in order.
                state.held.extend_from_slice(buf);
                return Poll::Ready(Ok(buf.len()));
            }
            match this.poll_drain(cx, &mut state) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        drop(state);
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outbox = this.outbox.clone();
        let mut state = outbox.state.lock();
        if let Err(e) = this.settle(&mut state) {
            return Poll::Ready(Err(e));
        }
        if state.hold_next {
            state.hold_next = false;
            if state.held.is_empty() || state.queued {
                return Poll::Ready(Ok(()));
            }
            state.queued = true;
            if !state
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.waker = Some(cx.waker().clone());
            }
            drop(state);
            let full = QUEUE.with(|q| {
                let mut q = q.borrow_mut();
                q.push(outbox);
                q.len() >= MAX_QUEUED
            });
            if full {
                send_held();
            }
            return Poll::Ready(Ok(()));
        }
        if state.queued {
            // Goes out with the thread's others.
            return Poll::Ready(Ok(()));
        }
        match this.poll_drain(cx, &mut state) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        drop(state);
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outbox = this.outbox.clone();
        let mut state = outbox.state.lock();
        if let Err(e) = this.settle(&mut state) {
            return Poll::Ready(Err(e));
        }
        // Whatever is held goes before the end.
        match this.poll_drain(cx, &mut state) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        drop(state);
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read};
    use std::net::TcpStream as StdStream;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A runtime like a connection thread's: it sends what it holds when it sleeps.
    /// None where the kernel gives no ring: nothing is held there (what
    /// `a_thread_without_a_ring_never_holds` checks).
    fn connection_runtime() -> Option<tokio::runtime::Runtime> {
        send_at_park();
        if !ring_available() {
            eprintln!("no io_uring on this machine: holding is not exercised");
            return None;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(send_held)
            .build()
            .unwrap();
        Some(runtime)
    }

    /// `n` connections: the server's ends as transports, the clients' as std sockets.
    async fn connections(n: usize) -> (Vec<Transport>, Vec<StdStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mut transports, mut clients) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let client = StdStream::connect(addr).unwrap();
            // A read that waits longer fails the test instead of hanging it.
            client
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            clients.push(client);
            let (stream, _) = listener.accept().await.unwrap();
            transports.push(Transport::new(stream, Arc::new(Outbox::default())));
        }
        (transports, clients)
    }

    /// Whether the client has nothing to read yet.
    fn nothing_arrived(client: &StdStream) -> bool {
        client.set_nonblocking(true).unwrap();
        let nothing =
            matches!(client.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        client.set_nonblocking(false).unwrap();
        nothing
    }

    fn read_exactly(client: &mut StdStream, len: usize) -> Vec<u8> {
        let mut got = vec![0u8; len];
        client.read_exact(&mut got).unwrap();
        got
    }

    /// Writes `bytes` as one answer (written and flushed).
    async fn write_answer(t: &mut Transport, bytes: &[u8]) {
        t.write_all(bytes).await.unwrap();
        t.flush().await.unwrap();
    }

    /// Writes `bytes` as one answer held back (on a connection thread with a ring).
    async fn write_held(t: &mut Transport, bytes: &[u8]) {
        assert!(
            t.outbox.hold_next(),
            "a connection thread with a ring holds"
        );
        write_answer(t, bytes).await;
    }

    #[test]
    fn held_answers_wait_for_the_thread_to_sleep_and_then_all_arrive() {
        let Some(runtime) = connection_runtime() else {
            return;
        };
        runtime.block_on(async {
            let (mut transports, mut clients) = connections(3).await;
            for (i, t) in transports.iter_mut().enumerate() {
                write_held(t, format!("answer {i}").as_bytes()).await;
            }
            assert!(
                clients.iter().all(nothing_arrived),
                "held until the thread sleeps"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            for (i, c) in clients.iter_mut().enumerate() {
                assert_eq!(read_exactly(c, 8), format!("answer {i}").as_bytes());
            }
            // The next answer, not held, goes out at once.
            write_answer(&mut transports[1], b"direct").await;
            assert_eq!(read_exactly(&mut clients[1], 6), b"direct");
        });
    }

    #[test]
    fn an_answer_written_behind_a_held_one_keeps_its_place() {
        let Some(runtime) = connection_runtime() else {
            return;
        };
        runtime.block_on(async {
            let (mut transports, mut clients) = connections(1).await;
            let t = &mut transports[0];
            write_held(t, b"first;").await;
            write_answer(t, b"second;").await;
            assert!(nothing_arrived(&clients[0]));
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            assert_eq!(read_exactly(&mut clients[0], 13), b"first;second;");
        });
    }

    #[test]
    fn what_a_full_socket_does_not_take_goes_out_through_tokio() {
        let Some(runtime) = connection_runtime() else {
            return;
        };
        runtime.block_on(async {
            let (mut transports, mut clients) = connections(1).await;
            socket2::SockRef::from(&transports[0].stream)
                .set_send_buffer_size(4096)
                .unwrap();
            socket2::SockRef::from(&clients[0])
                .set_recv_buffer_size(4096)
                .unwrap();
            let answer: Vec<u8> = (0..MAX_HELD_BYTES).map(|i| (i % 251) as u8).collect();
            let t = &mut transports[0];
            write_held(t, &answer).await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            assert!(
                !t.outbox.state.lock().held.is_empty(),
                "the socket took part of it"
            );
            let mut client = clients.pop().unwrap();
            let reader = std::thread::spawn(move || read_exactly(&mut client, MAX_HELD_BYTES));
            // The rest leaves when the connection next writes (or reads).
            t.flush().await.unwrap();
            assert!(t.outbox.state.lock().held.is_empty());
            assert!(reader.join().unwrap() == answer, "every byte, in order");
        });
    }

    #[test]
    fn an_answer_longer_than_the_limit_is_not_held() {
        let Some(runtime) = connection_runtime() else {
            return;
        };
        runtime.block_on(async {
            let (mut transports, mut clients) = connections(1).await;
            let t = &mut transports[0];
            let answer = vec![7u8; MAX_HELD_BYTES + 1];
            let mut client = clients.pop().unwrap();
            let reader = std::thread::spawn(move || read_exactly(&mut client, MAX_HELD_BYTES + 1));
            write_held(t, &answer).await;
            assert!(t.outbox.state.lock().held.is_empty());
            assert!(QUEUE.with(|q| q.borrow().is_empty()), "nothing queued");
            assert!(reader.join().unwrap() == answer);
        });
    }

    #[test]
    fn shutting_down_sends_what_is_held_first() {
        let Some(runtime) = connection_runtime() else {
            return;
        };
        runtime.block_on(async {
            let (mut transports, mut clients) = connections(1).await;
            let t = &mut transports[0];
            write_held(t, b"last answer").await;
            assert!(nothing_arrived(&clients[0]));
            t.shutdown().await.unwrap();
            let mut rest = Vec::new();
            clients[0].read_to_end(&mut rest).unwrap();
            assert_eq!(rest, b"last answer", "the answer, then the end");
        });
    }

    #[test]
    fn a_connection_dropped_before_the_thread_sleeps_sends_nothing() {
        let Some(runtime) = connection_runtime() else {
            return;
        };
        runtime.block_on(async {
            let (mut transports, mut clients) = connections(2).await;
            for t in transports.iter_mut() {
                write_held(t, b"held").await;
            }
            drop(transports.remove(0));
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let mut rest = Vec::new();
            clients[0].read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "closed with nothing sent");
            assert_eq!(read_exactly(&mut clients[1], 4), b"held");
        });
    }

    /// On `runtime`, a connection's answer is not held: it reaches the client at once.
    fn answers_at_once(runtime: tokio::runtime::Runtime) {
        runtime.block_on(async {
            let (mut transports, mut clients) = connections(1).await;
            let t = &mut transports[0];
            assert!(!t.outbox.hold_next());
            write_answer(t, b"at once").await;
            assert_eq!(read_exactly(&mut clients[0], 7), b"at once");
        });
    }

    #[test]
    fn a_thread_without_a_ring_never_holds() {
        std::thread::spawn(|| {
            send_at_park();
            // As when the kernel refuses `io_uring_setup`.
            RING.with(|ring| *ring.borrow_mut() = Some(None));
            answers_at_once(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_park(send_held)
                    .build()
                    .unwrap(),
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_that_does_not_send_at_park_never_holds() {
        std::thread::spawn(|| {
            answers_at_once(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap(),
            );
        })
        .join()
        .unwrap();
    }
}
