//! Order-preserving encoding of index keys: tuples of [`Value`]s as byte strings whose
//! `memcmp` order is the order of the tuples, and back.
//!
//! The order (implemented directly on values by [`compare_keys`]) is total:
//!
//! ```text
//! NULL < false < true < numbers < strings < datetimes < binaries < arrays < objects
//! numbers: -Infinity < negatives < 0 < positives < +Infinity < NaN
//! ```
//!
//! Numbers of every kind (`Int`, `Float`, `Numeric`) are compared by their numeric value:
//! `Int(2)`, `Float(2.0)` and `Numeric("2.00")` encode to the same bytes, `-0.0` equals
//! `0.0`, and all NaNs are equal. The numeric value of a `Float` is its shortest
//! round-trip decimal (`0.1` is exactly one tenth) when its magnitude is below 2^53, and
//! its exact value (an integer) above, so that floats are strictly ordered among
//! themselves, and distinct integers (`i64` and big `Numeric`s alike) never encode equal.
//! Strings and binaries compare bytewise; arrays and objects compare by the bytes of
//! their JSON text ([`crate::doc::json::to_json`]); datetimes by their microseconds.
//! A `Numeric` whose text is not canonical numeric text is treated as a `String`.
//!
//! A compound key is the concatenation of its values' encodings; each is self-delimiting,
//! so a key is a byte prefix of every longer key that extends its tuple:
//!
//! ```text
//! value    = 0x05                                    NULL
//!          | 0x10 | 0x11                             false | true
//!          | 0x20 | 0x22 | 0x24 | 0x25               -Infinity | zero | +Infinity | NaN
//!          | 0x23 exp(E) digits                       positive 0.d1d2…dn × 10^E
//!          | 0x21 exp(!E) !digits                     negative (every byte complemented)
//!          | 0x30 escaped                              string (UTF-8 bytes)
//!          | 0x40 (micros XOR 1<<63) u64 BE            datetime
//!          | 0x50 escaped                              binary
//!          | 0x60 escaped | 0x70 escaped               array | object, as JSON text
//! escaped  = bytes with 0x00 written 0x00 0xFF, then 0x00 0x01
//! exp(v)   = 0x80+n, v in n bytes BE (v >= 0) | 0x7F-n, !v in n bytes BE complemented (v < 0)
//! digits   = decimal digits in pairs p, one byte 2p+1 each, the last pair 2p (even)
//! entry    = key | 0xF0 escaped(document id)
//! ```
//!
//! Digits carry no leading or trailing zeros (an odd count pads the last pair with 0), so
//! every number has exactly one encoding.
//!
//! Decoding gives back a value that compares equal to the encoded one, normalized: a
//! number comes back as `Int` if it is an integer that fits `i64`; else as `Float` if a
//! float has exactly that numeric value (as defined above); else as `Numeric` in canonical
//! text (no trailing fractional zeros). So `Float(2.0)`, `Float(-0.0)` and
//! `Numeric("2.0")` decode as `Int`, `Numeric("1.5")` as `Float(1.5)`, and
//! `Numeric("0.10000000000000000001")` stays `Numeric`; a `Numeric` with non-numeric text
//! comes back as a `String`. Every other value round-trips exactly (arrays and objects
//! through their JSON text, as [`crate::doc::json`] round-trips them). Decoding refuses numbers whose decimal exponent is beyond ±[`MAX_DECODE_EXP`].

use std::cmp::Ordering;

use super::json::{from_json, to_json};
use super::text::is_numeric_text;
use super::value::Value;
use crate::error::{Error, Result};

const TAG_NULL: u8 = 0x05;
const TAG_FALSE: u8 = 0x10;
const TAG_TRUE: u8 = 0x11;
const TAG_NEG_INF: u8 = 0x20;
const TAG_NEG: u8 = 0x21;
const TAG_ZERO: u8 = 0x22;
const TAG_POS: u8 = 0x23;
const TAG_POS_INF: u8 = 0x24;
const TAG_NAN: u8 = 0x25;
const TAG_STRING: u8 = 0x30;
const TAG_DATETIME: u8 = 0x40;
const TAG_BINARY: u8 = 0x50;
const TAG_ARRAY: u8 = 0x60;
const TAG_OBJECT: u8 = 0x70;
/// Marks the document id that ends an index entry; above every value tag.
const TAG_DOC_ID: u8 = 0xF0;

/// Largest decimal exponent (in magnitude) a decoded number may have; larger ones would
/// need a text of that many zeros.
pub const MAX_DECODE_EXP: i64 = 100_000;

/// 2^53: floats at or above this magnitude are integers and keyed by their exact value.
const EXACT_FLOAT_FROM: f64 = 9_007_199_254_740_992.0;

/// A non-zero finite decimal magnitude: 0.d1d2…dn × 10^exp, d1 and dn non-zero.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Decimal {
    exp: i64,
    digits: Vec<u8>,
}

/// A number as it is ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Num {
    NegInf,
    Neg(Decimal),
    Zero,
    Pos(Decimal),
    PosInf,
    NaN,
}

impl Num {
    fn rank(&self) -> u8 {
        match self {
            Num::NegInf => 0,
            Num::Neg(_) => 1,
            Num::Zero => 2,
            Num::Pos(_) => 3,
            Num::PosInf => 4,
            Num::NaN => 5,
        }
    }

