//! How a scan hands out the documents it reads: whole ([`Whole`]), or as the values of
//! named top-level fields by position ([`Columns`]), which is what a query's rows are.
//! A column may take the value a path reaches inside its field instead of the whole
//! field (`specs.weight` of a nested `specs`), so that a query reading one nested value
//! does not build the object around it.
//!
//! A shape is applied where a document is first touched: to an entry of a cached block
//! (copying only the wanted values), to a memtable record (decoding only the wanted
//! fields), and to a block decoded for the scan alone. The columns shape never builds an
//! intermediate `Object`.

use std::sync::{Arc, OnceLock};

use crate::doc::path::{PathStep, follow_path, follow_path_ref};
use crate::doc::{Object, Value, binary};
use crate::error::Result;
use crate::storage::recycle;
use crate::storage::segment::Layout;

/// A way of handing out documents.
pub trait Shape: Clone + Send + Sync + 'static {
    /// What each document becomes.
    type Doc: Send + 'static;
    /// From a document held elsewhere (a cached block).
    fn shape_ref(&mut self, doc: &Object) -> Self::Doc;
    /// From a document the scan owns.
    fn shape_owned(&mut self, doc: Object) -> Self::Doc;
    /// From a memtable record (the binary encoding of an object).
    fn shape_record(&mut self, bytes: &[u8]) -> Result<Self::Doc>;
    /// The fields to decode of blocks decoded for this scan only (None: all of them).
    fn fields(&self) -> Option<&[String]>;
    /// Whether a point read that finds its block neither cached nor decoded decodes the
    /// whole block into the cache (true: the next reads of the block are cheap), or
    /// only looks for its one entry and keeps nothing (false: for a check that most
    /// often finds nothing, where the block got there through a bloom filter's false
    /// positive).
    fn decodes_blocks(&self) -> bool {
        true
    }
}

/// Documents whole.
#[derive(Clone, Copy, Debug, Default)]
pub struct Whole;

impl Shape for Whole {
    type Doc = Object;
    fn shape_ref(&mut self, doc: &Object) -> Object {
        doc.clone()
    }
    fn shape_owned(&mut self, doc: Object) -> Object {
        doc
    }
    fn shape_record(&mut self, bytes: &[u8]) -> Result<Object> {
        binary::decode_object(bytes)
    }
    fn fields(&self) -> Option<&[String]> {
        None
    }
}

/// Only whether a document is there: nothing of it is decoded, and a block not cached
/// yet is searched for the one key, not decoded and cached (the duplicate-id check of
/// an insert: the key is new, and a segment's bloom filter lets about 1% of such
/// lookups through to a block).
#[derive(Clone, Copy, Debug, Default)]
pub struct Presence;

impl Shape for Presence {
    type Doc = ();
    fn shape_ref(&mut self, _: &Object) {}
    fn shape_owned(&mut self, _: Object) {}
    fn shape_record(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn fields(&self) -> Option<&[String]> {
        Some(&[])
    }
    fn decodes_blocks(&self) -> bool {
        false
    }
}

/// The values of named top-level fields, by position: slot `i` holds the field
/// `slots[i]` names (NULL when the document lacks it, and always NULL for a slot that
/// names no field).
#[derive(Clone, Debug)]
pub struct Columns {
    slots: Arc<Vec<Option<String>>>,
    /// The named fields, for decoders that take a list.
    names: Arc<Vec<String>>,
    /// Per slot, the path inside its field to take (empty: the whole field).
    paths: Arc<Vec<Vec<PathStep>>>,
    /// Per slot, whether it takes its field's value encoded, undecoded (see
    /// [`binary::encoded_value`]; empty: none does).
    encoded: Arc<Vec<bool>>,
    /// Per slot, where its field was in the last document: documents of one table (or
    /// one block) mostly keep their fields in one order, and checking that position is
    /// cheaper than hashing the name.
    hints: Vec<usize>,
    /// Per field position in the last record decoded (up to [`HINTED_FIELDS`]), what
    /// the field there was: records of one table keep their fields in one order, so one
    /// name comparison usually tells a field's slot, or that it fills none.
    record_hints: Vec<FieldHint>,
    /// The record hints of the first record any clone of this shape decoded: a kept
    /// plan clones its shape for each execution, and a point read decodes one record,
    /// so without them every execution would start without hints.
    first_hints: Arc<OnceLock<Vec<FieldHint>>>,
    /// How many distinct fields the slots name: a record is read only until it has
    /// given them all.
    wanted: usize,
    /// The layout of the block whose records were decoded last
    /// ([`Columns::shape_laid_out_into`]), and per field position in it the slot that
    /// field fills.
    laid_out: Option<(Arc<Layout>, Vec<Option<usize>>)>,
    /// Per slot, whether the record being decoded filled it (a buffer kept between
    /// records).
    written: Vec<bool>,
}

/// Field positions of a record whose slots [`Columns`] remembers.
const HINTED_FIELDS: usize = 64;

/// What the field at one position of the last record decoded was.
#[derive(Clone, Copy, Debug, PartialEq)]
enum FieldHint {
    /// Not known (not seen yet, or an unwanted field with a long name).
    Unknown,
    /// A field that filled this slot.
    Slot(usize),
    /// A field of this name that filled no slot.
    Unwanted(ShortName),
}

/// A field name of up to 15 bytes held in place (its length, then its bytes), compared
/// in two words.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ShortName([u8; 16]);

impl ShortName {
    fn of(name: &[u8]) -> Option<ShortName> {
        let len = u8::try_from(name.len()).ok().filter(|l| *l < 16)?;
        let mut held = [0u8; 16];
        held[0] = len;
        held.get_mut(1..=name.len())?.copy_from_slice(name);
        Some(ShortName(held))
    }

