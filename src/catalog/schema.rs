//! Collection schemas: declared columns of tables, observed fields of schemaless
//! collections, and how both are stored in catalog entries.

use crate::doc::{Object, Value};
use crate::error::{Error, Result};
use crate::query::types::SqlType;
use crate::storage::keys;

use super::Collection;
use super::foreign_keys::ForeignKey;
use super::indexes::IndexDef;

/// Whether a collection has a declared schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Made by `PUT /<c>` or `CREATE COLLECTION`: any document goes.
    Schemaless,
    /// Made by `CREATE TABLE`: columns, types and constraints are enforced.
    Table,
}

/// How a collection's document ids are spelled in its storage keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyForm {
    /// The key value's text: a schemaless collection's ids, a text primary key, and the
    /// integer keys of tables made before ordered keys existed.
    #[default]
    Text,
    /// The ordered form of an integer primary key ([`crate::storage::keys::integer_id`]): the table's
    /// documents lie in key order.
    Integer,
}

impl KeyForm {
    /// The form a table created now gets for a primary key of type `ty`.
    pub fn for_key_type(ty: &SqlType) -> KeyForm {
        match ty {
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => KeyForm::Integer,
            _ => KeyForm::Text,
        }
    }

    /// The id of the document whose key is `v` (None for NULL, and for a value no
    /// integer key can equal, such as 2.5 or 'x').
    pub fn document_id(self, v: &Value) -> Option<String> {
        match self {
            KeyForm::Text => crate::query::expr::as_text(v),
            KeyForm::Integer => integer_key(v).map(keys::integer_id),
        }
    }

    /// The key value a document id spells: what [`KeyForm::document_id`] made it from
    /// (the id itself, as text, for text keys).
    pub fn key_value(self, id: &str) -> Value {
        match self {
            KeyForm::Integer => {
                keys::integer_of_id(id).map_or_else(|| Value::String(id.to_string()), Value::Int)
            }
            KeyForm::Text => Value::String(id.to_string()),
        }
    }

    /// A document id as a user reads it: the key value's text.
    pub fn id_text(self, id: &str) -> std::borrow::Cow<'_, str> {
        match self {
            KeyForm::Integer => {
                keys::integer_of_id(id).map_or_else(|| id.into(), |n| n.to_string().into())
            }
            KeyForm::Text => id.into(),
        }
    }

    /// The document id a user's id text names (a REST path's): the text itself for text
    /// keys; for integer keys its ordered form, None unless it is an integer as the key
    /// reads back (`01`, `+1` and ` 1` name no key, as they would not as text keys).
    pub fn stored_id(self, text: &str) -> Option<String> {
        match self {
            KeyForm::Text => Some(text.to_string()),
            KeyForm::Integer => text
                .parse::<i64>()
                .ok()
                .filter(|n| n.to_string() == text)
                .map(keys::integer_id),
        }
    }
}

/// The integer a key value equals: integers, floats and numerics without a fraction,
/// and text spelling an integer (a REST path's id).
fn integer_key(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        Value::Numeric(n) => crate::query::types::parse_decimal(n)
            .filter(|d| d.fract().is_zero())
            .and_then(|d| i64::try_from(d).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A declared column.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: SqlType,
    pub not_null: bool,
    /// The DEFAULT expression, as SQL text.
    pub default: Option<String>,
}

/// The type observed for a field of a schemaless collection: a small lattice where
/// integers and floats meet in Float and anything else that differs meets in Json.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    Null,
    Bool,
    Int,
    Float,
    Numeric,
    String,
    DateTime,
    Binary,
    Json,
}

impl Observed {
    pub fn of(v: &Value) -> Observed {
        match v {
            Value::Null => Observed::Null,
            Value::Bool(_) => Observed::Bool,
            Value::Int(_) => Observed::Int,
            Value::Float(_) => Observed::Float,
            Value::Numeric(_) => Observed::Numeric,
            Value::String(_) => Observed::String,
            Value::DateTime(_) => Observed::DateTime,
            Value::Binary(_) => Observed::Binary,
            Value::Array(_) | Value::Object(_) => Observed::Json,
        }
    }

