//! Foreign keys: the `REFERENCES` columns a typed table declares — their definition, how
//! a declaration is checked against the collection it references when the table is
//! created, and how definitions are stored in catalog entries.
//!
//! A foreign key is one column naming the key of a document of another collection (or of
//! the same one): the referenced column is always the referenced table's primary key, or
//! `id` for a schemaless collection, so checking a reference is one key lookup. How the
//! references are enforced is in `references`.

use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::query::types::SqlType;

use super::{Collection, Kind};

/// Most foreign keys one table may declare (their OIDs are numbered within the table).
pub const MAX_FOREIGN_KEYS: usize = 64;

/// What deleting (or changing the key of) a referenced document does to the documents
/// that reference it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The default: the change fails while references remain (checked at the end of the
    /// statement, which is when RESTRICT checks too, since nothing is deferrable).
    NoAction,
    /// The change fails while references remain.
    Restrict,
    /// The referencing documents are deleted too.
    Cascade,
    /// The referencing column is set to NULL.
    SetNull,
}

impl Action {
    /// `pg_constraint.confdeltype` / `confupdtype`.
    pub fn code(self) -> &'static str {
        match self {
            Action::NoAction => "a",
            Action::Restrict => "r",
            Action::Cascade => "c",
            Action::SetNull => "n",
        }
    }

    /// As SQL writes it (`ON DELETE SET NULL`), and `information_schema` shows it.
    pub fn sql(self) -> &'static str {
        match self {
            Action::NoAction => "NO ACTION",
            Action::Restrict => "RESTRICT",
            Action::Cascade => "CASCADE",
            Action::SetNull => "SET NULL",
        }
    }

    fn from_sql(s: &str) -> Option<Action> {
        Some(match s {
            "NO ACTION" => Action::NoAction,
            "RESTRICT" => Action::Restrict,
            "CASCADE" => Action::Cascade,
            "SET NULL" => Action::SetNull,
            _ => return None,
        })
    }

    /// Whether the action writes the referencing documents (rather than refusing).
    pub fn writes(self) -> bool {
        matches!(self, Action::Cascade | Action::SetNull)
    }
}

/// A declared foreign key of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignKey {
    /// The constraint name (`orders_customer_id_fkey` unless given).
    pub name: String,
    /// Its number among the table's foreign keys, from 1, never reused within the table
    /// (so its OID stays the same when another is dropped).
    pub number: u32,
    /// The referencing column.
    pub column: String,
    /// The referenced collection.
    pub table: String,
    /// The referenced column: the referenced table's primary key, or `id`.
    pub ref_column: String,
    pub on_delete: Action,
    pub on_update: Action,
    /// `MATCH FULL` was given (with one column it checks exactly what MATCH SIMPLE does).
    pub match_full: bool,
}

/// A foreign key as CREATE TABLE declares it, names folded as SQL folds them.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignKeySpec {
    pub name: Option<String>,
    pub column: String,
    pub table: String,
    /// None: the referenced table's primary key.
    pub ref_column: Option<String>,
    pub on_delete: Action,
    pub on_update: Action,
    pub match_full: bool,
}

/// The type family two key columns must share: integers with integers, text with text,
/// anything else only with its own type.
fn family(t: &SqlType) -> SqlType {
    match t {
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => SqlType::Int8,
        SqlType::Text | SqlType::Varchar(_) => SqlType::Text,
        other => other.clone(),
    }
}

/// A type's name without its modifier, as PostgreSQL's messages name types.
fn bare_name(t: &SqlType) -> String {
    let name = t.name();
    match name.find('(') {
        Some(i) => name[..i].to_string(),
        None => name,
    }
}

