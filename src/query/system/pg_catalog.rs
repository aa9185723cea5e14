//! `pg_catalog`: the tables and views psql, drivers and BI tools read, with
//! PostgreSQL 15's columns. Tables of things TissDB does not have (inheritance,
//! policies, publications, ...) exist and are empty.

use crate::doc::Value;
use crate::query::Row;
use crate::query::types::SqlType::{self, Bool, Float4, Int2, Int4, Int8, Oid, Text, Timestamptz};

use super::builtin::{self, ACCESS_METHODS, COLLATIONS, FIRST_PROC_OID, FUNCTIONS, TYPES};
use super::{Relations, Settings, View, boolean, columns, int, oid, oids, system_relations, text};

fn arr(t: SqlType) -> SqlType {
    SqlType::Array(Box::new(t))
}

const NULL: Value = Value::Null;

/// The pg_catalog view `name`.
pub fn view(rel: &Relations, name: &str, settings: &Settings<'_>) -> Option<View> {
    Some(match name {
        "pg_namespace" => pg_namespace(),
        "pg_class" => pg_class(rel),
        "pg_attribute" => pg_attribute(rel, settings),
        "pg_type" => pg_type(),
        "pg_index" => pg_index(rel),
        "pg_constraint" => pg_constraint(rel),
        "pg_attrdef" => pg_attrdef(rel),
        "pg_description" => (
            columns(&[
                ("objoid", Oid),
                ("classoid", Oid),
                ("objsubid", Int4),
                ("description", Text),
            ]),
            Vec::new(),
        ),
        "pg_shdescription" => (
            columns(&[("objoid", Oid), ("classoid", Oid), ("description", Text)]),
            Vec::new(),
        ),
        "pg_database" => pg_database(),
        "pg_roles" => pg_roles(settings),
        "pg_authid" => pg_roles(settings),
        "pg_user" => pg_user(settings),
        "pg_auth_members" => (
            columns(&[
                ("oid", Oid),
                ("roleid", Oid),
                ("member", Oid),
                ("grantor", Oid),
                ("admin_option", Bool),
            ]),
            Vec::new(),
        ),
        "pg_settings" => pg_settings(settings),
        "pg_prepared_statements" => pg_prepared_statements(settings),
        "pg_am" => (
            columns(&[
                ("oid", Oid),
                ("amname", Text),
                ("amhandler", Text),
                ("amtype", Text),
            ]),
            ACCESS_METHODS
                .iter()
                .map(|(o, n, t)| vec![oid(*o), text(n), text(&format!("{n}handler")), text(t)])
                .collect(),
        ),
        "pg_proc" => pg_proc(),
        "pg_range" => (
            columns(&[
                ("rngtypid", Oid),
                ("rngsubtype", Oid),
                ("rngmultitypid", Oid),
                ("rngcollation", Oid),
                ("rngsubopc", Oid),
                ("rngcanonical", Text),
                ("rngsubdiff", Text),
            ]),
            Vec::new(),
        ),
        "pg_enum" => (
            columns(&[
                ("oid", Oid),
                ("enumtypid", Oid),
                ("enumsortorder", Float4),
                ("enumlabel", Text),
            ]),
            Vec::new(),
        ),
        "pg_collation" => (
            columns(&[
                ("oid", Oid),
                ("collname", Text),
                ("collnamespace", Oid),
                ("collowner", Oid),
                ("collprovider", Text),
                ("collisdeterministic", Bool),
                ("collencoding", Int4),
                ("collcollate", Text),
                ("collctype", Text),
                ("colliculocale", Text),
                ("collversion", Text),
            ]),
            COLLATIONS
                .iter()
                .map(|(o, n, p)| {
                    let (collate, enc) = if *o == 100 { (NULL, -1) } else { (text(n), -1) };
                    vec![
                        oid(*o),
                        text(n),
                        oid(oids::PG_CATALOG),
                        oid(oids::ROLE),
                        text(p),
                        boolean(true),
                        int(enc),
                        collate.clone(),
                        collate,
                        NULL,
                        NULL,
                    ]
                })
                .collect(),
        ),
        "pg_sequence" => (
            columns(&[
                ("seqrelid", Oid),
                ("seqtypid", Oid),
                ("seqstart", Int8),
                ("seqincrement", Int8),
                ("seqmax", Int8),
                ("seqmin", Int8),
                ("seqcache", Int8),
                ("seqcycle", Bool),
            ]),
            Vec::new(),
        ),
        "pg_tablespace" => (
            columns(&[
                ("oid", Oid),
                ("spcname", Text),
                ("spcowner", Oid),
                ("spcacl", arr(Text)),
                ("spcoptions", arr(Text)),
            ]),
            vec![
                vec![oid(1663), text("pg_default"), oid(oids::ROLE), NULL, NULL],
                vec![oid(1664), text("pg_global"), oid(oids::ROLE), NULL, NULL],
            ],
        ),
        "pg_tables" => pg_tables(rel),
        "pg_views" => (
            columns(&[
                ("schemaname", Text),
                ("viewname", Text),
                ("viewowner", Text),
                ("definition", Text),
            ]),
            Vec::new(),
        ),
        "pg_matviews" => (
            columns(&[
                ("schemaname", Text),
                ("matviewname", Text),
                ("matviewowner", Text),
                ("tablespace", Text),
                ("hasindexes", Bool),
                ("ispopulated", Bool),
                ("definition", Text),
            ]),
            Vec::new(),
        ),
        "pg_indexes" => pg_indexes(rel),
        "pg_stat_user_tables" | "pg_stat_all_tables" => pg_stat_user_tables(rel),
        // Its rows come from the WAL (see `super::view`); here for its columns.
        "pg_stat_wal" => pg_stat_wal(&crate::storage::wal::WalStats::default(), 0),
        "pg_statio_user_tables" => (
            columns(&[
                ("relid", Oid),
                ("schemaname", Text),
                ("relname", Text),
                ("heap_blks_read", Int8),
                ("heap_blks_hit", Int8),
            ]),
            rel.list
                .iter()
                .map(|r| {
                    vec![
                        oid(r.oid()),
                        text("public"),
                        text(&r.collection.name),
                        int(0),
                        int(0),
                    ]
                })
                .collect(),
        ),
        "pg_stat_user_indexes" => (
            columns(&[
                ("relid", Oid),
                ("indexrelid", Oid),
                ("schemaname", Text),
                ("relname", Text),
                ("indexrelname", Text),
                ("idx_scan", Int8),
                ("idx_tup_read", Int8),
                ("idx_tup_fetch", Int8),
            ]),
            rel.list
                .iter()
                .flat_map(|r| {
                    r.indexes().into_iter().map(move |i| {
                        vec![
                            oid(r.oid()),
                            oid(i.oid),
                            text("public"),
                            text(&r.collection.name),
                            text(&i.name),
                            int(0),
                            int(0),
                            int(0),
                        ]
                    })
                })
                .collect(),
        ),
        "pg_stat_activity" => (
            columns(&[
                ("datid", Oid),
                ("datname", Text),
                ("pid", Int4),
                ("leader_pid", Int4),
                ("usesysid", Oid),
                ("usename", Text),
                ("application_name", Text),
                ("client_addr", Text),
                ("client_hostname", Text),
                ("client_port", Int4),
                ("backend_start", Timestamptz),
                ("xact_start", Timestamptz),
                ("query_start", Timestamptz),
                ("state_change", Timestamptz),
                ("wait_event_type", Text),
                ("wait_event", Text),
                ("state", Text),
                ("backend_xid", Text),
                ("backend_xmin", Text),
                ("query_id", Int8),
                ("query", Text),
                ("backend_type", Text),
            ]),
            Vec::new(),
        ),
        "pg_cursors" => (
            columns(&[
                ("name", Text),
                ("statement", Text),
                ("is_holdable", Bool),
                ("is_binary", Bool),
                ("is_scrollable", Bool),
                ("creation_time", Timestamptz),
            ]),
            Vec::new(),
        ),
        "pg_language" => (
            columns(&[
                ("oid", Oid),
                ("lanname", Text),
                ("lanowner", Oid),
                ("lanispl", Bool),
                ("lanpltrusted", Bool),
                ("lanplcallfoid", Oid),
                ("laninline", Oid),
                ("lanvalidator", Oid),
                ("lanacl", arr(Text)),
            ]),
            [(12, "internal"), (13, "c"), (14, "sql")]
                .iter()
                .map(|(o, n)| {
                    vec![
                        oid(*o),
                        text(n),
                        oid(oids::ROLE),
                        boolean(false),
                        boolean(*o == 14),
                        oid(0),
                        oid(0),
                        oid(0),
                        NULL,
                    ]
                })
                .collect(),
        ),
        "pg_inherits" => (
            columns(&[
                ("inhrelid", Oid),
                ("inhparent", Oid),
                ("inhseqno", Int4),
                ("inhdetachpending", Bool),
            ]),
            Vec::new(),
        ),
        "pg_policy" => (
            columns(&[
                ("oid", Oid),
                ("polname", Text),
                ("polrelid", Oid),
                ("polcmd", Text),
                ("polpermissive", Bool),
                ("polroles", arr(Oid)),
                ("polqual", Text),
                ("polwithcheck", Text),
            ]),
            Vec::new(),
        ),
        "pg_extension" => (
            columns(&[
                ("oid", Oid),
                ("extname", Text),
                ("extowner", Oid),
                ("extnamespace", Oid),
                ("extrelocatable", Bool),
                ("extversion", Text),
                ("extconfig", arr(Oid)),
                ("extcondition", arr(Text)),
            ]),
            Vec::new(),
        ),
        "pg_statistic_ext" => (
            columns(&[
                ("oid", Oid),
                ("stxrelid", Oid),
                ("stxname", Text),
                ("stxnamespace", Oid),
                ("stxowner", Oid),
                ("stxstattarget", Int4),
                ("stxkeys", SqlType::Int2Vector),
                ("stxkind", arr(Text)),
                ("stxexprs", Text),
            ]),
            Vec::new(),
        ),
        "pg_publication" => (
            columns(&[
                ("oid", Oid),
                ("pubname", Text),
                ("pubowner", Oid),
                ("puballtables", Bool),
                ("pubinsert", Bool),
                ("pubupdate", Bool),
                ("pubdelete", Bool),
                ("pubtruncate", Bool),
                ("pubviaroot", Bool),
            ]),
            Vec::new(),
        ),
        "pg_publication_namespace" => (
            columns(&[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)]),
            Vec::new(),
        ),
        "pg_publication_rel" => (
            columns(&[
                ("oid", Oid),
                ("prpubid", Oid),
                ("prrelid", Oid),
                ("prqual", Text),
                ("prattrs", SqlType::Int2Vector),
            ]),
            Vec::new(),
        ),
        "pg_opclass" => (
            columns(&[
                ("oid", Oid),
                ("opcmethod", Oid),
                ("opcname", Text),
                ("opcnamespace", Oid),
                ("opcowner", Oid),
                ("opcfamily", Oid),
                ("opcintype", Oid),
                ("opcdefault", Bool),
                ("opckeytype", Oid),
            ]),
            Vec::new(),
        ),
        "pg_trigger" => (
            columns(&[
                ("oid", Oid),
                ("tgrelid", Oid),
                ("tgparentid", Oid),
                ("tgname", Text),
                ("tgfoid", Oid),
                ("tgtype", Int2),
                ("tgenabled", Text),
                ("tgisinternal", Bool),
                ("tgconstrrelid", Oid),
                ("tgconstrindid", Oid),
                ("tgconstraint", Oid),
                ("tgdeferrable", Bool),
                ("tginitdeferred", Bool),
                ("tgnargs", Int2),
            ]),
            Vec::new(),
        ),
        "pg_rewrite" => (
            columns(&[
                ("oid", Oid),
                ("rulename", Text),
                ("ev_class", Oid),
                ("ev_type", Text),
                ("ev_enabled", Text),
                ("is_instead", Bool),
            ]),
            Vec::new(),
        ),
        "pg_depend" => (
            columns(&[
                ("classid", Oid),
                ("objid", Oid),
                ("objsubid", Int4),
                ("refclassid", Oid),
                ("refobjid", Oid),
                ("refobjsubid", Int4),
                ("deptype", Text),
            ]),
            Vec::new(),
        ),
        _ => return None,
    })
}

