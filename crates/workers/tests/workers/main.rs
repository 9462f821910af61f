//! Integration tests of the workers, one binary: the shared loop, delivery
//! against a stub Cloud API, timers and campaigns, leases and checkpoints
//! in PostgreSQL.

mod support;

mod campaigns;
mod delivery;
mod postgres;
mod runner;
mod timers;
