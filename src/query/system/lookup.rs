//! Catalog lookups inside expressions: `'t'::regclass`, `oid::regclass::text`,
//! `pg_get_indexdef(oid)`, `current_setting(name)` and friends read the catalog. The
//! binder builds the table a call needs once per statement; evaluation only looks up.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::types::RegKind;

use super::builtin::{self, FUNCTIONS, TYPES};
use super::pg_catalog::proc_io_oid;
use super::{Relations, Settings, oids, quote_ident, system_relations};

/// What a lookup maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// A name (or an OID written as digits) to the OID of a relation, type, function
    /// or schema; an unknown name is an error, as PostgreSQL's reg* input is.
    RegIn(RegKind),
    /// `to_regclass`-style input: an unknown name is NULL.
    RegInOrNull(RegKind),
    /// An OID to its object's name (the OID as text when unknown).
    RegOut(RegKind),
    /// `pg_get_indexdef(oid)`; with a column number, `oid/n`: that column's definition
    /// (the whole statement for 0).
    IndexDef,
    /// `pg_get_constraintdef(oid)`.
    ConstraintDef,
    /// `pg_relation_size(oid)` and friends: the bytes of the collection's flushed
    /// blocks on disk (writes still in memtables count nothing).
    RelationSize,
    /// `current_setting(name)`: an unknown name is 42704.
    Setting,
    /// `current_setting(name, true)`: an unknown name is NULL.
    SettingOrNull,
}

/// A lookup table built for one statement.
#[derive(Debug)]
pub struct Lookup {
    pub kind: LookupKind,
    map: HashMap<String, Value>,
}

impl PartialEq for Lookup {
    fn eq(&self, other: &Lookup) -> bool {
        self.kind == other.kind
    }
}

fn oid(o: u32) -> Value {
    Value::Int(i64::from(o))
}

/// Normalizes a name as reg* input reads it: the last dotted part, unquoted as written
/// or folded to lower case.
fn normalize_name(s: &str) -> String {
    let s = s.trim();
    let last = if let Some(body) = s.strip_suffix('"') {
        match body.rfind('"') {
            Some(open) => return body[open + 1..].replace("\"\"", "\""),
            None => s,
        }
    } else {
        s.rsplit('.').next().unwrap_or(s)
    };
    last.to_lowercase()
}

impl Lookup {
    pub fn build(catalog: &Catalog, kind: LookupKind, settings: &Settings<'_>) -> Lookup {
        let mut map = HashMap::new();
        match kind {
            LookupKind::RegIn(k) | LookupKind::RegInOrNull(k) | LookupKind::RegOut(k) => {
                let out = matches!(kind, LookupKind::RegOut(_));
                let mut add = |name: String, o: u32| {
                    if out {
                        map.insert(o.to_string(), Value::String(name));
                    } else {
                        map.entry(name).or_insert(oid(o));
                    }
                };
                match k {
                    RegKind::Class => {
                        for r in Relations::of(catalog).list {
                            for i in r.indexes() {
                                add(i.name.clone(), i.oid);
                            }
                            add(r.collection.name.clone(), r.oid());
                        }
                        for (_, name, o, _) in system_relations() {
                            add(name.to_string(), o);
                        }
                    }
                    RegKind::Type => {
                        for t in TYPES {
                            let name = builtin::format_type(t.oid, -1)
                                .unwrap_or_else(|| t.name.to_string());
                            if out {
                                add(name, t.oid);
                            } else {
                                add(t.name.to_string(), t.oid);
                                add(name, t.oid);
                            }
                        }
                    }
                    RegKind::Proc => {
                        for (i, (name, _, _)) in FUNCTIONS.iter().enumerate() {
                            add(name.to_string(), builtin::FIRST_PROC_OID + i as u32);
                        }
                        add("array_in".into(), builtin::ARRAY_IN_OID);
                        add("array_out".into(), builtin::ARRAY_OUT_OID);
                        add("array_recv".into(), builtin::ARRAY_RECV_OID);
                        add("array_send".into(), builtin::ARRAY_SEND_OID);
                        for t in TYPES {
                            for (w, s) in [(0, "in"), (1, "out"), (2, "recv"), (3, "send")] {
                                add(format!("{}{s}", t.name), proc_io_oid(t.oid, w));
                            }
                        }
                    }
                    RegKind::Namespace => {
                        add("pg_catalog".into(), oids::PG_CATALOG);
                        add("public".into(), oids::PUBLIC);
                        add("information_schema".into(), oids::INFORMATION_SCHEMA);
                    }
                }
                // The output functions print InvalidOid as `-`.
                if out {
                    map.insert("0".into(), Value::String("-".into()));
                }
            }
            LookupKind::IndexDef => {
                for r in Relations::of(catalog).list {
                    for i in r.indexes() {
                        let mut expressions = i.expressions.iter();
                        for (k, n) in i.attnums.iter().enumerate() {
                            let column = match n.checked_sub(1).and_then(|c| r.columns.get(c)) {
                                Some(c) => quote_ident(&c.name),
                                None => expressions.next().cloned().unwrap_or_default(),
                            };
                            map.insert(format!("{}/{}", i.oid, k + 1), Value::String(column));
                        }
                        map.insert(format!("{}/0", i.oid), Value::String(i.definition.clone()));
                        map.insert(i.oid.to_string(), Value::String(i.definition));
                    }
                }
            }
            LookupKind::ConstraintDef => {
                let relations = Relations::of(catalog);
                for r in &relations.list {
                    if r.key_attnum().is_none() {
                        continue;
                    }
                    map.insert(
                        oids::primary_constraint(r.collection.id).to_string(),
                        Value::String(format!("PRIMARY KEY ({})", quote_ident(&r.key_column()))),
                    );
                }
                for f in relations.foreign_keys() {
                    map.insert(f.oid.to_string(), Value::String(f.definition()));
                }
            }
            LookupKind::RelationSize => {
                for r in Relations::of(catalog).list {
                    map.insert(r.oid().to_string(), Value::Int(r.bytes as i64));
                }
            }
            LookupKind::Setting | LookupKind::SettingOrNull => {
                for (n, v) in &settings.all {
                    map.insert(n.clone(), Value::String(v.clone()));
                }
            }
        }
        Lookup { kind, map }
    }

