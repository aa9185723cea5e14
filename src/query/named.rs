//! Prepared statements of SQL: `PREPARE name [(type, ...)] AS statement`, `EXECUTE
//! name [(value, ...)]`, `DEALLOCATE [PREPARE] name | ALL`, and the rows of
//! `pg_prepared_statements`. A session holds its statements by name until it
//! deallocates them, runs `DISCARD ALL` or ends; they are not transactional (a rolled
//! back PREPARE stays), as in PostgreSQL. Each keeps its plan between executions as a
//! statement prepared over the wire does ([`crate::query::plan_cache`]).
//!
//! The statements a driver prepares over the wire (Parse) share the names, as in
//! PostgreSQL: the front-end holds them and tells the session their names
//! ([`NamedStatements::front_end_prepared`]), so that `DEALLOCATE name` and
//! `DEALLOCATE ALL` (how psycopg and Rails drop the statements they prepared over the
//! wire) reach them too, handing their names back for the front-end to forget
//! ([`NamedStatements::take_deallocated`]), and `PREPARE` refuses a name in use.
//! `pg_prepared_statements` lists only the statements prepared in SQL.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sqlparser::ast;
use tissdb_dialect::{TissStatement, sqlparser};

use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::binder::{self, ident, unsupported};
use crate::query::types::SqlType;
use crate::query::{Column, Outcome};
use crate::session::{Prepared, Session};

/// Most statements one session may hold prepared by name.
pub const MAX_NAMED_STATEMENTS: usize = 10_000;

const INVALID_SQL_STATEMENT_NAME: SqlState = SqlState("26000");
const DUPLICATE_PREPARED_STATEMENT: SqlState = SqlState("42P05");

struct Named {
    prepared: Arc<Prepared>,
    /// The PREPARE statement's text, as `pg_prepared_statements` shows it.
    text: String,
    /// When it was prepared, in microseconds since the epoch.
    prepared_at: i64,
}

/// A session's statements prepared by name.
#[derive(Default)]
pub struct NamedStatements {
    by_name: BTreeMap<String, Named>,
    /// Names of the statements the front-end holds prepared over the wire.
    front_end: HashSet<String>,
    /// Front-end statements a DEALLOCATE dropped, for the front-end to forget.
    deallocated: Vec<String>,
}

/// One statement as `pg_prepared_statements` shows it.
pub struct NamedRow {
    pub name: String,
    pub statement: String,
    pub prepare_time: i64,
    pub parameter_types: Vec<String>,
}

impl NamedStatements {
    /// The columns `EXECUTE name` returns and the types of its arguments (for
    /// Describe).
    pub fn describe(&self, name: &ast::ObjectName) -> Result<(Vec<Column>, Vec<SqlType>)> {
        let prepared = &self.get(&statement_name(name)?)?.prepared;
        Ok((prepared.columns.to_vec(), prepared.param_types.clone()))
    }

    /// Every statement, in name order.
    pub fn rows(&self) -> Vec<NamedRow> {
        self.by_name
            .iter()
            .map(|(name, n)| NamedRow {
                name: name.clone(),
                statement: n.text.clone(),
                prepare_time: n.prepared_at,
                parameter_types: n.prepared.param_types.iter().map(SqlType::name).collect(),
            })
            .collect()
    }

    /// The front-end prepared a statement of this name over the wire.
    pub fn front_end_prepared(&mut self, name: &str) {
        if !name.is_empty() {
            self.front_end.insert(name.to_string());
        }
    }

    /// The front-end closed its statement of this name.
    pub fn front_end_closed(&mut self, name: &str) {
        self.front_end.remove(name);
    }

    /// The front-end statements DEALLOCATE dropped since the last call.
    pub fn take_deallocated(&mut self) -> Vec<String> {
        std::mem::take(&mut self.deallocated)
    }

    /// Deallocates every statement, those of the front-end too (`DEALLOCATE ALL`,
    /// `DISCARD ALL`).
    pub fn clear(&mut self) {
        self.by_name.clear();
        self.deallocated.extend(self.front_end.drain());
    }

    fn get(&self, name: &str) -> Result<&Named> {
        self.by_name.get(name).ok_or_else(|| {
            Error::invalid(
                INVALID_SQL_STATEMENT_NAME,
                format!("prepared statement \"{name}\" does not exist"),
            )
        })
    }
}

