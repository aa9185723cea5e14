//! Test support: a client that records what the handlers send instead of writing it to
//! a socket, and a database in a temporary directory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::extended::ParsedStatement;
use futures::Sink;
use pgwire::api::store::MemPortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, DefaultClient, PgWireConnectionState, SessionExtensions,
};
use pgwire::error::PgWireError;
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, ProtocolVersion};
use tissdb::Database;

/// A connection ready for queries whose output is kept in `sent`.
pub struct FakeClient {
    inner: DefaultClient<ParsedStatement>,
    pub sent: Arc<Mutex<Vec<PgWireBackendMessage>>>,
}

impl FakeClient {
    pub fn ready() -> FakeClient {
        let mut inner = DefaultClient::new(SocketAddr::from(([127, 0, 0, 1], 5432)), false);
        inner.set_state(PgWireConnectionState::ReadyForQuery);
        FakeClient {
            inner,
            sent: Arc::default(),
        }
    }

    /// Takes the messages sent so far.
    pub fn take(&self) -> Vec<PgWireBackendMessage> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

/// The SQLSTATE of an ErrorResponse.
pub fn error_code(message: &PgWireBackendMessage) -> Option<String> {
    match message {
        PgWireBackendMessage::ErrorResponse(e) => e
            .fields
            .iter()
            .find(|(k, _)| *k == b'C')
            .map(|(_, v)| v.clone()),
        _ => None,
    }
}

impl ClientInfo for FakeClient {
    fn socket_addr(&self) -> SocketAddr {
        self.inner.socket_addr()
    }

    fn is_secure(&self) -> bool {
        false
    }

    fn protocol_version(&self) -> ProtocolVersion {
        self.inner.protocol_version()
    }

    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.inner.set_protocol_version(version)
    }

    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.inner.pid_and_secret_key()
    }

    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.inner.set_pid_and_secret_key(pid, secret_key)
    }

    fn state(&self) -> PgWireConnectionState {
        self.inner.state()
    }

    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.inner.set_state(new_state)
    }

    fn transaction_status(&self) -> TransactionStatus {
        self.inner.transaction_status()
    }

    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        self.inner.set_transaction_status(new_status)
    }

    fn metadata(&self) -> &HashMap<String, String> {
        self.inner.metadata()
    }

    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.inner.metadata_mut()
    }

    fn session_extensions(&self) -> &SessionExtensions {
        self.inner.session_extensions()
    }

    fn sni_server_name(&self) -> Option<&str> {
        None
    }

    fn client_certificates<'a>(
        &self,
    ) -> Option<&[pgwire::tokio::tokio_rustls::rustls::pki_types::CertificateDer<'a>]> {
        None
    }
}

impl ClientPortalStore for FakeClient {
    type PortalStore = MemPortalStore<ParsedStatement>;

    fn portal_store(&self) -> &Self::PortalStore {
        self.inner.portal_store()
    }
}

impl Sink<PgWireBackendMessage> for FakeClient {
    type Error = PgWireError;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), Self::Error> {
        self.sent.lock().unwrap().push(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// A database in a fresh temporary directory (kept alive by the returned guard).
pub fn open_db() -> (tempfile::TempDir, Arc<Database>) {
    let dir = tempfile::tempdir().unwrap();
    let config = tissdb::Config {
        data_dir: dir.path().join("data"),
        ..tissdb::Config::default()
    };
    let db = Database::open(config).unwrap();
    (dir, db)
}
