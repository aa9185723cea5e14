//! COPY over the wire: the protocol half of `COPY ... FROM STDIN` and
//! `COPY ... TO STDOUT` (the formats and the load are the engine's,
//! [`tissdb::query::copy`]).
//!
//! * FROM STDIN: the statement leaves the engine session waiting for data; the client is
//!   sent CopyInResponse (text format, one code per column). Each CopyData goes to
//!   [`Session::copy_data`](tissdb::Session::copy_data) on the connection's own task
//!   (cutting a chunk into rows is short), CopyDone to
//!   [`Session::copy_done`](tissdb::Session::copy_done) on a blocking thread (it
//!   validates the ids and writes), which answers `COPY n`. An error answers
//!   ErrorResponse with PostgreSQL's CONTEXT (`COPY t, line 3, column b: "x"`), after
//!   which pgwire drops the rest of the client's data, as PostgreSQL does. CopyFail
//!   ends it with 57014.
//! * TO STDOUT: the statement runs its query; the rows are sent as CopyOutResponse, one
//!   CopyData per row (the header line, if any, first), CopyDone and `COPY n` (n counts
//!   rows, not the header).
//!
//! Both work in the simple protocol (psql, psycopg) and the extended one
//! (tokio-postgres prepares the COPY and runs it with Bind/Execute).

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, SinkExt};
use pgwire::api::ClientInfo;
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::{CopyResponse, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyOutResponse};
use pgwire::messages::response::CommandComplete;
use tissdb::Session;
use tissdb::query::copy::{CopyError, CopyOut};

use crate::connection::QueryHandler;
use crate::error;
use crate::session::SessionHandle;

/// What the statement just run left for the protocol to do.
pub enum Pending {
    None,
    /// A COPY FROM STDIN waits for data in this many columns.
    In(usize),
    /// A COPY TO STDOUT's rows, to send.
    Out(CopyOut),
}

/// Takes what the last statement left (call it in the same engine call, right after).
pub fn take_pending(session: &mut Session) -> Pending {
    if let Some(out) = session.take_copy_out() {
        return Pending::Out(out);
    }
    match session.copy_in_columns() {
        Some(n) => Pending::In(n),
        None => Pending::None,
    }
}

/// The CopyInResponse that starts a COPY FROM STDIN: text format for every column.
pub fn copy_in_response(columns: usize) -> Response {
    Response::CopyIn(CopyResponse::new(0, columns, futures::stream::empty()))
}

/// A COPY error as the client sees it: the engine's SQLSTATE and message, and the
/// line as CONTEXT.
pub fn copy_error(e: CopyError) -> PgWireError {
    let mut info = error::engine_info(&e.error);
    info.where_context = e.context;
    PgWireError::UserError(Box::new(info))
}

/// Sends a COPY TO STDOUT's data (CopyOutResponse, CopyData per row, CopyDone) and
/// returns the number of rows, for the `COPY n` the caller sends.
pub async fn send_copy_out<C>(client: &mut C, mut out: CopyOut) -> PgWireResult<usize>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let columns = out.column_count();
    let count = i16::try_from(columns).map_err(|_| error::user("54011", "too many columns"))?;
    client
        .feed(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            0,
            count,
            vec![0; columns],
        )))
        .await?;
    if let Some(header) = out.header() {
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(Bytes::from(
                header,
            ))))
            .await?;
    }
    let mut rows = 0;
    for line in out.by_ref() {
        rows += 1;
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(Bytes::from(
                line,
            ))))
            .await?;
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(rows)
}

/// The tag of a finished COPY.
pub fn tag(rows: usize) -> Tag {
    Tag::new(&format!("COPY {rows}"))
}

/// In an extended-protocol Execute: the response for a COPY the statement started, if it
/// did (the rows of a COPY TO STDOUT are sent here, before its CommandComplete).
pub async fn extended_response<C>(
    session: &SessionHandle,
    client: &mut C,
) -> PgWireResult<Option<Response>>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    Ok(match session.run_direct(take_pending) {
        Pending::None => None,
        Pending::In(columns) => Some(copy_in_response(columns)),
        Pending::Out(out) => {
            let rows = send_copy_out(client, out).await?;
            Some(Response::Execution(tag(rows)))
        }
    })
}

#[async_trait]
impl CopyHandler for QueryHandler {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.session
            .run_direct(|s| s.copy_data(&copy_data.data))
            .map_err(copy_error)
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let done = self.session.run(|s| s.copy_done()).await?;
        client.set_transaction_status(self.session.transaction_status());
        let rows = done.map_err(copy_error)?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                CommandComplete::from(tag(rows as usize)),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let e = self.session.run_direct(|s| s.copy_fail(&fail.message));
        client.set_transaction_status(self.session.transaction_status());
        error::engine(&e)
    }
}
