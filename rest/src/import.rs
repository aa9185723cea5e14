//! Imports: `POST /<c>` (and `POST /<c>/_import`) with many documents in one body —
//! `text/csv`, `application/x-ndjson`, a JSON array of objects, or XML
//! `<documents><document id="...">...</document>...</documents>` (the shape `GET /<c>`
//! exports) — stored all or none.
//!
//! A single JSON object or single XML document sent to `POST /<c>` keeps the one-document
//! answer; `_import` answers counts for every body. The body may be up to
//! `max_import_size` bytes (413 with 54000 beyond); a single document stays within
//! `max_body_size`. Everything is decoded and checked before anything is written, and the
//! documents are then written as one batch ([`tissdb::Session::import_documents`]): one WAL
//! record outside a transaction, buffered writes inside one (`X-Transaction-ID`, within
//! `max_transaction_size`).
//!
//! # CSV typing
//!
//! The header row names the fields. In a schemaless collection an unquoted empty cell is
//! a missing field (NULL), a quoted empty cell (`""`) the empty string, a cell holding
//! exactly the compact JSON text of an array or object (as the export writes nested
//! values) that array or object, any other quoted cell a string, and any other unquoted
//! cell is typed by the engine's lossless inference ([`text::infer_scalar`]: `42` and
//! `1.50` are numbers, `02134` stays a string). The `id` column is the key as written
//! (an empty one is generated). In a table every non-NULL cell is text cast to its
//! column's declared type, as PostgreSQL's COPY does.
//!
//! Errors name the document (`row`, 1-based, counting documents) and, for CSV and NDJSON,
//! the `line` of the body it starts on; both are also fields of the error object.

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::State;
use axum::extract::rejection::PathRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tissdb::SqlState;
use tissdb::catalog::Kind;
use tissdb::doc::{Limits, Object, Value, json as json_codec, text, xml};

use crate::AppState;
use crate::body::{self, Format};
use crate::csv_text;
use crate::error::ApiError;
use crate::handlers;

/// The body formats `POST /<c>` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyKind {
    Csv,
    Ndjson,
    Json,
    Xml,
}

/// The kind of a request body from its `Content-Type` (JSON when absent).
fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let ct = body::lowercase(
        headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim(),
    );
    if ct.starts_with("text/csv") {
        return Ok(BodyKind::Csv);
    }
    if ct.starts_with("application/x-ndjson")
        || ct.starts_with("application/ndjson")
        || ct.starts_with("application/jsonl")
        || ct.starts_with("application/x-jsonlines")
    {
        return Ok(BodyKind::Ndjson);
    }
    match body::request_format(headers) {
        Ok(Format::Json) => Ok(BodyKind::Json),
        Ok(Format::Xml) => Ok(BodyKind::Xml),
        Err(_) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            SqlState::FEATURE_NOT_SUPPORTED,
            format!(
                "unsupported Content-Type {ct:?}: send application/json, application/xml, \
                 text/csv or application/x-ndjson"
            ),
        )),
    }
}

