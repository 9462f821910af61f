//! `palaver projections …`: rebuild, replay and inspect the read models of
//! a data folder's event store, wherever `read_models` keeps them (the
//! file beside the store, or the PostgreSQL schema). Like the store tools,
//! they take the store's lock: run them while the server is stopped, or on
//! a copy of the data folder.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a terminal tool

use std::{io::Write, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use clap::Subcommand;
use palaver_projections::{
    PgReadModelDb, Projections, ReadModelDb, ReadModelWriter, Status, models,
    rebuild::{self, Progress, Until},
};
use palaver_store::{EventStore, Position};

use crate::config::{Config, ReadModelsKind, StoreKind};

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Show each read model's checkpoint and how far behind the store it is.
    Status,
    /// Rebuild every read model from the start of history and swap the new
    /// tables in atomically.
    Rebuild,
    /// Build the read models as they stood at a past point, into a new file
    /// (for audits). Without --position or --time, up to now.
    Replay {
        /// The new SQLite file to write.
        #[arg(long)]
        out: PathBuf,
        /// Stop after this global position.
        #[arg(long, conflicts_with = "time")]
        position: Option<u64>,
        /// Stop after the last event recorded at or before this time (RFC 3339).
        #[arg(long)]
        time: Option<DateTime<Utc>>,
    },
}

pub async fn run(config: &Config, command: ProjectionsCommand) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.store == StoreKind::Sqlite,
        "palaver projections reads the embedded store (store = sqlite); with store = {:?}, \
         read models are rebuilt by `palaver serve` (they follow the store from their checkpoints)",
        config.store
    );
    let store: Arc<dyn EventStore> = Arc::new(config.open_existing_store()?);
    match command {
        ProjectionsCommand::Status => {
            let head = store.head().await?;
            let checkpoints = match open_writer(config).await? {
                ReadModelWriter::Sqlite(mut db) => {
                    let checkpoints = db.checkpoints();
                    // Leaves the file as found: synced, surviving an OS restart.
                    db.sync()?;
                    checkpoints
                }
                ReadModelWriter::Postgres(db) => db.checkpoints(),
            };
            let mut checkpoints: Vec<_> = checkpoints.into_iter().collect();
            checkpoints.sort();
            println!("{:<12} {:>12} {:>12}", "read model", "position", "behind");
            for (name, position) in checkpoints {
                println!(
                    "{name:<12} {:>12} {:>12}",
                    position.0,
                    head.0.saturating_sub(position.0)
                );
            }
            println!("store head   {:>12}", head.0);
        }
        ProjectionsCommand::Rebuild => {
            let db = open_writer(config).await?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let projections =
                Projections::start(Arc::clone(&store), db, config.read_models_path(), async move {
                    let _ = stopped.await;
                });
            let mut meter = Meter::default();
            let position = projections.rebuild(|progress| meter.show(progress)).await;
            meter.finish();
            // The loop syncs the file as it stops (so it survives an OS restart).
            let _ = stop.send(());
            let ended = projections.stopped().await;
            let position = position?;
            if let Status::Failed(reason) = ended {
                anyhow::bail!("the projection loop stopped on an error after the rebuild: {reason}");
            }
            println!("rebuilt every read model up to position {position}");
        }
        ProjectionsCommand::Replay { out, position, time } => {
            let until = match (position, time) {
                (Some(position), _) => Until::Position(Position(position)),
                (None, Some(time)) => Until::Time(time),
                (None, None) => Until::Head,
            };
            let mut meter = Meter::default();
            let db =
                rebuild::replay(Arc::clone(&store), &out, models::all(), until, |p| meter.show(p)).await?;
            meter.finish();
            println!("wrote {} as of position {}", out.display(), db.position());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The read models where `read_models` says, open for writing.
async fn open_writer(config: &Config) -> anyhow::Result<ReadModelWriter> {
    Ok(match config.read_models {
        ReadModelsKind::Sqlite => ReadModelDb::open(&config.read_models_path(), models::all())?.into(),
        ReadModelsKind::Postgres => {
            let url = config
                .postgres_url
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("postgres_url is not set"))?;
            PgReadModelDb::open(url.expose(), &config.read_models_schema, models::all())
                .await?
                .into()
        }
    })
}

/// A one-line progress display on stderr, redrawn at most every 200 ms.
#[derive(Debug, Default)]
struct Meter {
    last_draw: Option<std::time::Instant>,
    shown: bool,
}

impl Meter {
    fn show(&mut self, progress: Progress) {
        let due = self
            .last_draw
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(200));
        if !due && progress.done < progress.total {
            return;
        }
        self.last_draw = Some(std::time::Instant::now());
        self.shown = true;
        let percent = if progress.total == 0 {
            100.0
        } else {
            progress.done as f64 * 100.0 / progress.total as f64
        };
        let eta = progress.eta().as_secs();
        eprint!(
            "\r{:>12} / {} events  {:5.1}%  {:>9.0} events/s  ETA {:02}:{:02}   ",
            progress.done,
            progress.total,
            percent,
            progress.rate(),
            eta / 60,
            eta % 60
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