    fn cmp(&self, other: &Num) -> Ordering {
        match (self, other) {
            (Num::Pos(a), Num::Pos(b)) => a.cmp(b),
            (Num::Neg(a), Num::Neg(b)) => b.cmp(a),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Builds a decimal from a digit string (ASCII digits, no sign) whose first `int_len`
/// digits are the integer part; None if all digits are zero.
fn decimal_from_digits(ascii: &[u8], int_len: usize) -> Option<Decimal> {
    let lead = ascii.iter().take_while(|&&b| b == b'0').count();
    let rest = ascii.get(lead..)?;
    let trail = rest.iter().rev().take_while(|&&b| b == b'0').count();
    let significant = rest.get(..rest.len() - trail)?;
    if significant.is_empty() {
        return None;
    }
    let exp = i64::try_from(int_len).unwrap_or(i64::MAX) - i64::try_from(lead).unwrap_or(0);
    Some(Decimal {
        exp,
        digits: significant.iter().map(|b| b - b'0').collect(),
    })
}

fn signed(negative: bool, d: Option<Decimal>) -> Num {
    match (d, negative) {
        (None, _) => Num::Zero,
        (Some(d), false) => Num::Pos(d),
        (Some(d), true) => Num::Neg(d),
    }
}

fn num_of_int(i: i64) -> Num {
    let text = i.unsigned_abs().to_string();
    signed(i < 0, decimal_from_digits(text.as_bytes(), text.len()))
}

fn num_of_float(f: f64) -> Num {
    if f.is_nan() {
        return Num::NaN;
    }
    if f.is_infinite() {
        return if f > 0.0 { Num::PosInf } else { Num::NegInf };
    }
    if f == 0.0 {
        return Num::Zero;
    }
    let m = f.abs();
    let d = if m < EXACT_FLOAT_FROM {
        // Shortest round-trip digits, in the form "d.ddde±x".
        let text = format!("{m:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        decimal_from_digits(&digits, 1).map(|mut d| {
            d.exp += exp;
            d
        })
    } else {
        // An integer: its exact digits.
        let text = format!("{m:.0}");
        decimal_from_digits(text.as_bytes(), text.len())
    };
    signed(f < 0.0, d)
}

/// The number of a canonical numeric text, or None if the text is not one.
fn num_of_numeric(text: &str) -> Option<Num> {
    if !is_numeric_text(text) {
        return None;
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut ascii = Vec::with_capacity(int_part.len() + frac.len());
    ascii.extend_from_slice(int_part.as_bytes());
    ascii.extend_from_slice(frac.as_bytes());
    Some(signed(
        negative,
        decimal_from_digits(&ascii, int_part.len()),
    ))
}

/// The number a value stands for, if it is a number.
fn num_of(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) => Some(num_of_int(*i)),
        Value::Float(f) => Some(num_of_float(*f)),
        Value::Numeric(t) => num_of_numeric(t),
        _ => None,
    }
}

/// A value's class in the order across types, and what orders it within the class.
enum Class<'a> {
    Null,
    Bool(bool),
    Num(Num),
    Str(&'a [u8]),
    DateTime(i64),
    Binary(&'a [u8]),
    Array(String),
    Object(String),
}

impl Class<'_> {
    fn rank(&self) -> u8 {
        match self {
            Class::Null => 0,
            Class::Bool(_) => 1,
            Class::Num(_) => 2,
            Class::Str(_) => 3,
            Class::DateTime(_) => 4,
            Class::Binary(_) => 5,
            Class::Array(_) => 6,
            Class::Object(_) => 7,
        }
    }
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(&to_json(v)).unwrap_or_default()
}

fn class_of(v: &Value) -> Class<'_> {
    match v {
        Value::Null => Class::Null,
        Value::Bool(b) => Class::Bool(*b),
        Value::Int(_) | Value::Float(_) => Class::Num(num_of(v).unwrap_or(Num::NaN)),
        Value::Numeric(t) => match num_of_numeric(t) {
            Some(n) => Class::Num(n),
            None => Class::Str(t.as_bytes()),
        },
        Value::String(s) => Class::Str(s.as_bytes()),
        Value::DateTime(m) => Class::DateTime(*m),
        Value::Binary(b) => Class::Binary(b),
        Value::Array(_) => Class::Array(json_text(v)),
        Value::Object(_) => Class::Object(json_text(v)),
    }
}

/// Compares two values in the key order (the module doc); the reference for the encoding.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    let (a, b) = (class_of(a), class_of(b));
    match (&a, &b) {
        (Class::Bool(x), Class::Bool(y)) => x.cmp(y),
        (Class::Num(x), Class::Num(y)) => x.cmp(y),
        (Class::Str(x), Class::Str(y)) | (Class::Binary(x), Class::Binary(y)) => x.cmp(y),
        (Class::DateTime(x), Class::DateTime(y)) => x.cmp(y),
        (Class::Array(x), Class::Array(y)) | (Class::Object(x), Class::Object(y)) => x.cmp(y),
        _ => a.rank().cmp(&b.rank()),
    }
}

