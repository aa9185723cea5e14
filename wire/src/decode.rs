//! Bound parameters as engine [`Value`]s.
//!
//! A parameter arrives in the type the client was told (the type it declared in Parse,
//! else the one the engine inferred) and in text or binary format. Text goes through the
//! engine's input function, [`SqlType::parse_text`]; binary through PostgreSQL's receive
//! format for that type, written out here. The value is then converted to the type the
//! engine inferred for the parameter, if that differs.

use tissdb::doc::Value;
use tissdb::query::SqlType;

use crate::encode::{
    MICROS_PER_DAY, NUMERIC_NAN, NUMERIC_NEG, NUMERIC_NINF, NUMERIC_PINF, NUMERIC_POS,
    PG_EPOCH_OFFSET_DAYS, PG_EPOCH_OFFSET_MICROS,
};
use crate::error;
use crate::schema::{BPCHAR_OID, CHAR_OID, NAME_OID, OID_OID, sql_type_from_oid};
use pgwire::error::PgWireResult;

/// How a parameter's bytes arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamFormat {
    Text,
    Binary,
}

/// Decodes parameter `index` (0-based; messages say `$index+1`): `bytes` (None = NULL)
/// in `format`, sent as type `wire_oid`, for a parameter the engine typed `target`.
pub fn decode_param(
    index: usize,
    wire_oid: u32,
    format: ParamFormat,
    bytes: Option<&[u8]>,
    target: &SqlType,
) -> PgWireResult<Value> {
    let Some(bytes) = bytes else {
        return Ok(Value::Null);
    };
    let wire_type = sql_type_from_oid(wire_oid).ok_or_else(|| {
        error::user(
            error::FEATURE_NOT_SUPPORTED,
            format!(
                "parameter ${} has type OID {wire_oid}, which TissDB does not support",
                index + 1
            ),
        )
    })?;
    let value = match format {
        ParamFormat::Text => {
            let text = utf8(index, bytes)?;
            if wire_oid == OID_OID {
                parse_oid(index, text)?
            } else {
                wire_type.parse_text(text).map_err(|e| error::engine(&e))?
            }
        }
        ParamFormat::Binary => decode_binary(index, wire_oid, bytes)?,
    };
    if matches!(target, SqlType::Unknown) || *target == wire_type {
        return Ok(value);
    }
    target.coerce(value).map_err(|e| error::engine(&e))
}

fn utf8(index: usize, bytes: &[u8]) -> PgWireResult<&str> {
    std::str::from_utf8(bytes).map_err(|_| {
        error::user(
            error::CHARACTER_NOT_IN_REPERTOIRE,
            format!(
                "invalid byte sequence for encoding \"UTF8\" in parameter ${}",
                index + 1
            ),
        )
    })
}

fn parse_oid(index: usize, text: &str) -> PgWireResult<Value> {
    text.trim()
        .parse::<u32>()
        .map(|o| Value::Int(i64::from(o)))
        .map_err(|_| {
            error::user(
                error::INVALID_TEXT_REPRESENTATION,
                format!(
                    "invalid input syntax for type oid: \"{text}\" (parameter ${})",
                    index + 1
                ),
            )
        })
}

fn bad_binary(index: usize, type_name: &str) -> pgwire::error::PgWireError {
    error::user(
        error::INVALID_BINARY_REPRESENTATION,
        format!(
            "incorrect binary data format in bind parameter {} (type {type_name})",
            index + 1
        ),
    )
}

fn fixed<const N: usize>(index: usize, bytes: &[u8], type_name: &str) -> PgWireResult<[u8; N]> {
    <[u8; N]>::try_from(bytes).map_err(|_| bad_binary(index, type_name))
}

fn out_of_range(index: usize, type_name: &str) -> pgwire::error::PgWireError {
    error::user(
        error::DATETIME_FIELD_OVERFLOW,
        format!("{type_name} out of range in bind parameter {}", index + 1),
    )
}

