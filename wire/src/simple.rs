//! The simple query protocol: a Query message holding any number of statements.
//!
//! 1. A string of only whitespace and semicolons answers EmptyQueryResponse without
//!    reaching the engine.
//! 2. Otherwise [`Session::execute_batch`](tissdb::Session::execute_batch) runs the
//!    statements in order and stops at the first failure; each result becomes a row
//!    description with text rows and `SELECT n`, a command tag, or an ErrorResponse.
//!    No statement at all (only comments) is an empty query too.
//! 3. A cancel request answers 57014 at once; the engine call finishes on its own thread.
//! 4. ReadyForQuery reports the session's transaction status after the batch.
//!
//! pgwire's own `on_query` derives the transaction status from the responses; it is
//! replaced here so the status always comes from the engine.

use std::fmt::Debug;

use async_trait::async_trait;
use futures::future::{Either, select};
use futures::{Sink, SinkExt};
use pgwire::api::copy::send_copy_in_response;
use pgwire::api::query::{
    SimpleQueryHandler, send_execution_response, send_query_response, send_ready_for_query,
};
use pgwire::api::results::{CopyResponse, FieldFormat, Response};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::simplequery::Query;

use std::time::Instant;

use crate::connection::QueryHandler;
use crate::copy;
use crate::error;
use crate::quick_reads::QuickReads;
use crate::response;
use crate::streamed::EncodedRows;
use tissdb::query::Outcome;
use tissdb::query::copy::CopyOut;
use tissdb::session::Notice;

/// True for a query of only whitespace and semicolons, which PostgreSQL answers with
/// EmptyQueryResponse.
pub fn is_blank(sql: &str) -> bool {
    sql.chars().all(|c| c == ';' || c.is_whitespace())
}

/// A single `SELECT` or `SHOW` (no `;` before the end): it only reads, so it runs on the
/// connection's own thread (with or without a hand-off of the worker's other duties: see
/// [`crate::quick_reads`]). Anything else, or anything unsure, runs on the blocking pool.
fn looks_read_only(sql: &str) -> bool {
    let body = sql
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let first: String = body
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    (first == "select" || first == "show") && !body.contains(';')
}

/// Arms the connection's cancel handle for the next statement.
pub async fn cancel_signal<C: ClientInfo>(
    client: &C,
) -> Option<futures::channel::oneshot::Receiver<()>> {
    let handle = client
        .session_extensions()
        .get::<std::sync::Arc<ConnectionHandle>>()?;
    Some(handle.start_query().await)
}

/// Sends an engine notice as a NoticeResponse.
async fn send_notice<C>(client: &mut C, n: Notice) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut info =
        pgwire::error::ErrorInfo::new(n.severity.to_owned(), n.code.code().to_owned(), n.message);
    info.severity_nonlocalized = Some(n.severity.to_owned());
    info.detail = n.detail;
    client
        .feed(PgWireBackendMessage::NoticeResponse(info.into()))
        .await?;
    Ok(())
}