/// Compares two key tuples value by value; a tuple that is a prefix of the other is less.
/// `encode_key(a).cmp(&encode_key(b))` is always the same as this.
pub fn compare_keys(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match compare_values(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

fn put_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Writes an i64 so that byte order is numeric order (see the module doc).
fn put_ordered_i64(out: &mut Vec<u8>, v: i64) {
    let (m, negative) = if v >= 0 {
        (v as u64, false)
    } else {
        (!v as u64, true)
    };
    let n = 8 - (m.leading_zeros() / 8) as usize;
    let be = m.to_be_bytes();
    let bytes = be.get(8 - n..).unwrap_or(&[]);
    if negative {
        out.push(0x7F - n as u8);
        out.extend(bytes.iter().map(|b| !b));
    } else {
        out.push(0x80 + n as u8);
        out.extend_from_slice(bytes);
    }
}

fn put_digits(out: &mut Vec<u8>, digits: &[u8], complement: bool) {
    let pairs = digits.len().div_ceil(2);
    for (i, pair) in digits.chunks(2).enumerate() {
        let hi = pair.first().copied().unwrap_or(0);
        let lo = pair.get(1).copied().unwrap_or(0);
        let p = hi * 10 + lo;
        let byte = if i + 1 == pairs { 2 * p } else { 2 * p + 1 };
        out.push(if complement { !byte } else { byte });
    }
}

fn put_num(out: &mut Vec<u8>, n: &Num) {
    match n {
        Num::NegInf => out.push(TAG_NEG_INF),
        Num::Zero => out.push(TAG_ZERO),
        Num::PosInf => out.push(TAG_POS_INF),
        Num::NaN => out.push(TAG_NAN),
        Num::Pos(d) => {
            out.push(TAG_POS);
            put_ordered_i64(out, d.exp);
            put_digits(out, &d.digits, false);
        }
        Num::Neg(d) => {
            out.push(TAG_NEG);
            put_ordered_i64(out, !d.exp);
            put_digits(out, &d.digits, true);
        }
    }
}

/// Appends the encoding of one value.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match class_of(v) {
        Class::Null => out.push(TAG_NULL),
        Class::Bool(b) => out.push(if b { TAG_TRUE } else { TAG_FALSE }),
        Class::Num(n) => put_num(out, &n),
        Class::Str(s) => {
            out.push(TAG_STRING);
            put_escaped(out, s);
        }
        Class::DateTime(m) => {
            out.push(TAG_DATETIME);
            out.extend_from_slice(&((m as u64) ^ (1 << 63)).to_be_bytes());
        }
        Class::Binary(b) => {
            out.push(TAG_BINARY);
            put_escaped(out, b);
        }
        Class::Array(t) => {
            out.push(TAG_ARRAY);
            put_escaped(out, t.as_bytes());
        }
        Class::Object(t) => {
            out.push(TAG_OBJECT);
            put_escaped(out, t.as_bytes());
        }
    }
}

/// Appends the encoding of a compound key: the values' encodings, concatenated.
pub fn encode_key(values: &[Value], out: &mut Vec<u8>) {
    for v in values {
        encode_value(v, out);
    }
}

/// An index entry: the key's values, then the document id, so that entries with equal
/// values are distinct and ordered by id.
pub fn encode_index_entry(values: &[Value], doc_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * values.len() + doc_id.len() + 3);
    encode_key(values, &mut out);
    out.push(TAG_DOC_ID);
    put_escaped(&mut out, doc_id.as_bytes());
    out
}

/// The least byte string greater than every string that starts with `prefix`, for the
/// exclusive end of a prefix scan; None if there is none (empty or all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Corruption(format!("index key: {what}"))
}

