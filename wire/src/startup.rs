//! Connection startup: no TLS (pgwire refuses SSLRequest when it has no acceptor), no
//! authentication (any user, any database name), the server parameters drivers read,
//! the settings the startup packet carries (applied to the session as `SET` would), and
//! registration of the connection's cancel key.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use crate::cancel::{CancelFlags, CancelTarget, FlagGuard};
use crate::session::SessionHandle;

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
    /// The connection's session, which takes the settings the startup packet carries.
    session: SessionHandle,
}

impl Startup {
    /// `manager` is shared by all connections (cancel requests arrive on new ones);
    /// `keys` hands out process ids and secret keys.
    pub fn new(
        manager: Arc<ConnectionManager>,
        keys: Arc<RandomPidSecretKeyGenerator>,
        flags: Arc<CancelFlags>,
        session: SessionHandle,
    ) -> Self {
        Startup {
            manager,
            keys,
            flags,
            cancel_target: session.cancel_target(),
            session,
        }
    }

    /// Sets on the session the settings the startup packet names (see
    /// [`startup_settings`]), as `SET` would; a value `SET` refuses refuses the
    /// connection (FATAL, with `SET`'s SQLSTATE), as PostgreSQL does.
    async fn apply_settings(&self, parameters: &BTreeMap<String, String>) -> PgWireResult<()> {
        let settings = startup_settings(parameters)?;
        if settings.is_empty() {
            return Ok(());
        }
        let sql = settings
            .iter()
            .map(|(name, value)| {
                format!(
                    "SET \"{}\" TO '{}'",
                    name.replace('"', "\"\""),
                    value.replace('\'', "''")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let results = self.session.run(move |s| s.execute_batch(&sql)).await?;
        match results.into_iter().find_map(Result::err) {
            Some(e) => Err(fatal(crate::error::engine_info(&e))),
            None => Ok(()),
        }
    }
}

/// The settings TissDB acts on that a client may send as startup parameters by name.
const STARTUP_SETTINGS: &[&str] = &[
    "application_name",
    "statement_timeout",
    "max_parallel_workers_per_gather",
    "enable_indexscan",
    "enable_seqscan",
];

/// The settings of a startup packet, in order: those of [`STARTUP_SETTINGS`] sent by
/// name, then each `-c name=value` (or `--name=value`) of its `options` (libpq's
/// `PGOPTIONS`, pgjdbc's `options`), a dash in a name read as an underscore, as
/// PostgreSQL reads them. Anything else in `options` refuses the connection (22023).
fn startup_settings(parameters: &BTreeMap<String, String>) -> PgWireResult<Vec<(String, String)>> {
    let mut settings: Vec<(String, String)> = STARTUP_SETTINGS
        .iter()
        .filter_map(|name| {
            let value = parameters.get(*name)?;
            Some((name.to_string(), value.clone()))
        })
        .collect();
    let Some(options) = parameters.get("options") else {
        return Ok(settings);
    };
    let bad = |why: String| fatal(crate::error::info("22023", why));
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let assignment = match word {
            "-c" => words
                .next()
                .ok_or_else(|| bad("options: -c without name=value".into()))?,
            w => w
                .strip_prefix("--")
                .or_else(|| w.strip_prefix("-c"))
                .ok_or_else(|| {
                    bad(format!(
                        "options: \"{w}\" is not -c name=value (the only form TissDB takes)"
                    ))
                })?,
        };
        let (name, value) = assignment
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| bad(format!("options: \"{assignment}\" is not name=value")))?;
        settings.push((
            name.replace('-', "_").to_ascii_lowercase(),
            value.to_string(),
        ));
    }
    Ok(settings)
}

/// `info` as a FATAL error: the connection ends after it.
fn fatal(mut info: pgwire::error::ErrorInfo) -> PgWireError {
    info.severity = "FATAL".into();
    info.severity_nonlocalized = Some("FATAL".into());
    PgWireError::UserError(Box::new(info))
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
        self.apply_settings(&startup.parameters).await?;
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
