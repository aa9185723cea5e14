//! The REST front-end (axum): collections and documents over HTTP, JSON by default and
//! XML on request, errors as `{"error": {"code": SQLSTATE, "message": ...}}`.
//!
//! Every handler decodes the request, calls one [`Session`] operation on a blocking
//! thread (storage calls fsync), and encodes the answer. Error statuses are chosen in one
//! place, [`error::ApiError`]. [`serve`] runs each connection (HTTP/1.1, hyper) on one
//! of the server's single-threaded connection threads.

mod body;
pub mod csv_text;
mod error;
mod export;
mod handlers;
mod import;
mod statements;
pub mod transactions;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tissdb::Database;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use error::ApiError;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Database>,
    pub transactions: Arc<transactions::Transactions>,
    /// Statements `_query` prepared, for reuse.
    pub(crate) statements: Arc<statements::Statements>,
}

/// The REST API's routes.
pub fn router(db: Arc<Database>) -> Router {
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
        .with_state(AppState {
            transactions: transactions::Transactions::new(std::time::Duration::from_secs(
                db.config().transaction_idle_timeout,
            )),
            db,
            statements: Arc::default(),
        })
}

/// Serves HTTP/1.1 on `listener` with `app` until `stop` turns true (or its sender goes
/// away); then stops accepting, lets every connection finish the request it is on
/// (keep-alive connections close after it) and returns once all are closed.
///
/// Each connection runs on one of `threads`, each in turn: runtimes of single-threaded
/// connection threads, so that a request is read, run and answered on one thread, and
/// the WAL flusher that makes a POST durable wakes that thread alone (on a
/// multi-threaded runtime it woke an idle worker, which woke the one parked in epoll).
/// None given, on the caller's runtime.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    threads: Vec<Handle>,
    mut stop: watch::Receiver<bool>,
) {
    let threads = if threads.is_empty() {
        vec![Handle::current()]
    } else {
        threads
    };
    let mut next_thread = threads.iter().cycle();
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => break,
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
                    let service = TowerToHyperService::new(app.clone());
                    let mut closing = closing.clone();
                    let thread = next_thread
                        .next()
                        .unwrap_or_else(|| unreachable!("threads is not empty"));
                    connections.spawn_on(async move {
                        let socket = match tokio::net::TcpStream::from_std(socket) {
                            Ok(socket) => socket,
                            Err(e) => {
                                tracing::warn!(%peer, "cannot take a connection over: {e}");
                                return;
                            }
                        };
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(socket), service);
                        let mut conn = std::pin::pin!(conn);
                        let ended = tokio::select! {
                            ended = conn.as_mut() => ended,
                            () = async { let _ = closing.wait_for(|c| *c).await; } => {
                                conn.as_mut().graceful_shutdown();
                                conn.await
                            }
                        };
                        if let Err(e) = ended {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    }, thread);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting an HTTP connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
}
