//! One handler per route: decode, call the session (on a blocking thread, or in place for
//! a read by id), encode.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tissdb::catalog::{self, IndexDef};
use tissdb::doc::Value;
use tissdb::doc::{json as json_codec, xml};
use tissdb::query::SqlType;
use tissdb::session::Replaced;
use tissdb::storage::durability::{self, WhenIdle};
use tissdb::{Session, SqlState};

use crate::AppState;
use crate::body::{self, Format};
use crate::error::ApiError;
use crate::export::{self, Out};
use crate::transactions;

type ApiResult = Result<Response, ApiError>;

/// A session for one request. Its queries' json columns may come encoded: every row
/// set reaches the client through [`outcome_response`], which writes or decodes them.
fn rest_session(state: &AppState) -> Session {
    let mut session = Session::new(state.db.clone());
    session.set_json_encoded_results(true);
    session
}

/// Runs a session call on the blocking pool (storage calls read files). Its writes are
/// deferred: the thread returns without sleeping through the fsync, and this returns once
/// they are durable and visible (see `tissdb::storage::durability`).
async fn run<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Session) -> tissdb::Result<T> + Send + 'static,
{
    let session = rest_session(state);
    let (out, published) = tokio::task::spawn_blocking(move || durability::deferred(|| f(session)))
        .await
        .map_err(task_failed)?;
    if let Some(published) = published {
        published.await.map_err(ApiError::from)?;
    }
    out.map_err(ApiError::from)
}

/// Runs a document call in the transaction the request names (`X-Transaction-ID`), or
/// on its own when it names none.
pub(crate) async fn run_doc<T, F>(
    state: &AppState,
    headers: &HeaderMap,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Session) -> tissdb::Result<T> + Send + 'static,
{
    match transactions::requested(headers)? {
        None => run(state, move |mut s| f(&mut s)).await,
        Some(id) => {
            let txns = state.transactions.clone();
            tokio::task::spawn_blocking(move || txns.run(&id, f))
                .await
                .map_err(task_failed)?
        }
    }
}

/// [`run_doc`] for a call on one document or a few by id (a read by id, a POST, PUT or
/// DELETE of one document): outside a transaction it runs right on the request's task,
/// as the wire protocol runs point lookups and quick writes, since the hand-off to a
/// blocking thread and back costs more than the call (GET by id at 8 connections: 29k
/// requests/s through the blocking pool, 37k in place). Its writes are deferred (the
/// document is already decoded and within max_document_size, so the call is short once
/// it need not sleep through the fsync), and the fsync is awaited before the answer;
/// unless the connection has its thread to itself, in which case a write that finds
/// the WAL idle writes it right here (see `tissdb::company`). A panic becomes a 500.
pub(crate) async fn run_in_place<T, F>(
    state: &AppState,
    headers: &HeaderMap,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Session) -> tissdb::Result<T> + Send + 'static,
{
    if transactions::requested(headers)?.is_some() {
        return run_doc(state, headers, f).await;
    }
    let mut session = rest_session(state);
    let when_idle = crate::company().map_or(WhenIdle::Defer, |c| c.when_idle());
    let (out, published) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        durability::deferred_with(when_idle, || f(&mut session))
    }))
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            SqlState::INTERNAL_ERROR,
            "the request failed unexpectedly",
        )
    })?;
    if let Some(published) = published {
        published.await.map_err(ApiError::from)?;
    }
    out.map_err(ApiError::from)
}

fn task_failed(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        SqlState::INTERNAL_ERROR,
        format!("request task failed: {e}"),
    )
}

/// The transaction id of a commit or rollback: the `X-Transaction-ID` header or a JSON
/// body `{"transaction_id": "..."}`.
async fn ending_id(state: &AppState, headers: &HeaderMap, body: Body) -> Result<String, ApiError> {
    if let Some(id) = transactions::requested(headers)? {
        return Ok(id);
    }
    let bytes = body::read_body(headers, body, state.db.config().max_body_size as usize).await?;
    let missing = || {
        bad(
            "name the transaction: header X-Transaction-ID or body {\"transaction_id\": \"...\"}"
                .into(),
        )
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(missing());
    }
    let v = parse_json(&bytes)?;
    v.get("transaction_id")
        .and_then(|i| i.as_str())
        .map(str::to_string)
        .ok_or_else(missing)
}

