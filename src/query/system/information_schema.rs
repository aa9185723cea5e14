//! `information_schema`: the SQL-standard views over the user relations (tables,
//! columns with `ordinal_position`, constraints) that Grafana, Metabase and friends read.

use crate::doc::Value;
use crate::query::types::SqlType::{self, Int4, Text};

use super::builtin::FUNCTIONS;
use super::{Relations, View, columns, int, system_relations, text};

const NULL: Value = Value::Null;

fn yes_no(b: bool) -> Value {
    text(if b { "YES" } else { "NO" })
}

/// The information_schema view `name`.
pub fn view(rel: &Relations, name: &str) -> Option<View> {
    Some(match name {
        "schemata" => (
            columns(&[
                ("catalog_name", Text),
                ("schema_name", Text),
                ("schema_owner", Text),
                ("default_character_set_catalog", Text),
                ("default_character_set_schema", Text),
                ("default_character_set_name", Text),
                ("sql_path", Text),
            ]),
            ["information_schema", "pg_catalog", "public"]
                .iter()
                .map(|s| {
                    vec![
                        text("tissdb"),
                        text(s),
                        text("tissdb"),
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                    ]
                })
                .collect(),
        ),
        "tables" => tables(rel),
        "columns" => columns_view(rel),
        "views" => (
            columns(&[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("view_definition", Text),
                ("check_option", Text),
                ("is_updatable", Text),
                ("is_insertable_into", Text),
                ("is_trigger_updatable", Text),
                ("is_trigger_deletable", Text),
                ("is_trigger_insertable_into", Text),
            ]),
            Vec::new(),
        ),
        "table_constraints" => (
            columns(&[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("constraint_type", Text),
                ("is_deferrable", Text),
                ("initially_deferred", Text),
                ("enforced", Text),
                ("nulls_distinct", Text),
            ]),
            rel.list
                .iter()
                .filter(|r| r.key_attnum().is_some())
                .map(|r| (r.primary_index_name(), r, "PRIMARY KEY"))
                .chain(
                    rel.foreign_keys()
                        .into_iter()
                        .map(|f| (f.fk.name.clone(), f.table, "FOREIGN KEY")),
                )
                .map(|(name, r, kind)| {
                    vec![
                        text("tissdb"),
                        text("public"),
                        text(&name),
                        text("tissdb"),
                        text("public"),
                        text(&r.collection.name),
                        text(kind),
                        text("NO"),
                        text("NO"),
                        text("YES"),
                        NULL,
                    ]
                })
                .collect(),
        ),
        "key_column_usage" | "constraint_column_usage" => {
            let key_usage = name == "key_column_usage";
            // PostgreSQL's column orders differ between the two views.
            let mut spec = if key_usage {
                vec![
                    ("constraint_catalog", Text),
                    ("constraint_schema", Text),
                    ("constraint_name", Text),
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("column_name", Text),
                ]
            } else {
                vec![
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("column_name", Text),
                    ("constraint_catalog", Text),
                    ("constraint_schema", Text),
                    ("constraint_name", Text),
                ]
            };
            if key_usage {
                spec.push(("ordinal_position", Int4));
                spec.push(("position_in_unique_constraint", Int4));
            }
            // A primary key uses its column; a foreign key its referencing column (in
            // key_column_usage) or the referenced one (in constraint_column_usage).
            let mut uses: Vec<(String, &str, String, Value)> = rel
                .list
                .iter()
                .filter(|r| r.key_attnum().is_some())
                .map(|r| {
                    (
                        r.primary_index_name(),
                        r.collection.name.as_str(),
                        r.key_column(),
                        NULL,
                    )
                })
                .collect();
            for f in rel.foreign_keys() {
                uses.push(if key_usage {
                    (
                        f.fk.name.clone(),
                        f.table.collection.name.as_str(),
                        f.fk.column.clone(),
                        int(1),
                    )
                } else {
                    (
                        f.fk.name.clone(),
                        f.referenced.collection.name.as_str(),
                        f.fk.ref_column.clone(),
                        NULL,
                    )
                });
            }
            let rows = uses
                .into_iter()
                .map(|(constraint, table, column, position)| {
                    let constraint = [text("tissdb"), text("public"), text(&constraint)];
                    let table = [text("tissdb"), text("public"), text(table), text(&column)];
                    if key_usage {
                        let mut row: Vec<Value> = constraint.into_iter().chain(table).collect();
                        row.push(int(1));
                        row.push(position);
                        row
                    } else {
                        table.into_iter().chain(constraint).collect()
                    }
                })
                .collect();
            (columns(&spec), rows)
        }
        "referential_constraints" => (
            columns(&[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("unique_constraint_catalog", Text),
                ("unique_constraint_schema", Text),
                ("unique_constraint_name", Text),
                ("match_option", Text),
                ("update_rule", Text),
                ("delete_rule", Text),
            ]),
            rel.foreign_keys()
                .into_iter()
                .map(|f| {
                    vec![
                        text("tissdb"),
                        text("public"),
                        text(&f.fk.name),
                        text("tissdb"),
                        text("public"),
                        text(&f.referenced.primary_index_name()),
                        text(if f.fk.match_full { "FULL" } else { "NONE" }),
                        text(f.fk.on_update.sql()),
                        text(f.fk.on_delete.sql()),
                    ]
                })
                .collect(),
        ),
        "routines" => (
            columns(&[
                ("specific_catalog", Text),
                ("specific_schema", Text),
                ("specific_name", Text),
                ("routine_catalog", Text),
                ("routine_schema", Text),
                ("routine_name", Text),
                ("routine_type", Text),
                ("data_type", Text),
                ("routine_body", Text),
                ("routine_definition", Text),
                ("external_language", Text),
            ]),
            FUNCTIONS
                .iter()
                .map(|(name, _, _)| {
                    vec![
                        text("tissdb"),
                        text("pg_catalog"),
                        text(name),
                        text("tissdb"),
                        text("pg_catalog"),
                        text(name),
                        text("FUNCTION"),
                        NULL,
                        text("EXTERNAL"),
                        NULL,
                        text("INTERNAL"),
                    ]
                })
                .collect(),
        ),
        "parameters" => (
            columns(&[
                ("specific_catalog", Text),
                ("specific_schema", Text),
                ("specific_name", Text),
                ("ordinal_position", Int4),
                ("parameter_mode", Text),
                ("parameter_name", Text),
                ("data_type", Text),
            ]),
            Vec::new(),
        ),
        _ => return None,
    })
}