    /// The least type holding both.
    pub fn join(self, other: Observed) -> Observed {
        use Observed::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, x) | (x, Null) => x,
            (Int, Float) | (Float, Int) | (Float, Numeric) | (Numeric, Float) => Float,
            (Int, Numeric) | (Numeric, Int) => Numeric,
            _ => Json,
        }
    }

    /// The SQL type clients see (DESIGN.md's type table).
    pub fn sql_type(self) -> SqlType {
        match self {
            Observed::Null | Observed::String => SqlType::Text,
            Observed::Bool => SqlType::Bool,
            Observed::Int => SqlType::Int8,
            Observed::Float => SqlType::Float8,
            Observed::Numeric => SqlType::Numeric,
            Observed::DateTime => SqlType::Timestamptz,
            Observed::Binary => SqlType::Bytea,
            Observed::Json => SqlType::Jsonb,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Observed::Null => "null",
            Observed::Bool => "boolean",
            Observed::Int => "integer",
            Observed::Float => "float",
            Observed::Numeric => "numeric",
            Observed::String => "string",
            Observed::DateTime => "datetime",
            Observed::Binary => "binary",
            Observed::Json => "json",
        }
    }

    fn from_name(s: &str) -> Option<Observed> {
        Some(match s {
            "null" => Observed::Null,
            "boolean" => Observed::Bool,
            "integer" => Observed::Int,
            "float" => Observed::Float,
            "numeric" => Observed::Numeric,
            "string" => Observed::String,
            "datetime" => Observed::DateTime,
            "binary" => Observed::Binary,
            "json" => Observed::Json,
            _ => return None,
        })
    }
}

/// A field of a schemaless collection and its observed type.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedField {
    pub name: String,
    pub ty: Observed,
}

/// A field inside an object field of a schemaless collection (`specs.weight`), which
/// the catalogs show as a column named by its dotted path so BI tools can pick it.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedField {
    pub path: Vec<String>,
    pub ty: Observed,
}

impl NestedField {
    /// The column name: the path, dotted.
    pub fn name(&self) -> String {
        self.path.join(".")
    }
}

/// Deepest nested field exposed as a column (`a.b.c.d`); deeper ones are reached by path.
pub const MAX_NESTED_DEPTH: usize = 4;
/// Most nested fields a collection exposes as columns; later ones are reached by path.
pub const MAX_NESTED_FIELDS: usize = 1000;

/// The nested fields after seeing `docs`, or None when nothing changes: every field of
/// an object value (not inside arrays), to [`MAX_NESTED_DEPTH`] levels, in order of first
/// appearance, with its observed type.
pub fn observe_nested(current: &[NestedField], docs: &[&Object]) -> Option<Vec<NestedField>> {
    /// `prefix` borrows the names it walks through: nothing is copied unless a field is
    /// new (the common case, every field known, allocates nothing).
    fn walk<'o>(
        object: &'o Object,
        prefix: &mut Vec<&'o str>,
        current: &[NestedField],
        next: &mut Option<Vec<NestedField>>,
    ) {
        for (name, value) in object.iter() {
            prefix.push(name);
            let seen = Observed::of(value);
            let fields = next.as_deref().unwrap_or(current);
            let at_prefix = |f: &NestedField| {
                f.path.len() == prefix.len()
                    && f.path.iter().zip(prefix.iter()).all(|(a, b)| a == b)
            };
            match fields.iter().position(at_prefix) {
                Some(i) => {
                    let joined = fields[i].ty.join(seen);
                    if joined != fields[i].ty {
                        let list = next.get_or_insert_with(|| current.to_vec());
                        list[i].ty = joined;
                    }
                }
                None if fields.len() < MAX_NESTED_FIELDS => {
                    let list = next.get_or_insert_with(|| current.to_vec());
                    list.push(NestedField {
                        path: prefix.iter().map(|p| p.to_string()).collect(),
                        ty: seen,
                    });
                }
                None => {}
            }
            if let Value::Object(inner) = value
                && prefix.len() < MAX_NESTED_DEPTH
            {
                walk(inner, prefix, current, next);
            }
            prefix.pop();
        }
    }
    let mut next: Option<Vec<NestedField>> = None;
    let mut prefix: Vec<&str> = Vec::new();
    for doc in docs {
        for (name, value) in doc.iter() {
            if let Value::Object(inner) = value
                && name != "id"
            {
                prefix.clear();
                prefix.push(name);
                walk(inner, &mut prefix, current, &mut next);
            }
        }
    }
    next
}

