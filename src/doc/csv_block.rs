//! The CSV block codec: segment blocks of "tables of scalars" as CSV rows under a typed
//! header.
//!
//! A block is eligible when every entry is a document (no tombstones), all documents have
//! the same field names in the same order, every value is a scalar, and each column holds
//! one type besides nulls. The header is `id` then `name:type` per field (the type is
//! [`Value::type_name`]; a column of nulls only is `null`); each row is the id and the
//! [`text::canonical_text`] of each value, with null written `\N`. A string equal to `\N`
//! makes a block ineligible. Decoding types each cell by its column's declared type, not by
//! inference, so every value reads back exactly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Object, Value};
use super::{binary, text};
use crate::error::{Error, Result};

/// The cell text of a null.
const NULL_CELL: &str = "\\N";

/// Encodes a block of documents as CSV, or `None` if the block is not eligible (see the
/// module doc); the caller then uses the XML codec.
pub fn encode_block(entries: &[(&str, Option<&Object>)]) -> Option<Vec<u8>> {
    let first = entries.first()?.1?;
    let names: Vec<&String> = first.keys().collect();
    let mut types: Vec<&'static str> = vec!["null"; names.len()];
    for (_, body) in entries {
        let body = (*body)?;
        if body.len() != names.len() {
            return None;
        }
        for (i, (name, value)) in body.iter().enumerate() {
            if names.get(i) != Some(&name) || !value.is_scalar() {
                return None;
            }
            if matches!(value, Value::String(s) if s == NULL_CELL) {
                return None;
            }
            if matches!(value, Value::Null) {
                continue;
            }
            let slot = types.get_mut(i)?;
            match *slot {
                "null" => *slot = value.type_name(),
                t if t == value.type_name() => {}
                _ => return None,
            }
        }
    }

    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let header = std::iter::once("id".to_string()).chain(
        names
            .iter()
            .zip(&types)
            .map(|(name, ty)| format!("{name}:{ty}")),
    );
    writer.write_record(header).ok()?;
    for (id, body) in entries {
        let body = (*body)?;
        let row = std::iter::once(id.to_string()).chain(
            body.values()
                .map(|v| text::canonical_text(v).unwrap_or_else(|| NULL_CELL.to_string())),
        );
        writer.write_record(row).ok()?;
    }
    writer.into_inner().ok()
}

/// [`encode_block`] for documents in the binary form of [`binary::encode_object`] (a
/// memtable's or a bulk load's rows), read in place instead of built as objects: the
/// same bytes, or `None` where [`encode_block`] gives `None` or a document does not
/// decode (the caller then decodes them and takes the XML codec, which reports it).
pub fn encode_block_binary(entries: &[(&str, Option<&[u8]>)]) -> Option<Vec<u8>> {
    if entries.is_empty() {
        return None;
    }
    let mut names: Vec<&[u8]> = Vec::new();
    let mut types: Vec<&'static str> = Vec::new();
    let mut rows = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(entries.len() * 32));
    let mut cell = String::new();
    for (n, (id, body)) in entries.iter().enumerate() {
        let mut r = binary::Reader::new((*body)?);
        let count = usize::try_from(r.varint().ok()?).ok()?;
        if n == 0 {
            names.reserve(count.min(64));
        } else if count != names.len() {
            return None;
        }
        rows.write_field(id).ok()?;
        for i in 0..count {
            let name = r.bytes_prefixed().ok()?;
            if n == 0 {
                if names.contains(&name) {
                    return None;
                }
                names.push(name);
                types.push("null");
            } else if names.get(i) != Some(&name) {
                return None;
            }
            cell.clear();
            let ty = binary_cell(&mut r, &mut cell)?;
            if let Some(ty) = ty {
                let slot = types.get_mut(i)?;
                match *slot {
                    "null" => *slot = ty,
                    t if t == ty => {}
                    _ => return None,
                }
                if cell == NULL_CELL {
                    return None;
                }
                rows.write_field(&cell).ok()?;
            } else {
                rows.write_field(NULL_CELL).ok()?;
            }
        }
        if !r.is_empty() {
            return None;
        }
        rows.write_record(None::<&[u8]>).ok()?;
    }
    let rows = rows.into_inner().ok()?;
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() + 16 * names.len() + 8));
    writer.write_field("id").ok()?;
    for (name, ty) in names.iter().zip(&types) {
        let name = std::str::from_utf8(name).ok()?;
        writer.write_field(format!("{name}:{ty}")).ok()?;
    }
    writer.write_record(None::<&[u8]>).ok()?;
    let mut out = writer.into_inner().ok()?;
    out.extend_from_slice(&rows);
    Some(out)
}

