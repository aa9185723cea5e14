//! Index definitions: which fields (top-level or nested paths) an index covers, how a
//! document becomes its index entry, and how definitions are stored in catalog entries.
//!
//! A document's entry holds the value at each path (NULL where the path is missing or
//! goes through something that is not an object, as `a.b` does in SQL), so every document
//! has exactly one entry per index and `IS NULL` can use the index.

use crate::doc::keycode::encode_index_entry;
use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::storage::btree::MAX_KEY_LEN;

/// Most fields one index may cover.
pub const MAX_INDEX_FIELDS: usize = 32;

/// A secondary index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexDef {
    /// Never reused; names the index file.
    pub id: u32,
    pub name: String,
    /// Each field as its path (`["specs", "bluetooth_version"]`).
    pub fields: Vec<Vec<String>>,
    pub unique: bool,
    /// False while the index is being built: writers maintain it, queries do not use it.
    pub ready: bool,
}

/// The value at `path` in `doc` (NULL if absent).
pub fn value_at<'a>(doc: &'a Object, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    value_in(doc.get(first)?, rest)
}

/// The value at `path` inside `v` (`v` itself for an empty path).
pub fn value_in<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut v = v;
    for step in path {
        match v {
            Value::Object(o) => v = o.get(step)?,
            _ => return None,
        }
    }
    Some(v)
}

/// A field path as written in SQL and REST (`specs.bluetooth_version`).
pub fn dotted(path: &[String]) -> String {
    path.join(".")
}

impl IndexDef {
    /// The indexed values of `doc`.
    pub fn values(&self, doc: &Object) -> Vec<Value> {
        self.fields
            .iter()
            .map(|p| value_at(doc, p).cloned().unwrap_or(Value::Null))
            .collect()
    }

    /// The entry of document `id`; 54000 if it is too large for an index page.
    pub fn entry(&self, id: &str, doc: &Object) -> Result<Vec<u8>> {
        self.entry_of_values(id, &self.values(doc))
    }

    /// [`IndexDef::entry`] from the indexed values (as [`IndexDef::values`] gives them).
    pub fn entry_of_values(&self, id: &str, values: &[Value]) -> Result<Vec<u8>> {
        let entry = encode_index_entry(values, id);
        if entry.len() > MAX_KEY_LEN {
            return Err(Error::invalid(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "index row size {} exceeds maximum {MAX_KEY_LEN} for index \"{}\"",
                    entry.len(),
                    self.name
                ),
            ));
        }
        Ok(entry)
    }

    /// The fields, dotted, comma-separated (`brand, price`).
    pub fn field_list(&self) -> String {
        self.fields
            .iter()
            .map(|p| dotted(p))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The statement that would create it, as `pg_indexes.indexdef` shows it.
    pub fn definition(&self, table: &str) -> String {
        format!(
            "CREATE {}INDEX {} ON public.{} USING btree ({})",
            if self.unique { "UNIQUE " } else { "" },
            self.name,
            table,
            self.field_list()
        )
    }

    /// The catalog form.
    pub fn encode(&self) -> Value {
        let mut o = Object::default();
        o.insert("id".into(), Value::Int(i64::from(self.id)));
        o.insert("name".into(), Value::String(self.name.clone()));
        o.insert(
            "fields".into(),
            Value::Array(
                self.fields
                    .iter()
                    .map(|p| Value::Array(p.iter().cloned().map(Value::String).collect()))
                    .collect(),
            ),
        );
        o.insert("unique".into(), Value::Bool(self.unique));
        Value::Object(Box::new(o))
    }

    /// Reads the catalog form back.
    pub fn decode(v: &Value) -> Result<IndexDef> {
        let bad = |what: &str| Error::Corruption(format!("index definition: {what}"));
        let Value::Object(o) = v else {
            return Err(bad("not an object"));
        };
        let id = match o.get("id") {
            Some(Value::Int(i)) => u32::try_from(*i).map_err(|_| bad("id out of range"))?,
            _ => return Err(bad("no id")),
        };
        let name = match o.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(bad("no name")),
        };
        let mut fields = Vec::new();
        if let Some(Value::Array(items)) = o.get("fields") {
            for item in items {
                let Value::Array(steps) = item else {
                    return Err(bad("field is not a path"));
                };
                let path = steps
                    .iter()
                    .map(|s| match s {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(bad("path step is not text")),
                    })
                    .collect::<Result<Vec<_>>>()?;
                fields.push(path);
            }
        }
        if fields.is_empty() {
            return Err(bad("no fields"));
        }
        Ok(IndexDef {
            id,
            name,
            fields,
            unique: matches!(o.get("unique"), Some(Value::Bool(true))),
            ready: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_paths_and_default_to_null() {
        let doc = crate::doc::json::parse_document(
            br#"{"brand": "A", "specs": {"bt": "5.0"}, "tags": ["x"]}"#,
            &crate::doc::Limits { max_depth: 8 },
        )
        .unwrap();
        let def = IndexDef {
            id: 1,
            name: "i".into(),
            fields: vec![
                vec!["brand".into()],
                vec!["specs".into(), "bt".into()],
                vec!["tags".into(), "x".into()],
                vec!["missing".into()],
            ],
            unique: false,
            ready: true,
        };
        assert_eq!(
            def.values(&doc),
            vec![
                Value::String("A".into()),
                Value::String("5.0".into()),
                Value::Null,
                Value::Null
            ]
        );
        let back = IndexDef::decode(&def.encode()).unwrap();
        assert_eq!(back, def);
    }
}
