//! The `tissdb` binary: parses the command line, layers the configuration, opens the
//! database, starts the listeners, prints `ready`, and shuts down cleanly on SIGTERM or
//! SIGINT (stop accepting, finish in-flight requests, flush, exit 0).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the engine allocates many small values per row; glibc's allocator spent a
/// sixth of a full scan in malloc/free and kept a large arena per blocking thread.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tissdb::{Config, Database};

#[derive(Parser)]
#[command(
    name = "tissdb",
    version,
    about = "TissDB: a document database that speaks SQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// Data directory [default: ./tissdb-data]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// PostgreSQL wire listener address [default: 127.0.0.1:5433]
        #[arg(long)]
        pg_addr: Option<String>,
        /// REST listener address [default: 127.0.0.1:8080]
        #[arg(long)]
        http_addr: Option<String>,
        /// A TOML file of settings (see the README)
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn build_config(
    file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    pg_addr: Option<String>,
    http_addr: Option<String>,
) -> tissdb::Result<Config> {
    let mut config = Config::default();
    if let Some(path) = &file {
        config.apply_file(path)?;
    }
    config.apply_env(std::env::vars())?;
    if let Some(d) = data_dir {
        config.data_dir = d;
    }
    if let Some(a) = pg_addr {
        config.pg_addr = a;
    }
    if let Some(a) = http_addr {
        config.http_addr = a;
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve {
        data_dir,
        pg_addr,
        http_addr,
        config,
    } = cli.command;
    let config = match build_config(config, data_dir, pg_addr, http_addr) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tissdb: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Parsing and binding recurse on nested expressions; give every thread room for the
    // parser's recursion limit.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 << 20)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tissdb: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("tissdb: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn serve(config: Config) -> Result<(), String> {
    let db = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Database::open(config))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    let http = tokio::net::TcpListener::bind(&config.http_addr)
        .await
        .map_err(|e| format!("cannot listen on {} (http_addr): {e}", config.http_addr))?;
    let pg = tokio::net::TcpListener::bind(&config.pg_addr)
        .await
        .map_err(|e| format!("cannot listen on {} (pg_addr): {e}", config.pg_addr))?;
    let http_local = http.local_addr().map_err(|e| e.to_string())?;
    let pg_local = pg.local_addr().map_err(|e| e.to_string())?;

    // Watch the signals before announcing readiness, so a SIGTERM sent right after
    // `ready` is a clean shutdown and never the default action.
    let signals = ShutdownSignals::install().map_err(|e| format!("cannot watch signals: {e}"))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let app = tissdb_rest::router(db.clone());
    let http_task = tokio::spawn(async move {
        axum::serve(http, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let pg_task = tokio::spawn(tissdb_wire::serve(pg, db.clone(), stop_rx.clone()));

    println!(
        "tissdb ready: http://{http_local} postgres://{pg_local} data_dir={}",
        config.data_dir.display()
    );
    let _ = std::io::stdout().flush();
    tracing::info!(%http_local, %pg_local, "ready");

    signals.wait().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // In-flight requests get a grace period; a client that stalls mid-request does not
    // hold the shutdown beyond it.
    let http_abort = http_task.abort_handle();
    match tokio::time::timeout(SHUTDOWN_GRACE, http_task).await {
        Ok(Ok(Err(e))) => tracing::error!("http listener: {e}"),
        Ok(_) => {}
        Err(_) => {
            tracing::warn!("aborting HTTP requests still open after {SHUTDOWN_GRACE:?}");
            http_abort.abort();
        }
    }
    let pg_abort = pg_task.abort_handle();
    if tokio::time::timeout(SHUTDOWN_GRACE, pg_task).await.is_err() {
        tracing::warn!("aborting PostgreSQL connections still open after {SHUTDOWN_GRACE:?}");
        pg_abort.abort();
    }
    tokio::task::spawn_blocking(move || db.close())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT, watched from before the server says `ready`.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
