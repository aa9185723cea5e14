//! Result values on the wire: one [`DataRow`] per engine row, each value in the format
//! its column asked for.
//!
//! Text format is always the engine's output function, [`SqlType::format_text`]. Binary
//! format is PostgreSQL's send function for the column's type. A value that does not
//! have the column's type (a schemaless field can hold anything) is converted when that
//! loses nothing: it is written as text and read back as the column's type. When even
//! that fails, the row is refused with 22P02 rather than sent with the wrong bytes.

use bytes::{BufMut, BytesMut};
use pgwire::api::results::FieldFormat;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use tissdb::doc::Value;
use tissdb::query::{Column, SqlType};

use crate::error;

/// Microseconds from 1970-01-01 (the engine's epoch) to 2000-01-01 (PostgreSQL's).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_OFFSET_DAYS: i64 = 10_957;
/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Sign words of PostgreSQL's binary numeric.
pub const NUMERIC_POS: u16 = 0x0000;
pub const NUMERIC_NEG: u16 = 0x4000;
pub const NUMERIC_NAN: u16 = 0xC000;
pub const NUMERIC_PINF: u16 = 0xD000;
pub const NUMERIC_NINF: u16 = 0xF000;

/// Encodes one row. `formats` has one entry per column.
pub fn encode_row(
    columns: &[Column],
    formats: &[FieldFormat],
    row: &[Value],
) -> PgWireResult<DataRow> {
    let mut buf = BytesMut::with_capacity(16 * row.len());
    let count = encode_row_into(&mut buf, columns, formats, row)?;
    Ok(DataRow::new(buf, count))
}

/// Appends the values of one row to `buf` (a data row's body) and gives their count.
pub fn encode_row_into(
    buf: &mut BytesMut,
    columns: &[Column],
    formats: &[FieldFormat],
    row: &[Value],
) -> PgWireResult<i16> {
    if row.len() != columns.len() || formats.len() != columns.len() {
        return Err(error::internal(format!(
            "a row has {} values for {} columns",
            row.len(),
            columns.len()
        )));
    }
    for ((column, format), value) in columns.iter().zip(formats).zip(row) {
        put_value(buf, column, *format, value)?;
    }
    // At most 1600 columns reach here in PostgreSQL; the engine's limit is its own.
    i16::try_from(columns.len()).map_err(|_| error::user("54011", "too many result columns"))
}

