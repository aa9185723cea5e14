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
    Object(Object),
}

impl Value {
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