/// Whether a JSON body is an array (an import) rather than one object.
fn is_json_array(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// Whether an XML body's root element is `<documents>` (an import) rather than one
/// document. Skips the declaration, comments and processing instructions; anything it
/// does not understand is "not a list", and the document parser reports it.
fn is_xml_list(bytes: &[u8]) -> bool {
    let mut rest = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    loop {
        let Some(lt) = rest.iter().position(|&b| b == b'<') else {
            return false;
        };
        rest = &rest[lt + 1..];
        let skip_past = |rest: &[u8], end: &[u8]| -> Option<usize> {
            rest.windows(end.len())
                .position(|w| w == end)
                .map(|p| p + end.len())
        };
        if rest.starts_with(b"?") {
            match skip_past(rest, b"?>") {
                Some(p) => rest = &rest[p..],
                None => return false,
            }
        } else if rest.starts_with(b"!--") {
            match skip_past(rest, b"-->") {
                Some(p) => rest = &rest[p..],
                None => return false,
            }
        } else {
            let name_end = rest
                .iter()
                .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
                .unwrap_or(rest.len());
            return &rest[..name_end] == b"documents";
        }
    }
}

/// Why an import stored nothing: the error and where in the body it was found.
struct Failure {
    error: ApiError,
    /// 1-based document number.
    row: Option<usize>,
    /// 1-based line of the body where that document starts.
    line: Option<usize>,
}

impl Failure {
    fn at(error: impl Into<ApiError>, row: Option<usize>, line: Option<usize>) -> Failure {
        Failure {
            error: error.into(),
            row,
            line,
        }
    }

    fn into_api_error(self) -> ApiError {
        let mut e = self.error;
        let place = match (self.line, self.row) {
            (Some(l), Some(r)) => format!("line {l} (document {r}): "),
            (Some(l), None) => format!("line {l}: "),
            (None, Some(r)) => format!("document {r}: "),
            (None, None) => String::new(),
        };
        e.message = format!("{place}{}", e.message);
        e.row = self.row.map(|r| r as u64);
        e.line = self.line.map(|l| l as u64);
        e
    }
}

impl From<tissdb::Error> for Failure {
    fn from(e: tissdb::Error) -> Self {
        Failure::at(e, None, None)
    }
}

/// Documents decoded from a body, with the line each starts on when the format has lines.
struct Decoded {
    docs: Vec<Object>,
    lines: Option<Vec<usize>>,
}

fn invalid(code: SqlState, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// 22P04 (bad_copy_file_format), as PostgreSQL's COPY answers malformed CSV.
const BAD_COPY_FILE_FORMAT: SqlState = SqlState("22P04");

fn utf8(bytes: &[u8]) -> Result<&str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Failure::at(
            invalid(
                SqlState("22021"),
                format!("the body is not valid UTF-8: {e}"),
            ),
            None,
            Some(line),
        )
    })
}

/// A CSV cell in a schemaless collection (see the module doc); None is NULL (no field).
fn csv_value(cell: csv_text::Cell, limits: &Limits) -> Option<Value> {
    if cell.text.is_empty() && !cell.quoted {
        return None;
    }
    if cell.text.starts_with(['{', '['])
        && let Ok(j) = serde_json::from_str::<serde_json::Value>(&cell.text)
        && serde_json::to_string(&j).is_ok_and(|compact| compact == cell.text)
    {
        // Wrapped so that the document decoder applies the depth limit and markers.
        let wrapper = serde_json::Value::Object(std::iter::once(("v".to_string(), j)).collect());
        if let Ok(mut o) = json_codec::document_from_json(wrapper, limits)
            && let Some(v) = o.shift_remove("v")
        {
            return Some(v);
        }
    }
    if cell.quoted {
        return Some(Value::String(cell.text));
    }
    Some(text::infer_scalar(&cell.text))
}

/// Decodes a CSV body for a collection of `kind`.
fn decode_csv(bytes: &[u8], kind: Kind, limits: &Limits) -> Result<Decoded, Failure> {
    let text = utf8(bytes)?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let records = csv_text::read(text).map_err(|e| {
        Failure::at(
            invalid(
                BAD_COPY_FILE_FORMAT,
                format!("malformed CSV: {}", e.message),
            ),
            None,
            Some(e.line),
        )
    })?;
    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        return Err(Failure::at(
            invalid(
                BAD_COPY_FILE_FORMAT,
                "the CSV body is empty; its first row names the fields",
            ),
            None,
            None,
        ));
    };
    let mut names: Vec<String> = Vec::with_capacity(header.cells.len());
    for cell in header.cells {
        if cell.text.is_empty() {
            return Err(Failure::at(
                invalid(
                    BAD_COPY_FILE_FORMAT,
                    "the CSV header has an empty field name",
                ),
                None,
                Some(header.line),
            ));
        }
        if names.contains(&cell.text) {
            return Err(Failure::at(
                invalid(
                    SqlState("42701"),
                    format!("field \"{}\" appears twice in the CSV header", cell.text),
                ),
                None,
                Some(header.line),
            ));
        }
        names.push(cell.text);
    }
    let mut docs = Vec::new();
    let mut lines = Vec::new();
    for (i, record) in records.enumerate() {
        if record.cells.len() != names.len() {
            return Err(Failure::at(
                invalid(
                    BAD_COPY_FILE_FORMAT,
                    format!(
                        "the row has {} cells but the header names {} fields",
                        record.cells.len(),
                        names.len()
                    ),
                ),
                Some(i + 1),
                Some(record.line),
            ));
        }
        let mut doc = Object::with_capacity_and_hasher(names.len(), Default::default());
        for (name, cell) in names.iter().zip(record.cells) {
            let value = if cell.text.is_empty() && !cell.quoted {
                None
            } else if kind == Kind::Table || name == "id" {
                Some(Value::String(cell.text))
            } else {
                csv_value(cell, limits)
            };
            if let Some(v) = value {
                doc.insert(name.clone(), v);
            }
        }
        docs.push(doc);
        lines.push(record.line);
    }
    Ok(Decoded {
        docs,
        lines: Some(lines),
    })
}

