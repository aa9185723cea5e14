//! System views computed from the catalog when a query names them: `pg_indexes` (the
//! rest of `pg_catalog` and `information_schema` come with the compatibility work). A
//! view binds to literal rows, so every clause of SELECT works on it.

use sqlparser::ast;
use tissdb_dialect::sqlparser;

use crate::catalog::Catalog;
use crate::doc::Value;
use crate::query::Row;
use crate::query::binder::ident;
use crate::query::types::SqlType;

/// A view's columns (name, type) and rows.
pub type View = (Vec<(String, SqlType)>, Vec<Row>);

/// The view `name` names (`pg_indexes`, `pg_catalog.pg_indexes`), as its columns and
/// rows; None if it names no system view.
pub fn view(catalog: &Catalog, name: &ast::ObjectName) -> Option<View> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(ident)
        .collect();
    let view = match parts.as_slice() {
        [v] => v.as_str(),
        [schema, v] if schema == "pg_catalog" => v.as_str(),
        _ => return None,
    };
    match view {
        "pg_indexes" => Some(pg_indexes(catalog)),
        _ => None,
    }
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

/// `pg_indexes`: one row per ready index, as PostgreSQL's view has them.
fn pg_indexes(catalog: &Catalog) -> View {
    let columns = [
        "schemaname",
        "tablename",
        "indexname",
        "tablespace",
        "indexdef",
    ]
    .iter()
    .map(|c| (c.to_string(), SqlType::Text))
    .collect();
    let mut rows = Vec::new();
    for c in catalog.list() {
        for i in c.ready_indexes() {
            rows.push(vec![
                text("public"),
                text(&c.name),
                text(&i.name),
                Value::Null,
                text(&i.definition(&c.name)),
            ]);
        }
    }
    (columns, rows)
}
