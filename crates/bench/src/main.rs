//! `palaver-bench`: Palaver's speed and memory figures.
//!
//! One subcommand per area (`store`, …); each prints one figure a line as
//! `<name> <value> <unit>`, so runs can be compared with `diff`. `report`
//! runs every area and rewrites `docs/benchmarks.md` with the figures and
//! the machine they ran on. Targets are stated beside each figure in the
//! report; benchmarks never fail a build, tests never time anything.

#![allow(clippy::print_stdout)] // printing figures is the point

mod grpc;
mod machine;
mod postgres;
mod rebuild;
mod report;
mod store;
mod webhook;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "palaver-bench", about = "Palaver benchmarks")]
struct Cli {
    /// Folder for benchmark databases (on the disk you want to measure).
    #[arg(
        long,
        env = "PALAVER_BENCH_DIR",
        default_value = "target/bench-data",
        global = true
    )]
    dir: PathBuf,
    #[command(subcommand)]
    area: Area,
}

#[derive(Debug, Subcommand)]
enum Area {
    /// The embedded SQLite event store: appends, group commit, `$all` reads.
    Store(store::Options),
    /// gRPC commands and queries against `palaver serve` (build it first:
    /// `cargo build --release -p palaver`).
    Grpc(grpc::Options),
    /// Rebuilding every read model from a realistic history.
    Rebuild(rebuild::Options),
    /// Signed WhatsApp webhook posts against `palaver serve` (build it
    /// first: `cargo build --release -p palaver`).
    Webhook(webhook::Options),
    /// The PostgreSQL event store against a plain INSERT loop on the same
    /// server (needs a server: `--postgres-url`).
    Postgres(postgres::Options),
    /// Run every area and rewrite the report.
    Report {
        /// Where to write the report.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
    },
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Figure {
            name: name.into(),
            value,
            unit,
        }
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.fract() == 0.0 || self.value.abs() >= 100.0 {
            write!(f, "{} {:.0} {}", self.name, self.value, self.unit)
        } else {
            write!(f, "{} {:.2} {}", self.name, self.value, self.unit)
        }
    }
}

/// Prints figures as they come, and keeps them for the report.
#[derive(Debug, Default)]
pub struct Figures(pub Vec<Figure>);

impl Figures {
    pub fn record(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        let figure = Figure::new(name, value, unit);
        println!("{figure}");
        self.0.push(figure);
    }
}

/// Removes a SQLite database left by an earlier run, with its WAL, shared
/// memory and lock files, so every run starts from nothing.
pub fn remove_database(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// Lets the disk settle between two areas of a report: the store and
/// rebuild areas leave hundreds of megabytes of dirty pages behind, and the
/// kernel writing them back during the next area was measured as part of
/// it (fsync waits behind that writeback).
fn settle() {
    if let Err(error) = std::process::Command::new("sync").status() {
        eprintln!("sync between benchmark areas failed: {error}");
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.area {
            Area::Store(options) => {
                store::run(&cli.dir, &options, &mut Figures::default()).await?;
            }
            Area::Grpc(options) => {
                grpc::run(&cli.dir, &options, &mut Figures::default()).await?;
            }
            Area::Rebuild(options) => {
                rebuild::run(&cli.dir, &options, &mut Figures::default()).await?;
            }
            Area::Webhook(options) => {
                webhook::run(&cli.dir, &options, &mut Figures::default()).await?;
            }
            Area::Postgres(options) => {
                postgres::run(&options, &mut Figures::default()).await?;
            }
            Area::Report { out } => {
                let mut sections = Vec::new();
                let mut figures = Figures::default();
                store::run(&cli.dir, &store::Options::default(), &mut figures).await?;
                sections.push(("store", figures));
                settle();
                let mut figures = Figures::default();
                rebuild::run(&cli.dir, &rebuild::Options::default(), &mut figures).await?;
                sections.push(("rebuild", figures));
                settle();
                let mut figures = Figures::default();
                grpc::run(&cli.dir, &grpc::Options::default(), &mut figures).await?;
                sections.push(("grpc", figures));
                settle();
                let mut figures = Figures::default();
                webhook::run(&cli.dir, &webhook::Options::default(), &mut figures).await?;
                sections.push(("webhook", figures));
                settle();
                // PostgreSQL runs on every development and CI machine; where
                // it does not, the report says so instead of failing.
                let mut figures = Figures::default();
                match postgres::run(&postgres::Options::default(), &mut figures).await {
                    Ok(()) => sections.push(("postgres", figures)),
                    Err(error) => eprintln!("postgres benchmark skipped: {error}"),
                }
                report::write(&out, &cli.dir, &sections)?;
                println!("wrote {}", out.display());
            }
        }
        Ok(())
    })
}
