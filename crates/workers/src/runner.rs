//! The loop every worker shares.
//!
//! [`run`] takes the worker's lease, resumes `$all` after the worker's
//! checkpoint, and hands each matching event to [`Process::handle`], up to
//! [`Process::concurrency`] at a time. A handler that fails is retried with
//! exponential backoff until it succeeds: the events a worker reacts to
//! must not be skipped, and a handler records a permanent failure itself
//! (as an event) rather than returning an error. The checkpoint never
//! passes an event still in flight, so a crash repeats unfinished work,
//! which idempotent handlers absorb.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use palaver_store::{AllFilter, EventStore, Position, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::checkpoint::Checkpoints;
use crate::lease::{HeldLease, LeaseProvider};
use crate::{Error, Result};

/// A handler failure worth retrying (the store was busy, a read model lags,
/// a remote API is down).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ProcessError(pub String);

impl ProcessError {
    /// A failure with this explanation.
    pub fn new(reason: impl std::fmt::Display) -> Self {
        ProcessError(reason.to_string())
    }
}

/// A worker: reacts to some events of `$all`.
#[async_trait]
pub trait Process: Send + Sync + 'static {
    /// Its name, for checkpoints, leases and logs.
    fn name(&self) -> &'static str;
    /// The events it reacts to.
    fn filter(&self) -> AllFilter;
    /// How many events it may handle at once. Events handled at once may
    /// finish in any order.
    fn concurrency(&self) -> usize {
        1
    }
    /// Handles one event; called again after a failure (and after a crash),
    /// so it must be idempotent.
    async fn handle(&self, event: RecordedEvent) -> Result<(), ProcessError>;
}

/// Timings of the loop.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// First retry delay of a failed handler; doubles up to `retry_max`.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How often the checkpoint is saved while events flow.
    pub save_every: Duration,
    /// How long a waiting instance waits before asking for the lease again.
    pub lease_poll: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
            save_every: Duration::from_millis(200),
            lease_poll: Duration::from_secs(1),
        }
    }
}

/// Everything a worker loop needs from its instance.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects without Debug
pub struct Runtime {
    /// The event store.
    pub store: Arc<dyn EventStore>,
    /// Where positions are saved.
    pub checkpoints: Arc<dyn Checkpoints>,
    /// Who runs which worker.
    pub leases: Arc<dyn LeaseProvider>,
    /// Timings.
    pub options: RunOptions,
}

/// Runs `process` until `shutdown` turns true (then lets in-flight events
/// finish and saves the checkpoint) or the store ends its subscription.
/// Errors of the store or the checkpoints are retried after a pause; only
/// a shutdown ends the loop.
pub async fn run(runtime: Runtime, process: Arc<dyn Process>, mut shutdown: watch::Receiver<bool>) {
    let name = process.name();
    loop {
        let Some(lease) = acquire_lease(&runtime, name, &mut shutdown).await else {
            return;
        };
        tracing::info!(worker = name, "worker started");
        match work(&runtime, &process, lease, &mut shutdown).await {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::LeaseLost) => tracing::warn!(worker = name, "lease lost; another instance runs it"),
            Err(error) => {
                tracing::error!(worker = name, %error, "worker failed; restarting after a pause");
                tokio::select! {
                    () = tokio::time::sleep(runtime.options.retry_max.min(Duration::from_secs(5))) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// Waits until this instance holds the lease `name`; `None` once
/// `shutdown` turns true first.
pub async fn acquire_lease(
    runtime: &Runtime,
    name: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Box<dyn HeldLease>> {
    loop {
        if *shutdown.borrow() {
            return None;
        }
        match runtime.leases.try_acquire(name).await {
            Ok(Some(lease)) => return Some(lease),
            Ok(None) => {}
            Err(error) => tracing::warn!(worker = name, %error, "could not ask for the lease"),
        }
        tokio::select! {
            () = tokio::time::sleep(runtime.options.lease_poll) => {}
            _ = shutdown.changed() => return None,
        }
    }
}

enum Ended {
    Shutdown,
    LeaseLost,
}

/// What is in flight, and the checkpoint that follows from it.
struct Progress {
    in_flight: BTreeSet<u64>,
    dispatched: Position,
    saved: Position,
}

impl Progress {
    /// Everything before the oldest event in flight is done.
    fn checkpoint(&self) -> Position {
        match self.in_flight.first() {
            Some(&oldest) => Position(oldest.saturating_sub(1)),
            None => self.dispatched,
        }
    }
}

async fn work(
    runtime: &Runtime,
    process: &Arc<dyn Process>,
    mut lease: Box<dyn HeldLease>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Ended> {
    let name = process.name();
    let start = runtime.checkpoints.load(name).await?;
    let mut events = runtime.store.subscribe_all(start, process.filter());
    let mut progress = Progress {
        in_flight: BTreeSet::new(),
        dispatched: start,
        saved: start,
    };
    let mut tasks: JoinSet<u64> = JoinSet::new();
    let concurrency = process.concurrency().max(1);
    let mut renew = tokio::time::interval(runtime.leases.renew_every());
    renew.tick().await;
    let mut save = tokio::time::interval(runtime.options.save_every);

    let ended = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ended::Shutdown,
            _ = renew.tick() => {
                if !lease.renew().await? {
                    // Someone else may already be working: stop at once.
                    tasks.abort_all();
                    return Ok(Ended::LeaseLost);
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                match done {
                    Ok(position) => {
                        progress.in_flight.remove(&position);
                    }
                    Err(error) => {
                        // A handler panicked: its event stays unfinished, so
                        // the checkpoint holds and a restart retries it.
                        tracing::error!(worker = name, %error, "handler panicked");
                        return Err(Error::HandlerPanicked(name));
                    }
                }
            }
            next = events.next(), if tasks.len() < concurrency => {
                match next {
                    Some(Ok(event)) => {
                        let position = event.position.0;
                        progress.in_flight.insert(position);
                        progress.dispatched = event.position;
                        let process = Arc::clone(process);
                        let options = runtime.options;
                        tasks.spawn(async move {
                            handle_until_done(&*process, event, options).await;
                            position
                        });
                    }
                    Some(Err(error)) => return Err(error.into()),
                    None => break Ended::Shutdown,
                }
            }
            _ = save.tick() => {
                let checkpoint = progress.checkpoint();
                if checkpoint != progress.saved {
                    runtime.checkpoints.save(name, checkpoint).await?;
                    progress.saved = checkpoint;
                }
            }
        }
    };
    // Let in-flight events finish, so the checkpoint can cover them.
    while let Some(done) = tasks.join_next().await {
        if let Ok(position) = done {
            progress.in_flight.remove(&position);
        }
    }
    runtime.checkpoints.save(name, progress.checkpoint()).await?;
    if let Err(error) = lease.release().await {
        tracing::warn!(worker = name, %error, "could not release the lease; it will expire");
    }
    tracing::info!(
        worker = name,
        position = progress.checkpoint().0,
        "worker stopped"
    );
    Ok(ended)
}

async fn handle_until_done(process: &dyn Process, event: RecordedEvent, options: RunOptions) {
    let mut delay = options.retry_base;
    let mut attempt = 1u32;
    loop {
        match process.handle(event.clone()).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(
                    worker = process.name(),
                    position = event.position.0,
                    event_type = %event.event_type,
                    attempt,
                    %error,
                    "handler failed; retrying",
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(options.retry_max);
                attempt = attempt.saturating_add(1);
            }
        }
    }
}
