//! The JSON codec: [`Value`] to and from `serde_json`, and REST request bodies.
//!
//! JSON has no datetime, binary, numeric or non-finite float, so those travel as
//! one-key marker objects: `{"$date": "2023-10-26T10:00:00Z"}`, `{"$binary": "<base64>"}`,
//! `{"$numeric": "12.50"}`, `{"$float": "NaN" | "Infinity" | "-Infinity"}`. A stored
//! object that would itself look like a marker (exactly one key, one of the markers or
//! `$object`) is wrapped as `{"$object": {...}}`, so every value round-trips.
//!
//! Answers can also be written as text directly, without a `serde_json` tree: a stored
//! document from its object ([`write_document`]) or from its binary form
//! ([`write_document_record`]), a query's row ([`write_fields`]), byte for byte as
//! `serde_json` writes the tree [`to_json`] and [`document_to_json`] build.
//!
//! Request bodies and `json` inputs are parsed straight into [`Value`]s
//! ([`parse_document`], [`parse_value`]), with no `serde_json` tree in between.
//!
//! Conversions walk values with an explicit stack, never by recursion, so no input depth
//! can overflow the stack. Parsing does recurse, bounded by serde_json's limit of 128
//! levels; [`parse_document`] enforces [`Limits::max_depth`] as well.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value as Json};

use super::binary::{Reader, Token};
use super::text;
use super::{Limits, Object, Value};
use crate::error::{Error, Result, SqlState};

const DATE: &str = "$date";
const BINARY: &str = "$binary";
const NUMERIC: &str = "$numeric";
const FLOAT: &str = "$float";
const OBJECT: &str = "$object";

/// Keys that make a one-key object special.
fn is_marker_key(key: &str) -> bool {
    matches!(key, DATE | BINARY | NUMERIC | FLOAT | OBJECT)
}

/// A container being built while walking a [`Value`] tree.
enum OutFrame<'a> {
    Array(Vec<Json>, std::slice::Iter<'a, Value>),
    Object {
        map: Map<String, Json>,
        fields: indexmap::map::Iter<'a, String, Value>,
        key: Option<&'a String>,
        wrap: bool,
    },
}

/// Converts a scalar, or opens a frame for a container.
fn open_out(v: &Value) -> std::result::Result<Json, OutFrame<'_>> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(f) => match Number::from_f64(*f) {
            Some(n) => Json::Number(n),
            None => marker(FLOAT, text::format_float(*f)),
        },
        Value::Numeric(s) => marker(NUMERIC, s.clone()),
        Value::String(s) => Json::String(s.clone()),
        Value::DateTime(m) => marker(DATE, text::format_datetime(*m)),
        Value::Binary(b) => marker(BINARY, BASE64.encode(b)),
        Value::Array(items) => {
            return Err(OutFrame::Array(
                Vec::with_capacity(items.len()),
                items.iter(),
            ));
        }
        Value::Object(fields) => {
            let wrap = fields.len() == 1 && fields.keys().all(|k| is_marker_key(k));
            return Err(OutFrame::Object {
                map: Map::new(),
                fields: fields.iter(),
                key: None,
                wrap,
            });
        }
    })
}

fn marker(key: &str, text: String) -> Json {
    let mut map = Map::new();
    map.insert(key.to_string(), Json::String(text));
    Json::Object(map)
}

/// The JSON form of a value; see the module doc for the markers.
pub fn to_json(v: &Value) -> Json {
    let mut stack: Vec<OutFrame<'_>> = Vec::new();
    let mut next = v;
    loop {
        // Descend into `next`: either a finished scalar, or a new frame.
        let mut done = match open_out(next) {
            Ok(j) => Some(j),
            Err(frame) => {
                stack.push(frame);
                None
            }
        };
        // Attach finished values upwards until some frame has another child to visit.
        loop {
            if let Some(j) = done.take() {
                match stack.last_mut() {
                    None => return j,
                    Some(OutFrame::Array(out, _)) => out.push(j),
                    Some(OutFrame::Object { map, key, .. }) => {
                        if let Some(k) = key.take() {
                            map.insert(k.clone(), j);
                        }
                    }
                }
            }
            let child = match stack.last_mut() {
                None => return Json::Null, // unreachable: the root returns above
                Some(OutFrame::Array(_, items)) => items.next(),
                Some(OutFrame::Object { fields, key, .. }) => fields.next().map(|(k, v)| {
                    *key = Some(k);
                    v
                }),
            };
            match child {
                Some(c) => {
                    next = c;
                    break;
                }
                None => {
                    done = match stack.pop() {
                        Some(OutFrame::Array(out, _)) => Some(Json::Array(out)),
                        Some(OutFrame::Object { map, wrap, .. }) => {
                            let obj = Json::Object(map);
                            Some(if wrap {
                                let mut outer = Map::new();
                                outer.insert(OBJECT.to_string(), obj);
                                Json::Object(outer)
                            } else {
                                obj
                            })
                        }
                        None => None,
                    };
                }
            }
        }
    }
}

