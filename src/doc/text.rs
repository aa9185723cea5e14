//! Scalars as text: typing text without loss, and the canonical text of every scalar.
//!
//! XML leaves, XML attributes and CSV cells arrive as text. [`infer_scalar`] gives text a
//! type only when the typed value prints back as the very same text (trailing zeros after
//! a decimal point aside), so nothing a client wrote is ever changed by typing it:
//! `42` is an integer, `02134` stays a string. [`canonical_text`] is the inverse used by
//! the writers, and [`format_datetime`] / [`parse_datetime`] are the one place datetimes
//! become text and back. Datetimes are handled with plain integer arithmetic over the
//! proleptic Gregorian calendar, so every `i64` of microseconds has a text form and reads
//! back, including years beyond 9999 (written `+10000-…`) and before year 0 (`-0001-…`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::Value;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Types `text` without loss: booleans, integers, floats and canonical UTC datetimes are
/// recognised only when they print back as `text`; everything else is a string.
pub fn infer_scalar(text: &str) -> Value {
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Some(i) = infer_int(text) {
        return Value::Int(i);
    }
    if let Some(f) = infer_float(text) {
        return Value::Float(f);
    }
    if let Some(m) = infer_datetime(text) {
        return Value::DateTime(m);
    }
    Value::String(text.to_string())
}

/// Whether [`infer_scalar`] reads `text` as a string, without copying it.
pub fn infers_as_string(text: &str) -> bool {
    !matches!(text, "true" | "false")
        && infer_int(text).is_none()
        && infer_float(text).is_none()
        && infer_datetime(text).is_none()
}

/// `-?[0-9]+`, in range, and printing back as the same text.
fn infer_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i: i64 = text.parse().ok()?;
    (i.to_string() == text).then_some(i)
}

/// `-?[0-9]+\.[0-9]+`, finite, and printing back as the same text once trailing zeros
/// after the decimal point are dropped (keeping one digit).
fn infer_float(text: &str) -> Option<f64> {
    let (int_part, frac_part) = decimal_parts(text)?;
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let trimmed_frac = frac_part.trim_end_matches('0');
    let trimmed_frac = if trimmed_frac.is_empty() {
        "0"
    } else {
        trimmed_frac
    };
    let sign = if text.starts_with('-') { "-" } else { "" };
    let expected = format!("{sign}{int_part}.{trimmed_frac}");
    (format_float(f) == expected).then_some(f)
}

/// Whether [`infer_scalar`] reads `formatted`, the [`format_float`] text of `f`, back as
/// `f` itself, without reading it: the text is the shortest that reads back as `f`
/// (Rust's float formatting guarantees it), so the reading is `f` exactly when the text
/// has [`infer_float`]'s shape (`-?[0-9]+\.[0-9]+`; not `NaN`, `Infinity` or an
/// exponent form), and it prints back as itself (no trailing zeros but a lone `.0`).
pub fn reads_back_as_float(f: f64, formatted: &str) -> bool {
    f.is_finite() && decimal_parts(formatted).is_some()
}

/// The digits before and after the point of `-?[0-9]+\.[0-9]+`, or None for any other
/// text.
fn decimal_parts(text: &str) -> Option<(&str, &str)> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int_part, frac_part) = unsigned.split_once('.')?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (digits(int_part) && digits(frac_part)).then_some((int_part, frac_part))
}

/// A datetime in the canonical form `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` that prints back as
/// the same text, trailing zeros of the fraction aside.
fn infer_datetime(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    // "YYYY-MM-DDTHH:MM:SS" is 19 bytes, then an optional fraction, then "Z".
    if bytes.len() < 20 || !text.is_ascii() || !text.ends_with('Z') {
        return None;
    }
    let shape_ok = bytes.iter().take(19).enumerate().all(|(i, &b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let head = text.get(..19)?;
    let tail = text.get(19..text.len() - 1)?;
    let normalized = if tail.is_empty() {
        format!("{head}Z")
    } else {
        let frac = tail.strip_prefix('.')?;
        if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            format!("{head}Z")
        } else {
            format!("{head}.{frac}Z")
        }
    };
    let micros = parse_datetime(text)?;
    (format_datetime(micros) == normalized).then_some(micros)
}

/// The canonical text of a float: Rust's shortest round-trip form (`1.0`, `199.99`,
/// `1e300`); `NaN`, `Infinity` and `-Infinity` for the non-finite values.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "Infinity".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".to_string()
    } else {
        format!("{f:?}")
    }
}

