//! SQL types: what a column is to a PostgreSQL client (its OID and name), how a [`Value`]
//! of that type is read from text and written as text (PostgreSQL's input and output
//! functions, DateStyle ISO, TimeZone UTC), and how values are coerced on assignment.

use std::str::FromStr;

use base64::Engine as _;
use rust_decimal::Decimal;

use crate::doc::{Value, binary, json, text};
use crate::error::{Error, Result, SqlState};

/// A SQL type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SqlType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    /// `numeric(precision, scale)`: values are rounded to `scale` digits after the point
    /// and may have at most `precision - scale` before it.
    NumericTyped(u32, u32),
    Text,
    Varchar(Option<u32>),
    Date,
    Timestamp,
    Timestamptz,
    Bytea,
    Uuid,
    Json,
    Jsonb,
    /// `oid`: a catalog object's identifier (an unsigned 32-bit integer, held as Int).
    Oid,
    /// `regclass`, `regtype`, `regproc`, `regnamespace`: an oid that the binder reads
    /// from and writes as a name (held as Int; see `query::system`).
    Reg(RegKind),
    /// A one-dimensional array of the element type (held as [`Value::Array`]).
    Array(Box<SqlType>),
    /// `int2vector` and `oidvector`: catalog arrays written space-separated, whose
    /// subscripts start at 0 (held as [`Value::Array`]).
    Int2Vector,
    OidVector,
    /// The type of a bare NULL or of a parameter nothing constrains.
    Unknown,
}

/// Which catalog a `reg*` type names objects of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegKind {
    Class,
    Type,
    Proc,
    Namespace,
}

impl RegKind {
    pub fn oid(self) -> u32 {
        match self {
            RegKind::Class => 2205,
            RegKind::Type => 2206,
            RegKind::Proc => 24,
            RegKind::Namespace => 4089,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RegKind::Class => "regclass",
            RegKind::Type => "regtype",
            RegKind::Proc => "regproc",
            RegKind::Namespace => "regnamespace",
        }
    }

    fn array_oid(self) -> u32 {
        match self {
            RegKind::Class => 2210,
            RegKind::Type => 2211,
            RegKind::Proc => 1008,
            RegKind::Namespace => 4090,
        }
    }
}

pub const NUMERIC_VALUE_OUT_OF_RANGE: SqlState = SqlState("22003");
pub const DATETIME_FIELD_OVERFLOW: SqlState = SqlState("22008");
pub const INVALID_DATETIME_FORMAT: SqlState = SqlState("22007");
pub const DATATYPE_MISMATCH: SqlState = SqlState("42804");
pub const CANNOT_COERCE: SqlState = SqlState("42846");
pub const UNDEFINED_OBJECT: SqlState = SqlState("42704");

fn invalid(ty: &str, text: &str) -> Error {
    Error::invalid(
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {ty}: \"{text}\""),
    )
}

impl SqlType {
    /// The PostgreSQL type OID.
    pub fn oid(&self) -> u32 {
        match self {
            SqlType::Bool => 16,
            SqlType::Bytea => 17,
            SqlType::Int8 => 20,
            SqlType::Int2 => 21,
            SqlType::Int4 => 23,
            SqlType::Text => 25,
            SqlType::Json => 114,
            SqlType::Float4 => 700,
            SqlType::Float8 => 701,
            SqlType::Unknown => 705,
            SqlType::Varchar(_) => 1043,
            SqlType::Date => 1082,
            SqlType::Timestamp => 1114,
            SqlType::Timestamptz => 1184,
            SqlType::Numeric | SqlType::NumericTyped(..) => 1700,
            SqlType::Uuid => 2950,
            SqlType::Jsonb => 3802,
            SqlType::Oid => 26,
            SqlType::Reg(k) => k.oid(),
            SqlType::Array(e) => e.array_oid(),
            SqlType::Int2Vector => 22,
            SqlType::OidVector => 30,
        }
    }

    /// The OID of the array type whose elements have this type (`_int4` for int4).
    pub fn array_oid(&self) -> u32 {
        match self {
            SqlType::Bool => 1000,
            SqlType::Bytea => 1001,
            SqlType::Int8 => 1016,
            SqlType::Int2 => 1005,
            SqlType::Int4 => 1007,
            SqlType::Text | SqlType::Unknown => 1009,
            SqlType::Json => 199,
            SqlType::Float4 => 1021,
            SqlType::Float8 => 1022,
            SqlType::Varchar(_) => 1015,
            SqlType::Date => 1182,
            SqlType::Timestamp => 1115,
            SqlType::Timestamptz => 1185,
            SqlType::Numeric | SqlType::NumericTyped(..) => 1231,
            SqlType::Uuid => 2951,
            SqlType::Jsonb | SqlType::Array(_) => 3807,
            SqlType::Oid => 1028,
            SqlType::Reg(k) => k.array_oid(),
            SqlType::Int2Vector => 1006,
            SqlType::OidVector => 1013,
        }
    }

    /// The element type of an array type.
    pub fn element(&self) -> Option<&SqlType> {
        static INT2: SqlType = SqlType::Int2;
        static OID: SqlType = SqlType::Oid;
        match self {
            SqlType::Array(e) => Some(e),
            SqlType::Int2Vector => Some(&INT2),
            SqlType::OidVector => Some(&OID),
            _ => None,
        }
    }

    /// `int2vector` or `oidvector`.
    pub fn is_vector(&self) -> bool {
        matches!(self, SqlType::Int2Vector | SqlType::OidVector)
    }