/// A container being built while walking a JSON tree.
enum InFrame {
    Array(Vec<Value>, std::vec::IntoIter<Json>),
    Object(Object, serde_json::map::IntoIter, Option<String>),
}

/// Decodes a one-key marker object, if `map` is one.
fn decode_marker(map: &Map<String, Json>) -> Option<Result<Value>> {
    if map.len() != 1 {
        return None;
    }
    match map.iter().next()? {
        (key, Json::String(text)) => decode_marker_text(key, text),
        _ => None,
    }
}

/// The value a marker key with its text stands for; `None` if `key` is no marker.
fn decode_marker_text(key: &str, text: &str) -> Option<Result<Value>> {
    let bad = |what: &str| {
        Error::invalid(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("invalid {key} value {text:?}: expected {what}"),
        )
    };
    Some(match key {
        DATE => text::parse_datetime(text)
            .map(Value::DateTime)
            .ok_or_else(|| bad("an RFC 3339 timestamp such as 2023-10-26T10:00:00Z")),
        BINARY => BASE64
            .decode(text)
            .map(Value::Binary)
            .map_err(|_| bad("standard Base64")),
        NUMERIC => {
            if text::is_numeric_text(text) {
                Ok(Value::Numeric(text.to_string()))
            } else {
                Err(bad("a decimal number such as -12.50"))
            }
        }
        FLOAT => text::parse_float(text)
            .map(Value::Float)
            .ok_or_else(|| bad("NaN, Infinity, -Infinity or a number")),
        _ => return None,
    })
}

/// Converts a scalar, or opens a frame for a container (`$object` unwraps here).
fn open_in(j: Json) -> Result<std::result::Result<Value, InFrame>> {
    Ok(Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else {
                // u64 beyond i64, or a float; serde_json always has an f64 for these.
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::String(s),
        Json::Array(items) => {
            return Ok(Err(InFrame::Array(
                Vec::with_capacity(items.len()),
                items.into_iter(),
            )));
        }
        Json::Object(map) => {
            if let Some(decoded) = decode_marker(&map) {
                return decoded.map(Ok);
            }
            let map = if map.len() == 1 && matches!(map.get(OBJECT), Some(Json::Object(_))) {
                match map.into_iter().next() {
                    Some((_, Json::Object(inner))) => inner,
                    _ => Map::new(),
                }
            } else {
                map
            };
            return Ok(Err(InFrame::Object(
                Object::with_capacity_and_hasher(map.len(), Default::default()),
                map.into_iter(),
                None,
            )));
        }
    }))
}

/// The inverse of [`to_json`], with an optional nesting limit (the outermost container
/// is depth 1). Exceeding the limit returns `Err(None)`.
fn from_json_limited(j: Json, max_depth: Option<usize>) -> Result<Value, Option<Error>> {
    let mut stack: Vec<InFrame> = Vec::new();
    let mut next = j;
    loop {
        let mut done = match open_in(next).map_err(Some)? {
            Ok(v) => Some(v),
            Err(frame) => {
                stack.push(frame);
                if max_depth.is_some_and(|max| stack.len() > max) {
                    return Err(None);
                }
                None
            }
        };
        loop {
            if let Some(v) = done.take() {
                match stack.last_mut() {
                    None => return Ok(v),
                    Some(InFrame::Array(out, _)) => out.push(v),
                    Some(InFrame::Object(out, _, key)) => {
                        if let Some(k) = key.take() {
                            out.insert(k, v);
                        }
                    }
                }
            }
            let child = match stack.last_mut() {
                None => return Ok(Value::Null), // unreachable: the root returns above
                Some(InFrame::Array(_, items)) => items.next(),
                Some(InFrame::Object(_, fields, key)) => fields.next().map(|(k, v)| {
                    *key = Some(k);
                    v
                }),
            };
            match child {
                Some(c) => {
                    next = c;
                    break;
                }
                None => {
                    done = match stack.pop() {
                        Some(InFrame::Array(out, _)) => Some(Value::Array(out)),
                        Some(InFrame::Object(out, _, _)) => Some(Value::Object(Box::new(out))),
                        None => None,
                    };
                }
            }
        }
    }
}

/// The value a JSON tree stands for: integers that fit `i64` become integers, other
/// numbers floats; one-key marker objects become their types (a marker whose text does
/// not parse is an error 22P02); strings stay strings.
pub fn from_json(j: Json) -> Result<Value> {
    from_json_limited(j, None).map_err(|e| {
        e.unwrap_or_else(|| Error::Internal("JSON depth limit without a limit".into()))
    })
}

fn depth_error(limits: &Limits) -> Error {
    Error::limit(format!(
        "document nesting exceeds the limit of {} levels (max_depth)",
        limits.max_depth
    ))
}