/// Decodes NDJSON: one JSON object per line; blank lines are skipped.
fn decode_ndjson(bytes: &[u8], limits: &Limits) -> Result<Decoded, Failure> {
    let mut docs = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let doc = json_codec::parse_document(line, limits)
            .map_err(|e| Failure::at(e, Some(docs.len() + 1), Some(i + 1)))?;
        docs.push(doc);
        lines.push(i + 1);
    }
    Ok(Decoded {
        docs,
        lines: Some(lines),
    })
}

/// Decodes a JSON array of objects (or, for `_import`, one object).
fn decode_json(bytes: &[u8], limits: &Limits) -> Result<Decoded, Failure> {
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        let error = if e.to_string().contains("recursion limit exceeded") {
            ApiError::from(tissdb::Error::limit(format!(
                "document nesting exceeds the limit of {} levels (max_depth)",
                limits.max_depth
            )))
        } else {
            invalid(SqlState::INVALID_JSON_TEXT, format!("malformed JSON: {e}"))
        };
        Failure::at(error, None, Some(e.line()))
    })?;
    let items = match json {
        serde_json::Value::Array(items) => items,
        one @ serde_json::Value::Object(_) => vec![one],
        _ => {
            return Err(Failure::at(
                invalid(
                    SqlState::INVALID_TEXT_REPRESENTATION,
                    "an import is a JSON array of objects",
                ),
                None,
                None,
            ));
        }
    };
    let docs = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            json_codec::document_from_json(item, limits)
                .map_err(|e| Failure::at(e, Some(i + 1), None))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Decoded { docs, lines: None })
}

/// Decodes `<documents>` of `<document>`s (or one document root).
fn decode_xml(bytes: &[u8], limits: &Limits) -> Result<Decoded, Failure> {
    let docs = xml::parse_documents(bytes, limits)?;
    Ok(Decoded { docs, lines: None })
}

/// Decodes the body and stores its documents, all or none; the number stored.
fn import(
    session: &mut tissdb::Session,
    collection: &str,
    kind: BodyKind,
    bytes: &[u8],
) -> Result<usize, Failure> {
    let limits = session.database().limits();
    let table_kind = session.database().catalog().get(collection)?.kind;
    let decoded = match kind {
        BodyKind::Csv => decode_csv(bytes, table_kind, &limits)?,
        BodyKind::Ndjson => decode_ndjson(bytes, &limits)?,
        BodyKind::Json => decode_json(bytes, &limits)?,
        BodyKind::Xml => decode_xml(bytes, &limits)?,
    };
    let Decoded { docs, lines } = decoded;
    session.import_documents(collection, docs).map_err(|e| {
        let line = e
            .row
            .and_then(|r| lines.as_ref().and_then(|l| l.get(r).copied()));
        Failure::at(e.error, e.row.map(|r| r + 1), line)
    })
}

/// Runs an import and answers 201 `{"imported": n, "collection": c}`.
async fn run_import(
    state: &AppState,
    headers: &HeaderMap,
    collection: String,
    kind: BodyKind,
    bytes: Vec<u8>,
) -> Result<Response, ApiError> {
    let name = collection.clone();
    let outcome = handlers::run_doc(state, headers, move |s| {
        Ok(import(s, &collection, kind, &bytes))
    })
    .await?;
    let n = outcome.map_err(Failure::into_api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "imported": n, "collection": name })),
    )
        .into_response())
}