/// Checks the foreign keys declared by the new table `table` (its columns and primary
/// key filled in) and gives them names and numbers. `lookup` finds a referenced
/// collection other than the table itself. Errors as PostgreSQL's: 42703 for an unknown
/// column, 42P01 for an unknown table (from `lookup`), 42830 when the referenced column
/// is not the referenced table's key, 42704 when it has none, 42804 for key columns of
/// incompatible types, 42710 for a constraint name used twice.
pub fn resolve(
    table: &Collection,
    specs: Vec<ForeignKeySpec>,
    lookup: impl Fn(&str) -> Result<Collection>,
) -> Result<Vec<ForeignKey>> {
    if specs.len() > MAX_FOREIGN_KEYS {
        return Err(Error::limit(format!(
            "a table may declare at most {MAX_FOREIGN_KEYS} foreign keys"
        )));
    }
    let mut out: Vec<ForeignKey> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        let column = table
            .columns
            .iter()
            .find(|c| c.name == spec.column)
            .ok_or_else(|| missing_column(&spec.column))?;
        let referenced = if spec.table == table.name {
            table.clone()
        } else {
            lookup(&spec.table)?
        };
        let key = match referenced.kind {
            Kind::Schemaless => Some(("id".to_string(), SqlType::Text)),
            Kind::Table => referenced.primary_key.as_ref().and_then(|pk| {
                referenced
                    .columns
                    .iter()
                    .find(|c| c.name == *pk)
                    .map(|c| (c.name.clone(), c.ty.clone()))
            }),
        };
        let (ref_column, ref_type) = match (spec.ref_column, key) {
            (None, Some(key)) => key,
            (None, None) => {
                return Err(Error::invalid(
                    SqlState::UNDEFINED_OBJECT,
                    format!(
                        "there is no primary key for referenced table \"{}\"",
                        referenced.name
                    ),
                ));
            }
            (Some(named), key) => {
                if !referenced.sql_columns().iter().any(|(n, _)| *n == named) {
                    return Err(missing_column(&named));
                }
                match key {
                    Some(key) if key.0 == named => key,
                    _ => {
                        return Err(Error::invalid(
                            SqlState::INVALID_FOREIGN_KEY,
                            format!(
                                "there is no unique constraint matching given keys for referenced table \"{}\"",
                                referenced.name
                            ),
                        ));
                    }
                }
            }
        };
        let name = match spec.name {
            Some(n) => {
                if out.iter().any(|f| f.name == n) {
                    return Err(Error::invalid(
                        SqlState::DUPLICATE_OBJECT,
                        format!(
                            "constraint \"{n}\" for relation \"{}\" already exists",
                            table.name
                        ),
                    ));
                }
                n
            }
            None => default_name(&table.name, &spec.column, &out),
        };
        if family(&column.ty) != family(&ref_type) {
            return Err(Error::violation(
                SqlState::DATATYPE_MISMATCH,
                format!("foreign key constraint \"{name}\" cannot be implemented"),
                format!(
                    "Key columns \"{}\" and \"{ref_column}\" are of incompatible types: {} and {}.",
                    column.name,
                    bare_name(&column.ty),
                    bare_name(&ref_type)
                ),
            ));
        }
        // ON DELETE SET NULL on a NOT NULL column is accepted, as PostgreSQL does; each
        // delete that would set the NULL fails (see `references`).
        out.push(ForeignKey {
            name,
            number: i as u32 + 1,
            column: column.name.clone(),
            table: referenced.name.clone(),
            ref_column,
            on_delete: spec.on_delete,
            on_update: spec.on_update,
            match_full: spec.match_full,
        });
    }
    Ok(out)
}

fn missing_column(name: &str) -> Error {
    Error::invalid(
        SqlState::UNDEFINED_COLUMN,
        format!("column \"{name}\" referenced in foreign key constraint does not exist"),
    )
}

/// PostgreSQL's default name, `<table>_<column>_fkey`, with a number appended when a
/// constraint of the table already has it.
fn default_name(table: &str, column: &str, taken: &[ForeignKey]) -> String {
    let base = format!("{table}_{column}_fkey");
    let used = |n: &str| taken.iter().any(|f| f.name == n) || n == format!("{table}_pkey");
    if !used(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !used(n))
        .unwrap_or(base)
}

impl ForeignKey {
    /// The catalog form.
    pub fn encode(&self) -> Value {
        let text = |s: &str| Value::String(s.to_string());
        let mut o = Object::default();
        o.insert("name".into(), text(&self.name));
        o.insert("number".into(), Value::Int(i64::from(self.number)));
        o.insert("column".into(), text(&self.column));
        o.insert("table".into(), text(&self.table));
        o.insert("ref_column".into(), text(&self.ref_column));
        o.insert("on_delete".into(), text(self.on_delete.sql()));
        o.insert("on_update".into(), text(self.on_update.sql()));
        o.insert("match_full".into(), Value::Bool(self.match_full));
        Value::Object(Box::new(o))
    }

