//! Integration tests of the workers, one binary: the shared loop, delivery
//! against a stub Cloud API, timers and campaigns.

mod support;

mod campaigns;
mod delivery;
mod runner;
mod timers;
