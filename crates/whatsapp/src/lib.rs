//! The WhatsApp Cloud API as Palaver speaks it: the wire formats of Meta's
//! webhooks and send API, field for field with the public reference, and a
//! client for the calls Palaver makes. Building blocks only: the server
//! wires them into HTTP routes, the intake stream and the delivery worker
//! (docs/whatsapp.md shows how).
//!
//! Layout:
//!
//! - Receiving: [`signature`] (`X-Hub-Signature-256`), [`handshake`] (the
//!   GET subscription check), [`webhook`] (payload types, parsing, and the
//!   mapping to domain values: messages, delivery statuses, template
//!   status changes, and everything else as "unhandled", never dropped).
//! - Sending: [`client`] (the Cloud API client: send, template catalogue,
//!   errors classified for a retrying worker), [`backoff`] (exponential
//!   backoff with full jitter), [`rate_limit`] (an async token bucket).
//! - [`secret`]: a string whose `Debug` never shows it.
//!
//! Each module has its own `Error` and `Result`; they are re-exported here
//! under distinct names.

pub mod backoff;
pub mod client;
pub mod handshake;
pub mod rate_limit;
pub mod secret;
pub mod signature;
pub mod webhook;

pub use backoff::Backoff;
pub use client::{
    Accepted, CloudApi, CloudApiConfig, Error as ClientError, MediaSource, Payload, Recipient, SendError,
    SendRequest,
};
pub use handshake::{Error as HandshakeError, SubscriptionQuery, verify_subscription};
pub use rate_limit::RateLimiter;
pub use secret::Secret;
pub use signature::Error as SignatureError;
pub use webhook::{Customer, Error as WebhookError, Item, Notification};
