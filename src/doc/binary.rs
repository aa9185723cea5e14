//! The compact binary form of a [`Value`], used in WAL records and memtable entries.
//!
//! Each value is a tag byte followed by its payload; lengths and integers are LEB128
//! varints (integers zig-zag encoded). Decoding checks every length against the input and
//! never trusts a count from the bytes to size an allocation.

use super::path::PathStep;
use super::{Object, Value};
use crate::error::{Error, Result};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const NUMERIC: u8 = 5;
const STRING: u8 = 6;
const DATETIME: u8 = 7;
const BINARY: u8 = 8;
const ARRAY: u8 = 9;
const OBJECT: u8 = 10;

/// Deepest nesting the decoder follows; stored values never come near it.
const MAX_DEPTH: usize = 512;

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            put_varint(out, zigzag(*i));
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Numeric(s) => {
            out.push(NUMERIC);
            put_bytes(out, s.as_bytes());
        }
        Value::String(s) => {
            out.push(STRING);
            put_bytes(out, s.as_bytes());
        }
        Value::DateTime(t) => {
            out.push(DATETIME);
            put_varint(out, zigzag(*t));
        }
        Value::Binary(b) => {
            out.push(BINARY);
            put_bytes(out, b);
        }
        Value::Array(items) => {
            out.push(ARRAY);
            put_varint(out, items.len() as u64);
            for item in items {
                encode(item, out);
            }
        }
        Value::Object(fields) => {
            out.push(OBJECT);
            encode_object_fields(fields, out);
        }
    }
}

/// Appends the fields of an object (count, then name and value of each).
pub fn encode_object_fields(fields: &Object, out: &mut Vec<u8>) {
    put_varint(out, fields.len() as u64);
    for (name, value) in fields {
        put_bytes(out, name.as_bytes());
        encode(value, out);
    }
}

/// Encodes the fields named and valued by `fields` as [`encode_object`] encodes an
/// object holding them, without building the object (a bulk load's rows).
pub fn encode_fields<'a>(
    fields: impl ExactSizeIterator<Item = (&'a str, &'a Value)>,
    out: &mut Vec<u8>,
) {
    put_varint(out, fields.len() as u64);
    for (name, value) in fields {
        put_bytes(out, name.as_bytes());
        encode(value, out);
    }
}

/// Encodes an object's fields into a new buffer.
pub fn encode_object(fields: &Object) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_object_fields(fields, &mut out);
    out
}

/// Decodes an object written by [`encode_object`]; the whole input must be consumed.
pub fn decode_object(bytes: &[u8]) -> Result<Object> {
    let mut reader = Reader { bytes, pos: 0 };
    let object = reader.object_fields(0)?;
    if reader.pos != bytes.len() {
        return Err(corrupt("trailing bytes after object"));
    }
    Ok(object)
}

/// Decodes the fields of an object written by [`encode_object`] that `slot` picks:
/// each picked field's value goes to `put` with its slot; the others are stepped over
/// without being decoded. The whole input must be consumed.
pub fn decode_object_fields(
    bytes: &[u8],
    slot: impl Fn(&[u8]) -> Option<usize>,
    put: impl FnMut(usize, Value),
) -> Result<()> {
    decode_object_fields_at(bytes, |_, name| slot(name), |_| &[], usize::MAX, put)
}

/// [`decode_object_fields`] where a slot may take the value a path reaches inside its
/// field (`path(slot)`; empty: the field itself). Only that value is built; the rest of
/// the field is stepped over. A path that leads nowhere gives NULL, as
/// [`crate::doc::path::follow_path`] does. `slot` gets each field's position in the
/// object along with its name, so that a caller may remember where fields were.
///
/// Reading stops once `wanted` fields have gone to `put` (an object names each field
/// once): the fields after them are not stepped over, nor checked (`usize::MAX`: read
/// and check the whole object).
pub fn decode_object_fields_at<'p>(
    bytes: &[u8],
    slot: impl FnMut(usize, &[u8]) -> Option<usize>,
    path: impl Fn(usize) -> &'p [PathStep],
    wanted: usize,
    mut put: impl FnMut(usize, Value),
) -> Result<()> {
    decode_object_fields_with(bytes, slot, path, wanted, |at, reader, steps, to_end| {
        put(at, reader.value_at(steps, 1, to_end)?);
        Ok(())
    })
}