    /// Whether this is `name`, compared in place: no copy of `name` (a copy's bytes,
    /// stored one size and loaded as words, stall the load behind the stores).
    #[inline]
    fn is(&self, name: &[u8]) -> bool {
        let [len, bytes @ ..] = &self.0;
        usize::from(*len) == name.len()
            && bytes
                .get(..name.len())
                .is_some_and(|held| same_name(held, name))
    }
}

/// Whether two field names are equal; names are short, and comparing them in place
/// costs less than a call to `memcmp`.
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The slot of field `name` in `slots`, if one names it.
fn slot_of(slots: &[Option<String>], name: &[u8]) -> Option<usize> {
    slots
        .iter()
        .position(|s| s.as_ref().is_some_and(|s| same_name(s.as_bytes(), name)))
}

impl Columns {
    pub fn new(slots: Vec<Option<String>>) -> Columns {
        Columns::with_paths(slots, Vec::new())
    }

    /// Slots that take the value at a path inside their field: `paths[i]` for slot `i`
    /// (slots past the end of `paths`, or with an empty path, take the whole field).
    pub fn with_paths(slots: Vec<Option<String>>, mut paths: Vec<Vec<PathStep>>) -> Columns {
        let names: Vec<String> = slots.iter().flatten().cloned().collect();
        let wanted = names
            .iter()
            .enumerate()
            .filter(|(i, n)| !names.iter().take(*i).any(|m| m == *n))
            .count();
        paths.resize(slots.len(), Vec::new());
        Columns {
            hints: vec![0; slots.len()],
            record_hints: Vec::new(),
            first_hints: Arc::default(),
            laid_out: None,
            wanted,
            written: Vec::new(),
            slots: Arc::new(slots),
            names: Arc::new(names),
            paths: Arc::new(paths),
            encoded: Arc::default(),
        }
    }

    /// These columns with the slots `encoded` picks taking their field's value in its
    /// binary encoding, undecoded ([`binary::encoded_value`]: NULL stays NULL), for a
    /// writer that reads it from there. A slot with a path keeps taking the decoded
    /// value at its path.
    pub fn with_encoded(mut self, mut encoded: Vec<bool>) -> Columns {
        encoded.resize(self.slots.len(), false);
        for (e, path) in encoded.iter_mut().zip(self.paths.iter()) {
            *e &= path.is_empty();
        }
        self.encoded = Arc::new(encoded);
        self
    }
}

impl Columns {
    /// How many values a row of these columns holds.
    pub fn width(&self) -> usize {
        self.slots.len()
    }

