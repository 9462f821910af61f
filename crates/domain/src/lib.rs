//! Palaver's WhatsApp conversation rules, as pure event-sourced aggregates.
//!
//! Every rule of the WhatsApp channel is a pure, synchronous function:
//! [`Aggregate::decide`] turns a command, the current state and the time
//! (`now`, passed in: nothing here reads a clock or does I/O) into events or
//! a typed [`Error`]; [`Aggregate::evolve`] folds an event into the state.
//! The application layer loads a stream, replays it, decides, and appends
//! with the loaded revision as expected revision, retrying on conflict
//! (docs/domain.md describes each process). Rules that need other streams
//! take what they need as plain values (the window, a conversation's
//! status, merge candidates, a checked template).
//!
//! Layout, one file per concept:
//!
//! - [`aggregate`]: the `Aggregate` trait; [`stream`]: `<category>-<id>`
//!   names; [`ids`]: id newtypes and the derived (UUID v5) ids.
//! - Aggregates, one stream each: [`channel`] (numbers and settings),
//!   [`thread`] (window, routing of inbound messages), [`conversation`]
//!   (status, assignee, messages, delivery), [`contact`] (leads, users,
//!   merges), [`templates`] (catalogue and the send check), [`campaign`]
//!   (outbound campaigns), [`messenger`] (Messenger-to-WhatsApp switch),
//!   [`intake`] (stored webhook payloads), [`timer`] (durable timers).
//! - Rules used by several aggregates: [`window`] (24-hour customer care
//!   window), [`delivery`] (monotonic delivery states), [`phone`] (E.164
//!   normalization), [`message`] (message kinds), [`macros`] (macros as
//!   WhatsApp text), [`office_hours`].
//! - [`codec`]: the only place domain events meet protobuf: event type
//!   name, schema version and payload bytes, both ways.
//! - [`error`]: the crate's [`Error`].

pub mod aggregate;
pub mod campaign;
pub mod channel;
pub mod codec;
pub mod contact;
pub mod conversation;
pub mod delivery;
pub mod error;
pub mod ids;
pub mod intake;
pub mod macros;
pub mod message;
pub mod messenger;
pub mod office_hours;
pub mod phone;
pub mod stream;
pub mod templates;
pub mod thread;
pub mod timer;
pub mod window;

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod testing;

pub use aggregate::Aggregate;
pub use error::{Error, Result};
