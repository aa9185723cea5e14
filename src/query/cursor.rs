//! Cursors: `DECLARE name CURSOR [WITH HOLD] FOR query`, `FETCH [n | NEXT | ALL |
//! FORWARD ...] FROM name` and `CLOSE name | ALL`, as Tableau and other ODBC-style
//! clients page through results. A cursor's rows are computed when it is declared (one
//! snapshot, as PostgreSQL's are) and held by the session within `query_memory_limit`.
//! A cursor without `WITH HOLD` lives until its transaction ends, and may only be
//! declared inside one (25P01 otherwise), as in PostgreSQL.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sqlparser::ast;
use tissdb_dialect::sqlparser;

use crate::error::{Error, Result, SqlState};
use crate::query::binder::ident;
use crate::query::exec::{OUT_OF_MEMORY, row_size};
use crate::query::{Column, Outcome, Row};
use crate::session::Session;

/// Most cursors one session may hold open.
pub const MAX_CURSORS: usize = 1000;

const INVALID_CURSOR_NAME: SqlState = SqlState("34000");
const DUPLICATE_CURSOR: SqlState = SqlState("42P03");

struct Cursor {
    columns: Arc<Vec<Column>>,
    rows: VecDeque<Row>,
    hold: bool,
}

/// A session's open cursors.
#[derive(Default)]
pub struct Cursors {
    open: BTreeMap<String, Cursor>,
}

impl Cursors {
    /// The transaction ended: cursors without `WITH HOLD` close.
    pub fn end_transaction(&mut self) {
        self.open.retain(|_, c| c.hold);
    }

    /// The columns `FETCH` from cursor `name` returns (for Describe).
    pub fn columns(&self, name: &ast::Ident) -> Result<Vec<Column>> {
        let name = ident(name);
        self.open
            .get(&name)
            .map(|c| c.columns.to_vec())
            .ok_or_else(|| missing(&name))
    }
}

fn missing(name: &str) -> Error {
    Error::invalid(
        INVALID_CURSOR_NAME,
        format!("cursor \"{name}\" does not exist"),
    )
}

/// Opens cursor `name` over a query's result.
pub fn declare(
    session: &mut Session,
    name: &ast::Ident,
    hold: bool,
    result: Outcome,
) -> Result<Outcome> {
    let name = ident(name);
    if !hold && !session.in_transaction() {
        return Err(Error::invalid(
            SqlState::NO_ACTIVE_SQL_TRANSACTION,
            "DECLARE CURSOR can only be used in transaction blocks",
        ));
    }
    if session.cursors.open.contains_key(&name) {
        return Err(Error::invalid(
            DUPLICATE_CURSOR,
            format!("cursor \"{name}\" already exists"),
        ));
    }
    if session.cursors.open.len() >= MAX_CURSORS {
        return Err(Error::invalid(
            SqlState::CONFIGURATION_LIMIT_EXCEEDED,
            format!("a session may hold at most {MAX_CURSORS} open cursors"),
        ));
    }
    let Outcome::Rows { columns, rows, .. } = result else {
        return Err(Error::Internal("a cursor's query gave no rows".into()));
    };
    let limit = session.database().config().query_memory_limit as usize;
    let bytes: usize = rows.iter().map(row_size).sum();
    if bytes > limit {
        return Err(Error::invalid(
            OUT_OF_MEMORY,
            format!("the cursor's rows need more than query_memory_limit ({limit} bytes)"),
        ));
    }
    session.cursors.open.insert(
        name,
        Cursor {
            columns,
            rows: rows.into(),
            hold,
        },
    );
    Ok(Outcome::command("DECLARE CURSOR"))
}

fn count(v: &ast::ValueWithSpan) -> Result<usize> {
    v.value
        .to_string()
        .parse::<usize>()
        .map_err(|_| Error::invalid(SqlState::SYNTAX_ERROR, format!("bad FETCH count {v}")))
}

/// `FETCH direction FROM name`: the next rows, forward only.
pub fn fetch(
    session: &mut Session,
    name: &ast::Ident,
    direction: &ast::FetchDirection,
) -> Result<Outcome> {
    use ast::FetchDirection as D;
    let n = match direction {
        D::Count { limit } | D::Forward { limit: Some(limit) } => count(limit)?,
        D::Next | D::Forward { limit: None } => 1,
        D::All | D::ForwardAll => usize::MAX,
        other => {
            return Err(Error::invalid(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("FETCH {other}: cursors only move forward"),
            ));
        }
    };
    let key = ident(name);
    let cursor = session
        .cursors
        .open
        .get_mut(&key)
        .ok_or_else(|| missing(&key))?;
    let take = n.min(cursor.rows.len());
    let rows: Vec<Row> = cursor.rows.drain(..take).collect();
    Ok(Outcome::Rows {
        columns: cursor.columns.clone(),
        rows,
        command: "FETCH",
    })
}

/// `CLOSE name` or `CLOSE ALL`.
pub fn close(session: &mut Session, cursor: &ast::CloseCursor) -> Result<Outcome> {
    match cursor {
        ast::CloseCursor::All => {
            session.cursors.open.clear();
            Ok(Outcome::command("CLOSE CURSOR ALL"))
        }
        ast::CloseCursor::Specific { name } => {
            let key = ident(name);
            session
                .cursors
                .open
                .remove(&key)
                .ok_or_else(|| missing(&key))?;
            Ok(Outcome::command("CLOSE CURSOR"))
        }
    }
}
