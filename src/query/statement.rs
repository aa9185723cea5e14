//! Running statements: parse, bind, optimize, execute — queries through the volcano
//! operators, DML as read-modify-write batches written atomically (one WAL record per
//! statement), DDL through the catalog, and the session commands drivers send (SET,
//! SHOW, BEGIN/COMMIT/ROLLBACK).

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlparser::ast;
use tissdb_dialect::{TissStatement, sqlparser};

use crate::catalog::{Action, Collection, ColumnDef, DocWrite, ForeignKeySpec, KeyForm, Kind};
use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::query::access::PlanContext;
use crate::query::binder::{self, Binder, Scope, ident, unsupported};
use crate::query::exec::{self, ExecContext, scan};
use crate::query::expr::{Expr, SubqueryKind, truth};
use crate::query::optimizer;
use crate::query::plan::{Access, Node};
use crate::query::plan_cache::{Kept, PlanCache};
use crate::query::timeout;
use crate::query::types::{self, SqlType};
use crate::query::{Column, Outcome, Row};
use crate::session::{Prepared, SavepointAction, Session, TransactionStatus};
use crate::storage::keys;

/// A parsed statement.
pub type Statement = TissStatement;

pub const IN_FAILED_TRANSACTION: SqlState = SqlState("25P02");
pub const NOT_NULL_VIOLATION: SqlState = SqlState("23502");

/// The 1-based character offset of `Line: l, Column: c` (as sqlparser reports it) in `sql`.
fn error_position(msg: &str, sql: &str) -> Option<usize> {
    let at = msg.rfind("Line: ")?;
    let rest = msg.get(at + 6..)?;
    let (line, rest) = rest.split_once(", Column: ")?;
    let line: usize = line.trim().parse().ok()?;
    let column: usize = rest
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let before: usize = sql
        .split('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count() + 1)
        .sum();
    Some(before + column)
}

fn syntax_error(e: sqlparser::parser::ParserError, sql: &str) -> Error {
    let msg = e.to_string();
    let msg = msg
        .strip_prefix("sql parser error: ")
        .unwrap_or(&msg)
        .to_string();
    if msg.contains("recursion limit") {
        return Error::LimitExceeded {
            code: SqlState::STATEMENT_TOO_COMPLEX,
            message: format!("statement too complex: {msg}"),
        };
    }
    let position = error_position(&msg, sql).or_else(|| {
        // sqlparser gives no location at the end of the input.
        msg.ends_with("found: EOF")
            .then(|| sql.trim_end().chars().count() + 1)
    });
    Error::Syntax {
        position,
        message: msg,
    }
}

fn parse(session: &Session, sql: &str) -> Result<Vec<Statement>> {
    let limit = session.database().config().max_query_size;
    if sql.len() as u64 > limit {
        return Err(Error::limit(format!(
            "statement of {} bytes exceeds max_query_size ({limit} bytes)",
            sql.len()
        )));
    }
    tissdb_dialect::parse(sql).map_err(|e| syntax_error(e, sql))
}

fn allowed_when_failed(stmt: &Statement) -> bool {
    matches!(
        stmt,
        TissStatement::Sql(s) if matches!(**s, ast::Statement::Rollback { .. } | ast::Statement::Commit { .. })
    )
}

fn in_failed_block() -> Error {
    Error::invalid(
        IN_FAILED_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// The session's `statement_timeout`, if it has one (a value kept by SET is valid).
fn statement_timeout(session: &Session) -> Option<std::time::Duration> {
    let value = session.settings.get(timeout::SETTING)?;
    timeout::parse(value).ok().flatten()
}

fn run_guarded(
    session: &mut Session,
    stmt: &Statement,
    params: &[Value],
    hints: &[Option<SqlType>],
    plan_cache: Option<&PlanCache>,
) -> Result<Outcome> {
    if session.transaction == TransactionStatus::Failed && !allowed_when_failed(stmt) {
        return Err(in_failed_block());
    }
    session
        .cancel
        .store(false, std::sync::atomic::Ordering::Relaxed);
    if !allowed_when_failed(stmt) {
        session.check_transaction_age()?;
    }
    let armed = statement_timeout(session).map(|t| timeout::arm(t, session.cancel.clone()));
    let mut outcome = run(session, stmt, params, hints, plan_cache);
    if let Some(armed) = armed
        && armed.fired()
        && let Err(e) = &outcome
        && e.sqlstate() == exec::QUERY_CANCELED
    {
        outcome = Err(timeout::Armed::error());
    }
    if outcome.is_err() && session.transaction == TransactionStatus::InBlock {
        session.transaction = TransactionStatus::Failed;
    }
    outcome
}

pub fn execute_batch(session: &mut Session, sql: &str) -> Vec<Result<Outcome>> {
    if let Some(outcome) = session.run_template(sql) {
        return vec![outcome];
    }
    let statements = match parse(session, sql) {
        Ok(s) => s,
        Err(e) => {
            session.fail_transaction();
            return vec![Err(e)];
        }
    };
    if let Err(e) = crate::query::copy::check_batch(&statements) {
        return vec![Err(e)];
    }
    // A row sink takes the answer of a lone statement only.
    let parked = match statements.len() {
        1 => None,
        _ => session.take_row_sink(),
    };
    let out = run_statements(session, &statements);
    if let Some(sink) = parked {
        session.put_row_sink(sink);
    }
    out
}

/// The statements of one Query message, in order, up to the first failure (see
/// [`execute_batch`]).
fn run_statements(session: &mut Session, statements: &[Statement]) -> Vec<Result<Outcome>> {
    // Several statements in one Query message outside a block run as one implicit
    // transaction, as in PostgreSQL: a failure undoes the earlier ones. (With BEGIN,
    // COMMIT or savepoints among them, each runs as written instead.)
    let implicit = statements.len() > 1
        && session.transaction == TransactionStatus::Idle
        && !statements.iter().any(controls_transaction);
    if implicit {
        session.begin(false);
    }
    let mut out = Vec::with_capacity(statements.len());
    for stmt in statements {
        session.results_so_far = out.len();
        let r = run_guarded(session, stmt, &[], &[], None);
        let failed = r.is_err();
        out.push(r);
        if failed {
            break;
        }
    }
    session.results_so_far = out.len();
    if implicit {
        if out.iter().any(Result::is_err) {
            session.rollback();
        } else if let Err(e) = session.commit() {
            out.push(Err(e));
        }
    }
    out
}

pub fn prepare(session: &mut Session, sql: &str, hints: &[Option<SqlType>]) -> Result<Prepared> {
    let mut statements = parse(session, sql)?;
    if session.transaction == TransactionStatus::Failed
        && !statements.first().is_some_and(allowed_when_failed)
    {
        return Err(in_failed_block());
    }
    if statements.len() > 1 {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            "cannot insert multiple commands into a prepared statement",
        ));
    }
    let Some(statement) = statements.pop() else {
        return Ok(Prepared {
            sql: sql.to_string(),
            statement: None,
            param_types: Vec::new(),
            param_refs: 0,
            columns: Arc::default(),
            read_only: true,
            point: true,
            point_write: false,
            plan_cache: Arc::default(),
        });
    };
    prepare_parsed(session, statement, sql.to_string(), hints)
}

/// [`prepare`] for a statement already parsed from `sql` (also the statement of a SQL
/// `PREPARE`, see [`crate::query::named`]).
pub(crate) fn prepare_parsed(
    session: &Session,
    statement: Statement,
    sql: String,
    hints: &[Option<SqlType>],
) -> Result<Prepared> {
    let db = session.database().clone();
    let mut binder = session_binder(session, &db, hints);
    let columns = describe(session, &mut binder, &statement)?;
    let mut param_types = binder.param_types();
    // Parameters the statement never mentions still need a type for Describe.
    for (i, h) in hints.iter().enumerate() {
        if i >= param_types.len() {
            param_types.push(h.clone().unwrap_or(SqlType::Text));
        }
    }
    let read_only = is_read_only(&statement);
    let point = read_only && is_point_query(session, &statement, hints);
    Ok(Prepared {
        sql,
        statement: Some(statement),
        param_types,
        param_refs: binder.referenced,
        columns: Arc::new(columns),
        read_only,
        point,
        point_write: false,
        plan_cache: Arc::default(),
    })
}

pub fn execute(session: &mut Session, prepared: &Prepared, params: &[Value]) -> Result<Outcome> {
    session.results_so_far = 0;
    match &prepared.statement {
        None => Ok(Outcome::command("")),
        Some(stmt) => {
            // Parameters keep the types Describe gave them.
            let hints: Vec<Option<SqlType>> =
                prepared.param_types.iter().cloned().map(Some).collect();
            session.describe_to_sink(&prepared.columns);
            let outcome = run_guarded(session, stmt, params, &hints, Some(&prepared.plan_cache))?;
            as_described(prepared, outcome)
        }
    }
}

/// Runs a prepared statement within a statement already guarded (a SQL `EXECUTE`,
/// see [`crate::query::named`]); `params` are of the statement's parameter types.
pub(crate) fn run_prepared(
    session: &mut Session,
    prepared: &Prepared,
    params: &[Value],
) -> Result<Outcome> {
    let Some(stmt) = &prepared.statement else {
        return Ok(Outcome::command(""));
    };
    let hints: Vec<Option<SqlType>> = prepared.param_types.iter().cloned().map(Some).collect();
    session.describe_to_sink(&prepared.columns);
    let outcome = run(session, stmt, params, &hints, Some(&prepared.plan_cache))?;
    as_described(prepared, outcome)
}

/// A prepared statement's answer with the columns its Describe announced.
fn as_described(prepared: &Prepared, outcome: Outcome) -> Result<Outcome> {
    // The rows must match what Describe announced.
    Ok(match outcome {
        Outcome::Rows {
            mut rows,
            command,
            columns,
        } if !prepared.columns.is_empty() => {
            // Encoded json columns stay so where Describe announced those types.
            let encoded = columns.iter().any(|c| c.json_encoded);
            let columns = if encoded && same_types(&columns, &prepared.columns) {
                columns
            } else {
                if encoded {
                    crate::query::decode_json_encoded(&mut rows, &columns)?;
                }
                prepared.columns.clone()
            };
            Outcome::Rows {
                rows: conform_rows(rows, &columns),
                columns,
                command,
            }
        }
        other => other,
    })
}

/// Whether two lists of columns have the same types, one for one.
fn same_types(a: &[Column], b: &[Column]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.ty == y.ty)
}

/// Whether an UPDATE or DELETE, as planned now, reads at most a few documents by key
/// (for [`Prepared::point_write`]; only templates ask, see [`crate::query::auto_param`]).
pub(crate) fn is_point_modify(
    session: &Session,
    stmt: &Statement,
    hints: &[Option<SqlType>],
) -> bool {
    let TissStatement::Sql(s) = stmt else {
        return false;
    };
    let db = session.database().clone();
    let mut binder = session_binder(session, &db, hints);
    let plan = match s.as_ref() {
        ast::Statement::Update(u) => plan_update(&mut binder, u),
        ast::Statement::Delete(d) => plan_delete(&mut binder, d),
        _ => return false,
    };
    let Ok(plan) = plan else {
        return false;
    };
    if plan.scan.has_subqueries() {
        return false;
    }
    let Ok(scan) = optimizer::optimize(plan.scan, &plan_context(session)) else {
        return false;
    };
    matches!(&scan, Node::Scan { access: Access::Keys(keys), .. } if keys.len() as u64 <= POINT_ROWS)
}

/// Most rows a plan may be estimated to read and still count as a point query.
const POINT_ROWS: u64 = 16;