/// Decodes a REST request body: a JSON object, nested at most `limits.max_depth` deep.
/// The text becomes [`Value`]s directly (as [`from_json`] would make them from a
/// `serde_json` tree), without a tree in between.
pub fn parse_document(bytes: &[u8], limits: &Limits) -> Result<Object> {
    as_document(parse_direct(bytes, Some(limits.max_depth)), limits)
}

/// A converted value as a client document: an object, or the error why not (`Err(None)`:
/// nested past `limits.max_depth`).
fn as_document(converted: Result<Value, Option<Error>>, limits: &Limits) -> Result<Object> {
    match converted {
        Ok(Value::Object(fields)) => Ok(*fields),
        Ok(_) => Err(Error::invalid(
            SqlState::INVALID_TEXT_REPRESENTATION,
            "document must be a JSON object",
        )),
        Err(Some(e)) => Err(e),
        Err(None) => Err(depth_error(limits)),
    }
}

/// The value of a JSON text (a `json` or `jsonb` input): [`from_json`] of its tree.
/// Errors are 22P02, with serde_json's message.
pub fn parse_value(text: &str) -> Result<Value> {
    parse_direct(text.as_bytes(), None).map_err(|e| {
        e.unwrap_or_else(|| {
            Error::invalid(
                SqlState::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type json: recursion limit exceeded",
            )
        })
    })
}

/// JSON text to a [`Value`]: `Err(None)` when nesting passes `max_depth` (or
/// serde_json's own limit of 128 levels, which bounds the recursion here).
fn parse_direct(bytes: &[u8], max_depth: Option<usize>) -> Result<Value, Option<Error>> {
    use serde::de::DeserializeSeed;
    let failed = std::cell::RefCell::new(None);
    let seed = Direct {
        depth: 0,
        max_depth: max_depth.unwrap_or(usize::MAX),
        raw: false,
        failed: &failed,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        if let Some(why) = failed.borrow_mut().take() {
            return why;
        }
        let message = e.to_string();
        if message.contains("recursion limit exceeded") {
            None
        } else if max_depth.is_some() {
            Some(Error::invalid(
                SqlState::INVALID_JSON_TEXT,
                format!("invalid JSON: {message}"),
            ))
        } else {
            Some(Error::invalid(
                SqlState::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type json: {message}"),
            ))
        }
    })
}

/// Deserializes one JSON value into a [`Value`], `depth` containers down. A `raw`
/// object is left as it is (an object under `$object`, which its parent unwraps or
/// finishes); every other object is finished by [`finish_object`]. Why a parse failed
/// beyond JSON syntax (a nesting limit: `None`, a marker's bad text) goes to `failed`,
/// since serde's errors carry text alone.
#[derive(Clone, Copy)]
struct Direct<'a> {
    depth: usize,
    max_depth: usize,
    raw: bool,
    failed: &'a std::cell::RefCell<Option<Option<Error>>>,
}