/// Reads a float written by [`format_float`] (or any decimal or exponent form), plus
/// `NaN`, `Infinity` and `-Infinity`. Refuses Rust's other spellings (`inf`, `nan`).
pub fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !plain {
        return None;
    }
    text.parse().ok()
}

/// True if `text` is the canonical text of a numeric: optional `-`, digits, and
/// optionally `.` followed by digits.
pub fn is_numeric_text(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int_part) && frac_part.is_none_or(digits)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // month is in 1..=12 and day in 1..=31 by construction.
    (year, month as u32, day as u32)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// ISO 8601 UTC text of a datetime: `2023-10-26T10:00:00Z`, with a fraction of a second
/// only when it is not zero, trimmed of trailing zeros (`…:00.5Z`). Years outside
/// 0000..=9999 carry a sign (`+10000-01-01T00:00:00Z`, `-0001-…`).
pub fn format_datetime(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / MICROS_PER_SECOND;
    let frac = in_day % MICROS_PER_SECOND;
    let (hh, mm, ss) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let year_text = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year > 9999 {
        format!("+{year}")
    } else {
        format!("-{:04}", year.unsigned_abs())
    };
    let mut out = format!("{year_text}-{month:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}");
    if frac != 0 {
        let digits = format!("{frac:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// A small cursor over ASCII text for the datetime parser.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_any(&mut self, set: &[u8]) -> Option<u8> {
        let b = self.peek().filter(|b| set.contains(b))?;
        self.pos += 1;
        Some(b)
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let slice = self.bytes.get(self.pos..self.pos + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += n;
        Some(
            slice
                .iter()
                .fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0')),
        )
    }

    /// One or more ASCII digits, returned as a slice.
    fn digit_run(&mut self) -> &[u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.bytes.get(start..self.pos).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

/// Reads an RFC 3339 timestamp with any offset (`2023-10-26T12:00:00+02:00`, `…Z`),
/// plus signed years of more than four digits as [`format_datetime`] writes them.
/// Returns microseconds since the epoch, UTC; digits of the fraction beyond the sixth
/// round to the nearest microsecond. `None` if the text is not such a timestamp or is
/// out of range.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let mut c = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year: i64 = match c.eat_any(b"+-") {
        Some(sign) => {
            let run = c.digit_run();
            if run.len() < 4 || run.len() > 12 {
                return None;
            }
            let magnitude = run
                .iter()
                .fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0'));
            if sign == b'-' { -magnitude } else { magnitude }
        }
        None => c.digits(4)?,
    };
    if !c.eat(b'-') {
        return None;
    }
    let month = u32::try_from(c.digits(2)?).ok()?;
    if !c.eat(b'-') {
        return None;
    }
    let day = u32::try_from(c.digits(2)?).ok()?;
    c.eat_any(b"Tt ")?;
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let second = c.digits(2)?;
    let mut frac_micros = 0i64;
    if c.eat(b'.') {
        let run = c.digit_run();
        if run.is_empty() {
            return None;
        }
        for i in 0..6 {
            let d = run.get(i).map_or(0, |&b| i64::from(b - b'0'));
            frac_micros = frac_micros * 10 + d;
        }
        if run.get(6).is_some_and(|&b| b >= b'5') {
            frac_micros += 1;
        }
    }
    let offset_secs: i64 = match c.eat_any(b"Zz+-") {
        Some(b'Z' | b'z') => 0,
        Some(sign) => {
            let oh = c.digits(2)?;
            if !c.eat(b':') {
                return None;
            }
            let om = c.digits(2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'-' { -secs } else { secs }
        }
        None => return None,
    };
    if !c.at_end()
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = i128::from(days_from_civil(year, month, day));
    let secs = days * 86_400 + i128::from(hour * 3600 + minute * 60 + second - offset_secs);
    let micros = secs * i128::from(MICROS_PER_SECOND) + i128::from(frac_micros);
    i64::try_from(micros).ok()
}

/// The text of a scalar as the text codecs write it; `None` for null, arrays and objects.
pub fn canonical_text(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Array(_) | Value::Object(_) => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(format_float(*f)),
        Value::Numeric(s) | Value::String(s) => Some(s.clone()),
        Value::DateTime(m) => Some(format_datetime(*m)),
        Value::Binary(b) => Some(BASE64.encode(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    #[test]
    fn inference_table() {
        let dt = parse_datetime("2023-10-26T10:00:00Z").unwrap();
        let cases: Vec<(&str, Value)> = vec![
            ("42", Value::Int(42)),
            ("-42", Value::Int(-42)),
            ("0", Value::Int(0)),
            ("199.99", Value::Float(199.99)),
            ("1.50", Value::Float(1.5)),
            ("1.00", Value::Float(1.0)),
            ("1.0", Value::Float(1.0)),
            ("-0.5", Value::Float(-0.5)),
            ("5.2", Value::Float(5.2)),
            ("02134", s("02134")),
            ("-0", s("-0")),
            ("+5", s("+5")),
            ("00.5", s("00.5")),
            ("0E0", s("0E0")),
            ("1e3", s("1e3")),
            ("NA", s("NA")),
            (".5", s(".5")),
            ("1.", s("1.")),
            ("NaN", s("NaN")),
            ("inf", s("inf")),
            ("Infinity", s("Infinity")),
            ("9223372036854775807", Value::Int(i64::MAX)),
            ("9223372036854775808", s("9223372036854775808")),
            ("10000000000000000.0", s("10000000000000000.0")),
            ("0.1000000000000000000001", s("0.1000000000000000000001")),
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("True", s("True")),
            ("2023-10-26T10:00:00Z", Value::DateTime(dt)),
            ("2023-10-26T10:00:00.500Z", Value::DateTime(dt + 500_000)),
            ("2023-10-26T10:00:00.000Z", Value::DateTime(dt)),
            (
                "2023-10-26T10:00:00.1234567Z",
                s("2023-10-26T10:00:00.1234567Z"),
            ),
            ("2023-10-26T10:00:00+00:00", s("2023-10-26T10:00:00+00:00")),
            ("2023-10-26 10:00:00Z", s("2023-10-26 10:00:00Z")),
            ("2023-02-30T10:00:00Z", s("2023-02-30T10:00:00Z")),
            ("2023-10-26", s("2023-10-26")),
            ("250g", s("250g")),
            ("", s("")),
            (" 42", s(" 42")),
            ("42 ", s("42 ")),
        ];
        for (text, expected) in cases {
            assert_eq!(infer_scalar(text), expected, "inferring {text:?}");
        }
    }

    #[test]
    fn float_text() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(199.99), "199.99");
        assert_eq!(format_float(1e300), "1e300");
        assert_eq!(format_float(-0.0), "-0.0");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::INFINITY), "Infinity");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Infinity");
        for f in [
            0.1,
            1e300,
            -2.5e-300,
            5e-324,
            f64::MAX,
            f64::MIN,
            123456.789,
        ] {
            assert_eq!(parse_float(&format_float(f)), Some(f));
        }
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_float("inf"), None);
        assert_eq!(parse_float("nan"), None);
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float("1 "), None);
    }

    #[test]
    fn numeric_text() {
        for ok in ["0", "-1", "123.456", "-0.000", "99999999999999999999999999"] {
            assert!(is_numeric_text(ok), "{ok}");
        }
        for bad in ["", "-", "1.", ".1", "1e5", "+1", "1.2.3", " 1", "NaN"] {
            assert!(!is_numeric_text(bad), "{bad}");
        }
    }

    #[test]
    fn datetime_text() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_datetime(500_000), "1970-01-01T00:00:00.5Z");
        assert_eq!(format_datetime(1), "1970-01-01T00:00:00.000001Z");
        assert_eq!(format_datetime(-1), "1969-12-31T23:59:59.999999Z");
        let seed = parse_datetime("2023-10-26T10:00:00Z").unwrap();
        assert_eq!(seed, 1_698_314_400_000_000);
        assert_eq!(format_datetime(seed), "2023-10-26T10:00:00Z");
        assert_eq!(parse_datetime("2023-10-26T12:00:00+02:00"), Some(seed));
        assert_eq!(parse_datetime("2023-10-26T05:30:00-04:30"), Some(seed));
        assert_eq!(parse_datetime("2023-10-26t10:00:00z"), Some(seed));
        assert_eq!(parse_datetime("2023-10-26 10:00:00Z"), Some(seed));
        assert_eq!(
            parse_datetime("2023-10-26T10:00:00.0000005Z"),
            Some(seed + 1)
        );
        assert_eq!(parse_datetime("2023-10-26T10:00:00"), None);
        assert_eq!(parse_datetime("2023-10-26T24:00:00Z"), None);
        assert_eq!(parse_datetime("2023-10-26T10:00:60Z"), None);
        assert_eq!(parse_datetime("2023-13-01T10:00:00Z"), None);
        assert!(parse_datetime("2024-02-29T00:00:00Z").is_some());
        assert_eq!(parse_datetime("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_datetime("2023-10-26T10:00:00.Z"), None);
        assert_eq!(parse_datetime("2023-10-26T10:00:00Zjunk"), None);
        assert_eq!(parse_datetime(""), None);
        assert_eq!(parse_datetime("2023-10-26T10:00:00+2:00"), None);
        assert_eq!(parse_datetime("+99999999999-01-01T00:00:00Z"), None);
        for m in [
            0,
            1,
            -1,
            seed,
            i64::MAX,
            i64::MIN,
            253_402_300_800_000_000, // 10000-01-01
            -62_167_219_200_000_001, // just before 0000-01-01
        ] {
            let text = format_datetime(m);
            assert_eq!(parse_datetime(&text), Some(m), "{text}");
        }
        assert_eq!(
            format_datetime(253_402_300_800_000_000),
            "+10000-01-01T00:00:00Z"
        );
        assert_eq!(
            format_datetime(-62_167_219_200_000_001),
            "-0001-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn canonical_texts() {
        assert_eq!(canonical_text(&Value::Null), None);
        assert_eq!(canonical_text(&Value::Bool(true)).as_deref(), Some("true"));
        assert_eq!(canonical_text(&Value::Int(-7)).as_deref(), Some("-7"));
        assert_eq!(canonical_text(&Value::Float(2.0)).as_deref(), Some("2.0"));
        assert_eq!(
            canonical_text(&Value::Numeric("1.50".into())).as_deref(),
            Some("1.50")
        );
        assert_eq!(canonical_text(&s("x")).as_deref(), Some("x"));
        assert_eq!(
            canonical_text(&Value::DateTime(0)).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            canonical_text(&Value::Binary(b"hi".to_vec())).as_deref(),
            Some("aGk=")
        );
        assert_eq!(canonical_text(&Value::Array(vec![])), None);
        assert_eq!(canonical_text(&Value::Object(Default::default())), None);
    }

    proptest::proptest! {
        #[test]
        fn infers_as_string_agrees_with_infer_scalar(
            text in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "-?[0-9]{1,20}(\\.[0-9]{1,5})?",
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
                proptest::strategy::Just("true".to_string()),
            ]
        ) {
            proptest::prop_assert_eq!(
                infers_as_string(&text),
                matches!(infer_scalar(&text), Value::String(_))
            );
        }

        #[test]
        fn reads_back_as_float_agrees_with_infer_scalar(
            f in proptest::prop_oneof![
                proptest::num::f64::ANY,
                proptest::strategy::Strategy::prop_map(proptest::prelude::any::<i64>(), |i| i as f64),
                proptest::strategy::Strategy::prop_map(-1e7..1e7f64, |x| (x * 100.0).round() / 100.0),
            ]
        ) {
            let text = format_float(f);
            proptest::prop_assert_eq!(
                reads_back_as_float(f, &text),
                matches!(infer_scalar(&text), Value::Float(g) if g.to_bits() == f.to_bits()),
                "{}", text
            );
        }
    }

    #[test]
    fn floats_that_read_back_and_floats_that_do_not() {
        for f in [0.0, -0.0, 1.5, -922.48, 5.0, 1e15, 0.0001, f64::MAX / 1e300] {
            let text = format_float(f);
            assert!(reads_back_as_float(f, &text), "{text}");
            assert_eq!(infer_scalar(&text), Value::Float(f), "{text}");
        }
        for f in [
            1e16,
            1e20,
            1e-7,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let text = format_float(f);
            assert!(!reads_back_as_float(f, &text), "{text}");
        }
    }

    #[test]
    fn every_datetime_text_infers_back_when_canonical() {
        for m in [0, 1_698_314_400_123_400, 946_684_799_999_999] {
            assert_eq!(infer_scalar(&format_datetime(m)), Value::DateTime(m));
        }
    }
}