/// Whether a SELECT's plan, as planned now, reads only a few documents by key or index
/// (see [`Prepared::point`]).
fn is_point_query(session: &Session, stmt: &Statement, hints: &[Option<SqlType>]) -> bool {
    let TissStatement::Sql(s) = stmt else {
        return false;
    };
    let ast::Statement::Query(q) = s.as_ref() else {
        return false;
    };
    let db = session.database().clone();
    let mut binder = session_binder(session, &db, hints);
    let Ok(node) = binder.query(q) else {
        return false;
    };
    if node.has_subqueries() {
        return false;
    }
    let Ok(node) = optimizer::optimize(node, &plan_context(session)) else {
        return false;
    };
    /// A scan by key or index under projections and filters only.
    fn indexed(n: &Node) -> bool {
        match n {
            Node::Scan { access, .. } => !matches!(access, Access::Full),
            Node::Filter { input, .. } | Node::Project { input, .. } => indexed(input),
            _ => false,
        }
    }
    /// A scan in key order (either way) that keeps every row it reads, under
    /// projections only: a limit over it reads as many documents as it gives.
    fn unfiltered(n: &Node) -> bool {
        match n {
            Node::Scan {
                access: Access::Full | Access::KeyRange(_),
                filter: None,
                ..
            } => true,
            Node::Project { input, .. } => unfiltered(input),
            _ => false,
        }
    }
    fn point(n: &Node) -> bool {
        match n {
            // `LIMIT n` straight over an index scan stops after n entries, over a scan
            // in key order without a filter after n documents.
            Node::Limit {
                input,
                limit: Some(Expr::Literal(Value::Int(l))),
                offset: None,
            } if (0..=POINT_ROWS as i64).contains(l) && (indexed(input) || unfiltered(input)) => {
                true
            }
            // `min` / `max` of the key over a scan without a filter: one document from
            // each end.
            Node::Aggregate {
                input,
                group_by,
                aggs,
                ..
            } if matches!(&**input, Node::Scan { filter: None, .. })
                && crate::query::exec::reads_key_extremes(input, group_by, aggs) =>
            {
                true
            }
            Node::Scan { access, .. } => match access {
                Access::Full | Access::KeyRange(_) => false,
                Access::Keys(keys) => keys.len() as u64 <= POINT_ROWS,
                Access::Index(a) => a.estimate <= POINT_ROWS,
            },
            Node::Values { rows, .. } => rows.len() as u64 <= POINT_ROWS,
            Node::TableFunction { .. } | Node::Lateral { .. } => false,
            Node::Filter { input, .. }
            | Node::Project { input, .. }
            | Node::Aggregate { input, .. }
            | Node::Sort { input, .. }
            | Node::Window { input, .. }
            | Node::ProjectSet { input, .. }
            | Node::Limit { input, .. }
            | Node::Distinct { input } => point(input),
            Node::Join { .. }
            | Node::SetOp { .. }
            | Node::RecursiveUnion { .. }
            | Node::WorkTable { .. } => false,
        }
    }
    point(&node)
}

/// A binder for `session`: inside a transaction, a schemaless collection's columns
/// include the fields of its pending writes.
pub(crate) fn session_binder<'a>(
    session: &'a Session,
    db: &'a Arc<crate::database::Database>,
    hints: &[Option<SqlType>],
) -> Binder<'a> {
    let mut binder = Binder::new(db.catalog(), hints);
    binder.pending = session.txn.as_ref();
    binder.settings = Some(&session.settings);
    binder.named = Some(&session.named);
    binder
}

/// Whether a statement begins or ends a transaction or works on savepoints.
pub fn controls_transaction(stmt: &Statement) -> bool {
    matches!(
        stmt,
        TissStatement::Sql(s) if matches!(
            **s,
            ast::Statement::StartTransaction { .. }
                | ast::Statement::Commit { .. }
                | ast::Statement::Rollback { .. }
                | ast::Statement::Savepoint { .. }
                | ast::Statement::ReleaseSavepoint { .. }
        )
    )
}

/// Whether a statement only reads (see [`Prepared::read_only`]).
pub fn is_read_only(stmt: &Statement) -> bool {
    match stmt {
        TissStatement::Sql(s) => matches!(
            s.as_ref(),
            ast::Statement::Query(_)
                | ast::Statement::ShowVariable { .. }
                | ast::Statement::Explain { analyze: false, .. }
        ),
        _ => false,
    }
}

// ---- settings ---------------------------------------------------------------------

/// The setting capping the worker threads of one operator (see
/// [`crate::query::exec::parallel`]).
const PARALLEL_WORKERS: &str = "max_parallel_workers_per_gather";
const DEFAULT_PARALLEL_WORKERS: usize = 2;