    /// The name PostgreSQL's `format_type` gives.
    pub fn name(&self) -> String {
        match self {
            SqlType::Bool => "boolean".into(),
            SqlType::Int2 => "smallint".into(),
            SqlType::Int4 => "integer".into(),
            SqlType::Int8 => "bigint".into(),
            SqlType::Float4 => "real".into(),
            SqlType::Float8 => "double precision".into(),
            SqlType::Numeric => "numeric".into(),
            SqlType::NumericTyped(p, s) => format!("numeric({p},{s})"),
            SqlType::Text => "text".into(),
            SqlType::Varchar(None) => "character varying".into(),
            SqlType::Varchar(Some(n)) => format!("character varying({n})"),
            SqlType::Date => "date".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::Timestamptz => "timestamp with time zone".into(),
            SqlType::Bytea => "bytea".into(),
            SqlType::Uuid => "uuid".into(),
            SqlType::Json => "json".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Oid => "oid".into(),
            SqlType::Reg(k) => k.name().into(),
            SqlType::Array(e) => format!("{}[]", e.name()),
            SqlType::Int2Vector => "int2vector".into(),
            SqlType::OidVector => "oidvector".into(),
            SqlType::Unknown => "unknown".into(),
        }
    }

    /// The type modifier sent in row descriptions (-1 when none).
    pub fn type_modifier(&self) -> i32 {
        match self {
            SqlType::Varchar(Some(n)) => *n as i32 + 4,
            SqlType::NumericTyped(p, s) => ((*p as i32) << 16 | *s as i32) + 4,
            _ => -1,
        }
    }

    /// Parses a type name as written in SQL (`int`, `bigint`, `varchar(20)`, ...).
    pub fn from_name(name: &str, args: &[u32]) -> Result<SqlType> {
        let n = name.to_ascii_lowercase();
        Ok(match n.as_str() {
            "bool" | "boolean" => SqlType::Bool,
            "int2" | "smallint" | "smallserial" | "serial2" => SqlType::Int2,
            "int" | "int4" | "integer" | "serial" | "serial4" => SqlType::Int4,
            "int8" | "bigint" | "bigserial" | "serial8" => SqlType::Int8,
            "float4" | "real" => SqlType::Float4,
            "float8" | "double precision" | "double" | "float" => SqlType::Float8,
            "numeric" | "decimal" => match args {
                [] => SqlType::Numeric,
                [p] => SqlType::NumericTyped(*p, 0),
                [p, s] if *p >= 1 && *p <= 28 && s <= p => SqlType::NumericTyped(*p, *s),
                _ => {
                    return Err(Error::invalid(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("NUMERIC{args:?}: precision must be 1..28 and scale 0..precision"),
                    ));
                }
            },
            "text" | "string" => SqlType::Text,
            "varchar" | "character varying" => SqlType::Varchar(args.first().copied()),
            "date" => SqlType::Date,
            "timestamp" | "timestamp without time zone" => SqlType::Timestamp,
            "timestamptz" | "timestamp with time zone" => SqlType::Timestamptz,
            "bytea" => SqlType::Bytea,
            "uuid" => SqlType::Uuid,
            "json" => SqlType::Json,
            "jsonb" => SqlType::Jsonb,
            "oid" => SqlType::Oid,
            "regclass" => SqlType::Reg(RegKind::Class),
            "regtype" => SqlType::Reg(RegKind::Type),
            "regproc" | "regprocedure" => SqlType::Reg(RegKind::Proc),
            "regnamespace" => SqlType::Reg(RegKind::Namespace),
            // Catalog text types: `name`, `"char"`, `bpchar` read and print as text.
            "name" | "\"char\"" | "char" | "bpchar" | "character" => SqlType::Text,
            "int2vector" => SqlType::Int2Vector,
            "oidvector" => SqlType::OidVector,
            _ if n.ends_with("[]") => {
                SqlType::Array(Box::new(SqlType::from_name(&n[..n.len() - 2], args)?))
            }
            _ if n.starts_with('_') && n.len() > 1 => {
                SqlType::Array(Box::new(SqlType::from_name(&n[1..], args)?))
            }
            _ => {
                return Err(Error::invalid(
                    UNDEFINED_OBJECT,
                    format!("type \"{name}\" does not exist or is not supported"),
                ));
            }
        })
    }