impl Direct<'_> {
    fn fail<E: serde::de::Error>(&self, why: Option<Error>) -> E {
        *self.failed.borrow_mut() = Some(why);
        E::custom("rejected")
    }

    /// The seed of a value inside this container.
    fn inner(&self, raw: bool) -> Self {
        Direct {
            depth: self.depth + 1,
            raw,
            ..*self
        }
    }

    fn enter<E: serde::de::Error>(&self) -> std::result::Result<(), E> {
        if self.depth + 1 > self.max_depth {
            return Err(self.fail(None));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Direct<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Direct<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> std::result::Result<Value, E> {
        // Integers that fit i64 are integers; larger ones floats (as from_json does).
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E>(self, f: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self.inner(false))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Value, A::Error> {
        self.enter()?;
        let mut obj = Object::default();
        while let Some(key) = map.next_key::<String>()? {
            // The value under `$object` stays raw until this object's size is known.
            let value = map.next_value_seed(self.inner(key == OBJECT))?;
            obj.insert(key, value);
        }
        if self.raw {
            return Ok(Value::Object(Box::new(obj)));
        }
        resolve(obj, false).map_err(|e| self.fail(Some(e)))
    }
}

/// Finishes an object parsed with its value under `$object` left raw (see [`Direct`]):
/// with `literal_keys` it is the object inside a `{"$object": {..}}` wrapper, whose keys
/// are not markers (a `$object` among them is a field like any other); otherwise a
/// one-key `$object` object unwraps to the object inside, and any other is finished by
/// [`finish_object`].
fn resolve(mut obj: Object, literal_keys: bool) -> Result<Value> {
    if !literal_keys
        && obj.len() == 1
        && let Some(Value::Object(inner)) = obj.get_mut(OBJECT)
    {
        return resolve(std::mem::take(inner), true);
    }
    if let Some(v) = obj.get_mut(OBJECT)
        && let Value::Object(inner) = v
    {
        *v = resolve(std::mem::take(inner), false)?;
    }
    match literal_keys {
        true => Ok(Value::Object(Box::new(obj))),
        false => finish_object(obj),
    }
}

/// An object as a value: a one-key marker object becomes its type, `{"$object": {..}}`
/// the object inside (left raw: its own keys are not markers), any other stays.
fn finish_object(mut obj: Object) -> Result<Value> {
    if obj.len() != 1 {
        return Ok(Value::Object(Box::new(obj)));
    }
    let Some((key, value)) = obj.first_mut() else {
        return Ok(Value::Object(Box::new(obj)));
    };
    match value {
        Value::Object(inner) if key == OBJECT => Ok(Value::Object(std::mem::take(inner))),
        Value::String(text) => match decode_marker_text(key, text) {
            Some(decoded) => decoded,
            None => Ok(Value::Object(Box::new(obj))),
        },
        _ => Ok(Value::Object(Box::new(obj))),
    }
}

/// A parsed JSON value as a client document: it must be an object, nested at most
/// `limits.max_depth` deep (for bodies holding several documents, such as imports).
pub fn document_from_json(json: Json, limits: &Limits) -> Result<Object> {
    as_document(from_json_limited(json, Some(limits.max_depth)), limits)
}

/// The JSON answer for a stored document: `id` first, then the body's fields. A body
/// field named `id` is left out, except that one holding the id itself as a number (a
/// table's `id integer` primary key) gives `id` its type, as SQL reads it.
pub fn document_to_json(id: &str, body: &Object) -> Json {
    let mut map = Map::new();
    let id_value = match body.get("id") {
        Some(v @ Value::Int(i)) if i.to_string() == id => to_json(v),
        Some(v @ Value::Numeric(n)) if n == id => to_json(v),
        _ => Json::String(id.to_string()),
    };
    map.insert("id".to_string(), id_value);
    for (k, v) in body {
        if k != "id" {
            map.insert(k.clone(), to_json(v));
        }
    }
    Json::Object(map)
}

/// Writes the JSON text of [`document_to_json`]`(id, body)` into `out`, byte for byte
/// as `serde_json` writes that tree, without building it (a REST GET's answer).
pub fn write_document(id: &str, body: &Object, out: &mut Vec<u8>) {
    let id_value = match body.get("id") {
        Some(Value::Int(i)) if i.to_string() == id => Token::Int(*i),
        Some(Value::Numeric(n)) if n == id => Token::Numeric(n),
        _ => Token::String(id),
    };
    open_document(id_value, out);
    for (k, v) in body {
        if k != "id" {
            out.push(b',');
            put_str(out, k);
            out.push(b':');
            write_value(v, out);
        }
    }
    out.push(b'}');
}

/// Writes the object `{"<name>":<value>,...}` of `fields` in order, each value as
/// [`to_json`] converts it, byte for byte as `serde_json` writes a map built of them
/// (a REST query's row); the names must be distinct.
pub fn write_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a Value)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, name);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

/// [`write_fields`] for a row whose values may come encoded: a field whose `encoded` is
/// set and whose value is [`Value::Binary`] holds a value's binary encoding (see
/// [`binary::encoded_value`]), written as that value's JSON without decoding it.
pub fn write_fields_encoded<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a Value, bool)>,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.push(b'{');
    for (i, (name, value, encoded)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, name);
        out.push(b':');
        match value {
            Value::Binary(bytes) if encoded => {
                let mut reader = Reader::new(bytes);
                write_encoded_value(&mut reader, out)?;
                if !reader.is_empty() {
                    return Err(Error::Corruption(
                        "binary value: trailing bytes after value".into(),
                    ));
                }
            }
            value => write_value(value, out),
        }
    }
    out.push(b'}');
    Ok(())
}

/// [`write_document`] for a body in its stored binary form (see
/// [`binary::encode_object`]), read in place.
pub fn write_document_record(id: &str, record: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut fields = Reader::new(record);
    let count = fields.varint()?;
    let mut id_value = Token::String(id);
    let mut look = fields.clone();
    for _ in 0..count {
        if look.name()? != "id" {
            look.skip()?;
            continue;
        }
        match look.token()? {
            Token::Int(i) if i.to_string() == id => id_value = Token::Int(i),
            Token::Numeric(n) if n == id => id_value = Token::Numeric(n),
            _ => {}
        }
        break;
    }
    open_document(id_value, out);
    for _ in 0..count {
        let name = fields.name()?;
        if name == "id" {
            fields.skip()?;
            continue;
        }
        out.push(b',');
        put_str(out, name);
        out.push(b':');
        write_encoded_value(&mut fields, out)?;
    }
    if !fields.is_empty() {
        return Err(Error::Corruption(
            "binary value: trailing bytes after object".into(),
        ));
    }
    out.push(b'}');
    Ok(())
}

/// `{"id":<id>` of a document answer.
fn open_document(id: Token<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    put_scalar(id, out);
}