/// `POST /_transaction/begin`: answers `{"transaction_id": ...}` (201).
pub async fn begin_transaction(State(state): State<AppState>) -> ApiResult {
    let id = state.transactions.begin(&state.db)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "transaction_id": id,
            "idle_timeout_seconds": state.db.config().transaction_idle_timeout,
        })),
    )
        .into_response())
}

/// `POST /_transaction/commit`: 200 once durable; 409 (40001) if it could not be
/// serialized, and then nothing of it was written.
pub async fn commit_transaction(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = ending_id(&state, &headers, body).await?;
    let entry = state.transactions.take(&id)?;
    let committed = tokio::task::spawn_blocking(move || -> Result<bool, ApiError> {
        let mut e = entry.lock().map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                SqlState::INTERNAL_ERROR,
                "a transaction's lock was poisoned by a failed request",
            )
        })?;
        e.session.check_transaction_age()?;
        Ok(e.session.commit()?)
    })
    .await
    .map_err(task_failed)??;
    if !committed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            SqlState::IN_FAILED_SQL_TRANSACTION,
            "the transaction had failed and was rolled back",
        ));
    }
    Ok(Json(json!({ "committed": true, "transaction_id": id })).into_response())
}

/// `POST /_transaction/rollback`: forgets every write of the transaction.
pub async fn rollback_transaction(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = ending_id(&state, &headers, body).await?;
    drop(state.transactions.take(&id)?);
    Ok(Json(json!({ "rolled_back": true, "transaction_id": id })).into_response())
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("invalid path: {rejection}"),
    )
}

pub(crate) fn one(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(p)| p).map_err(path_error)
}

fn two(path: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), ApiError> {
    path.map(|Path(p)| p).map_err(path_error)
}

pub async fn server_info(State(state): State<AppState>) -> ApiResult {
    let collections = run(&state, |s| Ok(s.collections().len())).await?;
    let wal = state.db.storage().wal_stats();
    let memory = state.db.storage().memory_use();
    Ok(Json(json!({
        "name": "TissDB",
        "version": env!("CARGO_PKG_VERSION"),
        "collections": collections,
        "template_runs": state.db.template_runs(),
        "wal": {
            "records": wal.records,
            "bytes": wal.bytes,
            "writes": wal.writes,
            "writes_by_committers": wal.writes_by_committers,
        },
        "memory": {
            "memtables_bytes": memory.memtables,
            "block_cache_bytes": memory.block_cache,
            "index_cache_bytes": memory.index_cache,
        },
        "connection_threads": state.threads.as_ref().map(|threads| json!({
            "open": threads.open(),
            "moves": threads.moves(),
        })),
    }))
    .into_response())
}

pub async fn list_collections(State(state): State<AppState>) -> ApiResult {
    let names = run(&state, |s| {
        Ok(s.collections()
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "collections": names })).into_response())
}

pub async fn create_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let name = one(path)?;
    let created = run(&state, move |s| s.create_collection(&name)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "collection": created.name })),
    )
        .into_response())
}

pub async fn drop_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let name = one(path)?;
    let dropped = name.clone();
    run(&state, move |s| s.drop_collection(&name)).await?;
    Ok(Json(json!({ "dropped": dropped })).into_response())
}

/// `POST /<collection>` with one document (see [`crate::import::post_collection`], which
/// reads the body and tells one document from an import).
pub(crate) async fn insert_one(
    state: &AppState,
    headers: &HeaderMap,
    collection: String,
    format: Format,
    bytes: &[u8],
) -> ApiResult {
    let doc = body::decode_document(format, bytes, &state.db.limits())?;
    let answer_format = body::response_format(headers);
    run_in_place(state, headers, move |s| {
        s.insert_document_answered(&collection, doc, |id, stored| {
            body::document_response(StatusCode::CREATED, answer_format, id, stored)
        })
    })
    .await
}

