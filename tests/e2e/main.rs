//! End-to-end tests: they start the real `palaver` binary on a temporary
//! data folder and free ports, and drive it as a client, an operator or an
//! auditor would.

mod admin;
mod api;
mod cli;
mod harness;
mod instances;
mod projections;
mod serve;
mod tls;
mod webhooks;
