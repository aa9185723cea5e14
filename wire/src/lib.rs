//! The PostgreSQL wire front-end: psql and every Postgres driver talk to TissDB through
//! pgwire, and every statement goes to the connection's one engine [`tissdb::Session`].
//!
//! A connection, step by step:
//!
//! 1. The server accepts it and asks [`PgFrontEnd::connection`] for its handlers
//!    ([`connection`]) around a new session ([`session`]); on the connection thread the
//!    server hands it to, [`PgConnection::run`] runs pgwire's message loop over the
//!    socket wrapped as an [`tissdb_net::outbox::Transport`].
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
//! 4. ReadyForQuery carries the session's transaction status after every exchange; an
//!    extended-protocol answer waits for those of the thread's other ready connections
//!    ([`batching`]), and they leave together in one system call ([`tissdb_net::outbox`]).
//! 5. At shutdown the server stops accepting and drops every connection, and
//!    [`PgFrontEnd::wait_idle`] returns once no engine call is running, so the database
//!    can close behind it.

pub mod batching;
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
pub mod streamed;
#[cfg(test)]
mod testing;

use std::net::SocketAddr;
use std::sync::Arc;

use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ConnectionManager, RandomPidSecretKeyGenerator};
use pgwire::messages::PgWireFrontendMessage;
use tissdb::Database;
use tissdb_net::follow::{Follower, Movable, Seat, Served};
use tokio::net::TcpStream;

use crate::connection::ConnectionHandlers;
use crate::session::{InFlight, SessionHandle};
use crate::startup::Startup;

/// Answers a connection past the server's `max_connections` as PostgreSQL does, and
/// closes it: an SSLRequest or GSSENCRequest is declined (`N`, as a server without TLS),
/// the startup packet is read, and the answer is an ErrorResponse (FATAL, 53300, "sorry,
/// too many clients already"), which libpq and the drivers report as it is (libpq sent
/// the error in answer to its SSLRequest says only "error response during SSL
/// exchange"). A cancel request is served, not refused (`canceller`, see
/// [`PgFrontEnd::canceller`]): the connection to cancel is one of those the limit
/// counts, and a cancel is answered by closing. Two seconds at most.
pub async fn refuse_connection(mut socket: TcpStream, canceller: Arc<cancel::Canceller>) {
    use pgwire::api::cancel::CancelHandler;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// SSLRequest's and GSSENCRequest's codes.
    const NEGOTIATIONS: [u32; 2] = [80_877_103, 80_877_104];
    /// CancelRequest's code.
    const CANCEL: u32 = 80_877_102;
    let answer = async {
        for _ in 0..3 {
            let mut len = [0u8; 4];
            socket.read_exact(&mut len).await?;
            let len = u32::from_be_bytes(len) as usize;
            if !(8..=10_000).contains(&len) {
                break;
            }
            let mut packet = vec![0u8; len - 4];
            socket.read_exact(&mut packet).await?;
            let mut code = [0u8; 4];
            code.copy_from_slice(packet.get(..4).unwrap_or(&[0; 4]));
            let code = u32::from_be_bytes(code);
            if code == CANCEL
                && let (Some(pid), Some(key)) = (packet.get(4..8), packet.get(8..))
                && !key.is_empty()
            {
                let mut pid_bytes = [0u8; 4];
                pid_bytes.copy_from_slice(pid);
                let request = pgwire::messages::cancel::CancelRequest::new(
                    i32::from_be_bytes(pid_bytes),
                    pgwire::messages::startup::SecretKey::Bytes(bytes::Bytes::copy_from_slice(key)),
                );
                canceller.on_cancel_request(request).await;
                return Ok(());
            }
            if !NEGOTIATIONS.contains(&code) {
                break;
            }
            socket.write_all(b"N").await?;
        }
        socket.write_all(&too_many_connections()).await?;
        socket.shutdown().await?;
        // Read on until the client closes, so that closing does not reset the connection
        // before it has read the answer.
        let mut sink = [0u8; 1024];
        while socket.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), answer).await;
}

/// The ErrorResponse of [`refuse_connection`].
fn too_many_connections() -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "53300"),
        (b'M', "sorry, too many clients already"),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    message.extend(body);
    message
}

/// What the PostgreSQL front-end's connections share: the cancel keys and flags, and
/// the count of running engine calls.
pub struct PgFrontEnd {
    db: Arc<Database>,
    manager: Arc<ConnectionManager>,
    keys: Arc<RandomPidSecretKeyGenerator>,
    flags: Arc<cancel::CancelFlags>,
    cancel: Arc<cancel::Canceller>,
    in_flight: InFlight,
}

/// One accepted connection, ready to be served.
pub struct PgConnection {
    handlers: ConnectionHandlers,
    peer: SocketAddr,
}

impl PgFrontEnd {
    pub fn new(db: Arc<Database>) -> PgFrontEnd {
        let manager = Arc::new(ConnectionManager::new());
        let flags = Arc::new(cancel::CancelFlags::default());
        let cancel = Arc::new(cancel::Canceller::new(
            DefaultCancelHandler::new(manager.clone()),
            flags.clone(),
        ));
        PgFrontEnd {
            db,
            manager,
            keys: Arc::new(RandomPidSecretKeyGenerator::default()),
            flags,
            cancel,
            in_flight: InFlight::default(),
        }
    }