/// The observed fields after seeing `docs`, or None when nothing changes.
pub fn observe(current: &[ObservedField], docs: &[&Object]) -> Option<Vec<ObservedField>> {
    let mut next: Option<Vec<ObservedField>> = None;
    for doc in docs {
        for (name, value) in doc.iter() {
            if name == "id" {
                continue;
            }
            let fields = next.as_deref().unwrap_or(current);
            let seen = Observed::of(value);
            match fields.iter().position(|f| f.name == *name) {
                Some(i) => {
                    let joined = fields[i].ty.join(seen);
                    if joined != fields[i].ty {
                        let list = next.get_or_insert_with(|| current.to_vec());
                        list[i].ty = joined;
                    }
                }
                None => {
                    let list = next.get_or_insert_with(|| current.to_vec());
                    list.push(ObservedField {
                        name: name.clone(),
                        ty: seen,
                    });
                }
            }
        }
    }
    next
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

/// The catalog entry of a collection.
pub fn encode_entry(c: &Collection) -> Object {
    let mut o = Object::default();
    o.insert("collection_id".into(), Value::Int(i64::from(c.id)));
    o.insert("created_at".into(), Value::DateTime(c.created_at));
    o.insert(
        "kind".into(),
        text(match c.kind {
            Kind::Schemaless => "collection",
            Kind::Table => "table",
        }),
    );
    let columns = c
        .columns
        .iter()
        .map(|col| {
            let mut o = Object::default();
            o.insert("name".into(), text(&col.name));
            o.insert("type".into(), text(&col.ty.name()));
            o.insert("not_null".into(), Value::Bool(col.not_null));
            o.insert(
                "default".into(),
                col.default.as_deref().map_or(Value::Null, text),
            );
            Value::Object(Box::new(o))
        })
        .collect();
    o.insert("columns".into(), Value::Array(columns));
    o.insert(
        "primary_key".into(),
        c.primary_key.as_deref().map_or(Value::Null, text),
    );
    o.insert(
        "format".into(),
        c.format.as_deref().map_or(Value::Null, text),
    );
    if c.key_form == KeyForm::Integer {
        o.insert("key_form".into(), text("integer"));
    }
    let observed = c
        .observed
        .iter()
        .map(|f| {
            let mut o = Object::default();
            o.insert("name".into(), text(&f.name));
            o.insert("type".into(), text(f.ty.name()));
            Value::Object(Box::new(o))
        })
        .collect();
    o.insert("observed".into(), Value::Array(observed));
    if !c.nested.is_empty() {
        let nested = c
            .nested
            .iter()
            .map(|f| {
                let mut o = Object::default();
                o.insert(
                    "path".into(),
                    Value::Array(f.path.iter().map(|p| text(p)).collect()),
                );
                o.insert("type".into(), text(f.ty.name()));
                Value::Object(Box::new(o))
            })
            .collect();
        o.insert("nested".into(), Value::Array(nested));
    }
    o.insert(
        "indexes".into(),
        Value::Array(
            c.indexes
                .iter()
                .filter(|i| i.ready)
                .map(IndexDef::encode)
                .collect(),
        ),
    );
    // Optional: entries written before foreign keys existed have none.
    if !c.foreign_keys.is_empty() {
        o.insert(
            "foreign_keys".into(),
            Value::Array(c.foreign_keys.iter().map(ForeignKey::encode).collect()),
        );
    }
    o
}

fn corrupt(name: &str, what: &str) -> Error {
    Error::Corruption(format!("catalog entry {name:?}: {what}"))
}

fn opt_text(o: &Object, key: &str) -> Option<String> {
    match o.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Parses a stored type name (`SqlType::name` output).
fn parse_type(name: &str) -> Result<SqlType> {
    if let Some(rest) = name.strip_prefix("character varying(") {
        let n = rest
            .trim_end_matches(')')
            .parse::<u32>()
            .map_err(|_| Error::Corruption(format!("bad stored type {name:?}")))?;
        return Ok(SqlType::Varchar(Some(n)));
    }
    if let Some(rest) = name.strip_prefix("numeric(") {
        let args: Vec<u32> = rest
            .trim_end_matches(')')
            .split(',')
            .map(|a| a.trim().parse::<u32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::Corruption(format!("bad stored type {name:?}")))?;
        return SqlType::from_name("numeric", &args);
    }
    SqlType::from_name(name, &[])
}

/// Reads a catalog entry back.
pub fn decode_entry(name: &str, o: &Object) -> Result<Collection> {
    let id = match o.get("collection_id") {
        Some(Value::Int(i)) => u32::try_from(*i).map_err(|_| corrupt(name, "id out of range"))?,
        _ => return Err(corrupt(name, "no collection_id")),
    };
    let created_at = match o.get("created_at") {
        Some(Value::DateTime(t)) => *t,
        _ => 0,
    };
    let kind = match opt_text(o, "kind").as_deref() {
        Some("table") => Kind::Table,
        _ => Kind::Schemaless,
    };
    let mut columns = Vec::new();
    if let Some(Value::Array(items)) = o.get("columns") {
        for item in items {
            let Value::Object(c) = item else {
                return Err(corrupt(name, "column is not an object"));
            };
            columns.push(ColumnDef {
                name: opt_text(c, "name").ok_or_else(|| corrupt(name, "column without name"))?,
                ty: parse_type(&opt_text(c, "type").unwrap_or_default())?,
                not_null: matches!(c.get("not_null"), Some(Value::Bool(true))),
                default: opt_text(c, "default"),
            });
        }
    }
    let mut observed = Vec::new();
    if let Some(Value::Array(items)) = o.get("observed") {
        for item in items {
            let Value::Object(f) = item else {
                return Err(corrupt(name, "observed field is not an object"));
            };
            observed.push(ObservedField {
                name: opt_text(f, "name").ok_or_else(|| corrupt(name, "field without name"))?,
                ty: opt_text(f, "type")
                    .as_deref()
                    .and_then(Observed::from_name)
                    .ok_or_else(|| corrupt(name, "field without type"))?,
            });
        }
    }
    let mut nested = Vec::new();
    if let Some(Value::Array(items)) = o.get("nested") {
        for item in items {
            let Value::Object(f) = item else {
                return Err(corrupt(name, "nested field is not an object"));
            };
            let path = match f.get("path") {
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(corrupt(name, "nested field path is not text")),
                    })
                    .collect::<Result<Vec<_>>>()?,
                _ => return Err(corrupt(name, "nested field without path")),
            };
            nested.push(NestedField {
                path,
                ty: opt_text(f, "type")
                    .as_deref()
                    .and_then(Observed::from_name)
                    .ok_or_else(|| corrupt(name, "field without type"))?,
            });
        }
    }
    let mut indexes = Vec::new();
    if let Some(Value::Array(items)) = o.get("indexes") {
        for item in items {
            indexes.push(IndexDef::decode(item)?);
        }
    }
    let mut foreign_keys = Vec::new();
    if let Some(Value::Array(items)) = o.get("foreign_keys") {
        for item in items {
            foreign_keys.push(ForeignKey::decode(item)?);
        }
    }
    Ok(Collection {
        id,
        name: name.to_string(),
        created_at,
        kind,
        columns,
        primary_key: opt_text(o, "primary_key"),
        key_form: match opt_text(o, "key_form").as_deref() {
            None => KeyForm::Text,
            Some("integer") => KeyForm::Integer,
            Some(other) => return Err(corrupt(name, &format!("unknown key form {other:?}"))),
        },
        format: opt_text(o, "format"),
        observed,
        nested,
        indexes,
        foreign_keys,
    })
}