fn pg_namespace() -> View {
    let cols = columns(&[
        ("oid", Oid),
        ("nspname", Text),
        ("nspowner", Oid),
        ("nspacl", arr(Text)),
    ]);
    let rows = [
        (oids::PG_CATALOG, "pg_catalog"),
        (oids::PUBLIC, "public"),
        (oids::INFORMATION_SCHEMA, "information_schema"),
    ]
    .iter()
    .map(|(o, n)| vec![oid(*o), text(n), oid(oids::ROLE), NULL])
    .collect();
    (cols, rows)
}

/// One `pg_class` row: (oid, name, namespace, kind, columns, has indexes, am).
fn class_row(o: u32, name: &str, ns: u32, kind: &str, natts: usize, indexed: bool, am: u32) -> Row {
    vec![
        oid(o),
        text(name),
        oid(ns),
        oid(0),
        oid(0),
        oid(oids::ROLE),
        oid(am),
        oid(o),
        oid(0),
        int(0),
        Value::Float(if kind == "r" { -1.0 } else { 0.0 }),
        int(0),
        oid(0),
        boolean(indexed),
        boolean(false),
        text("p"),
        text(kind),
        int(natts as i64),
        int(0),
        boolean(false),
        boolean(false),
        boolean(false),
        boolean(false),
        boolean(false),
        boolean(true),
        text(if kind == "r" { "d" } else { "n" }),
        boolean(false),
        oid(0),
        int(0),
        int(0),
        NULL,
        NULL,
        NULL,
    ]
}

