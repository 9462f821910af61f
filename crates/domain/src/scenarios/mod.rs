//! Given/when/then scenarios for every rule of the issue, one file per
//! aggregate, plus the codec round-trip and replay properties.

mod campaign;
mod channel;
mod codec;
mod contact;
mod conversation;
mod fixtures;
mod intake;
mod messenger;
mod replay;
mod strategies;
mod templates;
mod thread;
mod timer;