const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("default_table_access_method", "heap"),
    ("default_transaction_isolation", "serializable"),
    ("enable_indexscan", "on"),
    ("enable_seqscan", "on"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("jit", "off"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    (PARALLEL_WORKERS, "2"), // DEFAULT_PARALLEL_WORKERS
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", "16.6"),
    ("server_version_num", "160006"),
    ("session_authorization", "tissdb"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "serializable"),
    ("transaction_read_only", "off"),
];

/// Every setting a session sees: its own over the defaults, sorted by name.
pub fn effective_settings(overrides: Option<&BTreeMap<String, String>>) -> Vec<(String, String)> {
    let mut all: BTreeMap<String, String> = DEFAULT_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(o) = overrides {
        all.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    all.into_iter().collect()
}

pub fn show_setting(session: &Session, name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        // Every transaction runs serializable, whatever was asked for (PostgreSQL, too,
        // may run a transaction at a stricter level than requested).
        "transaction_isolation" | "default_transaction_isolation" => {
            return Some("serializable".into());
        }
        "transaction_read_only" => {
            return Some(
                if session.transaction_read_only() {
                    "on"
                } else {
                    "off"
                }
                .into(),
            );
        }
        _ => {}
    }
    session.settings.get(&name).cloned().or_else(|| {
        DEFAULT_SETTINGS
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

/// Refuses a value a setting cannot take (22023), for the settings TissDB acts on; the
/// value as it is kept (and shown).
fn check_setting(name: &str, value: &str) -> Result<String> {
    if name == crate::query::timeout::SETTING {
        return crate::query::timeout::parse(value).map(crate::query::timeout::display);
    }
    if name == PARALLEL_WORKERS {
        let max = crate::query::exec::parallel::MAX_WORKERS_PER_STATEMENT;
        if !value.trim().parse::<usize>().is_ok_and(|n| n <= max) {
            return Err(Error::invalid(
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "invalid value for parameter \"{name}\": \"{value}\" (an integer from 0 to {max})"
                ),
            ));
        }
    }
    Ok(value.to_string())
}

fn setting_value(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        ast::Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

fn variable_name(parts: &[ast::Ident]) -> String {
    let name = parts
        .iter()
        .map(|p| p.value.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    match name.as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        _ => name.replace(' ', "_"),
    }
}

// ---- describe -----------------------------------------------------------------------

/// The result columns of a statement, binding it without running it.
fn describe(session: &Session, binder: &mut Binder<'_>, stmt: &Statement) -> Result<Vec<Column>> {
    let TissStatement::Sql(s) = stmt else {
        return Ok(Vec::new());
    };
    Ok(match s.as_ref() {
        ast::Statement::Query(q) => binder.statement_query(q)?.columns(),
        ast::Statement::Fetch { name, .. } => session.cursors.columns(name)?,
        ast::Statement::Execute {
            name: Some(name),
            parameters,
            ..
        } => {
            let (columns, types) = session.named.describe(name)?;
            if !parameters.is_empty() {
                // Bind the arguments so that their parameters get types.
                binder.statement_query(&arguments_query(session, parameters, &types)?)?;
            }
            columns
        }
        ast::Statement::Insert(ins) => {
            let plan = plan_insert(binder, ins)?;
            plan.returning_columns
        }
        ast::Statement::Update(u) => plan_update(binder, u)?.returning_columns,
        ast::Statement::Delete(d) => plan_delete(binder, d)?.returning_columns,
        ast::Statement::ShowVariable { variable } => {
            let name = variable_name(variable);
            if name == "all" {
                vec![
                    Column::new("name", SqlType::Text),
                    Column::new("setting", SqlType::Text),
                ]
            } else {
                let _ = session;
                vec![Column::new(name, SqlType::Text)]
            }
        }
        ast::Statement::Explain { statement, .. } => {
            // Bind the inner statement so parameters get their types.
            describe(session, binder, &TissStatement::Sql(statement.clone()))?;
            vec![Column::new("QUERY PLAN", SqlType::Text)]
        }
        _ => Vec::new(),
    })
}

// ---- running ------------------------------------------------------------------------

fn exec_context(session: &Session, params: &[Value]) -> Arc<ExecContext> {
    exec_context_with(session, params, None, None)
}

/// [`exec_context`] for a kept plan, with what earlier executions worked out, and the
/// node whose json columns may come encoded (see [`ExecContext::json_encoded_at`]).
fn exec_context_with(
    session: &Session,
    params: &[Value],
    memo: Option<Arc<exec::memo::PlanMemo>>,
    json_encoded_at: Option<usize>,
) -> Arc<ExecContext> {
    let db = session.database().clone();
    let memory_limit = db.config().query_memory_limit as usize;
    Arc::new(ExecContext {
        db,
        params: params.to_vec(),
        now: chrono::Utc::now().timestamp_micros(),
        memory_limit,
        cancel: session.cancel.clone(),
        analyze: None,
        view: session.read_view(),
        planning: {
            let p = plan_context(session);
            exec::Planning {
                enable_indexscan: p.enable_indexscan,
                enable_seqscan: p.enable_seqscan,
                unindexed: p.unindexed,
                parallel_workers: parallel_workers(session),
            }
        },
        work_tables: Default::default(),
        memo,
        json_encoded_at,
    })
}

/// The query `SELECT CAST((e1) AS t1), ...` of a SQL `EXECUTE`'s arguments `exprs`
/// and its statement's parameter types (an argument of unknown type is not cast).
fn arguments_query(
    session: &Session,
    exprs: &[ast::Expr],
    types: &[SqlType],
) -> Result<ast::Query> {
    let list: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| match types.get(i) {
            None | Some(SqlType::Unknown) => format!("({e})"),
            Some(t) => format!("CAST(({e}) AS {})", t.name()),
        })
        .collect();
    let sql = format!("SELECT {}", list.join(", "));
    match parse(session, &sql)?.pop() {
        Some(TissStatement::Sql(s)) => match *s {
            ast::Statement::Query(q) => Ok(*q),
            _ => Err(Error::Internal(format!("{sql} is not a query"))),
        },
        _ => Err(Error::Internal(format!("{sql} is not a query"))),
    }
}

/// The values of a SQL `EXECUTE`'s arguments `exprs`, evaluated as a `SELECT` of them
/// would be and cast to `types` (its statement's parameter types), with the parameters
/// `params` of the EXECUTE statement itself.
pub(crate) fn select_values(
    session: &Session,
    exprs: &[ast::Expr],
    types: &[SqlType],
    params: &[Value],
    hints: &[Option<SqlType>],
) -> Result<Row> {
    let query = arguments_query(session, exprs, types)?;
    let db = session.database().clone();
    let mut binder = session_binder(session, &db, hints);
    let node = binder.statement_query(&query)?;
    let params = bind_params(&binder, params)?;
    match run_query(node, params, session)? {
        Outcome::Rows { mut rows, .. } if rows.len() == 1 => Ok(rows.pop().unwrap_or_default()),
        _ => Err(Error::Internal(
            "the arguments of EXECUTE gave no row".into(),
        )),
    }
}

/// Checks and converts parameter values to their statement types.
fn bind_params(binder: &Binder<'_>, params: &[Value]) -> Result<Vec<Value>> {
    cast_params(&binder.param_types(), params)
}

/// The values of a Bind message cast to the types of the statement's parameters.
fn cast_params(types: &[SqlType], params: &[Value]) -> Result<Vec<Value>> {
    if params.len() != types.len() {
        return Err(Error::invalid(
            SqlState("08P01"),
            format!(
                "bind message supplies {} parameters, but the statement requires {}",
                params.len(),
                types.len()
            ),
        ));
    }
    params
        .iter()
        .enumerate()
        .map(|(i, v)| match types.get(i) {
            Some(t) => types::cast(v.clone(), t),
            None => Ok(v.clone()),
        })
        .collect()
}

/// Converts values, without loss, to the types their columns announce: integers in a
/// float or numeric column. Rows are changed in place, and only in those columns (values
/// past the last column are dropped).
fn conform_rows(rows: Vec<Row>, columns: &[Column]) -> Vec<Row> {
    crate::query::sink::Conform::new(columns).rows(rows)
}

/// The session's `max_parallel_workers_per_gather` (checked when it is set).
fn parallel_workers(session: &Session) -> usize {
    session
        .settings
        .get(PARALLEL_WORKERS)
        .map_or(DEFAULT_PARALLEL_WORKERS, |v| v.trim().parse().unwrap_or(0))
}

/// The planner's view of the session: storage statistics and the `enable_*` settings.
fn plan_context(session: &Session) -> PlanContext<'_> {
    // Both `enable_*` settings default to on. Looked up as stored (lowercase names),
    // without copying: every execution asks.
    let on = |name: &str| {
        session.settings.get(name).is_none_or(|v| {
            !["off", "false", "0", "no"]
                .iter()
                .any(|off| v.eq_ignore_ascii_case(off))
        })
    };
    PlanContext {
        storage: session.database().storage(),
        enable_indexscan: on("enable_indexscan"),
        enable_seqscan: on("enable_seqscan"),
        unindexed: session.unindexed_collections(),
    }
}

/// Runs the plan's subqueries, each once (they read nothing of the query around them),
/// and puts their results in their place: a value, true or false, or an IN list.
fn resolve_subqueries(node: Node, session: &Session, params: &[Value]) -> Result<Node> {
    if !node.has_subqueries() {
        return Ok(node);
    }
    node.map_exprs(&mut |e| {
        e.transform(&mut |x| match x {
            // A correlated subquery runs for each row, when the statement runs.
            Expr::Subquery(_, ref plan) | Expr::InSubquery { ref plan, .. }
                if exec::reads_outer(plan, 1) =>
            {
                Ok(x)
            }
            Expr::Subquery(kind, plan) => {
                let limit = match kind {
                    SubqueryKind::Scalar => 2,
                    SubqueryKind::Exists => 1,
                    SubqueryKind::Array => usize::MAX,
                };
                let rows = run_subplan(*plan, session, params, limit)?;
                Ok(Expr::Literal(match kind {
                    SubqueryKind::Exists => Value::Bool(!rows.is_empty()),
                    SubqueryKind::Array => Value::Array(
                        rows.into_iter()
                            .map(|r| r.into_iter().next().unwrap_or(Value::Null))
                            .collect(),
                    ),
                    SubqueryKind::Scalar => {
                        if rows.len() > 1 {
                            return Err(Error::invalid(
                                SqlState("21000"),
                                "more than one row returned by a subquery used as an expression",
                            ));
                        }
                        rows.into_iter()
                            .next()
                            .and_then(|r| r.into_iter().next())
                            .unwrap_or(Value::Null)
                    }
                }))
            }
            Expr::InSubquery {
                expr,
                plan,
                negated,
            } => {
                let rows = run_subplan(*plan, session, params, usize::MAX)?;
                Ok(Expr::InList {
                    expr,
                    list: rows
                        .into_iter()
                        .map(|r| Expr::Literal(r.into_iter().next().unwrap_or(Value::Null)))
                        .collect(),
                    negated,
                })
            }
            other => Ok(other),
        })
    })
}

/// The first `limit` rows of a subquery's plan.
fn run_subplan(plan: Node, session: &Session, params: &[Value], limit: usize) -> Result<Vec<Row>> {
    let plan = resolve_subqueries(plan, session, params)?;
    let plan = optimizer::optimize(plan, &plan_context(session))?;
    let ctx = exec_context(session, params);
    exec::build(&plan, &ctx)?.take(limit).collect()
}

/// Subqueries run, then the plan optimized.
fn plan_statement(node: Node, session: &Session, params: &[Value]) -> Result<Node> {
    let node = resolve_subqueries(node, session, params)?;
    optimizer::optimize(node, &plan_context(session))
}

pub(crate) fn run_query(node: Node, params: Vec<Value>, session: &Session) -> Result<Outcome> {
    run_query_as(node, params, session, false, false)
}

/// [`run_query`]; with `encode`, json columns may come encoded, and with `answer` the
/// rows may go to the session's row sink (see [`run_plan`]).
fn run_query_as(
    node: Node,
    params: Vec<Value>,
    session: &Session,
    encode: bool,
    answer: bool,
) -> Result<Outcome> {
    let columns = Arc::new(node.columns());
    let node = plan_statement(node, session, &params)?;
    run_plan(&node, columns, &params, session, None, encode, answer)
}

/// Runs an optimized plan; `columns` are the result columns as bound. With `encode`
/// (a query whose rows go straight to a client of a session that asked for it, see
/// [`Session::set_json_encoded_results`]), json columns the plan's root projection
/// passes on as they are come encoded ([`Column::json_encoded`]). With `answer` (the
/// rows are the statement's answer), a row sink the session holds may take them as
/// they are made ([`crate::query::sink`]): the outcome then holds none.
fn run_plan(
    node: &Node,
    columns: Arc<Vec<Column>>,
    params: &[Value],
    session: &Session,
    memo: Option<Arc<exec::memo::PlanMemo>>,
    encode: bool,
    answer: bool,
) -> Result<Outcome> {
    let encoded_at = match encode {
        true => exec::json_encoding_root(node).map(exec::memo::address),
        false => None,
    };
    let ctx = exec_context_with(session, params, memo, encoded_at);
    let rows = exec::build(node, &ctx)?;
    let columns = match encoded_at {
        Some(_) => exec::result_columns(node, &ctx, columns),
        None => columns,
    };
    if answer && let Some(mut sink) = session.take_row_sink() {
        if sink.start(&columns) {
            let conform = crate::query::sink::Conform::new(&columns);
            let sent = rows.map(|row| {
                let mut row = row?;
                conform.apply(&mut row);
                sink.push(&row)?;
                crate::storage::recycle::give_row(row);
                Ok(())
            });
            let sent = sent.collect::<Result<()>>();
            session.put_row_sink(sink);
            sent?;
            return Ok(Outcome::Rows {
                rows: Vec::new(),
                columns,
                command: "SELECT",
            });
        }
        session.put_row_sink(sink);
    }
    let rows = rows.collect::<Result<Vec<_>>>()?;
    Ok(Outcome::Rows {
        rows: conform_rows(rows, &columns),
        columns,
        command: "SELECT",
    })
}

fn run(
    session: &mut Session,
    stmt: &Statement,
    params: &[Value],
    hints: &[Option<SqlType>],
    plan_cache: Option<&PlanCache>,
) -> Result<Outcome> {
    let db = session.database().clone();
    let catalog = db.catalog();
    let s = match stmt {
        TissStatement::CreateCollection {
            name,
            if_not_exists,
        } => {
            let n = binder::table_name(name)?;
            return match catalog.create(&n) {
                Ok(_) => Ok(Outcome::command("CREATE COLLECTION")),
                Err(Error::Conflict { .. }) if *if_not_exists => {
                    Ok(Outcome::command("CREATE COLLECTION"))
                }
                Err(e) => Err(e),
            };
        }
        TissStatement::DropCollection { name, if_exists } => {
            let n = binder::table_name(name)?;
            return match catalog.drop_collection(&n, false) {
                Ok(_) => Ok(Outcome::command("DROP COLLECTION")),
                Err(Error::NotFound { .. }) if *if_exists => {
                    Ok(Outcome::command("DROP COLLECTION"))
                }
                Err(e) => Err(e),
            };
        }
        TissStatement::CreatePropertyGraph { graph, text } => {
            catalog.create_graph(graph.clone(), text)?;
            return Ok(Outcome::command("CREATE PROPERTY GRAPH"));
        }
        TissStatement::DropPropertyGraph { name, if_exists } => {
            catalog.drop_graph(name, *if_exists)?;
            return Ok(Outcome::command("DROP PROPERTY GRAPH"));
        }
        TissStatement::Sql(s) => s.as_ref(),
    };
    match s {
        ast::Statement::Query(q) => {
            // Plans are kept only outside explicit transactions (see plan_cache).
            let plan_cache = plan_cache.filter(|_| session.txn.is_none());
            let version = catalog.version();
            // Its rows go to the client as they are: json columns may come encoded.
            let encode = session.json_encoded_results;
            if let Some(kept) = plan_cache.and_then(|c| c.get(version, &session.settings, false))
                && let Kept::Query(plan, columns) = &kept.plan
            {
                let params = cast_params(&kept.param_types, params)?;
                let memo = kept.memo();
                return run_plan(plan, columns.clone(), &params, session, memo, encode, true);
            }
            let mut binder = session_binder(session, &db, hints);
            let node = binder.statement_query(q)?;
            let params = bind_params(&binder, params)?;
            match plan_cache {
                Some(cache) if binder.cacheable.get() && !node.has_subqueries() => {
                    let columns = Arc::new(node.columns());
                    let param_types = binder.param_types();
                    let plan = optimizer::optimize(node, &plan_context(session))?;
                    let outcome =
                        run_plan(&plan, columns.clone(), &params, session, None, encode, true);
                    let plan = Kept::Query(plan, columns);
                    cache.put(version, &session.settings, false, plan, param_types);
                    outcome
                }
                _ => run_query_as(node, params, session, encode, true),
            }
        }
        ast::Statement::Insert(ins) => {
            let version = catalog.version();
            let in_txn = session.txn.is_some();
            if let Some(kept) = plan_cache.and_then(|c| c.get(version, &session.settings, in_txn))
                && let Kept::Insert(plan) = &kept.plan
            {
                let params = cast_params(&kept.param_types, params)?;
                return run_insert(session, plan, Source::Kept, params);
            }
            let mut binder = session_binder(session, &db, hints);
            let mut plan = plan_insert(&mut binder, ins)?;
            let params = bind_params(&binder, params)?;
            let keep = binder.cacheable.get() && !plan.source.has_subqueries();
            let param_types = binder.param_types();
            plan.source = plan_statement(plan.source, session, &params)?;
            let Some(cache) = plan_cache.filter(|_| keep) else {
                // Not kept: the rows' literals move into the documents.
                let source = std::mem::replace(
                    &mut plan.source,
                    Node::Values {
                        rows: Vec::new(),
                        columns: Vec::new(),
                    },
                );
                return run_insert(session, &plan, Source::Owned(Box::new(source)), params);
            };
            let outcome = run_insert(session, &plan, Source::Kept, params);
            if outcome.is_ok() {
                let plan = Kept::Insert(plan);
                cache.put(version, &session.settings, in_txn, plan, param_types);
            }
            outcome
        }
        ast::Statement::Update(_) | ast::Statement::Delete(_) => {
            let version = catalog.version();
            let in_txn = session.txn.is_some();
            let update = matches!(s, ast::Statement::Update(_));
            if let Some(kept) = plan_cache.and_then(|c| c.get(version, &session.settings, in_txn))
                && let Kept::Modify(plan) = &kept.plan
            {
                let params = cast_params(&kept.param_types, params)?;
                return match update {
                    true => run_update(session, plan, params),
                    false => run_delete(session, plan, params),
                };
            }
            let mut binder = session_binder(session, &db, hints);
            let mut plan = match s {
                ast::Statement::Update(u) => plan_update(&mut binder, u)?,
                ast::Statement::Delete(d) => plan_delete(&mut binder, d)?,
                _ => return Err(Error::Internal("not an UPDATE or DELETE".into())),
            };
            let params = bind_params(&binder, params)?;
            // Subqueries in the WHERE are run once at planning and replaced by their
            // results; those in SET and RETURNING run with each execution either way.
            let keep = binder.cacheable.get() && !plan.scan.has_subqueries();
            let param_types = binder.param_types();
            plan.scan = plan_statement(plan.scan, session, &params)?;
            let outcome = match update {
                true => run_update(session, &plan, params),
                false => run_delete(session, &plan, params),
            };
            if let Some(cache) = plan_cache.filter(|_| keep && outcome.is_ok()) {
                let plan = Kept::Modify(plan);
                cache.put(version, &session.settings, in_txn, plan, param_types);
            }
            outcome
        }
        ast::Statement::CreateTable(ct) => create_table(session, ct),
        ast::Statement::CreateIndex(ci) => create_index(session, ci),
        ast::Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            if matches!(object_type, ast::ObjectType::Index) {
                for name in names {
                    session.drop_index(&binder::table_name(name)?, *if_exists)?;
                }
                return Ok(Outcome::command("DROP INDEX"));
            }
            if !matches!(object_type, ast::ObjectType::Table) {
                return Err(unsupported(format!("DROP {object_type}")));
            }
            let mut dropped: Vec<(String, String)> = Vec::new();
            let mut pending: Vec<String> = names
                .iter()
                .map(binder::table_name)
                .collect::<Result<_>>()?;
            while !pending.is_empty() {
                // Tables the others named reference go last, so that `DROP TABLE
                // customers, orders` needs no CASCADE (as in PostgreSQL).
                let referenced = |n: &String| {
                    pending.iter().any(|m| {
                        m != n
                            && catalog
                                .get(m)
                                .is_ok_and(|c| c.foreign_keys.iter().any(|fk| fk.table == *n))
                    })
                };
                let next = pending.iter().position(|n| !referenced(n)).unwrap_or(0);
                let n = pending.remove(next);
                match catalog.drop_collection(&n, *cascade) {
                    Ok(constraints) => dropped.extend(constraints),
                    Err(Error::NotFound { .. }) if *if_exists => {}
                    Err(Error::NotFound { .. }) => {
                        return Err(Error::not_found(
                            SqlState::UNDEFINED_TABLE,
                            format!("table \"{n}\" does not exist"),
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            // PostgreSQL's NOTICE naming what CASCADE dropped with the tables.
            let lines: Vec<String> = dropped
                .iter()
                .map(|(c, t)| format!("drop cascades to constraint {c} on table {t}"))
                .collect();
            match lines.as_slice() {
                [] => {}
                [one] => session.notice(one.clone(), None),
                many => session.notice(
                    format!("drop cascades to {} other objects", many.len()),
                    Some(many.join("\n")),
                ),
            }
            Ok(Outcome::command("DROP TABLE"))
        }
        ast::Statement::Explain {
            statement, analyze, ..
        } => {
            let mut binder = session_binder(session, &db, hints);
            let node = match statement.as_ref() {
                ast::Statement::Query(q) => binder.query(q)?,
                ast::Statement::Update(u) => plan_update(&mut binder, u)?.scan,
                ast::Statement::Delete(d) => plan_delete(&mut binder, d)?.scan,
                other => return Err(unsupported(format!("EXPLAIN of {}", statement_kind(other)))),
            };
            let node = if node.has_subqueries() {
                plan_statement(node, session, &bind_params(&binder, params)?)?
            } else {
                optimizer::optimize(node, &plan_context(session))?
            };
            let lines = if *analyze {
                let params = bind_params(&binder, params)?;
                let base = exec_context(session, &params);
                let analysis = Arc::new(exec::Analysis::default());
                let ctx = Arc::new(ExecContext {
                    db: base.db.clone(),
                    params: base.params.clone(),
                    now: base.now,
                    memory_limit: base.memory_limit,
                    cancel: base.cancel.clone(),
                    analyze: Some(analysis.clone()),
                    view: base.view.clone(),
                    planning: base.planning.clone(),
                    work_tables: Default::default(),
                    memo: None,
                    json_encoded_at: None,
                });
                let started = std::time::Instant::now();
                exec::build(&node, &ctx)?.try_for_each(|r| r.map(|_| ()))?;
                let elapsed = started.elapsed();
                let stats = analysis.operators.lock().clone();
                let mut lines = node.explain_analyzed(Some(&stats));
                lines.push(format!(
                    "Execution Time: {:.3} ms",
                    elapsed.as_secs_f64() * 1000.0
                ));
                lines
            } else {
                // What the executor would answer another way, as it would decide it now.
                let notes = bind_params(&binder, params)
                    .map(|params| exec::shortcut_notes(&node, &exec_context(session, &params)))
                    .unwrap_or_default();
                node.explain_noted(&notes)
            };
            Ok(Outcome::Rows {
                columns: vec![Column::new("QUERY PLAN", SqlType::Text)].into(),
                rows: lines.into_iter().map(|l| vec![Value::String(l)]).collect(),
                command: "EXPLAIN",
            })
        }
        ast::Statement::StartTransaction { modes, begin, .. } => {
            let read_only = modes.iter().any(|m| {
                matches!(
                    m,
                    ast::TransactionMode::AccessMode(ast::TransactionAccessMode::ReadOnly)
                )
            });
            session.begin(read_only);
            Ok(Outcome::command(if *begin {
                "BEGIN"
            } else {
                "START TRANSACTION"
            }))
        }
        ast::Statement::Commit { .. } => {
            let committed = session.commit()?;
            Ok(Outcome::command(if committed {
                "COMMIT"
            } else {
                "ROLLBACK"
            }))
        }
        ast::Statement::Rollback { savepoint, .. } => {
            match savepoint {
                Some(name) => session.savepoint(SavepointAction::RollbackTo, &name.value)?,
                None => session.rollback(),
            }
            Ok(Outcome::command("ROLLBACK"))
        }
        ast::Statement::Savepoint { name } => {
            session.savepoint(SavepointAction::Set, &name.value)?;
            Ok(Outcome::command("SAVEPOINT"))
        }
        ast::Statement::ReleaseSavepoint { name } => {
            session.savepoint(SavepointAction::Release, &name.value)?;
            Ok(Outcome::command("RELEASE"))
        }
        ast::Statement::Reset(reset) => {
            match &reset.reset {
                ast::Reset::ALL => session.settings.clear(),
                ast::Reset::ConfigurationParameter(name) => {
                    session.settings.remove(&name.to_string().to_lowercase());
                }
                ast::Reset::SessionAuthorization => {}
            }
            Ok(Outcome::command("RESET"))
        }
        ast::Statement::Set(set) => {
            match set {
                ast::Set::SingleAssignment {
                    variable, values, ..
                } => {
                    // A quoted name is the name itself (`SET "statement_timeout" ...`);
                    // a dotted one (`SET app.user_id ...`) keeps its dots.
                    let name = variable
                        .0
                        .iter()
                        .filter_map(|p| p.as_ident())
                        .map(|i| i.value.to_lowercase())
                        .collect::<Vec<_>>()
                        .join(".");
                    let value = values
                        .iter()
                        .map(setting_value)
                        .collect::<Vec<_>>()
                        .join(", ");
                    if value.eq_ignore_ascii_case("default") {
                        session.settings.remove(&name);
                    } else {
                        let value = check_setting(&name, &value)?;
                        session.settings.insert(name, value);
                    }
                }
                ast::Set::SetTimeZone { value, .. } => {
                    session
                        .settings
                        .insert("timezone".into(), setting_value(value));
                }
                ast::Set::SetTransaction { session: false, .. } if !session.in_transaction() => {
                    session.warn(
                        SqlState::NO_ACTIVE_SQL_TRANSACTION,
                        "SET TRANSACTION can only be used in transaction blocks",
                    );
                }
                ast::Set::SetNames { .. }
                | ast::Set::SetNamesDefault {}
                | ast::Set::SetTransaction { .. } => {}
                other => return Err(unsupported(format!("{other}"))),
            }
            Ok(Outcome::command("SET"))
        }
        ast::Statement::ShowVariable { variable } => {
            let name = variable_name(variable);
            if name == "all" {
                let mut rows: Vec<Row> = DEFAULT_SETTINGS
                    .iter()
                    .map(|(k, _)| {
                        vec![
                            Value::String(k.to_string()),
                            Value::String(show_setting(session, k).unwrap_or_default()),
                        ]
                    })
                    .collect();
                for (k, v) in &session.settings {
                    if !DEFAULT_SETTINGS.iter().any(|(d, _)| d == k) {
                        rows.push(vec![Value::String(k.clone()), Value::String(v.clone())]);
                    }
                }
                return Ok(Outcome::Rows {
                    columns: vec![
                        Column::new("name", SqlType::Text),
                        Column::new("setting", SqlType::Text),
                    ]
                    .into(),
                    rows,
                    command: "SHOW",
                });
            }
            let value = show_setting(session, &name).ok_or_else(|| {
                Error::invalid(
                    types::UNDEFINED_OBJECT,
                    format!("unrecognized configuration parameter \"{name}\""),
                )
            })?;
            Ok(Outcome::Rows {
                columns: vec![Column::new(name, SqlType::Text)].into(),
                rows: vec![vec![Value::String(value)]],
                command: "SHOW",
            })
        }
        ast::Statement::Vacuum(v) => {
            // VACUUM [FULL] [name]: a full compaction now (it covers the whole store; a
            // name must exist). Deleted documents leave the disk.
            if let Some(name) = &v.table_name {
                catalog.get(&binder::table_name(name)?).map_err(|_| {
                    Error::not_found(
                        SqlState::UNDEFINED_TABLE,
                        format!("relation \"{name}\" does not exist"),
                    )
                })?;
            }
            db.storage().compact_all()?;
            Ok(Outcome::command("VACUUM"))
        }
        ast::Statement::Analyze(a) => {
            // ANALYZE [name [(columns)]]: the planner's statistics (each index's entry
            // and distinct-value counts, each collection's document count) are kept up
            // to date by every write, so there is nothing to gather; the names must exist.
            if let Some(name) = &a.table_name {
                let c = catalog.get(&binder::table_name(name)?).map_err(|_| {
                    Error::not_found(
                        SqlState::UNDEFINED_TABLE,
                        format!("relation \"{name}\" does not exist"),
                    )
                })?;
                for column in &a.columns {
                    let column = binder::ident(column);
                    if !c.sql_column_names().any(|n| n == column) {
                        return Err(Error::invalid(
                            binder::UNDEFINED_COLUMN,
                            format!(
                                "column \"{column}\" of relation \"{}\" does not exist",
                                c.name
                            ),
                        ));
                    }
                }
            }
            Ok(Outcome::command("ANALYZE"))
        }
        ast::Statement::Copy { .. } => crate::query::copy::run(session, s),
        ast::Statement::Discard { object_type } => {
            session.cursors = Default::default();
            if matches!(object_type, ast::DiscardObject::ALL) {
                session.named.clear();
            }
            Ok(Outcome::command(format!("DISCARD {object_type}")))
        }
        ast::Statement::Declare { stmts, .. } => {
            let [d] = stmts.as_slice() else {
                return Err(unsupported("DECLARE of several cursors"));
            };
            let (Some(ast::DeclareType::Cursor), Some(q), [name]) =
                (&d.declare_type, &d.for_query, d.names.as_slice())
            else {
                return Err(unsupported(
                    "DECLARE other than DECLARE name CURSOR FOR query",
                ));
            };
            if d.binary == Some(true) || d.scroll == Some(true) {
                return Err(unsupported("BINARY or SCROLL cursors"));
            }
            let mut binder = session_binder(session, &db, hints);
            let node = binder.statement_query(q)?;
            let params = bind_params(&binder, params)?;
            let result = run_query(node, params, session)?;
            crate::query::cursor::declare(session, name, d.hold == Some(true), result)
        }
        ast::Statement::Fetch {
            name,
            direction,
            into: None,
            ..
        } => crate::query::cursor::fetch(session, name, direction),
        ast::Statement::Close { cursor } => crate::query::cursor::close(session, cursor),
        ast::Statement::Prepare {
            name,
            data_types,
            statement,
        } => crate::query::named::prepare(session, name, data_types, statement, s.to_string()),
        ast::Statement::Execute { .. } => crate::query::named::execute(session, s, params, hints),
        ast::Statement::Deallocate { name, .. } => crate::query::named::deallocate(session, name),
        other => Err(unsupported(statement_kind(other))),
    }
}

fn statement_kind(s: &ast::Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

// ---- CREATE TABLE -------------------------------------------------------------------

/// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON t [USING btree] (a, b.c, ...)`.
fn create_index(session: &Session, ci: &ast::CreateIndex) -> Result<Outcome> {
    if ci.predicate.is_some() {
        return Err(unsupported("partial indexes (CREATE INDEX ... WHERE)"));
    }
    if !ci.include.is_empty() {
        return Err(unsupported("INCLUDE columns"));
    }
    if let Some(using) = &ci.using
        && !using.to_string().eq_ignore_ascii_case("btree")
    {
        return Err(unsupported(format!("index method {using}")));
    }
    let table = binder::table_name(&ci.table_name)?;
    let mut fields = Vec::with_capacity(ci.columns.len());
    for c in &ci.columns {
        if !matches!(c.column.options.sort, None | Some(ast::OrderBySort::Asc))
            || c.column.options.nulls_first.is_some()
        {
            return Err(unsupported(
                "DESC or NULLS FIRST/LAST in an index (an index serves both directions)",
            ));
        }
        let path = match &c.column.expr {
            ast::Expr::Identifier(i) => vec![ident(i)],
            ast::Expr::CompoundIdentifier(parts) => parts.iter().map(ident).collect(),
            ast::Expr::Nested(inner) => match inner.as_ref() {
                ast::Expr::Identifier(i) => vec![ident(i)],
                ast::Expr::CompoundIdentifier(parts) => parts.iter().map(ident).collect(),
                other => return Err(unsupported(format!("index expression {other}"))),
            },
            other => return Err(unsupported(format!("index expression {other}"))),
        };
        fields.push(path);
    }
    let name = ci.name.as_ref().map(binder::table_name).transpose()?;
    session.create_index(&table, name.as_deref(), fields, ci.unique, ci.if_not_exists)?;
    Ok(Outcome::command("CREATE INDEX"))
}

fn create_table(session: &Session, ct: &ast::CreateTable) -> Result<Outcome> {
    if ct.query.is_some()
        || ct.like.is_some()
        || ct.clone.is_some()
        || ct.temporary
        || ct.or_replace
        || ct.external
    {
        return Err(unsupported("this form of CREATE TABLE"));
    }
    let name = binder::table_name(&ct.name)?;
    let mut columns: Vec<ColumnDef> = Vec::new();
    let mut primary_key: Option<String> = None;
    let mut references: Vec<ForeignKeySpec> = Vec::new();
    for c in &ct.columns {
        let cname = ident(&c.name);
        if columns.iter().any(|x| x.name == cname) {
            return Err(Error::invalid(
                SqlState("42701"),
                format!("column \"{cname}\" specified more than once"),
            ));
        }
        let mut def = ColumnDef {
            name: cname.clone(),
            ty: binder::data_type(&c.data_type)?,
            not_null: false,
            default: None,
        };
        // serial types and identity columns take their values from a sequence.
        let serial_default = || format!("nextval('{name}_{cname}_seq')");
        if is_serial_type(&c.data_type) {
            def.default = Some(serial_default());
            def.not_null = true;
        }
        for opt in &c.options {
            match &opt.option {
                ast::ColumnOption::Null => {}
                ast::ColumnOption::NotNull => def.not_null = true,
                ast::ColumnOption::Default(e) => def.default = Some(e.to_string()),
                ast::ColumnOption::Generated {
                    generated_as: ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault,
                    generation_expr: None,
                    ..
                } if matches!(def.ty, SqlType::Int2 | SqlType::Int4 | SqlType::Int8) => {
                    def.default = Some(serial_default());
                    def.not_null = true;
                }
                ast::ColumnOption::PrimaryKey(_) => {
                    if primary_key.is_some() {
                        return Err(Error::invalid(
                            SqlState("42P16"),
                            "multiple primary keys are not allowed",
                        ));
                    }
                    primary_key = Some(cname.clone());
                    def.not_null = true;
                }
                ast::ColumnOption::ForeignKey(fk) => {
                    references.push(foreign_key_spec(fk, opt.name.as_ref(), Some(&cname))?);
                }
                other => return Err(unsupported(format!("column option {other}"))),
            }
        }
        columns.push(def);
    }
    for constraint in &ct.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(pk) => {
                if primary_key.is_some() {
                    return Err(Error::invalid(
                        SqlState("42P16"),
                        "multiple primary keys are not allowed",
                    ));
                }
                let [col] = pk.columns.as_slice() else {
                    return Err(unsupported("a primary key of several columns"));
                };
                let cname = match &col.column.expr {
                    ast::Expr::Identifier(i) => ident(i),
                    other => return Err(unsupported(format!("primary key on {other}"))),
                };
                let def = columns
                    .iter_mut()
                    .find(|c| c.name == cname)
                    .ok_or_else(|| {
                        Error::invalid(
                            binder::UNDEFINED_COLUMN,
                            format!("column \"{cname}\" named in key does not exist"),
                        )
                    })?;
                def.not_null = true;
                primary_key = Some(cname);
            }
            ast::TableConstraint::ForeignKey(fk) => {
                references.push(foreign_key_spec(fk, None, None)?);
            }
            other => return Err(unsupported(format!("constraint {other}"))),
        }
    }
    let mut format = None;
    match &ct.table_options {
        ast::CreateTableOptions::None => {}
        ast::CreateTableOptions::With(options) => {
            for o in options {
                match o {
                    ast::SqlOption::KeyValue { key, value }
                        if key.to_string().eq_ignore_ascii_case("format") =>
                    {
                        let v = setting_value(value).to_lowercase();
                        if v != "xml" && v != "csv" {
                            return Err(Error::invalid(
                                SqlState::INVALID_PARAMETER_VALUE,
                                format!("format must be 'xml' or 'csv', not '{v}'"),
                            ));
                        }
                        format = Some(v);
                    }
                    other => return Err(unsupported(format!("table option {other}"))),
                }
            }
        }
        other => return Err(unsupported(format!("table options {other}"))),
    }
    // Check that defaults are valid expressions of the column's type.
    for c in &columns {
        if let Some(d) = &c.default
            && serial_sequence(d).is_none()
        {
            default_value(d, &c.ty, session)?;
        }
    }
    let key_form = primary_key
        .as_ref()
        .and_then(|pk| columns.iter().find(|c| c.name == *pk))
        .map_or(KeyForm::Text, |c| KeyForm::for_key_type(&c.ty));
    let mut template = Collection {
        id: 0,
        name: name.clone(),
        created_at: 0,
        kind: Kind::Table,
        columns,
        primary_key,
        key_form,
        format,
        observed: Vec::new(),
        nested: Vec::new(),
        indexes: Vec::new(),
        foreign_keys: Vec::new(),
    };
    let catalog = session.database().catalog();
    if catalog.get(&name).is_ok() {
        // Checked first, as PostgreSQL does, so that IF NOT EXISTS ignores the rest.
        return if ct.if_not_exists {
            Ok(Outcome::command("CREATE TABLE"))
        } else {
            Err(Error::conflict(
                SqlState::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ))
        };
    }
    template.foreign_keys = crate::catalog::resolve_foreign_keys(&template, references, |t| {
        catalog.get(t).map(Arc::unwrap_or_clone).map_err(|_| {
            Error::not_found(
                SqlState::UNDEFINED_TABLE,
                format!("relation \"{t}\" does not exist"),
            )
        })
    })?;
    match catalog.create_with(template) {
        Ok(_) => Ok(Outcome::command("CREATE TABLE")),
        Err(Error::Conflict { .. }) if ct.if_not_exists => Ok(Outcome::command("CREATE TABLE")),
        Err(Error::Conflict { .. }) => Err(Error::conflict(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        )),
        Err(e) => Err(e),
    }
}

/// A `REFERENCES` column option (`column` given) or a `FOREIGN KEY` table constraint.
/// One column only (0A000 for more); DEFERRABLE, MATCH PARTIAL and SET DEFAULT are not
/// supported (0A000).
fn foreign_key_spec(
    fk: &ast::ForeignKeyConstraint,
    option_name: Option<&ast::Ident>,
    column: Option<&str>,
) -> Result<ForeignKeySpec> {
    let column = match (column, fk.columns.as_slice()) {
        (Some(c), _) => c.to_string(),
        (None, [c]) => ident(c),
        (None, _) => return Err(unsupported("a foreign key of several columns")),
    };
    let ref_column = match fk.referred_columns.as_slice() {
        [] => None,
        [c] => Some(ident(c)),
        _ => {
            return Err(Error::invalid(
                SqlState::INVALID_FOREIGN_KEY,
                "number of referencing and referenced columns for foreign key disagree",
            ));
        }
    };
    let action = |a: &Option<ast::ReferentialAction>| match a {
        None | Some(ast::ReferentialAction::NoAction) => Ok(Action::NoAction),
        Some(ast::ReferentialAction::Restrict) => Ok(Action::Restrict),
        Some(ast::ReferentialAction::Cascade) => Ok(Action::Cascade),
        Some(ast::ReferentialAction::SetNull) => Ok(Action::SetNull),
        Some(ast::ReferentialAction::SetDefault) => {
            Err(unsupported("ON DELETE/UPDATE SET DEFAULT"))
        }
    };
    let match_full = match fk.match_kind {
        None | Some(ast::ConstraintReferenceMatchKind::Simple) => false,
        Some(ast::ConstraintReferenceMatchKind::Full) => true,
        Some(ast::ConstraintReferenceMatchKind::Partial) => {
            return Err(unsupported("MATCH PARTIAL"));
        }
    };
    if let Some(ch) = &fk.characteristics
        && (ch.deferrable == Some(true)
            || matches!(ch.initially, Some(ast::DeferrableInitial::Deferred))
            || ch.enforced == Some(false))
    {
        return Err(unsupported("a deferrable or not enforced foreign key"));
    }
    Ok(ForeignKeySpec {
        name: option_name.or(fk.name.as_ref()).map(ident),
        column,
        table: binder::table_name(&fk.foreign_table)?,
        ref_column,
        on_delete: action(&fk.on_delete)?,
        on_update: action(&fk.on_update)?,
        match_full,
    })
}

/// Whether a column type is one of PostgreSQL's serial types.
fn is_serial_type(ty: &ast::DataType) -> bool {
    matches!(
        ty.to_string().to_ascii_lowercase().as_str(),
        "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
    )
}

/// The sequence a column default draws from (`nextval('t_id_seq')`, as a serial or
/// identity column's default reads), if it is one.
fn serial_sequence(default: &str) -> Option<&str> {
    default.strip_prefix("nextval('")?.strip_suffix("')")
}

/// The value column `c` of `collection` takes when none is given: its serial's next
/// value, its DEFAULT expression's, or NULL.
fn column_default(collection: &Collection, c: &ColumnDef, session: &Session) -> Result<Value> {
    match &c.default {
        Some(d) if serial_sequence(d).is_some() => types::cast(
            Value::Int(session.database().next_serial(collection, &c.name)?),
            &c.ty,
        ),
        Some(d) => default_value(d, &c.ty, session),
        None => Ok(Value::Null),
    }
}

/// Evaluates a column DEFAULT expression.
fn default_value(text: &str, ty: &SqlType, session: &Session) -> Result<Value> {
    let select = format!("SELECT {text}");
    let stmts = tissdb_dialect::parse(&select).map_err(|e| syntax_error(e, &select))?;
    let Some(TissStatement::Sql(s)) = stmts.first() else {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            format!("invalid DEFAULT {text}"),
        ));
    };
    let ast::Statement::Query(q) = s.as_ref() else {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            format!("invalid DEFAULT {text}"),
        ));
    };
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            format!("invalid DEFAULT {text}"),
        ));
    };
    let Some(ast::SelectItem::UnnamedExpr(e)) = sel.projection.first() else {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            format!("invalid DEFAULT {text}"),
        ));
    };
    let mut binder = session_binder(session, session.database(), &[]);
    let (x, _) = binder.expr(e, &Scope::default())?;
    let ctx = exec_context(session, &[]);
    types::cast(x.eval(&[], &ctx.eval_context())?, ty)
}

