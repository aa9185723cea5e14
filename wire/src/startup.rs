//! Connection startup: no TLS (pgwire refuses SSLRequest when it has no acceptor), no
//! authentication (any user, any database name), the server parameters drivers read,
//! and registration of the connection's cancel key.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use crate::cancel::{CancelFlags, CancelTarget, FlagGuard};

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, METADATA_APPLICATION_NAME,
    METADATA_USER, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

/// The PostgreSQL version TissDB reports. psql chooses its `\d` queries by it, so it stays
/// fixed.
pub const SERVER_VERSION: &str = "16.6";

/// Accepts every startup and registers it for cancel requests.
pub struct Startup {
    manager: Arc<ConnectionManager>,
    keys: Arc<RandomPidSecretKeyGenerator>,
    flags: Arc<CancelFlags>,
    /// What a cancel request on this connection sets.
    cancel_target: CancelTarget,
}

impl Startup {
    /// `manager` is shared by all connections (cancel requests arrive on new ones);
    /// `keys` hands out process ids and secret keys.
    pub fn new(
        manager: Arc<ConnectionManager>,
        keys: Arc<RandomPidSecretKeyGenerator>,
        flags: Arc<CancelFlags>,
        cancel_target: CancelTarget,
    ) -> Self {
        Startup {
            manager,
            keys,
            flags,
            cancel_target,
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let (pid, key) = self.keys.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        // Both live in the connection's extensions: pgwire's query loop finds the handle
        // there, and the guard unregisters the key when the connection ends.
        let flag_guard = self
            .flags
            .register(pid, key.clone(), self.cancel_target.clone());
        client.session_extensions().insert::<FlagGuard>(flag_guard);
        let (handle, guard) = self.manager.register(pid, key);
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert::<ConnectionGuard>(guard);
        tracing::debug!(
            pid,
            user = client.metadata().get(METADATA_USER).map(String::as_str),
            addr = %client.socket_addr(),
            "connection started"
        );
        finish_authentication(client, &ServerParameters).await
    }
}

/// The ParameterStatus messages sent after startup.
struct ServerParameters;

impl ServerParameterProvider for ServerParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let application_name = client
            .metadata()
            .get(METADATA_APPLICATION_NAME)
            .cloned()
            .unwrap_or_default();
        let params = [
            ("server_version", SERVER_VERSION.to_string()),
            ("server_encoding", "UTF8".into()),
            ("client_encoding", "UTF8".into()),
            ("DateStyle", "ISO, MDY".into()),
            ("IntervalStyle", "postgres".into()),
            ("TimeZone", "UTC".into()),
            ("integer_datetimes", "on".into()),
            ("standard_conforming_strings", "on".into()),
            ("is_superuser", "on".into()),
            ("default_transaction_read_only", "off".into()),
            ("in_hot_standby", "off".into()),
            ("session_authorization", user),
            ("application_name", application_name),
        ];
        Some(
            params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}
