//! Who runs a worker when several Palaver instances share a store.
//!
//! A worker runs only while its instance holds the worker's lease. The
//! embedded store has one instance, so [`LocalLeases`] grants every lease
//! at once; a shared database provides leases that expire unless renewed,
//! so a dead holder's workers move to another instance within one lease
//! time. The runner renews while it works and stops the worker as soon as
//! a renewal fails.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// A lease this instance holds.
#[async_trait]
pub trait HeldLease: Send + Sync {
    /// Extends the lease; `false` means it was lost (expired and taken by
    /// another instance): stop working at once.
    async fn renew(&mut self) -> Result<bool>;
    /// Gives the lease up, so another instance can take over without
    /// waiting for it to expire.
    async fn release(self: Box<Self>) -> Result<()>;
}

/// Hands out leases by name.
#[async_trait]
pub trait LeaseProvider: Send + Sync + 'static {
    /// Takes the lease `name` if it is free or expired; `None` if another
    /// instance holds it.
    async fn try_acquire(&self, name: &str) -> Result<Option<Box<dyn HeldLease>>>;
    /// How often a holder must renew (well inside the lease's lifetime).
    fn renew_every(&self) -> Duration;
}

/// Leases for a single instance: always granted, never lost.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalLeases;

struct LocalLease;

#[async_trait]
impl HeldLease for LocalLease {
    async fn renew(&mut self) -> Result<bool> {
        Ok(true)
    }

    async fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl LeaseProvider for LocalLeases {
    async fn try_acquire(&self, _name: &str) -> Result<Option<Box<dyn HeldLease>>> {
        Ok(Some(Box::new(LocalLease)))
    }

    fn renew_every(&self) -> Duration {
        // Nothing to renew; an hour keeps the runner's timer quiet.
        Duration::from_secs(3600)
    }
}