// ---- INSERT -------------------------------------------------------------------------

/// An INSERT as bound: where its rows go and where they come from.
pub(crate) struct InsertPlan {
    collection: Collection,
    /// Target fields, in the order of the values.
    targets: Vec<String>,
    source: Node,
    /// Per row of a VALUES source, the positions (among `targets`) given as `DEFAULT`:
    /// those columns take their default, as if not named. Empty: none anywhere.
    defaulted: Vec<Vec<usize>>,
    on_conflict_do_nothing: bool,
    returning: Vec<Expr>,
    returning_columns: Vec<Column>,
}

impl InsertPlan {
    /// See [`Kept::fits_transaction`]: values into a typed table.
    pub(crate) fn fits_transaction(&self) -> bool {
        self.collection.kind == Kind::Table && matches!(self.source, Node::Values { .. })
    }
}

fn returning(
    binder: &mut Binder<'_>,
    items: Option<&Vec<ast::SelectItem>>,
    collection: &Collection,
    alias: Option<String>,
) -> Result<(Vec<Expr>, Vec<Column>)> {
    let Some(items) = items else {
        return Ok((Vec::new(), Vec::new()));
    };
    let scope = Scope::of_collection(collection, alias);
    let bound = binder.select_items(items, &scope)?;
    let mut exprs = Vec::with_capacity(bound.len());
    let mut columns = Vec::with_capacity(bound.len());
    for (e, t, n) in bound {
        let mut agg = false;
        e.walk(&mut |x| agg |= matches!(x, Expr::Agg(_)));
        if agg {
            return Err(Error::invalid(
                binder::GROUPING_ERROR,
                "aggregate functions are not allowed in RETURNING",
            ));
        }
        exprs.push(e);
        columns.push(Column::new(n, t));
    }
    Ok((exprs, columns))
}