/// PostgreSQL's binary receive format of type `oid`.
fn decode_binary(index: usize, oid: u32, bytes: &[u8]) -> PgWireResult<Value> {
    Ok(match oid {
        16 => match bytes {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return Err(bad_binary(index, "boolean")),
        },
        21 => Value::Int(i64::from(i16::from_be_bytes(fixed(
            index, bytes, "smallint",
        )?))),
        23 => Value::Int(i64::from(i32::from_be_bytes(fixed(
            index, bytes, "integer",
        )?))),
        20 => Value::Int(i64::from_be_bytes(fixed(index, bytes, "bigint")?)),
        OID_OID => Value::Int(i64::from(u32::from_be_bytes(fixed(index, bytes, "oid")?))),
        700 => Value::Float(f64::from(f32::from_be_bytes(fixed(index, bytes, "real")?))),
        701 => Value::Float(f64::from_be_bytes(fixed(index, bytes, "double precision")?)),
        25 | 705 | 1043 | NAME_OID | CHAR_OID | BPCHAR_OID => {
            Value::String(utf8(index, bytes)?.to_string())
        }
        17 => Value::Binary(bytes.to_vec()),
        2950 => {
            let raw: [u8; 16] = fixed(index, bytes, "uuid")?;
            Value::String(uuid::Uuid::from_bytes(raw).hyphenated().to_string())
        }
        1082 => {
            let days = i32::from_be_bytes(fixed(index, bytes, "date")?);
            if days == i32::MAX || days == i32::MIN {
                return Err(out_of_range(index, "infinite date"));
            }
            let micros = (i64::from(days) + PG_EPOCH_OFFSET_DAYS)
                .checked_mul(MICROS_PER_DAY)
                .ok_or_else(|| out_of_range(index, "date"))?;
            Value::DateTime(micros)
        }
        1114 | 1184 => {
            let micros = i64::from_be_bytes(fixed(index, bytes, "timestamp")?);
            if micros == i64::MAX || micros == i64::MIN {
                return Err(out_of_range(index, "infinite timestamp"));
            }
            Value::DateTime(
                micros
                    .checked_add(PG_EPOCH_OFFSET_MICROS)
                    .ok_or_else(|| out_of_range(index, "timestamp"))?,
            )
        }
        1700 => decode_numeric(bytes)
            .ok_or_else(|| bad_binary(index, "numeric"))?
            .into_value(),
        3802 => match bytes.split_first() {
            Some((1, json)) => SqlType::Jsonb
                .parse_text(utf8(index, json)?)
                .map_err(|e| error::engine(&e))?,
            _ => {
                return Err(error::user(
                    error::INVALID_BINARY_REPRESENTATION,
                    format!(
                        "unsupported jsonb version number in bind parameter {}",
                        index + 1
                    ),
                ));
            }
        },
        114 => SqlType::Json
            .parse_text(utf8(index, bytes)?)
            .map_err(|e| error::engine(&e))?,
        2205 | 2206 | 24 | 4089 => {
            Value::Int(i64::from(u32::from_be_bytes(fixed(index, bytes, "oid")?)))
        }
        other if crate::schema::array_of(other).is_some() || other == 22 || other == 30 => {
            decode_binary_array(index, bytes)?
        }
        _ => {
            return Err(error::user(
                error::FEATURE_NOT_SUPPORTED,
                format!(
                    "binary format for parameter ${} of type OID {oid} is not supported",
                    index + 1
                ),
            ));
        }
    })
}

/// PostgreSQL's binary array: ndim, has-null flag, element OID, then per dimension its
/// length and lower bound, then each element length-prefixed (-1 for NULL). One
/// dimension (or none, the empty array) is supported.
fn decode_binary_array(index: usize, bytes: &[u8]) -> PgWireResult<Value> {
    let word = |at: usize| -> PgWireResult<i32> {
        bytes
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad_binary(index, "array"))
    };
    let ndim = word(0)?;
    let elem_oid = word(8)? as u32;
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if ndim != 1 {
        return Err(error::user(
            error::FEATURE_NOT_SUPPORTED,
            format!(
                "parameter ${}: only one-dimensional arrays are supported",
                index + 1
            ),
        ));
    }
    let len = usize::try_from(word(12)?).map_err(|_| bad_binary(index, "array"))?;
    let mut at = 20;
    let mut items = Vec::with_capacity(len.min(1024));
    for _ in 0..len {
        let n = word(at)?;
        at += 4;
        if n < 0 {
            items.push(Value::Null);
            continue;
        }
        let n = n as usize;
        let item = bytes
            .get(at..at + n)
            .ok_or_else(|| bad_binary(index, "array"))?;
        items.push(decode_binary(index, elem_oid, item)?);
        at += n;
    }
    Ok(Value::Array(items))
}

/// A decoded binary numeric.
#[derive(Debug, PartialEq)]
enum Numeric {
    /// Canonical decimal text.
    Finite(String),
    Special(f64),
}

impl Numeric {
    fn into_value(self) -> Value {
        match self {
            Numeric::Finite(text) => Value::Numeric(text),
            // The engine keeps non-finite numerics the way a float cast makes them.
            Numeric::Special(f) => SqlType::Numeric
                .coerce(Value::Float(f))
                .unwrap_or(Value::Float(f)),
        }
    }
}

