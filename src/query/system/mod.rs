//! The system catalogs clients read: `pg_catalog` (psql's `\d`, drivers' metadata calls,
//! BI tools' startup scripts) and `information_schema`, as virtual tables computed from
//! TissDB's catalog when a query names them. A view binds to literal rows, so every
//! clause of SELECT (joins, subqueries, casts) works on it.
//!
//! OIDs are stable across restarts: a collection is `16384 + id`, its indexes and
//! constraints are derived from the never-reused collection and index ids (see
//! [`oids`]), and built-in objects carry PostgreSQL's own OIDs (see [`builtin`]).
//!
//! Unqualified `pg_*` names resolve to `pg_catalog`, as PostgreSQL's implicit search
//! path does; `information_schema` views must be qualified.

pub mod builtin;
mod information_schema;
pub mod lookup;
mod pg_catalog;

use sqlparser::ast;
use tissdb_dialect::sqlparser;

use crate::catalog::{Catalog, Collection, Kind};
use crate::doc::Value;
use crate::query::Row;
use crate::query::binder::ident;
use crate::query::types::SqlType;

/// A view's columns (name, type) and rows.
pub type View = (Vec<(String, SqlType)>, Vec<Row>);

/// Stable OIDs of catalog objects.
pub mod oids {
    /// Schemas.
    pub const PG_CATALOG: u32 = 11;
    pub const PUBLIC: u32 = 2200;
    pub const INFORMATION_SCHEMA: u32 = 13_000;
    /// The one role, `tissdb`, and the one database.
    pub const ROLE: u32 = 10;
    pub const DATABASE: u32 = 16_383;
    /// First OID of the views (`pg_roles`, ...) and information_schema views.
    pub const FIRST_VIEW: u32 = 12_000;
    pub const FIRST_INFO_VIEW: u32 = 13_100;

    /// A collection's primary-key index (the document key).
    pub fn primary_index(collection_id: u32) -> u32 {
        800_000_000 + collection_id
    }
    /// A collection's primary-key constraint.
    pub fn primary_constraint(collection_id: u32) -> u32 {
        700_000_000 + collection_id
    }
    /// A secondary index (index ids are never reused).
    pub fn index(index_id: u32) -> u32 {
        900_000_000 + index_id
    }
    /// Foreign key `number` (from 1, below [`crate::catalog::MAX_FOREIGN_KEYS`]) of a
    /// table.
    pub fn foreign_key(collection_id: u32, number: u32) -> u32 {
        600_000_000 + collection_id * 64 + number
    }
    /// The default expression of column `attnum`.
    pub fn attrdef(collection_id: u32, attnum: usize) -> u32 {
        500_000_000 + collection_id * 1000 + attnum as u32
    }
}

/// System tables with PostgreSQL's OIDs, then views numbered from `FIRST_VIEW`.
const PG_TABLES: &[(&str, u32)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_authid", 1260),
    ("pg_auth_members", 1261),
    ("pg_database", 1262),
    ("pg_tablespace", 1213),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_constraint", 2606),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_language", 2612),
    ("pg_namespace", 2615),
    ("pg_opclass", 2616),
    ("pg_rewrite", 2618),
    ("pg_trigger", 2620),
    ("pg_sequence", 2224),
    ("pg_shdescription", 2396),
    ("pg_extension", 3079),
    ("pg_policy", 3256),
    ("pg_statistic_ext", 3381),
    ("pg_collation", 3456),
    ("pg_enum", 3501),
    ("pg_range", 3541),
    ("pg_publication", 6104),
    ("pg_publication_rel", 6106),
    ("pg_publication_namespace", 6237),
];

const PG_VIEWS: &[&str] = &[
    "pg_roles",
    "pg_user",
    "pg_settings",
    "pg_tables",
    "pg_views",
    "pg_matviews",
    "pg_indexes",
    "pg_stat_user_tables",
    "pg_stat_all_tables",
    "pg_stat_activity",
    "pg_statio_user_tables",
    "pg_stat_user_indexes",
    "pg_cursors",
    "pg_stat_wal",
    "pg_prepared_statements",
];

const INFO_VIEWS: &[&str] = &[
    "schemata",
    "tables",
    "columns",
    "views",
    "key_column_usage",
    "table_constraints",
    "referential_constraints",
    "constraint_column_usage",
    "routines",
    "parameters",
];

/// Every system relation: (schema oid, name, oid, is a view).
pub fn system_relations() -> impl Iterator<Item = (u32, &'static str, u32, bool)> {
    PG_TABLES
        .iter()
        .map(|(n, o)| (oids::PG_CATALOG, *n, *o, false))
        .chain(
            PG_VIEWS
                .iter()
                .enumerate()
                .map(|(i, n)| (oids::PG_CATALOG, *n, oids::FIRST_VIEW + i as u32, true)),
        )
        .chain(INFO_VIEWS.iter().enumerate().map(|(i, n)| {
            (
                oids::INFORMATION_SCHEMA,
                *n,
                oids::FIRST_INFO_VIEW + i as u32,
                true,
            )
        }))
}