/// `GET /<collection>/<id>[?expand=f1,f2]`: the document; each field named in `expand`
/// that holds a reference (`{"$ref": "collection/id"}`) is replaced by the document it
/// names (with its `id`), or null if that document does not exist.
pub async fn get_document(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: axum::extract::Request,
) -> ApiResult {
    let (collection, id) = two(path)?;
    document_by_id(&state, collection, id, request.headers(), request.uri()).await
}

/// [`get_document`] once the collection and id are read from the path (by the router, or
/// by [`crate::plain_document_path`] for a GET the router need not see).
pub(crate) async fn document_by_id(
    state: &AppState,
    collection: String,
    id: String,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> ApiResult {
    // The request's headers and query are read in place: the extractors for them copy
    // the whole header map and parse an absent query (a tenth of a GET's own work).
    let params = match uri.query() {
        None => HashMap::new(),
        Some(_) => {
            Query::<HashMap<String, String>>::try_from_uri(uri)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("malformed query string: {e}"),
                    )
                })?
                .0
        }
    };
    if let Some(unknown) = params.keys().find(|k| *k != "expand") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            SqlState::INVALID_PARAMETER_VALUE,
            format!("unknown query parameter {unknown:?} (known: expand)"),
        ));
    }
    let expand: Vec<String> = params
        .get("expand")
        .map(|e| {
            e.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if expand.len() > 32 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            SqlState::INVALID_PARAMETER_VALUE,
            "expand names at most 32 fields",
        ));
    }
    let not_found = |id: &str| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            SqlState::NO_DATA,
            format!("no document with id \"{id}\""),
        )
    };
    let format = body::response_format(headers);
    if expand.is_empty() && format == Format::Json {
        let lookup_id = id.clone();
        let mut answer = body::JsonAnswer { id: id.clone() };
        let text = run_in_place(state, headers, move |s| {
            s.get_document_shaped(&collection, &lookup_id, &mut answer)
        })
        .await?;
        return match text {
            Some(text) => Ok(body::json_text_response(StatusCode::OK, text)),
            None => Err(not_found(&id)),
        };
    }
    let lookup_id = id.clone();
    let doc = run_in_place(state, headers, move |s| {
        let Some(mut doc) = s.get_document(&collection, &lookup_id)? else {
            return Ok(None);
        };
        for field in &expand {
            let Some((target, target_id)) = doc
                .get(field)
                .and_then(tissdb::query::functions::reference_parts)
            else {
                continue;
            };
            let expanded = match s.get_document(&target, &target_id) {
                Ok(Some(d)) => {
                    let mut with_id = tissdb::doc::Object::default();
                    with_id.insert("id".into(), Value::String(target_id.clone()));
                    with_id.extend(d);
                    Value::Object(Box::new(with_id))
                }
                Ok(None) | Err(tissdb::Error::NotFound { .. }) => Value::Null,
                Err(e) => return Err(e),
            };
            doc.insert(field.clone(), expanded);
        }
        Ok(Some(doc))
    })
    .await?;
    match doc {
        Some(doc) => Ok(body::document_response(StatusCode::OK, format, &id, &doc)),
        None => Err(not_found(&id)),
    }
}

pub async fn replace_document(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (collection, id) = two(path)?;
    let format = body::request_format(&headers)?;
    let bytes = body::read_body(&headers, body, state.db.config().max_body_size as usize).await?;
    let doc = body::decode_document(format, &bytes, &state.db.limits())?;
    let store_id = id.clone();
    let (outcome, stored) = run_in_place(&state, &headers, move |s| {
        s.replace_document(&collection, &store_id, doc)
    })
    .await?;
    let status = match outcome {
        Replaced::Created => StatusCode::CREATED,
        Replaced::Updated => StatusCode::OK,
    };
    Ok(body::document_response(
        status,
        body::response_format(&headers),
        &id,
        &stored,
    ))
}

pub async fn delete_document(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let (collection, id) = two(path)?;
    let deleted = id.clone();
    run_in_place(&state, &headers, move |s| {
        s.delete_document(&collection, &id)
    })
    .await?;
    Ok(Json(json!({ "deleted": deleted })).into_response())
}