/// Reads encoded bytes from the front of a slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn byte(&mut self) -> Result<u8> {
        let b = self
            .peek()
            .ok_or_else(|| corrupt(format!("ends inside a value at byte {}", self.pos)))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self
            .bytes
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| corrupt(format!("ends inside a value at byte {}", self.pos)))?;
        self.pos += n;
        Ok(s)
    }

    /// Steps over an escaped byte string and its terminator, returning the bytes before
    /// the terminator as stored and whether any of them is an escaped zero.
    fn skip_escaped(&mut self) -> Result<(&'a [u8], bool)> {
        let start = self.pos;
        let mut escapes = false;
        loop {
            let rest = self.bytes.get(self.pos..).unwrap_or_default();
            let Some(zero) = memchr::memchr(0, rest) else {
                return Err(corrupt(format!(
                    "ends inside a value at byte {}",
                    self.bytes.len()
                )));
            };
            self.pos += zero + 1;
            match self.byte()? {
                0x01 => {
                    let stored = self.bytes.get(start..self.pos - 2).unwrap_or_default();
                    return Ok((stored, escapes));
                }
                0xFF => escapes = true,
                other => return Err(corrupt(format!("escape 0x00 0x{other:02x}"))),
            }
        }
    }

    fn escaped(&mut self) -> Result<Vec<u8>> {
        let (stored, escapes) = self.skip_escaped()?;
        Ok(if escapes {
            Reader::unescape(stored)
        } else {
            stored.to_vec()
        })
    }

    /// The bytes an escaped string stands for, from its stored form as
    /// [`Reader::skip_escaped`] checked it (every zero followed by 0xFF).
    fn unescape(stored: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(stored.len());
        let mut bytes = stored.iter();
        while let Some(&b) = bytes.next() {
            out.push(b);
            if b == 0 {
                bytes.next();
            }
        }
        out
    }

    fn text(&mut self) -> Result<String> {
        String::from_utf8(self.escaped()?).map_err(|_| corrupt("text is not UTF-8"))
    }

    fn ordered_i64(&mut self) -> Result<i64> {
        let head = self.byte()?;
        let (n, negative) = if head >= 0x80 {
            (usize::from(head - 0x80), false)
        } else {
            (usize::from(0x7F - head), true)
        };
        if n > 8 {
            return Err(corrupt(format!("exponent header 0x{head:02x}")));
        }
        let mut m = 0u64;
        for &b in self.take(n)? {
            m = (m << 8) | u64::from(if negative { !b } else { b });
        }
        let m = i64::try_from(m).map_err(|_| corrupt("exponent out of range"))?;
        Ok(if negative { !m } else { m })
    }

    fn digits(&mut self, complement: bool) -> Result<Vec<u8>> {
        let mut digits = Vec::new();
        loop {
            let raw = self.byte()?;
            let b = if complement { !raw } else { raw };
            let p = b / 2;
            if p > 99 {
                return Err(corrupt(format!("digit pair byte 0x{raw:02x}")));
            }
            digits.push(p / 10);
            digits.push(p % 10);
            if b % 2 == 0 {
                break;
            }
        }
        if digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.first() == Some(&0) || digits.last() == Some(&0) {
            return Err(corrupt("number digits are not canonical"));
        }
        Ok(digits)
    }

    /// Steps over the digit pairs of a number (see [`Reader::digits`]) without collecting
    /// them.
    fn skip_digits(&mut self, complement: bool) -> Result<()> {
        loop {
            let raw = self.byte()?;
            let b = if complement { !raw } else { raw };
            if b / 2 > 99 {
                return Err(corrupt(format!("digit pair byte 0x{raw:02x}")));
            }
            if b % 2 == 0 {
                return Ok(());
            }
        }
    }

    /// A number that is an integer within i64, read from its digit pairs without
    /// collecting them (index entries of integer columns are mostly these); None, with
    /// the reader where it was, for any other number (or a malformed one), which
    /// [`Reader::decimal`] then reads.
    fn small_integer(&mut self, negative: bool) -> Option<i64> {
        let start = self.pos;
        let read = self.try_small_integer(negative);
        if read.is_none() {
            self.pos = start;
        }
        read
    }

    fn try_small_integer(&mut self, negative: bool) -> Option<i64> {
        let e = self.ordered_i64().ok()?;
        let exp = if negative { !e } else { e };
        if !(1..=19).contains(&exp) {
            return None;
        }
        let (mut m, mut n) = (0u128, 0i64);
        loop {
            let raw = self.byte().ok()?;
            let b = if negative { !raw } else { raw };
            let pair = b / 2;
            let (high, low) = (pair / 10, pair % 10);
            // Not canonical (a leading zero, or a pair past 99): Reader::decimal says so.
            if pair > 99 || (n == 0 && high == 0) {
                return None;
            }
            let last = b % 2 == 0;
            if last && low == 0 {
                // The last pair's second digit pads an odd count.
                m = m * 10 + u128::from(high);
                n += 1;
            } else {
                m = m * 100 + u128::from(pair);
                n += 2;
            }
            if n > exp {
                return None; // a fraction
            }
            if last {
                break;
            }
        }
        // A canonical number ends in a non-zero digit.
        if m % 10 == 0 {
            return None;
        }
        for _ in n..exp {
            m *= 10;
        }
        match negative {
            false => i64::try_from(m).ok(),
            true => i64::try_from(-i128::try_from(m).ok()?).ok(),
        }
    }

    fn decimal(&mut self, negative: bool) -> Result<Decimal> {
        let e = self.ordered_i64()?;
        let exp = if negative { !e } else { e };
        if exp.unsigned_abs() > MAX_DECODE_EXP as u64 {
            return Err(Error::limit(format!(
                "index key number with decimal exponent {exp} is beyond the decodable ±{MAX_DECODE_EXP}"
            )));
        }
        let digits = self.digits(negative)?;
        Ok(Decimal { exp, digits })
    }

    /// Steps over one value without building it.
    fn skip_value(&mut self) -> Result<()> {
        match self.byte()? {
            TAG_NULL | TAG_FALSE | TAG_TRUE | TAG_NEG_INF | TAG_ZERO | TAG_POS_INF | TAG_NAN => {}
            TAG_POS => {
                self.ordered_i64()?;
                self.skip_digits(false)?;
            }
            TAG_NEG => {
                self.ordered_i64()?;
                self.skip_digits(true)?;
            }
            TAG_DATETIME => {
                self.take(8)?;
            }
            TAG_STRING | TAG_BINARY | TAG_ARRAY | TAG_OBJECT => {
                self.skip_escaped()?;
            }
            other => return Err(corrupt(format!("unknown tag 0x{other:02x}"))),
        }
        Ok(())
    }

    /// Steps over the values of an index entry up to its document id's tag, calling
    /// `at_end` with the offset where each ends.
    fn skip_entry_values_with(&mut self, mut at_end: impl FnMut(usize)) -> Result<()> {
        loop {
            match self.peek() {
                Some(TAG_DOC_ID) => return Ok(()),
                Some(_) => {
                    self.skip_value()?;
                    at_end(self.pos);
                }
                None => return Err(corrupt("index entry without a document id")),
            }
        }
    }

    fn skip_entry_values(&mut self) -> Result<()> {
        self.skip_entry_values_with(|_| ())
    }

    fn value(&mut self) -> Result<Value> {
        let tag = self.byte()?;
        Ok(match tag {
            TAG_NULL => Value::Null,
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_NEG_INF => Value::Float(f64::NEG_INFINITY),
            TAG_ZERO => Value::Int(0),
            TAG_POS_INF => Value::Float(f64::INFINITY),
            TAG_NAN => Value::Float(f64::NAN),
            TAG_POS | TAG_NEG => {
                let negative = tag == TAG_NEG;
                match self.small_integer(negative) {
                    Some(i) => Value::Int(i),
                    None => value_of_decimal(negative, self.decimal(negative)?),
                }
            }
            TAG_STRING => Value::String(self.text()?),
            TAG_DATETIME => {
                let mut be = [0u8; 8];
                be.copy_from_slice(self.take(8)?);
                Value::DateTime((u64::from_be_bytes(be) ^ (1 << 63)) as i64)
            }
            TAG_BINARY => Value::Binary(self.escaped()?),
            TAG_ARRAY | TAG_OBJECT => {
                let text = self.text()?;
                let json: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("JSON of a nested value: {e}")))?;
                let v = from_json(json).map_err(|e| corrupt(e.to_string()))?;
                match (&v, tag) {
                    (Value::Array(_), TAG_ARRAY) | (Value::Object(_), TAG_OBJECT) => v,
                    _ => return Err(corrupt(format!("{} under tag 0x{tag:02x}", v.type_name()))),
                }
            }
            other => return Err(corrupt(format!("unknown tag 0x{other:02x}"))),
        })
    }
}