/// Appends one length-prefixed value (-1 for NULL).
fn put_value(
    buf: &mut BytesMut,
    column: &Column,
    format: FieldFormat,
    value: &Value,
) -> PgWireResult<()> {
    if matches!(value, Value::Null) {
        buf.put_i32(-1);
        return Ok(());
    }
    let len_at = buf.len();
    buf.put_i32(0);
    match (format, value) {
        (format, Value::Binary(encoded)) if column.json_encoded => {
            put_encoded_json(buf, &column.ty, format, encoded)?
        }
        (FieldFormat::Text, value) => put_text(buf, &column.ty, value),
        (FieldFormat::Binary, value) => put_binary_or_convert(buf, column, value)?,
    }
    let len = buf.len() - len_at - 4;
    let len =
        i32::try_from(len).map_err(|_| error::user("54000", "a value is larger than 2 GB"))?;
    buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Appends a json or jsonb value written from its binary encoding (see
/// [`tissdb::query::Column::json_encoded`]): its JSON text, after jsonb's version byte in
/// the binary format.
fn put_encoded_json(
    buf: &mut BytesMut,
    ty: &SqlType,
    format: FieldFormat,
    encoded: &[u8],
) -> PgWireResult<()> {
    if format == FieldFormat::Binary && *ty == SqlType::Jsonb {
        buf.put_u8(1);
    }
    tissdb::query::types::write_json_encoded(encoded, buf)
        .map_err(|e| error::internal(e.to_string()))
}

/// Appends the text form of a non-NULL `value` as `ty`: text, numeric, integer, float and
/// boolean values of a scalar column straight into the buffer (as
/// [`SqlType::format_text`] writes them), everything else through `format_text`.
fn put_text(buf: &mut BytesMut, ty: &SqlType, value: &Value) {
    let scalar = !matches!(
        ty,
        SqlType::Json
            | SqlType::Jsonb
            | SqlType::Array(_)
            | SqlType::Int2Vector
            | SqlType::OidVector
    );
    if scalar {
        match value {
            Value::String(s) | Value::Numeric(s) => return buf.put_slice(s.as_bytes()),
            Value::Int(i) => return buf.put_slice(itoa::Buffer::new().format(*i).as_bytes()),
            Value::Bool(b) => return buf.put_slice(if *b { b"t" } else { b"f" }),
            Value::Float(f) => {
                let (f, real) = match ty {
                    SqlType::Float4 => (*f as f32 as f64, true),
                    _ => (*f, false),
                };
                return tissdb::query::types::with_pg_float(f, real, |t| {
                    buf.put_slice(t.as_bytes())
                });
            }
            _ => {}
        }
    }
    if let Some(text) = ty.format_text(value) {
        buf.put_slice(text.as_bytes());
    }
}

/// The binary form of `value` as `column.ty`, converting through text when the value has
/// another type.
fn put_binary_or_convert(buf: &mut BytesMut, column: &Column, value: &Value) -> PgWireResult<()> {
    let ty = &column.ty;
    if put_binary(buf, ty, value) {
        return Ok(());
    }
    let text = ty.format_text(value).unwrap_or_default();
    if let Ok(converted) = ty.parse_text(&text)
        && put_binary(buf, ty, &converted)
    {
        return Ok(());
    }
    Err(error::user(
        error::INVALID_TEXT_REPRESENTATION,
        format!(
            "column \"{}\" is {} but a row holds the {} value {}, which is not one",
            column.name,
            ty.name(),
            value.type_name(),
            abbreviate(&text)
        ),
    ))
}

fn abbreviate(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("\"{}...\"", &text[..end]),
        None => format!("\"{text}\""),
    }
}

/// Appends PostgreSQL's binary send format of `value` as `ty`. Returns false, having
/// appended nothing, when the value is not of that type.
pub fn put_binary(buf: &mut BytesMut, ty: &SqlType, value: &Value) -> bool {
    match (ty, value) {
        (SqlType::Bool, Value::Bool(b)) => buf.put_u8(u8::from(*b)),
        (SqlType::Int2, Value::Int(i)) => match i16::try_from(*i) {
            Ok(v) => buf.put_i16(v),
            Err(_) => return false,
        },
        (SqlType::Int4, Value::Int(i)) => match i32::try_from(*i) {
            Ok(v) => buf.put_i32(v),
            Err(_) => return false,
        },
        (SqlType::Int8, Value::Int(i)) => buf.put_i64(*i),
        (SqlType::Oid | SqlType::Reg(_), Value::Int(i)) => match u32::try_from(*i) {
            Ok(v) => buf.put_u32(v),
            Err(_) => return false,
        },
        (SqlType::Array(elem), Value::Array(items)) => return put_array(buf, elem, items, 1),
        (SqlType::Int2Vector | SqlType::OidVector, Value::Array(items)) => {
            return put_array(buf, ty.element().unwrap_or(&SqlType::Int2), items, 0);
        }
        (SqlType::Float4, Value::Float(f)) => buf.put_f32(*f as f32),
        (SqlType::Float4, Value::Int(i)) => buf.put_f32(*i as f32),
        (SqlType::Float8, Value::Float(f)) => buf.put_f64(*f),
        (SqlType::Float8, Value::Int(i)) => buf.put_f64(*i as f64),
        (SqlType::Numeric | SqlType::NumericTyped(..), Value::Numeric(text)) => {
            return put_numeric(buf, text);
        }
        (SqlType::Numeric | SqlType::NumericTyped(..), Value::Int(i)) => {
            return put_numeric(buf, &i.to_string());
        }
        (SqlType::Text | SqlType::Varchar(_) | SqlType::Unknown, Value::String(s)) => {
            buf.put_slice(s.as_bytes())
        }
        (SqlType::Text | SqlType::Varchar(_) | SqlType::Unknown, v) => {
            buf.put_slice(ty.format_text(v).unwrap_or_default().as_bytes())
        }
        (SqlType::Date, Value::DateTime(micros)) => {
            let days = micros.div_euclid(MICROS_PER_DAY) - PG_EPOCH_OFFSET_DAYS;
            match i32::try_from(days) {
                Ok(d) => buf.put_i32(d),
                Err(_) => return false,
            }
        }
        (SqlType::Timestamp | SqlType::Timestamptz, Value::DateTime(micros)) => {
            match micros.checked_sub(PG_EPOCH_OFFSET_MICROS) {
                Some(m) => buf.put_i64(m),
                None => return false,
            }
        }
        (SqlType::Bytea, Value::Binary(bytes)) => buf.put_slice(bytes),
        (SqlType::Uuid, Value::String(s)) => match uuid::Uuid::parse_str(s.trim()) {
            Ok(u) => buf.put_slice(u.as_bytes()),
            Err(_) => return false,
        },
        (SqlType::Json, v) => {
            buf.put_slice(SqlType::Json.format_text(v).unwrap_or_default().as_bytes())
        }
        (SqlType::Jsonb, v) => {
            buf.put_u8(1);
            buf.put_slice(SqlType::Jsonb.format_text(v).unwrap_or_default().as_bytes());
        }
        _ => return false,
    }
    true
}

/// PostgreSQL's binary array of one dimension with lower bound `lower` (0 for the
/// vector types). Returns false, having appended nothing, if an element is not of the
/// element type.
fn put_array(buf: &mut BytesMut, elem: &SqlType, items: &[Value], lower: i32) -> bool {
    let start = buf.len();
    let has_null = items.iter().any(|v| matches!(v, Value::Null));
    buf.put_i32(i32::from(!items.is_empty()));
    buf.put_i32(i32::from(has_null));
    buf.put_u32(elem.oid());
    if !items.is_empty() {
        buf.put_i32(items.len() as i32);
        buf.put_i32(lower);
    }
    for item in items {
        if matches!(item, Value::Null) {
            buf.put_i32(-1);
            continue;
        }
        let len_at = buf.len();
        buf.put_i32(0);
        if !put_binary(buf, elem, item) {
            buf.truncate(start);
            return false;
        }
        let len = (buf.len() - len_at - 4) as i32;
        buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    }
    true
}

/// Appends the binary numeric of a decimal's text (`-12.50`, `NaN`, `Infinity`).
/// Returns false, having appended nothing, if the text is not a decimal.
pub fn put_numeric(buf: &mut BytesMut, text: &str) -> bool {
    match numeric_words(text) {
        Some(words) => {
            for w in words {
                buf.put_u16(w);
            }
            true
        }
        None => false,
    }
}

/// The 16-bit words of PostgreSQL's binary numeric: ndigits, weight, sign, dscale, then
/// the base-10000 digits.
fn numeric_words(text: &str) -> Option<Vec<u16>> {
    let t = text.trim();
    let special = match t.to_ascii_lowercase().as_str() {
        "nan" => Some(NUMERIC_NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(NUMERIC_PINF),
        "-infinity" | "-inf" => Some(NUMERIC_NINF),
        _ => None,
    };
    if let Some(sign) = special {
        return Some(vec![0, 0, sign, 0]);
    }
    let (negative, unsigned) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    // dscale is 14 bits in PostgreSQL.
    let dscale = u16::try_from(frac_part.len())
        .ok()
        .filter(|d| *d <= 0x3FFF)?;
    let int_part = int_part.trim_start_matches('0');
    let group = |digits: &[u8]| {
        digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
    };

    let mut digits: Vec<u16> = Vec::new();
    // Integer groups, aligned at the decimal point: the first may be short.
    let first = int_part.len() % 4;
    if first > 0 {
        digits.push(group(&int_part.as_bytes()[..first]));
    }
    for chunk in int_part.as_bytes()[first..].chunks(4) {
        digits.push(group(chunk));
    }
    let int_groups = digits.len();
    // Fraction groups, padded with zeros on the right.
    for chunk in frac_part.as_bytes().chunks(4) {
        let mut g = group(chunk);
        for _ in chunk.len()..4 {
            g *= 10;
        }
        digits.push(g);
    }
    let mut weight = i64::try_from(int_groups).ok()? - 1;
    // Leading zero groups (only in a fraction below 1) move the weight down.
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight -= i64::try_from(leading).ok()?;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        return Some(vec![0, 0, NUMERIC_POS, dscale]);
    }
    let ndigits = u16::try_from(digits.len())
        .ok()
        .filter(|n| *n <= i16::MAX as u16)?;
    let weight = i16::try_from(weight).ok()?;
    let sign = if negative { NUMERIC_NEG } else { NUMERIC_POS };
    let mut words = Vec::with_capacity(4 + digits.len());
    words.extend([ndigits, weight as u16, sign, dscale]);
    words.extend(digits);
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(ty: SqlType, v: Value) -> Option<Vec<u8>> {
        let mut buf = BytesMut::new();
        put_binary(&mut buf, &ty, &v).then(|| buf.to_vec())
    }

    fn numeric(text: &str) -> Vec<u16> {
        numeric_words(text).unwrap_or_else(|| panic!("{text} is not a decimal"))
    }

    /// The text written straight into the buffer is what `format_text` gives, for
    /// scalar and JSON columns alike (a string in a jsonb column is quoted; a boolean
    /// there is `true`).
    #[test]
    fn text_values_are_what_format_text_gives() {
        use tissdb::doc::Object;
        let mut object = Object::default();
        object.insert("a".into(), Value::Int(1));
        let values = [
            Value::String("héllo \"x\"".into()),
            Value::Numeric("-12.50".into()),
            Value::Int(i64::MIN),
            Value::Int(0),
            Value::Int(42),
            Value::Bool(true),
            Value::Bool(false),
            Value::Float(1.5),
            Value::Float(0.1),
            Value::Float(-3.25e-7),
            Value::Float(1e20),
            Value::Float(16_777_217.0),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::DateTime(86_400_000_000),
            Value::Binary(vec![0, 255]),
            Value::Array(vec![Value::Int(1), Value::String("b".into())]),
            Value::Object(Box::new(object)),
        ];
        let types = [
            SqlType::Text,
            SqlType::Int8,
            SqlType::Numeric,
            SqlType::Bool,
            SqlType::Float8,
            SqlType::Float4,
            SqlType::Timestamptz,
            SqlType::Jsonb,
            SqlType::Json,
            SqlType::Array(Box::new(SqlType::Text)),
        ];
        for ty in &types {
            for v in &values {
                let mut buf = BytesMut::new();
                put_text(&mut buf, ty, v);
                let want = ty.format_text(v).unwrap_or_default();
                assert_eq!(std::str::from_utf8(&buf).unwrap(), want, "{v:?} as {ty:?}");
            }
        }
    }

    #[test]
    fn numerics_match_postgres() {
        // Words as PostgreSQL's numeric_send writes them.
        assert_eq!(numeric("12.50"), vec![2, 0, 0, 2, 12, 5000]);
        assert_eq!(numeric("-12.50"), vec![2, 0, 0x4000, 2, 12, 5000]);
        assert_eq!(numeric("0"), vec![0, 0, 0, 0]);
        assert_eq!(numeric("0.00"), vec![0, 0, 0, 2]);
        assert_eq!(numeric("0.0001"), vec![1, (-1i16) as u16, 0, 4, 1]);
        assert_eq!(numeric("0.00001"), vec![1, (-2i16) as u16, 0, 5, 1000]);
        assert_eq!(numeric("100000000"), vec![1, 2, 0, 0, 1]);
        assert_eq!(numeric("123456.789"), vec![3, 1, 0, 3, 12, 3456, 7890]);
        assert_eq!(numeric("199.99"), vec![2, 0, 0, 2, 199, 9900]);
        assert_eq!(numeric("NaN"), vec![0, 0, 0xC000, 0]);
        assert_eq!(numeric("-Infinity"), vec![0, 0, 0xF000, 0]);
        for bad in ["", "-", ".", "1e5", "1.2.3", "abc", "--1"] {
            assert_eq!(numeric_words(bad), None, "{bad}");
        }
    }

    #[test]
    fn fixed_width_types() {
        assert_eq!(binary(SqlType::Bool, Value::Bool(true)), Some(vec![1]));
        assert_eq!(
            binary(SqlType::Int2, Value::Int(-2)),
            Some(vec![0xff, 0xfe])
        );
        assert_eq!(binary(SqlType::Int2, Value::Int(40_000)), None);
        assert_eq!(binary(SqlType::Int4, Value::Int(1)), Some(vec![0, 0, 0, 1]));
        assert_eq!(
            binary(SqlType::Int8, Value::Int(1)),
            Some(vec![0, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(
            binary(SqlType::Float8, Value::Int(2)),
            Some(2f64.to_be_bytes().to_vec())
        );
        assert_eq!(
            binary(SqlType::Float4, Value::Float(1.5)),
            Some(1.5f32.to_be_bytes().to_vec())
        );
        assert_eq!(binary(SqlType::Int4, Value::Float(1.5)), None);
    }

    #[test]
    fn dates_and_timestamps_use_the_2000_epoch() {
        let y2k = PG_EPOCH_OFFSET_MICROS;
        assert_eq!(
            binary(SqlType::Timestamptz, Value::DateTime(y2k)),
            Some(vec![0; 8])
        );
        assert_eq!(
            binary(SqlType::Date, Value::DateTime(y2k)),
            Some(vec![0; 4])
        );
        assert_eq!(
            binary(SqlType::Date, Value::DateTime(0)),
            Some((-10_957i32).to_be_bytes().to_vec())
        );
        // A moment before midnight belongs to the day before.
        assert_eq!(
            binary(SqlType::Date, Value::DateTime(y2k - 1)),
            Some((-1i32).to_be_bytes().to_vec())
        );
        assert_eq!(
            binary(SqlType::Timestamp, Value::DateTime(0)),
            Some((-y2k).to_be_bytes().to_vec())
        );
    }

    #[test]
    fn variable_width_types() {
        let u = "a1b2c3d4-e5f6-4a3b-8c2d-1e9f8a7b6c5d";
        assert_eq!(
            binary(SqlType::Uuid, Value::String(u.into())),
            Some(uuid::Uuid::parse_str(u).unwrap().as_bytes().to_vec())
        );
        assert_eq!(binary(SqlType::Uuid, Value::String("nope".into())), None);
        assert_eq!(
            binary(SqlType::Bytea, Value::Binary(vec![0, 255])),
            Some(vec![0, 255])
        );
        assert_eq!(binary(SqlType::Text, Value::Int(7)), Some(b"7".to_vec()));
        let mut obj = tissdb::doc::Object::default();
        obj.insert("a".into(), Value::Int(1));
        assert_eq!(
            binary(SqlType::Jsonb, Value::Object(Box::new(obj.clone()))),
            Some(b"\x01{\"a\": 1}".to_vec())
        );
        assert_eq!(
            binary(SqlType::Json, Value::Object(Box::new(obj))),
            Some(b"{\"a\": 1}".to_vec())
        );
        assert_eq!(
            binary(SqlType::Jsonb, Value::String("x".into())),
            Some(b"\x01\"x\"".to_vec())
        );
    }

    #[test]
    fn rows_convert_losslessly_or_refuse() {
        let columns = vec![
            Column::new("n", SqlType::Int4),
            Column::new("t", SqlType::Text),
        ];
        let formats = [FieldFormat::Binary, FieldFormat::Text];
        let row = encode_row(
            &columns,
            &formats,
            &[Value::String("42".into()), Value::Null],
        )
        .unwrap();
        assert_eq!(row.field_count, 2);
        assert_eq!(
            &row.data[..],
            &[0, 0, 0, 4, 0, 0, 0, 42, 0xff, 0xff, 0xff, 0xff]
        );
        let err = encode_row(&columns, &formats, &[Value::Float(1.5), Value::Null]).unwrap_err();
        let pgwire::error::PgWireError::UserError(info) = err else {
            panic!("not a user error")
        };
        assert_eq!(info.code, "22P02");
        // Text format never refuses.
        let text = [FieldFormat::Text, FieldFormat::Text];
        let row = encode_row(&columns, &text, &[Value::Float(1.5), Value::Int(3)]).unwrap();
        assert_eq!(&row.data[..], b"\0\0\0\x031.5\0\0\0\x013");
    }
}
