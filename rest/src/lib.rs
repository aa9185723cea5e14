//! The REST front-end (axum): collections and documents over HTTP, JSON by default and
//! XML on request, errors as `{"error": {"code": SQLSTATE, "message": ...}}`.
//!
//! Every handler decodes the request, calls one [`Session`] operation on a blocking
//! thread (storage calls fsync), and encodes the answer. Error statuses are chosen in one
//! place, [`error::ApiError`].

mod body;
pub mod csv_text;
mod error;
mod export;
mod handlers;
mod import;
mod statements;
pub mod transactions;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use tissdb::Database;

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
