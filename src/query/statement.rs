//! Running statements: parse, bind, plan, execute; DDL and DML; session commands.

use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::Outcome;
use crate::query::types::SqlType;
use crate::session::{Prepared, Session};

/// A parsed statement.
pub type Statement = tissdb_dialect::sqlparser::ast::Statement;

pub fn execute_batch(session: &mut Session, sql: &str) -> Vec<Result<Outcome>> {
    let _ = (session, sql);
    vec![Err(Error::invalid(SqlState::FEATURE_NOT_SUPPORTED, "SQL is being built"))]
}

pub fn prepare(session: &mut Session, sql: &str, hints: &[Option<SqlType>]) -> Result<Prepared> {
    let _ = (session, hints);
    Err(Error::invalid(SqlState::FEATURE_NOT_SUPPORTED, format!("SQL is being built: {sql}")))
}

pub fn execute(session: &mut Session, prepared: &Prepared, params: &[Value]) -> Result<Outcome> {
    let _ = (session, prepared, params);
    Err(Error::invalid(SqlState::FEATURE_NOT_SUPPORTED, "SQL is being built"))
}

pub fn show_setting(session: &Session, name: &str) -> Option<String> {
    session.settings.get(&name.to_ascii_lowercase()).cloned()
}