pub async fn list_documents(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    let collection = one(path)?;
    let limit = match params.get("limit") {
        None => state.db.config().default_page_size,
        Some(l) => l.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                SqlState::INVALID_PARAMETER_VALUE,
                format!("limit must be a positive integer, not {l:?}"),
            )
        })?,
    };
    if let Some(unknown) = params.keys().find(|k| *k != "limit" && *k != "after") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            SqlState::INVALID_PARAMETER_VALUE,
            format!("unknown query parameter {unknown:?} (known: limit, after)"),
        ));
    }
    let after = params.get("after").cloned();
    let (page, columns, table) = run_doc(&state, &headers, move |s| {
        let page = s.list_documents(&collection, after.as_deref(), limit)?;
        let c = s.database().catalog().get(&collection)?;
        let columns: Vec<String> = c.sql_columns().into_iter().map(|(n, _)| n).collect();
        Ok((page, columns, c.kind == catalog::Kind::Table))
    })
    .await?;
    Ok(match export::wanted(&headers) {
        Out::Json => {
            let docs: Vec<_> = page
                .documents
                .iter()
                .map(|(id, doc)| json_codec::document_to_json(id, doc))
                .collect();
            Json(json!({ "documents": docs, "next_after": page.next_after })).into_response()
        }
        Out::Xml => {
            let mut r = body::xml_response(StatusCode::OK, xml::write_documents(&page.documents));
            export::set_next_after(&mut r, page.next_after.as_deref());
            r
        }
        Out::Csv => export::csv_response(
            export::documents_csv(&columns, table, &page.documents),
            page.next_after.as_deref(),
        ),
    })
}

pub async fn compact(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let collection = one(path)?;
    let segments = run(&state, move |s| {
        // The collection must exist; the compaction covers the whole store.
        s.database().catalog().id(&collection)?;
        s.compact()?;
        Ok(s.database().storage().segment_sizes().len())
    })
    .await?;
    Ok(Json(json!({ "compacted": true, "segments": segments })).into_response())
}

/// 400 with 22023: a request body that does not say what the endpoint needs.
fn bad(msg: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        SqlState::INVALID_PARAMETER_VALUE,
        msg,
    )
}

/// The request body as JSON (400 with 22032 when it is not).
async fn json_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, ApiError> {
    let bytes = body::read_body(headers, body, state.db.config().max_body_size as usize).await?;
    parse_json(&bytes)
}

/// Bytes as JSON (400 with 22032 when they are not).
fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            SqlState::INVALID_JSON_TEXT,
            format!("malformed JSON: {e}"),
        )
    })
}

/// `POST /<collection>/_query` with `{"query": "...", "params": [...]}`: a SELECT (or
/// RETURNING) answers a JSON array of objects with exactly the projected keys; other
/// statements answer `{"affected": n}`.
pub async fn query(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: axum::extract::Request,
) -> ApiResult {
    let collection = one(path)?;
    // The headers are read in place (the HeaderMap extractor copies them all).
    let (parts, body) = request.into_parts();
    query_in(&state, collection, &parts.headers, body).await
}