fn pg_class(rel: &Relations) -> View {
    let cols = columns(&[
        ("oid", Oid),
        ("relname", Text),
        ("relnamespace", Oid),
        ("reltype", Oid),
        ("reloftype", Oid),
        ("relowner", Oid),
        ("relam", Oid),
        ("relfilenode", Oid),
        ("reltablespace", Oid),
        ("relpages", Int4),
        ("reltuples", Float4),
        ("relallvisible", Int4),
        ("reltoastrelid", Oid),
        ("relhasindex", Bool),
        ("relisshared", Bool),
        ("relpersistence", Text),
        ("relkind", Text),
        ("relnatts", Int2),
        ("relchecks", Int2),
        ("relhasrules", Bool),
        ("relhastriggers", Bool),
        ("relhassubclass", Bool),
        ("relrowsecurity", Bool),
        ("relforcerowsecurity", Bool),
        ("relispopulated", Bool),
        ("relreplident", Text),
        ("relispartition", Bool),
        ("relrewrite", Oid),
        ("relfrozenxid", Int8),
        ("relminmxid", Int8),
        ("relacl", arr(Text)),
        ("reloptions", arr(Text)),
        ("relpartbound", Text),
    ]);
    let mut rows = Vec::new();
    for r in &rel.list {
        let mut row = class_row(
            r.oid(),
            &r.collection.name,
            oids::PUBLIC,
            "r",
            r.columns.len(),
            true,
            2,
        );
        // relpages and reltuples: the collection's stored bytes in 8 KiB pages, and
        // its exact document count.
        row[9] = int(r.bytes.div_ceil(8192) as i64);
        row[10] = Value::Float(r.rows as f64);
        row[20] = boolean(r.has_triggers());
        rows.push(row);
        for i in r.indexes() {
            let mut row = class_row(
                i.oid,
                &i.name,
                oids::PUBLIC,
                "i",
                i.attnums.len(),
                false,
                403,
            );
            row[10] = Value::Float(r.rows as f64);
            rows.push(row);
        }
    }
    for (ns, name, o, is_view) in system_relations() {
        rows.push(class_row(
            o,
            name,
            ns,
            if is_view { "v" } else { "r" },
            0,
            false,
            if is_view { 0 } else { 2 },
        ));
    }
    (cols, rows)
}