/// A JSON string, escaped as `serde_json` escapes it.
fn put_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A one-key marker object, `{"<key>":"<text>"}`.
fn put_marker(out: &mut Vec<u8>, key: &str, text: &str) {
    out.push(b'{');
    put_str(out, key);
    out.push(b':');
    put_str(out, text);
    out.push(b'}');
}

/// A scalar's JSON text, as [`to_json`] converts it and `serde_json` writes it.
fn put_scalar(t: Token<'_>, out: &mut Vec<u8>) {
    use std::io::Write as _;
    match t {
        Token::Null => out.extend_from_slice(b"null"),
        Token::Bool(true) => out.extend_from_slice(b"true"),
        Token::Bool(false) => out.extend_from_slice(b"false"),
        Token::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Token::Float(f) if f.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, &f);
        }
        Token::Float(f) => put_marker(out, FLOAT, &text::format_float(f)),
        Token::Numeric(n) => put_marker(out, NUMERIC, n),
        Token::String(s) => put_str(out, s),
        Token::DateTime(m) => put_marker(out, DATE, &text::format_datetime(m)),
        Token::Binary(b) => put_marker(out, BINARY, &BASE64.encode(b)),
        // Containers are opened by their writers; nothing reaches here.
        Token::Array(_) | Token::Object(_) => out.extend_from_slice(b"null"),
    }
}

/// The text that opens an object and the text that closes it: `{"$object":{` and `}}`
/// when the object would read as a marker.
fn object_brackets(marker_like: bool) -> (&'static [u8], &'static [u8]) {
    if marker_like {
        (b"{\"$object\":{", b"}}")
    } else {
        (b"{", b"}")
    }
}

