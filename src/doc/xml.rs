//! The XML codec: documents in the seed's shape for REST clients, and the XML blocks of
//! hierarchical segment data.
//!
//! # Mapping
//!
//! A document is `<document id="...">` with one child element per field. An element
//! holding text is a scalar typed by [`text::infer_scalar`]; an element with child
//! elements is an object, or an array when it has two or more children of one name and
//! no attributes (`<features><feature>a</feature><feature>b</feature></features>`).
//! Attributes are fields too (typed the same way); an element with attributes and text
//! keeps its text under `#text`. `<a/>` is null. Repeated siblings of one name inside an
//! object collect into one array at the first one's position.
//!
//! # Writing without loss
//!
//! The writer marks, with attributes in the namespace `urn:tissdb` (prefix `t`, declared
//! on the root only when used), whatever the reading rules above would get wrong:
//!
//! - `t:type="string|integer|float|numeric|datetime|binary|array|object"` when a value's
//!   text would not infer back to it (`"42"` as a string, `1e300`, NaN, numerics,
//!   binary), for empty strings, and for arrays of fewer than two items and empty objects;
//! - `t:enc="base64"` for strings holding characters XML 1.0 cannot carry (U+0001…);
//! - `<t:field t:name="hello world">` for a field name that is not an XML name
//!   (`t:name64` with Base64 when the name itself cannot be an attribute value);
//! - `t:id64` instead of `id` for a document id XML cannot carry.
//!
//! Array items are elements named by the singular of the field (`features` -> `feature`),
//! else `item`. Inside objects every field is an element; only the root's `id` is an
//! attribute.
//!
//! # Safety
//!
//! Reading refuses any `<!DOCTYPE` and every entity but the five predefined ones and
//! character references, so nothing is ever resolved or fetched. The reader is a loop
//! over events with an explicit stack of open elements, checked against the depth limit
//! as each element opens; the writer walks values with an explicit stack too. Neither
//! recurses.
//!
//! # Storage blocks
//!
//! A block is `<block xmlns:t="urn:tissdb">` holding `<document id>` and `<tombstone
//! id/>` entries ([`encode_block`]). A flush writes one from the memtable's binary
//! records without decoding them ([`encode_block_records`]); compaction splits a block
//! into its entries' elements ([`split_block`]) and copies them into the blocks it
//! writes ([`encode_block_parts`]), since no element depends on anything but the
//! block's root.

use std::borrow::Cow;
use std::collections::HashSet;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use indexmap::IndexMap;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::binary::{Reader as RecordReader, Token};
use super::text;
use super::{Limits, Object, Value};
use crate::error::{Error, Result, SqlState};

/// The namespace of TissDB's reserved attributes and elements.
const NS_URI: &str = "urn:tissdb";
/// The deepest document nesting accepted in a stored block.
const BLOCK_MAX_DEPTH: usize = 512;
const DTD_MESSAGE: &str = "DTDs are not allowed (<!DOCTYPE ...>)";
const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

// ------------------------------------------------------------------------------------
// Names and characters
// ------------------------------------------------------------------------------------

/// Characters XML 1.0 documents can hold.
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Whether every character of `s` is one XML 1.0 can hold ([`is_xml_char`]), checked
/// by bytes: the only refused characters are ASCII controls and U+FFFE and U+FFFF,
/// whose encodings start with the byte 0xEF.
fn xml_safe(s: &str) -> bool {
    let controls = s
        .bytes()
        .all(|b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'));
    controls && (!s.as_bytes().contains(&0xEF) || s.chars().all(is_xml_char))
}

/// XML 1.0 (5th edition) `NameStartChar`, without `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}'
        | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}'
        | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}'
        | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 (5th edition) `NameChar`, without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// True if `name` can be written as an element name as it is: an XML name without a
/// colon, not starting with the reserved `xml`.
fn is_plain_name(name: &str) -> bool {
    if name.is_ascii() {
        // The same rule over bytes (the usual field name).
        let bytes = name.as_bytes();
        let starts_well = bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        let rest = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        let reserved = name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"));
        return starts_well && rest && !reserved;
    }
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(is_name_start);
    let reserved = name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"));
    starts_well && chars.all(is_name_char) && !reserved
}

/// The element name of an array's items: the field name without its plural `s`, else
/// `item`.
fn singular(name: &str) -> String {
    if is_plain_name(name)
        && name.len() > 1
        && let Some(stem) = name.strip_suffix('s')
        && is_plain_name(stem)
    {
        return stem.to_string();
    }
    "item".to_string()
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_blank(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

/// Appends `s` with each byte that `escape` names replaced by its reference; the
/// bytes escaped are ASCII, so the runs between them are whole characters.
fn push_escaped(out: &mut String, s: &str, escape: fn(u8) -> Option<&'static str>) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if let Some(reference) = escape(b) {
            out.push_str(s.get(start..i).unwrap_or_default());
            out.push_str(reference);
            start = i + 1;
        }
    }
    out.push_str(s.get(start..).unwrap_or_default());
}

fn push_text(out: &mut String, s: &str) {
    push_escaped(out, s, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'\r' => Some("&#13;"),
        _ => None,
    });
}

fn push_attr_value(out: &mut String, s: &str) {
    push_escaped(out, s, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'"' => Some("&quot;"),
        b'\t' => Some("&#9;"),
        b'\n' => Some("&#10;"),
        b'\r' => Some("&#13;"),
        _ => None,
    });
}

// ------------------------------------------------------------------------------------
// Writing
// ------------------------------------------------------------------------------------

/// How a scalar is written: its `t:type` marker if one is needed, whether its text is
/// Base64 (`t:enc`), and the text.
fn scalar_form(v: Token<'_>) -> (Option<&'static str>, bool, Cow<'_, str>) {
    match v {
        Token::Null => (None, false, Cow::Borrowed("")),
        Token::Bool(b) => (None, false, Cow::Borrowed(if b { "true" } else { "false" })),
        Token::Int(i) => (None, false, Cow::Owned(i.to_string())),
        Token::Float(f) => {
            let t = text::format_float(f);
            let plain = text::reads_back_as_float(f, &t);
            (
                if plain { None } else { Some("float") },
                false,
                Cow::Owned(t),
            )
        }
        Token::Numeric(s) => (Some("numeric"), false, Cow::Borrowed(s)),
        Token::String(s) => {
            if !xml_safe(s) {
                (Some("string"), true, Cow::Owned(BASE64.encode(s)))
            } else if s.is_empty() || !text::infers_as_string(s) {
                (Some("string"), false, Cow::Borrowed(s))
            } else {
                (None, false, Cow::Borrowed(s))
            }
        }
        Token::DateTime(m) => {
            let t = text::format_datetime(m);
            let plain = text::infer_scalar(&t) == Value::DateTime(m);
            (
                if plain { None } else { Some("datetime") },
                false,
                Cow::Owned(t),
            )
        }
        Token::Binary(b) => (Some("binary"), false, Cow::Owned(BASE64.encode(b))),
        // Containers never reach here; write them as null rather than panic.
        Token::Array(_) | Token::Object(_) => (None, false, Cow::Borrowed("")),
    }
}

/// The name an element is written under.
enum Tag<'a> {
    /// An object field: its name, which may need `<t:field>`.
    Field(&'a str),
    /// An array item: always a plain name, shared by the items of one array.
    Item(Rc<str>),
}

/// The name of an open element, for its end tag.
enum Elem<'a> {
    Name(&'a str),
    Item(Rc<str>),
    /// `t:field`, for a field name (given) that is not an XML name.
    Reserved(&'a str),
}

impl Elem<'_> {
    fn as_str(&self) -> &str {
        match self {
            Elem::Name(name) => name,
            Elem::Item(name) => name,
            Elem::Reserved(_) => "t:field",
        }
    }

    /// The name an array's items are named after: the field's (or item's) own name.
    fn logical(&self) -> &str {
        match self {
            Elem::Name(name) | Elem::Reserved(name) => name,
            Elem::Item(name) => name,
        }
    }
}

enum Work<'a> {
    Open {
        tag: Tag<'a>,
        value: &'a Value,
        level: usize,
    },
    Close {
        elem: Elem<'a>,
        level: usize,
    },
}

/// Builds XML text. `pretty` indents nested elements (whitespace the reader drops).
struct XmlWriter {
    out: String,
    ns_used: bool,
    pretty: bool,
}

impl XmlWriter {
    fn new(pretty: bool) -> Self {
        XmlWriter {
            out: String::new(),
            ns_used: false,
            pretty,
        }
    }

    fn newline(&mut self, level: usize) {
        if self.pretty {
            self.out.push('\n');
            for _ in 0..level {
                self.out.push_str("  ");
            }
        }
    }

    fn reserved_attr(&mut self, name: &str, value: &str) {
        self.ns_used = true;
        self.out.push_str(" t:");
        self.out.push_str(name);
        self.out.push_str("=\"");
        push_attr_value(&mut self.out, value);
        self.out.push('"');
    }

    /// Writes `<tag id="..."` (or `t:id64` for an id XML cannot carry).
    fn open_entry(&mut self, tag: &str, id: &str) {
        self.out.push('<');
        self.out.push_str(tag);
        if xml_safe(id) {
            self.out.push_str(" id=\"");
            push_attr_value(&mut self.out, id);
            self.out.push('"');
        } else {
            self.reserved_attr("id64", &BASE64.encode(id));
        }
    }