    /// The type a stored value is shown as (DESIGN.md's table).
    pub fn of_value(v: &Value) -> SqlType {
        match v {
            Value::Null => SqlType::Unknown,
            Value::Bool(_) => SqlType::Bool,
            Value::Int(_) => SqlType::Int8,
            Value::Float(_) => SqlType::Float8,
            Value::Numeric(_) => SqlType::Numeric,
            Value::String(_) => SqlType::Text,
            Value::DateTime(_) => SqlType::Timestamptz,
            Value::Binary(_) => SqlType::Bytea,
            Value::Array(_) | Value::Object(_) => SqlType::Jsonb,
        }
    }

    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Oid | SqlType::Reg(_)
        )
    }

    pub fn is_numeric(&self) -> bool {
        self.is_integer()
            || matches!(
                self,
                SqlType::Float4 | SqlType::Float8 | SqlType::Numeric | SqlType::NumericTyped(..)
            )
    }

    pub fn is_text(&self) -> bool {
        matches!(self, SqlType::Text | SqlType::Varchar(_))
    }

    pub fn is_json(&self) -> bool {
        matches!(self, SqlType::Json | SqlType::Jsonb)
    }

    /// PostgreSQL's input function: text to a value of this type.
    pub fn parse_text(&self, s: &str) -> Result<Value> {
        let t = s.trim();
        match self {
            SqlType::Bool => match t.to_ascii_lowercase().as_str() {
                "t" | "true" | "yes" | "on" | "1" | "y" => Ok(Value::Bool(true)),
                "f" | "false" | "no" | "off" | "0" | "n" => Ok(Value::Bool(false)),
                _ => Err(invalid("boolean", s)),
            },
            SqlType::Array(elem) => parse_array(elem, s),
            SqlType::Int2Vector | SqlType::OidVector => {
                let elem = self.element().cloned().unwrap_or(SqlType::Int2);
                t.split_whitespace()
                    .map(|item| elem.parse_text(item))
                    .collect::<Result<Vec<_>>>()
                    .map(Value::Array)
            }
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Oid | SqlType::Reg(_) => {
                let i: i64 = t.parse().map_err(|_| {
                    if !t.is_empty()
                        && t.trim_start_matches(['-', '+'])
                            .chars()
                            .all(|c| c.is_ascii_digit())
                    {
                        out_of_range(self)
                    } else {
                        invalid(&self.name(), s)
                    }
                })?;
                self.check_int_range(i).map(Value::Int)
            }
            SqlType::Float4 | SqlType::Float8 => {
                let f = match t.to_ascii_lowercase().as_str() {
                    "nan" => f64::NAN,
                    "infinity" | "inf" | "+infinity" | "+inf" => f64::INFINITY,
                    "-infinity" | "-inf" => f64::NEG_INFINITY,
                    _ => t.parse::<f64>().map_err(|_| invalid(&self.name(), s))?,
                };
                if f.is_infinite() && !t.to_ascii_lowercase().contains("inf") {
                    return Err(out_of_range(self));
                }
                Ok(Value::Float(if *self == SqlType::Float4 {
                    f as f32 as f64
                } else {
                    f
                }))
            }
            SqlType::Numeric => parse_decimal(t)
                .map(|d| Value::Numeric(d.normalize_keep_scale()))
                .ok_or_else(|| invalid("numeric", s)),
            SqlType::NumericTyped(p, sc) => {
                let d = parse_decimal(t).ok_or_else(|| invalid("numeric", s))?;
                apply_typmod(d, *p, *sc).map(Value::Numeric)
            }
            SqlType::Text | SqlType::Unknown => Ok(Value::String(s.to_string())),
            SqlType::Varchar(limit) => {
                check_length(s, *limit)?;
                Ok(Value::String(s.to_string()))
            }
            SqlType::Date => parse_date(t).map(Value::DateTime).ok_or_else(|| {
                Error::invalid(
                    INVALID_DATETIME_FORMAT,
                    format!("invalid input syntax for type date: \"{s}\""),
                )
            }),
            SqlType::Timestamp | SqlType::Timestamptz => {
                parse_timestamp(t, *self == SqlType::Timestamptz)
                    .map(Value::DateTime)
                    .ok_or_else(|| {
                        Error::invalid(
                            INVALID_DATETIME_FORMAT,
                            format!("invalid input syntax for type {}: \"{s}\"", self.name()),
                        )
                    })
            }
            SqlType::Bytea => Ok(Value::Binary(parse_bytea(s)?)),
            SqlType::Uuid => uuid::Uuid::parse_str(t)
                .map(|u| Value::String(u.hyphenated().to_string()))
                .map_err(|_| invalid("uuid", s)),
            SqlType::Json | SqlType::Jsonb => json::parse_value(s),
        }
    }

    fn check_int_range(&self, i: i64) -> Result<i64> {
        let ok = match self {
            SqlType::Int2 => i16::try_from(i).is_ok(),
            SqlType::Int4 => i32::try_from(i).is_ok(),
            SqlType::Oid | SqlType::Reg(_) => u32::try_from(i).is_ok(),
            _ => true,
        };
        if ok { Ok(i) } else { Err(out_of_range(self)) }
    }

    /// PostgreSQL's output function: the text form of a value of this type (None for NULL).
    pub fn format_text(&self, v: &Value) -> Option<String> {
        Some(match (self, v) {
            (_, Value::Null) => return None,
            (SqlType::Json | SqlType::Jsonb, v) => to_json_text(v),
            (SqlType::Array(elem), Value::Array(items)) => format_array(elem, items),
            (SqlType::Int2Vector | SqlType::OidVector, Value::Array(items)) => items
                .iter()
                .map(|v| SqlType::Int8.format_text(v).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" "),
            (_, Value::Bool(b)) => if *b { "t" } else { "f" }.to_string(),
            (SqlType::Float4, Value::Float(f)) => format_pg_float(*f as f32 as f64, true),
            (_, Value::Float(f)) => format_pg_float(*f, false),
            (_, Value::Int(i)) => i.to_string(),
            (_, Value::Numeric(n)) => n.clone(),
            (_, Value::String(s)) => s.clone(),
            (SqlType::Date, Value::DateTime(m)) => format_date(*m),
            (SqlType::Timestamp, Value::DateTime(m)) => format_timestamp(*m, false),
            (_, Value::DateTime(m)) => format_timestamp(*m, true),
            (_, Value::Binary(b)) => {
                let mut s = String::with_capacity(2 + b.len() * 2);
                s.push_str("\\x");
                for byte in b {
                    s.push_str(&format!("{byte:02x}"));
                }
                s
            }
            (_, v @ (Value::Array(_) | Value::Object(_))) => to_json_text(v),
        })
    }

    /// Converts `v` for storage in a column of this type (assignment cast): numbers
    /// convert among themselves, text is parsed, anything goes into json/jsonb.
    pub fn coerce(&self, v: Value) -> Result<Value> {
        cast(v, self)
    }
}

fn out_of_range(ty: &SqlType) -> Error {
    Error::invalid(
        NUMERIC_VALUE_OUT_OF_RANGE,
        format!("value out of range for type {}", ty.name()),
    )
}

fn check_length(s: &str, limit: Option<u32>) -> Result<()> {
    if let Some(n) = limit
        && s.chars().count() > n as usize
    {
        return Err(Error::invalid(
            SqlState::STRING_DATA_RIGHT_TRUNCATION,
            format!("value too long for type character varying({n})"),
        ));
    }
    Ok(())
}

/// Rounds a decimal to `scale` digits and checks it fits `precision` (22003 otherwise).
fn apply_typmod(d: Decimal, precision: u32, scale: u32) -> Result<String> {
    let mut r =
        d.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    let int_digits = r.abs().trunc().to_string().trim_start_matches('0').len() as u32;
    if int_digits > precision - scale {
        return Err(Error::invalid(
            NUMERIC_VALUE_OUT_OF_RANGE,
            "numeric field overflow",
        ));
    }
    Ok(r.to_string())
}

/// Parses a decimal number (no exponent needed, but accepted).
pub fn parse_decimal(t: &str) -> Option<Decimal> {
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .ok()
}