/// (atttypid, attlen, atttypmod, attcollation) of a column type.
pub fn type_facts(ty: &SqlType) -> (u32, i64, i64, u32) {
    let o = ty.oid();
    let len = builtin::type_by_oid(o).map_or(-1, |t| t.len);
    let collation = if ty.is_text() || matches!(ty, SqlType::Unknown) {
        100
    } else {
        0
    };
    (o, len, i64::from(ty.type_modifier()), collation)
}

fn pg_attribute(rel: &Relations, settings: &Settings<'_>) -> View {
    let cols = columns(&[
        ("attrelid", Oid),
        ("attname", Text),
        ("atttypid", Oid),
        ("attstattarget", Int4),
        ("attlen", Int2),
        ("attnum", Int2),
        ("attndims", Int4),
        ("attcacheoff", Int4),
        ("atttypmod", Int4),
        ("attbyval", Bool),
        ("attalign", Text),
        ("attstorage", Text),
        ("attcompression", Text),
        ("attnotnull", Bool),
        ("atthasdef", Bool),
        ("atthasmissing", Bool),
        ("attidentity", Text),
        ("attgenerated", Text),
        ("attisdropped", Bool),
        ("attislocal", Bool),
        ("attinhcount", Int4),
        ("attcollation", Oid),
        ("attacl", arr(Text)),
        ("attoptions", arr(Text)),
        ("attfdwoptions", arr(Text)),
        ("attmissingval", Text),
    ]);
    let row = |relid: u32, name: &str, ty: &SqlType, num: usize, not_null: bool, has_def: bool| {
        let (typid, len, typmod, coll) = type_facts(ty);
        vec![
            oid(relid),
            text(name),
            oid(typid),
            int(-1),
            int(len),
            int(num as i64),
            int(i64::from(matches!(ty, SqlType::Array(_)))),
            int(-1),
            int(typmod),
            boolean(len > 0 && len <= 8),
            text(if len == 8 { "d" } else { "i" }),
            text(if len > 0 { "p" } else { "x" }),
            text(""),
            boolean(not_null),
            boolean(has_def),
            boolean(false),
            text(""),
            text(""),
            boolean(false),
            boolean(true),
            int(0),
            oid(coll),
            NULL,
            NULL,
            NULL,
            NULL,
        ]
    };
    let mut rows = Vec::new();
    // The system relations' own columns (`\d pg_class`), computed over no collections.
    let none = Relations { list: Vec::new() };
    for (ns, name, o, _) in system_relations() {
        let columns = if name == "pg_attribute" {
            Some(cols.clone())
        } else if ns == oids::PG_CATALOG {
            view(&none, name, settings).map(|(c, _)| c)
        } else {
            super::information_schema::view(&none, name).map(|(c, _)| c)
        };
        for (i, (n, ty)) in columns.into_iter().flatten().enumerate() {
            rows.push(row(o, &n, &ty, i + 1, false, false));
        }
    }
    for r in &rel.list {
        for (i, c) in r.columns.iter().enumerate() {
            rows.push(row(
                r.oid(),
                &c.name,
                &c.ty,
                i + 1,
                c.not_null,
                c.default.is_some(),
            ));
        }
        for ix in r.indexes() {
            let mut expr = ix.expressions.iter();
            for (k, n) in ix.attnums.iter().enumerate() {
                let (name, ty) = match n.checked_sub(1).and_then(|i| r.columns.get(i)) {
                    Some(c) => (c.name.clone(), c.ty.clone()),
                    None => (
                        expr.next().cloned().unwrap_or_else(|| "expr".into()),
                        SqlType::Jsonb,
                    ),
                };
                rows.push(row(ix.oid, &name, &ty, k + 1, false, false));
            }
        }
    }
    (cols, rows)
}