/// The view `name` names (`pg_class`, `pg_catalog.pg_class`,
/// `information_schema.columns`), as its columns and rows; None if it names no system
/// view. `settings` gives the session's settings, asked only for pg_catalog views.
pub fn view(
    catalog: &Catalog,
    name: &ast::ObjectName,
    settings: impl FnOnce() -> Settings<'static>,
) -> Option<View> {
    let (schema, view) = system_name(name)?;
    if schema == "pg_catalog" && view == "pg_stat_wal" {
        let (stats, opened_at) = catalog.wal_stats();
        return Some(pg_catalog::pg_stat_wal(&stats, opened_at));
    }
    let relations = Relations::of(catalog);
    match schema.as_str() {
        "pg_catalog" => pg_catalog::view(&relations, &view, &settings()),
        _ => information_schema::view(&relations, &view),
    }
}

/// The (schema, name) of a name in `pg_catalog` or `information_schema`: checked
/// before anything is computed, since every table reference asks.
fn system_name(name: &ast::ObjectName) -> Option<(String, String)> {
    let parts = &name.0;
    let last = parts.last()?.as_ident().map(ident)?;
    let schema = match parts.len() {
        1 if last.starts_with("pg_") => return Some(("pg_catalog".into(), last)),
        2 | 3 => parts[parts.len() - 2].as_ident().map(ident)?,
        _ => return None,
    };
    matches!(schema.as_str(), "pg_catalog" | "information_schema").then_some((schema, last))
}

/// What catalog views need from the session: its user name and settings.
pub struct Settings<'a> {
    pub user: &'a str,
    /// (name, value) of every setting the session sees.
    pub all: Vec<(String, String)>,
    /// The session's statements prepared by name in SQL.
    pub prepared: Vec<crate::query::named::NamedRow>,
}

/// A user relation's column as the catalogs show it.
pub struct RelColumn {
    pub name: String,
    pub ty: SqlType,
    pub not_null: bool,
    pub default: Option<String>,
}

/// A user collection with the columns and indexes the catalogs show.
pub struct Relation {
    pub collection: Collection,
    pub columns: Vec<RelColumn>,
    /// Documents in the collection (`reltuples`, `n_live_tup`).
    pub rows: u64,
    /// Bytes of its flushed documents on disk (`pg_relation_size`, `relpages`).
    pub bytes: u64,
    /// Whether a foreign key of another table (or its own) references it.
    pub referenced: bool,
}

impl Relation {
    pub fn oid(&self) -> u32 {
        self.collection.oid()
    }

    /// The key column's name: the declared primary key, or `id`.
    pub fn key_column(&self) -> String {
        self.collection
            .primary_key
            .clone()
            .unwrap_or_else(|| "id".to_string())
    }

    /// The key column's number; None for a table declared without a primary key
    /// (its documents are keyed by generated ids no column shows).
    pub fn key_attnum(&self) -> Option<usize> {
        self.attnum(&self.key_column())
    }

    /// The 1-based number of the column named `name`.
    pub fn attnum(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .map(|i| i + 1)
    }

    pub fn primary_index_name(&self) -> String {
        format!("{}_pkey", self.collection.name)
    }

    /// Whether PostgreSQL would show it with triggers (`relhastriggers`): the internal
    /// ones that enforce foreign keys, on both tables of each.
    pub fn has_triggers(&self) -> bool {
        self.referenced || !self.collection.foreign_keys.is_empty()
    }

    /// The indexes: (oid, name, column numbers (0: an expression), unique, primary,
    /// the CREATE INDEX statement).
    pub fn indexes(&self) -> Vec<IndexInfo> {
        let name = &self.collection.name;
        let key = self.key_column();
        let mut out = Vec::new();
        if let Some(attnum) = self.key_attnum() {
            out.push(IndexInfo {
                oid: oids::primary_index(self.collection.id),
                name: self.primary_index_name(),
                attnums: vec![attnum],
                expressions: Vec::new(),
                unique: true,
                primary: true,
                definition: format!(
                    "CREATE UNIQUE INDEX {} ON public.{name} USING btree ({})",
                    self.primary_index_name(),
                    quote_ident(&key)
                ),
            });
        }
        for i in self.collection.ready_indexes() {
            let mut attnums = Vec::new();
            let mut expressions = Vec::new();
            // A nested path is a column too (`specs.weight`), when observed.
            for path in &i.fields {
                let name = crate::catalog::dotted(path);
                match self.attnum(&name) {
                    Some(n) => attnums.push(n),
                    None => {
                        attnums.push(0);
                        expressions.push(name);
                    }
                }
            }
            out.push(IndexInfo {
                oid: oids::index(i.id),
                name: i.name.clone(),
                attnums,
                expressions,
                unique: i.unique,
                primary: false,
                definition: i.definition(name),
            });
        }
        out
    }
}