/// Canonical text of a decimal, keeping its scale (`1.50` stays `1.50`).
pub trait DecimalText {
    fn normalize_keep_scale(&self) -> String;
}

impl DecimalText for Decimal {
    fn normalize_keep_scale(&self) -> String {
        self.to_string()
    }
}

/// The JSON text of a value as PostgreSQL prints jsonb (`{"a": 1, "b": [1, 2]}`);
/// datetimes appear as ISO 8601 strings and binary as Base64 strings.
pub fn to_json_text(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write_json_string(k, out);
                out.push_str(": ");
                write_json(item, out);
            }
            out.push('}');
        }
        // Writing to a String does not fail.
        scalar => {
            let _ = write_json_scalar(binary::Token::scalar(scalar), out);
        }
    }
}

/// A scalar's JSON text as PostgreSQL prints it in jsonb: datetimes as ISO 8601 strings,
/// binary as Base64 strings (a container's start token writes `null`: the callers write
/// containers themselves).
fn write_json_scalar(t: binary::Token<'_>, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    use binary::Token;
    match t {
        Token::Null | Token::Array(_) | Token::Object(_) => out.write_str("null"),
        Token::Bool(b) => out.write_str(if b { "true" } else { "false" }),
        Token::Int(i) => write!(out, "{i}"),
        Token::Float(f) if f.is_finite() => with_pg_float(f, false, |t| out.write_str(t)),
        Token::Float(f) => write_json_string(&text::format_float(f), out),
        Token::Numeric(n) => out.write_str(n),
        Token::String(s) => write_json_string(s, out),
        Token::DateTime(m) => write_json_string(&text::format_datetime(m), out),
        Token::Binary(b) => {
            write_json_string(&base64::engine::general_purpose::STANDARD.encode(b), out)
        }
    }
}

/// The JSON text of an encoded value (see [`crate::doc::binary`]) appended to `out`, as
/// [`to_json_text`] writes the value, read straight from the encoding without building
/// the value: a json column's answer to a client (see
/// [`crate::query::Column::json_encoded`]).
pub fn write_json_encoded(bytes: &[u8], out: &mut impl std::fmt::Write) -> Result<()> {
    let mut reader = binary::Reader::new(bytes);
    write_json_token(&mut reader, out, 0)?;
    if !reader.is_empty() {
        return Err(Error::Corruption(
            "binary value: trailing bytes after value".into(),
        ));
    }
    Ok(())
}

/// Deepest nesting [`write_json_encoded`] follows, as deep as the decoder does.
const MAX_JSON_DEPTH: usize = 512;

fn write_json_token(
    reader: &mut binary::Reader<'_>,
    out: &mut impl std::fmt::Write,
    depth: usize,
) -> Result<()> {
    use binary::Token;
    if depth > MAX_JSON_DEPTH {
        return Err(Error::Corruption("binary value: nesting too deep".into()));
    }
    // Writing to a String or a buffer in memory does not fail.
    let _ = match reader.token()? {
        Token::Array(n) => {
            let _ = out.write_char('[');
            for i in 0..n {
                if i > 0 {
                    let _ = out.write_str(", ");
                }
                write_json_token(reader, out, depth + 1)?;
            }
            out.write_char(']')
        }
        Token::Object(n) => {
            let _ = out.write_char('{');
            for i in 0..n {
                if i > 0 {
                    let _ = out.write_str(", ");
                }
                let _ = write_json_string(reader.name()?, out);
                let _ = out.write_str(": ");
                write_json_token(reader, out, depth + 1)?;
            }
            out.write_char('}')
        }
        scalar => write_json_scalar(scalar, out),
    };
    Ok(())
}

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped
/// (the short forms where JSON has them, else `\u00XX`), everything else as it is.
fn write_json_string(s: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    out.write_char('"')?;
    if !any_needs_json_escape(s.as_bytes()) {
        // Most text: nothing to escape, found eight bytes at a time.
        out.write_str(s)?;
        return out.write_char('"');
    }
    let mut plain = 0;
    for (at, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        // Every byte escaped is ASCII, so these are character boundaries.
        out.write_str(s.get(plain..at).unwrap_or_default())?;
        plain = at + 1;
        if short.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(short)?;
        }
    }
    out.write_str(s.get(plain..).unwrap_or_default())?;
    out.write_char('"')
}

/// Whether any byte of `bytes` is one JSON escapes, eight at a time (the last few padded
/// with spaces).
fn any_needs_json_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let word = |w: &[u8]| {
        let mut padded = [b' '; 8];
        if let Some(head) = padded.get_mut(..w.len()) {
            head.copy_from_slice(w);
        }
        needs_json_escape(u64::from_le_bytes(padded))
    };
    words.any(word) || word(words.remainder())
}

/// Whether any of the eight bytes in `w` is a control character, a quote or a
/// backslash (a byte at or above 0x80 never is: it is part of a multi-byte character).
/// False positives are allowed (the caller then looks at each byte); misses are not.
fn needs_json_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below_space | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\')))
        != 0
}

/// PostgreSQL's float output (extra_float_digits = 1): shortest exact digits, exponent
/// form below 1e-4 and from 1e15 (1e6 for real).
pub fn format_pg_float(f: f64, real: bool) -> String {
    with_pg_float(f, real, str::to_string)
}

/// [`format_pg_float`]'s text handed to `use_text`, made without an allocation where
/// PostgreSQL writes no exponent.
pub fn with_pg_float<R>(f: f64, real: bool, use_text: impl FnOnce(&str) -> R) -> R {
    // Where PostgreSQL writes no exponent (decimal exponent -4 up to 14, or 5 for
    // real), its text is the shortest round-trip digits in positional notation: what
    // Ryu writes there (positional from 1e-5 up to 1e16; a whole number gets `.0`),
    // without the detour through scientific notation.
    if !real && let Some((m, k)) = few_digits(f.abs()) {
        let mut out = [0u8; 24];
        return use_text(write_decimal(f < 0.0, m, k, &mut out));
    }
    let mut buffer = ryu::Buffer::new();
    let text = if real {
        let r = f as f32;
        (1e-4..1e6)
            .contains(&r.abs())
            .then(|| buffer.format_finite(r))
    } else {
        (1e-4..1e15)
            .contains(&f.abs())
            .then(|| buffer.format_finite(f))
    };
    match text {
        Some(t) => use_text(t.strip_suffix(".0").unwrap_or(t)),
        None => use_text(&format_pg_float_scientific(f, real)),
    }
}

