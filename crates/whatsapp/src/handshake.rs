//! The subscription handshake. When a webhook URL is configured, Meta sends
//! `GET <url>?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<n>`
//! and expects the challenge back, verbatim, with status 200, but only if
//! the token is the one configured for the app.

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The query parameters of the handshake, named as Meta sends them, so an
/// HTTP framework's query extractor can fill this directly. Every field is
/// optional so that a request missing one is refused with a clear
/// [`Error`] rather than a framework's generic 400.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SubscriptionQuery {
    /// `hub.mode`, always `subscribe`.
    #[serde(rename = "hub.mode")]
    pub mode: Option<String>,
    /// `hub.verify_token`, the token typed into the app dashboard.
    #[serde(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// `hub.challenge`, to be echoed back.
    #[serde(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// Why a handshake was refused. Answer 403 for each; none of them is worth
/// a retry by the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `hub.mode` is absent or not `subscribe`: not a subscription check.
    #[error("hub.mode is {0:?}, not \"subscribe\"")]
    WrongMode(Option<String>),
    /// `hub.verify_token` is absent or differs from the configured token:
    /// someone else's check, or the dashboard and Palaver disagree. Fix
    /// the configured token.
    #[error("hub.verify_token does not match the configured token")]
    TokenMismatch,
    /// `hub.challenge` is absent or empty: nothing to echo.
    #[error("hub.challenge is missing")]
    MissingChallenge,
}

/// Answers a handshake: the challenge to return with status 200, or why
/// not. The tokens are compared in constant time.
pub fn verify_subscription(query: &SubscriptionQuery, configured_token: &str) -> Result<String> {
    if query.mode.as_deref() != Some("subscribe") {
        return Err(Error::WrongMode(query.mode.clone()));
    }
    let given = query.verify_token.as_deref().unwrap_or_default();
    // `ct_eq` on slices of different lengths is false without comparing the
    // bytes; only the length can leak, which is no secret worth keeping.
    let matches: bool = given.as_bytes().ct_eq(configured_token.as_bytes()).into();
    if !matches || configured_token.is_empty() {
        return Err(Error::TokenMismatch);
    }
    match query.challenge.as_deref() {
        Some(challenge) if !challenge.is_empty() => Ok(challenge.to_owned()),
        _ => Err(Error::MissingChallenge),
    }
}