    /// The value for `key`.
    pub fn get(&self, key: &Value) -> Result<Value> {
        if matches!(key, Value::Null) {
            return Ok(Value::Null);
        }
        let text = match key {
            Value::String(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            other => crate::query::types::SqlType::of_value(other)
                .format_text(other)
                .unwrap_or_default(),
        };
        match self.kind {
            LookupKind::RegIn(k) | LookupKind::RegInOrNull(k) => {
                let t = text.trim();
                if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
                    return t.parse::<u32>().map(oid).map_err(|_| {
                        Error::invalid(
                            SqlState::INVALID_TEXT_REPRESENTATION,
                            format!("invalid OID \"{t}\""),
                        )
                    });
                }
                let name = normalize_name(t);
                let found = self.map.get(&name).cloned().or_else(|| {
                    (k == RegKind::Type)
                        .then(|| builtin::type_by_name(t).map(|b| oid(b.oid)))
                        .flatten()
                });
                match (found, self.kind) {
                    (Some(v), _) => Ok(v),
                    (None, LookupKind::RegInOrNull(_)) => Ok(Value::Null),
                    (None, _) => Err(match k {
                        RegKind::Class => Error::invalid(
                            SqlState::UNDEFINED_TABLE,
                            format!("relation \"{t}\" does not exist"),
                        ),
                        RegKind::Type => Error::invalid(
                            SqlState("42704"),
                            format!("type \"{t}\" does not exist"),
                        ),
                        RegKind::Proc => Error::invalid(
                            SqlState("42883"),
                            format!("function \"{t}\" does not exist"),
                        ),
                        RegKind::Namespace => Error::invalid(
                            SqlState("3F000"),
                            format!("schema \"{t}\" does not exist"),
                        ),
                    }),
                }
            }
            LookupKind::RegOut(_) => {
                Ok(self.map.get(&text).cloned().unwrap_or(Value::String(text)))
            }
            LookupKind::IndexDef | LookupKind::ConstraintDef => {
                Ok(self.map.get(&text).cloned().unwrap_or(Value::Null))
            }
            LookupKind::RelationSize => Ok(self.map.get(&text).cloned().unwrap_or(Value::Int(0))),
            LookupKind::Setting | LookupKind::SettingOrNull => {
                match self.map.get(&text.to_lowercase()) {
                    Some(v) => Ok(v.clone()),
                    None if self.kind == LookupKind::SettingOrNull => Ok(Value::Null),
                    None => Err(Error::invalid(
                        SqlState("42704"),
                        format!("unrecognized configuration parameter \"{text}\""),
                    )),
                }
            }
        }
    }
}