/// Where `a` (positive) is the double nearest a decimal `m / 10^k` of at most 15
/// significant digits with at most 6 decimals, with `a` from 1e-4 to below 1e15: that
/// `(m, k)`, `k` the least. No two decimals of 15 significant digits or fewer round to
/// the same double (DBL_DIG), so its digits are the shortest that round-trip: those Ryu
/// writes, found here with a few multiplications instead (prices, ratings, measures).
fn few_digits(a: f64) -> Option<(u64, usize)> {
    const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
    if !(1e-4..1e15).contains(&a) {
        return None;
    }
    for (k, p) in POW10.iter().enumerate() {
        let scaled = a * p;
        if scaled >= 1e15 {
            return None;
        }
        let m = scaled.round();
        // `m` and `p` are exact doubles, so the division rounds the decimal itself.
        if m / p == a {
            return Some((m as u64, k));
        }
    }
    None
}

/// The positional text of `m / 10^k` (negated if `negative`), without trailing zeros
/// after the point, written at the end of `out`.
fn write_decimal(negative: bool, m: u64, k: usize, out: &mut [u8; 24]) -> &str {
    let mut at = out.len();
    let mut put = |b: u8| {
        at -= 1;
        if let Some(slot) = out.get_mut(at) {
            *slot = b;
        }
    };
    let (mut int, mut frac) = (m, 0u64);
    let mut frac_digits = k;
    if k > 0 {
        let p = 10u64.pow(k as u32);
        (int, frac) = (m / p, m % p);
        while frac_digits > 0 && frac % 10 == 0 {
            frac /= 10;
            frac_digits -= 1;
        }
    }
    for _ in 0..frac_digits {
        put(b'0' + (frac % 10) as u8);
        frac /= 10;
    }
    if frac_digits > 0 {
        put(b'.');
    }
    loop {
        put(b'0' + (int % 10) as u8);
        int /= 10;
        if int == 0 {
            break;
        }
    }
    if negative {
        put(b'-');
    }
    std::str::from_utf8(out.get(at..).unwrap_or_default()).unwrap_or_default()
}

/// The sign, significant digits (no leading or trailing zeros) and decimal exponent of
/// the first digit of a nonzero number as Ryu writes it (`-0.00012`: true, "12", -4).
/// Ryu is what PostgreSQL takes its shortest digits from, and where two shortest forms
/// round-trip it picks as PostgreSQL does.
fn shortest_digits(ryu: &str) -> (bool, String, i32) {
    let (neg, ryu) = match ryu.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, ryu),
    };
    let (mantissa, exp) = ryu
        .split_once('e')
        .map_or((ryu, 0), |(m, e)| (m, e.parse().unwrap_or(0)));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let lead = all.bytes().take_while(|b| *b == b'0').count();
    let digits = all.get(lead..).unwrap_or_default().trim_end_matches('0');
    (
        neg,
        digits.to_string(),
        exp + int.len() as i32 - 1 - lead as i32,
    )
}

/// [`format_pg_float`] by way of the scientific notation: every value, including those
/// PostgreSQL writes with an exponent.
fn format_pg_float_scientific(f: f64, real: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let mut buffer = ryu::Buffer::new();
    let (neg, digits, exp) = shortest_digits(if real {
        buffer.format_finite(f as f32)
    } else {
        buffer.format_finite(f)
    });
    let limit = if real { 6 } else { 15 };
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if exp < -4 || exp >= limit {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if exp < 0 {
        s.push_str("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            s.push_str(&digits);
            for _ in digits.len()..int_len {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..int_len]);
            s.push('.');
            s.push_str(&digits[int_len..]);
        }
    }
    s
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn format_date(micros: i64) -> String {
    let t = text::format_datetime(micros.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY);
    t.split('T').next().unwrap_or(&t).to_string()
}

/// `2023-10-26 10:00:00[.5][+00]`.
pub fn format_timestamp(micros: i64, with_zone: bool) -> String {
    let t = text::format_datetime(micros);
    let t = t.trim_end_matches('Z').replacen('T', " ", 1);
    if with_zone { format!("{t}+00") } else { t }
}

fn parse_date(t: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// Parses the timestamp forms PostgreSQL accepts most often: date, date and time with `T`
/// or a space, optional fraction, optional zone (`Z`, `+02`, `+02:00`, `+0200`).
pub fn parse_timestamp(t: &str, with_zone: bool) -> Option<i64> {
    if let Some(m) = parse_date(t) {
        return Some(m);
    }
    let t = t.replacen(' ', "T", 1);
    if let Some(m) = text::parse_datetime(&t) {
        return Some(m);
    }
    // Split off a zone suffix.
    let (local, offset_secs) = split_zone(&t)?;
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M"))
        .ok()?;
    let offset = if with_zone { offset_secs } else { 0 };
    Some(naive.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000)
}

fn split_zone(t: &str) -> Option<(&str, i32)> {
    if let Some(local) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        return Some((local, 0));
    }
    // Find a +/- after the time part.
    let time_start = t.find('T')?;
    let rel = t.get(time_start..)?.rfind(['+', '-']);
    let Some(rel) = rel else {
        return Some((t, 0));
    };
    let pos = time_start + rel;
    let (local, zone) = t.split_at(pos);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| c.is_ascii_digit()).collect();
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    Some((local, sign * (h * 3600 + m * 60)))
}