fn plan_insert(binder: &mut Binder<'_>, ins: &ast::Insert) -> Result<InsertPlan> {
    let ast::TableObject::TableName(name) = &ins.table else {
        return Err(unsupported("INSERT INTO a table function"));
    };
    let collection = binder.collection(name)?;
    let on_conflict_do_nothing = match &ins.on {
        None => false,
        Some(ast::OnInsert::OnConflict(oc))
            if matches!(oc.action, ast::OnConflictAction::DoNothing) =>
        {
            true
        }
        Some(other) => return Err(unsupported(format!("{other}"))),
    };
    let all: Vec<(String, SqlType)> = collection.sql_columns();
    // `INSERT INTO t DEFAULT VALUES`: one row, every column its default.
    let default_values = ins.source.is_none() && ins.columns.is_empty();
    let targets: Vec<String> = if default_values {
        Vec::new()
    } else if ins.columns.is_empty() {
        all.iter().map(|(n, _)| n.clone()).collect()
    } else {
        ins.columns
            .iter()
            .map(|c| {
                let parts: Vec<String> =
                    c.0.iter().filter_map(|p| p.as_ident()).map(ident).collect();
                if parts.len() != 1 {
                    return Err(unsupported(format!("inserting into the field path {c}")));
                }
                Ok(parts[0].clone())
            })
            .collect::<Result<_>>()?
    };
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].contains(t) {
            return Err(Error::invalid(
                SqlState("42701"),
                format!("column \"{t}\" specified more than once"),
            ));
        }
        if collection.kind == Kind::Table && !all.iter().any(|(n, _)| n == t) {
            return Err(Error::invalid(
                binder::UNDEFINED_COLUMN,
                format!(
                    "column \"{t}\" of relation \"{}\" does not exist",
                    collection.name
                ),
            ));
        }
    }
    let target_types: Vec<SqlType> = targets
        .iter()
        .map(|t| {
            all.iter()
                .find(|(n, _)| n == t)
                .map(|(_, ty)| ty.clone())
                .unwrap_or(SqlType::Unknown)
        })
        .collect();
    let mut defaulted = Vec::new();
    let source = match &ins.source {
        None if default_values => Node::Values {
            rows: vec![Vec::new()],
            columns: Vec::new(),
        },
        None => return Err(unsupported("INSERT without VALUES or SELECT")),
        Some(q) => match q.body.as_ref() {
            ast::SetExpr::Values(v) if q.order_by.is_none() && q.limit_clause.is_none() => {
                let without_defaults;
                let v = match take_defaults(v) {
                    None => v,
                    Some((values, positions)) => {
                        without_defaults = values;
                        defaulted = positions;
                        &without_defaults
                    }
                };
                if collection.kind == Kind::Table {
                    binder.values(v, &target_types)?
                } else {
                    // Schemaless: literals keep their own types; parameters take the
                    // field's observed type.
                    let node = binder.values(v, &[])?;
                    if let Node::Values { rows, .. } = &node {
                        for row in rows {
                            for (i, e) in row.iter().enumerate() {
                                if let (Expr::Param(p), Some(t)) = (e, target_types.get(i)) {
                                    binder.coerce_to(Expr::Param(*p), SqlType::Unknown, t)?;
                                }
                            }
                        }
                    }
                    node
                }
            }
            _ => binder.query(q)?,
        },
    };
    let width = source.columns().len();
    if width != targets.len() {
        return Err(Error::invalid(
            SqlState::SYNTAX_ERROR,
            format!(
                "INSERT has {} expressions but {} target columns",
                width,
                targets.len()
            ),
        ));
    }
    let (returning, returning_columns) =
        returning(binder, ins.returning.as_ref(), &collection, None)?;
    Ok(InsertPlan {
        collection,
        targets,
        source,
        defaulted,
        on_conflict_do_nothing,
        returning,
        returning_columns,
    })
}