/// The value a decoded decimal comes back as (see the module doc).
fn value_of_decimal(negative: bool, d: Decimal) -> Value {
    let len = d.digits.len() as i64;
    if d.exp >= len && d.exp <= 19 {
        let mut m: u128 = 0;
        for &digit in &d.digits {
            m = m * 10 + u128::from(digit);
        }
        for _ in len..d.exp {
            m *= 10;
        }
        let i = if negative {
            i64::try_from(-(m as i128)).ok()
        } else {
            i64::try_from(m).ok()
        };
        if let Some(i) = i {
            return Value::Int(i);
        }
    }
    let digits: String = d.digits.iter().map(|&x| char::from(b'0' + x)).collect();
    let sign = if negative { "-" } else { "" };
    let num = if negative {
        Num::Neg(d.clone())
    } else {
        Num::Pos(d.clone())
    };
    if let Ok(f) = format!("{sign}0.{digits}e{}", d.exp).parse::<f64>()
        && f.is_finite()
        && num_of_float(f) == num
    {
        return Value::Float(f);
    }
    let text = if d.exp <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(d.exp.unsigned_abs() as usize)
        )
    } else if d.exp >= len {
        format!("{sign}{digits}{}", "0".repeat((d.exp - len) as usize))
    } else {
        let (int_part, frac) = digits.split_at(d.exp as usize);
        format!("{sign}{int_part}.{frac}")
    };
    Value::Numeric(text)
}

/// Decodes a key written by [`encode_key`] (see the module doc for what comes back).
pub fn decode_key(bytes: &[u8]) -> Result<Vec<Value>> {
    let mut r = Reader { bytes, pos: 0 };
    let mut values = Vec::new();
    while r.peek().is_some() {
        values.push(r.value()?);
    }
    Ok(values)
}

/// The encodings of the values a comparison with `v` can match lie in
/// `[start, end)` of these two tag bytes: every value `compare` can order against `v`
/// (numbers of any kind for a number; arrays and objects together, as SQL compares
/// them by JSON text).
pub fn class_tags(v: &Value) -> (u8, u8) {
    match class_of(v) {
        Class::Null => (TAG_NULL, TAG_NULL + 1),
        Class::Bool(_) => (TAG_FALSE, TAG_TRUE + 1),
        Class::Num(_) => (TAG_NEG_INF, TAG_NAN + 1),
        Class::Str(_) => (TAG_STRING, TAG_STRING + 1),
        Class::DateTime(_) => (TAG_DATETIME, TAG_DATETIME + 1),
        Class::Binary(_) => (TAG_BINARY, TAG_BINARY + 1),
        Class::Array(_) | Class::Object(_) => (TAG_ARRAY, TAG_OBJECT + 1),
    }
}

/// The tag byte of NULL, which orders before every other value.
pub const NULL_TAG: u8 = TAG_NULL;

/// The document id at the end of an index entry.
pub fn entry_doc_id(entry: &[u8]) -> Result<String> {
    let mut id = Vec::new();
    append_entry_doc_id(entry, &mut id)?;
    String::from_utf8(id).map_err(|_| corrupt("text is not UTF-8"))
}

