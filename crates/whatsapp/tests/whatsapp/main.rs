//! Integration tests of the WhatsApp crate, one binary: webhook parsing
//! against the hand-written fixtures, signatures, the Cloud API client
//! against a stub server, and pacing.

mod client;
mod pacing;
mod security;
mod webhook;
