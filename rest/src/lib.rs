//! The REST front-end (axum): collections and documents over HTTP, JSON by default and
//! XML on request, errors as `{"error": {"code": SQLSTATE, "message": ...}}`.
//!
//! Every handler decodes the request, calls one [`Session`] operation on a blocking
//! thread (storage calls fsync), and encodes the answer. Error statuses are chosen in one
//! place, [`error::ApiError`]. [`HttpFrontEnd`] serves each connection (HTTP/1.1,
//! hyper) on the server's connection thread it is handed to; the answer to a GET or a
//! `_query` of a connection sharing its thread with others is held and leaves with the
//! thread's other held answers when it sleeps (`tissdb_net::outbox`). Between requests,
//! a connection moves to the thread running where its client runs
//! (`tissdb_net::follow::Movable`).

mod body;
pub mod csv_text;
mod error;
mod export;
mod handlers;
mod import;
mod statements;
pub mod transactions;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use futures_util::future::Either;
use hyper_util::rt::{TokioIo, TokioTimer};
use tissdb::Database;
use tissdb::company::{Company, Presence};
use tissdb_net::follow::{Busy, Follower, Movable, Seat, Served};
use tissdb_net::outbox::{Outbox, Transport};
use tokio::net::TcpStream;
use tokio::sync::watch;

pub use error::ApiError;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Database>,
    pub transactions: Arc<transactions::Transactions>,
    /// Statements `_query` prepared, for reuse.
    pub(crate) statements: Arc<statements::Statements>,
    /// The server's connection threads, reported by `GET /` (none in a bare router).
    pub(crate) threads: Option<Arc<tissdb_net::follow::Threads>>,
}

/// The handlers' state for the database `db`, served by `threads`.
fn state(db: Arc<Database>, threads: Option<Arc<tissdb_net::follow::Threads>>) -> AppState {
    AppState {
        threads,
        transactions: transactions::Transactions::new(std::time::Duration::from_secs(
            db.config().transaction_idle_timeout,
        )),
        db,
        statements: Arc::default(),
    }
}

/// The REST API's routes.
fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(handlers::server_info))
        .route("/_collections", get(handlers::list_collections))
        .route("/_graph/{graph}/_match", post(handlers::graph_match))
        .route("/_transaction/begin", post(handlers::begin_transaction))
        .route("/_transaction/commit", post(handlers::commit_transaction))
        .route(
            "/_transaction/rollback",
            post(handlers::rollback_transaction),
        )
        .route(
            "/{collection}",
            get(handlers::list_documents)
                .put(handlers::create_collection)
                .delete(handlers::drop_collection)
                .post(import::post_collection),
        )
        .route("/{collection}/_import", post(import::import_endpoint))
        .route("/{collection}/_compact", post(handlers::compact))
        .route("/{collection}/_query", post(handlers::query))
        // Static segments win over `{id}`; ids never start with `_`.
        .route(
            "/{collection}/_index",
            get(handlers::list_indexes).post(handlers::create_index),
        )
        .route("/{collection}/_index/_check", get(handlers::check_indexes))
        .route("/{collection}/_index/{name}", delete(handlers::drop_index))
        .route(
            "/{collection}/{id}",
            get(handlers::get_document)
                .put(handlers::replace_document)
                .delete(handlers::delete_document),
        )
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}

/// A request [`Holding`] answers without the router, with the path's segments as they
/// stand (each non-empty, not starting with `_`, holding no percent escape).
#[derive(Debug, PartialEq, Eq)]
enum Plain<'a> {
    /// `GET /<c>/<id>` with no query string: [`handlers::document_by_id`].
    Document(&'a str, &'a str),
    /// `POST /<c>` with no query string: one document or an import,
    /// [`import::post_to`].
    Post(&'a str),
    /// `POST /<c>/_query` with no query string: [`handlers::query_in`].
    Query(&'a str),
}

/// What the router would do with a request of `method` to `path`, when it is one of the
/// [`Plain`] ones; `None` sends the request through the router.
fn plain_route<'a>(method: &hyper::Method, path: &'a str) -> Option<Plain<'a>> {
    let plain = |segment: &str| {
        !segment.is_empty() && !segment.starts_with('_') && !segment.contains(['/', '%'])
    };
    let rest = path.strip_prefix('/')?;
    let (collection, second) = match rest.split_once('/') {
        Some((c, s)) => (c, Some(s)),
        None => (rest, None),
    };
    if !plain(collection) {
        return None;
    }
    match (method, second) {
        (&hyper::Method::GET, Some(id)) if plain(id) => Some(Plain::Document(collection, id)),
        (&hyper::Method::POST, None) => Some(Plain::Post(collection)),
        (&hyper::Method::POST, Some("_query")) => Some(Plain::Query(collection)),
        _ => None,
    }
}

