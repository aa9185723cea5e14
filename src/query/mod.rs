//! TissQL execution: from a parsed statement to rows.
//!
//! 1. [`binder`] resolves names against the catalog (collections, columns, field paths)
//!    and types every expression and parameter, producing a logical [`plan::Node`] tree.
//! 2. [`optimizer`] rewrites the tree in ordered passes: constant folding, predicate
//!    pushdown into scans, key lookups, and index selection ([`access`]).
//! 3. [`exec`] turns the tree into volcano operators (one per file), each an iterator of
//!    rows, and [`statement`] runs DDL and DML around them.
//!
//! Values are [`crate::doc::Value`]s; [`types::SqlType`] says what they are to a
//! PostgreSQL client.

pub mod access;
pub mod auto_param;
pub mod binder;
pub mod copy;
pub mod cursor;
pub mod decorrelate;
pub mod exec;
pub mod expr;
pub mod functions;
pub mod graph;
pub mod join_order;
pub mod named;
pub mod optimizer;
pub mod plan;
pub mod plan_cache;
pub mod predicate;
pub mod references;
pub mod schema;
pub mod sink;
pub mod statement;
pub mod system;
pub mod timeout;
pub mod types;

use std::sync::Arc;

use crate::doc::Value;
pub use types::SqlType;

/// A row of values.
pub type Row = Vec<Value>;

/// A result column as a client sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    /// The OID of the table the column comes from, 0 if none.
    pub table_oid: u32,
    /// The column's number in that table, 0 if none.
    pub column_number: i16,
    /// For a projected document field (`specs.bluetooth_version`), its full path; REST
    /// answers nest the value under it.
    pub path: Vec<String>,
    /// Set on a json or jsonb result column whose values come as their binary encoding
    /// (a [`Value::Binary`] from [`crate::doc::binary::encoded_value`], or NULL), for a
    /// client's writer to write as JSON text straight from there
    /// ([`types::write_json_encoded`]) without the value ever being decoded. Only a
    /// session that asks for it gets such columns (see
    /// [`crate::Session::set_json_encoded_results`]).
    pub json_encoded: bool,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: SqlType) -> Self {
        Column {
            name: name.into(),
            ty,
            table_oid: 0,
            column_number: 0,
            path: Vec::new(),
            json_encoded: false,
        }
    }
}

/// The values of `columns`' encoded json columns (see [`Column::json_encoded`]) decoded
/// in `rows`, for a writer that needs them as values (or an answer in other columns).
pub fn decode_json_encoded(rows: &mut [Row], columns: &[Column]) -> crate::error::Result<()> {
    if !columns.iter().any(|c| c.json_encoded) {
        return Ok(());
    }
    for row in rows {
        for (v, c) in row.iter_mut().zip(columns) {
            if c.json_encoded
                && let Value::Binary(bytes) = v
            {
                *v = crate::doc::binary::decode(bytes)?;
            }
        }
    }
    Ok(())
}

/// What running one statement produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Rows (SELECT, RETURNING, SHOW, EXPLAIN). `command` is the command tag without
    /// the row count: `SELECT`, `INSERT 0`, `UPDATE`, `DELETE`, `SHOW`, `EXPLAIN`.
    Rows {
        /// Shared with the statement or plan that describes them (a prepared statement
        /// answers with its described columns at every execution, without copying).
        columns: Arc<Vec<Column>>,
        rows: Vec<Row>,
        command: &'static str,
    },
    /// A command without rows, with its PostgreSQL command tag (`INSERT 0 3`, `UPDATE 2`,
    /// `CREATE TABLE`, `BEGIN`, ...).
    Command { tag: String },
}

impl Outcome {
    pub fn command(tag: impl Into<String>) -> Self {
        Outcome::Command { tag: tag.into() }
    }

    /// The command tag: the stored one, or `SELECT n` for rows.
    pub fn tag(&self) -> String {
        match self {
            Outcome::Rows { rows, command, .. } => format!("{command} {}", rows.len()),
            Outcome::Command { tag } => tag.clone(),
        }
    }
}