/// `POST /<collection>`: one document (a JSON object or one XML document), or an import
/// (CSV, NDJSON, a JSON array, `<documents>`).
pub async fn post_collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let collection = handlers::one(path)?;
    // The headers are read in place (the HeaderMap extractor copies them all).
    let (parts, body) = request.into_parts();
    post_to(&state, collection, &parts.headers, body).await
}

/// [`post_collection`] once the collection is read from the path (by the router, or by
/// [`crate::plain_route`] for a POST the router need not see).
pub(crate) async fn post_to(
    state: &AppState,
    collection: String,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = body_kind(headers)?;
    let config = state.db.config();
    let (body_limit, import_limit) = (
        config.max_body_size as usize,
        config.max_import_size as usize,
    );
    let bytes = match kind {
        BodyKind::Csv | BodyKind::Ndjson => {
            body::read_body_named(headers, body, import_limit, "max_import_size").await?
        }
        BodyKind::Json | BodyKind::Xml => {
            // Not known to be an import until read: read up to the larger limit, then
            // hold a single document to max_body_size.
            let (limit, name) = if import_limit > body_limit {
                (import_limit, "max_import_size")
            } else {
                (body_limit, "max_body_size")
            };
            body::read_body_named(headers, body, limit, name).await?
        }
    };
    let single = match kind {
        BodyKind::Json => !is_json_array(&bytes),
        BodyKind::Xml => !is_xml_list(&bytes),
        BodyKind::Csv | BodyKind::Ndjson => false,
    };
    if single {
        if bytes.len() > body_limit {
            return Err(body::too_large(body_limit, "max_body_size"));
        }
        let format = if kind == BodyKind::Xml {
            Format::Xml
        } else {
            Format::Json
        };
        return handlers::insert_one(state, headers, collection, format, &bytes).await;
    }
    run_import(state, headers, collection, kind, bytes).await
}

/// `POST /<collection>/_import`: an import of any accepted body; a single JSON object or
/// XML document is an import of one.
pub async fn import_endpoint(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let collection = handlers::one(path)?;
    let kind = body_kind(&headers)?;
    let limit = state.db.config().max_import_size as usize;
    let bytes = body::read_body_named(&headers, body, limit, "max_import_size").await?;
    run_import(&state, &headers, collection, kind, bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(t: &str, quoted: bool) -> csv_text::Cell {
        csv_text::Cell {
            text: t.into(),
            quoted,
        }
    }

    #[test]
    fn csv_cells_are_typed_without_loss() {
        let l = Limits::default();
        assert_eq!(
            csv_value(cell("02134", false), &l),
            Some(Value::String("02134".into()))
        );
        assert_eq!(csv_value(cell("1.50", false), &l), Some(Value::Float(1.5)));
        assert_eq!(csv_value(cell("42", false), &l), Some(Value::Int(42)));
        assert_eq!(
            csv_value(cell("42", true), &l),
            Some(Value::String("42".into()))
        );
        assert_eq!(csv_value(cell("", false), &l), None);
        assert_eq!(
            csv_value(cell("", true), &l),
            Some(Value::String(String::new()))
        );
        assert_eq!(
            csv_value(cell("[1,\"a\"]", true), &l),
            Some(Value::Array(vec![Value::Int(1), Value::String("a".into())]))
        );
        // Not the compact form: stays text.
        assert_eq!(
            csv_value(cell("[1, 2]", true), &l),
            Some(Value::String("[1, 2]".into()))
        );
    }

    #[test]
    fn list_bodies_are_told_from_single_documents() {
        assert!(is_json_array(b" \n[{}]"));
        assert!(!is_json_array(b"{\"a\": [1]}"));
        assert!(is_xml_list(
            b"<?xml version=\"1.0\"?>\n<!-- x --><documents/>"
        ));
        assert!(is_xml_list(
            b"<documents xmlns:t=\"urn:tissdb\"><document/></documents>"
        ));
        assert!(!is_xml_list(b"<document id=\"a\"/>"));
        assert!(!is_xml_list(b"<documentsx/>"));
    }
}
