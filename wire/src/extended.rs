//! The extended query protocol: Parse, Bind, Describe, Execute, Sync.
//!
//! 1. Parse: [`StatementParser`] calls [`Session::prepare`](tissdb::Session::prepare) with
//!    the parameter types the client declared; the [`Prepared`] statement (parameter types
//!    and result columns, known without running it) is stored by pgwire.
//! 2. Describe: parameter types and result columns come from the `Prepared`, in the
//!    formats of the Bind for a portal, so a driver learns the row shape without running
//!    anything. Parameters the engine could not type are described as `text`; a
//!    statement without result columns answers NoData.
//! 3. Execute: parameters are decoded (text or binary, in the type they were described
//!    as) and the statement runs; rows go out in exactly the described types and formats.
//!    pgwire keeps the rows of a portal run with a row limit and hands them out on later
//!    Executes, answering PortalSuspended until the last one.
//! 4. Sync: ReadyForQuery reports the session's transaction status; the replies to Bind
//!    and Execute wait for it in the write buffer and leave in one write ([`crate::held`]).
//!
//! After an error pgwire skips messages up to the next Sync, as PostgreSQL does.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, send_describe_response};
use pgwire::api::results::{DescribeResponse, FieldFormat, FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::NoData;
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete,
    Sync as PgSync, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::ReadyForQuery;
use tissdb::doc::Value;
use tissdb::query::{Outcome, SqlType};
use tissdb::session::Prepared;

use crate::connection::{QueryHandler, StatementParser};
use crate::decode::{ParamFormat, decode_param};
use crate::error;
use crate::held::Held;
use crate::quick_reads::QuickReads;
use crate::response;
use crate::schema::{self, check_format_count, format_at, param_pg_type, sql_type_from_oid};
use crate::streamed::EncodedRows;

/// A statement as the connection keeps it: the engine's prepared statement, and the
/// [`QuickReads`] shape of its text, hashed once at Parse instead of at every Execute.
#[derive(Clone, Debug)]
pub struct ParsedStatement {
    prepared: Arc<Prepared>,
    shape: Option<u64>,
}

impl ParsedStatement {
    pub fn new(prepared: Arc<Prepared>) -> ParsedStatement {
        let shape = QuickReads::shape(&prepared.sql);
        ParsedStatement { prepared, shape }
    }
}

impl std::ops::Deref for ParsedStatement {
    type Target = Prepared;
    fn deref(&self) -> &Prepared {
        &self.prepared
    }
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = ParsedStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let hints: Vec<Option<SqlType>> = types
            .iter()
            .map(|t| t.as_ref().and_then(|t| sql_type_from_oid(t.oid())))
            .collect();
        // A statement this connection parsed before (drivers parse the unnamed one for
        // every query) is at hand without a thread hand-off.
        let prepared = match self.session.run_direct(|s| s.kept_prepared(sql, &hints)) {
            Some(kept) => kept,
            None => {
                let sql = sql.to_owned();
                self.session
                    .run(move |s| s.prepare_kept(&sql, &hints))
                    .await?
                    .map_err(|e| error::engine(&e))?
            }
        };
        // Only comments: an empty statement, which executes as an empty query.
        Ok(prepared
            .statement
            .is_some()
            .then(|| ParsedStatement::new(prepared)))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.iter().map(param_pg_type).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        schema::fields(&stmt.columns, column_format)
    }
}

/// A statement's Describe answer: parameter types always, result columns or NoData.
#[derive(Debug, Default)]
struct StatementDescription {
    parameters: Vec<Type>,
    fields: Vec<FieldInfo>,
}

impl DescribeResponse for StatementDescription {
    fn parameters(&self) -> Option<&[Type]> {
        Some(&self.parameters)
    }

    fn fields(&self) -> &[FieldInfo] {
        &self.fields
    }

    fn no_data() -> Self {
        StatementDescription::default()
    }