fn parse_bytea(s: &str) -> Result<Vec<u8>> {
    match s.strip_prefix("\\x") {
        Some(hex) => {
            let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            if !hex.len().is_multiple_of(2) {
                return Err(invalid("bytea", s));
            }
            hex.chunks(2)
                .map(|pair| {
                    std::str::from_utf8(pair)
                        .ok()
                        .and_then(|p| u8::from_str_radix(p, 16).ok())
                        .ok_or_else(|| invalid("bytea", s))
                })
                .collect()
        }
        None => Ok(s.as_bytes().to_vec()),
    }
}

/// Casts `v` to `ty` (explicit `CAST`/`::`, and assignment into typed columns).
pub fn cast(v: Value, ty: &SqlType) -> Result<Value> {
    if matches!(v, Value::Null) {
        return Ok(Value::Null);
    }
    let mismatch = |v: &Value| {
        Error::invalid(
            CANNOT_COERCE,
            format!(
                "cannot cast type {} to {}",
                SqlType::of_value(v).name(),
                ty.name()
            ),
        )
    };
    match ty {
        SqlType::Unknown => Ok(v),
        SqlType::Json | SqlType::Jsonb => match v {
            Value::String(s) if *ty == SqlType::Jsonb || *ty == SqlType::Json => {
                // A string literal cast to jsonb is JSON text.
                ty.parse_text(&s)
            }
            other => Ok(other),
        },
        SqlType::Text | SqlType::Varchar(_) => {
            let s = match &v {
                Value::String(s) => s.clone(),
                Value::DateTime(_) => SqlType::Timestamptz.format_text(&v).unwrap_or_default(),
                Value::Array(_) | Value::Object(_) => to_json_text(&v),
                other => SqlType::of_value(other)
                    .format_text(other)
                    .unwrap_or_default(),
            };
            if let SqlType::Varchar(limit) = ty {
                check_length(&s, *limit)?;
            }
            Ok(Value::String(s))
        }
        SqlType::Bool => match v {
            Value::Bool(_) => Ok(v),
            Value::Int(i) => Ok(Value::Bool(i != 0)),
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
        SqlType::Int2Vector | SqlType::OidVector => match v {
            Value::Array(items) => items
                .into_iter()
                .map(|item| cast(item, ty.element().unwrap_or(&SqlType::Int8)))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
        SqlType::Array(elem) => match v {
            Value::Array(items) => items
                .into_iter()
                .map(|item| cast(item, elem))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Oid | SqlType::Reg(_) => match v {
            Value::Int(i) => ty.check_int_range(i).map(Value::Int),
            Value::Float(f) => {
                if !f.is_finite() || f.round() > i64::MAX as f64 || f.round() < i64::MIN as f64 {
                    return Err(out_of_range(ty));
                }
                ty.check_int_range(f.round_ties_even() as i64)
                    .map(Value::Int)
            }
            Value::Numeric(n) => {
                let d = parse_decimal(&n).ok_or_else(|| invalid("numeric", &n))?;
                let r = d.round_dp_with_strategy(
                    0,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                );
                let i: i64 = r.try_into().map_err(|_| out_of_range(ty))?;
                ty.check_int_range(i).map(Value::Int)
            }
            Value::Bool(b) if *ty == SqlType::Int4 => Ok(Value::Int(i64::from(b))),
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
        SqlType::Float4 | SqlType::Float8 => {
            let f = match v {
                Value::Float(f) => f,
                Value::Int(i) => i as f64,
                Value::Numeric(n) => n.parse::<f64>().map_err(|_| invalid("numeric", &n))?,
                Value::String(s) => return ty.parse_text(&s),
                other => return Err(mismatch(&other)),
            };
            Ok(Value::Float(if *ty == SqlType::Float4 {
                f as f32 as f64
            } else {
                f
            }))
        }
        SqlType::NumericTyped(p, s) => match cast(v, &SqlType::Numeric)? {
            Value::Numeric(n) => {
                let d = parse_decimal(&n).ok_or_else(|| invalid("numeric", &n))?;
                apply_typmod(d, *p, *s).map(Value::Numeric)
            }
            other => Ok(other),
        },
        SqlType::Numeric => match v {
            Value::Numeric(_) => Ok(v),
            Value::Int(i) => Ok(Value::Numeric(i.to_string())),
            Value::Float(f) => {
                if !f.is_finite() {
                    return Ok(Value::Numeric(text::format_float(f)));
                }
                Decimal::from_str(&format_pg_float(f, false))
                    .or_else(|_| Decimal::from_scientific(&format_pg_float(f, false)))
                    .map(|d| Value::Numeric(d.to_string()))
                    .map_err(|_| out_of_range(ty))
            }
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
        SqlType::Date => match v {
            Value::DateTime(m) => Ok(Value::DateTime(
                m.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY,
            )),
            Value::String(s) => ty.parse_text(&s).or_else(|_| {
                SqlType::Timestamptz
                    .parse_text(&s)
                    .and_then(|v| cast(v, ty))
            }),
            other => Err(mismatch(&other)),
        },
        SqlType::Timestamp | SqlType::Timestamptz => match v {
            Value::DateTime(_) => Ok(v),
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
        SqlType::Bytea => match v {
            Value::Binary(_) => Ok(v),
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
        SqlType::Uuid => match v {
            Value::String(s) => ty.parse_text(&s),
            other => Err(mismatch(&other)),
        },
    }
}

/// PostgreSQL's array output: `{1,2,NULL,"a b"}`, elements in their type's text form,
/// quoted when they are empty or hold a delimiter, brace, quote, backslash or space.
pub fn format_array(elem: &SqlType, items: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) if !matches!(elem, SqlType::Json | SqlType::Jsonb) => {
                out.push_str(&format_array(elem, inner))
            }
            v => {
                let text = elem.format_text(v).unwrap_or_default();
                let quote = text.is_empty()
                    || text.eq_ignore_ascii_case("null")
                    || text
                        .chars()
                        .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
                if quote {
                    out.push('"');
                    for c in text.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    out.push_str(&text);
                }
            }
        }
    }
    out.push('}');
    out
}

/// PostgreSQL's array input for a one-dimensional array: `{a,"b c",NULL}`.
pub fn parse_array(elem: &SqlType, s: &str) -> Result<Value> {
    let bad = |why: &str| {
        Error::invalid(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("malformed array literal: \"{s}\" ({why})"),
        )
    };
    let t = s.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| bad("an array value must start with \"{\" and end with \"}\""))?;
    let mut items = Vec::new();
    if inner.trim().is_empty() {
        return Ok(Value::Array(items));
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut text = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => text.push(chars.next().ok_or_else(|| bad("unfinished escape"))?),
                    Some('"') => break,
                    Some(c) => text.push(c),
                    None => return Err(bad("unterminated quote")),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if matches!(c, '{' | '}' | '"') {
                    return Err(bad("nested arrays are not supported"));
                }
                if c == '\\' {
                    chars.next();
                    text.push(chars.next().ok_or_else(|| bad("unfinished escape"))?);
                    continue;
                }
                text.push(c);
                chars.next();
            }
            text = text.trim_end().to_string();
        }
        if !quoted && text.eq_ignore_ascii_case("null") {
            items.push(Value::Null);
        } else {
            items.push(elem.parse_text(&text)?);
        }
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return Err(bad("junk after an element")),
        }
    }
    Ok(Value::Array(items))
}