    /// Writes `<document id="...">fields</document>` at `level`.
    fn document<'a>(&mut self, id: &str, fields: Vec<(&'a str, &'a Value)>, level: usize) {
        self.open_entry("document", id);
        if fields.is_empty() {
            self.out.push_str("/>");
            return;
        }
        self.out.push('>');
        self.fields(fields, level + 1);
        self.newline(level);
        self.out.push_str("</document>");
    }

    /// Writes object fields as sibling elements at `level`, walking nested values with
    /// an explicit stack.
    fn fields<'a>(&mut self, fields: Vec<(&'a str, &'a Value)>, level: usize) {
        let mut stack: Vec<Work<'a>> = fields
            .into_iter()
            .rev()
            .map(|(name, value)| Work::Open {
                tag: Tag::Field(name),
                value,
                level,
            })
            .collect();
        while let Some(work) = stack.pop() {
            match work {
                Work::Close { elem, level } => {
                    self.newline(level);
                    self.out.push_str("</");
                    self.out.push_str(elem.as_str());
                    self.out.push('>');
                }
                Work::Open { tag, value, level } => {
                    self.newline(level);
                    let elem = match &tag {
                        Tag::Field(name) => self.open_field(name),
                        Tag::Item(name) => {
                            self.out.push('<');
                            self.out.push_str(name);
                            Elem::Item(name.clone())
                        }
                    };
                    self.open_value(elem, value, level, &mut stack);
                }
            }
        }
    }

    /// Writes the start of a field's element, `<name` or `<t:field t:name="..."`.
    fn open_field<'a>(&mut self, name: &'a str) -> Elem<'a> {
        if is_plain_name(name) {
            self.out.push('<');
            self.out.push_str(name);
            return Elem::Name(name);
        }
        self.out.push_str("<t:field");
        if xml_safe(name) {
            self.reserved_attr("name", name);
        } else {
            self.reserved_attr("name64", &BASE64.encode(name));
        }
        Elem::Reserved(name)
    }

    /// Writes the rest of a scalar's element, whose start tag `<elem` (plus any name
    /// attribute) is written: its markers, then its text and end tag, or `/>`.
    fn scalar(&mut self, elem: &Elem<'_>, value: Token<'_>) {
        if let Token::Int(i) = value {
            // Always plain (`scalar_form` gives no marker), and written in place.
            self.out.push('>');
            self.out.push_str(itoa::Buffer::new().format(i));
        } else {
            let (ty, base64, body) = scalar_form(value);
            if let Some(ty) = ty {
                self.reserved_attr("type", ty);
            }
            if base64 {
                self.reserved_attr("enc", "base64");
            }
            if body.is_empty() {
                self.out.push_str("/>");
                return;
            }
            self.out.push('>');
            push_text(&mut self.out, &body);
        }
        self.out.push_str("</");
        self.out.push_str(elem.as_str());
        self.out.push('>');
    }

    /// Writes the attributes and content of an element whose start tag `<elem` (plus
    /// any name attribute) is already written; containers push their children.
    fn open_value<'a>(
        &mut self,
        elem: Elem<'a>,
        value: &'a Value,
        level: usize,
        stack: &mut Vec<Work<'a>>,
    ) {
        match value {
            Value::Array(items) => {
                if items.len() < 2 {
                    self.reserved_attr("type", "array");
                }
                if items.is_empty() {
                    self.out.push_str("/>");
                    return;
                }
                self.out.push('>');
                let item: Rc<str> = singular(elem.logical()).into();
                stack.push(Work::Close { elem, level });
                for v in items.iter().rev() {
                    stack.push(Work::Open {
                        tag: Tag::Item(item.clone()),
                        value: v,
                        level: level + 1,
                    });
                }
            }
            Value::Object(fields) => {
                if fields.is_empty() {
                    self.reserved_attr("type", "object");
                    self.out.push_str("/>");
                    return;
                }
                self.out.push('>');
                stack.push(Work::Close { elem, level });
                for (k, v) in fields.iter().rev() {
                    stack.push(Work::Open {
                        tag: Tag::Field(k),
                        value: v,
                        level: level + 1,
                    });
                }
            }
            scalar => self.scalar(&elem, Token::scalar(scalar)),
        }
    }

    /// Writes `<document id="...">` for a document in its stored binary form (see
    /// [`crate::doc::binary::encode_object`]), read in place: what [`XmlWriter::document`] writes
    /// for the decoded document, every field included.
    fn document_record(&mut self, id: &str, record: &[u8]) -> Result<()> {
        let mut reader = RecordReader::new(record);
        let count = reader.varint()?;
        self.open_entry("document", id);
        if count == 0 {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
            self.record_fields(&mut reader, count)?;
            self.out.push_str("</document>");
        }
        if !reader.is_empty() {
            return Err(Error::Corruption(
                "binary value: trailing bytes after object".into(),
            ));
        }
        Ok(())
    }

    /// Writes `count` fields read from `reader` as [`XmlWriter::fields`] writes an
    /// object's, with an explicit stack of the open containers.
    fn record_fields<'a>(&mut self, reader: &mut RecordReader<'a>, count: u64) -> Result<()> {
        struct Open<'a> {
            /// None for the document itself (its end tag is the caller's).
            elem: Option<Elem<'a>>,
            left: u64,
            /// The name of an array's items; None for an object's fields.
            item: Option<Rc<str>>,
        }
        let mut stack = vec![Open {
            elem: None,
            left: count,
            item: None,
        }];
        while let Some(top) = stack.last_mut() {
            if top.left == 0 {
                if let Some(elem) = stack.pop().and_then(|o| o.elem) {
                    self.out.push_str("</");
                    self.out.push_str(elem.as_str());
                    self.out.push('>');
                }
                continue;
            }
            top.left -= 1;
            let elem = match &top.item {
                None => self.open_field(reader.name()?),
                Some(item) => {
                    self.out.push('<');
                    self.out.push_str(item);
                    Elem::Item(item.clone())
                }
            };
            match reader.token()? {
                Token::Array(n) => {
                    if n < 2 {
                        self.reserved_attr("type", "array");
                    }
                    if n == 0 {
                        self.out.push_str("/>");
                        continue;
                    }
                    self.out.push('>');
                    let item: Rc<str> = singular(elem.logical()).into();
                    stack.push(Open {
                        elem: Some(elem),
                        left: n,
                        item: Some(item),
                    });
                }
                Token::Object(n) => {
                    if n == 0 {
                        self.reserved_attr("type", "object");
                        self.out.push_str("/>");
                        continue;
                    }
                    self.out.push('>');
                    stack.push(Open {
                        elem: Some(elem),
                        left: n,
                        item: None,
                    });
                }
                scalar => self.scalar(&elem, scalar),
            }
        }
        Ok(())
    }
}

fn ns_decl() -> String {
    format!(" xmlns:t=\"{NS_URI}\"")
}