/// The children left of a container [`write_value`] is inside.
enum WriteFrame<'a> {
    Array(std::slice::Iter<'a, Value>),
    Object(indexmap::map::Iter<'a, String, Value>),
}

/// An open container: its children left, its closing text, whether a child was written.
struct Open<C> {
    children: C,
    close: &'static [u8],
    started: bool,
}

impl<C> Open<C> {
    fn new(children: C, close: &'static [u8]) -> Self {
        Open {
            children,
            close,
            started: false,
        }
    }

    /// The comma before every child but the first.
    fn separate(&mut self, out: &mut Vec<u8>) {
        if self.started {
            out.push(b',');
        }
        self.started = true;
    }
}

/// A value's JSON text, as `serde_json` writes [`to_json`]`(v)`; an explicit stack, no
/// recursion.
fn write_value(v: &Value, out: &mut Vec<u8>) {
    let mut stack: Vec<Open<WriteFrame<'_>>> = Vec::new();
    let mut next = v;
    loop {
        match next {
            Value::Array(items) => {
                out.push(b'[');
                stack.push(Open::new(WriteFrame::Array(items.iter()), b"]"));
            }
            Value::Object(fields) => {
                let wrap = fields.len() == 1 && fields.keys().all(|k| is_marker_key(k));
                let (open, close) = object_brackets(wrap);
                out.extend_from_slice(open);
                stack.push(Open::new(WriteFrame::Object(fields.iter()), close));
            }
            scalar => put_scalar(Token::scalar(scalar), out),
        }
        loop {
            let Some(top) = stack.last_mut() else {
                return;
            };
            let child = match &mut top.children {
                WriteFrame::Array(items) => items.next().map(|v| (None, v)),
                WriteFrame::Object(fields) => fields.next().map(|(k, v)| (Some(k), v)),
            };
            let Some((key, child)) = child else {
                out.extend_from_slice(top.close);
                stack.pop();
                continue;
            };
            top.separate(out);
            if let Some(key) = key {
                put_str(out, key);
                out.push(b':');
            }
            next = child;
            break;
        }
    }
}

/// [`write_value`] for the next encoded value of `reader`.
fn write_encoded_value(reader: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<()> {
    // Per open container: how many children are left, and whether they are fields.
    let mut stack: Vec<Open<(u64, bool)>> = Vec::new();
    loop {
        match reader.token()? {
            Token::Array(count) => {
                out.push(b'[');
                stack.push(Open::new((count, false), b"]"));
            }
            Token::Object(count) => {
                let wrap = count == 1 && is_marker_key(reader.clone().name()?);
                let (open, close) = object_brackets(wrap);
                out.extend_from_slice(open);
                stack.push(Open::new((count, true), close));
            }
            scalar => put_scalar(scalar, out),
        }
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(());
            };
            let (left, fields) = &mut top.children;
            if *left == 0 {
                out.extend_from_slice(top.close);
                stack.pop();
                continue;
            }
            *left -= 1;
            let fields = *fields;
            top.separate(out);
            if fields {
                put_str(out, reader.name()?);
                out.push(b':');
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::text::testing::{arb_object, arb_value, same};
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(pairs: Vec<(&str, Value)>) -> Object {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn round_trip(v: &Value) -> Value {
        let text = serde_json::to_string(&to_json(v)).unwrap();
        from_json(serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn every_type() -> Value {
        Value::Object(Box::new(obj(vec![
            ("null", Value::Null),
            ("t", Value::Bool(true)),
            ("f", Value::Bool(false)),
            ("int", Value::Int(i64::MIN)),
            ("max", Value::Int(i64::MAX)),
            ("float", Value::Float(199.99)),
            ("one", Value::Float(1.0)),
            ("big", Value::Float(1e300)),
            ("negzero", Value::Float(-0.0)),
            ("inf", Value::Float(f64::INFINITY)),
            ("ninf", Value::Float(f64::NEG_INFINITY)),
            ("num", Value::Numeric("-12.50".into())),
            ("s", Value::String("42".into())),
            ("empty", Value::String(String::new())),
            ("date", Value::DateTime(1_698_314_400_000_000)),
            ("bin", Value::Binary(vec![0, 1, 2, 255])),
            ("arr", Value::Array(vec![Value::Int(1), Value::Null])),
            ("nested", Value::Array(vec![Value::Array(vec![])])),
            ("obj", Value::Object(Box::default())),
            (
                "markerlike",
                Value::Object(Box::new(obj(vec![("$date", Value::String("soon".into()))]))),
            ),
            (
                "objectlike",
                Value::Object(Box::new(obj(vec![("$object", Value::Int(1))]))),
            ),
        ])))
    }

    /// What a REST GET answered before [`write_document`]: the JSON tree, serialized.
    fn via_tree(id: &str, body: &Object) -> Vec<u8> {
        serde_json::to_vec(&document_to_json(id, body)).unwrap()
    }

    fn written(id: &str, body: &Object) -> (String, String) {
        let mut direct = Vec::new();
        write_document(id, body, &mut direct);
        let mut from_record = Vec::new();
        write_document_record(
            id,
            &crate::doc::binary::encode_object(body),
            &mut from_record,
        )
        .unwrap();
        (
            String::from_utf8(direct).unwrap(),
            String::from_utf8(from_record).unwrap(),
        )
    }

    #[test]
    fn documents_are_written_as_their_json_trees_serialize() {
        let Value::Object(body) = every_type() else {
            unreachable!()
        };
        let tree = String::from_utf8(via_tree("k1", &body)).unwrap();
        assert!(
            tree.starts_with(r#"{"id":"k1","null":null,"t":true"#),
            "{tree}"
        );
        assert_eq!(written("k1", &body), (tree.clone(), tree));
        // A body id that is the key as a number keeps its type; any other is replaced.
        for (id, body_id, expected) in [
            ("7", Value::Int(7), r#"{"id":7,"a":[]}"#),
            ("07", Value::Int(7), r#"{"id":"07","a":[]}"#),
            (
                "1.50",
                Value::Numeric("1.50".into()),
                r#"{"id":{"$numeric":"1.50"},"a":[]}"#,
            ),
            ("x", Value::String("y".into()), r#"{"id":"x","a":[]}"#),
        ] {
            let body = obj(vec![("a", Value::Array(vec![])), ("id", body_id)]);
            let tree = String::from_utf8(via_tree(id, &body)).unwrap();
            assert_eq!(tree, expected);
            assert_eq!(written(id, &body), (tree.clone(), tree));
        }
    }

    proptest! {
        #[test]
        fn written_fields_match_their_json_map(body in arb_object()) {
            let map: Map<String, Json> =
                body.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            let mut text = Vec::new();
            write_fields(body.iter().map(|(k, v)| (k.as_str(), v)), &mut text);
            prop_assert_eq!(
                String::from_utf8(text).unwrap(),
                serde_json::to_string(&Json::Object(map)).unwrap()
            );
        }
    }

    #[test]
    fn a_record_with_trailing_or_missing_bytes_is_an_error() {
        let body = obj(vec![("a", Value::String("xyz".into()))]);
        let mut record = crate::doc::binary::encode_object(&body);
        record.push(0);
        assert!(write_document_record("k", &record, &mut Vec::new()).is_err());
        record.truncate(record.len() - 2);
        assert!(write_document_record("k", &record, &mut Vec::new()).is_err());
    }

    proptest! {
        #[test]
        fn written_documents_match_their_json_trees(
            id in prop_oneof![Just("7".to_string()), Just("-12.50".to_string()), any::<String>()],
            body in arb_object(),
        ) {
            let tree = String::from_utf8(via_tree(&id, &body)).unwrap();
            prop_assert_eq!(written(&id, &body), (tree.clone(), tree));
        }
    }

    #[test]
    fn every_type_round_trips() {
        let v = every_type();
        assert_eq!(round_trip(&v), v);
        let nan = round_trip(&Value::Float(f64::NAN));
        assert!(matches!(nan, Value::Float(f) if f.is_nan()));
    }

    #[test]
    fn wire_forms() {
        let j = to_json(&every_type());
        assert_eq!(j["float"], json!(199.99));
        assert_eq!(serde_json::to_string(&j["one"]).unwrap(), "1.0");
        assert_eq!(serde_json::to_string(&j["big"]).unwrap(), "1e+300");
        assert_eq!(j["inf"], json!({"$float": "Infinity"}));
        assert_eq!(j["num"], json!({"$numeric": "-12.50"}));
        assert_eq!(j["date"], json!({"$date": "2023-10-26T10:00:00Z"}));
        assert_eq!(j["bin"], json!({"$binary": "AAEC/w=="}));
        assert_eq!(j["markerlike"], json!({"$object": {"$date": "soon"}}));
        assert_eq!(to_json(&Value::Float(f64::NAN)), json!({"$float": "NaN"}));
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys.first().map(|k| k.as_str()), Some("null"));
        assert_eq!(keys.last().map(|k| k.as_str()), Some("objectlike"));
    }

    #[test]
    fn numbers_from_json() {
        assert_eq!(from_json(json!(5)).unwrap(), Value::Int(5));
        assert_eq!(from_json(json!(5.0)).unwrap(), Value::Float(5.0));
        assert_eq!(
            from_json(json!(u64::MAX)).unwrap(),
            Value::Float(u64::MAX as f64)
        );
        assert_eq!(
            from_json(json!("2023-10-26T10:00:00Z")).unwrap(),
            Value::String("2023-10-26T10:00:00Z".into())
        );
        assert_eq!(
            from_json(json!({"$date": "2023-10-26T12:00:00+02:00"})).unwrap(),
            Value::DateTime(1_698_314_400_000_000)
        );
        // Not a marker: a second key, or a non-string value.
        assert!(matches!(
            from_json(json!({"$date": "x", "b": 1})).unwrap(),
            Value::Object(_)
        ));
        assert!(matches!(
            from_json(json!({"$date": 5})).unwrap(),
            Value::Object(_)
        ));
    }

    #[test]
    fn bad_markers() {
        for (j, name) in [
            (json!({"$date": "yesterday"}), "$date"),
            (json!({"$binary": "!!"}), "$binary"),
            (json!({"$numeric": "1e5"}), "$numeric"),
            (json!({"$float": "inf"}), "$float"),
        ] {
            let err = from_json(j).unwrap_err();
            assert_eq!(err.sqlstate(), SqlState::INVALID_TEXT_REPRESENTATION);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn parse_documents() {
        let limits = Limits::default();
        let doc = parse_document(br#"{"name": "x", "price": 199.99, "n": 3}"#, &limits).unwrap();
        assert_eq!(
            doc,
            obj(vec![
                ("name", Value::String("x".into())),
                ("price", Value::Float(199.99)),
                ("n", Value::Int(3)),
            ])
        );
        let err = parse_document(b"[1, 2]", &limits).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::INVALID_TEXT_REPRESENTATION);
        assert!(err.to_string().contains("must be a JSON object"));
        let err = parse_document(br#"{"$date": "2023-10-26T10:00:00Z"}"#, &limits).unwrap_err();
        assert!(err.to_string().contains("must be a JSON object"));
        let err = parse_document(b"{\"a\": ", &limits).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::INVALID_JSON_TEXT);
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = parse_document(b"", &limits).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::INVALID_JSON_TEXT);
        let err = parse_document(b"{\"a\": 1} x", &limits).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::INVALID_JSON_TEXT);
        let err = parse_document(b"\xff", &limits).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::INVALID_JSON_TEXT);
    }

    #[test]
    fn depth_limits() {
        let limits = Limits { max_depth: 3 };
        assert!(parse_document(br#"{"a": {"b": [1]}}"#, &limits).is_ok());
        let err = parse_document(br#"{"a": {"b": [[1]]}}"#, &limits).unwrap_err();
        assert!(
            matches!(err, Error::LimitExceeded { code, .. } if code == SqlState::PROGRAM_LIMIT_EXCEEDED)
        );
        assert!(err.to_string().contains("max_depth"));

        let deep = "[".repeat(100_000);
        let err = parse_document(deep.as_bytes(), &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
        let deep = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
        let err = parse_document(deep.as_bytes(), &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    }

    #[test]
    fn deep_values_convert_without_recursion() {
        let mut v = Value::Int(1);
        for _ in 0..10_000 {
            v = Value::Array(vec![v]);
        }
        let back = from_json(to_json(&v)).unwrap();
        let mut text = Vec::new();
        write_value(&v, &mut text);
        let expected = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(text, expected.as_bytes());
        // Tear both down iteratively; their own Drop would recurse.
        let mut cur = Some(back);
        let mut depth = 0;
        while let Some(Value::Array(mut items)) = cur {
            cur = items.pop();
            depth += 1;
        }
        assert_eq!(depth, 10_000);
        let mut cur = Some(v);
        while let Some(Value::Array(mut items)) = cur {
            cur = items.pop();
        }
    }

    #[test]
    fn documents_put_id_first() {
        let body = obj(vec![
            ("name", Value::String("x".into())),
            ("id", Value::String("other".into())),
            ("n", Value::Int(1)),
        ]);
        let j = document_to_json("doc1", &body);
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"id":"doc1","name":"x","n":1}"#
        );
        // A table's integer key keeps its type; one that is not the id is left out.
        let row = obj(vec![
            ("id", Value::Int(5)),
            ("name", Value::String("x".into())),
        ]);
        assert_eq!(
            document_to_json("5", &row),
            serde_json::json!({"id": 5, "name": "x"})
        );
        assert_eq!(
            document_to_json("6", &row),
            serde_json::json!({"id": "6", "name": "x"})
        );
    }

    /// What the direct parse must equal: the `serde_json` tree, converted.
    fn via_json_tree(text: &str) -> Result<Value> {
        from_json(serde_json::from_str(text).map_err(|e| Error::Internal(e.to_string()))?)
    }

    #[test]
    fn direct_parsing_agrees_with_the_json_tree() {
        for text in [
            r#"{"$object": {"$date": "2023-10-26T10:00:00Z"}}"#,
            r#"{"$object": {"$date": "2023-10-26T10:00:00Z"}, "b": 1}"#,
            r#"{"b": 1, "$object": {"$numeric": "1.5"}}"#,
            r#"{"$object": {"$object": {"a": {"$float": "NaN"}}}}"#,
            r#"{"$object": {"$object": {"$binary": "AAE="}}, "z": null}"#,
            r#"{"a": {"$object": 5}, "b": {"$object": [{"$date": "2023-10-26T10:00:00Z"}]}}"#,
            r#"{"a": {"$date": 5}, "b": {"$date": "2023-10-26T10:00:00Z", "x": 1}}"#,
            r#"{"a": 1, "a": {"$numeric": "2"}, "b": [18446744073709551615, -9223372036854775808, 1e300, -0, 0.1]}"#,
            r#"{"$object": {"k": 1}, "$object": {"$date": "2023-10-26T10:00:00Z"}}"#,
            r#"{"s": "\u00e9\n", "e": {}, "l": [], "n": [[[]]], "t": true, "f": false}"#,
        ] {
            let direct = parse_value(text).unwrap();
            let tree = via_json_tree(text).unwrap();
            assert!(same(&direct, &tree), "{text}: {direct:?} against {tree:?}");
            let doc = parse_document(text.as_bytes(), &Limits::default()).unwrap();
            assert!(same(&Value::Object(Box::new(doc)), &tree), "{text}");
        }
        // A `$object` field inside a wrapped object is a field: its value is read as
        // any value is (a proptest case: the date stayed `{"$date": ...}`).
        let wrapped = Value::Object(Box::new(
            [("$object".to_string(), Value::DateTime(0))]
                .into_iter()
                .collect(),
        ));
        let text = serde_json::to_string(&to_json(&wrapped)).unwrap();
        assert_eq!(
            text,
            r#"{"$object":{"$object":{"$date":"1970-01-01T00:00:00Z"}}}"#
        );
        assert!(same(&parse_value(&text).unwrap(), &wrapped));
        assert!(same(&via_json_tree(&text).unwrap(), &wrapped));
        for bad in [r#"{"$date": "yesterday"}"#, r#"{"a": [{"$binary": "!!"}]}"#] {
            let err = parse_value(bad).unwrap_err();
            assert_eq!(err.sqlstate(), SqlState::INVALID_TEXT_REPRESENTATION);
            assert!(err.to_string().contains("expected"), "{err}");
            let err = parse_document(bad.as_bytes(), &Limits::default()).unwrap_err();
            assert!(err.to_string().contains("expected"), "{err}");
        }
        let err = parse_value("[1,").unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::INVALID_TEXT_REPRESENTATION);
        assert!(
            err.to_string()
                .contains("invalid input syntax for type json")
        );
        let err = parse_value(&"[".repeat(200)).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        assert_eq!(
            parse_value("[[1]]").unwrap(),
            via_json_tree("[[1]]").unwrap()
        );
    }

    proptest! {
        #[test]
        fn direct_parsing_round_trips(v in arb_value()) {
            let text = serde_json::to_string(&to_json(&v)).unwrap();
            let back = parse_value(&text).unwrap();
            prop_assert!(same(&back, &v), "{:?} came back as {:?}", v, back);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_document(&bytes, &Limits::default());
        }

        #[test]
        fn json_round_trip(v in arb_value()) {
            let text = serde_json::to_string(&to_json(&v)).unwrap();
            let back = from_json(serde_json::from_str(&text).unwrap()).unwrap();
            prop_assert!(same(&back, &v), "{:?} came back as {:?}", v, back);
        }
    }
}
