//! Leases and checkpoints in PostgreSQL, for several instances sharing one
//! database: each worker runs in exactly one instance at a time, and the
//! instance that takes a lease over resumes from the last holder's
//! checkpoint.
//!
//! Checkpoints are fenced by the lease: a save succeeds only while this
//! instance still holds the worker's lease (same fencing token, not
//! expired, on the database's clock). A holder that was paused past its
//! lease (a long GC-like stall, a network partition) therefore cannot move
//! the checkpoint back under the instance that took over; its save fails,
//! the runner stops the worker, and it asks for the lease again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use palaver_store::Position;
use palaver_store_postgres::{Lease, LeaseError, PgLeases};

use crate::checkpoint::Checkpoints;
use crate::lease::{HeldLease, LeaseProvider};
use crate::{Error, Result};

/// Leases and checkpoints of this instance's workers, in PostgreSQL.
/// Use the same value (in an `Arc`) as both the runtime's lease provider
/// and its checkpoints.
#[derive(Debug)]
pub struct PgCoordination {
    leases: PgLeases,
    holder: String,
    ttl: Duration,
    /// The leases this instance holds now, by worker: what a checkpoint
    /// save is fenced with.
    held: Mutex<HashMap<String, Lease>>,
}

impl PgCoordination {
    /// Leases for `holder` (unique per process: the instance id) that last
    /// `ttl` unless renewed; renewed every third of it.
    pub fn new(leases: PgLeases, holder: impl Into<String>, ttl: Duration) -> Arc<Self> {
        Arc::new(PgCoordination {
            leases,
            holder: holder.into(),
            ttl,
            held: Mutex::new(HashMap::new()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A lease held through [`PgCoordination`].
struct PgHeldLease {
    coordination: Arc<PgCoordination>,
    lease: Lease,
}

#[async_trait]
impl HeldLease for PgHeldLease {
    async fn renew(&mut self) -> Result<bool> {
        let renewed = self
            .coordination
            .leases
            .renew(&self.lease)
            .await
            .map_err(lease_error)?;
        if !renewed {
            self.coordination.held().remove(self.lease.name());
        }
        Ok(renewed)
    }

    async fn release(self: Box<Self>) -> Result<()> {
        self.coordination.held().remove(self.lease.name());
        self.coordination
            .leases
            .release(self.lease)
            .await
            .map_err(lease_error)
    }
}

#[async_trait]
impl LeaseProvider for Arc<PgCoordination> {
    async fn try_acquire(&self, name: &str) -> Result<Option<Box<dyn HeldLease>>> {
        let Some(lease) = self
            .leases
            .try_acquire(name, &self.holder, self.ttl)
            .await
            .map_err(lease_error)?
        else {
            return Ok(None);
        };
        tracing::info!(lease = name, holder = %self.holder, token = lease.token(), "lease taken");
        self.held().insert(name.to_owned(), lease.clone());
        Ok(Some(Box::new(PgHeldLease {
            coordination: Arc::clone(self),
            lease,
        })))
    }

    fn renew_every(&self) -> Duration {
        self.ttl / 3
    }
}

#[async_trait]
impl Checkpoints for Arc<PgCoordination> {
    async fn load(&self, worker: &str) -> Result<Position> {
        let position = self.leases.checkpoint(worker).await.map_err(lease_error)?;
        Ok(Position(position.unwrap_or(0)))
    }

    async fn save(&self, worker: &str, position: Position) -> Result<()> {
        let lease = self.held().get(worker).cloned().ok_or_else(|| {
            Error::Lease(format!(
                "cannot save the checkpoint of `{worker}`: its lease is not held here"
            ))
        })?;
        if self
            .leases
            .save_checkpoint(&lease, position.0)
            .await
            .map_err(lease_error)?
        {
            Ok(())
        } else {
            self.held().remove(worker);
            Err(Error::Lease(format!(
                "cannot save the checkpoint of `{worker}`: its lease was lost to another instance"
            )))
        }
    }
}

fn lease_error(error: LeaseError) -> Error {
    match error {
        LeaseError::Store(error) => Error::Store(error),
        other => Error::Lease(other.to_string()),
    }
}