/// The fields of a document body as written: all but a field named `id`.
fn body_fields(body: &Object) -> Vec<(&str, &Value)> {
    body.iter()
        .filter(|(k, _)| k.as_str() != "id")
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

/// A document for a REST answer: the XML declaration, then `<document id="…">` holding
/// the body's fields (a body field named `id` is left out; the id is the attribute).
pub fn write_document(id: &str, body: &Object) -> String {
    let mut w = XmlWriter::new(true);
    w.out.push_str(XML_DECL);
    let root_name_end = w.out.len() + "<document".len();
    w.document(id, body_fields(body), 0);
    if w.ns_used {
        w.out.insert_str(root_name_end, &ns_decl());
    }
    w.out.push('\n');
    w.out
}

/// Documents for a list answer: root `<documents>` holding one `<document>` each.
pub fn write_documents(docs: &[(String, Object)]) -> String {
    let mut w = XmlWriter::new(true);
    w.out.push_str(XML_DECL);
    let root_name_end = w.out.len() + "<documents".len();
    if docs.is_empty() {
        w.out.push_str("<documents/>\n");
        return w.out;
    }
    w.out.push_str("<documents>");
    for (id, body) in docs {
        w.newline(1);
        w.document(id, body_fields(body), 1);
    }
    w.newline(0);
    w.out.push_str("</documents>\n");
    if w.ns_used {
        w.out.insert_str(root_name_end, &ns_decl());
    }
    w.out
}

/// Query result rows in the shape of a document list: root `<documents>` holding one
/// `<document>` per row, without an `id` attribute (a column named `id` is an element,
/// so reading the answer back as an import keeps it as the id).
pub fn write_rows(rows: &[Object]) -> String {
    let mut w = XmlWriter::new(true);
    w.out.push_str(XML_DECL);
    let root_name_end = w.out.len() + "<documents".len();
    if rows.is_empty() {
        w.out.push_str("<documents/>\n");
        return w.out;
    }
    w.out.push_str("<documents>");
    for row in rows {
        w.newline(1);
        w.out.push_str("<document");
        if row.is_empty() {
            w.out.push_str("/>");
            continue;
        }
        w.out.push('>');
        w.fields(row.iter().map(|(k, v)| (k.as_str(), v)).collect(), 2);
        w.newline(1);
        w.out.push_str("</document>");
    }
    w.newline(0);
    w.out.push_str("</documents>\n");
    if w.ns_used {
        w.out.insert_str(root_name_end, &ns_decl());
    }
    w.out
}

/// How every storage block starts: the namespace of the reserved attributes is declared
/// here and nowhere inside, so a block's `<document>` elements mean the same in any
/// block (see [`split_block`]).
const BLOCK_OPEN: &str = "<block xmlns:t=\"urn:tissdb\">";

/// A storage block: `<block xmlns:t="urn:tissdb">` holding, in order, `<document id>`
/// for each document (every body field, `id` included, is an element) and
/// `<tombstone id/>` for each deleted key.
pub fn encode_block(entries: &[(&str, Option<&Object>)]) -> String {
    let parts: Vec<(&str, BlockPart<'_>)> = entries
        .iter()
        .map(|(id, body)| (*id, body.map_or(BlockPart::Tombstone, BlockPart::Document)))
        .collect();
    encode_block_parts(&parts)
}

/// One entry of a storage block for [`encode_block_parts`].
#[derive(Clone, Copy, Debug)]
pub enum BlockPart<'a> {
    /// A document, written from its fields.
    Document(&'a Object),
    /// A document's `<document>` element as [`split_block`] found it in another block,
    /// copied as it is.
    Written(&'a str),
    /// A deleted key.
    Tombstone,
}

/// [`encode_block`] from entries of which some may be elements of other blocks.
pub fn encode_block_parts(entries: &[(&str, BlockPart<'_>)]) -> String {
    let mut w = XmlWriter::new(false);
    w.out.push_str(BLOCK_OPEN);
    for (id, part) in entries {
        match part {
            BlockPart::Document(body) => {
                let fields = body.iter().map(|(k, v)| (k.as_str(), v)).collect();
                w.document(id, fields, 0);
            }
            BlockPart::Written(element) => w.out.push_str(element),
            BlockPart::Tombstone => {
                w.open_entry("tombstone", id);
                w.out.push_str("/>");
            }
        }
    }
    w.out.push_str("</block>");
    w.out
}

/// [`encode_block`] for documents in their stored binary form (see
/// [`crate::doc::binary::encode_object`]; None for a tombstone), read in place: the same text,
/// without decoding the documents (a flush's XML blocks).
pub fn encode_block_records(entries: &[(&str, Option<&[u8]>)]) -> Result<String> {
    let mut w = XmlWriter::new(false);
    w.out.push_str(BLOCK_OPEN);
    for (id, record) in entries {
        match record {
            Some(record) => w.document_record(id, record)?,
            None => {
                w.open_entry("tombstone", id);
                w.out.push_str("/>");
            }
        }
    }
    w.out.push_str("</block>");
    Ok(w.out)
}

// ------------------------------------------------------------------------------------
// Reading
// ------------------------------------------------------------------------------------

/// Why reading failed, before it becomes an [`Error`] fitting the caller.
enum Fail {
    Invalid(String),
    Limit(String),
}

type PResult<T> = std::result::Result<T, Fail>;

fn invalid<T>(message: impl Into<String>) -> PResult<T> {
    Err(Fail::Invalid(message.into()))
}

/// What the root element may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Any root element is the document.
    Document,
    /// `<documents>` holding `<document>` elements, or a single document root.
    Documents,
    /// `<block>` holding `<document>` and `<tombstone>` elements.
    Block,
}

/// The role of an open element.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `<documents>` or `<block>`.
    Wrapper,
    Document,
    Tombstone,
    Field,
}

/// An open element.
struct Frame {
    kind: Kind,
    /// The element name as written, for messages.
    qname: String,
    /// The field name this element stands for (for [`Kind::Field`]).
    field: String,
    /// Ordinary attributes: name and value.
    attrs: Vec<(String, String)>,
    ttype: Option<String>,
    tenc: Option<String>,
    /// The document id (`id` or `t:id64`), for documents and tombstones.
    id: Option<String>,
    /// Finished child elements: field name, value, nesting depth of the value.
    children: Vec<(String, Value, usize)>,
    text: String,
    /// Length of the namespace scope before this element's declarations.
    ns_mark: usize,
}

/// A document read from the input: its id, and its body (`None` for a tombstone).
struct DocOut {
    id: Option<String>,
    body: Option<Object>,
}

struct Parser {
    mode: Mode,
    /// Deepest document nesting accepted.
    max_depth: usize,
    /// Deepest element nesting accepted (documents plus their wrapper and leaves).
    max_elements: usize,
    stack: Vec<Frame>,
    /// Prefixes in scope: the prefix, and whether it is bound to `urn:tissdb`.
    ns: Vec<(String, bool)>,
    root_seen: bool,
    docs: Vec<DocOut>,
    /// In a block: the top-level fields to keep (None: all); the others with plain
    /// names are stepped over without being decoded (a `t:field` is kept: callers
    /// drop what they did not ask for).
    keep: Option<Vec<String>>,
}

fn depth_message(max_depth: usize) -> String {
    format!("document nesting exceeds the limit of {max_depth} levels (max_depth)")
}

fn decode_base64_text(what: &str, text: &str) -> PResult<String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|_| Fail::Invalid(format!("{what} is not valid Base64")))?;
    String::from_utf8(bytes).map_err(|_| Fail::Invalid(format!("{what} is not valid UTF-8")))
}

impl Parser {
    fn new(mode: Mode, max_depth: usize) -> Self {
        let wrapper = usize::from(mode != Mode::Document);
        Parser {
            mode,
            max_depth,
            max_elements: max_depth.saturating_add(1 + wrapper),
            stack: Vec::new(),
            ns: Vec::new(),
            root_seen: false,
            docs: Vec::new(),
            keep: None,
        }
    }

    /// Whether the element `e` opening now is a document field a block read skips.
    fn skips(&self, e: &BytesStart<'_>) -> bool {
        let Some(keep) = &self.keep else {
            return false;
        };
        let name = e.name().0;
        self.mode == Mode::Block
            && matches!(self.stack.last(), Some(f) if f.kind == Kind::Document)
            && !name.contains(':')
            && !keep.iter().any(|k| k == name)
    }

    fn is_tissdb_prefix(&self, prefix: &str) -> bool {
        self.ns
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .is_some_and(|(_, t)| *t)
    }

    /// Splits `qname` into a reserved local name, if its prefix is bound to `urn:tissdb`.
    fn reserved_local<'n>(&self, qname: &'n str) -> Option<&'n str> {
        let (prefix, local) = qname.split_once(':')?;
        self.is_tissdb_prefix(prefix).then_some(local)
    }

    fn run(&mut self, input: &str) -> PResult<()> {
        let mut reader = Reader::from_str(input);
        loop {
            let event = reader.read_event().map_err(|e| {
                if input.contains("<!DOCTYPE") {
                    Fail::Invalid(DTD_MESSAGE.to_string())
                } else {
                    Fail::Invalid(format!(
                        "malformed XML at byte {}: {e}",
                        reader.error_position()
                    ))
                }
            })?;
            match event {
                Event::Start(e) if self.skips(&e) => {
                    reader.read_to_end(e.name()).map_err(|err| {
                        Fail::Invalid(format!(
                            "malformed XML at byte {}: {err}",
                            reader.error_position()
                        ))
                    })?;
                }
                Event::Empty(e) if self.skips(&e) => {}
                Event::Start(e) => self.start(&e)?,
                Event::Empty(e) => {
                    self.start(&e)?;
                    self.end()?;
                }
                Event::End(_) => self.end()?,
                Event::Text(t) => self.text(&t.xml10_content())?,
                Event::CData(t) => self.text(&t.xml10_content())?,
                Event::GeneralRef(r) => {
                    let resolved: Cow<'_, str> = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => Cow::Owned(c.to_string()),
                            _ => return invalid(format!("invalid character reference &{};", &*r)),
                        }
                    } else {
                        match &*r {
                            "lt" => Cow::Borrowed("<"),
                            "gt" => Cow::Borrowed(">"),
                            "amp" => Cow::Borrowed("&"),
                            "apos" => Cow::Borrowed("'"),
                            "quot" => Cow::Borrowed("\""),
                            other => {
                                return invalid(format!(
                                    "unknown entity &{other}; (only &lt; &gt; &amp; &apos; &quot; \
                                     and character references are allowed)"
                                ));
                            }
                        }
                    };
                    self.text(&resolved)?;
                }
                Event::DocType(_) => {
                    return invalid(DTD_MESSAGE);
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            return invalid(format!(
                "unexpected end of input: <{}> is not closed",
                open.qname
            ));
        }
        if !self.root_seen {
            return invalid("no root element");
        }
        Ok(())
    }

    fn text(&mut self, content: &str) -> PResult<()> {
        match self.stack.last_mut() {
            Some(frame) if matches!(frame.kind, Kind::Document | Kind::Field) => {
                frame.text.push_str(content);
                Ok(())
            }
            _ if is_blank(content) => Ok(()),
            None => invalid("text outside the root element"),
            Some(frame) => invalid(format!("unexpected text inside <{}>", frame.qname)),
        }
    }

    fn start(&mut self, e: &BytesStart<'_>) -> PResult<()> {
        if self.stack.len() >= self.max_elements {
            return Err(Fail::Limit(depth_message(self.max_depth)));
        }
        let qname = e.name().0.to_string();
        let kind = match self.stack.last().map(|f| f.kind) {
            None => {
                if self.root_seen {
                    return invalid(format!("a second root element <{qname}>"));
                }
                self.root_seen = true;
                match self.mode {
                    Mode::Document => Kind::Document,
                    Mode::Documents if qname == "documents" => Kind::Wrapper,
                    Mode::Documents => Kind::Document,
                    Mode::Block if qname == "block" => Kind::Wrapper,
                    Mode::Block => return invalid(format!("expected <block>, found <{qname}>")),
                }
            }
            Some(Kind::Wrapper) => match (self.mode, qname.as_str()) {
                (_, "document") => Kind::Document,
                (Mode::Block, "tombstone") => Kind::Tombstone,
                _ => return invalid(format!("expected <document>, found <{qname}>")),
            },
            Some(Kind::Tombstone) => return invalid("a <tombstone> must be empty"),
            Some(Kind::Document | Kind::Field) => Kind::Field,
        };

        // Attributes: namespace declarations first, then reserved and ordinary ones.
        let mut raw: Vec<(String, String)> = Vec::new();
        for attr in e.attributes() {
            let attr =
                attr.map_err(|err| Fail::Invalid(format!("bad attribute in <{qname}>: {err}")))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| Fail::Invalid(format!("bad attribute in <{qname}>: {err}")))?;
            raw.push((attr.key.0.to_string(), value.into_owned()));
        }
        let ns_mark = self.ns.len();
        for (key, value) in &raw {
            if let Some(prefix) = key.strip_prefix("xmlns:") {
                self.ns.push((prefix.to_string(), value == NS_URI));
            }
        }
        let mut frame = Frame {
            kind,
            field: String::new(),
            attrs: Vec::new(),
            ttype: None,
            tenc: None,
            id: None,
            children: Vec::new(),
            text: String::new(),
            ns_mark,
            qname,
        };
        let mut name = None;
        let mut name64 = None;
        let mut id64 = None;
        for (key, value) in raw {
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            match self.reserved_local(&key) {
                Some("type") => frame.ttype = Some(value),
                Some("enc") => frame.tenc = Some(value),
                Some("name") => name = Some(value),
                Some("name64") => name64 = Some(value),
                Some("id64") => id64 = Some(value),
                Some(other) => {
                    return invalid(format!("unknown attribute t:{other} in <{}>", frame.qname));
                }
                None => frame.attrs.push((key, value)),
            }
        }

        match kind {
            Kind::Document | Kind::Tombstone => {
                let plain = frame
                    .attrs
                    .iter()
                    .position(|(k, _)| k == "id")
                    .map(|i| frame.attrs.remove(i).1);
                frame.id = match (plain, id64) {
                    (Some(_), Some(_)) => return invalid("both id and t:id64 are given"),
                    (Some(id), None) => Some(id),
                    (None, Some(b64)) => Some(decode_base64_text("t:id64", &b64)?),
                    (None, None) => None,
                };
            }
            Kind::Field => {
                frame.field = match self.reserved_local(&frame.qname) {
                    Some("field") => match (name, name64) {
                        (Some(n), None) => n,
                        (None, Some(b64)) => decode_base64_text("t:name64", &b64)?,
                        _ => {
                            return invalid(format!(
                                "<{}> needs exactly one of t:name and t:name64",
                                frame.qname
                            ));
                        }
                    },
                    Some(other) => return invalid(format!("unknown element t:{other}")),
                    None => frame.qname.clone(),
                };
            }
            Kind::Wrapper => {}
        }
        self.stack.push(frame);
        Ok(())
    }

    fn end(&mut self) -> PResult<()> {
        let Some(frame) = self.stack.pop() else {
            return invalid("closing tag without an open element");
        };
        self.ns.truncate(frame.ns_mark);
        match frame.kind {
            Kind::Wrapper => Ok(()),
            Kind::Tombstone => {
                if frame.id.is_none() {
                    return invalid("a <tombstone> needs an id");
                }
                self.docs.push(DocOut {
                    id: frame.id,
                    body: None,
                });
                Ok(())
            }
            Kind::Document => {
                if !is_blank(&frame.text) {
                    return invalid(format!("unexpected text inside <{}>", frame.qname));
                }
                if frame.ttype.is_some() || frame.tenc.is_some() {
                    return invalid("t:type and t:enc are not allowed on a document");
                }
                let (body, depth) = group(frame.attrs, frame.children);
                if depth > self.max_depth {
                    return Err(Fail::Limit(depth_message(self.max_depth)));
                }
                self.docs.push(DocOut {
                    id: frame.id,
                    body: Some(body),
                });
                Ok(())
            }
            Kind::Field => {
                let field = frame.field.clone();
                let (value, depth) = element_value(frame)?;
                match self.stack.last_mut() {
                    Some(parent) => {
                        parent.children.push((field, value, depth));
                        Ok(())
                    }
                    None => invalid("a field outside a document"),
                }
            }
        }
    }
}

/// An object from attributes (typed by inference) and child elements; repeated names
/// collect into one array at the first one's position. Returns the object and its depth.
fn group(attrs: Vec<(String, String)>, children: Vec<(String, Value, usize)>) -> (Object, usize) {
    let mut fields: IndexMap<String, (Value, usize)> = IndexMap::new();
    let mut collected: HashSet<String> = HashSet::new();
    let attrs = attrs
        .into_iter()
        .map(|(k, v)| (k, text::infer_scalar(&v), 0));
    for (name, value, depth) in attrs.chain(children) {
        match fields.get_mut(&name) {
            None => {
                fields.insert(name, (value, depth));
            }
            Some((existing, existing_depth)) => {
                if collected.contains(&name) {
                    if let Value::Array(items) = existing {
                        items.push(value);
                    }
                    *existing_depth = (*existing_depth).max(depth + 1);
                } else {
                    let first = std::mem::replace(existing, Value::Null);
                    *existing = Value::Array(vec![first, value]);
                    *existing_depth = 1 + (*existing_depth).max(depth);
                    collected.insert(name);
                }
            }
        }
    }
    let depth = 1 + fields.values().map(|(_, d)| *d).max().unwrap_or(0);
    let object = fields.into_iter().map(|(k, (v, _))| (k, v)).collect();
    (object, depth)
}

/// The value of a finished field element, and its nesting depth.
fn element_value(frame: Frame) -> PResult<(Value, usize)> {
    let Frame {
        qname,
        attrs,
        ttype,
        tenc,
        children,
        text,
        ..
    } = frame;
    if tenc.is_some() && (ttype.as_deref() != Some("string") || tenc.as_deref() != Some("base64")) {
        return invalid(format!(
            "<{qname}>: t:enc=\"base64\" goes only with t:type=\"string\""
        ));
    }
    let child_depth = children.iter().map(|(_, _, d)| *d).max().unwrap_or(0);
    let Some(ttype) = ttype else {
        if children.is_empty() && attrs.is_empty() {
            let value = if text.is_empty() {
                Value::Null
            } else {
                text::infer_scalar(&text)
            };
            return Ok((value, 0));
        }
        let blank = is_blank(&text);
        let one_name = children
            .first()
            .is_some_and(|(first, _, _)| children.iter().all(|(n, _, _)| n == first));
        if attrs.is_empty() && children.len() >= 2 && one_name && blank {
            let items = children.into_iter().map(|(_, v, _)| v).collect();
            return Ok((Value::Array(items), 1 + child_depth));
        }
        let keep_text = if children.is_empty() {
            !text.is_empty()
        } else {
            !blank
        };
        let mut children = children;
        if keep_text {
            children.push(("#text".to_string(), text::infer_scalar(&text), 0));
        }
        let (object, depth) = group(attrs, children);
        return Ok((Value::Object(Box::new(object)), depth));
    };
    match ttype.as_str() {
        "array" => {
            if !attrs.is_empty() || !is_blank(&text) {
                return invalid(format!(
                    "<{qname}> is an array: it holds only item elements"
                ));
            }
            let items = children.into_iter().map(|(_, v, _)| v).collect();
            Ok((Value::Array(items), 1 + child_depth))
        }
        "object" => {
            if !is_blank(&text) {
                return invalid(format!("<{qname}> is an object: it holds no text"));
            }
            let (object, depth) = group(attrs, children);
            Ok((Value::Object(Box::new(object)), depth))
        }
        scalar => {
            if !children.is_empty() || !attrs.is_empty() {
                return invalid(format!(
                    "<{qname}> has t:type=\"{scalar}\": it holds only text"
                ));
            }
            let bad = |what: &str| Fail::Invalid(format!("<{qname}>: {text:?} is not {what}"));
            let value = match scalar {
                "string" if tenc.is_some() => {
                    Value::String(decode_base64_text(&format!("<{qname}>"), &text)?)
                }
                "string" => Value::String(text),
                "integer" => Value::Int(text.parse().map_err(|_| bad("an integer"))?),
                "float" => Value::Float(text::parse_float(&text).ok_or_else(|| bad("a float"))?),
                "numeric" if text::is_numeric_text(&text) => Value::Numeric(text),
                "numeric" => return Err(bad("a numeric")),
                "datetime" => Value::DateTime(
                    text::parse_datetime(&text).ok_or_else(|| bad("an RFC 3339 datetime"))?,
                ),
                "binary" => Value::Binary(BASE64.decode(&text).map_err(|_| bad("Base64"))?),
                "boolean" => match text.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(bad("a boolean")),
                },
                "null" if text.is_empty() => Value::Null,
                "null" => return Err(bad("empty")),
                other => return invalid(format!("<{qname}>: unknown t:type=\"{other}\"")),
            };
            Ok((value, 0))
        }
    }
}

