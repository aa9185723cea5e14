//! The handlers of one connection. pgwire asks a [`PgWireServerHandlers`] value for its
//! handlers once per connection, so [`PgFrontEnd::connection`](crate::PgFrontEnd::connection) builds one per connection,
//! holding that connection's [`SessionHandle`]: the simple-query handler, the
//! extended-query handler and its statement parser all reach the same engine session
//! without looking it up.

use std::sync::Arc;

use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{PgWireServerHandlers, auth::StartupHandler};

use crate::cancel::Canceller;
use crate::session::SessionHandle;
use crate::startup::Startup;

/// Runs statements for one connection (simple and extended protocol).
pub struct QueryHandler {
    pub(crate) session: SessionHandle,
    pub(crate) parser: Arc<StatementParser>,
    /// Which simple-protocol read shapes run without a hand-off.
    pub(crate) quick_reads: Arc<crate::quick_reads::QuickReads>,
    /// Whether to hold an answer back for others of the thread ([`crate::batching`]).
    pub(crate) replies: crate::batching::Replies,
    /// Where a held answer waits ([`tissdb_net::outbox`]).
    pub(crate) outbox: Arc<tissdb_net::outbox::Outbox>,
}

impl QueryHandler {
    pub fn new(session: SessionHandle) -> Self {
        let parser = Arc::new(StatementParser {
            session: session.clone(),
        });
        QueryHandler {
            session,
            parser,
            quick_reads: Arc::default(),
            replies: Default::default(),
            outbox: Arc::default(),
        }
    }
}

/// Parses statements for the extended protocol through the connection's session.
pub struct StatementParser {
    pub(crate) session: SessionHandle,
}

/// One connection's handlers.
pub struct ConnectionHandlers {
    pub(crate) query: Arc<QueryHandler>,
    pub(crate) startup: Arc<Startup>,
    pub(crate) cancel: Arc<Canceller>,
}

impl ConnectionHandlers {
    pub fn new(session: SessionHandle, startup: Arc<Startup>, cancel: Arc<Canceller>) -> Self {
        ConnectionHandlers {
            query: Arc::new(QueryHandler::new(session)),
            startup,
            cancel,
        }
    }
}

impl ConnectionHandlers {
    /// Where the connection's held answers wait.
    pub fn outbox(&self) -> Arc<tissdb_net::outbox::Outbox> {
        self.query.outbox.clone()
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.query.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}
