//! `palaver`: the server and the command-line tools around it.
//!
//! - `palaver serve` opens the embedded store in the data folder, keeps the
//!   read models up to date, and runs until SIGINT/SIGTERM.
//! - `palaver store verify` audits the hash chains of every stream.
//! - `palaver store read` prints events of one stream or of `$all`.
//! - `palaver projections status|rebuild|replay` inspects and rebuilds the
//!   read models.
//!
//! Every flag can also be set through a `PALAVER_…` environment variable.

mod projections_cmd;
mod store_cmd;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use palaver_projections::{Projections, ReadModelDb, models};
use palaver_store::{Limits, SqliteStore};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "palaver",
    version,
    about = "Event-sourced conversation engine for WhatsApp customer support"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct Global {
    /// Folder holding the embedded databases.
    #[arg(long, global = true, env = "PALAVER_DATA_DIR", default_value = "palaver-data")]
    data_dir: PathBuf,
    /// Largest event the store accepts, in bytes.
    #[arg(long, global = true, env = "PALAVER_MAX_EVENT_BYTES", default_value_t = Limits::default().max_event_bytes)]
    max_event_bytes: usize,
    /// Log filter, e.g. `info` or `palaver_store=debug,info`.
    #[arg(long, global = true, env = "PALAVER_LOG", default_value = "info")]
    log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Palaver (the default when no command is given).
    Serve,
    /// Inspect and audit the event store.
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// Rebuild, replay and inspect the read models.
    #[command(subcommand)]
    Projections(projections_cmd::ProjectionsCommand),
}

impl Global {
    fn event_store_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }

    fn read_models_path(&self) -> PathBuf {
        self.data_dir.join("read-models.db")
    }

    fn open_store(&self) -> anyhow::Result<SqliteStore> {
        let limits = Limits {
            max_event_bytes: self.max_event_bytes,
            ..Limits::default()
        };
        let path = self.event_store_path();
        SqliteStore::open(&path, limits).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))
    }
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.global.log)?)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(&cli.global).await,
            Command::Store(command) => store_cmd::run(&cli.global, command).await,
            Command::Projections(command) => projections_cmd::run(&cli.global, command).await,
        }
    })
}

async fn serve(global: &Global) -> anyhow::Result<std::process::ExitCode> {
    let shutdown = shutdown_signal();
    let store = global.open_store()?;
    let head = palaver_store::EventStore::head(&store).await?;
    tracing::info!(store = %store.path().display(), %head, "event store open");
    let read_models = ReadModelDb::open(&global.read_models_path(), models::all())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let projections = Projections::start(
        std::sync::Arc::new(store.clone()),
        read_models,
        global.read_models_path(),
        async move {
            let _ = stopped.await;
        },
    );
    tracing::info!(position = %projections.position(), "projections running; waiting for SIGINT or SIGTERM");
    shutdown.await;
    tracing::info!("shutting down");
    // The projection loop finishes its batch; dropping the store drains
    // queued appends and closes the file.
    let _ = stop.send(());
    drop(projections);
    drop(store);
    Ok(std::process::ExitCode::SUCCESS)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, not when it is first polled: a signal that arrives while
/// the server is still starting is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let interrupt = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async {
            match terminate {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
}
