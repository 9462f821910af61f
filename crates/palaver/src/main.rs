//! `palaver`: the server and the command-line tools around it.
//!
//! - `palaver serve` (the default) runs the server: gRPC (commands, queries,
//!   event feeds; see `proto/palaver/v1/api.proto`) and HTTP (health,
//!   readiness, metrics), on the embedded store in the data folder.
//! - `palaver inbox|show|reply|tail|templates pull|webhooks list|reprocess`
//!   are clients of a running server.
//! - `palaver store verify|read` and `palaver projections
//!   status|rebuild|replay` work on a data folder directly, for audits.
//!
//! Settings are layered (defaults, config file, `PALAVER_…` environment,
//! flags); see [`config`].

mod client_cmd;
mod config;
mod http;
mod metrics;
mod projections_cmd;
mod server;
mod store_cmd;
mod webhook;
mod workers;

use clap::{Parser, Subcommand};
use palaver_store::SqliteStore;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides};

/// mimalloc instead of the system allocator: a query or a command builds
/// and drops many small strings and vectors, and glibc's malloc was about
/// 30 % of the server's CPU under inbox load (docs/adr/0009).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "palaver",
    version,
    about = "Event-sourced conversation engine for WhatsApp customer support"
)]
struct Cli {
    #[command(flatten)]
    settings: Overrides,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Palaver (the default when no command is given).
    Serve {
        /// Print the effective settings as TOML and exit.
        #[arg(long)]
        dump_config: bool,
    },
    /// Inspect and audit the event store.
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// Rebuild, replay and inspect the read models.
    #[command(subcommand)]
    Projections(projections_cmd::ProjectionsCommand),
    #[command(flatten)]
    Client(client_cmd::ClientCommand),
}

impl Config {
    /// Opens the embedded event store for an audit tool, which must not
    /// create one where there is none.
    fn open_existing_store(&self) -> anyhow::Result<SqliteStore> {
        let path = self.event_store_path();
        anyhow::ensure!(path.exists(), "no event store at {}", path.display());
        self.open_store()
    }

    /// Opens the embedded event store.
    fn open_store(&self) -> anyhow::Result<SqliteStore> {
        let path = self.event_store_path();
        SqliteStore::open(&path, self.limits())
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))
    }
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    // Two TLS backends are linked (ring for our gRPC server and the Cloud
    // API client, aws-lc inside the KurrentDB client), so rustls cannot
    // pick a process default by itself: choose ring, which the rest of
    // Palaver uses. An error means one is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let config = cli.settings.resolve()?;
    let command = cli.command.unwrap_or(Command::Serve { dump_config: false });
    if let Command::Serve { dump_config: true } = command {
        #[allow(clippy::print_stdout)]
        {
            print!("{}", config.dump()?);
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log)?)
        .with_writer(std::io::stderr)
        // Colours only for people: logs piped to a file or a collector stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match command {
            Command::Serve { .. } => server::serve(&config).await,
            Command::Store(command) => store_cmd::run(&config, command).await,
            Command::Projections(command) => projections_cmd::run(&config, command).await,
            Command::Client(command) => client_cmd::run(&config, command).await,
        }
    })
}