/// [`query`] once the collection is read from the path (by the router, or by
/// [`crate::plain_route`] for a `_query` the router need not see).
pub(crate) async fn query_in(
    state: &AppState,
    collection: String,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let request = json_request(state, headers, body).await?;
    let sql = request
        .get("query")
        .and_then(|q| q.as_str())
        .ok_or_else(|| bad("the body must be {\"query\": \"...\", \"params\": [...]}".into()))?
        .to_string();
    let params = match request.get("params") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|p| json_codec::from_json(p.clone()))
            .collect::<tissdb::Result<Vec<_>>>()?,
        Some(_) => return Err(bad("params must be an array".into())),
    };
    if let Some(extra) = request
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "query" && *k != "params"))
    {
        return Err(bad(format!(
            "unknown field {extra:?} (known: query, params)"
        )));
    }
    let in_transaction = transactions::requested(headers)?.is_some();
    // A parameter's JSON type is its declared type; strings and nulls stay untyped so
    // that the statement's context decides (a string may be a timestamp).
    let hints: Vec<Option<SqlType>> = params
        .iter()
        .map(|p| match p {
            Value::Null | Value::String(_) => None,
            other => Some(SqlType::of_value(other)),
        })
        .collect();
    // Outside a transaction, a statement prepared before is reused; a point read then
    // runs right on this task, as GET by id does.
    let version = state.db.catalog().version();
    let kept = match in_transaction {
        true => None,
        false => state.statements.get(&sql, &hints, version),
    };
    let check_params = move |prepared: &tissdb::session::Prepared, params: &[Value]| {
        if params.len() != prepared.param_refs {
            return Err(tissdb::Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "params supplies {} value(s), but the statement references {}",
                    params.len(),
                    prepared.param_refs
                ),
            ));
        }
        Ok(())
    };
    let outcome = match kept {
        Some(prepared) => {
            let point = prepared.point;
            let run = move |s: &mut Session| {
                s.database().catalog().id(&collection)?;
                check_params(&prepared, &params)?;
                s.execute(&prepared, &params)
            };
            match point {
                true => run_in_place(state, headers, run).await?,
                false => run_doc(state, headers, run).await?,
            }
        }
        None => {
            let statements = state.statements.clone();
            run_doc(state, headers, move |s| {
                s.database().catalog().id(&collection)?;
                let prepared = Arc::new(s.prepare(&sql, &hints)?);
                let controls = prepared
                    .statement
                    .as_ref()
                    .is_some_and(tissdb::query::statement::controls_transaction);
                if in_transaction && controls {
                    return Err(tissdb::Error::invalid(
                        SqlState::ACTIVE_SQL_TRANSACTION,
                        "transaction control statements cannot run inside a REST transaction; use /_transaction/commit or /_transaction/rollback",
                    ));
                }
                check_params(&prepared, &params)?;
                if !in_transaction && !controls {
                    statements.put(&sql, &hints, version, prepared.clone());
                }
                s.execute(&prepared, &params)
            })
            .await?
        }
    };
    outcome_response(outcome, export::wanted(headers))
}

/// A statement's outcome as JSON: rows as an array of objects with exactly the projected
/// keys, other statements as `{"affected": n, "command": tag}`.
///
/// Json columns may come encoded (see [`tissdb::query::Column::json_encoded`]): the JSON
/// answer without document paths writes them from their encoding, the others decode them
/// first.
fn outcome_response(outcome: tissdb::query::Outcome, out_format: Out) -> ApiResult {
    Ok(match outcome {
        tissdb::query::Outcome::Rows { columns, rows, .. }
            if out_format == Out::Json && columns.iter().all(|c| c.path.is_empty()) =>
        {
            body::json_text_response(StatusCode::OK, rows_json_text(&columns, &rows)?)
        }
        tissdb::query::Outcome::Rows {
            columns, mut rows, ..
        } if out_format == Out::Csv => {
            tissdb::query::decode_json_encoded(&mut rows, &columns)?;
            let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            export::csv_response(export::rows_csv(&names, &rows), None)
        }
        tissdb::query::Outcome::Rows {
            columns, mut rows, ..
        } => {
            tissdb::query::decode_json_encoded(&mut rows, &columns)?;
            let json_rows: Vec<serde_json::Value> = rows
                .into_iter()
                .map(|row| {
                    let mut obj = serde_json::Map::new();
                    for (c, v) in columns.iter().zip(row) {
                        insert_column(&mut obj, &c.path, &c.name, json_codec::to_json(&v));
                    }
                    serde_json::Value::Object(obj)
                })
                .collect();
            if out_format == Out::Xml {
                // JSON with markers carries every type; as values again for XML.
                let objects: Vec<tissdb::doc::Object> = json_rows
                    .into_iter()
                    .filter_map(|r| match json_codec::from_json(r) {
                        Ok(Value::Object(o)) => Some(*o),
                        _ => None,
                    })
                    .collect();
                return Ok(body::xml_response(
                    StatusCode::OK,
                    xml::write_rows(&objects),
                ));
            }
            Json(serde_json::Value::Array(json_rows)).into_response()
        }
        tissdb::query::Outcome::Command { tag } => {
            let affected = tag.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok());
            match affected {
                Some(n) => Json(json!({ "affected": n, "command": tag })).into_response(),
                None => Json(json!({ "command": tag })).into_response(),
            }
        }
    })
}