fn pg_type() -> View {
    let cols = columns(&[
        ("oid", Oid),
        ("typname", Text),
        ("typnamespace", Oid),
        ("typowner", Oid),
        ("typlen", Int2),
        ("typbyval", Bool),
        ("typtype", Text),
        ("typcategory", Text),
        ("typispreferred", Bool),
        ("typisdefined", Bool),
        ("typdelim", Text),
        ("typrelid", Oid),
        ("typsubscript", Text),
        ("typelem", Oid),
        ("typarray", Oid),
        ("typinput", SqlType::Reg(crate::query::types::RegKind::Proc)),
        (
            "typoutput",
            SqlType::Reg(crate::query::types::RegKind::Proc),
        ),
        (
            "typreceive",
            SqlType::Reg(crate::query::types::RegKind::Proc),
        ),
        ("typsend", SqlType::Reg(crate::query::types::RegKind::Proc)),
        ("typmodin", SqlType::Reg(crate::query::types::RegKind::Proc)),
        (
            "typmodout",
            SqlType::Reg(crate::query::types::RegKind::Proc),
        ),
        (
            "typanalyze",
            SqlType::Reg(crate::query::types::RegKind::Proc),
        ),
        ("typalign", Text),
        ("typstorage", Text),
        ("typnotnull", Bool),
        ("typbasetype", Oid),
        ("typtypmod", Int4),
        ("typndims", Int4),
        ("typcollation", Oid),
        ("typdefaultbin", Text),
        ("typdefault", Text),
        ("typacl", arr(Text)),
    ]);
    let rows = TYPES
        .iter()
        .map(|t| {
            let is_array = t.category == "A" && t.array == 0;
            let pseudo = t.category == "P";
            let collation = if t.category == "S" && t.name != "name" && t.name != "char" {
                100
            } else if t.name == "name" {
                950
            } else {
                0
            };
            let io = |which: u32| {
                if is_array {
                    [
                        builtin::ARRAY_IN_OID,
                        builtin::ARRAY_OUT_OID,
                        builtin::ARRAY_RECV_OID,
                        builtin::ARRAY_SEND_OID,
                    ][which as usize]
                } else {
                    proc_io_oid(t.oid, which)
                }
            };
            vec![
                oid(t.oid),
                text(t.name),
                oid(oids::PG_CATALOG),
                oid(oids::ROLE),
                int(t.len),
                boolean(t.len > 0 && t.len <= 8),
                text(if pseudo { "p" } else { "b" }),
                text(t.category),
                boolean(matches!(
                    t.name,
                    "text" | "float8" | "bool" | "timestamptz" | "oid"
                )),
                boolean(true),
                text(","),
                oid(0),
                text(if is_array {
                    "array_subscript_handler"
                } else {
                    "-"
                }),
                oid(if is_array || t.name == "name" {
                    t.elem
                } else {
                    0
                }),
                oid(t.array),
                oid(io(0)),
                oid(io(1)),
                oid(io(2)),
                oid(io(3)),
                oid(0),
                oid(0),
                oid(0),
                text(if t.len == 8 { "d" } else { "i" }),
                text(if t.len > 0 { "p" } else { "x" }),
                boolean(false),
                oid(0),
                int(-1),
                int(0),
                oid(collation),
                NULL,
                NULL,
                NULL,
            ]
        })
        .collect();
    (cols, rows)
}

/// A synthetic OID for a type's input (0), output (1), receive (2) or send (3)
/// function.
pub fn proc_io_oid(type_oid: u32, which: u32) -> u32 {
    50_000 + type_oid * 4 + which
}

fn pg_index(rel: &Relations) -> View {
    let cols = columns(&[
        ("indexrelid", Oid),
        ("indrelid", Oid),
        ("indnatts", Int2),
        ("indnkeyatts", Int2),
        ("indisunique", Bool),
        ("indnullsnotdistinct", Bool),
        ("indisprimary", Bool),
        ("indisexclusion", Bool),
        ("indimmediate", Bool),
        ("indisclustered", Bool),
        ("indisvalid", Bool),
        ("indcheckxmin", Bool),
        ("indisready", Bool),
        ("indislive", Bool),
        ("indisreplident", Bool),
        ("indkey", SqlType::Int2Vector),
        ("indcollation", SqlType::OidVector),
        ("indclass", SqlType::OidVector),
        ("indoption", SqlType::Int2Vector),
        ("indexprs", Text),
        ("indpred", Text),
    ]);
    let mut rows = Vec::new();
    for r in &rel.list {
        for i in r.indexes() {
            let n = i.attnums.len() as i64;
            rows.push(vec![
                oid(i.oid),
                oid(r.oid()),
                int(n),
                int(n),
                boolean(i.unique),
                boolean(false),
                boolean(i.primary),
                boolean(false),
                boolean(true),
                boolean(false),
                boolean(true),
                boolean(false),
                boolean(true),
                boolean(true),
                boolean(false),
                Value::Array(i.attnums.iter().map(|a| int(*a as i64)).collect()),
                Value::Array(i.attnums.iter().map(|_| oid(0)).collect()),
                Value::Array(i.attnums.iter().map(|_| oid(0)).collect()),
                Value::Array(i.attnums.iter().map(|_| int(0)).collect()),
                if i.expressions.is_empty() {
                    NULL
                } else {
                    text(&i.expressions.join(", "))
                },
                NULL,
            ]);
        }
    }
    (cols, rows)
}

