//! Exports: `GET /<c>` and `POST /<c>/_query` answer CSV for `Accept: text/csv` and XML
//! for `Accept: application/xml`, in the shapes imports read back (see `import`).
//!
//! A collection's CSV header is `id` then its observed fields, in order (a table: its
//! declared columns). Cells: NULL and missing fields are empty; nested arrays and objects
//! are their compact JSON text; a string is quoted when CSV needs it or when reading it
//! unquoted would type it (`"42"`, `""`); other scalars are their canonical text, or,
//! when that text would not read back as the same value (numerics, binary, `1e300`,
//! NaN), their JSON marker (`{"$numeric":"12.50"}`). A table's cells are plain text, as
//! an import into a table casts text. Listing pages carry the next page's `after` in the
//! `X-Next-After` header (percent-encoded), absent on the last page.

use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tissdb::doc::{Object, Value, json as json_codec, text};

use crate::csv_text;

/// The header naming the next page's `after` value.
pub const NEXT_AFTER: HeaderName = HeaderName::from_static("x-next-after");

/// The answer formats of listings and queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    Json,
    Xml,
    Csv,
}

/// The answer format `Accept` asks for first (JSON by default).
pub fn wanted(headers: &HeaderMap) -> Out {
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for media in accept.split(',') {
        let media = media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media == "text/csv" {
            return Out::Csv;
        }
        if media.starts_with("application/xml") || media == "text/xml" || media.ends_with("+xml") {
            return Out::Xml;
        }
        if media.contains("json") {
            return Out::Json;
        }
    }
    Out::Json
}

/// Whether `v`, written as `text` unquoted, reads back as `v` (NaN never does).
fn reads_back(text: &str, v: &Value) -> bool {
    text::infer_scalar(text) == *v
}

/// Appends one value as a cell; `plain` writes a table's text form (see the module doc).
fn push_value(out: &mut String, first: bool, v: Option<&Value>, plain: bool) {
    match v {
        None | Some(Value::Null) => csv_text::push_null(out, first),
        Some(Value::String(s)) => {
            let quote =
                !plain && (s.starts_with(['{', '[']) || !reads_back(s, &Value::String(s.clone())));
            csv_text::push_cell(out, first, s, quote);
        }
        Some(v @ (Value::Array(_) | Value::Object(_))) => {
            let json = json_codec::to_json(v).to_string();
            csv_text::push_cell(out, first, &json, false);
        }
        Some(v) => {
            let text = text::canonical_text(v).unwrap_or_default();
            if plain || reads_back(&text, v) {
                csv_text::push_cell(out, first, &text, false);
            } else {
                let marker = match v {
                    Value::Float(_) => serde_json::json!({ "$float": text }),
                    other => json_codec::to_json(other),
                };
                csv_text::push_cell(out, first, &marker.to_string(), false);
            }
        }
    }
}

fn push_header(out: &mut String, columns: &[String]) {
    for (i, c) in columns.iter().enumerate() {
        csv_text::push_cell(out, i == 0, c, false);
    }
    out.push('\n');
}

/// A page of a collection as CSV. `columns` are the collection's SQL columns (for a
/// schemaless one, `id` first: the key); `table` says it is a table.
pub fn documents_csv(columns: &[String], table: bool, docs: &[(String, Object)]) -> String {
    let mut out = String::new();
    push_header(&mut out, columns);
    for (id, doc) in docs {
        for (i, c) in columns.iter().enumerate() {
            if !table && i == 0 {
                csv_text::push_cell(&mut out, true, id, false);
            } else {
                push_value(&mut out, i == 0, doc.get(c), table);
            }
        }
        out.push('\n');
    }
    out
}

/// Query result rows as CSV under their column names.
pub fn rows_csv(columns: &[String], rows: &[Vec<Value>]) -> String {
    let mut out = String::new();
    push_header(&mut out, columns);
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            push_value(&mut out, i == 0, Some(v), false);
        }
        out.push('\n');
    }
    out
}

/// A CSV answer, with the next page's `after` when there is one.
pub fn csv_response(text: String, next_after: Option<&str>) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    set_next_after(&mut response, next_after);
    response
}

/// Sets `X-Next-After` to the percent-encoded id (bytes other than ASCII letters, digits
/// and `-._~` as `%XX`), so that it goes into a query string as it is.
pub fn set_next_after(response: &mut Response, next_after: Option<&str>) {
    let Some(id) = next_after else {
        return;
    };
    let mut encoded = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        response.headers_mut().insert(NEXT_AFTER, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_text;

    #[test]
    fn cells_read_back_as_the_import_types_them() {
        let values = vec![
            Value::String("02134".into()),
            Value::String("42".into()),
            Value::String(String::new()),
            Value::String("a,b\n\"c\"".into()),
            Value::Float(1.5),
            Value::Float(1e300),
            Value::Int(7),
            Value::Bool(true),
            Value::Numeric("12.50".into()),
            Value::DateTime(0),
            Value::Array(vec![Value::Int(1), Value::String("x".into())]),
        ];
        let mut out = String::new();
        for (i, v) in values.iter().enumerate() {
            push_value(&mut out, i == 0, Some(v), false);
        }
        push_value(&mut out, false, None, false);
        let records = csv_text::read(&out).unwrap();
        assert_eq!(records.len(), 1);
        let cells = &records[0].cells;
        assert_eq!(cells.len(), values.len() + 1);
        assert_eq!(
            cells[0],
            csv_text::Cell {
                text: "02134".into(),
                quoted: false
            }
        );
        assert_eq!(
            cells[1],
            csv_text::Cell {
                text: "42".into(),
                quoted: true
            }
        );
        assert_eq!(cells[5].text, "{\"$float\":\"1e300\"}");
        assert_eq!(cells[8].text, "{\"$numeric\":\"12.50\"}");
        assert_eq!(cells[9].text, "1970-01-01T00:00:00Z");
        assert_eq!(cells[10].text, "[1,\"x\"]");
        assert_eq!(
            cells[11],
            csv_text::Cell {
                text: String::new(),
                quoted: false
            }
        );
    }
}