/// `POST /_graph/<graph>/_match` with `{"match": "(a IS person)-[IS knows]->(b)",
/// "where": "a.id = 1", "columns": ["a.name AS a", "b.name AS b"]}` (`where` optional):
/// the rows of the GRAPH_TABLE query they make, as `_query` answers them.
pub async fn graph_match(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let graph = one(path)?;
    let request = json_request(&state, &headers, body).await?;
    let usage = "the body must be {\"match\": \"(a IS label)-[IS label]->(b)\", \"where\": \"...\", \"columns\": [\"a.x AS x\", ...]}";
    let Some(obj) = request.as_object() else {
        return Err(bad(usage.into()));
    };
    if let Some(extra) = obj
        .keys()
        .find(|k| !["match", "where", "columns"].contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown field {extra:?} (known: match, where, columns)"
        )));
    }
    let pattern = obj
        .get("match")
        .and_then(|m| m.as_str())
        .ok_or_else(|| bad(usage.into()))?;
    let columns: Vec<&str> = match obj.get("columns") {
        Some(serde_json::Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|c| {
                c.as_str()
                    .ok_or_else(|| bad("columns must be strings".into()))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad(usage.into())),
    };
    let condition = match obj.get("where") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(w)) => format!(" WHERE {w}"),
        Some(_) => return Err(bad("where must be a string".into())),
    };
    // Each part must stay inside the GRAPH_TABLE parentheses.
    for part in [pattern, condition.as_str()]
        .into_iter()
        .chain(columns.iter().copied())
    {
        if part.contains(';') || !balanced(part) {
            return Err(bad(format!("unbalanced parentheses or a ';' in {part:?}")));
        }
    }
    let sql = format!(
        "SELECT * FROM GRAPH_TABLE (\"{}\" MATCH {pattern}{condition} COLUMNS ({})) AS g",
        graph.replace('"', "\"\""),
        columns.join(", ")
    );
    let outcome = run_doc(&state, &headers, move |s| {
        let prepared = s.prepare(&sql, &[])?;
        s.execute(&prepared, &[])
    })
    .await?;
    outcome_response(outcome, export::wanted(&headers))
}

/// Whether the parentheses and brackets of `s` (outside quotes) balance.
fn balanced(s: &str) -> bool {
    let mut depth: i64 = 0;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && quote.is_none()
}

/// What `POST /<collection>/_index` asks for.
struct IndexRequest {
    name: Option<String>,
    fields: Vec<Vec<String>>,
    unique: bool,
}

