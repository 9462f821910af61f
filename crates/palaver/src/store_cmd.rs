//! `palaver store …`: audit tools that work on the data folder directly.
//! They take the store's lock, so run them while the server is stopped
//! (or against a copy of the data folder).

#![allow(clippy::print_stdout)] // printing is what these commands are for

use std::{io::Write, process::ExitCode};

use clap::Subcommand;
use palaver_store::{
    AllFilter, Direction, EventStore, Position, ReadFrom, RecordedEvent, StreamName, verify,
};

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check every stream's hash chain; exits 1 at the first broken link.
    Verify,
    /// Print events, one JSON object a line (payloads in hex).
    Read {
        /// Read this stream instead of `$all`.
        #[arg(long)]
        stream: Option<String>,
        /// Start after this global position (`$all` only).
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Only streams starting with this prefix (`$all` only; repeatable).
        #[arg(long = "prefix")]
        prefixes: Vec<String>,
        /// Only events of this type (`$all` only; repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<usize>,
    },
}

pub async fn run(config: &Config, command: StoreCommand) -> anyhow::Result<ExitCode> {
    // An audit of a folder with no store is a mistake, not an empty history.
    let store = config.open_existing_store()?;
    match command {
        StoreCommand::Verify => {
            let report = verify::verify(&store, |done| tracing::debug!(done, "verifying")).await?;
            println!("events  {}", report.events);
            println!("streams {}", report.streams);
            println!("head    {}", report.head);
            println!("digest  {}", hex::encode(report.digest));
            match report.first_break {
                None => {
                    println!("intact: every hash chain holds");
                    Ok(ExitCode::SUCCESS)
                }
                Some(link) => {
                    println!("BROKEN: {link}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        StoreCommand::Read {
            stream,
            after,
            prefixes,
            types,
            limit,
        } => {
            let mut left = limit.unwrap_or(usize::MAX);
            let mut out = std::io::stdout().lock();
            const PAGE: usize = 1000;
            match stream {
                Some(name) => {
                    let name = StreamName::new(name)?;
                    let mut from = ReadFrom::Start;
                    while left > 0 {
                        let page = store
                            .read_stream(&name, from, Direction::Forwards, PAGE.min(left))
                            .await?;
                        let Some(last) = page.last() else { break };
                        from = ReadFrom::Revision(last.revision + 1);
                        left -= page.len();
                        write_events(&mut out, &page)?;
                    }
                }
                None => {
                    let filter = AllFilter {
                        stream_prefixes: prefixes,
                        event_types: types,
                    };
                    let mut after = Position(after);
                    while left > 0 {
                        let page = store.read_all(after, &filter, PAGE.min(left)).await?;
                        let Some(last) = page.last() else { break };
                        after = last.position;
                        left -= page.len();
                        write_events(&mut out, &page)?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_events(out: &mut impl Write, events: &[RecordedEvent]) -> anyhow::Result<()> {
    for event in events {
        let line = serde_json::json!({
            "position": event.position.0,
            "stream": event.stream.as_str(),
            "revision": event.revision,
            "id": event.id,
            "type": event.event_type,
            "schema_version": event.schema_version,
            "recorded_at": event.metadata.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "actor": event.metadata.actor,
            "correlation_id": event.metadata.correlation_id,
            "causation_id": event.metadata.causation_id,
            "payload_hex": hex::encode(&event.payload),
            "hash": hex::encode(event.hash),
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}