fn pg_constraint(rel: &Relations) -> View {
    let cols = columns(&[
        ("oid", Oid),
        ("conname", Text),
        ("connamespace", Oid),
        ("contype", Text),
        ("condeferrable", Bool),
        ("condeferred", Bool),
        ("convalidated", Bool),
        ("conrelid", Oid),
        ("contypid", Oid),
        ("conindid", Oid),
        ("conparentid", Oid),
        ("confrelid", Oid),
        ("confupdtype", Text),
        ("confdeltype", Text),
        ("confmatchtype", Text),
        ("conislocal", Bool),
        ("coninhcount", Int4),
        ("connoinherit", Bool),
        ("conkey", arr(Int2)),
        ("confkey", arr(Int2)),
        ("conpfeqop", arr(Oid)),
        ("conppeqop", arr(Oid)),
        ("conffeqop", arr(Oid)),
        ("confdelsetcols", arr(Int2)),
        ("conexclop", arr(Oid)),
        ("conbin", Text),
    ]);
    let mut rows: Vec<Row> = rel
        .list
        .iter()
        .filter_map(|r| {
            let key = r.key_attnum()?;
            Some(vec![
                oid(oids::primary_constraint(r.collection.id)),
                text(&r.primary_index_name()),
                oid(oids::PUBLIC),
                text("p"),
                boolean(false),
                boolean(false),
                boolean(true),
                oid(r.oid()),
                oid(0),
                oid(oids::primary_index(r.collection.id)),
                oid(0),
                oid(0),
                text(" "),
                text(" "),
                text(" "),
                boolean(true),
                int(0),
                boolean(true),
                Value::Array(vec![int(key as i64)]),
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
            ])
        })
        .collect();
    for f in rel.foreign_keys() {
        rows.push(vec![
            oid(f.oid),
            text(&f.fk.name),
            oid(oids::PUBLIC),
            text("f"),
            boolean(false),
            boolean(false),
            boolean(true),
            oid(f.table.oid()),
            oid(0),
            // The referenced key's index, as PostgreSQL records it.
            oid(oids::primary_index(f.referenced.collection.id)),
            oid(0),
            oid(f.referenced.oid()),
            text(f.fk.on_update.code()),
            text(f.fk.on_delete.code()),
            text(if f.fk.match_full { "f" } else { "s" }),
            boolean(true),
            int(0),
            boolean(true),
            Value::Array(vec![int(f.attnum as i64)]),
            Value::Array(vec![int(f.ref_attnum as i64)]),
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
        ]);
    }
    (cols, rows)
}

fn pg_attrdef(rel: &Relations) -> View {
    let cols = columns(&[
        ("oid", Oid),
        ("adrelid", Oid),
        ("adnum", Int2),
        ("adbin", Text),
    ]);
    let mut rows = Vec::new();
    for r in &rel.list {
        for (i, c) in r.columns.iter().enumerate() {
            if let Some(d) = &c.default {
                rows.push(vec![
                    oid(oids::attrdef(r.collection.id, i + 1)),
                    oid(r.oid()),
                    int(i as i64 + 1),
                    text(d),
                ]);
            }
        }
    }
    (cols, rows)
}

fn pg_database() -> View {
    let cols = columns(&[
        ("oid", Oid),
        ("datname", Text),
        ("datdba", Oid),
        ("encoding", Int4),
        ("datlocprovider", Text),
        ("datistemplate", Bool),
        ("datallowconn", Bool),
        ("datconnlimit", Int4),
        ("datfrozenxid", Int8),
        ("datminmxid", Int8),
        ("dattablespace", Oid),
        ("datcollate", Text),
        ("datctype", Text),
        ("daticulocale", Text),
        ("datcollversion", Text),
        ("datacl", arr(Text)),
    ]);
    let rows = vec![vec![
        oid(oids::DATABASE),
        text("tissdb"),
        oid(oids::ROLE),
        int(6),
        text("c"),
        boolean(false),
        boolean(true),
        int(-1),
        int(0),
        int(1),
        oid(1663),
        text("C"),
        text("C"),
        NULL,
        NULL,
        NULL,
    ]];
    (cols, rows)
}

/// The roles: `tissdb` (OID 10) and, if another, the session's user; both superusers
/// in the open default mode.
fn role_names(settings: &Settings<'_>) -> Vec<(u32, String)> {
    let mut roles = vec![(oids::ROLE, "tissdb".to_string())];
    if settings.user != "tissdb" && !settings.user.is_empty() {
        roles.push((oids::ROLE + 1, settings.user.to_string()));
    }
    roles
}

fn pg_roles(settings: &Settings<'_>) -> View {
    let cols = columns(&[
        ("rolname", Text),
        ("rolsuper", Bool),
        ("rolinherit", Bool),
        ("rolcreaterole", Bool),
        ("rolcreatedb", Bool),
        ("rolcanlogin", Bool),
        ("rolreplication", Bool),
        ("rolconnlimit", Int4),
        ("rolpassword", Text),
        ("rolvaliduntil", Timestamptz),
        ("rolbypassrls", Bool),
        ("rolconfig", arr(Text)),
        ("oid", Oid),
    ]);
    let rows = role_names(settings)
        .into_iter()
        .map(|(o, n)| {
            vec![
                text(&n),
                boolean(true),
                boolean(true),
                boolean(true),
                boolean(true),
                boolean(true),
                boolean(true),
                int(-1),
                text("********"),
                NULL,
                boolean(true),
                NULL,
                oid(o),
            ]
        })
        .collect();
    (cols, rows)
}