/// Decodes `{"field": "a.b"}` or `{"fields": ["a", "b.c"]}` with optional `"name"` and
/// `"unique"` (a `null` is the same as leaving the key out). A field is a path written
/// with dots; the engine checks the steps.
fn index_request(bytes: &[u8]) -> Result<IndexRequest, ApiError> {
    const SHAPE: &str = "the body must be {\"field\": \"a.b\"} or {\"fields\": [\"a\", \"b.c\"]}, \
                         with optional \"name\" (text) and \"unique\" (boolean)";
    let request = parse_json(bytes)?;
    let serde_json::Value::Object(request) = request else {
        return Err(bad(SHAPE.into()));
    };
    if let Some(extra) = request
        .keys()
        .find(|k| !matches!(k.as_str(), "field" | "fields" | "name" | "unique"))
    {
        return Err(bad(format!(
            "unknown field {extra:?} (known: field, fields, name, unique)"
        )));
    }
    let present = |key: &str| request.get(key).filter(|v| !v.is_null());
    let path = |v: &serde_json::Value| -> Result<Vec<String>, ApiError> {
        match v {
            serde_json::Value::String(s) => Ok(s.split('.').map(str::to_string).collect()),
            other => Err(bad(format!("an index field must be text, not {other}"))),
        }
    };
    let fields = match (present("field"), present("fields")) {
        (Some(f), None) => vec![path(f)?],
        (None, Some(serde_json::Value::Array(items))) if !items.is_empty() => {
            items.iter().map(path).collect::<Result<_, _>>()?
        }
        (None, Some(serde_json::Value::Array(_))) => {
            return Err(bad("\"fields\" must name at least one field".into()));
        }
        (None, Some(other)) => {
            return Err(bad(format!(
                "\"fields\" must be an array of text, not {other}"
            )));
        }
        (Some(_), Some(_)) => return Err(bad("give \"field\" or \"fields\", not both".into())),
        (None, None) => return Err(bad(SHAPE.into())),
    };
    let name = match present("name") {
        None => None,
        Some(serde_json::Value::String(n)) => Some(n.clone()),
        Some(other) => return Err(bad(format!("\"name\" must be text, not {other}"))),
    };
    let unique = match present("unique") {
        None => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => return Err(bad(format!("\"unique\" must be a boolean, not {other}"))),
    };
    Ok(IndexRequest {
        name,
        fields,
        unique,
    })
}

/// An index's fields as REST shows them: dotted paths.
fn dotted_fields(def: &IndexDef) -> Vec<String> {
    def.fields.iter().map(|p| catalog::dotted(p)).collect()
}

/// `POST /<collection>/_index`: builds an index over the existing documents and answers
/// 201 once it is ready.
pub async fn create_index(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let collection = one(path)?;
    if body::request_format(&headers)? != Format::Json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            SqlState::FEATURE_NOT_SUPPORTED,
            "an index request is JSON",
        ));
    }
    let bytes = body::read_body(&headers, body, state.db.config().max_body_size as usize).await?;
    let request = index_request(&bytes)?;
    let table = collection.clone();
    let (def, _) = run(&state, move |s| {
        s.create_index(
            &table,
            request.name.as_deref(),
            request.fields,
            request.unique,
            false,
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": def.name,
            "collection": collection,
            "fields": dotted_fields(&def),
            "unique": def.unique,
        })),
    )
        .into_response())
}

/// `GET /<collection>/_index`: the collection's ready indexes.
pub async fn list_indexes(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let collection = one(path)?;
    let table = collection.clone();
    let defs = run(&state, move |s| s.indexes(&table)).await?;
    let indexes: Vec<serde_json::Value> = defs
        .iter()
        .map(|def| {
            json!({
                "name": def.name,
                "fields": dotted_fields(def),
                "unique": def.unique,
                "definition": def.definition(&collection),
            })
        })
        .collect();
    Ok(Json(json!({ "indexes": indexes })).into_response())
}

/// `DELETE /<collection>/_index/<name>`: 404 (42704) unless the collection has that index.
pub async fn drop_index(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (collection, name) = two(path)?;
    let dropped = name.clone();
    run(&state, move |s| {
        if !s.indexes(&collection)?.iter().any(|d| d.name == name) {
            return Err(tissdb::Error::not_found(
                SqlState::UNDEFINED_OBJECT,
                format!("index \"{name}\" does not exist on \"{collection}\""),
            ));
        }
        s.drop_index(&name, false)
    })
    .await?;
    Ok(Json(json!({ "dropped": dropped })).into_response())
}

/// `GET /<collection>/_index/_check`: verifies every index against the documents; each
/// index's entry count, or XX001 (500) naming the first difference.
pub async fn check_indexes(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let collection = one(path)?;
    let report = run(&state, move |s| s.check_indexes(&collection)).await?;
    let indexes: Vec<serde_json::Value> = report
        .into_iter()
        .map(|(name, entries)| json!({ "name": name, "entries": entries }))
        .collect();
    Ok(Json(json!({ "indexes": indexes })).into_response())
}

