//! Webhook payload signatures. Meta signs every webhook POST with the app
//! secret: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw
//! body. Verify it over the bytes exactly as received, before parsing: a
//! re-serialized body would not match.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header Meta puts the signature in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a payload was not accepted as Meta's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request has no signature header. Answer 401 and drop it: Meta
    /// always signs, so this did not come from Meta.
    #[error("the request carries no {SIGNATURE_HEADER} header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits. Answer 401.
    #[error("the {SIGNATURE_HEADER} header is not `sha256=<64 hex digits>`")]
    Malformed,
    /// The signature does not match the body under the configured app
    /// secret: a forged or altered payload, or a wrong app secret. Answer
    /// 401; if every payload fails, check the configured app secret.
    #[error("the payload signature does not match the app secret")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value, `None` if absent)
/// against `body` under `app_secret`. The comparison is constant-time, so
/// timing reveals nothing about the expected signature.
pub fn verify(app_secret: &[u8], body: &[u8], header: Option<&str>) -> Result<()> {
    let header = header.ok_or(Error::Missing)?;
    let hex_digest = header.trim().strip_prefix(PREFIX).ok_or(Error::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(Error::Malformed);
    }
    let expected = hex::decode(hex_digest).map_err(|_| Error::Malformed)?;
    mac(app_secret, body)
        .verify_slice(&expected)
        .map_err(|_| Error::Mismatch)
}

/// The header value Meta would send for `body`: `sha256=<lower-case hex>`.
/// For tests, benchmarks and local tools that post signed payloads.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let digest = mac(app_secret, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(digest))
}

fn mac(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (long keys are hashed first), so this
    // constructor cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(app_secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    mac
}