fn tables(rel: &Relations) -> View {
    let cols = columns(&[
        ("table_catalog", Text),
        ("table_schema", Text),
        ("table_name", Text),
        ("table_type", Text),
        ("self_referencing_column_name", Text),
        ("reference_generation", Text),
        ("user_defined_type_catalog", Text),
        ("user_defined_type_schema", Text),
        ("user_defined_type_name", Text),
        ("is_insertable_into", Text),
        ("is_typed", Text),
        ("commit_action", Text),
    ]);
    let row = |schema: &str, name: &str, view: bool| {
        vec![
            text("tissdb"),
            text(schema),
            text(name),
            text(if view { "VIEW" } else { "BASE TABLE" }),
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            yes_no(!view),
            text("NO"),
            NULL,
        ]
    };
    let mut rows: Vec<_> = rel
        .list
        .iter()
        .map(|r| row("public", &r.collection.name, false))
        .collect();
    for (ns, name, _, is_view) in system_relations() {
        let schema = if ns == super::oids::PG_CATALOG {
            "pg_catalog"
        } else {
            "information_schema"
        };
        rows.push(row(schema, name, is_view));
    }
    (cols, rows)
}

/// information_schema's `data_type` and `udt_name` of a type.
fn standard_type(ty: &SqlType) -> (String, String) {
    let udt = super::builtin::type_by_oid(ty.oid()).map_or("text", |t| t.name);
    let data_type = match ty {
        SqlType::Array(_) => "ARRAY".to_string(),
        SqlType::Varchar(_) => "character varying".to_string(),
        SqlType::NumericTyped(..) => "numeric".to_string(),
        other => other.name(),
    };
    (data_type, udt.to_string())
}