fn pg_user(settings: &Settings<'_>) -> View {
    let cols = columns(&[
        ("usename", Text),
        ("usesysid", Oid),
        ("usecreatedb", Bool),
        ("usesuper", Bool),
        ("userepl", Bool),
        ("usebypassrls", Bool),
        ("passwd", Text),
        ("valuntil", Timestamptz),
        ("useconfig", arr(Text)),
    ]);
    let rows = role_names(settings)
        .into_iter()
        .map(|(o, n)| {
            vec![
                text(&n),
                oid(o),
                boolean(true),
                boolean(true),
                boolean(true),
                boolean(true),
                text("********"),
                NULL,
                NULL,
            ]
        })
        .collect();
    (cols, rows)
}

/// The session's statements prepared by name in SQL (not those prepared over the
/// wire: those are the front-end's); the plan counts are not kept (0).
fn pg_prepared_statements(settings: &Settings<'_>) -> View {
    let cols = columns(&[
        ("name", Text),
        ("statement", Text),
        ("prepare_time", Timestamptz),
        ("parameter_types", arr(Text)),
        ("from_sql", Bool),
        ("generic_plans", Int8),
        ("custom_plans", Int8),
    ]);
    let rows = settings
        .prepared
        .iter()
        .map(|p| {
            vec![
                text(&p.name),
                text(&p.statement),
                Value::DateTime(p.prepare_time),
                Value::Array(p.parameter_types.iter().map(|t| text(t)).collect()),
                boolean(true),
                int(0),
                int(0),
            ]
        })
        .collect();
    (cols, rows)
}

fn pg_settings(settings: &Settings<'_>) -> View {
    let cols = columns(&[
        ("name", Text),
        ("setting", Text),
        ("unit", Text),
        ("category", Text),
        ("short_desc", Text),
        ("extra_desc", Text),
        ("context", Text),
        ("vartype", Text),
        ("source", Text),
        ("min_val", Text),
        ("max_val", Text),
        ("enumvals", arr(Text)),
        ("boot_val", Text),
        ("reset_val", Text),
        ("sourcefile", Text),
        ("sourceline", Int4),
        ("pending_restart", Bool),
    ]);
    let rows = settings
        .all
        .iter()
        .map(|(n, v)| {
            let vartype = if v == "on" || v == "off" {
                "bool"
            } else if v.parse::<i64>().is_ok() {
                "integer"
            } else {
                "string"
            };
            vec![
                text(n),
                text(v),
                NULL,
                text("TissDB"),
                text(""),
                NULL,
                text("user"),
                text(vartype),
                text("default"),
                NULL,
                NULL,
                NULL,
                text(v),
                text(v),
                NULL,
                NULL,
                boolean(false),
            ]
        })
        .collect();
    (cols, rows)
}

fn pg_proc() -> View {
    let cols = columns(&[
        ("oid", Oid),
        ("proname", Text),
        ("pronamespace", Oid),
        ("proowner", Oid),
        ("prolang", Oid),
        ("procost", Float4),
        ("prorows", Float4),
        ("provariadic", Oid),
        ("prosupport", Text),
        ("prokind", Text),
        ("prosecdef", Bool),
        ("proleakproof", Bool),
        ("proisstrict", Bool),
        ("proretset", Bool),
        ("provolatile", Text),
        ("proparallel", Text),
        ("pronargs", Int2),
        ("pronargdefaults", Int2),
        ("prorettype", Oid),
        ("proargtypes", SqlType::OidVector),
        ("proallargtypes", arr(Oid)),
        ("proargmodes", arr(Text)),
        ("proargnames", arr(Text)),
        ("proargdefaults", Text),
        ("protrftypes", arr(Oid)),
        ("prosrc", Text),
        ("probin", Text),
        ("prosqlbody", Text),
        ("proconfig", arr(Text)),
        ("proacl", arr(Text)),
    ]);
    let mut rows: Vec<Row> = FUNCTIONS
        .iter()
        .enumerate()
        .map(|(i, (name, kind, ret))| {
            proc_row(
                FIRST_PROC_OID + i as u32,
                name,
                kind,
                *ret,
                matches!(*name, "generate_series" | "unnest"),
            )
        })
        .collect();
    for (o, name, ret) in [
        (builtin::ARRAY_IN_OID, "array_in", 2277),
        (builtin::ARRAY_OUT_OID, "array_out", 2275),
        (builtin::ARRAY_RECV_OID, "array_recv", 2277),
        (builtin::ARRAY_SEND_OID, "array_send", 17),
    ] {
        rows.push(proc_row(o, name, "f", ret, false));
    }
    for t in TYPES
        .iter()
        .filter(|t| !(t.category == "A" && t.array == 0))
    {
        for (which, suffix, ret) in [
            (0, "in", t.oid),
            (1, "out", 2275),
            (2, "recv", t.oid),
            (3, "send", 17),
        ] {
            rows.push(proc_row(
                proc_io_oid(t.oid, which),
                &format!("{}{suffix}", t.name),
                "f",
                ret,
                false,
            ));
        }
    }
    (cols, rows)
}