/// Whether `e` is the keyword `DEFAULT` (sqlparser reads it as an unquoted identifier
/// where an expression goes).
fn is_default(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(id)
        if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// `DEFAULT` as a VALUES item (`VALUES (DEFAULT, 'x')`): None if there is none; else the
/// VALUES with a NULL in each such place, and per row the positions that were `DEFAULT`.
fn take_defaults(values: &ast::Values) -> Option<(ast::Values, Vec<Vec<usize>>)> {
    if !values.rows.iter().any(|row| row.iter().any(is_default)) {
        return None;
    }
    let mut values = values.clone();
    let positions = values
        .rows
        .iter_mut()
        .map(|row| {
            let mut at = Vec::new();
            for (i, e) in row.iter_mut().enumerate() {
                if is_default(e) {
                    *e = ast::Expr::Value(ast::Value::Null.into());
                    at.push(i);
                }
            }
            at
        })
        .collect();
    Some((values, positions))
}

/// Builds the stored document for one row of a table, applying types, defaults and
/// NOT NULL; returns (key, document).
pub(crate) fn table_document(
    collection: &Collection,
    targets: &[String],
    row: Row,
    session: &Session,
) -> Result<(String, Object)> {
    let (key, values) = table_values(collection, targets, row, session)?;
    let doc = collection
        .columns
        .iter()
        .map(|c| c.name.clone())
        .zip(values)
        .collect();
    Ok((key, doc))
}

/// The values of the stored document for one row of a table, one per column in the
/// table's order, with types, defaults and NOT NULL applied (what [`table_document`]
/// names); returns (key, values).
pub(crate) fn table_values(
    collection: &Collection,
    targets: &[String],
    row: Row,
    session: &Session,
) -> Result<(String, Vec<Value>)> {
    table_values_from(
        collection,
        &value_sources(collection, targets),
        row,
        session,
    )
}

/// For each column of `collection`, the position of its value among `targets` (None:
/// not given), as [`table_values_from`] takes them.
pub(crate) fn value_sources(collection: &Collection, targets: &[String]) -> Vec<Option<usize>> {
    collection
        .columns
        .iter()
        .map(|c| targets.iter().position(|t| *t == c.name))
        .collect()
}

/// [`table_values`] with the columns' positions in `row` worked out once
/// ([`value_sources`]) for many rows (a COPY).
pub(crate) fn table_values_from(
    collection: &Collection,
    sources: &[Option<usize>],
    mut row: Row,
    session: &Session,
) -> Result<(String, Vec<Value>)> {
    let mut values = Vec::with_capacity(collection.columns.len());
    for (c, source) in collection.columns.iter().zip(sources) {
        let v = match *source {
            Some(i) => types::cast(
                row.get_mut(i)
                    .map_or(Value::Null, |v| std::mem::replace(v, Value::Null)),
                &c.ty,
            )?,
            None => column_default(collection, c, session)?,
        };
        if c.not_null && matches!(v, Value::Null) {
            return Err(Error::invalid(
                NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, collection.name
                ),
            ));
        }
        values.push(v);
    }
    let key = match &collection.primary_key {
        Some(pk) => collection
            .columns
            .iter()
            .position(|c| c.name == *pk)
            .and_then(|i| collection.document_id(&values[i]))
            .ok_or_else(|| Error::invalid(NOT_NULL_VIOLATION, "primary key is null"))?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    Ok((key, values))
}

/// A value as a schemaless document stores it: SQL's decimal literals (`199.99` is
/// numeric in SQL) become floats, as the same number sent over REST would be, so a
/// field's numbers stay one number column however documents arrive. Declared tables keep
/// numeric where a column is declared numeric.
fn document_value(mut v: Value) -> Value {
    to_document_value(&mut v);
    v
}

/// [`document_value`] in place: nested arrays and objects are changed where they are,
/// not rebuilt.
fn to_document_value(v: &mut Value) {
    match v {
        Value::Numeric(n) => {
            if let Ok(f) = n.parse::<f64>() {
                *v = Value::Float(f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_document_value),
        Value::Object(o) => o.values_mut().for_each(to_document_value),
        _ => {}
    }
}

/// A schemaless collection's document from an INSERT's row, and whether its id is a
/// UUID v4 made here (no `id` given).
fn schemaless_document(targets: &[String], row: Row) -> Result<(String, Object, bool)> {
    let mut doc = Object::default();
    let mut id = None;
    for (t, v) in targets.iter().zip(row.into_iter().map(document_value)) {
        if t == "id" {
            id = match v {
                Value::Null => None,
                other => Some(scan::key_text(&other).unwrap_or_default()),
            };
        } else {
            doc.insert(t.clone(), v);
        }
    }
    let generated = id.is_none();
    let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    crate::catalog::validate_document_id(&id)?;
    Ok((id, doc, generated))
}

/// 23505 for a second document with key `id`.
pub(crate) fn duplicate_key(collection: &Collection, id: &str) -> Error {
    Error::conflict(
        SqlState::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{}_pkey\": Key ({})=({}) already exists",
            collection.name,
            collection.primary_key.as_deref().unwrap_or("id"),
            collection.id_text(id)
        ),
    )
}

/// Where an INSERT's rows come from.
enum Source {
    /// The plan's source, which stays as it is (a kept plan).
    Kept,
    /// This source, taken from a plan run once: literal rows move out of it rather than
    /// being copied (a multi-row INSERT of documents copied every value).
    Owned(Box<Node>),
}

/// The rows of an INSERT's source.
fn source_rows(plan: &InsertPlan, source: Source, ctx: &Arc<ExecContext>) -> Result<Vec<Row>> {
    let node = match source {
        Source::Kept => return exec::build(&plan.source, ctx)?.collect(),
        Source::Owned(node) => *node,
    };
    let Node::Values { rows, .. } = node else {
        return exec::build(&node, ctx)?.collect();
    };
    let ectx = ctx.eval_context();
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|e| match e {
                    Expr::Literal(v) => Ok(v),
                    e => e.eval(&[], &ectx),
                })
                .collect()
        })
        .collect()
}

