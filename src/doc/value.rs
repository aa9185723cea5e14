//! `Value`: every value a document can hold, and `Object`, an ordered map of fields.

use indexmap::IndexMap;

/// The fields of an object, in insertion order. Hashed with foldhash: field names are
/// short and hashed on every decode, where SipHash was a tenth of a scan's time.
pub type Object = IndexMap<String, Value, foldhash::fast::RandomState>;

/// A document value. Every variant round-trips with its type through every codec.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A decimal number of arbitrary precision, kept as its canonical text
    /// (optional `-`, digits, optional `.` and digits; no exponent). Only declared
    /// `numeric` columns produce it.
    Numeric(String),
    String(String),
    /// A point in time, UTC, in microseconds since 1970-01-01T00:00:00Z.
    DateTime(i64),
    Binary(Vec<u8>),
    Array(Vec<Value>),
    /// Boxed: an [`Object`] inline would make every value (and so every row, and every
    /// value a scan moves) twice as large.
    Object(Box<Object>),
}

/// Bytes the allocator hands out for a request of `n` bytes (size classes of 16).
pub fn allocated(n: usize) -> usize {
    if n == 0 { 0 } else { n.div_ceil(16) * 16 }
}

/// The memory an object holds beyond its own struct: the hash table of its field
/// names, its entries, and what their names and values hold. An estimate for caches
/// that must keep to a byte budget: a decoded document takes several times its
/// encoded size.
pub fn object_heap_size(object: &Object) -> usize {
    // IndexMap: a hash table of indices (one control byte and one usize per bucket,
    // buckets a power of two at most 7/8 full) and a vector of (hash, key, value).
    let buckets = match object.len() {
        0 => 0,
        n => (n * 8 / 7 + 1).next_power_of_two().max(4),
    };
    let table = allocated(buckets * (1 + std::mem::size_of::<usize>()) + 16);
    let entry = std::mem::size_of::<usize>() + std::mem::size_of::<(String, Value)>();
    let entries = allocated(object.capacity() * entry);
    let fields: usize = object
        .iter()
        .map(|(k, v)| allocated(k.len()) + v.heap_size())
        .sum();
    table + entries + fields
}

impl Value {
    /// The memory the value holds beyond its own struct (see [`object_heap_size`]).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::DateTime(_) => {
                0
            }
            Value::Numeric(s) | Value::String(s) => allocated(s.capacity()),
            Value::Binary(b) => allocated(b.capacity()),
            Value::Array(items) => {
                allocated(items.capacity() * std::mem::size_of::<Value>())
                    + items.iter().map(Value::heap_size).sum::<usize>()
            }
            Value::Object(o) => allocated(std::mem::size_of::<Object>()) + object_heap_size(o),
        }
    }

    /// A short name of the value's type, for error messages and CSV headers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Numeric(_) => "numeric",
            Value::String(_) => "string",
            Value::DateTime(_) => "datetime",
            Value::Binary(_) => "binary",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// True for everything but arrays and objects.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::Array(_) | Value::Object(_))
    }

    /// Nesting depth: 0 for a scalar, 1 + the deepest child for arrays and objects.
    pub fn depth(&self) -> usize {
        match self {
            Value::Array(items) => 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            Value::Object(fields) => 1 + fields.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Limits applied when a document is decoded from client input.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest nesting of arrays and objects accepted (the document itself is depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value is as large as a string (and its tag): the object is behind a box.
    #[test]
    fn a_value_is_four_words() {
        assert_eq!(std::mem::size_of::<Value>(), 32);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 32);
    }
}