    /// What serves a cancel request that comes past `max_connections` (see
    /// [`refuse_connection`]).
    pub fn canceller(&self) -> Arc<cancel::Canceller> {
        self.cancel.clone()
    }

    /// The connection from `peer`: a new session and its handlers.
    pub fn connection(&self, peer: SocketAddr) -> PgConnection {
        let session = SessionHandle::new(self.db.clone(), self.in_flight.clone());
        // Startup registers this connection's cancel key with its engine flag.
        let startup = Arc::new(Startup::new(
            self.manager.clone(),
            self.keys.clone(),
            self.flags.clone(),
            session.clone(),
        ));
        PgConnection {
            handlers: ConnectionHandlers::new(session, startup, self.cancel.clone()),
            peer,
        }
    }

    /// Returns once no engine call is running (the connections are gone; a call runs to
    /// its end even when its connection was dropped).
    pub async fn wait_idle(&self) {
        self.in_flight.wait_idle().await;
    }
}

impl PgConnection {
    /// Serves the connection on `socket`, sitting on its thread as `seat`, until the
    /// client leaves (or the future is dropped), or until the connection moves to
    /// another thread ([`tissdb_net::follow`]): then the rest of it is to run there.
    pub async fn run(self, socket: TcpStream, seat: Seat) -> Served {
        let peer = self.peer;
        let follower = Follower::new(seat);
        let outbox = self.handlers.outbox();
        let connection = {
            let follower = follower.clone();
            async move {
                if let Err(e) = serve(socket, self.handlers, follower).await {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            }
        };
        Movable::new(connection, follower, outbox).await
    }
}

/// How long a client has to finish its startup (pgwire's own limit).
const STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// pgwire's connection loop (`pgwire::tokio::process_socket` without TLS), over a
/// [`tissdb_net::outbox::Transport`] instead of the bare socket, so that held answers can leave
/// together ([`tissdb_net::outbox`]): pgwire declines an SSLRequest, then every message goes to
/// pgwire's dispatcher and every error to its error answer, as there. Each message
/// read while the connection is ready for queries informs `follower`, and the
/// connection is busy (it does not move) from a message read to its answer, and
/// through a COPY.
async fn serve(
    socket: TcpStream,
    handlers: ConnectionHandlers,
    follower: Arc<Follower>,
) -> std::io::Result<()> {
    use futures::StreamExt;
    use pgwire::api::ErrorHandler;
    use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
    use pgwire::tokio::server::{MaybeTls, negotiate_tls, process_error, process_message};
    use tokio_util::codec::{Framed, FramedParts};

    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    let negotiated = tokio::select! {
        _ = &mut startup_timeout => return Ok(()),
        negotiated = negotiate_tls::<extended::ParsedStatement>(socket, None) => negotiated?,
    };
    let Some(negotiated) = negotiated else {
        return Ok(());
    };
    let parts = negotiated.into_parts();
    let MaybeTls::Plain(stream) = parts.io else {
        // Without a TLS acceptor pgwire never returns another kind.
        return Ok(());
    };
    let outbox = handlers.outbox();
    let mut io = FramedParts::new(
        tissdb_net::outbox::Transport::new(stream, outbox.clone()),
        parts.codec,
    );
    io.read_buf = parts.read_buf;
    io.write_buf = parts.write_buf;
    let mut socket = Framed::from_parts(io);

    let errors = handlers.error_handler();
    let (query, startup, cancel) = (&handlers.query, &handlers.startup, &handlers.cancel);
    let mut copying = None;
    loop {
        let message = if matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        ) {
            tokio::select! {
                _ = &mut startup_timeout => None,
                message = socket.next() => message,
            }
        } else {
            socket.next().await
        };
        let Some(Ok(message)) = message else {
            break;
        };
        let _busy = follower.busy();
        if matches!(socket.state(), PgWireConnectionState::ReadyForQuery) {
            follower.observe(&outbox);
        }
        let ends_statement = matches!(
            message,
            PgWireFrontendMessage::Query(_) | PgWireFrontendMessage::Sync(_)
        );
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended_exchange = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        if let Err(mut e) = process_message(
            message,
            &mut socket,
            startup.clone(),
            query.clone(),
            query.clone(),
            query.clone(),
            cancel.clone(),
        )
        .await
        {
            errors.on_error(&socket, &mut e);
            let fatal = e.is_fatal();
            process_error(&mut socket, e, extended_exchange).await?;
            if fatal {
                break;
            }
        }
        if is_cancel {
            break;
        }
        if ends_statement {
            tissdb_net::follow::statement_ends();
        }
        copying = match socket.state() {
            PgWireConnectionState::CopyInProgress(_) => copying.or_else(|| Some(follower.busy())),
            _ => None,
        };
    }
    // An answer held when the client sent Terminate right after its Sync goes out
    // before the socket closes (a client that stopped reading gets two seconds).
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::io::AsyncWriteExt::shutdown(socket.get_mut()),
    )
    .await;
    Ok(())
}