fn proc_row(o: u32, name: &str, kind: &str, ret: u32, set: bool) -> Row {
    vec![
        oid(o),
        text(name),
        oid(oids::PG_CATALOG),
        oid(oids::ROLE),
        oid(12),
        Value::Float(1.0),
        Value::Float(if set { 1000.0 } else { 0.0 }),
        oid(0),
        text("-"),
        text(kind),
        boolean(false),
        boolean(false),
        boolean(false),
        boolean(set),
        text("i"),
        text("s"),
        int(0),
        int(0),
        oid(ret),
        Value::Array(Vec::new()),
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        text(name),
        NULL,
        NULL,
        NULL,
        NULL,
    ]
}

fn pg_tables(rel: &Relations) -> View {
    let cols = columns(&[
        ("schemaname", Text),
        ("tablename", Text),
        ("tableowner", Text),
        ("tablespace", Text),
        ("hasindexes", Bool),
        ("hasrules", Bool),
        ("hastriggers", Bool),
        ("rowsecurity", Bool),
    ]);
    let rows = rel
        .list
        .iter()
        .map(|r| {
            vec![
                text("public"),
                text(&r.collection.name),
                text("tissdb"),
                NULL,
                boolean(true),
                boolean(false),
                boolean(false),
                boolean(false),
            ]
        })
        .collect();
    (cols, rows)
}

/// `pg_indexes`: one row per index, the primary key's included, as PostgreSQL has them.
fn pg_indexes(rel: &Relations) -> View {
    let cols = columns(&[
        ("schemaname", Text),
        ("tablename", Text),
        ("indexname", Text),
        ("tablespace", Text),
        ("indexdef", Text),
    ]);
    let mut rows = Vec::new();
    for r in &rel.list {
        for i in r.indexes() {
            rows.push(vec![
                text("public"),
                text(&r.collection.name),
                text(&i.name),
                NULL,
                text(&i.definition),
            ]);
        }
    }
    (cols, rows)
}

/// `pg_stat_wal`, PostgreSQL 15's columns, from the WAL's counters since the server
/// opened its data directory (`stats_reset`). A TissDB WAL record is one transaction's
/// (or one autocommit statement's) writes, and each write of the log is made durable as
/// it is written (O_DIRECT | O_DSYNC, or a write and fdatasync), so `wal_sync` equals
/// `wal_write`; `wal_records / wal_write` is how many commits a write carried (group
/// commit). No full-page images, no buffer to fill, no I/O timing: those are 0.
pub fn pg_stat_wal(stats: &crate::storage::wal::WalStats, opened_at: i64) -> View {
    let count = |n: u64| int(i64::try_from(n).unwrap_or(i64::MAX));
    (
        columns(&[
            ("wal_records", Int8),
            ("wal_fpi", Int8),
            ("wal_bytes", SqlType::Numeric),
            ("wal_buffers_full", Int8),
            ("wal_write", Int8),
            ("wal_sync", Int8),
            ("wal_write_time", SqlType::Float8),
            ("wal_sync_time", SqlType::Float8),
            ("stats_reset", Timestamptz),
        ]),
        vec![vec![
            count(stats.records),
            int(0),
            Value::Numeric(stats.bytes.to_string()),
            int(0),
            count(stats.writes),
            count(stats.writes),
            Value::Float(0.0),
            Value::Float(0.0),
            Value::DateTime(opened_at),
        ]],
    )
}

fn pg_stat_user_tables(rel: &Relations) -> View {
    let names = [
        "seq_scan",
        "seq_tup_read",
        "idx_scan",
        "idx_tup_fetch",
        "n_tup_ins",
        "n_tup_upd",
        "n_tup_del",
        "n_tup_hot_upd",
        "n_live_tup",
        "n_dead_tup",
        "n_mod_since_analyze",
        "n_ins_since_vacuum",
    ];
    let mut spec = vec![("relid", Oid), ("schemaname", Text), ("relname", Text)];
    spec.extend(names.iter().map(|n| (*n, Int8)));
    spec.extend([
        ("last_vacuum", Timestamptz),
        ("last_autovacuum", Timestamptz),
        ("last_analyze", Timestamptz),
        ("last_autoanalyze", Timestamptz),
        ("vacuum_count", Int8),
        ("autovacuum_count", Int8),
        ("analyze_count", Int8),
        ("autoanalyze_count", Int8),
    ]);
    let cols = columns(&spec);
    let rows = rel
        .list
        .iter()
        .map(|r| {
            let mut row = vec![oid(r.oid()), text("public"), text(&r.collection.name)];
            row.extend(names.iter().map(|n| match *n {
                "n_live_tup" => int(r.rows as i64),
                _ => int(0),
            }));
            row.extend([NULL, NULL, NULL, NULL, int(0), int(0), int(0), int(0)]);
            row
        })
        .collect();
    (cols, rows)
}