/// PostgreSQL's binary numeric (ndigits, weight, sign, dscale, base-10000 digits) as
/// decimal text with exactly `dscale` digits after the point.
fn decode_numeric(bytes: &[u8]) -> Option<Numeric> {
    let word = |i: usize| -> Option<u16> {
        let b = bytes.get(2 * i..2 * i + 2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = usize::from(word(0)?);
    if ndigits > i16::MAX as usize || bytes.len() != 8 + 2 * ndigits {
        return None;
    }
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NUMERIC_NAN => return Some(Numeric::Special(f64::NAN)),
        NUMERIC_PINF => return Some(Numeric::Special(f64::INFINITY)),
        NUMERIC_NINF => return Some(Numeric::Special(f64::NEG_INFINITY)),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return None,
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Option<Vec<u16>>>()?;
    if digits.iter().any(|d| *d > 9999) || dscale > 0x3FFF {
        return None;
    }
    let digit_at = |k: i64| -> u16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NUMERIC_NEG && digits.iter().any(|d| *d != 0) {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for k in 0..=weight {
            let d = digit_at(k);
            if k == 0 {
                out.push_str(&d.to_string());
            } else {
                out.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::with_capacity(dscale + 4);
        let mut k = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit_at(k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    Some(Numeric::Finite(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn words(ws: &[u16]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    fn bin(oid: u32, bytes: &[u8], target: SqlType) -> Value {
        decode_param(0, oid, ParamFormat::Binary, Some(bytes), &target).unwrap()
    }

    #[test]
    fn numerics_decode_to_canonical_text() {
        let cases: &[(&[u16], &str)] = &[
            (&[2, 0, 0, 2, 12, 5000], "12.50"),
            (&[2, 0, 0x4000, 2, 12, 5000], "-12.50"),
            (&[0, 0, 0, 0], "0"),
            (&[0, 0, 0, 3], "0.000"),
            (&[1, (-1i16) as u16, 0, 4, 1], "0.0001"),
            (&[1, (-2i16) as u16, 0, 5, 1000], "0.00001"),
            (&[1, 2, 0, 0, 1], "100000000"),
            (&[3, 1, 0, 3, 12, 3456, 7890], "123456.789"),
            // dscale below the digits present truncates (PostgreSQL never sends this).
            (&[2, 0, 0, 1, 1, 2500], "1.2"),
        ];
        for (ws, text) in cases {
            assert_eq!(
                decode_numeric(&words(ws)),
                Some(Numeric::Finite(text.to_string())),
                "{text}"
            );
        }
        assert_eq!(
            decode_numeric(&words(&[0, 0, 0xC000, 0]))
                .map(|n| matches!(n, Numeric::Special(f) if f.is_nan())),
            Some(true)
        );
        assert_eq!(decode_numeric(&words(&[1, 0, 0, 0])), None, "missing digit");
        assert_eq!(
            decode_numeric(&words(&[1, 0, 0, 0, 10000])),
            None,
            "digit too big"
        );
        assert_eq!(decode_numeric(&words(&[0, 0, 0x1234, 0])), None, "bad sign");
    }

    #[test]
    fn numerics_round_trip_through_the_encoder() {
        for text in [
            "0",
            "1",
            "-1",
            "12.50",
            "0.00001",
            "99999999999999999999.123456789",
            "10000",
            "0.10",
        ] {
            let mut buf = BytesMut::new();
            assert!(crate::encode::put_numeric(&mut buf, text));
            assert_eq!(
                decode_numeric(&buf),
                Some(Numeric::Finite(text.to_string())),
                "{text}"
            );
        }
    }

    #[test]
    fn binary_parameters() {
        assert_eq!(bin(16, &[1], SqlType::Bool), Value::Bool(true));
        assert_eq!(
            bin(21, &(-3i16).to_be_bytes(), SqlType::Int2),
            Value::Int(-3)
        );
        assert_eq!(bin(23, &7i32.to_be_bytes(), SqlType::Int4), Value::Int(7));
        assert_eq!(
            bin(20, &i64::MIN.to_be_bytes(), SqlType::Int8),
            Value::Int(i64::MIN)
        );
        assert_eq!(
            bin(26, &u32::MAX.to_be_bytes(), SqlType::Int8),
            Value::Int(u32::MAX as i64)
        );
        assert_eq!(
            bin(700, &1.5f32.to_be_bytes(), SqlType::Float4),
            Value::Float(1.5)
        );
        assert_eq!(
            bin(701, &0.1f64.to_be_bytes(), SqlType::Float8),
            Value::Float(0.1)
        );
        assert_eq!(
            bin(25, "héllo".as_bytes(), SqlType::Text),
            Value::String("héllo".into())
        );
        assert_eq!(
            bin(17, &[0, 1, 2], SqlType::Bytea),
            Value::Binary(vec![0, 1, 2])
        );
        let u = uuid::Uuid::parse_str("a1b2c3d4-e5f6-4a3b-8c2d-1e9f8a7b6c5d").unwrap();
        assert_eq!(
            bin(2950, u.as_bytes(), SqlType::Uuid),
            Value::String("a1b2c3d4-e5f6-4a3b-8c2d-1e9f8a7b6c5d".into())
        );
        assert_eq!(
            bin(1082, &0i32.to_be_bytes(), SqlType::Date),
            Value::DateTime(PG_EPOCH_OFFSET_MICROS)
        );
        assert_eq!(
            bin(1082, &(-10_957i32).to_be_bytes(), SqlType::Date),
            Value::DateTime(0)
        );
        assert_eq!(
            bin(
                1184,
                &(-PG_EPOCH_OFFSET_MICROS).to_be_bytes(),
                SqlType::Timestamptz
            ),
            Value::DateTime(0)
        );
        assert_eq!(
            bin(1114, &1i64.to_be_bytes(), SqlType::Timestamp),
            Value::DateTime(PG_EPOCH_OFFSET_MICROS + 1)
        );
        assert_eq!(
            bin(1700, &words(&[2, 0, 0, 2, 12, 5000]), SqlType::Numeric),
            Value::Numeric("12.50".into())
        );
        let mut obj = tissdb::doc::Object::default();
        obj.insert(
            "a".into(),
            Value::Array(vec![Value::Int(1), Value::Bool(true)]),
        );
        assert_eq!(
            bin(3802, b"\x01{\"a\": [1, true]}", SqlType::Jsonb),
            Value::Object(Box::new(obj.clone()))
        );
        assert_eq!(
            bin(114, b"{\"a\": [1, true]}", SqlType::Json),
            Value::Object(Box::new(obj))
        );
    }

    #[test]
    fn binary_errors() {
        let err = |oid: u32, bytes: &[u8]| match decode_param(
            0,
            oid,
            ParamFormat::Binary,
            Some(bytes),
            &SqlType::Unknown,
        )
        .unwrap_err()
        {
            pgwire::error::PgWireError::UserError(info) => info.code,
            other => panic!("{other:?}"),
        };
        assert_eq!(err(23, &[0, 1]), "22P03");
        assert_eq!(err(16, &[2]), "22P03");
        assert_eq!(err(25, &[0xff, 0xfe]), "22021");
        assert_eq!(err(3802, b"\x02{}"), "22P03");
        assert_eq!(err(1082, &i32::MAX.to_be_bytes()), "22008");
        assert_eq!(err(1007, &[]), "22P03");
        assert_eq!(err(600, &[0; 16]), "0A000");
    }

    #[test]
    fn binary_arrays() {
        // int4[] {7, NULL, -1}: ndim 1, has nulls, element OID 23, length 3, lower bound 1.
        let mut bytes = Vec::new();
        for w in [1i32, 1, 23, 3, 1] {
            bytes.extend_from_slice(&w.to_be_bytes());
        }
        bytes.extend_from_slice(&4i32.to_be_bytes());
        bytes.extend_from_slice(&7i32.to_be_bytes());
        bytes.extend_from_slice(&(-1i32).to_be_bytes());
        bytes.extend_from_slice(&4i32.to_be_bytes());
        bytes.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            bin(1007, &bytes, SqlType::Array(Box::new(SqlType::Int4))),
            Value::Array(vec![Value::Int(7), Value::Null, Value::Int(-1)])
        );
        // The empty array has no dimensions.
        let empty: Vec<u8> = [0i32, 0, 25].iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(
            bin(1009, &empty, SqlType::Array(Box::new(SqlType::Text))),
            Value::Array(Vec::new())
        );
    }

    #[test]
    fn text_parameters_and_conversion() {
        let text = |oid: u32, s: &str, target: SqlType| {
            decode_param(0, oid, ParamFormat::Text, Some(s.as_bytes()), &target)
        };
        assert_eq!(text(23, "42", SqlType::Int4).unwrap(), Value::Int(42));
        assert_eq!(
            text(25, "42", SqlType::Int8).unwrap(),
            Value::Int(42),
            "text converted to the engine's type"
        );
        assert_eq!(
            text(705, "x", SqlType::Unknown).unwrap(),
            Value::String("x".into())
        );
        assert_eq!(
            text(1082, "2000-01-01", SqlType::Date).unwrap(),
            Value::DateTime(PG_EPOCH_OFFSET_MICROS)
        );
        assert_eq!(text(26, "16384", SqlType::Int8).unwrap(), Value::Int(16384));
        assert!(text(23, "x", SqlType::Int4).is_err());
        assert!(
            text(25, "abcd", SqlType::Varchar(Some(3))).is_err(),
            "length checked on conversion"
        );
        assert_eq!(
            decode_param(0, 23, ParamFormat::Binary, None, &SqlType::Int4).unwrap(),
            Value::Null
        );
        // Binary int4 into an int8 parameter widens.
        assert_eq!(bin(23, &5i32.to_be_bytes(), SqlType::Int8), Value::Int(5));
    }
}