/// Reads one value of a binary document into `cell` as [`text::canonical_text`] writes
/// it, with its type name; `Some(None)` for a null, `None` for an array, an object or
/// bytes that do not decode.
fn binary_cell(r: &mut binary::Reader<'_>, cell: &mut String) -> Option<Option<&'static str>> {
    use std::fmt::Write as _;
    let value = match r.peek_tag()? {
        binary::Tag::Scalar => r.value(0).ok()?,
        binary::Tag::Text => {
            let (numeric, text) = r.text().ok()?;
            cell.push_str(text);
            return Some(Some(if numeric { "numeric" } else { "string" }));
        }
        binary::Tag::Nested => return None,
    };
    let ty = value.type_name();
    match value {
        Value::Null => return Some(None),
        Value::Bool(b) => cell.push_str(if b { "true" } else { "false" }),
        Value::Int(i) => write!(cell, "{i}").ok()?,
        Value::Float(f) if f.is_finite() => write!(cell, "{f:?}").ok()?,
        other => cell.push_str(&text::canonical_text(&other)?),
    }
    Some(Some(ty))
}

fn corrupt(message: impl std::fmt::Display) -> Error {
    Error::Corruption(format!("CSV block: {message}"))
}

/// Reads one cell as a value of the column's type.
fn decode_cell(cell: &str, ty: &str) -> Option<Value> {
    if cell == NULL_CELL {
        return Some(Value::Null);
    }
    Some(match ty {
        "boolean" => match cell {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return None,
        },
        "integer" => Value::Int(cell.parse().ok()?),
        "float" => Value::Float(text::parse_float(cell)?),
        "numeric" if text::is_numeric_text(cell) => Value::Numeric(cell.to_string()),
        "string" => Value::String(cell.to_string()),
        "datetime" => Value::DateTime(text::parse_datetime(cell)?),
        "binary" => Value::Binary(BASE64.decode(cell).ok()?),
        _ => return None,
    })
}

/// Decodes a block written by [`encode_block`]; every entry is a document.
pub fn decode_block(bytes: &[u8]) -> Result<Vec<(String, Option<Object>)>> {
    decode_block_keeping(bytes, None)
}

/// [`decode_block`] keeping only the columns `keep` (None: all); the other cells are
/// not decoded.
pub fn decode_block_keeping(
    bytes: &[u8],
    keep: Option<&[String]>,
) -> Result<Vec<(String, Option<Object>)>> {
    let (columns, body) = read_header(bytes)?;
    let kept: Vec<bool> = columns
        .iter()
        .map(|(name, _)| keep.is_none_or(|k| k.iter().any(|f| f == name)))
        .collect();
    let mut reader = rows_reader(body);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(corrupt)?;
        out.push(decode_row(&record, &columns, &kept)?);
    }
    Ok(out)
}

/// The document under `id` in a block written by [`encode_block`], `None` if the block
/// has no row for it: the rows are searched as bytes for one that starts with `id`, and
/// only that row is decoded (a point read, or an insert's duplicate check, on a bloom
/// filter's false positive would otherwise decode every row of the block).
pub fn decode_block_entry(bytes: &[u8], id: &str) -> Result<Option<Object>> {
    let (columns, body) = read_header(bytes)?;
    if columns.is_empty() {
        // Rows of the id alone: no delimiter after it to search for.
        return Ok(decode_block(bytes)?
            .into_iter()
            .find(|(i, _)| i == id)
            .and_then(|(_, doc)| doc));
    }
    let Some(at) = find_row(body, id) else {
        return Ok(None);
    };
    let kept = vec![true; columns.len()];
    let Some((record, _)) = first_record(body.get(at..).unwrap_or_default())? else {
        return Err(corrupt(format!("no row at byte {at}")));
    };
    let (found, doc) = decode_row(&record, &columns, &kept)?;
    if found != id {
        return Err(corrupt(format!("row {found:?} found for {id:?}")));
    }
    Ok(doc)
}