/// Runs an INSERT whose source is optimized, reading its rows from `source`.
fn run_insert(
    session: &Session,
    plan: &InsertPlan,
    source: Source,
    params: Vec<Value>,
) -> Result<Outcome> {
    let ctx = exec_context(session, &params);
    let rows = source_rows(plan, source, &ctx)?;
    ctx.check_cancel()?;
    let c = &plan.collection;
    // With each document, whether its id is a UUID v4 made here, which names no stored
    // document (122 random bits from the operating system's generator): no read checks
    // it.
    let mut docs: Vec<(String, Object, bool)> = Vec::with_capacity(rows.len());
    for (r, row) in rows.into_iter().enumerate() {
        let defaulted = plan.defaulted.get(r).filter(|d| !d.is_empty());
        // A row with DEFAULT items: those targets are left out, as if not named.
        let (targets, row) = match defaulted {
            None => (std::borrow::Cow::Borrowed(&plan.targets), row),
            Some(d) => {
                let (targets, row): (Vec<String>, Row) = plan
                    .targets
                    .iter()
                    .cloned()
                    .zip(row)
                    .enumerate()
                    .filter(|(i, _)| !d.contains(i))
                    .map(|(_, pair)| pair)
                    .unzip();
                (std::borrow::Cow::Owned(targets), row)
            }
        };
        docs.push(match c.kind {
            Kind::Table => {
                let (id, doc) = table_document(c, &targets, row, session)?;
                (id, doc, c.primary_key.is_none())
            }
            Kind::Schemaless => schemaless_document(&targets, row)?,
        });
    }
    let keys: Vec<Vec<u8>> = docs.iter().map(|(id, ..)| keys::encode(c.id, id)).collect();
    let _locks = session.lock_for_write(keys.iter().map(Vec::as_slice));
    let mut writes = Vec::with_capacity(docs.len());
    let mut written: Vec<(String, Object)> = Vec::with_capacity(docs.len());
    let mut seen = std::collections::HashSet::new();
    for ((id, doc, generated), key) in docs.into_iter().zip(keys) {
        if !seen.insert(key.clone()) || (!generated && session.exists(&key)?) {
            if plan.on_conflict_do_nothing {
                continue;
            }
            return Err(duplicate_key(c, &id));
        }
        // The documents are kept for RETURNING only (a copy each).
        if !plan.returning_columns.is_empty() {
            written.push((id.clone(), doc.clone()));
        }
        writes.push(DocWrite {
            id,
            key,
            old: None,
            new: Some(doc),
        });
    }
    let n = writes.len();
    if !writes.is_empty() {
        session.write_documents(c, writes)?;
    }
    if plan.returning_columns.is_empty() {
        return Ok(Outcome::command(format!("INSERT 0 {n}")));
    }
    let ectx = ctx.eval_context();
    let mut rows = Vec::with_capacity(n);
    for (id, doc) in &written {
        let row = scan::document_row(c, id, doc);
        rows.push(
            plan.returning
                .iter()
                .map(|e| e.eval(&row, &ectx))
                .collect::<Result<Row>>()?,
        );
    }
    Ok(Outcome::Rows {
        rows: conform_rows(rows, &plan.returning_columns),
        columns: Arc::new(plan.returning_columns.clone()),
        command: "INSERT 0",
    })
}

// ---- UPDATE and DELETE ----------------------------------------------------------------

struct Assignment {
    /// Top-level field or column.
    field: String,
    /// Path inside it (`SET specs.weight = ...`).
    path: Vec<String>,
    value: Expr,
    /// The declared type to coerce to (tables).
    ty: Option<SqlType>,
    /// `SET c = DEFAULT` (a table's column): the column's default instead of `value`.
    default: bool,
}

/// An UPDATE or DELETE as bound: the documents it changes and how.
pub(crate) struct ModifyPlan {
    /// A scan with the WHERE pushed in (and key lookups when the WHERE pins the key);
    /// optimized before the plan runs.
    scan: Node,
    assignments: Vec<Assignment>,
    returning: Vec<Expr>,
    returning_columns: Vec<Column>,
}

impl ModifyPlan {
    /// See [`Kept::fits_transaction`]: a typed table, read by key or scanned.
    pub(crate) fn fits_transaction(&self) -> bool {
        matches!(
            &self.scan,
            Node::Scan { collection, access: Access::Full | Access::Keys(_), .. }
                if collection.kind == Kind::Table
        )
    }
}

fn single_table(t: &ast::TableWithJoins) -> Result<(&ast::ObjectName, Option<String>)> {
    if !t.joins.is_empty() {
        return Err(unsupported("JOIN in UPDATE or DELETE"));
    }
    match &t.relation {
        ast::TableFactor::Table { name, alias, .. } => {
            Ok((name, alias.as_ref().map(|a| ident(&a.name))))
        }
        other => Err(unsupported(format!("{other} as a target"))),
    }
}

fn modify_scan(
    binder: &mut Binder<'_>,
    collection: &Collection,
    alias: Option<String>,
    selection: Option<&ast::Expr>,
) -> Result<(Node, Scope)> {
    let scope = Scope::of_collection(collection, alias);
    let filter = match selection {
        Some(w) => {
            let e = binder.condition(w, &scope, "WHERE")?;
            let mut agg = false;
            e.walk(&mut |x| agg |= matches!(x, Expr::Agg(_)));
            if agg {
                return Err(Error::invalid(
                    binder::GROUPING_ERROR,
                    "aggregate functions are not allowed in WHERE",
                ));
            }
            Some(e)
        }
        None => None,
    };
    let columns = scope
        .columns
        .iter()
        .map(|c| Column::new(c.name.clone(), c.ty.clone()))
        .collect();
    Ok((
        Node::Scan {
            collection: collection.clone(),
            columns,
            access: Access::Full,
            filter,
            read: None,
        },
        scope,
    ))
}

fn plan_update(binder: &mut Binder<'_>, u: &ast::Update) -> Result<ModifyPlan> {
    if u.from.is_some() || !u.order_by.is_empty() || u.limit.is_some() {
        return Err(unsupported("UPDATE ... FROM, ORDER BY or LIMIT"));
    }
    let (name, alias) = single_table(&u.table)?;
    let collection = binder.collection(name)?;
    let (scan, scope) = modify_scan(binder, &collection, alias.clone(), u.selection.as_ref())?;
    let table_name = alias.unwrap_or_else(|| collection.name.clone());
    let mut assignments = Vec::new();
    for a in &u.assignments {
        let ast::AssignmentTarget::ColumnName(target) = &a.target else {
            return Err(unsupported("tuple assignment"));
        };
        let mut parts: Vec<String> = target
            .0
            .iter()
            .filter_map(|p| p.as_ident())
            .map(ident)
            .collect();
        if parts.len() > 1
            && parts[0] == table_name
            && scope.columns.iter().all(|c| c.name != parts[0])
        {
            parts.remove(0);
        }
        let field = parts.remove(0);
        let declared = scope
            .columns
            .iter()
            .find(|c| c.name == field)
            .map(|c| c.ty.clone());
        if field == "id" && collection.kind == Kind::Schemaless
            || collection.primary_key.as_deref() == Some(field.as_str())
        {
            return Err(unsupported("changing a document's key with UPDATE"));
        }
        if collection.kind == Kind::Table {
            let Some(t) = &declared else {
                return Err(Error::invalid(
                    binder::UNDEFINED_COLUMN,
                    format!(
                        "column \"{field}\" of relation \"{}\" does not exist",
                        collection.name
                    ),
                ));
            };
            if !parts.is_empty() && !t.is_json() {
                return Err(Error::invalid(
                    binder::UNDEFINED_COLUMN,
                    format!(
                        "column \"{field}\" is of type {} and has no fields",
                        t.name()
                    ),
                ));
            }
        }
        let default = collection.kind == Kind::Table && parts.is_empty() && is_default(&a.value);
        let null = ast::Expr::Value(ast::Value::Null.into());
        let (value, vty) = binder.expr(if default { &null } else { &a.value }, &scope)?;
        let value = match (&declared, parts.is_empty()) {
            (Some(t), true) if collection.kind == Kind::Table => binder.coerce_to(value, vty, t)?.0,
            (Some(t), true) => match value {
                Expr::Param(p) => binder.coerce_to(Expr::Param(p), SqlType::Unknown, t)?.0,
                other => other,
            },
            _ => value,
        };
        let ty = if collection.kind == Kind::Table && parts.is_empty() {
            declared
        } else {
            None
        };
        assignments.push(Assignment {
            field,
            path: parts,
            value,
            ty,
            default,
        });
    }
    let (returning, returning_columns) =
        returning(binder, u.returning.as_ref(), &collection, None)?;
    Ok(ModifyPlan {
        scan,
        assignments,
        returning,
        returning_columns,
    })
}

fn plan_delete(binder: &mut Binder<'_>, d: &ast::Delete) -> Result<ModifyPlan> {
    if d.using.is_some() || !d.order_by.is_empty() || d.limit.is_some() || !d.tables.is_empty() {
        return Err(unsupported("DELETE ... USING, ORDER BY or LIMIT"));
    }
    let tables = match &d.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    let [table] = tables.as_slice() else {
        return Err(unsupported("DELETE from several tables"));
    };
    let (name, alias) = single_table(table)?;
    let collection = binder.collection(name)?;
    let (scan, _) = modify_scan(binder, &collection, alias, d.selection.as_ref())?;
    let (returning, returning_columns) =
        returning(binder, d.returning.as_ref(), &collection, None)?;
    Ok(ModifyPlan {
        scan,
        assignments: Vec::new(),
        returning,
        returning_columns,
    })
}

/// Sets `value` at `path` inside `doc`'s field `field`, creating objects on the way.
fn set_field(doc: &mut Object, field: &str, path: &[String], value: Value) {
    let Some((last, init)) = path.split_last() else {
        doc.insert(field.to_string(), value);
        return;
    };
    let mut slot = doc.entry(field.to_string()).or_insert(Value::Null);
    for step in init {
        if !matches!(slot, Value::Object(_)) {
            *slot = Value::Object(Box::default());
        }
        let Value::Object(o) = slot else { return };
        slot = o.entry(step.clone()).or_insert(Value::Null);
    }
    if !matches!(slot, Value::Object(_)) {
        *slot = Value::Object(Box::default());
    }
    if let Value::Object(o) = slot {
        o.insert(last.clone(), value);
    }
}