/// An index as `pg_index` and `pg_class` show it.
pub struct IndexInfo {
    pub oid: u32,
    pub name: String,
    pub attnums: Vec<usize>,
    pub expressions: Vec<String>,
    pub unique: bool,
    pub primary: bool,
    pub definition: String,
}

/// The user relations, in collection id order.
pub struct Relations {
    pub list: Vec<Relation>,
}

impl Relations {
    pub fn of(catalog: &Catalog) -> Relations {
        let mut list: Vec<Relation> = catalog
            .list()
            .into_iter()
            .map(|c| {
                let columns = match c.kind {
                    Kind::Table => c
                        .columns
                        .iter()
                        .map(|d| RelColumn {
                            name: d.name.clone(),
                            ty: d.ty.clone(),
                            not_null: d.not_null || c.primary_key.as_deref() == Some(&d.name),
                            default: d.default.clone(),
                        })
                        .collect(),
                    // The observed fields, then the nested ones by their dotted path.
                    Kind::Schemaless => c
                        .sql_columns()
                        .into_iter()
                        .chain(c.nested.iter().map(|f| (f.name(), f.ty.sql_type())))
                        .enumerate()
                        .map(|(i, (name, ty))| RelColumn {
                            name,
                            ty,
                            not_null: i == 0,
                            default: None,
                        })
                        .collect(),
                };
                Relation {
                    rows: catalog.document_count(c.id),
                    bytes: catalog.stored_bytes(c.id),
                    collection: c,
                    columns,
                    referenced: false,
                }
            })
            .collect();
        list.sort_by_key(|r| r.collection.id);
        let targets: Vec<String> = list
            .iter()
            .flat_map(|r| r.collection.foreign_keys.iter().map(|fk| fk.table.clone()))
            .collect();
        for r in &mut list {
            r.referenced = targets.contains(&r.collection.name);
        }
        Relations { list }
    }

    /// The relation named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Relation> {
        self.list.iter().find(|r| r.collection.name == name)
    }

    /// Every foreign key, in table and declaration order.
    pub fn foreign_keys(&self) -> Vec<ForeignKeyInfo<'_>> {
        let mut out = Vec::new();
        for r in &self.list {
            for fk in &r.collection.foreign_keys {
                let Some(parent) = self.by_name(&fk.table) else {
                    continue;
                };
                out.push(ForeignKeyInfo {
                    oid: oids::foreign_key(r.collection.id, fk.number),
                    table: r,
                    referenced: parent,
                    fk,
                    attnum: r.attnum(&fk.column).unwrap_or(0),
                    ref_attnum: parent.attnum(&fk.ref_column).unwrap_or(0),
                });
            }
        }
        out
    }
}

/// A foreign key as the catalogs show it.
pub struct ForeignKeyInfo<'a> {
    pub oid: u32,
    /// The referencing table.
    pub table: &'a Relation,
    /// The referenced table.
    pub referenced: &'a Relation,
    pub fk: &'a crate::catalog::ForeignKey,
    pub attnum: usize,
    pub ref_attnum: usize,
}

impl ForeignKeyInfo<'_> {
    /// `pg_get_constraintdef`: `FOREIGN KEY (c) REFERENCES t(id) ON DELETE CASCADE`.
    pub fn definition(&self) -> String {
        use crate::catalog::Action;
        let fk = self.fk;
        let mut def = format!(
            "FOREIGN KEY ({}) REFERENCES {}({})",
            quote_ident(&fk.column),
            quote_ident(&fk.table),
            quote_ident(&fk.ref_column)
        );
        if fk.match_full {
            def.push_str(" MATCH FULL");
        }
        if fk.on_update != Action::NoAction {
            def.push_str(" ON UPDATE ");
            def.push_str(fk.on_update.sql());
        }
        if fk.on_delete != Action::NoAction {
            def.push_str(" ON DELETE ");
            def.push_str(fk.on_delete.sql());
        }
        def
    }
}

/// `quote_ident`: the name as SQL must write it.
pub fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !builtin::KEYWORDS
            .iter()
            .any(|(w, cat)| *w == name && *cat == "R");
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

fn oid(o: u32) -> Value {
    Value::Int(i64::from(o))
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn boolean(b: bool) -> Value {
    Value::Bool(b)
}

/// Columns from (name, type) pairs.
fn columns(spec: &[(&str, SqlType)]) -> Vec<(String, SqlType)> {
    spec.iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}