/// Where the row of `id` starts in `body` (the rows after the header), if there is one:
/// its id cell as the writer writes it (quoted only when it holds a quote, a comma or a
/// line break), then a comma, at the start of a line that is not inside a quoted cell
/// (an even number of quotes before it).
fn find_row(body: &[u8], id: &str) -> Option<usize> {
    let mut cell = Vec::with_capacity(id.len() + 4);
    if id.bytes().any(|b| matches!(b, b'"' | b',' | b'\r' | b'\n')) {
        cell.push(b'"');
        for b in id.bytes() {
            if b == b'"' {
                cell.push(b'"');
            }
            cell.push(b);
        }
        cell.push(b'"');
    } else {
        cell.extend_from_slice(id.as_bytes());
    }
    cell.push(b',');
    if body.starts_with(&cell) {
        return Some(0);
    }
    let mut pattern = Vec::with_capacity(cell.len() + 1);
    pattern.push(b'\n');
    pattern.extend_from_slice(&cell);
    let finder = memchr::memmem::Finder::new(&pattern);
    // Quotes counted up to `counted`: an odd count means inside a quoted cell.
    let (mut counted, mut quotes) = (0, 0usize);
    for at in finder.find_iter(body) {
        quotes += memchr::memchr_iter(b'"', body.get(counted..at).unwrap_or_default()).count();
        counted = at;
        if quotes % 2 == 0 {
            return Some(at + 1);
        }
    }
    None
}

/// A header's columns: name and type.
type Columns = Vec<(String, String)>;

/// The header's columns and the rows after it.
fn read_header(bytes: &[u8]) -> Result<(Columns, &[u8])> {
    let Some((header, end)) = first_record(bytes)? else {
        return Err(corrupt("no header row"));
    };
    let mut cells = header.iter();
    if cells.next() != Some("id") {
        return Err(corrupt("the header does not start with id"));
    }
    let mut columns: Columns = Vec::new();
    for cell in cells {
        let (name, ty) = cell
            .rsplit_once(':')
            .ok_or_else(|| corrupt(format!("header cell {cell:?} has no type")))?;
        if !matches!(
            ty,
            "null" | "boolean" | "integer" | "float" | "numeric" | "string" | "datetime" | "binary"
        ) {
            return Err(corrupt(format!("unknown column type {ty:?}")));
        }
        if columns.iter().any(|(n, _)| n == name) {
            return Err(corrupt(format!("column {name:?} appears twice")));
        }
        columns.push((name.to_string(), ty.to_string()));
    }
    let body = bytes
        .get(end..)
        .ok_or_else(|| corrupt("header past the end"))?;
    Ok((columns, body))
}

/// The first record of `bytes` and where the next one starts. A line without a quote
/// is split at its commas: the writer quotes every cell that holds a quote, a comma or
/// a line break, so such a line is plain cells. Other lines go to the CSV reader, whose
/// set-up (building its state machine) costs more than finding a row in a block.
fn first_record(bytes: &[u8]) -> Result<Option<(csv::StringRecord, usize)>> {
    let (line, end) = match memchr::memchr(b'\n', bytes) {
        Some(i) => (bytes.get(..i).unwrap_or_default(), i + 1),
        None => (bytes, bytes.len()),
    };
    if !line.is_empty() && memchr::memchr(b'"', line).is_none() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(corrupt)?;
        let cells: Vec<&str> = text.split(',').collect();
        return Ok(Some((csv::StringRecord::from(cells), end)));
    }
    let mut reader = rows_reader(bytes);
    let mut record = csv::StringRecord::new();
    if !reader.read_record(&mut record).map_err(corrupt)? {
        return Ok(None);
    }
    let end = usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
    Ok(Some((record, end)))
}

fn rows_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