/// Shared test helpers: a proptest strategy for arbitrary values and a comparison that
/// treats every NaN as equal and tells `-0.0` from `0.0`.
#[cfg(test)]
pub(crate) mod testing {
    use super::super::{Object, Value};
    use proptest::prelude::*;

    /// Equal values, floats compared bit for bit (any NaN equals any NaN).
    pub(crate) fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => {
                (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
            }
            _ => a == b,
        }
    }

    pub(crate) fn same_object(a: &Object, b: &Object) -> bool {
        same(
            &Value::Object(Box::new(a.clone())),
            &Value::Object(Box::new(b.clone())),
        )
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z ]{0,6}",
            prop::sample::select(vec![
                "",
                " ",
                "  x ",
                "42",
                "-0",
                "02134",
                "1.50",
                "1.5",
                "199.99",
                "1e3",
                "true",
                "false",
                "null",
                "NaN",
                "Infinity",
                "2023-10-26T10:00:00Z",
                "\\N",
                "a\r\nb\rc",
                "\t",
                "<&>\"'",
                "]]>",
                "\u{1}",
                "\u{0}",
                "\u{FFFE}",
                "\u{FFFF}",
                "\u{7F}",
                "\u{85}",
                "\u{2028}",
                "&amp;",
                "é😀",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn arb_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_][a-z0-9_.-]{0,6}",
            any::<String>(),
            prop::sample::select(vec![
                "hello world",
                "1abc",
                "a:b",
                "",
                "xmlfoo",
                "XMLa",
                "id",
                "#text",
                "features",
                "reviews",
                "s",
                "xs",
                "t:field",
                "t:type",
                "item",
                "document",
                "a\tb\nc\rd",
                "\u{1}",
                "\u{FFFF}",
                "é",
                "-a",
                ".a",
                "$date",
                "$object",
                "$float",
                "$binary",
                "$numeric",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            prop_oneof![-1000i64..1000].prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            prop::sample::select(vec![
                0.0,
                -0.0,
                1.0,
                1.5,
                199.99,
                5.2,
                1e300,
                1e16,
                -2.5e-7,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ])
            .prop_map(Value::Float),
            "-?[0-9]{1,25}(\\.[0-9]{1,12})?".prop_map(Value::Numeric),
            arb_string().prop_map(Value::String),
            any::<i64>().prop_map(Value::DateTime),
            (0i64..4_102_444_800_000_000).prop_map(Value::DateTime),
            prop::collection::vec(any::<u8>(), 0..12).prop_map(Value::Binary),
        ]
    }

    /// Any value: scalars of every type, arrays and objects nested a few levels.
    pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
        arb_scalar().prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((arb_name(), inner), 0..5)
                    .prop_map(|fields| Value::Object(Box::new(fields.into_iter().collect()))),
            ]
        })
    }

    /// Any object, for document bodies.
    pub(crate) fn arb_object() -> impl Strategy<Value = Object> {
        prop::collection::vec((arb_name(), arb_value()), 0..6)
            .prop_map(|fields| fields.into_iter().collect())
    }
}