/// `PREPARE name [(types)] AS statement`: binds the statement now (its parameters take
/// the declared types, the rest the types their use gives them) and keeps it.
pub fn prepare(
    session: &mut Session,
    name: &ast::Ident,
    data_types: &[ast::DataType],
    statement: &ast::Statement,
    text: String,
) -> Result<Outcome> {
    let name = ident(name);
    if session.named.by_name.contains_key(&name) || session.named.front_end.contains(&name) {
        return Err(Error::invalid(
            DUPLICATE_PREPARED_STATEMENT,
            format!("prepared statement \"{name}\" already exists"),
        ));
    }
    if session.named.by_name.len() >= MAX_NAMED_STATEMENTS {
        return Err(Error::limit(format!(
            "a session may hold at most {MAX_NAMED_STATEMENTS} prepared statements \
             (DEALLOCATE some first)"
        )));
    }
    if !matches!(
        statement,
        ast::Statement::Query(_)
            | ast::Statement::Insert(_)
            | ast::Statement::Update(_)
            | ast::Statement::Delete(_)
    ) {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            "PREPARE takes a SELECT, VALUES, INSERT, UPDATE or DELETE statement",
        ));
    }
    let hints = data_types
        .iter()
        .map(|t| binder::data_type(t).map(Some))
        .collect::<Result<Vec<_>>>()?;
    let statement = TissStatement::Sql(Box::new(statement.clone()));
    let prepared =
        crate::query::statement::prepare_parsed(session, statement, text.clone(), &hints)?;
    session.named.by_name.insert(
        name,
        Named {
            prepared: Arc::new(prepared),
            text,
            prepared_at: chrono::Utc::now().timestamp_micros(),
        },
    );
    Ok(Outcome::command("PREPARE"))
}

/// `EXECUTE name [(args)]`: the arguments are evaluated (they may use the parameters
/// `params` of the EXECUTE statement itself), converted to the statement's parameter
/// types, and the statement runs with them; its answer is the EXECUTE's.
pub fn execute(
    session: &mut Session,
    stmt: &ast::Statement,
    params: &[Value],
    hints: &[Option<SqlType>],
) -> Result<Outcome> {
    let ast::Statement::Execute {
        name: Some(name),
        parameters,
        immediate: false,
        into,
        using,
        output: false,
        default: false,
        ..
    } = stmt
    else {
        return Err(unsupported(
            "EXECUTE other than EXECUTE name [(value, ...)]",
        ));
    };
    if !into.is_empty() || !using.is_empty() {
        return Err(unsupported("EXECUTE ... INTO or USING"));
    }
    let name = statement_name(name)?;
    let prepared = session.named.get(&name)?.prepared.clone();
    let expected = prepared.param_types.len();
    if parameters.len() != expected {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            format!(
                "wrong number of parameters for prepared statement \"{name}\": expected \
                 {expected}, got {}",
                parameters.len()
            ),
        ));
    }
    let values = if parameters.is_empty() {
        Vec::new()
    } else {
        let types = &prepared.param_types;
        crate::query::statement::select_values(session, parameters, types, params, hints)?
    };
    crate::query::statement::run_prepared(session, &prepared, &values)
}

/// `DEALLOCATE [PREPARE] name | ALL`.
pub fn deallocate(session: &mut Session, name: &ast::Ident) -> Result<Outcome> {
    if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
        session.named.clear();
        return Ok(Outcome::command("DEALLOCATE ALL"));
    }
    let name = ident(name);
    let named = &mut session.named;
    if named.by_name.remove(&name).is_none() {
        if !named.front_end.remove(&name) {
            named.get(&name)?;
        }
        named.deallocated.push(name);
    }
    Ok(Outcome::command("DEALLOCATE"))
}

/// The name of the statement EXECUTE names: one identifier.
fn statement_name(name: &ast::ObjectName) -> Result<String> {
    match name.0.as_slice() {
        [part] => part
            .as_ident()
            .map(ident)
            .ok_or_else(|| Error::invalid(SqlState::SYNTAX_ERROR, "bad prepared statement name")),
        _ => Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            format!("improper prepared statement name: {name}"),
        )),
    }
}