/// One row: its id and its document of the `kept` columns.
fn decode_row(
    record: &csv::StringRecord,
    columns: &[(String, String)],
    kept: &[bool],
) -> Result<(String, Option<Object>)> {
    let mut cells = record.iter();
    let id = cells
        .next()
        .ok_or_else(|| corrupt("a row without an id"))?
        .to_string();
    if record.len() != columns.len() + 1 {
        return Err(corrupt(format!(
            "row {id:?} has {} cells, not {}",
            record.len(),
            columns.len() + 1
        )));
    }
    let width = kept.iter().filter(|k| **k).count();
    let mut body = Object::with_capacity_and_hasher(width, Default::default());
    for (((name, ty), cell), kept) in columns.iter().zip(cells).zip(kept) {
        if !kept {
            continue;
        }
        let value = decode_cell(cell, ty).ok_or_else(|| {
            corrupt(format!(
                "row {id:?}: {cell:?} is not a valid {ty} for column {name:?}"
            ))
        })?;
        body.insert(name.clone(), value);
    }
    if body.len() != width {
        return Err(corrupt(format!("row {id:?} has too few cells")));
    }
    Ok((id, Some(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::text::testing::same_object;
    use proptest::prelude::*;

    #[test]
    fn a_block_decodes_keeping_some_columns() {
        let a = Object::from_iter([
            ("x".to_string(), Value::Int(1)),
            ("y".to_string(), Value::String("s".into())),
        ]);
        let b = Object::from_iter([
            ("x".to_string(), Value::Int(2)),
            ("y".to_string(), Value::String("t".into())),
        ]);
        let csv = encode_block(&[("a", Some(&a)), ("b", Some(&b))]).unwrap();
        let kept = decode_block_keeping(&csv, Some(&["y".to_string()])).unwrap();
        let ys: Vec<(String, Vec<String>)> = kept
            .into_iter()
            .map(|(id, d)| (id, d.unwrap().keys().cloned().collect()))
            .collect();
        assert_eq!(
            ys,
            vec![
                ("a".into(), vec!["y".into()]),
                ("b".into(), vec!["y".into()])
            ]
        );
        assert_eq!(
            decode_block_keeping(&csv, None).unwrap(),
            decode_block(&csv).unwrap()
        );
    }

    fn obj(pairs: Vec<(&str, Value)>) -> Object {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn round_trip(entries: &[(&str, Option<&Object>)]) -> Vec<(String, Option<Object>)> {
        let bytes = encode_block(entries).expect("eligible");
        decode_block(&bytes).unwrap_or_else(|e| {
            panic!("{e}\n{}", String::from_utf8_lossy(&bytes));
        })
    }

    fn check(entries: &[(&str, Option<&Object>)]) {
        let back = round_trip(entries);
        assert_eq!(back.len(), entries.len());
        for ((id, body), (back_id, back_body)) in entries.iter().zip(&back) {
            assert_eq!(*id, back_id);
            let (Some(a), Some(b)) = (body, back_body) else {
                panic!("missing body");
            };
            assert!(same_object(a, b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn every_scalar_type_round_trips() {
        let a = obj(vec![
            ("b", Value::Bool(true)),
            ("i", Value::Int(i64::MIN)),
            ("f", Value::Float(199.99)),
            ("n", Value::Numeric("-1.50".into())),
            ("s", Value::String("42".into())),
            ("d", Value::DateTime(1_698_314_400_500_000)),
            ("bin", Value::Binary(vec![0, 255])),
            ("nul", Value::Null),
            ("a:b", Value::String("x, \"y\"\r\nz".into())),
        ]);
        let b = obj(vec![
            ("b", Value::Null),
            ("i", Value::Int(2134)),
            ("f", Value::Float(f64::NAN)),
            ("n", Value::Null),
            ("s", Value::String(String::new())),
            ("d", Value::DateTime(i64::MIN)),
            ("bin", Value::Binary(vec![])),
            ("nul", Value::Null),
            ("a:b", Value::String("\\n \\NN".into())),
        ]);
        let c = obj(vec![
            ("b", Value::Bool(false)),
            ("i", Value::Null),
            ("f", Value::Float(-0.0)),
            ("n", Value::Numeric("7".into())),
            ("s", Value::Null),
            ("d", Value::Null),
            ("bin", Value::Null),
            ("nul", Value::Null),
            ("a:b", Value::String(" ".into())),
        ]);
        check(&[("k1", Some(&a)), ("", Some(&b)), ("k,\"3\"\n", Some(&c))]);
        let text = String::from_utf8(encode_block(&[("k1", Some(&a))]).unwrap()).unwrap();
        assert!(
            text.starts_with(
                "id,b:boolean,i:integer,f:float,n:numeric,s:string,d:datetime,bin:binary,nul:null,a:b:string\n"
            ),
            "{text}"
        );
        assert!(text.contains(",\\N,"), "{text}");
    }

    #[test]
    fn documents_without_fields() {
        let empty = Object::default();
        check(&[("", Some(&empty)), ("a", Some(&empty))]);
        let bytes = encode_block(&[("", Some(&empty)), ("a", Some(&empty))]).unwrap();
        assert_eq!(
            decode_block_entry(&bytes, "a").unwrap(),
            Some(empty.clone())
        );
        assert_eq!(decode_block_entry(&bytes, "b").unwrap(), None);
    }

    #[test]
    fn one_entry_is_found_past_cells_that_look_like_its_row() {
        // "7" appears after a line break inside quoted cells before its own row, and
        // as a quoted id's text.
        let a = obj(vec![
            ("s", Value::String("x\n7,y".into())),
            ("n", Value::Int(1)),
        ]);
        let b = obj(vec![
            ("s", Value::String("\"\n7,\"".into())),
            ("n", Value::Int(2)),
        ]);
        let c = obj(vec![("s", Value::String("z".into())), ("n", Value::Int(3))]);
        let d = obj(vec![("s", Value::String("w".into())), ("n", Value::Null)]);
        let bytes = encode_block(&[
            ("1", Some(&a)),
            ("\"7,\n", Some(&b)),
            ("7", Some(&c)),
            ("8", Some(&d)),
        ])
        .unwrap();
        let found = |id: &str| decode_block_entry(&bytes, id).unwrap();
        assert_eq!(found("7"), Some(c));
        assert_eq!(found("\"7,\n"), Some(b));
        assert_eq!(found("1"), Some(a));
        assert_eq!(found("8"), Some(d));
        assert_eq!(found("9"), None);
        assert_eq!(found("7,"), None);
        // A row whose cells disagree with the header is corrupt, not absent.
        let bad = b"id,n:integer\n1,2\n7,x\n";
        assert!(matches!(
            decode_block_entry(bad, "7"),
            Err(Error::Corruption(_))
        ));
        let short = b"id,n:integer,m:integer\n7,1\n";
        assert!(matches!(
            decode_block_entry(short, "7"),
            Err(Error::Corruption(_))
        ));
    }

    #[test]
    fn binary_documents_follow_the_eligibility_rules() {
        let a = obj(vec![("x", Value::Int(1)), ("y", Value::String("a".into()))]);
        let b = obj(vec![("x", Value::Null), ("y", Value::String("\\N".into()))]);
        let c = obj(vec![("y", Value::String("a".into())), ("x", Value::Int(1))]);
        let d = obj(vec![("x", Value::Float(f64::NAN)), ("y", Value::Null)]);
        let bin = |o: &Object| binary::encode_object(o);
        let (ea, eb, ec, ed) = (bin(&a), bin(&b), bin(&c), bin(&d));
        let same = |entries: &[(&str, Option<&Object>)], bins: &[(&str, Option<&[u8]>)]| {
            assert_eq!(encode_block_binary(bins), encode_block(entries));
        };
        same(&[("1", Some(&a))], &[("1", Some(&ea))]);
        same(
            &[("1", Some(&a)), ("2", Some(&b))],
            &[("1", Some(&ea)), ("2", Some(&eb))],
        );
        same(
            &[("1", Some(&a)), ("2", Some(&c))],
            &[("1", Some(&ea)), ("2", Some(&ec))],
        );
        same(
            &[("1", Some(&a)), ("2", Some(&d))],
            &[("1", Some(&ea)), ("2", Some(&ed))],
        );
        same(
            &[("1", Some(&a)), ("2", None)],
            &[("1", Some(&ea)), ("2", None)],
        );
        assert!(encode_block_binary(&[("1", Some(&ea)), ("2", Some(&ed))]).is_none());
        assert!(encode_block_binary(&[("1", Some(&ea[..ea.len() - 1]))]).is_none());
        assert!(encode_block_binary(&[]).is_none());
    }

    #[test]
    fn ineligible_blocks() {
        let a = obj(vec![("x", Value::Int(1))]);
        let b = obj(vec![("x", Value::Float(1.5))]);
        let c = obj(vec![("y", Value::Int(1))]);
        let d = obj(vec![("x", Value::Int(1)), ("y", Value::Int(2))]);
        let e = obj(vec![("x", Value::Array(vec![]))]);
        let f = obj(vec![("x", Value::String("\\N".into()))]);
        let g = obj(vec![("y", Value::Int(2)), ("x", Value::Int(1))]);
        assert!(encode_block(&[]).is_none());
        assert!(encode_block(&[("a", Some(&a)), ("b", None)]).is_none());
        assert!(encode_block(&[("a", None)]).is_none());
        assert!(encode_block(&[("a", Some(&a)), ("b", Some(&b))]).is_none());
        assert!(encode_block(&[("a", Some(&a)), ("b", Some(&c))]).is_none());
        assert!(encode_block(&[("a", Some(&a)), ("b", Some(&d))]).is_none());
        assert!(encode_block(&[("a", Some(&d)), ("b", Some(&g))]).is_none());
        assert!(encode_block(&[("a", Some(&e))]).is_none());
        assert!(encode_block(&[("a", Some(&f))]).is_none());
        assert!(encode_block(&[("a", Some(&a)), ("b", Some(&a))]).is_some());
    }

    #[test]
    fn corrupt_blocks() {
        for bad in [
            &b""[..],
            b"key,x:integer\nk,1\n",
            b"id,x\nk,1\n",
            b"id,x:whatever\nk,1\n",
            b"id,x:integer,x:string\nk,1,a\n",
            b"id,x:integer\nk,one\n",
            b"id,x:integer\nk,1,2\n",
            b"id,x:integer,y:integer\nk,1\n",
            b"id,x:boolean\nk,yes\n",
            b"id,x:null\nk,1\n",
            b"id,x:datetime\nk,today\n",
            b"id,x:binary\nk,!!\n",
            b"id,x:numeric\nk,1e5\n",
            b"id,x:string\nk,\xff\n",
        ] {
            assert!(
                matches!(decode_block(bad), Err(Error::Corruption(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn arb_cell(ty: u8) -> BoxedStrategy<Value> {
        let typed: BoxedStrategy<Value> = match ty {
            0 => any::<bool>().prop_map(Value::Bool).boxed(),
            1 => any::<i64>().prop_map(Value::Int).boxed(),
            2 => any::<f64>().prop_map(Value::Float).boxed(),
            3 => "-?[0-9]{1,20}(\\.[0-9]{1,8})?"
                .prop_map(Value::Numeric)
                .boxed(),
            4 => any::<String>()
                .prop_filter("not the null marker", |s| s != "\\N")
                .prop_map(Value::String)
                .boxed(),
            5 => any::<i64>().prop_map(Value::DateTime).boxed(),
            _ => prop::collection::vec(any::<u8>(), 0..8)
                .prop_map(Value::Binary)
                .boxed(),
        };
        prop_oneof![1 => Just(Value::Null), 4 => typed].boxed()
    }

    fn arb_block() -> impl Strategy<Value = Vec<(String, Object)>> {
        (
            prop::collection::vec(("[a-z:, \"]{0,5}", 0u8..7), 0..5),
            1usize..6,
        )
            .prop_flat_map(|(columns, rows)| {
                let mut seen = std::collections::HashSet::new();
                let columns: Vec<(String, u8)> = columns
                    .into_iter()
                    .filter(|(n, _)| seen.insert(n.clone()))
                    .collect();
                let row = (
                    any::<String>(),
                    columns
                        .iter()
                        .map(|(_, ty)| arb_cell(*ty))
                        .collect::<Vec<_>>(),
                );
                let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
                prop::collection::vec(row, rows).prop_map(move |rows| {
                    rows.into_iter()
                        .map(|(id, cells)| (id, names.iter().cloned().zip(cells).collect()))
                        .collect()
                })
            })
    }

    proptest! {
        #[test]
        fn csv_round_trip_prop(block in arb_block()) {
            let entries: Vec<(&str, Option<&Object>)> =
                block.iter().map(|(id, body)| (id.as_str(), Some(body))).collect();
            let bytes = encode_block(&entries);
            prop_assert!(bytes.is_some());
            let back = decode_block(&bytes.unwrap_or_default());
            prop_assert!(back.is_ok(), "{:?}", back.err());
            let back = back.unwrap_or_default();
            prop_assert_eq!(back.len(), block.len());
            for ((id, body), (back_id, back_body)) in block.iter().zip(&back) {
                prop_assert_eq!(id, back_id);
                prop_assert!(back_body.as_ref().is_some_and(|b| same_object(body, b)));
            }
        }

        #[test]
        fn binary_documents_encode_to_the_same_block(block in arb_block(), nested in any::<bool>()) {
            let mut block = block;
            if nested && let Some((_, body)) = block.last_mut() {
                body.insert("n".into(), Value::Array(vec![]));
            }
            let encoded: Vec<Vec<u8>> =
                block.iter().map(|(_, body)| binary::encode_object(body)).collect();
            let entries: Vec<(&str, Option<&Object>)> =
                block.iter().map(|(id, body)| (id.as_str(), Some(body))).collect();
            let binaries: Vec<(&str, Option<&[u8]>)> = block
                .iter()
                .zip(&encoded)
                .map(|((id, _), doc)| (id.as_str(), Some(doc.as_slice())))
                .collect();
            prop_assert_eq!(encode_block_binary(&binaries), encode_block(&entries));
        }

        #[test]
        fn one_entry_is_the_entry_of_the_whole_block(block in arb_block(), probe in any::<String>()) {
            check_entries(&block, &probe)?;
        }

        /// Ids and strings from a few bytes, so that ids repeat inside quoted cells and
        /// after line breaks in them.
        #[test]
        fn one_entry_among_look_alike_cells(
            rows in prop::collection::vec(
                ("[ab,\"\r\n]{0,3}", "[ab,\"\r\n]{0,7}", prop::option::of(-3i64..3)),
                1..8,
            ),
            probe in "[ab,\"\r\n]{0,3}",
        ) {
            let block: Vec<(String, Object)> = rows
                .into_iter()
                .map(|(id, s, n)| {
                    let n = n.map_or(Value::Null, Value::Int);
                    (id, obj(vec![("s", Value::String(s)), ("n", n)]))
                })
                .filter(|(_, o)| o.get("s") != Some(&Value::String(NULL_CELL.into())))
                .collect();
            check_entries(&block, &probe)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            id in "[a-z0-9,\"]{0,3}",
        ) {
            let _ = decode_block(&bytes);
            let _ = decode_block_entry(&bytes, &id);
        }
    }

    /// [`decode_block_entry`] finds what the whole block's decoding has under each id
    /// (the first row of a repeated id) and `probe`, and nothing else.
    fn check_entries(block: &[(String, Object)], probe: &str) -> Result<(), TestCaseError> {
        let entries: Vec<(&str, Option<&Object>)> = block
            .iter()
            .map(|(id, body)| (id.as_str(), Some(body)))
            .collect();
        let Some(bytes) = encode_block(&entries) else {
            return Ok(());
        };
        let all = decode_block(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for id in block.iter().map(|(id, _)| id.as_str()).chain([probe]) {
            let whole = all
                .iter()
                .find(|(i, _)| i == id)
                .and_then(|(_, d)| d.clone());
            let one =
                decode_block_entry(&bytes, id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                whole.is_some(),
                one.is_some(),
                "{:?} in {:?}",
                id,
                String::from_utf8_lossy(&bytes)
            );
            if let (Some(a), Some(b)) = (&whole, &one) {
                prop_assert!(same_object(a, b), "{:?}: {:?} vs {:?}", id, a, b);
            }
        }
        Ok(())
    }
}