/// [`decode_object_fields_at`] into `out`: the value for slot `i` goes to `out[i]`, a
/// string into the buffer of a string already there, and `written[i]` is set. The other
/// slots are left as they were. A slot that `encoded` picks (and that takes its whole
/// field) gets its value's encoding undecoded, as [`encoded_value`] gives it.
// Inlined into its one caller, the scans' column shape: the loop over a record's
// fields is the hottest code of a full scan (left to the optimizer it was inlined in
// some builds and not in others, 10% apart).
#[inline(always)]
pub fn decode_object_fields_into<'p>(
    bytes: &[u8],
    slot: impl FnMut(usize, &[u8]) -> Option<usize>,
    path: impl Fn(usize) -> &'p [PathStep],
    encoded: impl Fn(usize) -> bool,
    wanted: usize,
    out: &mut [Value],
    written: &mut [bool],
) -> Result<()> {
    decode_object_fields_with(bytes, slot, path, wanted, |at, reader, steps, to_end| {
        if let Some(w) = written.get_mut(at) {
            *w = true;
        }
        match out.get_mut(at) {
            Some(target) if steps.is_empty() && encoded(at) => reader.encoded_value_into(target),
            Some(target) if steps.is_empty() => reader.value_into(1, target),
            Some(target) => {
                *target = reader.value_at(steps, 1, to_end)?;
                Ok(())
            }
            None => reader.value_at(steps, 1, to_end).map(drop),
        }
    })
}

/// The walk of [`decode_object_fields_at`]: `put` reads the value of each picked field
/// from the reader (with its slot's path, and whether to step past the rest of it).
fn decode_object_fields_with<'p>(
    bytes: &[u8],
    mut slot: impl FnMut(usize, &[u8]) -> Option<usize>,
    path: impl Fn(usize) -> &'p [PathStep],
    wanted: usize,
    mut put: impl FnMut(usize, &mut Reader<'_>, &[PathStep], bool) -> Result<()>,
) -> Result<()> {
    let mut reader = Reader { bytes, pos: 0 };
    let count = reader.count()?;
    let mut found = 0;
    for field in 0..count as usize {
        if found == wanted {
            return Ok(());
        }
        let name = reader.bytes_prefixed()?;
        match slot(field, name) {
            Some(at) => {
                // The last wanted value is not stepped past: nothing after it is read.
                let last = found + 1 == wanted;
                put(at, &mut reader, path(at), !last)?;
                found += 1;
                if last {
                    return Ok(());
                }
            }
            None => reader.skip_value(1)?,
        }
    }
    if reader.pos != bytes.len() {
        return Err(corrupt("trailing bytes after object"));
    }
    Ok(())
}

/// A value handed on in its encoding, undecoded, for a writer that reads it from there
/// (a client's JSON text): NULL stays [`Value::Null`]; anything else becomes
/// [`Value::Binary`] holding what [`encode`] writes for it.
pub fn encoded_value(value: &Value) -> Value {
    let mut out = Value::Null;
    encoded_value_into(value, &mut out);
    out
}

/// [`encoded_value`] into `out`, into the buffer of a binary value already there.
pub fn encoded_value_into(value: &Value, out: &mut Value) {
    if matches!(value, Value::Null) {
        *out = Value::Null;
        return;
    }
    if let Value::Binary(buffer) = out {
        buffer.clear();
        encode(value, buffer);
    } else {
        let mut buffer = Vec::with_capacity(64);
        encode(value, &mut buffer);
        *out = Value::Binary(buffer);
    }
}

/// Decodes one value written by [`encode`]; the whole input must be consumed.
pub fn decode(bytes: &[u8]) -> Result<Value> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(0)?;
    if reader.pos != bytes.len() {
        return Err(corrupt("trailing bytes after value"));
    }
    Ok(value)
}

fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn corrupt(what: &str) -> Error {
    Error::Corruption(format!("binary value: {what}"))
}

/// The kind of the next value in a [`Reader`] (see [`Reader::peek_tag`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A string or a numeric: readable in place with [`Reader::text`].
    Text,
    /// An array or an object.
    Nested,
    /// Any other value (null, boolean, number, date-time, bytes).
    Scalar,
}

