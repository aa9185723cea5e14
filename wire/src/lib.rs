//! The PostgreSQL wire front-end: psql and every Postgres driver talk to TissDB through
//! pgwire, and every statement goes to the connection's one engine [`tissdb::Session`].
//!
//! A connection, step by step:
//!
//! 1. [`serve`] accepts it and builds its handlers ([`connection`]) around a new
//!    session ([`session`]), then hands the socket to pgwire on one of the connection
//!    threads' runtimes it was given (the server's), each in turn.
//! 2. [`startup`] refuses TLS, accepts any user and database, sends the server
//!    parameters drivers read, and registers the cancel key.
//! 3. Simple queries ([`simple`]) and extended-protocol messages ([`extended`]) call the
//!    session: in place on the connection thread, or on its blocking pool (under
//!    `block_in_place` where the runtime is multi-threaded, as in unit tests; see
//!    [`session`]; which statements run in place: [`quick_reads`]). A statement that
//!    may write has its writes deferred and awaits their fsync before it answers
//!    ([`session::SessionHandle::run_write`]). Results become row descriptions ([`schema`]) and
//!    data rows ([`encode`], [`response`]); bound parameters become values ([`decode`]);
//!    engine errors keep their SQLSTATE ([`error`]). COPY data moves through [`copy`].
//! 4. ReadyForQuery carries the session's transaction status after every exchange.
//! 5. When `stop` turns true, [`serve`] stops accepting, closes every connection, and
//!    returns once no engine call is running, so the database can close behind it.

pub mod cancel;
pub mod connection;
pub mod copy;
pub mod decode;
pub mod encode;
pub mod error;
pub mod extended;
pub mod held;
pub mod quick_reads;
pub mod response;
pub mod schema;
pub mod session;
pub mod simple;
pub mod startup;
#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::time::Duration;

use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ConnectionManager, RandomPidSecretKeyGenerator};
use tissdb::Database;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::connection::ConnectionHandlers;
use crate::session::{InFlight, SessionHandle};
use crate::startup::Startup;

/// Resolves once `stop` is true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Serves PostgreSQL clients on `listener` until `stop` turns true (or its sender goes
/// away), then closes all connections and waits for running engine calls to finish.
/// Each connection runs on one of `threads` (runtimes of single-threaded connection
/// threads, see the module doc), each in turn; none given, on the caller's runtime.
pub async fn serve(
    listener: TcpListener,
    db: Arc<Database>,
    threads: Vec<Handle>,
    mut stop: watch::Receiver<bool>,
) {
    let manager = Arc::new(ConnectionManager::new());
    let keys = Arc::new(RandomPidSecretKeyGenerator::default());
    let flags = Arc::new(cancel::CancelFlags::default());
    let cancel = Arc::new(cancel::Canceller::new(
        DefaultCancelHandler::new(manager.clone()),
        flags.clone(),
    ));
    let in_flight = InFlight::default();
    let threads = if threads.is_empty() {
        vec![Handle::current()]
    } else {
        threads
    };
    let mut next_thread = threads.iter().cycle();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    // The socket moves to its connection thread's reactor.
                    let socket = match socket.into_std() {
                        Ok(socket) => socket,
                        Err(e) => {
                            tracing::warn!(%peer, "cannot hand a connection over: {e}");
                            continue;
                        }
                    };
                    let session = SessionHandle::new(db.clone(), in_flight.clone());
                    // Startup registers this connection's cancel key with its engine flag.
                    let startup = Arc::new(Startup::new(
                        manager.clone(),
                        keys.clone(),
                        flags.clone(),
                        session.cancel_target(),
                    ));
                    let handlers = ConnectionHandlers::new(session, startup, cancel.clone());
                    connections.spawn_on(async move {
                        let socket = match tokio::net::TcpStream::from_std(socket) {
                            Ok(socket) => socket,
                            Err(e) => {
                                tracing::warn!(%peer, "cannot take a connection over: {e}");
                                return;
                            }
                        };
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    }, next_thread.next().unwrap_or_else(|| unreachable!("threads is not empty")));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a PostgreSQL connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let open = connections.len();
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    in_flight.wait_idle().await;
    tracing::debug!(closed = open, "PostgreSQL listener stopped");
}
