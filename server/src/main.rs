//! The `tissdb` binary: parses the command line, layers the configuration, opens the
//! database, starts the listeners, prints `ready`, and shuts down cleanly on SIGTERM or
//! SIGINT (stop accepting, finish in-flight requests, flush, exit 0). `tissdb import` and
//! `tissdb export` are REST clients of a running server (see `cli_io`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

mod cli_io;
mod conn_threads;

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
    /// Import a CSV, NDJSON, JSON-array or XML file into a collection of a running server.
    ///
    /// The file goes to POST /<collection>/_import in chunks of about --chunk-size bytes,
    /// cut between documents (CSV chunks repeat the header row). Atomicity: each chunk is
    /// imported all or none, but a file of several chunks is not one transaction — if a
    /// chunk is refused, the chunks before it stay imported and the command says how many
    /// documents that is (and the file line or document number of the error). A file that
    /// fits in one chunk (at most the server's max_import_size, 16 MiB by default) is
    /// imported all or none.
    Import {
        /// The collection to import into
        #[arg(long, short)]
        collection: String,
        /// The file to import
        file: PathBuf,
        /// File format [default: from the extension: .csv, .ndjson/.jsonl, .json, .xml]
        #[arg(long, value_enum)]
        format: Option<cli_io::FileFormat>,
        /// The server's REST address
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Bytes per request (one all-or-none import each)
        #[arg(long, default_value_t = 8 << 20)]
        chunk_size: u64,
        /// Create the collection first if it does not exist
        #[arg(long)]
        create: bool,
    },
    /// Export a collection of a running server as CSV, NDJSON or XML.
    ///
    /// Reads the collection page by page in id order (each page its own snapshot: writes
    /// made during the export may or may not appear).
    Export {
        /// The collection to export
        #[arg(long, short)]
        collection: String,
        /// Output file [default: standard output]
        file: Option<PathBuf>,
        /// Output format [default: from the file's extension, else csv]
        #[arg(long, value_enum)]
        format: Option<cli_io::FileFormat>,
        /// The server's REST address
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Documents per request (at most the server's max_page_size)
        #[arg(long, default_value_t = 10_000)]
        page_size: usize,
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

/// mimalloc's `purge_delay` option, which the Rust bindings do not name: the one before
/// `use_numa_nodes` in its option enum (mimalloc 2 and 3 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Sets how long the allocator keeps freed memory before returning it to the kernel (the
/// `allocator_purge_delay_ms` setting).
#[allow(unsafe_code)]
fn set_allocator_purge_delay(ms: u64) {
    let ms = std::os::raw::c_long::try_from(ms).unwrap_or(std::os::raw::c_long::MAX);
    // SAFETY: `mi_option_set` stores an option's value, which mimalloc reads the next time
    // it schedules a purge; it may be called from any thread at any time, and takes no
    // pointer.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
}

/// Asks the kernel not to back this process's memory with transparent huge pages (see
/// the `transparent_huge_pages` setting); before the runtime starts, so that almost all
/// memory is faulted in after it. Where the kernel does not know the request, the server
/// goes on with what it has.
fn disable_transparent_huge_pages() {
    // The flag belongs to the process's memory map: every thread, started or not.
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "transparent huge pages could not be turned off");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (data_dir, pg_addr, http_addr, config) = match cli.command {
        Command::Serve {
            data_dir,
            pg_addr,
            http_addr,
            config,
        } => (data_dir, pg_addr, http_addr, config),
        Command::Import {
            collection,
            file,
            format,
            url,
            chunk_size,
            create,
        } => {
            return client_outcome(cli_io::import(cli_io::ImportArgs {
                url,
                collection,
                file,
                format,
                chunk_size,
                create,
            }));
        }
        Command::Export {
            collection,
            file,
            format,
            url,
            page_size,
        } => {
            return client_outcome(cli_io::export(cli_io::ExportArgs {
                url,
                collection,
                file,
                format,
                page_size,
            }));
        }
    };
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
    if !config.transparent_huge_pages {
        disable_transparent_huge_pages();
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_allocator_purge_delay(config.allocator_purge_delay_ms);
    }
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

/// The exit status of a client command: 0, or 1 with the error on stderr.
fn client_outcome(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
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
    // One connection thread per core, shared by both front-ends.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = conn_threads::ConnectionThreads::start(threads, config.pin_connection_threads)
        .map_err(|e| format!("cannot start the connection threads: {e}"))?;
    let max_connections = config.max_connections;
    let rest = tissdb_rest::HttpFrontEnd::new(
        db.clone(),
        std::time::Duration::from_secs(config.http_idle_timeout),
        Some(threads.shared()),
    );
    let http_task = tokio::spawn({
        let (handles, stop) = (threads.shared(), stop_rx.clone());
        async move {
            let limit = conn_threads::Limit {
                max_connections,
                refuse: Arc::new(move |socket| {
                    Box::pin(tissdb_rest::refuse_connection(socket, max_connections))
                }),
            };
            let mut open = conn_threads::accept(http, handles, stop, "HTTP", limit, |peer| {
                let c = rest.connection(peer);
                move |socket, seat| c.run(socket, seat)
            })
            .await;
            rest.close();
            while open.join_next().await.is_some() {}
        }
    });
    let wire = tissdb_wire::PgFrontEnd::new(db.clone());
    let pg_task = tokio::spawn({
        let (handles, stop) = (threads.shared(), stop_rx.clone());
        async move {
            let canceller = wire.canceller();
            let limit = conn_threads::Limit {
                max_connections,
                refuse: Arc::new(move |socket| {
                    Box::pin(tissdb_wire::refuse_connection(socket, canceller.clone()))
                }),
            };
            let mut open = conn_threads::accept(pg, handles, stop, "PostgreSQL", limit, |peer| {
                let c = wire.connection(peer);
                move |socket, seat| c.run(socket, seat)
            })
            .await;
            let closed = open.len();
            open.abort_all();
            while open.join_next().await.is_some() {}
            wire.wait_idle().await;
            tracing::debug!(closed, "PostgreSQL listener stopped");
        }
    });

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
        Ok(Err(e)) => tracing::error!("http listener: {e}"),
        Ok(Ok(())) => {}
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
    if tokio::task::spawn_blocking(move || threads.stop())
        .await
        .is_err()
    {
        tracing::error!("stopping the connection threads failed");
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