/// The JSON array of `rows`, written without a JSON tree, for columns without document
/// paths: each row an object keyed as [`insert_column`] keys it.
fn rows_json_text(
    columns: &[tissdb::query::Column],
    rows: &[tissdb::query::Row],
) -> tissdb::Result<Vec<u8>> {
    let mut keys: Vec<String> = Vec::with_capacity(columns.len());
    for c in columns {
        let mut key = c.name.clone();
        let mut n = 1;
        while keys.contains(&key) {
            n += 1;
            key = format!("{}_{n}", c.name);
        }
        keys.push(key);
    }
    let mut text = Vec::with_capacity(2 + rows.len() * 128);
    text.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        let fields = keys.iter().zip(columns).zip(row);
        json_codec::write_fields_encoded(
            fields.map(|((k, c), v)| (k.as_str(), v, c.json_encoded)),
            &mut text,
        )?;
    }
    text.push(b']');
    Ok(text)
}

/// Puts a result column into a JSON row: under its document path, nested, when it has
/// one and the path is free; otherwise under its name. A name already taken (two
/// `?column?`s, an alias equal to another column) gets `_2`, `_3`, ... so no value is lost.
fn insert_column(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    path: &[String],
    name: &str,
    value: serde_json::Value,
) {
    let value = match try_insert_nested(obj, path, value) {
        Ok(()) => return,
        Err(v) => v,
    };
    let mut key = name.to_string();
    let mut n = 1;
    while obj.contains_key(&key) {
        n += 1;
        key = format!("{name}_{n}");
    }
    obj.insert(key, value);
}

/// Inserts `value` at `path`, creating objects on the way; gives the value back when the
/// path is empty or runs into something that is not an object or is already set.
fn try_insert_nested(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    path: &[String],
    value: serde_json::Value,
) -> Result<(), serde_json::Value> {
    let Some((last, init)) = path.split_last() else {
        return Err(value);
    };
    let mut cur = obj;
    for step in init {
        let slot = cur
            .entry(step.clone())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        match slot.as_object_mut() {
            Some(next) => cur = next,
            None => return Err(value),
        }
    }
    if cur.contains_key(last) {
        return Err(value);
    }
    cur.insert(last.clone(), value);
    Ok(())
}

pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        SqlState::NO_DATA,
        "no such endpoint; see the README for the REST API",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        SqlState::FEATURE_NOT_SUPPORTED,
        "method not allowed on this endpoint",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tissdb::query::{Column, Row};

    /// The rows as the JSON tree path answers them.
    fn via_tree(columns: &[Column], rows: &[Row]) -> String {
        let json_rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| {
                let mut obj = serde_json::Map::new();
                for (c, v) in columns.iter().zip(row) {
                    insert_column(&mut obj, &c.path, &c.name, json_codec::to_json(v));
                }
                serde_json::Value::Object(obj)
            })
            .collect();
        serde_json::to_string(&json_rows).unwrap()
    }

    #[test]
    fn rows_are_written_as_their_json_tree_serializes() {
        let columns: Vec<Column> = ["a", "a_2", "a", "?column?", "?column?", "$date"]
            .into_iter()
            .map(|n| Column::new(n, SqlType::Text))
            .collect();
        let mut nested = tissdb::doc::Object::default();
        nested.insert("$numeric".into(), Value::String("x".into()));
        let rows: Vec<Row> = vec![
            vec![
                Value::Int(1),
                Value::String("q\"\n".into()),
                Value::Float(f64::NAN),
                Value::Null,
                Value::Object(Box::new(nested)),
                Value::String("not a date".into()),
            ],
            vec![
                Value::Numeric("1.50".into()),
                Value::Array(vec![Value::Bool(true), Value::DateTime(0)]),
                Value::Binary(vec![1, 2]),
                Value::Float(-0.0),
                Value::Int(i64::MIN),
                Value::Null,
            ],
        ];
        let text = String::from_utf8(rows_json_text(&columns, &rows).unwrap()).unwrap();
        assert_eq!(text, via_tree(&columns, &rows));
        assert!(text.contains(r#""a_3":{"$float":"NaN"}"#), "{text}");
        assert_eq!(rows_json_text(&columns, &[]).unwrap(), b"[]");
    }
}
