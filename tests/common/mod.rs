//! Helpers shared by the engine's integration tests: a database in a temporary
//! directory, and SQL outcomes rendered as text lines.

#![allow(dead_code)]

use std::sync::Arc;

use tissdb::query::Outcome;
use tissdb::{Config, Database, Session};

/// Opens (or reopens) the database in `dir` with default settings.
pub fn open_at(dir: &std::path::Path) -> Arc<Database> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    Database::open(config).unwrap()
}

/// A database in a new temporary directory (removed when the guard drops).
pub fn open() -> (tempfile::TempDir, Arc<Database>) {
    let dir = tempfile::tempdir().unwrap();
    let db = open_at(dir.path());
    (dir, db)
}

/// Runs SQL and renders every outcome as text lines (rows as `a|b|c`, NULL as `NULL`).
pub fn run(s: &mut Session, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in s.execute_batch(sql) {
        match r {
            Ok(Outcome::Rows { columns, rows, .. }) => {
                for row in rows {
                    let cells: Vec<String> = row
                        .iter()
                        .zip(columns.iter())
                        .map(|(v, c)| c.ty.format_text(v).unwrap_or_else(|| "NULL".into()))
                        .collect();
                    out.push(cells.join("|"));
                }
            }
            Ok(Outcome::Command { tag }) => out.push(tag),
            Err(e) => out.push(format!("ERROR {}: {e}", e.sqlstate())),
        }
    }
    out
}
