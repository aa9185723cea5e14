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
//! where the wire's INSERT woke one. One thread per core, each given connections in
//! turn by the front-ends, sleeps only when none of its connections has anything to do.
//! Calls too long to run in place go to the thread's blocking pool, so a long query
//! does not hold the other connections of its thread.

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;

/// Stack of every connection thread and of their blocking threads: parsing and binding
/// recurse on nested expressions, up to the parser's recursion limit.
const STACK_SIZE: usize = 16 << 20;

/// How long a connection thread waits for its blocking calls when it stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The connection threads. See the module doc.
pub struct ConnectionThreads {
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl ConnectionThreads {
    /// Starts `count` connection threads (at least one).
    pub fn start(count: usize) -> std::io::Result<ConnectionThreads> {
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_stack_size(STACK_SIZE)
                .build()?;
            handles.push(runtime.handle().clone());
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new()
                .name(format!("tissdb-conn-{i}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.wait_for(|s| *s).await;
                    });
                    runtime.shutdown_timeout(STOP_GRACE);
                })?;
            threads.push(thread);
        }
        Ok(ConnectionThreads {
            handles,
            threads,
            stop,
        })
    }

    /// The runtimes of the threads, to spawn connections on (never empty).
    pub fn handles(&self) -> Vec<Handle> {
        self.handles.clone()
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