fn canceled() -> Response {
    Response::Error(Box::new(error::info(
        error::QUERY_CANCELED,
        "canceling statement due to user request",
    )))
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let (responses, notices, mut copy_out, deallocated) = if is_blank(&query.query) {
            (vec![Response::EmptyQuery], Vec::new(), None, Vec::new())
        } else {
            let cancel = cancel_signal(client).await;
            if looks_read_only(&query.query) {
                // Runs on this task (see `do_query`); a cancel request sets the engine's
                // cancel flag directly (see `cancel.rs`), which the engine checks.
                drop(cancel);
                self.run_batch(&query.query).await?
            } else {
                let run = Box::pin(self.run_batch(&query.query));
                match cancel {
                    None => run.await?,
                    Some(cancel) => match select(run, cancel).await {
                        Either::Left((result, _)) => result?,
                        Either::Right((Ok(()), _)) => {
                            self.session.cancel_running();
                            (vec![canceled()], Vec::new(), None, Vec::new())
                        }
                        // The handle went away without a cancel: keep waiting.
                        Either::Right((Err(_), run)) => run.await?,
                    },
                }
            }
        };
        for name in deallocated {
            client.portal_store().rm_statement(&name);
        }
        let mut notices = notices.into_iter().peekable();
        for (i, response) in responses.into_iter().enumerate() {
            while let Some(n) = notices.next_if(|n| n.before_result <= i) {
                send_notice(client, n).await?;
            }
            match response {
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                }
                Response::Query(rows) => send_query_response(client, rows, true).await?,
                Response::Execution(tag)
                | Response::TransactionStart(tag)
                | Response::TransactionEnd(tag) => send_execution_response(client, tag).await?,
                Response::Error(info) => {
                    client
                        .feed(PgWireBackendMessage::ErrorResponse((*info).into()))
                        .await?;
                }
                Response::CopyIn(start) => {
                    send_copy_in_response(client, start).await?;
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                }
                Response::CopyOut(_) if copy_out.is_some() => {
                    let out = copy_out.take().expect("checked above");
                    let rows = copy::send_copy_out(client, out).await?;
                    send_execution_response(client, copy::tag(rows)).await?;
                }
                Response::CopyOut(_) | Response::CopyBoth(_) => {
                    let info =
                        error::info(error::FEATURE_NOT_SUPPORTED, "COPY is not supported here");
                    client
                        .feed(PgWireBackendMessage::ErrorResponse(info.into()))
                        .await?;
                }
            }
        }
        for n in notices {
            send_notice(client, n).await?;
        }
        if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            // ReadyForQuery follows the COPY's data (see `copy.rs`).
            return Ok(());
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        let status = self.session.transaction_status();
        client.set_transaction_status(status);
        if self.replies.should_yield() {
            // Sent with the thread's other answers when it sleeps (see batching).
            self.outbox.hold_next();
        }
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(self.run_batch(query).await?.0)
    }
}

/// A batch's responses, its notices, and the rows of a COPY TO STDOUT among them.
/// A Query message's responses, the notices they raised, a COPY TO STDOUT to stream,
/// and the names of statements prepared over the wire that a DEALLOCATE dropped.
type Batch = (Vec<Response>, Vec<Notice>, Option<CopyOut>, Vec<String>);