/// [`entry_doc_id`] appended to `out` as bytes (checked to be UTF-8), read without
/// decoding the values before it.
pub fn append_entry_doc_id(entry: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut r = Reader {
        bytes: entry,
        pos: 0,
    };
    r.skip_entry_values()?;
    r.pos += 1;
    let (stored, escapes) = r.skip_escaped()?;
    if r.peek().is_some() {
        return Err(corrupt("bytes after the document id"));
    }
    let from = out.len();
    if escapes {
        out.extend_from_slice(&Reader::unescape(stored));
    } else {
        out.extend_from_slice(stored);
    }
    if std::str::from_utf8(out.get(from..).unwrap_or_default()).is_err() {
        out.truncate(from);
        return Err(corrupt("text is not UTF-8"));
    }
    Ok(())
}

/// The end offset of each value of an index entry's key (the last one is where the
/// document id begins): `entry[..ends[k]]` is the encoding of its first `k + 1` values.
pub fn entry_value_ends(entry: &[u8]) -> Result<Vec<usize>> {
    let mut r = Reader {
        bytes: entry,
        pos: 0,
    };
    let mut ends = Vec::new();
    r.skip_entry_values_with(|end| ends.push(end))?;
    Ok(ends)
}

/// Splits an index entry written by [`encode_index_entry`] into its values and document id.
pub fn split_index_entry(bytes: &[u8]) -> Result<(Vec<Value>, String)> {
    let mut r = Reader { bytes, pos: 0 };
    let mut values = Vec::new();
    loop {
        match r.peek() {
            Some(TAG_DOC_ID) => break,
            Some(_) => values.push(r.value()?),
            None => return Err(corrupt("index entry without a document id")),
        }
    }
    r.pos += 1;
    let id = r.text()?;
    if r.peek().is_some() {
        return Err(corrupt("bytes after the document id"));
    }
    Ok((values, id))
}

/// [`split_index_entry`] for a row built from the entry: each value whose position
/// `wanted` accepts goes to `put`, the others are skipped without being decoded; the
/// document id is read only when `want_id`.
pub fn read_index_entry(
    bytes: &[u8],
    wanted: impl Fn(usize) -> bool,
    want_id: bool,
    mut put: impl FnMut(usize, Value),
) -> Result<Option<String>> {
    let mut r = Reader { bytes, pos: 0 };
    let mut i = 0;
    loop {
        match r.peek() {
            Some(TAG_DOC_ID) => break,
            Some(_) if wanted(i) => put(i, r.value()?),
            Some(_) => r.skip_value()?,
            None => return Err(corrupt("index entry without a document id")),
        }
        i += 1;
    }
    if !want_id {
        return Ok(None);
    }
    r.pos += 1;
    let id = r.text()?;
    if r.peek().is_some() {
        return Err(corrupt("bytes after the document id"));
    }
    Ok(Some(id))
}