/// Answers a connection past the server's `max_connections` (`limit`) and closes it:
/// 503 with a JSON error (53300) and `connection: close`, sent at once; then what the
/// client sent is read until it closes (two seconds at most), so that closing does not
/// reset the connection before it has read the answer.
pub async fn refuse_connection(mut socket: TcpStream, limit: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = async {
        socket.write_all(&too_many_connections(limit)).await?;
        socket.shutdown().await?;
        let mut sink = [0u8; 1024];
        while socket.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), answer).await;
}

fn too_many_connections(limit: usize) -> Vec<u8> {
    let body = serde_json::json!({"error": {
        "code": "53300",
        "message": format!("too many connections (max_connections is {limit})"),
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The REST front-end's connections: each serves `app` over HTTP/1.1 (hyper) on the
/// connection thread the server hands it to, so that a request is read, run and
/// answered on one thread, and the WAL flusher that makes a POST durable wakes that
/// thread alone (under `axum::serve` on the multi-threaded runtime it woke an idle
/// worker, which woke the one parked in epoll).
pub struct HttpFrontEnd {
    app: Router,
    state: AppState,
    closing_tx: watch::Sender<bool>,
    idle_timeout: Duration,
}

/// One accepted connection, ready to be served.
pub struct HttpConnection {
    app: Router,
    state: AppState,
    closing: watch::Receiver<bool>,
    peer: SocketAddr,
    idle_timeout: Duration,
}

/// The router, holding back the answers to GET and `_query` requests of a connection that
/// shares its thread with others: they leave with the thread's other held answers when
/// it sleeps (`tissdb_net::outbox`), as the wire front-end's reads do. (A `_query` may
/// write: its answer is held all the same; holding write answers measured neither
/// better nor worse on the wire.)
///
/// A plain GET of a document by id, POST of a document and `_query` ([`Plain`]) go to
/// their handlers without the router: matching, the boxed route's clone and the path
/// extractor were a third of the HTTP stack's work in a GET (3-4% of the server's
/// samples).
#[derive(Clone)]
struct Holding {
    app: Router,
    state: AppState,
    outbox: Arc<Outbox>,
    follower: Arc<Follower>,
}

/// A request's answer, the connection marked busy until it is done (or dropped): it
/// does not move to another thread in the middle ([`Follower::busy`]).
struct Counted<F> {
    answer: F,
    _busy: Busy,
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.answer).poll(cx)
    }
}

/// What [`Holding`] answers with: the router's future, or a [`Plain`] handler's.
type Answer = Either<
    axum::routing::future::RouteFuture<Infallible>,
    Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>,
>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Holding {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Counted<Answer>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        self.follower.observe(&self.outbox);
        Counted {
            answer: self.answer(request),
            _busy: self.follower.busy(),
        }
    }
}

impl Holding {
    /// The answer to `request`.
    fn answer(&self, request: hyper::Request<hyper::body::Incoming>) -> Answer {
        let get = request.method() == hyper::Method::GET;
        let read = get
            || (request.method() == hyper::Method::POST
                && request.uri().path().ends_with("/_query"));
        if read && company().is_some_and(|c| !c.alone()) {
            self.outbox.hold_next();
        }
        let plain = match request.uri().query() {
            None => plain_route(request.method(), request.uri().path()),
            Some(_) => None,
        };
        if let Some(plain) = plain {
            let state = self.state.clone();
            return match plain {
                Plain::Document(collection, id) => {
                    let (collection, id) = (collection.to_owned(), id.to_owned());
                    Either::Right(Box::pin(async move {
                        let (parts, _body) = request.into_parts();
                        let answer = handlers::document_by_id(
                            &state,
                            collection,
                            id,
                            &parts.headers,
                            &parts.uri,
                        )
                        .await;
                        Ok(answer.into_response())
                    }))
                }
                Plain::Post(collection) | Plain::Query(collection) => {
                    let collection = collection.to_owned();
                    let query = matches!(plain, Plain::Query(_));
                    Either::Right(Box::pin(async move {
                        let (parts, body) = request.into_parts();
                        let (headers, body) = (&parts.headers, axum::body::Body::new(body));
                        let answer = match query {
                            true => handlers::query_in(&state, collection, headers, body).await,
                            false => import::post_to(&state, collection, headers, body).await,
                        };
                        Ok(answer.into_response())
                    }))
                }
            };
        }
        Either::Left(tower_service::Service::call(&mut self.app.clone(), request))
    }
}

impl HttpFrontEnd {
    /// The front-end of `db`, whose connections `threads` serve (reported by `GET /`); a
    /// connection that takes longer than `idle_timeout` to send a request's headers
    /// (`http_idle_timeout`) is closed.
    pub fn new(
        db: Arc<Database>,
        idle_timeout: Duration,
        threads: Option<Arc<tissdb_net::follow::Threads>>,
    ) -> HttpFrontEnd {
        let state = state(db, threads);
        HttpFrontEnd {
            app: routes(state.clone()),
            state,
            closing_tx: watch::channel(false).0,
            idle_timeout,
        }
    }

    /// The connection from `peer`.
    pub fn connection(&self, peer: SocketAddr) -> HttpConnection {
        HttpConnection {
            app: self.app.clone(),
            state: self.state.clone(),
            closing: self.closing_tx.subscribe(),
            peer,
            idle_timeout: self.idle_timeout,
        }
    }

    /// Lets every connection finish the request it is on; keep-alive connections close
    /// after it, idle ones at once.
    pub fn close(&self) {
        self.closing_tx.send_replace(true);
    }
}

tokio::task_local! {
    /// The connection being served, among its thread's connections ([`company`]).
    static PRESENCE: Arc<Presence>;
}

/// Counts the connection whose request is running as served in this wake-up and says
/// whom it shares its thread with; `None` outside a connection's task (a test calling
/// the router directly).
pub(crate) fn company() -> Option<Company> {
    PRESENCE.try_with(|p| p.served()).ok()
}

impl HttpConnection {
    /// Serves the connection on `socket`, sitting on its thread as `seat`, until the
    /// client leaves or, after [`HttpFrontEnd::close`], its request in progress is
    /// answered; or until the connection moves to another thread, where the rest of it
    /// is to run (`tissdb_net::follow::Movable`).
    pub async fn run(self, socket: TcpStream, seat: Seat) -> Served {
        let outbox = Arc::new(Outbox::default());
        let follower = Follower::new(seat);
        let HttpConnection {
            app,
            state,
            closing,
            peer,
            idle_timeout,
        } = self;
        let service = Holding {
            app,
            state,
            outbox: outbox.clone(),
            follower: follower.clone(),
        };
        let connection = serve(socket, service, outbox.clone(), closing, peer, idle_timeout);
        Movable::new(connection, follower, outbox).await
    }
}

/// The connection from `peer` on `socket`, answered by `service`, to its end: closed
/// when `closing` turns true once its request in progress is answered, or when a
/// request's headers take longer than `idle_timeout`.
async fn serve(
    socket: TcpStream,
    service: Holding,
    outbox: Arc<Outbox>,
    mut closing: watch::Receiver<bool>,
    peer: SocketAddr,
    idle_timeout: Duration,
) {
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .serve_connection(TokioIo::new(Transport::new(socket, outbox)), service);
    let mut conn = std::pin::pin!(conn);
    // The handlers run inside the connection's task: they find its presence there.
    let presence = Arc::new(Presence::default());
    let ended = PRESENCE
        .scope(presence, async {
            tokio::select! {
                ended = conn.as_mut() => ended,
                () = async { let _ = closing.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        })
        .await;
    if let Err(e) = ended {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::{Plain, plain_route};
    use hyper::Method;

    #[test]
    fn plain_routes_are_plain_segments() {
        let get = |p| plain_route(&Method::GET, p);
        let post = |p| plain_route(&Method::POST, p);
        assert_eq!(get("/docs/42"), Some(Plain::Document("docs", "42")));
        assert_eq!(get("/d/a-b.c"), Some(Plain::Document("d", "a-b.c")));
        assert_eq!(post("/docs"), Some(Plain::Post("docs")));
        assert_eq!(post("/docs/_query"), Some(Plain::Query("docs")));
        for routed in [
            "/",
            "/docs",
            "/docs/",
            "//42",
            "/docs/42/",
            "/docs/42/x",
            "/_collections/x",
            "/docs/_index",
            "/docs/_query",
            "/docs/4%32",
            "/d%6fcs/42",
            "docs/42",
        ] {
            assert_eq!(get(routed), None, "GET {routed}");
        }
        for routed in [
            "/",
            "/docs/",
            "/docs/42",
            "/_transaction/begin",
            "/_collections",
            "/docs/_import",
            "/docs/_index",
            "/docs/_compact",
            "/docs/_query/",
            "/d%6fcs",
            "/d%6fcs/_query",
            "docs",
        ] {
            assert_eq!(post(routed), None, "POST {routed}");
        }
        for method in [Method::PUT, Method::DELETE, Method::HEAD, Method::PATCH] {
            assert_eq!(plain_route(&method, "/docs/42"), None, "{method} /docs/42");
            assert_eq!(plain_route(&method, "/docs"), None, "{method} /docs");
        }
    }
}