impl QueryHandler {
    /// Runs the statements of a Query message; answers their responses and the notices
    /// they raised.
    async fn run_batch(&self, query: &str) -> PgWireResult<Batch> {
        let batch = |s: &mut tissdb::Session, sql: &str, stream: bool| {
            // The answer of a lone query is encoded as it is made (but a quick read's,
            // a few rows).
            let mut sink = EncodedRows::text();
            let results = match stream {
                true => s.execute_batch_into(sql, &mut sink),
                false => s.execute_batch(sql),
            };
            let deallocated = s.take_deallocated();
            (
                results,
                s.take_notices(),
                copy::take_pending(s),
                deallocated,
                sink,
            )
        };
        let (results, notices, pending, deallocated, sink) = if looks_read_only(query) {
            match QuickReads::shape(query) {
                Some(shape) => {
                    let direct = self.quick_reads.is_quick(shape);
                    let started = Instant::now();
                    let out = match direct {
                        true => self.session.run_direct(|s| batch(s, query, false)),
                        false => {
                            let sql = query.to_owned();
                            self.session
                                .run_inline(move |s| batch(s, &sql, true))
                                .await?
                        }
                    };
                    self.quick_reads.record(shape, direct, started.elapsed());
                    out
                }
                None => {
                    let sql = query.to_owned();
                    self.session
                        .run_inline(move |s| batch(s, &sql, true))
                        .await?
                }
            }
        } else {
            let sql = query.to_owned();
            let quick = QuickReads::shape(query).map(|shape| (&*self.quick_reads, shape));
            self.replies.wrote();
            self.session
                .run_write(quick, self.replies.company(), move |s| batch(s, &sql, true))
                .await?
        };
        if results.is_empty() {
            return Ok((vec![Response::EmptyQuery], notices, None, deallocated));
        }
        let mut streamed = Some(sink).filter(EncodedRows::took);
        let mut responses: Vec<Response> = Vec::with_capacity(results.len());
        for result in results {
            responses.push(match (result, streamed.take()) {
                // The one answer the sink took (the batch's only statement).
                (
                    Ok(Outcome::Rows {
                        columns, command, ..
                    }),
                    Some(rows),
                ) => {
                    let mut response = rows.into_response(Some(&columns));
                    response.set_command_tag(command);
                    Response::Query(response)
                }
                (Ok(outcome), _) => response::outcome(outcome, true, |_| FieldFormat::Text),
                (Err(e), _) => Response::Error(Box::new(error::engine_info(&e))),
            });
        }
        // A COPY is the only statement of its query string (the engine makes sure).
        let mut copy_out = None;
        match pending {
            copy::Pending::None => {}
            copy::Pending::In(columns) => responses = vec![copy::copy_in_response(columns)],
            copy::Pending::Out(out) => {
                responses = vec![Response::CopyOut(CopyResponse::new(
                    0,
                    out.column_count(),
                    futures::stream::empty(),
                ))];
                copy_out = Some(out);
            }
        }
        Ok((responses, notices, copy_out, deallocated))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use pgwire::api::query::SimpleQueryHandler;
    use pgwire::api::{ClientInfo, ConnectionHandle};
    use pgwire::messages::PgWireBackendMessage;
    use pgwire::messages::simplequery::Query;

    use super::is_blank;
    use crate::connection::QueryHandler;
    use crate::session::{InFlight, SessionHandle};
    use crate::testing::{FakeClient, error_code, open_db};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancel_answers_57014_at_once_and_the_session_stays_usable() {
        let (_dir, db) = open_db();
        let in_flight = InFlight::default();
        let session = SessionHandle::new(db, in_flight.clone());
        let handler = QueryHandler::new(session.clone());
        let mut client = FakeClient::ready();
        let handle = Arc::new(ConnectionHandle::new());
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle.clone());
        // A long statement holds the session on its thread.
        let busy_session = session.clone();
        let (locked_tx, locked) = tokio::sync::oneshot::channel();
        let busy = tokio::spawn(async move {
            busy_session
                .run(move |_| {
                    let _ = locked_tx.send(());
                    std::thread::sleep(Duration::from_millis(800));
                })
                .await
        });
        locked.await.unwrap();
        // Cancel as soon as the query below has armed its cancel signal.
        let canceller = tokio::spawn(async move {
            while !handle.cancel().await {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let started = Instant::now();
        // A statement that may write runs on the blocking pool, racing the cancel signal
        // (read-only statements run inline and are stopped through the engine's flag).
        handler
            .on_query(&mut client, Query::new("SET application_name = 'x'".into()))
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
        canceller.await.unwrap();
        let sent = client.take();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(error_code(&sent[0]).as_deref(), Some("57014"));
        assert!(matches!(sent[1], PgWireBackendMessage::ReadyForQuery(_)));
        // The next statement waits for the cancelled one's thread, then runs.
        handler
            .on_query(&mut client, Query::new("SELECT 1".into()))
            .await
            .unwrap();
        let sent = client.take();
        assert!(
            matches!(sent.last(), Some(PgWireBackendMessage::ReadyForQuery(_))),
            "{sent:?}"
        );
        assert_ne!(error_code(&sent[0]).as_deref(), Some("57014"));
        busy.await.unwrap().unwrap();
        in_flight.wait_idle().await;
    }

    #[tokio::test]
    async fn blank_queries_never_reach_the_engine() {
        let (_dir, db) = open_db();
        let handler = QueryHandler::new(SessionHandle::new(db, InFlight::default()));
        let mut client = FakeClient::ready();
        handler
            .on_query(&mut client, Query::new(" ;; ".into()))
            .await
            .unwrap();
        let sent = client.take();
        assert!(
            matches!(sent[0], PgWireBackendMessage::EmptyQueryResponse(_)),
            "{sent:?}"
        );
        assert!(matches!(sent[1], PgWireBackendMessage::ReadyForQuery(_)));
    }

    #[test]
    fn blank_queries() {
        for q in ["", " ", ";", " ;; \n", "\t;"] {
            assert!(is_blank(q), "{q:?}");
        }
        for q in ["select 1", "';'", "-- comment"] {
            assert!(!is_blank(q), "{q:?}");
        }
    }
}