/// Numeric division with PostgreSQL's result scale: at least 16 significant digits,
/// never less than either input's scale.
pub fn numeric_div(x: Decimal, y: Decimal) -> Option<Decimal> {
    if y.is_zero() {
        return None;
    }
    let q = x.checked_div(y)?;
    let abs = q.abs();
    // PostgreSQL counts the quotient's weight in base-10000 digits.
    let mut weight: i64 = 0;
    let mut bound = Decimal::from(10_000);
    while abs >= bound && weight < 7 {
        weight += 1;
        bound = bound.checked_mul(Decimal::from(10_000))?;
    }
    if abs < Decimal::ONE && !abs.is_zero() {
        let mut small = abs;
        while small < Decimal::new(1, 4) && weight > -7 {
            weight -= 1;
            small *= Decimal::from(10_000);
        }
    }
    let scale = (16 - 4 * weight)
        .max(i64::from(x.scale().max(y.scale())))
        .clamp(0, 28) as u32;
    let mut r =
        q.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// JSON text written from a value's encoding is the value's JSON text.
        #[test]
        fn json_from_the_encoding_is_the_values_json(v in crate::doc::text::testing::arb_value()) {
            let mut encoded = Vec::new();
            binary::encode(&v, &mut encoded);
            let mut text = String::new();
            write_json_encoded(&encoded, &mut text).unwrap();
            proptest::prop_assert_eq!(text, to_json_text(&v));
        }
    }

    #[test]
    fn json_from_a_bad_encoding_is_an_error() {
        let mut encoded = Vec::new();
        binary::encode(
            &Value::Array(vec![Value::Int(1), Value::Int(2)]),
            &mut encoded,
        );
        let mut text = String::new();
        assert!(write_json_encoded(&encoded[..encoded.len() - 1], &mut text).is_err());
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert!(write_json_encoded(&trailing, &mut String::new()).is_err());
        assert!(write_json_encoded(&[200], &mut String::new()).is_err());
        // Nesting past the decoder's depth.
        let deep: Vec<u8> = std::iter::repeat_n([9u8, 1], 600)
            .flatten()
            .chain([0])
            .collect();
        assert!(write_json_encoded(&deep, &mut String::new()).is_err());
    }

    #[test]
    fn floats_print_like_postgres() {
        for (f, s) in [
            (199.99, "199.99"),
            (1.0, "1"),
            (0.1, "0.1"),
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            // Two 17-digit forms round-trip; PostgreSQL (Ryu) writes this one, where
            // Rust's own formatting writes ...858.13.
            (165_793_407_361_858.12, "165793407361858.12"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e300, "1e+300"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(format_pg_float(f, false), s, "{f}");
        }
        // Which values take the few-digits path (checked against Ryu's path below).
        assert_eq!(few_digits(129.99), Some((12999, 2)));
        assert_eq!(few_digits(0.0001), Some((1, 4)));
        assert_eq!(
            few_digits(123_456_789_012_345.0),
            Some((123_456_789_012_345, 0))
        );
        assert_eq!(few_digits(0.1 + 0.2), None);
        assert_eq!(few_digits(1e15), None);
        assert_eq!(few_digits(0.000_012_3), None);
    }

    /// The positional shortcut writes what the general path writes, across magnitudes
    /// and at the edges where the exponent form starts.
    #[test]
    fn the_positional_shortcut_agrees_with_the_general_path() {
        let mut values = vec![
            1e-4,
            1e15,
            1e6,
            999_999.9,
            1e-4 * 0.999_999,
            9.999_999_999_999_99e14,
            0.5,
            12.34,
        ];
        // Bit patterns spread over every exponent, from a fixed-seed generator.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from_bits(x));
            values.push(f64::from(x as u32 % 100_000) / 100.0);
            // Decimals of up to 16 digits with up to 7 decimals: those the few-digits
            // path writes, and those just past it.
            let digits = 10f64.powi((x % 17) as i32);
            let decimals = 10f64.powi(((x >> 8) % 8) as i32);
            values.push(((x >> 16) as f64 % digits).trunc() / decimals);
        }
        values.extend([
            0.1 + 0.2,
            999_999_999_999_999.0,
            99_999_999_999_999.9,
            1.000_001,
        ]);
        values.extend([123_456_789.123_456, 0.000_123, 0.001, 4.4, 129.99, 5.3]);
        for f in values.into_iter().filter(|f| f.is_finite()) {
            for v in [f, -f] {
                assert_eq!(
                    format_pg_float(v, false),
                    format_pg_float_scientific(v, false),
                    "{v:e}"
                );
                assert_eq!(
                    format_pg_float(v, true),
                    format_pg_float_scientific(v, true),
                    "{v:e} as real"
                );
            }
        }
    }

    #[test]
    fn text_round_trips() {
        let cases = [
            (SqlType::Bool, "t"),
            (SqlType::Int8, "-42"),
            (SqlType::Float8, "199.99"),
            (SqlType::Numeric, "12.50"),
            (SqlType::Date, "2023-10-26"),
            (SqlType::Timestamptz, "2023-10-26 10:00:00+00"),
            (SqlType::Timestamp, "2023-10-26 10:00:00.5"),
            (SqlType::Bytea, "\\x00ff10"),
            (SqlType::Jsonb, "{\"a\": 1, \"b\": [true, null]}"),
            (SqlType::Uuid, "a1b2c3d4-e5f6-4a3b-8c2d-1e9f8a7b6c5d"),
        ];
        for (ty, text) in cases {
            let v = ty.parse_text(text).unwrap();
            assert_eq!(ty.format_text(&v).unwrap(), text, "{ty:?}");
        }
    }

    #[test]
    fn input_errors_have_sqlstates() {
        let e = SqlType::Int4.parse_text("abc").unwrap_err();
        assert_eq!(e.sqlstate(), SqlState::INVALID_TEXT_REPRESENTATION);
        let e = SqlType::Int2.parse_text("40000").unwrap_err();
        assert_eq!(e.sqlstate(), NUMERIC_VALUE_OUT_OF_RANGE);
        let e = SqlType::Varchar(Some(3)).parse_text("abcd").unwrap_err();
        assert_eq!(e.sqlstate(), SqlState::STRING_DATA_RIGHT_TRUNCATION);
        assert!(SqlType::Date.parse_text("2023-13-45").is_err());
    }

    #[test]
    fn timestamps_with_zones() {
        let utc = SqlType::Timestamptz
            .parse_text("2023-10-26 10:00:00Z")
            .unwrap();
        let plus2 = SqlType::Timestamptz
            .parse_text("2023-10-26 12:00:00+02")
            .unwrap();
        let plus2b = SqlType::Timestamptz
            .parse_text("2023-10-26T12:00:00+02:00")
            .unwrap();
        assert_eq!(utc, plus2);
        assert_eq!(utc, plus2b);
    }

    #[test]
    fn arrays_and_vectors_in_text() {
        let text = SqlType::Array(Box::new(SqlType::Text));
        let v = text
            .parse_text(r#"{a,"b c",NULL,"NULL","q\"x",""}"#)
            .unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::String("a".into()),
                Value::String("b c".into()),
                Value::Null,
                Value::String("NULL".into()),
                Value::String("q\"x".into()),
                Value::String(String::new()),
            ])
        );
        // Output quotes what input needs quoted, so text round-trips.
        let out = text.format_text(&v).unwrap();
        assert_eq!(out, r#"{a,"b c",NULL,"NULL","q\"x",""}"#);
        assert_eq!(text.parse_text(&out).unwrap(), v);
        let ints = SqlType::Array(Box::new(SqlType::Int4));
        assert_eq!(ints.parse_text("{}").unwrap(), Value::Array(Vec::new()));
        assert!(ints.parse_text("{1,x}").is_err());
        assert!(ints.parse_text("{1,2").is_err());
        assert!(ints.parse_text("{{1}}").is_err());
        assert_eq!(SqlType::from_name("int4[]", &[]).unwrap(), ints);
        assert_eq!(SqlType::from_name("_text", &[]).unwrap(), text);
        let vector = SqlType::Int2Vector;
        let v = vector.parse_text("1 3").unwrap();
        assert_eq!(v, Value::Array(vec![Value::Int(1), Value::Int(3)]));
        assert_eq!(vector.format_text(&v).unwrap(), "1 3");
        assert_eq!(
            SqlType::Oid.parse_text("4294967295").unwrap(),
            Value::Int(4_294_967_295)
        );
        assert!(SqlType::Oid.parse_text("-1").is_err());
    }

    #[test]
    fn json_strings_escape_as_json_does() {
        let mut texts: Vec<String> = [
            "",
            "plain",
            "quote \" and backslash \\ and slash /",
            "lines\nand\rtabs\tbell\u{7}\u{8}\u{c}\u{1f}\u{0}",
            "é ü 漢字 \u{7f} 🎧",
        ]
        .map(String::from)
        .into();
        // Each character that needs escaping (and some that do not) at every position of
        // texts that span several eight-byte words, around plain and multi-byte text.
        for special in [
            '"', '\\', '\n', '\u{0}', '\u{1f}', ' ', '!', '#', '[', ']', '\u{7f}', 'é',
        ] {
            for len in [7, 8, 9, 16, 23] {
                for at in 0..len {
                    for filler in ["a", "ü"] {
                        let mut t: String = filler.repeat(len);
                        t.insert(
                            t.char_indices().nth(at).map_or(t.len(), |(i, _)| i),
                            special,
                        );
                        texts.push(t);
                    }
                }
            }
        }
        for text in &texts {
            let text = text.as_str();
            let mut ours = String::new();
            let _ = write_json_string(text, &mut ours);
            let theirs = serde_json::Value::String(text.into()).to_string();
            assert_eq!(ours, theirs, "{text:?}");
            let back: String = serde_json::from_str(&ours).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn casts() {
        assert_eq!(
            cast(Value::Float(2.5), &SqlType::Int4).unwrap(),
            Value::Int(2)
        );
        assert_eq!(
            cast(Value::Float(3.5), &SqlType::Int4).unwrap(),
            Value::Int(4)
        );
        assert_eq!(
            cast(Value::Int(3), &SqlType::Numeric).unwrap(),
            Value::Numeric("3".into())
        );
        assert_eq!(
            cast(Value::String("42".into()), &SqlType::Int8).unwrap(),
            Value::Int(42)
        );
        assert_eq!(
            cast(Value::Int(7), &SqlType::Text).unwrap(),
            Value::String("7".into())
        );
        assert!(cast(Value::Int(1 << 40), &SqlType::Int4).is_err());
    }
}