    /// [`Shape::shape_ref`] into `row`, overwriting the values there (strings in their
    /// buffers).
    pub fn shape_ref_into(&mut self, doc: &Object, row: &mut Vec<Value>) {
        row.resize_with(self.slots.len(), || Value::Null);
        let slots = self.slots.iter().zip(self.hints.iter_mut());
        let encoded = &self.encoded;
        let slots = slots.zip(self.paths.iter()).enumerate();
        for (out, (at, ((s, hint), path))) in row.iter_mut().zip(slots) {
            let field = s.as_ref().and_then(|name| match doc.get_index(*hint) {
                Some((k, v)) if k == name => Some(v),
                _ => doc.get_full(name).map(|(at, _, v)| {
                    *hint = at;
                    v
                }),
            });
            match field.and_then(|v| follow_path_ref(v, path)) {
                Some(v) if encoded.get(at).copied().unwrap_or(false) => {
                    binary::encoded_value_into(v, out)
                }
                Some(Value::String(text)) => recycle::put_str(out, text),
                Some(v) => *out = v.clone(),
                None => *out = Value::Null,
            }
        }
    }

    /// [`Shape::shape_record`] into `values`, overwriting the values there (strings in
    /// their buffers).
    pub fn shape_record_into(&mut self, bytes: &[u8], values: &mut Vec<Value>) -> Result<()> {
        if self.slots.is_empty() {
            // No column: the record is not read (a count of documents).
            values.clear();
            return Ok(());
        }
        self.start_record(values);
        let first = self.record_hints.is_empty();
        if first && let Some(learned) = self.first_hints.get() {
            self.record_hints.clone_from(learned);
        }
        let (slots, paths, hints) = (&self.slots, &self.paths, &mut self.record_hints);
        let encoded = &self.encoded;
        binary::decode_object_fields_into(
            bytes,
            |field, name| {
                match hints.get(field) {
                    Some(FieldHint::Slot(at)) => {
                        if let Some(Some(s)) = slots.get(*at)
                            && same_name(s.as_bytes(), name)
                        {
                            return Some(*at);
                        }
                    }
                    Some(FieldHint::Unwanted(held)) => {
                        if held.is(name) {
                            return None;
                        }
                    }
                    Some(FieldHint::Unknown) | None => {}
                }
                let found = slot_of(slots, name);
                if field < HINTED_FIELDS {
                    if hints.len() <= field {
                        hints.resize(field + 1, FieldHint::Unknown);
                    }
                    if let Some(h) = hints.get_mut(field) {
                        *h = match found {
                            Some(at) => FieldHint::Slot(at),
                            None => {
                                ShortName::of(name).map_or(FieldHint::Unknown, FieldHint::Unwanted)
                            }
                        };
                    }
                }
                found
            },
            |slot| paths.get(slot).map_or(&[], Vec::as_slice),
            |slot| encoded.get(slot).copied().unwrap_or(false),
            self.wanted,
            values,
            &mut self.written,
        )?;
        self.end_record(values);
        if first && !self.record_hints.is_empty() && self.first_hints.get().is_none() {
            let _ = self.first_hints.set(self.record_hints.clone());
        }
        Ok(())
    }

    /// [`Columns::shape_record_into`] for a record of a block with a [`Layout`]: the
    /// record's fields are the layout's, in its order, so each field's slot is known by
    /// its position (worked out once per layout) and no name is compared.
    pub fn shape_laid_out_into(
        &mut self,
        bytes: &[u8],
        layout: &Arc<Layout>,
        values: &mut Vec<Value>,
    ) -> Result<()> {
        if self.slots.is_empty() {
            values.clear();
            return Ok(());
        }
        if !matches!(&self.laid_out, Some((known, _)) if Arc::ptr_eq(known, layout)) {
            let slots: Vec<Option<usize>> = (layout.names().iter())
                .map(|name| slot_of(&self.slots, name.as_bytes()))
                .collect();
            self.laid_out = Some((layout.clone(), slots));
        }
        self.start_record(values);
        let field_slots = self
            .laid_out
            .as_ref()
            .map_or(&[][..], |(_, s)| s.as_slice());
        let (paths, encoded) = (&self.paths, &self.encoded);
        binary::decode_object_fields_into(
            bytes,
            |field, _| field_slots.get(field).copied().flatten(),
            |slot| paths.get(slot).map_or(&[], Vec::as_slice),
            |slot| encoded.get(slot).copied().unwrap_or(false),
            self.wanted,
            values,
            &mut self.written,
        )?;
        self.end_record(values);
        Ok(())
    }

    /// Readies `values` and the written flags for a record's values.
    fn start_record(&mut self, values: &mut Vec<Value>) {
        values.resize_with(self.slots.len(), || Value::Null);
        if self.written.len() == self.slots.len() {
            self.written.fill(false);
        } else {
            self.written.clear();
            self.written.resize(self.slots.len(), false);
        }
    }