    /// Reads the catalog form back.
    pub fn decode(v: &Value) -> Result<ForeignKey> {
        let bad = |what: &str| Error::Corruption(format!("foreign key definition: {what}"));
        let Value::Object(o) = v else {
            return Err(bad("not an object"));
        };
        let text = |key: &str| match o.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(bad(&format!("no {key}"))),
        };
        let action = |key: &str| match o.get(key) {
            None | Some(Value::Null) => Ok(Action::NoAction),
            Some(Value::String(s)) => Action::from_sql(s).ok_or_else(|| bad("unknown action")),
            Some(_) => Err(bad("action is not text")),
        };
        let number = match o.get("number") {
            Some(Value::Int(i)) => u32::try_from(*i).map_err(|_| bad("number out of range"))?,
            _ => return Err(bad("no number")),
        };
        Ok(ForeignKey {
            name: text("name")?,
            number,
            column: text("column")?,
            table: text("table")?,
            ref_column: text("ref_column")?,
            on_delete: action("on_delete")?,
            on_update: action("on_update")?,
            match_full: matches!(o.get("match_full"), Some(Value::Bool(true))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnDef;

    fn table(name: &str, cols: &[(&str, SqlType)], pk: Option<&str>) -> Collection {
        Collection {
            id: 1,
            name: name.into(),
            created_at: 0,
            kind: Kind::Table,
            columns: cols
                .iter()
                .map(|(n, t)| ColumnDef {
                    name: n.to_string(),
                    ty: t.clone(),
                    not_null: false,
                    default: None,
                })
                .collect(),
            primary_key: pk.map(str::to_string),
            key_form: crate::catalog::KeyForm::Text,
            format: None,
            observed: Vec::new(),
            nested: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
        }
    }

    fn spec(column: &str, table: &str, ref_column: Option<&str>) -> ForeignKeySpec {
        ForeignKeySpec {
            name: None,
            column: column.into(),
            table: table.into(),
            ref_column: ref_column.map(str::to_string),
            on_delete: Action::NoAction,
            on_update: Action::NoAction,
            match_full: false,
        }
    }

    #[test]
    fn resolves_names_types_and_errors_like_postgres() {
        let customers = table(
            "customers",
            &[("id", SqlType::Int4), ("name", SqlType::Text)],
            Some("id"),
        );
        let orders = table(
            "orders",
            &[
                ("id", SqlType::Int4),
                ("customer_id", SqlType::Int8),
                ("note", SqlType::Text),
            ],
            Some("id"),
        );
        let lookup = |n: &str| {
            if n == "customers" {
                Ok(customers.clone())
            } else {
                Err(Error::not_found(SqlState::UNDEFINED_TABLE, "no"))
            }
        };
        let fks = resolve(
            &orders,
            vec![
                spec("customer_id", "customers", None),
                spec("customer_id", "customers", Some("id")),
            ],
            lookup,
        )
        .unwrap();
        assert_eq!(fks[0].name, "orders_customer_id_fkey");
        assert_eq!(fks[1].name, "orders_customer_id_fkey1");
        assert_eq!(fks[1].number, 2);
        assert_eq!(fks[0].ref_column, "id");
        let code = |specs| resolve(&orders, specs, lookup).unwrap_err().sqlstate().0;
        assert_eq!(code(vec![spec("nope", "customers", None)]), "42703");
        assert_eq!(
            code(vec![spec("customer_id", "customers", Some("nope"))]),
            "42703"
        );
        assert_eq!(
            code(vec![spec("customer_id", "customers", Some("name"))]),
            "42830"
        );
        assert_eq!(code(vec![spec("note", "customers", None)]), "42804");
        assert_eq!(code(vec![spec("customer_id", "nope", None)]), "42P01");
        // Self-reference resolves against the table itself.
        let own = resolve(&orders, vec![spec("customer_id", "orders", None)], lookup).unwrap();
        assert_eq!(own[0].table, "orders");
        let back = ForeignKey::decode(&fks[1].encode()).unwrap();
        assert_eq!(back, fks[1]);
    }
}