/// What a modifying statement targets: its collection, the (id, document) pairs matching
/// its WHERE, and the WHERE itself (re-checked under the row locks).
type Targets<'p> = (&'p Collection, Vec<(String, Object)>, Option<&'p Expr>);

fn matching_documents<'p>(plan: &'p ModifyPlan, ctx: &Arc<ExecContext>) -> Result<Targets<'p>> {
    let Node::Scan {
        collection,
        access,
        filter,
        ..
    } = &plan.scan
    else {
        return Err(crate::error::Error::Internal(
            "modify plan is not a scan".into(),
        ));
    };
    let ectx = ctx.eval_context();
    let mut out = Vec::new();
    for item in scan::documents(collection, access, ctx)? {
        ctx.check_cancel()?;
        let (id, doc) = item?;
        let keep = match filter {
            None => true,
            Some(f) => {
                truth(&f.eval(&scan::document_row(collection, &id, &doc), &ectx)?) == Some(true)
            }
        };
        if keep {
            out.push((id, doc));
        }
    }
    Ok((collection, out, filter.as_ref()))
}

/// A document a modifying statement changes: id, key, current version and its row.
struct Target {
    id: String,
    key: Vec<u8>,
    doc: Object,
    row: Row,
}

/// The documents matching a modifying statement, re-read and re-checked under their key
/// locks (a concurrent statement may have changed them since the scan); the locks are
/// held until the returned guards drop.
/// A modifying statement's collection, its targets, and the key locks held on them.
type Locked<'s, 'p> = (
    &'p Collection,
    Vec<Target>,
    Vec<parking_lot::MutexGuard<'s, ()>>,
);

fn locked_targets<'s, 'p>(
    session: &'s Session,
    plan: &'p ModifyPlan,
    ctx: &Arc<ExecContext>,
) -> Result<Locked<'s, 'p>> {
    let (collection, candidates, filter) = matching_documents(plan, ctx)?;
    let keys: Vec<Vec<u8>> = candidates
        .iter()
        .map(|(id, _)| keys::encode(collection.id, id))
        .collect();
    let locks = session.lock_for_write(keys.iter().map(Vec::as_slice));
    let targets = current_targets(session, collection, &candidates, &keys, filter, ctx)?;
    Ok((collection, targets, locks))
}

/// The candidates (with their `keys`) a modifying statement's scan found, as they are
/// now: inside a transaction as scanned (its view does not change under it; commit
/// validates); otherwise re-read — the caller holds their key locks — and re-checked
/// against the WHERE.
fn current_targets(
    session: &Session,
    collection: &Collection,
    candidates: &[(String, Object)],
    keys: &[Vec<u8>],
    filter: Option<&Expr>,
    ctx: &Arc<ExecContext>,
) -> Result<Vec<Target>> {
    if session.in_transaction() {
        return Ok(candidates
            .iter()
            .zip(keys)
            .map(|((id, doc), key)| Target {
                row: scan::document_row(collection, id, doc),
                id: id.clone(),
                key: key.clone(),
                doc: doc.clone(),
            })
            .collect());
    }
    let db = session.database();
    let ectx = ctx.eval_context();
    let mut targets = Vec::with_capacity(candidates.len());
    for ((id, _), key) in candidates.iter().zip(keys) {
        let Some(doc) = db.storage().get(key)? else {
            continue;
        };
        let row = scan::document_row(collection, id, &doc);
        if let Some(f) = filter
            && truth(&f.eval(&row, &ectx)?) != Some(true)
        {
            continue;
        }
        targets.push(Target {
            id: id.clone(),
            key: key.clone(),
            doc,
            row,
        });
    }
    Ok(targets)
}

/// Runs an UPDATE whose scan is optimized.
fn run_update(session: &Session, plan: &ModifyPlan, params: Vec<Value>) -> Result<Outcome> {
    let ctx = exec_context(session, &params);
    let (collection, targets, _locks) = locked_targets(session, plan, &ctx)?;
    let ectx = ctx.eval_context();
    let mut writes = Vec::with_capacity(targets.len());
    let mut updated: Vec<(String, Object)> = Vec::with_capacity(targets.len());
    for Target { id, key, doc, row } in targets {
        let old = doc;
        let mut doc = old.clone();
        for a in &plan.assignments {
            let column = a
                .default
                .then(|| collection.columns.iter().find(|c| c.name == a.field))
                .flatten();
            let mut v = match column {
                Some(c) => column_default(collection, c, session)?,
                None => a.value.eval(&row, &ectx)?,
            };
            if let Some(t) = &a.ty {
                v = types::cast(v, t)?;
                if matches!(v, Value::Null)
                    && collection
                        .columns
                        .iter()
                        .any(|c| c.name == a.field && c.not_null)
                {
                    return Err(Error::invalid(
                        NOT_NULL_VIOLATION,
                        format!(
                            "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                            a.field, collection.name
                        ),
                    ));
                }
            }
            if collection.kind == Kind::Schemaless {
                v = document_value(v);
            }
            set_field(&mut doc, &a.field, &a.path, v);
        }
        // The new documents are kept for RETURNING only (a copy each).
        if !plan.returning_columns.is_empty() {
            updated.push((id.clone(), doc.clone()));
        }
        writes.push(DocWrite {
            id,
            key,
            old: Some(old),
            new: Some(doc),
        });
    }
    let n = writes.len();
    if !writes.is_empty() {
        session.write_documents(collection, writes)?;
    }
    if plan.returning_columns.is_empty() {
        return Ok(Outcome::command(format!("UPDATE {n}")));
    }
    finish_modify("UPDATE", plan, collection, &updated, &ectx)
}

/// Runs a DELETE whose scan is optimized.
fn run_delete(session: &Session, plan: &ModifyPlan, params: Vec<Value>) -> Result<Outcome> {
    let ctx = exec_context(session, &params);
    let (collection, candidates, filter) = matching_documents(plan, &ctx)?;
    let keys: Vec<Vec<u8>> = candidates
        .iter()
        .map(|(id, _)| keys::encode(collection.id, id))
        .collect();
    // The documents found again under their key locks (with those the foreign keys'
    // ON DELETE actions reach, see `Session::write_with_references`).
    let writes = session.write_with_references(collection, keys.clone(), |s| {
        let targets = current_targets(s, collection, &candidates, &keys, filter, &ctx)?;
        Ok(targets
            .into_iter()
            .map(|t| DocWrite {
                id: t.id,
                key: t.key,
                old: Some(t.doc),
                new: None,
            })
            .collect())
    })?;
    let deleted: Vec<(String, Object)> = writes
        .into_iter()
        .filter_map(|w| w.old.map(|doc| (w.id, doc)))
        .collect();
    finish_modify("DELETE", plan, collection, &deleted, &ctx.eval_context())
}

fn finish_modify(
    tag: &str,
    plan: &ModifyPlan,
    collection: &Collection,
    docs: &[(String, Object)],
    ectx: &crate::query::expr::EvalContext<'_>,
) -> Result<Outcome> {
    if plan.returning_columns.is_empty() {
        return Ok(Outcome::command(format!("{tag} {}", docs.len())));
    }
    let mut rows = Vec::with_capacity(docs.len());
    for (id, doc) in docs {
        let row = scan::document_row(collection, id, doc);
        rows.push(
            plan.returning
                .iter()
                .map(|e| e.eval(&row, ectx))
                .collect::<Result<Row>>()?,
        );
    }
    Ok(Outcome::Rows {
        rows: conform_rows(rows, &plan.returning_columns),
        columns: Arc::new(plan.returning_columns.clone()),
        command: if tag == "UPDATE" { "UPDATE" } else { "DELETE" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `for_each_expr` (which `has_subqueries` and the correlation checks walk) visits
    /// exactly the expressions `map_exprs` replaces, in the same order, over plans of
    /// every node kind the binder builds; and the subquery checks see what a walk of
    /// the rebuilt plan sees.
    #[test]
    fn walking_a_plan_visits_what_mapping_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            data_dir: dir.path().to_path_buf(),
            ..crate::Config::default()
        };
        let db = crate::Database::open(config).unwrap();
        let mut session = Session::new(db.clone());
        for r in session.execute_batch(
            "CREATE TABLE t (id int PRIMARY KEY, a int, b text); \
             CREATE TABLE u (id int PRIMARY KEY, t_id int, c int)",
        ) {
            r.unwrap();
        }
        // Each query, and whether its plan holds a subquery (a lateral join's right
        // side is planned per row, not a subquery of the plan).
        let queries = [
            ("SELECT a + 1 FROM t WHERE id = 3 AND b LIKE 'x%'", false),
            (
                "SELECT b, count(*), sum(a * 2) FROM t GROUP BY b HAVING sum(a) > 1 ORDER BY b LIMIT 5 OFFSET 1",
                false,
            ),
            (
                "SELECT DISTINCT a FROM t WHERE a IN (SELECT c FROM u WHERE u.t_id = t.id)",
                true,
            ),
            (
                "SELECT (SELECT max(c) FROM u), a FROM t JOIN u ON t.id = u.t_id AND u.c > t.a",
                true,
            ),
            (
                "SELECT a, row_number() OVER (PARTITION BY b ORDER BY a) FROM t",
                false,
            ),
            ("SELECT a FROM t UNION SELECT c FROM u", false),
            (
                "SELECT x.n FROM t, LATERAL (SELECT t.a + u.c AS n FROM u WHERE u.t_id = t.id) x",
                false,
            ),
            (
                "SELECT unnest(ARRAY[a, 2]), g FROM t, generate_series(1, a) g",
                false,
            ),
            ("VALUES (1, 'a'), (2, (SELECT 'b'))", true),
            (
                "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
                false,
            ),
            (
                "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.c = t.a)",
                true,
            ),
        ];
        for (sql, subqueries) in queries {
            let [TissStatement::Sql(stmt)] = &tissdb_dialect::parse(sql).unwrap()[..] else {
                panic!("one statement: {sql}");
            };
            let ast::Statement::Query(q) = stmt.as_ref() else {
                panic!("a query: {sql}");
            };
            let node = session_binder(&session, &db, &[]).query(q).unwrap();
            let mut walked = Vec::new();
            node.for_each_expr(&mut |e| walked.push(e.clone()));
            let mut mapped = Vec::new();
            let _ = node.clone().map_exprs(&mut |e| {
                mapped.push(e.clone());
                Ok(e)
            });
            assert!(!walked.is_empty(), "{sql}");
            assert_eq!(walked, mapped, "{sql}");
            let in_mapped = mapped.iter().any(|e| {
                let mut found = false;
                e.walk(&mut |x| found |= matches!(x, Expr::Subquery(..) | Expr::InSubquery { .. }));
                found
            });
            assert_eq!(node.has_subqueries(), in_mapped, "{sql}");
            assert_eq!(node.has_subqueries(), subqueries, "{sql}");
        }
    }

    #[test]
    fn nested_assignment_creates_objects() {
        let mut doc = Object::default();
        doc.insert("specs".into(), Value::String("flat".into()));
        set_field(
            &mut doc,
            "specs",
            &["weight".into()],
            Value::String("260g".into()),
        );
        set_field(&mut doc, "a", &["b".into(), "c".into()], Value::Int(1));
        let Value::Object(specs) = &doc["specs"] else {
            panic!()
        };
        assert_eq!(specs["weight"], Value::String("260g".into()));
        let Value::Object(a) = &doc["a"] else {
            panic!()
        };
        let Value::Object(b) = &a["b"] else { panic!() };
        assert_eq!(b["c"], Value::Int(1));
    }
}