impl Collection {
    /// The names of [`Collection::sql_columns`], in order, without copying them.
    pub fn sql_column_names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self.kind {
            Kind::Schemaless => {
                Box::new(std::iter::once("id").chain(self.observed.iter().map(|f| f.name.as_str())))
            }
            Kind::Table => Box::new(self.columns.iter().map(|c| c.name.as_str())),
        }
    }

    /// How many [`Collection::sql_columns`] there are.
    pub fn sql_column_count(&self) -> usize {
        match self.kind {
            Kind::Schemaless => 1 + self.observed.len(),
            Kind::Table => self.columns.len(),
        }
    }

    /// The columns a SQL query sees: `id` then the observed fields for a schemaless
    /// collection, the declared columns for a table.
    pub fn sql_columns(&self) -> Vec<(String, SqlType)> {
        match self.kind {
            Kind::Schemaless => std::iter::once(("id".to_string(), SqlType::Text))
                .chain(
                    self.observed
                        .iter()
                        .map(|f| (f.name.clone(), f.ty.sql_type())),
                )
                .collect(),
            Kind::Table => self
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.ty.clone()))
                .collect(),
        }
    }

    /// A stable OID for the collection as a relation.
    pub fn oid(&self) -> u32 {
        16_384 + self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested fields in order of first appearance, to MAX_NESTED_DEPTH levels, their
    /// types joined; a document with nothing new changes nothing.
    #[test]
    fn nested_fields_are_observed_once_each() {
        let obj = |fields: Vec<(&str, Value)>| {
            let mut o = Object::default();
            for (k, v) in fields {
                o.insert(k.into(), v);
            }
            o
        };
        let deep = obj(vec![(
            "b",
            Value::Object(Box::new(obj(vec![(
                "c",
                Value::Object(Box::new(obj(vec![("d", Value::Int(1))]))),
            )]))),
        )]);
        let doc = obj(vec![
            (
                "id",
                Value::Object(Box::new(obj(vec![("x", Value::Int(1))]))),
            ),
            (
                "specs",
                Value::Object(Box::new(obj(vec![
                    ("weight", Value::String("850g".into())),
                    (
                        "dims",
                        Value::Object(Box::new(obj(vec![("w", Value::Int(110))]))),
                    ),
                ]))),
            ),
            ("a", Value::Object(Box::new(deep))),
        ]);
        let first = observe_nested(&[], &[&doc]).unwrap();
        let paths: Vec<String> = first.iter().map(|f| f.path.join(".")).collect();
        assert_eq!(
            paths,
            [
                "specs.weight",
                "specs.dims",
                "specs.dims.w",
                "a.b",
                "a.b.c",
                "a.b.c.d"
            ]
        );
        assert_eq!(first[2].ty, Observed::Int);
        assert_eq!(observe_nested(&first, &[&doc]), None, "nothing new");
        // A float where an integer was: the type joins, the list keeps its order.
        let other = obj(vec![(
            "specs",
            Value::Object(Box::new(obj(vec![(
                "dims",
                Value::Object(Box::new(obj(vec![("w", Value::Float(1.5))]))),
            )]))),
        )]);
        let joined = observe_nested(&first, &[&other]).unwrap();
        assert_eq!(joined.len(), first.len());
        assert_eq!(joined[2].ty, Observed::Int.join(Observed::Float));
        assert_ne!(joined[2].ty, Observed::Int);
    }

    #[test]
    fn observed_types_join() {
        let mut a = Object::default();
        a.insert("price".into(), Value::Int(5));
        a.insert("tags".into(), Value::Null);
        let first = observe(&[], &[&a]).unwrap();
        assert_eq!(first[0].ty, Observed::Int);
        assert_eq!(observe(&first, &[&a]), None, "nothing new");
        let mut b = Object::default();
        b.insert("price".into(), Value::Float(5.5));
        b.insert("tags".into(), Value::Array(vec![]));
        b.insert("name".into(), Value::String("x".into()));
        let next = observe(&first, &[&b]).unwrap();
        let types: Vec<_> = next.iter().map(|f| (f.name.as_str(), f.ty)).collect();
        assert_eq!(
            types,
            vec![
                ("price", Observed::Float),
                ("tags", Observed::Json),
                ("name", Observed::String)
            ]
        );
        assert_eq!(Observed::String.join(Observed::Int), Observed::Json);
    }

    /// A table's key form survives its catalog entry; an entry written before key forms
    /// existed reads as text keys (its documents are stored under the keys' text), and
    /// an unknown form is corruption, not a guess.
    #[test]
    fn key_forms_are_stored_and_older_entries_read_as_text() {
        let table = Collection {
            id: 7,
            name: "t".into(),
            created_at: 0,
            kind: Kind::Table,
            columns: vec![ColumnDef {
                name: "id".into(),
                ty: SqlType::Int8,
                not_null: true,
                default: None,
            }],
            primary_key: Some("id".into()),
            key_form: KeyForm::Integer,
            format: None,
            observed: Vec::new(),
            nested: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
        };
        let mut entry = encode_entry(&table);
        assert_eq!(decode_entry("t", &entry).unwrap(), table);
        entry.swap_remove("key_form");
        let older = decode_entry("t", &entry).unwrap();
        assert_eq!(older.key_form, KeyForm::Text);
        assert_eq!(older.document_id(&Value::Int(12)).as_deref(), Some("12"));
        assert_eq!(table.document_id(&Value::Int(12)).as_deref(), Some("R12"));
        assert_eq!(table.key_value("R12"), Value::Int(12));
        assert_eq!(table.id_text("R12"), "12");
        assert_eq!(table.stored_id("12").as_deref(), Some("R12"));
        assert_eq!(table.stored_id("012"), None);
        assert_eq!(table.document_id(&Value::Float(2.5)), None);
        entry.insert("key_form".into(), Value::String("roman".into()));
        assert!(decode_entry("t", &entry).is_err());
    }
}