/// One step of a walk over an encoded value with [`Reader::token`]: a scalar, borrowed
/// where it is text or bytes, or the start of a container whose parts follow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Numeric(&'a str),
    String(&'a str),
    DateTime(i64),
    Binary(&'a [u8]),
    /// An array of this many items; each follows as a value.
    Array(u64),
    /// An object of this many fields; each follows as a [`Reader::name`] and a value.
    Object(u64),
}

impl<'a> Token<'a> {
    /// The token a scalar value reads as (null for a container, which its writer
    /// opens instead).
    pub fn scalar(v: &'a Value) -> Token<'a> {
        match v {
            Value::Null | Value::Array(_) | Value::Object(_) => Token::Null,
            Value::Bool(b) => Token::Bool(*b),
            Value::Int(i) => Token::Int(*i),
            Value::Float(f) => Token::Float(*f),
            Value::Numeric(n) => Token::Numeric(n),
            Value::String(s) => Token::String(s),
            Value::DateTime(m) => Token::DateTime(*m),
            Value::Binary(b) => Token::Binary(b),
        }
    }
}

/// A cursor over encoded bytes; every read is bounds-checked.
#[derive(Clone)]
pub struct Reader<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    #[inline]
    pub fn byte(&mut self) -> Result<u8> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| corrupt("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    /// A varint; most (lengths, field counts, small integers) are one byte, read here
    /// without a loop.
    #[inline]
    pub fn varint(&mut self) -> Result<u64> {
        match self.bytes.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_long(),
        }
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| corrupt("length beyond end"))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| corrupt("length beyond end"))?;
        self.pos = end;
        Ok(slice)
    }

    #[inline]
    pub fn bytes_prefixed(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.varint()?).map_err(|_| corrupt("length overflow"))?;
        self.take(len)
    }

    pub fn string(&mut self) -> Result<String> {
        self.str().map(str::to_string)
    }

    /// A container's count of items or fields, checked against the bytes left: each
    /// takes at least one, which bounds a believable count.
    fn count(&mut self) -> Result<u64> {
        let count = self.varint()?;
        let remaining = (self.bytes.len() - self.pos.min(self.bytes.len())) as u64;
        if count > remaining {
            return Err(corrupt("count beyond end"));
        }
        Ok(count)
    }

    fn object_fields(&mut self, depth: usize) -> Result<Object> {
        let count = self.count()?;
        self.fields(count, depth)
    }

    /// The `count` fields of an object whose count was read.
    fn fields(&mut self, count: u64, depth: usize) -> Result<Object> {
        let mut fields = Object::with_capacity_and_hasher(count as usize, Default::default());
        for _ in 0..count {
            let name = self.string()?;
            let value = self.value(depth + 1)?;
            fields.insert(name, value);
        }
        Ok(fields)
    }

    /// Steps over one value without building it.
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(corrupt("nesting too deep"));
        }
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            INT | DATETIME => {
                self.varint()?;
            }
            FLOAT => {
                self.take(8)?;
            }
            NUMERIC | STRING | BINARY => {
                self.bytes_prefixed()?;
            }
            ARRAY => {
                let count = self.varint()?;
                for _ in 0..count {
                    self.skip_value(depth + 1)?;
                }
            }
            OBJECT => {
                let count = self.varint()?;
                for _ in 0..count {
                    self.bytes_prefixed()?;
                    self.skip_value(depth + 1)?;
                }
            }
            tag => return Err(corrupt(&format!("unknown tag {tag}"))),
        }
        Ok(())
    }

    /// The value `steps` reach inside the next value (NULL where a step is not there).
    /// With `to_end`, the cursor ends past the whole value; without, it is left wherever
    /// the value at the path was found, and must not be read on.
    fn value_at(&mut self, steps: &[PathStep], depth: usize, to_end: bool) -> Result<Value> {
        let Some((step, rest)) = steps.split_first() else {
            return self.value(depth);
        };
        if depth > MAX_DEPTH {
            return Err(corrupt("nesting too deep"));
        }
        match (self.bytes.get(self.pos).copied(), step) {
            (Some(OBJECT), PathStep::Key(key)) => {
                self.byte()?;
                let count = self.varint()?;
                let mut found = None;
                for _ in 0..count {
                    let name = self.bytes_prefixed()?;
                    if found.is_none() && name == key.as_bytes() {
                        let value = self.value_at(rest, depth + 1, to_end)?;
                        if !to_end {
                            return Ok(value);
                        }
                        found = Some(value);
                    } else {
                        self.skip_value(depth + 1)?;
                    }
                }
                Ok(found.unwrap_or(Value::Null))
            }
            (Some(ARRAY), PathStep::Index(i)) => {
                self.byte()?;
                let count = self.varint()?;
                let len = i64::try_from(count).map_err(|_| corrupt("item count overflow"))?;
                let at = if *i < 0 { len + *i } else { *i };
                let mut found = Value::Null;
                for n in 0..len {
                    if n == at {
                        found = self.value_at(rest, depth + 1, to_end)?;
                        if !to_end {
                            return Ok(found);
                        }
                    } else {
                        self.skip_value(depth + 1)?;
                    }
                }
                Ok(found)
            }
            _ => {
                self.skip_value(depth)?;
                Ok(Value::Null)
            }
        }
    }

    /// The next value, or the start of the next container (see [`Token`]). A container's
    /// count is checked against the bytes left, as a believable bound, not trusted.
    pub fn token(&mut self) -> Result<Token<'a>> {
        Ok(match self.byte()? {
            NULL => Token::Null,
            FALSE => Token::Bool(false),
            TRUE => Token::Bool(true),
            INT => Token::Int(unzigzag(self.varint()?)),
            FLOAT => {
                let mut b = [0u8; 8];
                b.copy_from_slice(self.take(8)?);
                Token::Float(f64::from_bits(u64::from_le_bytes(b)))
            }
            NUMERIC => Token::Numeric(self.str()?),
            STRING => Token::String(self.str()?),
            DATETIME => Token::DateTime(unzigzag(self.varint()?)),
            BINARY => Token::Binary(self.bytes_prefixed()?),
            ARRAY => Token::Array(self.count()?),
            OBJECT => Token::Object(self.count()?),
            tag => return Err(corrupt(&format!("unknown tag {tag}"))),
        })
    }

    /// The name of an object's next field, borrowed.
    pub fn name(&mut self) -> Result<&'a str> {
        self.str()
    }

    /// A length-prefixed UTF-8 string, borrowed.
    fn str(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes_prefixed()?).map_err(|_| corrupt("invalid UTF-8"))
    }

    /// The next value as [`encoded_value_into`] hands it on, read from its encoding
    /// without decoding it.
    pub fn encoded_value_into(&mut self, out: &mut Value) -> Result<()> {
        let start = self.pos;
        self.skip_value(1)?;
        let raw = self.bytes.get(start..self.pos).unwrap_or_default();
        match (raw, out) {
            ([NULL], out) => *out = Value::Null,
            (raw, Value::Binary(buffer)) => {
                buffer.clear();
                buffer.extend_from_slice(raw);
            }
            (raw, out) => *out = Value::Binary(raw.to_vec()),
        }
        Ok(())
    }

    /// Steps over the next value without building it.
    pub fn skip(&mut self) -> Result<()> {
        self.skip_value(0)
    }

    /// What kind of value comes next, without reading it; None at the end.
    pub fn peek_tag(&self) -> Option<Tag> {
        Some(match *self.bytes.get(self.pos)? {
            NUMERIC | STRING => Tag::Text,
            ARRAY | OBJECT => Tag::Nested,
            _ => Tag::Scalar,
        })
    }

    /// A string or numeric value, borrowed: whether it is numeric, and its text.
    pub fn text(&mut self) -> Result<(bool, &'a str)> {
        let numeric = match self.byte()? {
            NUMERIC => true,
            STRING => false,
            _ => return Err(corrupt("not a text value")),
        };
        let text =
            std::str::from_utf8(self.bytes_prefixed()?).map_err(|_| corrupt("invalid UTF-8"))?;
        Ok((numeric, text))
    }

    /// [`Reader::value`] into `out`: a string goes into the buffer of a string already
    /// there.
    /// Integers and floats, the most common scalars of a table's rows, are read here
    /// without going through [`Reader::token`].
    #[inline]
    pub fn value_into(&mut self, depth: usize, out: &mut Value) -> Result<()> {
        match (self.bytes.get(self.pos), &mut *out) {
            (Some(&INT), _) => {
                self.pos += 1;
                *out = Value::Int(unzigzag(self.varint()?));
            }
            (Some(&FLOAT), _) => {
                self.pos += 1;
                let mut b = [0u8; 8];
                b.copy_from_slice(self.take(8)?);
                *out = Value::Float(f64::from_bits(u64::from_le_bytes(b)));
            }
            (Some(&STRING), Value::String(buffer)) => {
                self.pos += 1;
                let text = std::str::from_utf8(self.bytes_prefixed()?)
                    .map_err(|_| corrupt("invalid UTF-8"))?;
                buffer.clear();
                buffer.push_str(text);
            }
            _ => *out = self.value(depth)?,
        }
        Ok(())
    }

    pub fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(corrupt("nesting too deep"));
        }
        Ok(match self.token()? {
            Token::Null => Value::Null,
            Token::Bool(b) => Value::Bool(b),
            Token::Int(i) => Value::Int(i),
            Token::Float(f) => Value::Float(f),
            Token::Numeric(n) => Value::Numeric(n.to_string()),
            Token::String(s) => Value::String(s.to_string()),
            Token::DateTime(m) => Value::DateTime(m),
            Token::Binary(b) => Value::Binary(b.to_vec()),
            Token::Array(count) => {
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            Token::Object(count) => Value::Object(Box::new(self.fields(count, depth)?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Object {
        let mut inner = Object::default();
        inner.insert("weight".into(), Value::String("250g".into()));
        inner.insert("v".into(), Value::Float(5.2));
        let mut o = Object::default();
        o.insert("null".into(), Value::Null);
        o.insert("t".into(), Value::Bool(true));
        o.insert("f".into(), Value::Bool(false));
        o.insert("neg".into(), Value::Int(i64::MIN));
        o.insert("pos".into(), Value::Int(i64::MAX));
        o.insert("nan".into(), Value::Float(f64::INFINITY));
        o.insert("num".into(), Value::Numeric("12.50".into()));
        o.insert("when".into(), Value::DateTime(-1_234_567));
        o.insert("bin".into(), Value::Binary(vec![0, 255, 7]));
        o.insert(
            "arr".into(),
            Value::Array(vec![Value::Int(1), Value::Object(Box::new(inner.clone()))]),
        );
        o.insert("obj".into(), Value::Object(Box::new(inner)));
        o
    }

    #[test]
    fn round_trips_every_type() {
        let o = sample();
        let bytes = encode_object(&o);
        assert_eq!(decode_object(&bytes).unwrap(), o);
        let v = Value::Object(Box::new(o));
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(decode(&out).unwrap(), v);
    }

    #[test]
    fn fields_decode_along_paths_as_followed_values() {
        use crate::doc::path::follow_path;
        let o = sample();
        let bytes = encode_object(&o);
        let key = |k: &str| PathStep::Key(k.into());
        // Slot 0 takes a path through "arr", slot 1 one through "obj", slot 2 "num" whole.
        let cases: Vec<(Vec<PathStep>, Vec<PathStep>)> = vec![
            (vec![PathStep::Index(1), key("weight")], vec![key("v")]),
            (vec![PathStep::Index(-2)], vec![key("missing")]),
            (vec![PathStep::Index(5)], vec![key("weight"), key("deeper")]),
            (vec![key("not an object")], vec![PathStep::Index(0)]),
            (vec![], vec![]),
        ];
        for (arr, obj) in cases {
            let paths = [arr.clone(), obj.clone(), Vec::new()];
            let mut got = vec![Value::Null; 3];
            decode_object_fields_at(
                &bytes,
                |_, name| {
                    ["arr", "obj", "num"]
                        .iter()
                        .position(|n| n.as_bytes() == name)
                },
                |slot| paths.get(slot).map_or(&[][..], Vec::as_slice),
                usize::MAX,
                |slot, v| got[slot] = v,
            )
            .unwrap();
            let want = vec![
                follow_path(o["arr"].clone(), &arr),
                follow_path(o["obj"].clone(), &obj),
                o["num"].clone(),
            ];
            assert_eq!(got, want, "{arr:?} {obj:?}");
        }
        // Truncated input is an error along a path too.
        let paths = [vec![PathStep::Index(1), key("v")]];
        for cut in 0..bytes.len() {
            let r = decode_object_fields_at(
                &bytes[..cut],
                |_, name| (name == b"arr").then_some(0),
                |slot| paths.get(slot).map_or(&[][..], Vec::as_slice),
                usize::MAX,
                |_, _| {},
            );
            assert!(r.is_err(), "cut at {cut}");
        }
    }

    /// Reading stops once the wanted fields are found: the fields after them are not
    /// read (a cut there goes unnoticed), while a cut before them is still an error.
    #[test]
    fn reading_stops_once_the_wanted_fields_are_found() {
        let mut o = Object::default();
        o.insert("a".into(), Value::Int(1));
        o.insert("b".into(), Value::String("two".into()));
        o.insert("tail".into(), Value::Array(vec![Value::Int(3); 50]));
        let bytes = encode_object(&o);
        let read = |bytes: &[u8], wanted: usize| {
            let mut got = vec![Value::Null; 2];
            decode_object_fields_at(
                bytes,
                |_, name| match name {
                    b"b" => Some(0),
                    b"a" => Some(1),
                    _ => None,
                },
                |_| &[][..],
                wanted,
                |slot, v| got[slot] = v,
            )
            .map(|()| got)
        };
        let want = vec![Value::String("two".into()), Value::Int(1)];
        assert_eq!(read(&bytes, 2).unwrap(), want);
        assert_eq!(read(&bytes, usize::MAX).unwrap(), want);
        let cut = &bytes[..bytes.len() - 10];
        assert_eq!(read(cut, 2).unwrap(), want);
        assert!(read(cut, usize::MAX).is_err());
        // Wanting both, a record cut inside "b" is an error.
        let in_b = bytes.windows(3).position(|w| w == b"two").unwrap() + 1;
        assert!(read(&bytes[..in_b], 2).is_err());
    }

    /// A path into a wanted field: where more wanted fields follow, the reader steps
    /// past the rest of the field to them; in the last wanted field, it stops at the
    /// value the path reaches.
    #[test]
    fn a_path_into_the_last_wanted_field_reads_no_further() {
        let mut inner = Object::default();
        inner.insert("x".into(), Value::Int(7));
        inner.insert("rest".into(), Value::Array(vec![Value::Int(3); 50]));
        let mut o = Object::default();
        o.insert("obj".into(), Value::Object(Box::new(inner)));
        o.insert("after".into(), Value::String("five".into()));
        let bytes = encode_object(&o);
        let path = [PathStep::Key("x".into())];
        let read = |bytes: &[u8], slots: &[&[u8]], wanted: usize| {
            let mut got = vec![Value::Null; slots.len()];
            decode_object_fields_at(
                bytes,
                |_, name| slots.iter().position(|s| *s == name),
                |slot| if slot == 0 { &path[..] } else { &[][..] },
                wanted,
                |slot, v| got[slot] = v,
            )
            .map(|()| got)
        };
        let both: &[&[u8]] = &[b"obj", b"after"];
        let want = vec![Value::Int(7), Value::String("five".into())];
        assert_eq!(read(&bytes, both, 2).unwrap(), want);
        assert_eq!(read(&bytes, both, usize::MAX).unwrap(), want);
        // Cut inside obj's "rest": the path's value comes before the cut, but "after"
        // cannot be reached.
        let in_rest = bytes.len() - 20;
        assert!(read(&bytes[..in_rest], both, 2).is_err());
        // Wanting obj.x alone, the cut is never reached.
        let only: &[&[u8]] = &[b"obj"];
        assert_eq!(
            read(&bytes[..in_rest], only, 1).unwrap(),
            vec![Value::Int(7)]
        );
        assert!(read(&bytes[..in_rest], only, usize::MAX).is_err());
    }

    #[test]
    fn fields_encode_as_the_object_holding_them() {
        let o = sample();
        let mut out = Vec::new();
        encode_fields(o.iter().map(|(k, v)| (k.as_str(), v)), &mut out);
        assert_eq!(out, encode_object(&o));
        assert_eq!(decode_object(&out).unwrap(), o);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = encode_object(&sample());
        for cut in 0..bytes.len() {
            assert!(decode_object(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn objects_decode_picked_fields_only() {
        let o = sample();
        let bytes = encode_object(&o);
        let keep = ["obj", "num", "absent"];
        let pick = |name: &[u8]| keep.iter().position(|k| k.as_bytes() == name);
        let mut kept = vec![None; keep.len()];
        decode_object_fields(&bytes, pick, |at, v| kept[at] = Some(v)).unwrap();
        assert_eq!(
            kept,
            vec![o.get("obj").cloned(), o.get("num").cloned(), None]
        );
        assert!(kept[0].is_some() && kept[1].is_some());
        for cut in 0..bytes.len() {
            assert!(
                decode_object_fields(&bytes[..cut], pick, |_, _| {}).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn huge_counts_are_rejected() {
        let mut b = vec![ARRAY];
        put_varint(&mut b, u64::MAX);
        assert!(decode(&b).is_err());
    }
}