/// Runs the parser over `bytes`.
fn parse(bytes: &[u8], mode: Mode, max_depth: usize) -> PResult<Vec<DocOut>> {
    parse_keeping(bytes, mode, max_depth, None)
}

fn parse_keeping(
    bytes: &[u8],
    mode: Mode,
    max_depth: usize,
    keep: Option<&[String]>,
) -> PResult<Vec<DocOut>> {
    let input = std::str::from_utf8(bytes)
        .map_err(|e| Fail::Invalid(format!("XML is not valid UTF-8: {e}")))?;
    let input = input.strip_prefix('\u{FEFF}').unwrap_or(input);
    let mut parser = Parser::new(mode, max_depth);
    parser.keep = keep.map(<[String]>::to_vec);
    parser.run(input)?;
    Ok(parser.docs)
}

fn client_error(fail: Fail) -> Error {
    match fail {
        Fail::Invalid(message) => Error::invalid(
            SqlState::INVALID_XML_DOCUMENT,
            format!("invalid XML document: {message}"),
        ),
        Fail::Limit(message) => Error::limit(message),
    }
}

/// A document as a client sends it: the id first (if the root has one), then the body.
fn client_document(doc: DocOut) -> Result<Object> {
    let mut out = Object::default();
    if let Some(id) = doc.id {
        out.insert("id".to_string(), Value::String(id));
    }
    for (k, v) in doc.body.unwrap_or_default() {
        if out.contains_key(&k) {
            return Err(client_error(Fail::Invalid(
                "the document id is given both as an attribute and as an element".into(),
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// Decodes a REST request body holding one document. The root element may have any
/// name; its `id` attribute becomes the field `id`, first.
pub fn parse_document(bytes: &[u8], limits: &Limits) -> Result<Object> {
    let mut docs = parse(bytes, Mode::Document, limits.max_depth).map_err(client_error)?;
    match docs.pop() {
        Some(doc) if docs.is_empty() => client_document(doc),
        _ => Err(client_error(Fail::Invalid("expected one document".into()))),
    }
}

/// Decodes a REST request body holding a `<documents>` root of `<document>` elements, or
/// a single document root.
pub fn parse_documents(bytes: &[u8], limits: &Limits) -> Result<Vec<Object>> {
    parse(bytes, Mode::Documents, limits.max_depth)
        .map_err(client_error)?
        .into_iter()
        .map(client_document)
        .collect()
}

/// Decodes a block written by [`encode_block`]: ids in order, `None` for tombstones.
pub fn decode_block(bytes: &[u8]) -> Result<Vec<(String, Option<Object>)>> {
    decode_block_keeping(bytes, None)
}

/// [`decode_block`] keeping only the top-level fields `keep` of each document (None:
/// all); the others are stepped over, not decoded. Keeping none (a scan of keys), the
/// documents are not read at all: each entry is found by its start tag
/// ([`split_block`]) and comes out as an empty object (a tombstone as None).
pub fn decode_block_keeping(
    bytes: &[u8],
    keep: Option<&[String]>,
) -> Result<Vec<(String, Option<Object>)>> {
    if keep.is_some_and(<[String]>::is_empty)
        && let Some(entries) = split_block(bytes)?
    {
        return Ok(entries
            .into_iter()
            .map(|(id, element)| (id, element.map(|_| Object::default())))
            .collect());
    }
    let pruned = keep.and_then(|keep| prune_block(bytes, keep));
    let bytes = pruned.as_deref().unwrap_or(bytes);
    let corrupt = |message: String| Error::Corruption(format!("XML block: {message}"));
    parse_keeping(bytes, Mode::Block, BLOCK_MAX_DEPTH, keep)
        .map_err(|fail| match fail {
            Fail::Invalid(m) | Fail::Limit(m) => corrupt(m),
        })?
        .into_iter()
        .map(|doc| match doc.id {
            Some(id) => Ok((id, doc.body)),
            None => Err(corrupt("a document without an id".into())),
        })
        .collect()
}

/// A copy of a block written by [`encode_block`] with only the top-level fields of each
/// document that a read keeping `keep` decodes: the elements named in `keep` and those
/// with a prefixed name (`t:field`, whose field name is an attribute), as the parser
/// keeps them. The others are stepped over by their tags alone, without the tokenizer:
/// the writer escapes `<` in text and attribute values, so each `<` opens a tag, and
/// each tag ends at the first `>` outside quotes. (Stepping over them with the
/// tokenizer took 80% of an index build over nested documents.)
///
/// None where the block holds anything else the writer does not write (text beside a
/// document's fields, comments, processing instructions, CDATA, a block not opened as
/// [`encode_block`] opens one): the caller then parses the block whole.
fn prune_block(bytes: &[u8], keep: &[String]) -> Option<Vec<u8>> {
    let inner = bytes
        .strip_prefix(BLOCK_OPEN.as_bytes())?
        .strip_suffix(b"</block>")?;
    let mut out = Vec::with_capacity(inner.len() / 4);
    out.extend_from_slice(BLOCK_OPEN.as_bytes());
    let mut at = skip_space(inner, 0);
    while at < inner.len() {
        // An entry: `<document id=...>` with its fields, or an empty element.
        let (tag_end, empty) = tag_at(inner, at)?;
        out.extend_from_slice(inner.get(at..tag_end)?);
        at = tag_end;
        if !empty {
            loop {
                at = skip_space(inner, at);
                if inner.get(at..at + 2)? == b"</" {
                    let end = at + memchr::memchr(b'>', inner.get(at..)?)? + 1;
                    out.extend_from_slice(inner.get(at..end)?);
                    at = end;
                    break;
                }
                let (field_end, _) = tag_at(inner, at)?;
                let name_end = inner
                    .get(at + 1..field_end)?
                    .iter()
                    .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>'))?;
                let name = inner.get(at + 1..at + 1 + name_end)?;
                let end = element_end(inner, at)?;
                if name.contains(&b':') || keep.iter().any(|k| k.as_bytes() == name) {
                    out.extend_from_slice(inner.get(at..end)?);
                }
                at = end;
            }
        }
        at = skip_space(inner, at);
    }
    out.extend_from_slice(b"</block>");
    Some(out)
}

/// The first position at or after `at` that is not XML whitespace.
fn skip_space(bytes: &[u8], at: usize) -> usize {
    let rest = bytes.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(rest.len())
}

/// The start tag at `at` (`<` and a name start): where it ends (past its `>`), and
/// whether it is an empty element (`/>`). None if no start tag is there.
fn tag_at(bytes: &[u8], at: usize) -> Option<(usize, bool)> {
    let first = *bytes.get(at + 1)?;
    if bytes.get(at) != Some(&b'<') || matches!(first, b'/' | b'!' | b'?') {
        return None;
    }
    let mut i = at + 1;
    loop {
        i += memchr::memchr3(b'>', b'"', b'\'', bytes.get(i..)?)?;
        match bytes.get(i)? {
            b'>' => return Some((i + 1, bytes.get(i - 1) == Some(&b'/'))),
            &quote => i += 1 + memchr::memchr(quote, bytes.get(i + 1..)?)? + 1,
        }
    }
}

/// Where the element whose start tag is at `at` ends: past its end tag, counting the
/// elements opened and closed inside it. None at anything but tags and text.
fn element_end(bytes: &[u8], at: usize) -> Option<usize> {
    let (mut i, empty) = tag_at(bytes, at)?;
    if empty {
        return Some(i);
    }
    let mut depth = 1usize;
    loop {
        i += memchr::memchr(b'<', bytes.get(i..)?)?;
        if bytes.get(i + 1) == Some(&b'/') {
            i += memchr::memchr(b'>', bytes.get(i..)?)? + 1;
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        } else {
            let (end, empty) = tag_at(bytes, i)?;
            depth += usize::from(!empty);
            i = end;
        }
    }
}

/// A block entry as [`split_block`] finds it: the document's id, and its `<document>`
/// element (None for a tombstone).
pub type SplitEntry<'a> = (String, Option<&'a str>);

/// How the writer starts a block's entries ([`XmlWriter::open_entry`]). Only entries
/// carry an `id` or `t:id64` attribute, and the writer escapes `<` in text and attribute
/// values, so each of these occurs at an entry's start and nowhere else: an entry ends
/// where the next one starts, or at the block's end tag.
const ENTRY_STARTS: [&[u8]; 4] = [
    b"<document id=\"",
    b"<document t:id64=\"",
    b"<tombstone id=\"",
    b"<tombstone t:id64=\"",
];

/// Whether an entry starts at `at` in `bytes`.
fn entry_starts_at(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at..)
        .is_some_and(|rest| ENTRY_STARTS.iter().any(|start| rest.starts_with(start)))
}

/// Where the first entry at or after `from` starts in `bytes`, if one does.
fn next_entry(bytes: &[u8], from: usize) -> Option<usize> {
    memchr::memchr_iter(b'<', bytes.get(from..).unwrap_or_default())
        .map(|at| from + at)
        .find(|&at| entry_starts_at(bytes, at))
}

/// The entries of a block written by [`encode_block`], without decoding them: each
/// document's id and its `<document>` element as written, and each tombstone's id
/// (with None). Compaction copies the elements into the blocks it writes
/// ([`BlockPart::Written`]) instead of decoding and encoding them again. None when the
/// block does not start as [`encode_block`] starts one: its elements might then need
/// a declaration that the block's root holds, and the caller decodes it instead.
///
/// An entry is cut where the next one starts ([`ENTRY_STARTS`]); only its start tag is
/// read (its id) and its end checked, not what is inside it: a block is checked whole
/// by its checksum, and fully when a document of it is decoded. (Reading each element
/// to its end took most of a compaction's CPU for nested documents.)
pub fn split_block(bytes: &[u8]) -> Result<Option<Vec<SplitEntry<'_>>>> {
    let corrupt = |message: String| Error::Corruption(format!("XML block: {message}"));
    if !bytes.starts_with(BLOCK_OPEN.as_bytes()) {
        return Ok(None);
    }
    let body = std::str::from_utf8(bytes).map_err(|e| corrupt(format!("not UTF-8: {e}")))?;
    let inner = body
        .get(BLOCK_OPEN.len()..)
        .and_then(|rest| rest.strip_suffix("</block>"))
        .ok_or_else(|| corrupt("the block does not end with </block>".into()))?;
    let bytes = inner.as_bytes();
    let bad = |e: quick_xml::Error| corrupt(format!("malformed XML: {e}"));
    let mut entries = Vec::new();
    let mut start = 0;
    // Whitespace between entries (none as written) is stepped over.
    let not_space = |b: &u8| !matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    while let Some(at) = bytes
        .get(start..)
        .and_then(|rest| rest.iter().position(not_space))
    {
        start += at;
        if !entry_starts_at(bytes, start) {
            return Err(corrupt(format!(
                "expected a <document> or <tombstone> with an id at offset {start}"
            )));
        }
        let end = next_entry(bytes, start + 1).unwrap_or(inner.len());
        let element = inner
            .get(start..end)
            .ok_or_else(|| corrupt("entry out of range".into()))?
            .trim_end_matches([' ', '\t', '\n', '\r']);
        let mut reader = Reader::from_str(element);
        let (tag, empty) = match reader.read_event().map_err(bad)? {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            other => return Err(corrupt(format!("unexpected {other:?} in <block>"))),
        };
        let id = entry_id(&tag).map_err(|f| corrupt(fail_message(f)))?;
        let whole = match empty {
            true => reader.buffer_position() as usize == element.len(),
            false => element.ends_with("</document>"),
        };
        let entry = match tag.name().0 {
            "document" if whole => (id, Some(element)),
            "tombstone" if whole && empty => (id, None),
            _ => {
                return Err(corrupt(format!(
                    "an entry that is not a whole <document> or an empty <tombstone>: {}",
                    element.chars().take(80).collect::<String>()
                )));
            }
        };
        entries.push(entry);
        start = end;
    }
    Ok(Some(entries))
}

/// A block entry's id: its `id` attribute or, Base64, its `t:id64`.
fn entry_id(e: &BytesStart<'_>) -> PResult<String> {
    let mut found = None;
    for attr in e.attributes() {
        let attr = attr.map_err(|err| Fail::Invalid(format!("bad attribute: {err}")))?;
        let value = || {
            attr.normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| Fail::Invalid(format!("bad attribute: {err}")))
        };
        let id = match attr.key.0 {
            "id" => value()?.into_owned(),
            "t:id64" => decode_base64_text("t:id64", &value()?)?,
            _ => continue,
        };
        if found.replace(id).is_some() {
            return invalid("an entry with two ids");
        }
    }
    found.ok_or_else(|| Fail::Invalid("an entry without an id".into()))
}

fn fail_message(fail: Fail) -> String {
    match fail {
        Fail::Invalid(m) | Fail::Limit(m) => m,
    }
}

/// The entry for document `id` in a block written by [`encode_block`], decoding only
/// that entry: None if the block has none, `Some(None)` for a tombstone.
///
/// The entry's start tag is found by searching the bytes for it: the writer gives only
/// a block's entries an `id` (or `t:id64`) attribute, and escapes `<` in text and
/// attribute values, so `<document id="x"` (or `<tombstone ...`) with the id written
/// as the writer writes it occurs once, at the entry, which ends where the next entry
/// starts ([`ENTRY_STARTS`]). Then that element alone is decoded.
pub fn decode_block_entry(bytes: &[u8], id: &str) -> Result<Option<Option<Object>>> {
    let corrupt = |message: String| Error::Corruption(format!("XML block: {message}"));
    let header_end = memchr::memchr(b'>', bytes)
        .filter(|_| bytes.starts_with(b"<block"))
        .ok_or_else(|| corrupt("expected <block>".into()))?;
    let mut attr = String::new();
    if xml_safe(id) {
        attr.push_str(" id=\"");
        push_attr_value(&mut attr, id);
    } else {
        attr.push_str(" t:id64=\"");
        push_attr_value(&mut attr, &BASE64.encode(id));
    }
    attr.push('"');
    let body = bytes
        .get(header_end + 1..)
        .and_then(|rest| rest.strip_suffix(b"</block>"))
        .ok_or_else(|| corrupt("the block does not end with </block>".into()))?;
    // The attribute as the writer writes it, right after an entry's tag name and followed
    // by the tag's end (not by more of a longer id's text). Elsewhere (in text) it is
    // not after a tag name: `<` is escaped there.
    let found = memchr::memmem::find_iter(body, attr.as_bytes()).find_map(|at| {
        if !matches!(body.get(at + attr.len()), Some(b'>' | b'/' | b' ')) {
            return None;
        }
        [&b"<document"[..], b"<tombstone"].iter().find_map(|tag| {
            at.checked_sub(tag.len())
                .filter(|&start| body.get(start..at) == Some(*tag))
        })
    });
    let Some(start) = found else {
        return Ok(None);
    };
    let end = next_entry(body, start + 1).unwrap_or(body.len());
    let element = body.get(start..end).unwrap_or_default();
    let mut one = Vec::with_capacity(header_end + 1 + element.len() + 8);
    one.extend_from_slice(bytes.get(..=header_end).unwrap_or_default());
    one.extend_from_slice(element);
    one.extend_from_slice(b"</block>");
    let mut docs = decode_block(&one)?;
    match docs.pop() {
        Some((found_id, doc)) if docs.is_empty() && found_id == id => Ok(Some(doc)),
        _ => Err(corrupt(format!(
            "the entry for \"{id}\" does not decode alone"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::text::testing::{arb_object, arb_value, same_object};
    use proptest::prelude::*;

    const SEED: &str = r#"<document id="product_789">
  <name>Wireless Headphones</name>
  <brand>AudioPhonic</brand>
  <price>199.99</price>
  <is_available>true</is_available>
  <release_date>2023-10-26T10:00:00Z</release_date>
  <specs>
    <weight>250g</weight>
    <bluetooth_version>5.2</bluetooth_version>
    <features>
      <feature>Noise Cancellation</feature>
      <feature>24-hour Battery</feature>
      <feature>Water Resistant</feature>
    </features>
  </specs>
  <reviews>
    <review id="rev_1">
      <rating>5</rating>
      <comment>Amazing sound quality!</comment>
    </review>
    <review id="rev_2">
      <rating>4</rating>
      <comment>Very comfortable.</comment>
    </review>
  </reviews>
</document>
"#;

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    fn obj(pairs: Vec<(&str, Value)>) -> Object {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn limits() -> Limits {
        Limits { max_depth: 64 }
    }

    fn seed_value() -> Object {
        obj(vec![
            ("id", s("product_789")),
            ("name", s("Wireless Headphones")),
            ("brand", s("AudioPhonic")),
            ("price", Value::Float(199.99)),
            ("is_available", Value::Bool(true)),
            ("release_date", Value::DateTime(1_698_314_400_000_000)),
            (
                "specs",
                Value::Object(Box::new(obj(vec![
                    ("weight", s("250g")),
                    ("bluetooth_version", Value::Float(5.2)),
                    (
                        "features",
                        Value::Array(vec![
                            s("Noise Cancellation"),
                            s("24-hour Battery"),
                            s("Water Resistant"),
                        ]),
                    ),
                ]))),
            ),
            (
                "reviews",
                Value::Array(vec![
                    Value::Object(Box::new(obj(vec![
                        ("id", s("rev_1")),
                        ("rating", Value::Int(5)),
                        ("comment", s("Amazing sound quality!")),
                    ]))),
                    Value::Object(Box::new(obj(vec![
                        ("id", s("rev_2")),
                        ("rating", Value::Int(4)),
                        ("comment", s("Very comfortable.")),
                    ]))),
                ]),
            ),
        ])
    }

    /// Every type and the awkward shapes, as one object.
    fn awkward() -> Object {
        obj(vec![
            ("null", Value::Null),
            ("t", Value::Bool(true)),
            ("int", Value::Int(i64::MIN)),
            ("float", Value::Float(199.99)),
            ("one", Value::Float(1.0)),
            ("big", Value::Float(1e300)),
            ("negzero", Value::Float(-0.0)),
            ("inf", Value::Float(f64::NEG_INFINITY)),
            ("num", Value::Numeric("12.50".into())),
            ("looks_int", s("42")),
            ("looks_bool", s("true")),
            ("zip", s("02134")),
            ("looks_date", s("2023-10-26T10:00:00Z")),
            ("empty", s("")),
            ("spaces", s("  padded \n ")),
            ("markup", s("<a href=\"x\">&amp;</a> ]]>")),
            ("cr", s("line\r\nnext\rlast")),
            ("control", s("bell\u{7}\u{0}")),
            ("nonchar", s("\u{FFFF}")),
            ("date", Value::DateTime(1_698_314_400_500_000)),
            ("far_date", Value::DateTime(i64::MAX)),
            ("bin", Value::Binary(vec![0, 159, 146, 150])),
            ("empty_bin", Value::Binary(vec![])),
            ("empty_array", Value::Array(vec![])),
            ("one_item", Value::Array(vec![s("only")])),
            (
                "matrix",
                Value::Array(vec![
                    Value::Array(vec![Value::Int(1), Value::Int(2)]),
                    Value::Array(vec![Value::Int(3)]),
                    Value::Array(vec![]),
                ]),
            ),
            (
                "nulls",
                Value::Array(vec![Value::Null, Value::Null, Value::Int(1)]),
            ),
            ("empty_obj", Value::Object(Box::default())),
            (
                "hello world",
                Value::Object(Box::new(obj(vec![
                    ("1abc", Value::Int(1)),
                    ("a:b", Value::Int(2)),
                    ("", Value::Int(3)),
                    ("xmlfoo", Value::Int(4)),
                    ("#text", s("t")),
                    ("tab\tname", Value::Int(5)),
                    ("\u{1}", Value::Int(6)),
                    ("id", Value::Int(7)),
                ]))),
            ),
            (
                "items",
                Value::Array(vec![
                    Value::Object(Box::new(obj(vec![("item", Value::Array(vec![]))]))),
                    Value::Object(Box::new(obj(vec![("x", Value::Null)]))),
                ]),
            ),
            (
                "wrapped",
                Value::Object(Box::new(obj(vec![(
                    "features",
                    Value::Array(vec![s("a"), s("b")]),
                )]))),
            ),
        ])
    }

    fn block_round_trip(entries: &[(&str, Option<&Object>)]) -> Vec<(String, Option<Object>)> {
        let xml = encode_block(entries);
        decode_block(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    #[test]
    fn seed_document_parses() {
        let doc = parse_document(SEED.as_bytes(), &limits()).unwrap();
        assert_eq!(doc, seed_value());
        let keys: Vec<&str> = doc.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "name",
                "brand",
                "price",
                "is_available",
                "release_date",
                "specs",
                "reviews"
            ]
        );
    }

    #[test]
    fn seed_document_writes_back_in_its_shape() {
        let mut body = seed_value();
        let id = match body.shift_remove("id") {
            Some(Value::String(id)) => id,
            other => panic!("{other:?}"),
        };
        let xml = write_document(&id, &body);
        assert!(xml.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<document id=\"product_789\">"
        ));
        assert!(!xml.contains("xmlns:t"), "{xml}");
        assert!(xml.contains("<feature>24-hour Battery</feature>"), "{xml}");
        assert!(xml.contains("<review>"), "{xml}");
        assert!(xml.contains("<id>rev_1</id>"), "{xml}");
        assert!(xml.contains("<price>199.99</price>"), "{xml}");
        assert_eq!(
            parse_document(xml.as_bytes(), &limits()).unwrap(),
            seed_value()
        );
    }

    #[test]
    fn reading_rules() {
        let doc = parse_document(
            br#"<?xml version="1.0"?>
            <!-- a comment -->
            <?some-pi data?>
            <doc>
              <a/>
              <b></b>
              <c x="1" y="two">3</c>
              <d x="1"/>
              <e>x<![CDATA[<y>&]]>z &amp; &#65;&#x42; &lt;&gt;&apos;&quot;</e>
              <f>  spaced  </f>
              <g><h>1</h>mixed<h>2</h></g>
              <k>1</k>
              <l>2</l>
              <k>3</k>
              <k>4</k>
              <m>
                <n>1</n>
              </m>
              <o attr="1"><p>1</p><p>2</p></o>
              <q>1.50</q>
            </doc>"#,
            &limits(),
        )
        .unwrap();
        let expected = obj(vec![
            ("a", Value::Null),
            ("b", Value::Null),
            (
                "c",
                Value::Object(Box::new(obj(vec![
                    ("x", Value::Int(1)),
                    ("y", s("two")),
                    ("#text", Value::Int(3)),
                ]))),
            ),
            (
                "d",
                Value::Object(Box::new(obj(vec![("x", Value::Int(1))]))),
            ),
            ("e", s("x<y>&z & AB <>'\"")),
            ("f", s("  spaced  ")),
            (
                "g",
                Value::Object(Box::new(obj(vec![
                    ("h", Value::Array(vec![Value::Int(1), Value::Int(2)])),
                    ("#text", s("mixed")),
                ]))),
            ),
            (
                "k",
                Value::Array(vec![Value::Int(1), Value::Int(3), Value::Int(4)]),
            ),
            ("l", Value::Int(2)),
            (
                "m",
                Value::Object(Box::new(obj(vec![("n", Value::Int(1))]))),
            ),
            (
                "o",
                Value::Object(Box::new(obj(vec![
                    ("attr", Value::Int(1)),
                    ("p", Value::Array(vec![Value::Int(1), Value::Int(2)])),
                ]))),
            ),
            ("q", Value::Float(1.5)),
        ]);
        assert_eq!(doc, expected);
    }

    #[test]
    fn explicit_types_and_names() {
        let doc = parse_document(
            br#"<document xmlns:x="urn:tissdb" x:id64="ZG9jIDE=">
              <s x:type="string">42</s>
              <e x:type="string"/>
              <b x:type="string" x:enc="base64">AQI=</b>
              <i x:type="integer">7</i>
              <f x:type="float">1e300</f>
              <n x:type="float">NaN</n>
              <num x:type="numeric">1.50</num>
              <d x:type="datetime">2023-10-26T12:00:00+02:00</d>
              <bin x:type="binary">AAE=</bin>
              <bool x:type="boolean">false</bool>
              <nul x:type="null"/>
              <arr x:type="array"><whatever>1</whatever></arr>
              <o x:type="object"><p>1</p><p>2</p></o>
              <x:field x:name="hello world">1</x:field>
              <x:field x:name64="MWFiYw==">2</x:field>
              <t:type>plain</t:type>
            </document>"#,
            &limits(),
        )
        .unwrap();
        let mut expected = obj(vec![
            ("id", s("doc 1")),
            ("s", s("42")),
            ("e", s("")),
            ("b", s("\u{1}\u{2}")),
            ("i", Value::Int(7)),
            ("f", Value::Float(1e300)),
            ("n", Value::Float(f64::NAN)),
            ("num", Value::Numeric("1.50".into())),
            ("d", Value::DateTime(1_698_314_400_000_000)),
            ("bin", Value::Binary(vec![0, 1])),
            ("bool", Value::Bool(false)),
            ("nul", Value::Null),
            ("arr", Value::Array(vec![Value::Int(1)])),
            (
                "o",
                Value::Object(Box::new(obj(vec![(
                    "p",
                    Value::Array(vec![Value::Int(1), Value::Int(2)]),
                )]))),
            ),
            ("hello world", Value::Int(1)),
            ("1abc", Value::Int(2)),
            ("t:type", s("plain")),
        ]);
        assert!(same_object(&doc, &expected), "{doc:?}");
        expected.shift_remove("n");
        let mut doc = doc;
        doc.shift_remove("n");
        assert_eq!(doc, expected);
    }

    fn client_err(xml: &str) -> Error {
        parse_document(xml.as_bytes(), &limits()).unwrap_err()
    }

    #[test]
    fn bad_input_is_refused() {
        let cases = [
            "<document><a>1</b></document>",
            "<document><a>1</a>",
            "<document>",
            "",
            "   ",
            "just text",
            "<document/>trailing",
            "text<document/>",
            "<document/><document/>",
            "<document a=1/>",
            "<document a=\"1\" a=\"2\"/>",
            "<document><a>&nbsp;</a></document>",
            "<document><a x=\"&e;\"/></document>",
            "<document><a>&#0;</a></document>",
            "<document><i xmlns:t=\"urn:tissdb\" t:type=\"integer\">x</i></document>",
            "<document><i xmlns:t=\"urn:tissdb\" t:type=\"bogus\">1</i></document>",
            "<document><i xmlns:t=\"urn:tissdb\" t:bogus=\"1\">1</i></document>",
            "<document><i xmlns:t=\"urn:tissdb\" t:enc=\"base64\">AA==</i></document>",
            "<document xmlns:t=\"urn:tissdb\"><t:field>1</t:field></document>",
            "<document xmlns:t=\"urn:tissdb\"><t:other t:name=\"a\">1</t:other></document>",
            "<document id=\"a\"><id>b</id></document>",
        ];
        for xml in cases {
            let err = client_err(xml);
            assert_eq!(
                err.sqlstate(),
                SqlState::INVALID_XML_DOCUMENT,
                "{xml}: {err}"
            );
        }
        assert!(parse_document(b"\xff<document/>", &limits()).is_err());
    }

    #[test]
    fn dtds_and_entities_are_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><document><a>&e;</a></document>"#;
        let err = client_err(xxe);
        assert_eq!(err.sqlstate(), SqlState::INVALID_XML_DOCUMENT);
        assert!(err.to_string().contains("DTDs are not allowed"), "{err}");
        assert!(!err.to_string().contains("root:"), "{err}");

        let err = client_err(r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd"><document/>"#);
        assert!(err.to_string().contains("DTDs are not allowed"), "{err}");
        let err = client_err("<document><!DOCTYPE x><a/></document>");
        assert!(err.to_string().contains("DTDs are not allowed"), "{err}");
        let err = client_err("<!DOCTYPE document><document/>");
        assert!(err.to_string().contains("DTDs are not allowed"), "{err}");
        let err = client_err("<document><a>&e;</a></document>");
        assert!(err.to_string().contains("unknown entity &e;"), "{err}");
        let bomb = r#"<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><document><a>&b;</a></document>"#;
        assert!(
            client_err(bomb)
                .to_string()
                .contains("DTDs are not allowed")
        );
    }

    #[test]
    fn depth_limits() {
        let l = Limits { max_depth: 2 };
        // Depth 2: the document and one nested object; leaves do not count.
        assert!(parse_document(b"<d><a><b>1</b></a></d>", &l).is_ok());
        assert!(parse_document(b"<d><a><b x=\"1\"/></a></d>", &l).is_err());
        let err = parse_document(b"<d><a><b><c>1</c></b></a></d>", &l).unwrap_err();
        assert!(
            matches!(err, Error::LimitExceeded { code, .. } if code == SqlState::PROGRAM_LIMIT_EXCEEDED)
        );
        assert!(err.to_string().contains("max_depth"), "{err}");
        // Repeated names collected into an array add a level.
        let err = parse_document(
            b"<d><a><x>1</x><b><c>1</c></b><b><c>2</c></b></a></d>",
            &Limits { max_depth: 3 },
        )
        .unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");

        let deep = format!("<document>{}", "<a>".repeat(100_000));
        let err = parse_document(deep.as_bytes(), &limits()).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
        let deep = format!(
            "<document>{}1{}</document>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        let err = parse_document(deep.as_bytes(), &limits()).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
        let deep = format!(
            "<block xmlns:t=\"urn:tissdb\"><document id=\"x\">{}",
            "<a>".repeat(100_000)
        );
        assert!(matches!(
            decode_block(deep.as_bytes()),
            Err(Error::Corruption(_))
        ));
    }

    #[test]
    fn awkward_values_round_trip_through_documents() {
        let body = awkward();
        let xml = write_document("doc\t\"1\" <&>", &body);
        assert!(xml.contains("xmlns:t=\"urn:tissdb\""), "{xml}");
        let back = parse_document(xml.as_bytes(), &limits()).unwrap();
        let mut expected = obj(vec![("id", s("doc\t\"1\" <&>"))]);
        expected.extend(body);
        assert!(same_object(&back, &expected), "{xml}\n{back:#?}");
    }

    #[test]
    fn document_id_that_xml_cannot_carry() {
        let xml = write_document("a\u{1}b", &Object::default());
        let back = parse_document(xml.as_bytes(), &limits()).unwrap();
        assert_eq!(back, obj(vec![("id", s("a\u{1}b"))]));
    }

    #[test]
    fn rows_read_back_as_documents() {
        let rows = vec![
            obj(vec![("id", s("k1")), ("n", Value::Int(1))]),
            obj(vec![("zip", s("02134")), ("x", s("42"))]),
        ];
        let back = parse_documents(write_rows(&rows).as_bytes(), &limits()).unwrap();
        assert_eq!(back, rows);
        assert!(
            parse_documents(write_rows(&[]).as_bytes(), &limits())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn document_lists_round_trip() {
        let docs = vec![
            ("a".to_string(), obj(vec![("x", Value::Int(1))])),
            ("b".to_string(), Object::default()),
            ("c".to_string(), obj(vec![("y", s("42"))])),
        ];
        let xml = write_documents(&docs);
        let back = parse_documents(xml.as_bytes(), &limits()).unwrap();
        assert_eq!(
            back,
            vec![
                obj(vec![("id", s("a")), ("x", Value::Int(1))]),
                obj(vec![("id", s("b"))]),
                obj(vec![("id", s("c")), ("y", s("42"))]),
            ]
        );
        assert_eq!(
            parse_documents(write_documents(&[]).as_bytes(), &limits()).unwrap(),
            Vec::<Object>::new()
        );
        let single = parse_documents(SEED.as_bytes(), &limits()).unwrap();
        assert_eq!(single, vec![seed_value()]);
        assert!(parse_documents(b"<documents><doc/></documents>", &limits()).is_err());
    }

    #[test]
    fn blocks_round_trip() {
        let body = awkward();
        let with_id = obj(vec![("id", Value::Int(5)), ("x", s("y"))]);
        let empty = Object::default();
        let entries: Vec<(&str, Option<&Object>)> = vec![
            ("k1", Some(&body)),
            ("k2", None),
            ("", Some(&with_id)),
            ("é \"<&>\" \t\n\r", Some(&empty)),
            ("\u{1}\u{FFFF}", None),
        ];
        let back = block_round_trip(&entries);
        assert_eq!(back.len(), entries.len());
        for ((id, body), (back_id, back_body)) in entries.iter().zip(&back) {
            assert_eq!(id, back_id);
            match (body, back_body) {
                (Some(a), Some(b)) => assert!(same_object(a, b), "{b:#?}"),
                (None, None) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(block_round_trip(&[]), vec![]);
        let xml = encode_block(&[("k", Some(&obj(vec![("a", Value::Int(1))])))]);
        assert_eq!(
            xml,
            "<block xmlns:t=\"urn:tissdb\"><document id=\"k\"><a>1</a></document></block>"
        );
    }

    #[test]
    fn a_block_decodes_keeping_some_fields() {
        let body = awkward();
        let xml = encode_block(&[("a", Some(&body)), ("b", None)]);
        let first = body.keys().next().cloned().unwrap();
        let kept =
            decode_block_keeping(xml.as_bytes(), Some(std::slice::from_ref(&first))).unwrap();
        assert_eq!(kept.len(), 2);
        // Fields with plain names are stepped over; one whose name needs `t:field` is
        // kept (the reader drops it later), which is allowed.
        let mut doc = kept[0].1.clone().unwrap();
        assert!(doc.len() < body.len(), "{doc:?}");
        doc.retain(|k, _| *k == first);
        assert!(same_object(
            &doc,
            &obj(vec![(first.as_str(), body[first.as_str()].clone())])
        ));
        assert_eq!(kept[1], ("b".to_string(), None));
    }

    /// Keeping some fields, a block is read through a copy holding only their elements
    /// ([`prune_block`]): what comes out is the whole block's documents cut to those
    /// fields (and, as the parser allows, fields written as `t:field`). Among the fields
    /// stepped over: ones holding elements named like the kept field, empty elements,
    /// names with quotes and `>` (attributes), markup in text.
    #[test]
    fn a_block_read_for_some_fields_is_the_whole_block_cut_to_them() {
        let inner = obj(vec![
            ("brand", s("inner")),
            (
                "deeper",
                Value::Object(Box::new(obj(vec![("brand", Value::Int(1))]))),
            ),
            ("empty", Value::Object(Box::default())),
        ]);
        let products = obj(vec![
            ("specs", Value::Object(Box::new(inner.clone()))),
            ("brand", s("outer <b> \"q\" 'a'")),
            ("it's a > name", Value::Object(Box::new(inner))),
            ("nothing", Value::Null),
            ("tail", Value::Array(vec![s("x"), Value::Null, s("")])),
        ]);
        let bodies = [awkward(), products, Object::default()];
        let entries: Vec<(&str, Option<&Object>)> = vec![
            ("a", Some(&bodies[0])),
            ("t", None),
            ("b", Some(&bodies[1])),
            ("c", Some(&bodies[2])),
        ];
        let xml = encode_block(&entries);
        let whole = decode_block(xml.as_bytes()).unwrap();
        let mut names: Vec<String> = bodies.iter().flat_map(|b| b.keys().cloned()).collect();
        names.push("absent".into());
        for name in &names {
            let keep = std::slice::from_ref(name);
            let pruned = prune_block(xml.as_bytes(), keep).expect("a block as written");
            assert!(pruned.len() < xml.len(), "{name}");
            let kept = decode_block_keeping(xml.as_bytes(), Some(keep)).unwrap();
            assert_eq!(kept.len(), whole.len());
            for ((id, doc), (whole_id, whole_doc)) in kept.iter().zip(&whole) {
                assert_eq!(id, whole_id);
                let (Some(doc), Some(whole_doc)) = (doc, whole_doc) else {
                    assert_eq!((doc, whole_doc), (&None, &None), "{name} {id}");
                    continue;
                };
                let cut = |d: &Object| {
                    let mut d = d.clone();
                    d.retain(|k, _| k == name);
                    d
                };
                assert!(
                    same_object(&cut(doc), &cut(whole_doc)),
                    "{name} {id}: {doc:?}"
                );
                // Nothing else but fields written as `t:field`.
                assert!(
                    doc.keys().all(|k| k == name || !is_plain_name(k)),
                    "{name} {id}: {doc:?}"
                );
            }
        }
        // Keeping none, the entries come out as they are, their documents empty.
        let keys_only = decode_block_keeping(xml.as_bytes(), Some(&[])).unwrap();
        let shape: Vec<(String, bool)> = whole
            .iter()
            .map(|(k, d)| (k.clone(), d.is_some()))
            .collect();
        assert_eq!(
            keys_only
                .iter()
                .map(|(k, d)| (k.clone(), d.is_some()))
                .collect::<Vec<_>>(),
            shape
        );
        assert!(keys_only.iter().flat_map(|(_, d)| d).all(Object::is_empty));
    }

    /// A tag ends at the first `>` outside quotes: other writers may leave `>` in
    /// attribute values, and quotes of the other kind inside them.
    #[test]
    fn a_block_is_cut_at_tag_ends_outside_quotes() {
        let keep = ["brand".to_string()];
        for body in [
            "<price note=\"1>2\" other='it\"s'/><brand>x</brand>",
            "<price note='a>b\"'><v q=\"'>'\">1</v></price><brand>x</brand><n>2</n>",
        ] {
            let xml = format!("{BLOCK_OPEN}<document id=\"k\">{body}</document></block>");
            let pruned = prune_block(xml.as_bytes(), &keep).expect(body);
            assert_eq!(
                String::from_utf8(pruned).unwrap(),
                format!("{BLOCK_OPEN}<document id=\"k\"><brand>x</brand></document></block>")
            );
        }
    }

    /// What the writer never writes (text beside fields, a comment) is not cut by the
    /// tags: such a block is parsed whole, and still keeps the field asked for.
    #[test]
    fn a_block_the_writer_did_not_write_is_read_whole_for_some_fields() {
        let keep = ["brand".to_string()];
        for body in [
            "<brand>x</brand><!-- note --><price>1</price>",
            "<price>1<!-- <brand>no</brand> --></price><brand>x</brand>",
            "<price>1</price><brand>x</brand><?pi x?>",
        ] {
            let xml = format!("{BLOCK_OPEN}<document id=\"k\">{body}</document></block>");
            assert_eq!(prune_block(xml.as_bytes(), &keep), None, "{body}");
            let kept = decode_block_keeping(xml.as_bytes(), Some(&keep)).unwrap();
            assert_eq!(kept.len(), 1);
            let doc = kept[0].1.clone().unwrap();
            assert_eq!(doc.get("brand"), Some(&s("x")), "{body}");
            assert_eq!(doc.get("price"), None, "{body}");
        }
    }

    #[test]
    fn one_entry_decodes_alone() {
        let body = awkward();
        let nested = obj(vec![
            (
                "document",
                Value::Object(Box::new(obj(vec![("id", s("k3")), ("x", Value::Int(1))]))),
            ),
            ("tombstone", Value::Null),
            // The id attribute of a missing entry, in text (escaped `<`, plain quotes).
            (
                "said",
                s("<document id=\"k3\"/> id=\"k3\"> <tombstone id=\"k3\"/>"),
            ),
        ]);
        let empty = Object::default();
        let mut entries: Vec<(&str, Option<&Object>)> = vec![
            ("", Some(&empty)),
            ("\u{1}\u{FFFF}", None),
            ("k1", Some(&body)),
            ("k2", None),
            ("k2a", Some(&nested)),
            ("k4", Some(&empty)),
            ("é \"<&>\" \t\n\r", Some(&body)),
        ];
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let xml = encode_block(&entries);
        for (id, body) in &entries {
            let got = decode_block_entry(xml.as_bytes(), id).unwrap();
            match (body, got) {
                (Some(a), Some(Some(b))) => assert!(same_object(a, &b), "{id}: {b:#?}"),
                (None, Some(None)) => {}
                other => panic!("{id}: {other:?}"),
            }
        }
        for missing in ["k0", "k3", "k2b", "zzz", "\u{0}"] {
            assert_eq!(decode_block_entry(xml.as_bytes(), missing).unwrap(), None);
        }
        assert_eq!(
            decode_block_entry(encode_block(&[]).as_bytes(), "a").unwrap(),
            None
        );
        for bad in [
            &b"<document id=\"a\"/>"[..],
            b"<block><document id=\"a\"><x>",
            b"<block><document id=\"a\"><x></y></document></block>",
        ] {
            assert!(decode_block_entry(bad, "a").is_err(), "{bad:?}");
        }
    }

    /// Splits `xml` and writes its entries back as copied elements.
    fn split_and_rewrite(xml: &str) -> String {
        let parts = split_block(xml.as_bytes()).unwrap().unwrap();
        let parts: Vec<(&str, BlockPart<'_>)> = parts
            .iter()
            .map(|(id, element)| {
                (
                    id.as_str(),
                    element.map_or(BlockPart::Tombstone, BlockPart::Written),
                )
            })
            .collect();
        encode_block_parts(&parts)
    }

    #[test]
    fn blocks_split_into_their_elements() {
        let body = awkward();
        let nested = obj(vec![
            (
                "document",
                Value::Object(Box::new(obj(vec![
                    ("document", Value::Int(1)),
                    ("x", s("</document>")),
                ]))),
            ),
            ("tombstone", Value::Null),
        ]);
        let empty = Object::default();
        let entries: Vec<(&str, Option<&Object>)> = vec![
            ("", Some(&empty)),
            ("\u{1}\u{FFFF}", None),
            ("\u{2}", Some(&body)),
            ("k1", Some(&body)),
            ("k2", None),
            ("k2a", Some(&nested)),
            ("é \"<&>\" \t\n\r", Some(&nested)),
        ];
        let xml = encode_block(&entries);
        let parts = split_block(xml.as_bytes()).unwrap().unwrap();
        let ids: Vec<&str> = parts.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, entries.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        for ((_, element), (id, body)) in parts.iter().zip(&entries) {
            assert_eq!(element.is_some(), body.is_some(), "{id}");
        }
        // Written back as copies, the block is the same bytes.
        assert_eq!(split_and_rewrite(&xml), xml);
        // Copied elements and written documents mix: the entries of two blocks.
        let other = encode_block(&[("a", Some(&nested)), ("b", None)]);
        let other_parts = split_block(other.as_bytes()).unwrap().unwrap();
        let mixed: Vec<(&str, BlockPart<'_>)> = vec![
            (
                &other_parts[0].0,
                BlockPart::Written(other_parts[0].1.unwrap()),
            ),
            ("a2", BlockPart::Document(&body)),
            (&parts[5].0, BlockPart::Written(parts[5].1.unwrap())),
            (&other_parts[1].0, BlockPart::Tombstone),
        ];
        let back = decode_block(encode_block_parts(&mixed).as_bytes()).unwrap();
        let want: Vec<(&str, Option<&Object>)> = vec![
            ("a", Some(&nested)),
            ("a2", Some(&body)),
            ("k2a", Some(&nested)),
            ("b", None),
        ];
        assert_eq!(back.len(), want.len());
        for ((id, doc), (want_id, want_doc)) in back.iter().zip(&want) {
            assert_eq!(id, want_id);
            match (doc, want_doc) {
                (Some(a), Some(b)) => assert!(same_object(a, b), "{id}: {a:#?}"),
                (None, None) => {}
                other => panic!("{id}: {other:?}"),
            }
        }
        assert_eq!(
            split_block(encode_block(&[]).as_bytes()).unwrap(),
            Some(vec![])
        );
        // Whitespace between entries is not part of them.
        let spaced = format!(
            "{BLOCK_OPEN}\n  <document id=\"a\"><x>1</x></document>\n  <tombstone id=\"b\"/>\n</block>"
        );
        assert_eq!(
            split_block(spaced.as_bytes()).unwrap(),
            Some(vec![
                (
                    "a".to_string(),
                    Some("<document id=\"a\"><x>1</x></document>")
                ),
                ("b".to_string(), None)
            ])
        );
    }

    #[test]
    fn blocks_that_do_not_split() {
        // Not opened the way the writer opens blocks: the caller decodes instead.
        for other in [
            "<block><document id=\"a\"/></block>",
            "<block xmlns:x=\"urn:tissdb\"><document id=\"a\"/></block>",
            "",
        ] {
            assert_eq!(split_block(other.as_bytes()).unwrap(), None, "{other}");
        }
        for bad in [
            "<block xmlns:t=\"urn:tissdb\"><document/></block>",
            "<block xmlns:t=\"urn:tissdb\"><tombstone/></block>",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\" t:id64=\"YQ==\"/></block>",
            "<block xmlns:t=\"urn:tissdb\"><document t:id64=\"%%\"/></block>",
            "<block xmlns:t=\"urn:tissdb\"><tombstone id=\"a\"><x/></tombstone></block>",
            "<block xmlns:t=\"urn:tissdb\"><other id=\"a\"/></block>",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\">",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\"><x/></block>",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\"><x/></documents></block>",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\"/>",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\"/>x</block>",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\"/><tombstone id=\"b\"></block>",
            "<block xmlns:t=\"urn:tissdb\">text</block>",
            "<block xmlns:t=\"urn:tissdb\">text<document id=\"a\"/></block>",
        ] {
            assert!(
                matches!(split_block(bad.as_bytes()), Err(Error::Corruption(_))),
                "{bad}"
            );
        }
        let mut not_utf8 = BLOCK_OPEN.as_bytes().to_vec();
        not_utf8.extend_from_slice(b"<document id=\"\xff\"/></block>");
        assert!(matches!(split_block(&not_utf8), Err(Error::Corruption(_))));
        // What is inside an entry is not read when the block is split (its checksum
        // covers it), but when the document is decoded.
        let inside = "<block xmlns:t=\"urn:tissdb\"><document id=\"a\"><x></y></document></block>";
        let parts = split_block(inside.as_bytes()).unwrap().unwrap();
        assert_eq!(
            parts,
            vec![(
                "a".to_string(),
                Some("<document id=\"a\"><x></y></document>")
            )]
        );
        assert!(matches!(
            decode_block_entry(inside.as_bytes(), "a"),
            Err(Error::Corruption(_))
        ));
        assert_eq!(BLOCK_OPEN, format!("<block{}>", ns_decl()));
    }

    #[test]
    fn records_encode_as_their_documents_do() {
        let body = awkward();
        let nested = obj(vec![
            (
                "features",
                Value::Array(vec![s("a"), Value::Array(vec![s("b")])]),
            ),
            ("a b", Value::Array(vec![Value::Object(Box::default())])),
            ("items", Value::Array(vec![])),
            ("n", Value::Int(-7)),
        ]);
        let empty = Object::default();
        let docs: Vec<(&str, Option<&Object>)> = vec![
            ("k1", Some(&body)),
            ("k2", None),
            ("\u{1}", Some(&nested)),
            ("k3", Some(&empty)),
        ];
        let records: Vec<Option<Vec<u8>>> = docs
            .iter()
            .map(|(_, d)| d.map(crate::doc::binary::encode_object))
            .collect();
        let encoded: Vec<(&str, Option<&[u8]>)> = docs
            .iter()
            .zip(&records)
            .map(|((id, _), r)| (*id, r.as_deref()))
            .collect();
        assert_eq!(encode_block_records(&encoded).unwrap(), encode_block(&docs));
        // A truncated or overlong record is refused, not written.
        let record = records[0].clone().unwrap();
        for bad in [
            &record[..record.len() - 1],
            &[record.as_slice(), &[0]].concat(),
        ] {
            assert!(encode_block_records(&[("k", Some(bad))]).is_err());
        }
    }

    #[test]
    fn corrupt_blocks() {
        for bad in [
            "",
            "<document id=\"a\"/>",
            "<block xmlns:t=\"urn:tissdb\"><document/></block>",
            "<block xmlns:t=\"urn:tissdb\"><tombstone/></block>",
            "<block xmlns:t=\"urn:tissdb\"><tombstone id=\"a\"><x/></tombstone></block>",
            "<block xmlns:t=\"urn:tissdb\"><other id=\"a\"/></block>",
            "<block xmlns:t=\"urn:tissdb\"><document id=\"a\">",
        ] {
            assert!(
                matches!(decode_block(bad.as_bytes()), Err(Error::Corruption(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_and_singulars() {
        assert!(is_plain_name("features"));
        assert!(is_plain_name("_x-1.é"));
        for bad in [
            "",
            "1abc",
            "a:b",
            "hello world",
            "xmlfoo",
            "XmlA",
            "-a",
            ".a",
            "#text",
        ] {
            assert!(!is_plain_name(bad), "{bad}");
        }
        assert_eq!(singular("features"), "feature");
        assert_eq!(singular("reviews"), "review");
        assert_eq!(singular("s"), "item");
        assert_eq!(singular("matrix"), "item");
        assert_eq!(singular("hello worlds"), "item");
        assert_eq!(singular("xmls"), "item");
    }

    #[test]
    fn deep_values_write_without_recursion() {
        let mut v = Value::Int(1);
        for _ in 0..5_000 {
            v = Value::Array(vec![v]);
        }
        let body = obj(vec![("deep", v)]);
        let xml = encode_block(&[("k", Some(&body))]);
        assert!(xml.len() > 5_000 * 20);
        // Deeper than a block may be: refused on reading, cleanly.
        assert!(matches!(
            decode_block(xml.as_bytes()),
            Err(Error::Corruption(_))
        ));
        // Tear down iteratively.
        let mut cur = body.into_iter().next().map(|(_, v)| v);
        while let Some(Value::Array(mut items)) = cur {
            cur = items.pop();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn block_round_trip_prop(bodies in prop::collection::vec(prop::option::of(arb_object()), 0..4)) {
            let ids: Vec<String> = (0..bodies.len()).map(|i| format!("id{i}")).collect();
            let entries: Vec<(&str, Option<&Object>)> =
                ids.iter().zip(&bodies).map(|(id, b)| (id.as_str(), b.as_ref())).collect();
            let xml = encode_block(&entries);
            let back = decode_block(xml.as_bytes());
            prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), xml);
            let back = back.unwrap_or_default();
            prop_assert_eq!(back.len(), entries.len());
            for ((id, body), (back_id, back_body)) in entries.iter().zip(&back) {
                prop_assert_eq!(*id, back_id.as_str());
                let alone = decode_block_entry(xml.as_bytes(), id);
                prop_assert!(matches!(&alone, Ok(Some(_))), "{:?}", alone);
                let alone = alone.ok().flatten().flatten();
                prop_assert_eq!(alone.is_some(), back_body.is_some());
                match (body, back_body) {
                    (Some(a), Some(b)) => prop_assert!(same_object(a, b), "{:?}\n{}\n{:?}", a, xml, b),
                    (None, None) => {}
                    _ => prop_assert!(false, "tombstone mismatch"),
                }
            }
        }

        #[test]
        fn blocks_read_for_one_field_are_the_whole_blocks_cut_to_it(
            entries in prop::collection::vec((any::<String>(), prop::option::of(arb_object())), 0..4)
        ) {
            let objects: Vec<(&str, Option<&Object>)> =
                entries.iter().map(|(id, b)| (id.as_str(), b.as_ref())).collect();
            let xml = encode_block(&objects);
            let whole = decode_block(xml.as_bytes());
            prop_assert!(whole.is_ok(), "{:?}", whole.err());
            let whole = whole.unwrap_or_default();
            let mut names: Vec<String> = entries
                .iter()
                .flat_map(|(_, b)| b.iter().flat_map(|b| b.keys().cloned()))
                .collect();
            names.push("absent".into());
            for name in &names {
                let keep = std::slice::from_ref(name);
                // What the writer writes is always cut by its tags.
                prop_assert!(prune_block(xml.as_bytes(), keep).is_some(), "{}", xml);
                let kept = decode_block_keeping(xml.as_bytes(), Some(keep));
                prop_assert!(kept.is_ok(), "{:?}", kept.err());
                let kept = kept.unwrap_or_default();
                prop_assert_eq!(kept.len(), whole.len());
                for ((id, doc), (whole_id, whole_doc)) in kept.iter().zip(&whole) {
                    prop_assert_eq!(id, whole_id);
                    prop_assert_eq!(doc.is_some(), whole_doc.is_some());
                    if let (Some(doc), Some(whole_doc)) = (doc, whole_doc) {
                        let cut = |d: &Object| {
                            let mut d = d.clone();
                            d.retain(|k, _| k == name);
                            d
                        };
                        prop_assert!(same_object(&cut(doc), &cut(whole_doc)), "{} in {}", name, xml);
                    }
                }
            }
            let keys_only = decode_block_keeping(xml.as_bytes(), Some(&[]));
            prop_assert!(keys_only.is_ok(), "{:?}", keys_only.err());
            let keys_only: Vec<(String, bool)> = keys_only
                .unwrap_or_default()
                .into_iter()
                .map(|(id, d)| (id, d.is_some()))
                .collect();
            let expected: Vec<(String, bool)> =
                whole.iter().map(|(id, d)| (id.clone(), d.is_some())).collect();
            prop_assert_eq!(keys_only, expected);
        }

        #[test]
        fn byte_checks_agree_with_character_checks(
            text in prop_oneof![any::<String>(), "[a-zA-Z_:.\\-0-9\u{FFFE}\u{FFFF}\u{1}\t é]{0,8}"]
        ) {
            prop_assert_eq!(xml_safe(&text), text.chars().all(is_xml_char));
            let mut chars = text.chars();
            let by_chars = chars.next().is_some_and(is_name_start)
                && chars.all(is_name_char)
                && !text.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"));
            prop_assert_eq!(is_plain_name(&text), by_chars);
            let (mut escaped, mut by_char) = (String::new(), String::new());
            push_text(&mut escaped, &text);
            for c in text.chars() {
                match c {
                    '&' => by_char.push_str("&amp;"),
                    '<' => by_char.push_str("&lt;"),
                    '>' => by_char.push_str("&gt;"),
                    '\r' => by_char.push_str("&#13;"),
                    c => by_char.push(c),
                }
            }
            prop_assert_eq!(escaped, by_char);
        }

        #[test]
        fn records_encode_to_the_same_block_prop(
            entries in prop::collection::vec((any::<String>(), prop::option::of(arb_object())), 0..4)
        ) {
            let objects: Vec<(&str, Option<&Object>)> =
                entries.iter().map(|(id, b)| (id.as_str(), b.as_ref())).collect();
            let records: Vec<Option<Vec<u8>>> = entries
                .iter()
                .map(|(_, b)| b.as_ref().map(crate::doc::binary::encode_object))
                .collect();
            let encoded: Vec<(&str, Option<&[u8]>)> = entries
                .iter()
                .zip(&records)
                .map(|((id, _), r)| (id.as_str(), r.as_deref()))
                .collect();
            let from_records = encode_block_records(&encoded);
            prop_assert!(from_records.is_ok(), "{:?}", from_records.err());
            prop_assert_eq!(from_records.unwrap_or_default(), encode_block(&objects));
        }

        #[test]
        fn split_blocks_write_back_the_same_prop(
            entries in prop::collection::vec((any::<String>(), prop::option::of(arb_object())), 0..4)
        ) {
            let entries: Vec<(&str, Option<&Object>)> =
                entries.iter().map(|(id, b)| (id.as_str(), b.as_ref())).collect();
            let xml = encode_block(&entries);
            let parts = split_block(xml.as_bytes());
            prop_assert!(matches!(parts, Ok(Some(_))), "{:?}\n{}", parts.err(), xml);
            let parts = parts.ok().flatten().unwrap_or_default();
            prop_assert_eq!(parts.len(), entries.len());
            for ((id, element), (want_id, body)) in parts.iter().zip(&entries) {
                prop_assert_eq!(id.as_str(), *want_id);
                prop_assert_eq!(element.is_some(), body.is_some());
            }
            prop_assert_eq!(split_and_rewrite(&xml), xml);
        }

        #[test]
        fn document_round_trip_prop(body in arb_object(), id in any::<String>()) {
            let xml = write_document(&id, &body);
            let back = parse_document(xml.as_bytes(), &limits());
            prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), xml);
            let mut expected = obj(vec![("id", s(&id))]);
            expected.extend(body.into_iter().filter(|(k, _)| k != "id"));
            let back = back.unwrap_or_default();
            prop_assert!(same_object(&back, &expected), "{}\n{:?}", xml, back);
        }

        #[test]
        fn value_round_trip_prop(v in arb_value()) {
            let body = obj(vec![("v", v)]);
            let xml = encode_block(&[("k", Some(&body))]);
            let back = decode_block(xml.as_bytes());
            prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), xml);
            let back = back.unwrap_or_default();
            let got = back.first().and_then(|(_, b)| b.as_ref());
            prop_assert!(got.is_some_and(|b| same_object(b, &body)), "{}\n{:?}", xml, got);
        }

        #[test]
        fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_document(&bytes, &limits());
            let _ = decode_block(&bytes);
        }

        #[test]
        fn mutated_xml_never_panics(body in arb_object(), cut in any::<prop::sample::Index>()) {
            let xml = write_document("x", &body);
            let at = cut.index(xml.len() + 1);
            let _ = parse_document(xml.as_bytes().get(..at).unwrap_or_default(), &limits());
        }
    }
}