    /// Slots the record did not fill are NULL (not what the reused row held).
    fn end_record(&self, values: &mut [Value]) {
        for (v, written) in values.iter_mut().zip(&self.written) {
            if !written {
                *v = Value::Null;
            }
        }
    }
}

impl Shape for Columns {
    type Doc = Vec<Value>;
    fn shape_ref(&mut self, doc: &Object) -> Vec<Value> {
        // A row handed back by the last reader, its strings overwritten in place.
        let mut row = recycle::take_row(self.slots.len());
        self.shape_ref_into(doc, &mut row);
        row
    }
    fn shape_owned(&mut self, mut doc: Object) -> Vec<Value> {
        let encoded = &self.encoded;
        self.slots
            .iter()
            .zip(self.paths.iter())
            .enumerate()
            .map(|(at, (s, path))| match s {
                Some(name) => {
                    let v = follow_path(doc.swap_remove(name).unwrap_or(Value::Null), path);
                    match encoded.get(at) {
                        Some(true) => binary::encoded_value(&v),
                        _ => v,
                    }
                }
                None => Value::Null,
            })
            .collect()
    }
    fn shape_record(&mut self, bytes: &[u8]) -> Result<Vec<Value>> {
        // A row handed back by the last reader, its strings overwritten in place.
        let mut values = recycle::take_row(self.slots.len());
        self.shape_record_into(bytes, &mut values)?;
        Ok(values)
    }
    fn fields(&self) -> Option<&[String]> {
        Some(&self.names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Object {
        let mut o = Object::default();
        o.insert("a".into(), Value::Int(1));
        o.insert("b".into(), Value::String("x".into()));
        o.insert("c".into(), Value::Bool(true));
        o
    }

    #[test]
    fn columns_agree_from_every_source() {
        let mut shape = Columns::new(vec![
            None,
            Some("c".into()),
            Some("zz".into()),
            Some("a".into()),
        ]);
        let want = vec![Value::Null, Value::Bool(true), Value::Null, Value::Int(1)];
        assert_eq!(shape.shape_ref(&doc()), want);
        // Another field order: the remembered positions miss, the names still find them.
        let mut other = Object::default();
        other.insert("a".into(), Value::Int(1));
        other.insert("c".into(), Value::Bool(true));
        assert_eq!(shape.shape_ref(&other), want);
        assert_eq!(shape.shape_ref(&doc()), want);
        assert_eq!(shape.shape_owned(doc()), want);
        assert_eq!(
            shape.shape_record(&binary::encode_object(&doc())).unwrap(),
            want
        );
        assert_eq!(
            shape.fields().unwrap(),
            &["c".to_string(), "zz".into(), "a".into()]
        );
    }

    /// Encoded slots hand on their field's encoding from every source, NULL as NULL, a
    /// missing field as NULL; a slot with a path, and the other slots, decode as before;
    /// buffers of a recycled row are written over, never appended to.
    #[test]
    fn encoded_slots_agree_from_every_source() {
        let mut nested = Object::default();
        nested.insert("k".into(), Value::Array(vec![Value::Int(7), Value::Null]));
        let mut d = doc();
        d.insert("n".into(), Value::Object(Box::new(nested.clone())));
        d.insert("nul".into(), Value::Null);
        d.insert("m".into(), Value::Object(Box::new(nested.clone())));
        let mut shape = Columns::with_paths(
            vec![
                Some("n".into()),
                Some("b".into()),
                Some("nul".into()),
                Some("missing".into()),
                Some("m".into()),
                Some("a".into()),
            ],
            vec![
                vec![],
                vec![],
                vec![],
                vec![],
                vec![PathStep::Key("k".into())],
            ],
        )
        .with_encoded(vec![true, true, true, true, true, false]);
        let encoded = |v: &Value| {
            let mut out = Vec::new();
            binary::encode(v, &mut out);
            Value::Binary(out)
        };
        let want = vec![
            encoded(&Value::Object(Box::new(nested.clone()))),
            encoded(&Value::String("x".into())),
            Value::Null,
            Value::Null,
            Value::Array(vec![Value::Int(7), Value::Null]),
            Value::Int(1),
        ];
        let record = binary::encode_object(&d);
        for _ in 0..3 {
            let row = shape.shape_record(&record).unwrap();
            assert_eq!(row, want);
            recycle::give_row(row);
            let row = shape.shape_ref(&d);
            assert_eq!(row, want);
            recycle::give_row(row);
            assert_eq!(shape.shape_owned(d.clone()), want);
        }
    }

    /// Clones of a shape start from the hints of the first record any of them decoded,
    /// and a record with its fields in another order still decodes right.
    #[test]
    fn clones_start_from_the_first_records_hints() {
        let kept = Columns::new(vec![Some("c".into()), Some("a".into())]);
        let want = vec![Value::Bool(true), Value::Int(1)];
        let record = binary::encode_object(&doc());
        let mut first = kept.clone();
        assert_eq!(first.shape_record(&record).unwrap(), want);
        let mut second = kept.clone();
        assert!(second.record_hints.is_empty());
        assert_eq!(second.shape_record(&record).unwrap(), want);
        assert_eq!(second.record_hints, first.record_hints);
        // The fields reversed: the learned hints miss, and the names still find them.
        let mut reversed = Object::default();
        for (k, v) in doc().into_iter().rev() {
            reversed.insert(k, v);
        }
        let mut third = kept.clone();
        assert_eq!(
            third
                .shape_record(&binary::encode_object(&reversed))
                .unwrap(),
            want
        );
        assert_eq!(
            kept.first_hints.get(),
            Some(&vec![
                FieldHint::Slot(1),
                FieldHint::Unwanted(ShortName::of(b"b").unwrap()),
                FieldHint::Slot(0),
            ])
        );
    }

    /// A field remembered as filling no slot is told by its name: a wanted field in
    /// its place is still found, and long names (not remembered) are looked up each
    /// time.
    #[test]
    fn fields_remembered_as_unwanted_are_checked_by_name() {
        let long = "a_field_name_longer_than_fifteen_bytes";
        let mut shape = Columns::new(vec![Some("c".into()), Some(long.into())]);
        let record = |fields: &[(&str, Value)]| {
            let mut o = Object::default();
            for (k, v) in fields {
                o.insert((*k).into(), v.clone());
            }
            binary::encode_object(&o)
        };
        let (one, two, yes) = (Value::Int(1), Value::Int(2), Value::Bool(true));
        let r1 = record(&[("a", one.clone()), (long, two.clone()), ("c", yes.clone())]);
        assert_eq!(
            shape.shape_record(&r1).unwrap(),
            vec![yes.clone(), two.clone()]
        );
        assert_eq!(
            shape.record_hints,
            vec![
                FieldHint::Unwanted(ShortName::of(b"a").unwrap()),
                FieldHint::Slot(1),
                FieldHint::Slot(0)
            ]
        );
        // "c" where "a" was, and an unwanted long name where the long wanted one was.
        let other = "b_field_name_longer_than_fifteen_bytes";
        let r2 = record(&[
            ("c", one.clone()),
            (other, two.clone()),
            (long, yes.clone()),
        ]);
        assert_eq!(
            shape.shape_record(&r2).unwrap(),
            vec![one.clone(), yes.clone()]
        );
        assert_eq!(shape.record_hints.get(1), Some(&FieldHint::Unknown));
        assert_eq!(shape.shape_record(&r2).unwrap(), vec![one, yes.clone()]);
        assert_eq!(shape.shape_record(&r1).unwrap(), vec![yes, two]);
        assert!(ShortName::of(&[b'x'; 15]).is_some() && ShortName::of(&[b'x'; 16]).is_none());
    }

    #[test]
    fn columns_take_paths_alike_from_every_source() {
        let mut inner = Object::default();
        inner.insert("w".into(), Value::Int(7));
        let mut d = doc();
        d.insert("n".into(), Value::Object(Box::new(inner)));
        let key = |k: &str| PathStep::Key(k.into());
        let mut shape = Columns::with_paths(
            vec![Some("n".into()), Some("a".into()), Some("c".into())],
            vec![vec![key("w")], vec![key("x")]],
        );
        let want = vec![Value::Int(7), Value::Null, Value::Bool(true)];
        assert_eq!(shape.shape_ref(&d), want);
        assert_eq!(shape.shape_owned(d.clone()), want);
        assert_eq!(
            shape.shape_record(&binary::encode_object(&d)).unwrap(),
            want
        );
    }
}
