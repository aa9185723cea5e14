//! Request bodies in and response bodies out: size limit, content negotiation between
//! JSON and XML.

use axum::body::Body;
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tissdb::SqlState;
use tissdb::doc::{Limits, Object, json, xml};
use tissdb::storage::shape::Shape;

use crate::error::ApiError;

/// The formats a document travels in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

fn is_xml(media: &str) -> bool {
    let m = lowercase(media.trim());
    m.starts_with("application/xml") || m.starts_with("text/xml") || m.contains("+xml")
}

/// `text` in ASCII lower case, copied only when it has upper-case letters (media types
/// seldom do).
pub(crate) fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    match text.bytes().any(|b| b.is_ascii_uppercase()) {
        true => std::borrow::Cow::Owned(text.to_ascii_lowercase()),
        false => std::borrow::Cow::Borrowed(text),
    }
}

/// The format of the request body, from `Content-Type` (JSON when absent).
pub fn request_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(ct) = headers.get(CONTENT_TYPE) else {
        return Ok(Format::Json);
    };
    let ct = lowercase(ct.to_str().unwrap_or(""));
    if is_xml(&ct) {
        Ok(Format::Xml)
    } else if ct.starts_with("application/json")
        || ct.contains("+json")
        || ct.is_empty()
        // curl's -d default; the body is still parsed (strictly) as JSON.
        || ct.starts_with("application/x-www-form-urlencoded")
    {
        Ok(Format::Json)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("unsupported Content-Type {ct:?}: send application/json or application/xml"),
        ))
    }
}

/// The format of the answer, from `Accept` (JSON unless XML is asked for first).
pub fn response_format(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for media in accept.split(',') {
        let media = media.split(';').next().unwrap_or("").trim();
        if is_xml(media) {
            return Format::Xml;
        }
        if media.contains("json") {
            return Format::Json;
        }
    }
    Format::Json
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    read_body_named(headers, body, limit, "max_body_size").await
}

/// The 413 answer for a body over the setting `setting` (`limit` bytes).
pub fn too_large(limit: usize, setting: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        SqlState::PROGRAM_LIMIT_EXCEEDED,
        format!("request body exceeds {setting} ({limit} bytes)"),
    )
}

/// [`read_body`] with the limit's setting named in the 413 answer.
pub async fn read_body_named(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    setting: &str,
) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large(limit, setting));
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit, setting))?;
    Ok(bytes.to_vec())
}

/// Decodes one document body in the request's format.
pub fn decode_document(format: Format, bytes: &[u8], limits: &Limits) -> Result<Object, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            SqlState::INVALID_TEXT_REPRESENTATION,
            "the request body is empty; send a document",
        ));
    }
    let doc = match format {
        Format::Json => json::parse_document(bytes, limits)?,
        Format::Xml => xml::parse_document(bytes, limits)?,
    };
    Ok(doc)
}

/// A document answer with its id first.
pub fn document_response(status: StatusCode, format: Format, id: &str, body: &Object) -> Response {
    match format {
        Format::Json => {
            let mut text = Vec::with_capacity(256);
            json::write_document(id, body, &mut text);
            json_text_response(status, text)
        }
        Format::Xml => xml_response(status, xml::write_document(id, body)),
    }
}

/// Documents as the JSON text of a document answer, written where storage first
/// touches them ([`json::write_document`], [`json::write_document_record`]): a REST GET
/// builds neither the document nor a JSON tree.
#[derive(Clone, Debug)]
pub struct JsonAnswer {
    /// The id the answer names first.
    pub id: String,
}

impl Shape for JsonAnswer {
    type Doc = Vec<u8>;
    fn shape_ref(&mut self, doc: &Object) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        json::write_document(&self.id, doc, &mut out);
        out
    }
    fn shape_owned(&mut self, doc: Object) -> Vec<u8> {
        self.shape_ref(&doc)
    }
    fn shape_record(&mut self, bytes: &[u8]) -> tissdb::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 2 + 32);
        json::write_document_record(&self.id, bytes, &mut out)?;
        Ok(out)
    }
    fn fields(&self) -> Option<&[String]> {
        None
    }
}

/// An answer of JSON text already written.
pub fn json_text_response(status: StatusCode, text: Vec<u8>) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        text,
    )
        .into_response()
}

/// An XML answer.
pub fn xml_response(status: StatusCode, text: String) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}