/// How many leading bytes of an index entry its first `fields` values take: entries
/// whose values there are equal share those bytes (the encoding is by value: equal
/// numbers of any kind, both zeros, every NaN encode alike).
pub fn index_entry_prefix_len(bytes: &[u8], fields: usize) -> Result<usize> {
    let mut r = Reader { bytes, pos: 0 };
    for _ in 0..fields {
        match r.peek() {
            Some(TAG_DOC_ID) | None => return Err(corrupt("index entry with too few values")),
            Some(_) => r.skip_value()?,
        }
    }
    Ok(r.pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(values: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(values, &mut out);
        out
    }

    fn enc1(v: Value) -> Vec<u8> {
        enc(&[v])
    }

    fn num(t: &str) -> Value {
        Value::Numeric(t.to_string())
    }

    #[test]
    fn index_entries_with_equal_leading_values_share_their_prefix() {
        let a = encode_index_entry(&[Value::Int(2), Value::String("a".into())], "x");
        let b = encode_index_entry(&[Value::Float(2.0), Value::String("b".into())], "y");
        let c = encode_index_entry(&[Value::Int(3), Value::String("a".into())], "x");
        let one = |e: &[u8]| index_entry_prefix_len(e, 1).unwrap();
        assert_eq!(a[..one(&a)], b[..one(&b)]);
        assert_ne!(a[..one(&a)], c[..one(&c)]);
        let two = |e: &[u8]| index_entry_prefix_len(e, 2).unwrap();
        assert_ne!(a[..two(&a)], b[..two(&b)]);
        assert!(two(&a) < a.len());
        assert_eq!(index_entry_prefix_len(&a, 0).unwrap(), 0);
        assert!(index_entry_prefix_len(&a, 3).is_err());
    }

    #[test]
    fn numbers_of_every_kind_compare_by_value() {
        assert_eq!(enc1(Value::Int(2)), enc1(Value::Float(2.0)));
        assert_eq!(enc1(Value::Int(2)), enc1(num("2.000")));
        assert_eq!(enc1(Value::Float(-0.0)), enc1(Value::Float(0.0)));
        assert_eq!(enc1(Value::Float(0.0)), enc1(num("-0.00")));
        assert_eq!(enc1(Value::Float(0.1)), enc1(num("0.1")));
        assert_eq!(enc1(Value::Float(f64::NAN)), enc1(Value::Float(-f64::NAN)));
        let ordered = [
            Value::Float(f64::NEG_INFINITY),
            Value::Float(-1e300),
            Value::Int(i64::MIN),
            Value::Int(-1000),
            Value::Float(-1.5),
            Value::Int(-1),
            num("-0.001"),
            Value::Int(0),
            num("0.000000000000000000000000001"),
            Value::Float(1e-7),
            Value::Int(1),
            Value::Float(1.5),
            num("1.50000000000000000001"),
            Value::Int(2),
            Value::Int(10),
            Value::Int(100),
            Value::Int((1 << 53) + 1),
            Value::Int(i64::MAX - 1),
            Value::Int(i64::MAX),
            num("9223372036854775808"),
            Value::Float(1e300),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NAN),
        ];
        for w in ordered.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            assert!(enc1(a.clone()) < enc1(b.clone()), "{a:?} < {b:?}");
            assert_eq!(compare_values(a, b), Ordering::Less, "{a:?} < {b:?}");
        }
    }

    #[test]
    fn big_integers_stay_distinct() {
        let a = Value::Int((1 << 60) + 1);
        let b = Value::Int(1 << 60);
        assert!(enc1(b.clone()) < enc1(a.clone()));
        // 2^60 is exactly a float, 2^60 + 1 is not.
        assert_eq!(enc1(Value::Float((1u64 << 60) as f64)), enc1(b));
        assert!(enc1(Value::Float((1u64 << 60) as f64)) < enc1(a));
    }

    #[test]
    fn types_order_and_strings_escape() {
        let ordered = [
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Float(f64::NAN),
            Value::String(String::new()),
            Value::String("a".into()),
            Value::String("a\0".into()),
            Value::String("a\0\0".into()),
            Value::String("a\u{1}".into()),
            Value::String("ab".into()),
            num("not a number"), // treated as a string
            Value::DateTime(i64::MIN),
            Value::DateTime(-1),
            Value::DateTime(0),
            Value::DateTime(i64::MAX),
            Value::Binary(vec![]),
            Value::Binary(vec![0]),
            Value::Binary(vec![0, 0]),
            Value::Binary(vec![0xFF]),
            Value::Array(vec![Value::Int(1)]), // JSON text: "[1]" < "[]"
            Value::Array(vec![]),
            Value::Object(Box::default()),
        ];
        for w in ordered.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            assert!(enc1(a.clone()) < enc1(b.clone()), "{a:?} < {b:?}");
            assert_eq!(compare_values(a, b), Ordering::Less, "{a:?} < {b:?}");
        }
    }

    #[test]
    fn compound_keys_order_by_first_value_then_next() {
        let a = enc(&[Value::String("a".into()), Value::Int(9)]);
        let b = enc(&[Value::String("a\0".into()), Value::Int(1)]);
        let c = enc(&[Value::String("a".into())]);
        assert!(c < a && a < b);
        assert!(a.starts_with(&c));
    }

    #[test]
    fn decode_normalizes_numbers_as_documented() {
        let cases = [
            (Value::Float(2.0), Value::Int(2)),
            (Value::Float(-0.0), Value::Int(0)),
            (num("2.0"), Value::Int(2)),
            (num("1.5"), Value::Float(1.5)),
            (num("-0.25"), Value::Float(-0.25)),
            (num("0.10000000000000000001"), num("0.10000000000000000001")),
            (
                num("-123456789012345678901234"),
                num("-123456789012345678901234"),
            ),
            (
                num("-1234567.8901234567890123"),
                num("-1234567.8901234567890123"),
            ),
            (num("9223372036854775809"), num("9223372036854775809")),
            (
                num("9223372036854775808"),
                Value::Float(9223372036854775808.0),
            ),
            (Value::Int(i64::MIN), Value::Int(i64::MIN)),
            (Value::Float(1e300), Value::Float(1e300)),
            (Value::Float(5e-324), Value::Float(5e-324)),
        ];
        for (input, want) in cases {
            let got = decode_key(&enc1(input.clone())).unwrap();
            assert_eq!(got, vec![want], "{input:?}");
        }
    }

    #[test]
    fn index_entries_split_and_order_by_id() {
        let vals = vec![Value::String("x\0y".into()), Value::Null];
        let a = encode_index_entry(&vals, "doc-1");
        let b = encode_index_entry(&vals, "doc-2");
        assert!(a < b);
        assert!(a.starts_with(&enc(&vals)));
        assert_eq!(split_index_entry(&a).unwrap(), (vals, "doc-1".to_string()));
        let c = encode_index_entry(&[], "\0");
        assert_eq!(split_index_entry(&c).unwrap(), (vec![], "\0".to_string()));
        assert!(split_index_entry(&enc1(Value::Int(1))).is_err());
    }

    #[test]
    fn prefix_successor_bounds_prefix_scans() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
        let p = enc1(Value::String("a".into()));
        let succ = prefix_successor(&p).unwrap();
        let longer = enc(&[Value::String("a".into()), Value::Binary(vec![0xFF; 4])]);
        assert!(p <= longer && longer < succ);
        assert!(enc1(Value::String("a\0".into())) >= succ);
    }

    #[test]
    fn garbage_decodes_to_errors_not_panics() {
        let bad: &[&[u8]] = &[
            &[0x99],
            &[TAG_POS],
            &[TAG_POS, 0x81],
            &[TAG_POS, 0x81, 1, 201],
            &[TAG_POS, 0x80, 21, 0], // digits "1000": trailing zeros, not canonical
            &[TAG_POS, 0x80, 0],     // digits "00": leading zero
            &[TAG_POS, 0x80, 1],     // unterminated digits
            &[TAG_POS, 0x89],
            &[
                TAG_POS, 0x88, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2,
            ],
            &[TAG_STRING, b'a'],
            &[TAG_STRING, 0, 7],
            &[TAG_STRING, 0xC3, 0x28, 0, 1],
            &[TAG_DATETIME, 1, 2],
            &[TAG_ARRAY, b'{', b'}', 0, 1],
            &[TAG_OBJECT, b'x', 0, 1],
        ];
        for b in bad {
            assert!(decode_key(b).is_err(), "{b:?}");
        }
        // Stepping over a value checks what it steps over: an entry whose values or id
        // are cut short or badly escaped is an error.
        let good = encode_index_entry(&[Value::Int(-12), Value::String("a\0b".into())], "7");
        for cut in 0..good.len() {
            assert!(entry_doc_id(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(entry_doc_id(&[TAG_STRING, b'a', 0, 7, TAG_DOC_ID, b'7', 0, 1]).is_err());
        assert!(entry_doc_id(&[TAG_POS, 0x80, 201, TAG_DOC_ID, b'7', 0, 1]).is_err());
        for len in 0..64 {
            for seed in 0..64u8 {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
                    .collect();
                let _ = decode_key(&bytes);
                let _ = split_index_entry(&bytes);
                let _ = entry_doc_id(&bytes);
                let _ = entry_value_ends(&bytes);
            }
        }
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (-1000i64..1000).prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            (-1000i64..1000, 0u32..4)
                .prop_map(|(m, s)| Value::Float(m as f64 / 10f64.powi(s as i32))),
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-0.0),
                Just(9_007_199_254_740_993.0),
                Just(1e20),
            ]
            .prop_map(Value::Float),
            "-?[0-9]{1,25}(\\.[0-9]{1,25})?".prop_map(Value::Numeric),
            "[a\\x00b\\x01]{0,6}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
            any::<i64>().prop_map(Value::DateTime),
            prop::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()],
                0..6
            )
            .prop_map(Value::Binary),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(("[a-c$]{1,3}", inner), 0..3)
                    .prop_map(|fields| Value::Object(Box::new(fields.into_iter().collect()))),
            ]
        })
    }

    fn tuple() -> impl Strategy<Value = Vec<Value>> {
        prop::collection::vec(value(), 0..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn byte_order_is_compare_keys_order(a in tuple(), b in tuple()) {
            prop_assert_eq!(enc(&a).cmp(&enc(&b)), compare_keys(&a, &b));
        }

        #[test]
        fn decode_inverts_encode(a in tuple()) {
            let bytes = enc(&a);
            let back = decode_key(&bytes).unwrap();
            prop_assert_eq!(compare_keys(&back, &a), Ordering::Equal);
            prop_assert_eq!(enc(&back), bytes);
            let entry = encode_index_entry(&a, "id\0x");
            let (vals, id) = split_index_entry(&entry).unwrap();
            prop_assert_eq!(enc(&vals), enc(&a));
            prop_assert_eq!(id, "id\0x");
            // Stepping over the values (without decoding them) ends where each one's
            // encoding ends, and finds the same id.
            let ends: Vec<usize> = (1..=a.len()).map(|k| enc(&a[..k]).len()).collect();
            prop_assert_eq!(entry_value_ends(&entry).unwrap(), ends);
            prop_assert_eq!(entry_doc_id(&entry).unwrap(), "id\0x");
        }

        #[test]
        fn integers_decode_to_themselves(i in any::<i64>(), zeros in 0u32..6, small in -99_999i64..99_999) {
            for v in [i, small, small.saturating_mul(10i64.pow(zeros)), i / 10i64.pow(zeros)] {
                prop_assert_eq!(decode_key(&enc1(Value::Int(v))).unwrap(), vec![Value::Int(v)]);
            }
        }

        #[test]
        fn numbers_agree_with_native_comparison(x in any::<f64>(), y in any::<f64>(), i in any::<i64>(), j in any::<i64>()) {
            let key = |f: f64| if f.is_nan() { (1, 0.0) } else { (0, f) };
            let native = key(x).partial_cmp(&key(y)).unwrap_or(Ordering::Equal);
            prop_assert_eq!(enc1(Value::Float(x)).cmp(&enc1(Value::Float(y))), native);
            prop_assert_eq!(enc1(Value::Int(i)).cmp(&enc1(Value::Int(j))), i.cmp(&j));
            // An integer against a float that is an integer: exact comparison.
            let t = x.trunc();
            if t.is_finite() && t.abs() < 1e19 {
                let exact = (i as i128).cmp(&(t as i128));
                prop_assert_eq!(enc1(Value::Int(i)).cmp(&enc1(Value::Float(t))), exact);
            }
            // An integer against itself as a float, when the float is exact.
            if (i as f64) as i128 == i as i128 {
                prop_assert_eq!(enc1(Value::Int(i)), enc1(Value::Float(i as f64)));
            }
        }
    }
}