fn columns_view(rel: &Relations) -> View {
    let cols = columns(&[
        ("table_catalog", Text),
        ("table_schema", Text),
        ("table_name", Text),
        ("column_name", Text),
        ("ordinal_position", Int4),
        ("column_default", Text),
        ("is_nullable", Text),
        ("data_type", Text),
        ("character_maximum_length", Int4),
        ("character_octet_length", Int4),
        ("numeric_precision", Int4),
        ("numeric_precision_radix", Int4),
        ("numeric_scale", Int4),
        ("datetime_precision", Int4),
        ("interval_type", Text),
        ("interval_precision", Int4),
        ("character_set_catalog", Text),
        ("character_set_schema", Text),
        ("character_set_name", Text),
        ("collation_catalog", Text),
        ("collation_schema", Text),
        ("collation_name", Text),
        ("domain_catalog", Text),
        ("domain_schema", Text),
        ("domain_name", Text),
        ("udt_catalog", Text),
        ("udt_schema", Text),
        ("udt_name", Text),
        ("scope_catalog", Text),
        ("scope_schema", Text),
        ("scope_name", Text),
        ("maximum_cardinality", Int4),
        ("dtd_identifier", Text),
        ("is_self_referencing", Text),
        ("is_identity", Text),
        ("identity_generation", Text),
        ("identity_start", Text),
        ("identity_increment", Text),
        ("identity_maximum", Text),
        ("identity_minimum", Text),
        ("identity_cycle", Text),
        ("is_generated", Text),
        ("generation_expression", Text),
        ("is_updatable", Text),
    ]);
    let mut rows = Vec::new();
    for r in &rel.list {
        for (i, c) in r.columns.iter().enumerate() {
            let (data_type, udt) = standard_type(&c.ty);
            let (char_len, precision, radix, scale, dt_precision) = match &c.ty {
                SqlType::Varchar(Some(n)) => (int(i64::from(*n)), NULL, NULL, NULL, NULL),
                SqlType::Int2 => (NULL, int(16), int(2), int(0), NULL),
                SqlType::Int4 => (NULL, int(32), int(2), int(0), NULL),
                SqlType::Int8 => (NULL, int(64), int(2), int(0), NULL),
                SqlType::Float4 => (NULL, int(24), int(2), NULL, NULL),
                SqlType::Float8 => (NULL, int(53), int(2), NULL, NULL),
                SqlType::NumericTyped(p, s) => {
                    (NULL, int(i64::from(*p)), int(10), int(i64::from(*s)), NULL)
                }
                SqlType::Numeric => (NULL, NULL, int(10), NULL, NULL),
                SqlType::Date => (NULL, NULL, NULL, NULL, int(0)),
                SqlType::Timestamp | SqlType::Timestamptz => (NULL, NULL, NULL, NULL, int(6)),
                _ => (NULL, NULL, NULL, NULL, NULL),
            };
            let octet = match &char_len {
                Value::Int(n) => int(n * 4),
                _ if c.ty.is_text() => int(1_073_741_824),
                _ => NULL,
            };
            rows.push(vec![
                text("tissdb"),
                text("public"),
                text(&r.collection.name),
                text(&c.name),
                int(i as i64 + 1),
                c.default.as_deref().map_or(NULL, text),
                yes_no(!c.not_null),
                text(&data_type),
                char_len,
                octet,
                precision,
                radix,
                scale,
                dt_precision,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                text("tissdb"),
                text("pg_catalog"),
                text(&udt),
                NULL,
                NULL,
                NULL,
                NULL,
                text(&(i + 1).to_string()),
                text("NO"),
                text("NO"),
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                text("NO"),
                text("NEVER"),
                NULL,
                text("YES"),
            ]);
        }
    }
    (cols, rows)
}