    fn is_no_data(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Parameter types (the client's where it declared them, else the engine's) and result
/// columns in text format, as a statement Describe reports them.
fn describe_statement(
    stored: &StoredStatement<ParsedStatement>,
) -> PgWireResult<StatementDescription> {
    let prepared = &stored.statement;
    let count = stored.parameter_types.len().max(prepared.param_types.len());
    let parameters = (0..count)
        .map(|i| match stored.parameter_types.get(i) {
            Some(Some(declared)) => declared.clone(),
            _ => param_pg_type(prepared.param_types.get(i).unwrap_or(&SqlType::Unknown)),
        })
        .collect();
    Ok(StatementDescription {
        parameters,
        fields: schema::fields(&prepared.columns, None)?,
    })
}

/// The statement name as the client wrote it (pgwire names the unnamed one).
fn display_name(name: &str) -> &str {
    if name == DEFAULT_NAME { "" } else { name }
}

/// The values of a portal's parameters, in the engine's parameter types.
fn bind_values(portal: &Portal<ParsedStatement>) -> PgWireResult<Vec<Value>> {
    let stored: &StoredStatement<ParsedStatement> = &portal.statement;
    let prepared = &stored.statement;
    let declared = &stored.parameter_types;
    let expected = declared.len().max(prepared.param_types.len());
    if portal.parameters.len() != expected {
        return Err(error::protocol(format!(
            "bind message supplies {} parameters, but prepared statement \"{}\" requires {expected}",
            portal.parameters.len(),
            display_name(&stored.id),
        )));
    }
    check_format_count(&portal.parameter_format, expected, "parameter")?;
    portal
        .parameters
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let target = prepared
                .param_types
                .get(i)
                .cloned()
                .unwrap_or(SqlType::Unknown);
            // The type the client was told in ParameterDescription: its own, else ours.
            let wire_oid = declared
                .get(i)
                .and_then(|t| t.as_ref())
                .map_or_else(|| param_pg_type(&target).oid(), Type::oid);
            let format = match format_at(&portal.parameter_format, i) {
                FieldFormat::Binary => ParamFormat::Binary,
                FieldFormat::Text => ParamFormat::Text,
            };
            decode_param(i, wire_oid, format, bytes.as_deref(), &target)
        })
        .collect()
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = ParsedStatement;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = portal.statement.statement.clone();
        let result_format = &portal.result_column_format;
        // Refuse a bad Bind before anything runs.
        check_format_count(result_format, prepared.columns.len(), "result")?;
        let params = bind_values(portal)?;
        // Rows of an answer in the described columns are encoded as they are made (but a
        // point statement's, a few rows at most: as they come).
        let sink = || {
            EncodedRows::new(
                prepared.columns.clone(),
                (0..prepared.columns.len())
                    .map(|i| format_at(result_format, i))
                    .collect(),
            )
        };
        // A read the plan does not show to be a point lookup runs directly too once its
        // shape has proved quick (see `crate::quick_reads`): a join of a few rows by
        // index, a count from index pages.
        let learning = match prepared.point {
            true => None,
            false => prepared.shape.filter(|_| prepared.read_only),
        };
        let direct =
            prepared.point || learning.is_some_and(|shape| self.quick_reads.is_quick(shape));
        let started = Instant::now();
        let (outcome, mut sink) = if prepared.point {
            let outcome = self.session.run_direct(|s| s.execute(&prepared, &params));
            (outcome, EncodedRows::default())
        } else if direct {
            // As a point statement, but not behind a call still holding the session.
            let run = prepared.clone();
            let outcome = self
                .session
                .try_run_direct(move |s| s.execute(&run, &params))
                .await?;
            (outcome, EncodedRows::default())
        } else if prepared.read_only {
            let sink = sink();
            let run = prepared.clone();
            self.session
                .run_inline(move |s| {
                    let mut sink = sink;
                    (s.execute_into(&run, &params, &mut sink), sink)
                })
                .await?
        } else {
            let run = prepared.clone();
            let quick = prepared.shape.map(|shape| (&*self.quick_reads, shape));
            self.replies.wrote();
            let sink = sink();
            let (outcome, sink, deallocated) = self
                .session
                .run_write(quick, self.replies.company(), move |s| {
                    let mut sink = sink;
                    let outcome = s.execute_into(&run, &params, &mut sink);
                    (outcome, sink, s.take_deallocated())
                })
                .await?;
            // Statements prepared over the wire that a DEALLOCATE dropped.
            for name in deallocated {
                client.portal_store().rm_statement(&name);
            }
            (outcome, sink)
        };
        if let Some(shape) = learning {
            self.quick_reads.record(shape, direct, started.elapsed());
        }
        let outcome = match outcome {
            Ok(outcome) => outcome,
            // A row that could not be encoded ended the statement.
            Err(e) => return Err(sink.take_error().unwrap_or_else(|| error::engine(&e))),
        };
        if let Some(copy) = crate::copy::extended_response(&self.session, client).await? {
            return Ok(copy);
        }
        // The engine answers in the described columns (`Session::execute`); rows from a
        // statement described without any are sent as they come.
        match &outcome {
            Outcome::Rows { columns, .. } if prepared.columns.len() == columns.len() => {}
            Outcome::Rows { columns, .. } if prepared.columns.is_empty() => {
                tracing::warn!(sql = %prepared.sql, "rows from a statement described without columns");
                check_format_count(result_format, columns.len(), "result")?;
            }
            Outcome::Rows { .. } => {
                return Err(error::user(
                    error::FEATURE_NOT_SUPPORTED,
                    "cached plan must not change result type",
                ));
            }
            Outcome::Command { .. } => {}
        }
        if let Outcome::Rows { command, .. } = &outcome
            && sink.took()
        {
            let command = *command;
            let mut response = sink.into_response(None);
            response.set_command_tag(command);
            return Ok(Response::Query(response));
        }
        // The row description went with Describe: the answer is rows only.
        Ok(response::outcome(outcome, false, |i| {
            format_at(result_format, i)
        }))
    }

    /// Describes a statement as PostgreSQL does: ParameterDescription, then NoData when
    /// the statement returns no rows. (pgwire's default sends an empty RowDescription
    /// for a statement that has parameters but no result columns.) A portal answers its
    /// columns in its Bind's formats, or NoData. Either reply stays in the write buffer
    /// until Sync or Flush.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The reply waits for Sync or Flush, as the others do (see [`crate::held`]).
        let client = &mut Held(client);
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        if message.target_type == TARGET_TYPE_BYTE_PORTAL {
            // A portal's columns in its Bind's formats, or NoData (as pgwire's default
            // answers, with the row description made in one step).
            let reply = match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) if !portal.statement.statement.columns.is_empty() => {
                    PgWireBackendMessage::RowDescription(schema::row_description(
                        &portal.statement.statement.columns,
                        &portal.result_column_format,
                    )?)
                }
                Some(_) => PgWireBackendMessage::NoData(NoData::new()),
                None => return Err(PgWireError::PortalNotFound(name.to_owned())),
            };
            client.send(reply).await?;
            return Ok(());
        }
        if message.target_type != TARGET_TYPE_BYTE_STATEMENT {
            return self._on_describe(client, message).await;
        }
        let description = match client.portal_store().get_statement(name) {
            Some(Entry::Value(stored)) => describe_statement(&stored)?,
            Some(Entry::Empty) => StatementDescription::default(),
            None => return Err(PgWireError::StatementNotFound(name.to_owned())),
        };
        send_describe_response(client, &description).await
    }

    /// pgwire's Parse, with ParseComplete left in the write buffer until Sync (fed, not
    /// sent; see [`crate::held`]).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME).to_owned();
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
            None => client.portal_store().put_empty_statement(&name),
        }
        if !name.is_empty() {
            // SQL's DEALLOCATE may name it (one namespace, as in PostgreSQL).
            self.session.run_direct(|s| s.front_end_prepared(&name));
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's Close; a named statement closed is one SQL's DEALLOCATE can no longer
    /// name.
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                client.portal_store().rm_statement(name);
                if !name.is_empty() {
                    self.session.run_direct(|s| s.front_end_closed(name));
                }
            }
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        // The reply waits for Sync or Flush, as the others do (see [`crate::held`]).
        Held(client)
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's Bind, with BindComplete left in the write buffer until Sync (fed, not
    /// sent; see [`crate::held`]).
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(error::user(
                        error::PROTOCOL_VIOLATION,
                        format!(
                            "bind message supplies {} parameters, but prepared statement \"{}\" requires 0",
                            message.parameters.len(),
                            display_name(statement_name)
                        ),
                    ));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's Execute, with the rows and CommandComplete left in the write buffer
    /// until Sync (see [`crate::held`]).
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self._on_execute(&mut Held(client), message).await?;
        if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            // The client waits for CopyInResponse before it sends the data.
            client.flush().await?;
        }
        Ok(())
    }

    /// Reports the engine's transaction status, then does what pgwire's does: drops the
    /// unnamed portal and sends ReadyForQuery (batched with other connections' answers:
    /// [`crate::batching`]).
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let status = self.session.transaction_status();
        client.set_transaction_status(status);
        client.portal_store().rm_portal(DEFAULT_NAME);
        client
            .feed(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        if self.replies.should_yield() && !self.outbox.hold_next() {
            // Other connections of this thread send theirs with this (see batching).
            tokio::task::yield_now().await;
        }
        client.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tissdb::query::Column;

    use super::*;

    fn prepared(param_types: Vec<SqlType>, columns: Vec<Column>) -> ParsedStatement {
        ParsedStatement::new(Arc::new(Prepared {
            sql: "SELECT ...".into(),
            statement: None,
            param_refs: param_types.len(),
            param_types,
            columns: Arc::new(columns),
            read_only: true,
            point: false,
            point_write: false,
            plan_cache: Default::default(),
        }))
    }

    fn portal(
        stmt: ParsedStatement,
        declared: Vec<Option<Type>>,
        formats: Vec<i16>,
        params: Vec<Option<&[u8]>>,
    ) -> Portal<ParsedStatement> {
        let stored = Arc::new(StoredStatement::new("s1".into(), stmt, declared));
        let bind = Bind::new(
            None,
            Some("s1".into()),
            formats,
            params
                .into_iter()
                .map(|p| p.map(Bytes::copy_from_slice))
                .collect(),
            vec![],
        );
        Portal::try_new(&bind, stored).unwrap()
    }

    fn code(e: PgWireError) -> String {
        match e {
            PgWireError::UserError(info) => info.code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parameters_decode_in_the_described_type() {
        let stmt = prepared(vec![SqlType::Int8, SqlType::Unknown, SqlType::Int4], vec![]);
        // $1 declared int4 by the client: 4 bytes, widened to the engine's int8.
        // $2 untyped: described as text. $3 in text format.
        let p = portal(
            stmt,
            vec![Some(Type::INT4)],
            vec![1, 1, 0],
            vec![Some(&7i32.to_be_bytes()), Some(b"abc"), Some(b"42")],
        );
        assert_eq!(
            bind_values(&p).unwrap(),
            vec![Value::Int(7), Value::String("abc".into()), Value::Int(42)]
        );
    }

    #[test]
    fn parameter_count_and_formats_are_checked() {
        let stmt = prepared(vec![SqlType::Int4], vec![]);
        let p = portal(stmt.clone(), vec![], vec![], vec![]);
        assert_eq!(code(bind_values(&p).unwrap_err()), "08P01");
        let p = portal(stmt.clone(), vec![], vec![0, 1], vec![Some(b"1")]);
        assert_eq!(code(bind_values(&p).unwrap_err()), "08P01");
        let p = portal(stmt, vec![], vec![1], vec![Some(b"1")]);
        assert_eq!(code(bind_values(&p).unwrap_err()), "22P03");
    }

    #[tokio::test]
    async fn a_statement_without_rows_describes_as_no_data() {
        use crate::testing::FakeClient;
        use pgwire::api::ClientPortalStore;
        use pgwire::messages::extendedquery::Describe;

        let (_dir, db) = crate::testing::open_db();
        let handler = QueryHandler::new(crate::session::SessionHandle::new(db, Default::default()));
        let mut client = FakeClient::ready();
        let insert = prepared(vec![SqlType::Int4, SqlType::Jsonb], vec![]);
        let select = prepared(vec![], vec![Column::new("a", SqlType::Int4)]);
        let store = client.portal_store();
        store.put_statement(Arc::new(StoredStatement::new(
            "ins".into(),
            insert,
            vec![Some(Type::INT8)],
        )));
        store.put_statement(Arc::new(StoredStatement::new("sel".into(), select, vec![])));
        store.put_empty_statement("empty");
        let describe = |name: &str| Describe::new(b'S', Some(name.to_string()));

        handler
            .on_describe(&mut client, describe("ins"))
            .await
            .unwrap();
        let sent = client.take();
        let PgWireBackendMessage::ParameterDescription(params) = &sent[0] else {
            panic!("{sent:?}");
        };
        // The client's declared type wins; the rest come from the engine.
        assert_eq!(params.types, vec![Type::INT8.oid(), Type::JSONB.oid()]);
        assert!(
            matches!(sent[1], PgWireBackendMessage::NoData(_)),
            "{sent:?}"
        );

        handler
            .on_describe(&mut client, describe("sel"))
            .await
            .unwrap();
        let sent = client.take();
        assert!(matches!(
            sent[0],
            PgWireBackendMessage::ParameterDescription(_)
        ));
        let PgWireBackendMessage::RowDescription(rows) = &sent[1] else {
            panic!("{sent:?}");
        };
        assert_eq!(rows.fields.len(), 1);

        handler
            .on_describe(&mut client, describe("empty"))
            .await
            .unwrap();
        let sent = client.take();
        assert!(
            matches!(sent[1], PgWireBackendMessage::NoData(_)),
            "{sent:?}"
        );

        let missing = handler
            .on_describe(&mut client, describe("nope"))
            .await
            .unwrap_err();
        assert!(matches!(missing, PgWireError::StatementNotFound(_)));
    }

    /// A portal is described in its Bind's result formats, field for field as the
    /// statement's [`FieldInfo`]s would be; a portal without columns answers NoData, an
    /// unknown one an error, and a format list of the wrong length 08P01.
    #[tokio::test]
    async fn a_portal_describes_its_columns_in_the_bind_formats() {
        use crate::testing::FakeClient;
        use pgwire::api::ClientPortalStore;

        let (_dir, db) = crate::testing::open_db();
        let handler = QueryHandler::new(crate::session::SessionHandle::new(db, Default::default()));
        let mut client = FakeClient::ready();
        let mut id = Column::new("id", SqlType::Int8);
        id.table_oid = 16_385;
        id.column_number = 1;
        let columns = vec![
            id,
            Column::new("price", SqlType::NumericTyped(10, 2)),
            Column::new("doc", SqlType::Jsonb),
        ];
        let select = prepared(vec![SqlType::Int4], columns.clone());
        let bound = |formats: Vec<i16>| {
            let stored = Arc::new(StoredStatement::new("sel".into(), select.clone(), vec![]));
            let bind = Bind::new(
                Some("p".into()),
                Some("sel".into()),
                vec![],
                vec![Some(Bytes::from_static(b"1"))],
                formats,
            );
            Arc::new(Portal::try_new(&bind, stored).unwrap())
        };
        let describe = |name: &str| Describe::new(b'P', Some(name.to_string()));

        for formats in [vec![], vec![1], vec![0, 1, 0]] {
            let portal = bound(formats.clone());
            client.portal_store().put_portal(portal.clone());
            handler
                .on_describe(&mut client, describe("p"))
                .await
                .unwrap();
            let sent = client.take();
            let [PgWireBackendMessage::RowDescription(rows)] = &sent[..] else {
                panic!("{sent:?}");
            };
            let expected = schema::fields(&columns, Some(&portal.result_column_format)).unwrap();
            assert_eq!(rows.fields.len(), expected.len());
            for (got, want) in rows.fields.iter().zip(&expected) {
                assert_eq!(*got, pgwire::messages::data::FieldDescription::from(want));
            }
            let codes: Vec<i16> = rows.fields.iter().map(|f| f.format_code).collect();
            let want_codes = match formats.len() {
                0 => vec![0, 0, 0],
                1 => vec![1, 1, 1],
                _ => formats.clone(),
            };
            assert_eq!(codes, want_codes);
            assert_eq!(rows.fields[0].table_id, 16_385);
            assert_eq!(rows.fields[1].type_modifier, (10 << 16 | 2) + 4);
        }

        client.portal_store().put_portal(bound(vec![1, 0]));
        let err = handler
            .on_describe(&mut client, describe("p"))
            .await
            .unwrap_err();
        assert_eq!(code(err), "08P01");

        let empty = prepared(vec![], vec![]);
        let stored = Arc::new(StoredStatement::new("ins".into(), empty, vec![]));
        let bind = Bind::new(Some("q".into()), Some("ins".into()), vec![], vec![], vec![]);
        client
            .portal_store()
            .put_portal(Arc::new(Portal::try_new(&bind, stored).unwrap()));
        handler
            .on_describe(&mut client, describe("q"))
            .await
            .unwrap();
        let sent = client.take();
        assert!(
            matches!(sent[..], [PgWireBackendMessage::NoData(_)]),
            "{sent:?}"
        );

        let missing = handler
            .on_describe(&mut client, describe("nope"))
            .await
            .unwrap_err();
        assert!(matches!(missing, PgWireError::PortalNotFound(_)));
    }

    #[test]
    fn describe_comes_from_the_prepared_statement() {
        let (_dir, db) = crate::testing::open_db();
        let parser = StatementParser {
            session: crate::session::SessionHandle::new(db, Default::default()),
        };
        let stmt = prepared(
            vec![SqlType::Unknown, SqlType::Numeric],
            vec![
                Column::new("a", SqlType::Int4),
                Column::new("b", SqlType::Jsonb),
            ],
        );
        assert_eq!(
            parser.get_parameter_types(&stmt).unwrap(),
            vec![Type::TEXT, Type::NUMERIC]
        );
        let fields = parser
            .get_result_schema(&stmt, Some(&Format::UnifiedBinary))
            .unwrap();
        assert_eq!(fields[1].datatype(), &Type::JSONB);
        assert_eq!(fields[1].format(), FieldFormat::Binary);
        assert!(
            parser
                .get_result_schema(&stmt, Some(&Format::Individual(vec![1])))
                .is_err()
        );
    }
}
