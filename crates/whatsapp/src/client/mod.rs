//! The Cloud API client: sending messages ([`CloudApi::send`]) and reading
//! the template catalogue ([`CloudApi::list_templates`]). HTTP/1.1 and
//! JSON over rustls (ring provider, the platform's root certificates).
//!
//! - [`send`]: the send request and its outcome, classified for a retrying
//!   worker ([`SendError`]).
//! - [`templates`]: the catalogue, page by page.
//! - [`codes`]: what each error code means for a sender.

pub mod codes;
pub mod send;
pub mod templates;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::secret::Secret;

pub use send::{Accepted, MediaSource, Payload, Recipient, SendError, SendRequest};

/// Where the Cloud API lives.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// The Graph API version requests are made against.
pub const DEFAULT_API_VERSION: &str = "v25.0";
/// How long a request may take before its outcome counts as unknown.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a client could not be built or the catalogue could not be read.
/// (Sends have their own [`SendError`], classified for retries.)
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable; the text says which value. Fix it.
    #[error("invalid Cloud API configuration: {0}")]
    Config(String),
    /// An argument is unusable (an empty or non-numeric id). Fix the
    /// caller.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request did not complete (connection, timeout). Retry later.
    #[error("the Cloud API could not be reached: {reason}")]
    Transport {
        /// What failed.
        reason: String,
    },
    /// The access token or the app's permissions were refused. Fix the
    /// configuration; retrying will not help.
    #[error("the Cloud API refused the credentials (HTTP {status}, code {code:?}): {message}")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// Graph API error code, if given.
        code: Option<i64>,
        /// Meta's message.
        message: String,
    },
    /// The API answered with an error. Retry later if `status` is 429 or
    /// 5xx; otherwise the request itself is wrong.
    #[error("the Cloud API answered HTTP {status} (code {code:?}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Graph API error code, if given.
        code: Option<i64>,
        /// Meta's message.
        message: String,
    },
    /// The answer does not have the reference's shape. Meta changed
    /// something: report it.
    #[error("unexpected Cloud API answer: {reason}")]
    Decode {
        /// What did not fit.
        reason: String,
    },
    /// Paging did not end within the page cap, or pointed elsewhere than
    /// the configured base URL. Report it.
    #[error("template paging stopped: {reason}")]
    Paging {
        /// Why.
        reason: String,
    },
}

/// How to reach the Cloud API.
#[derive(Clone, Debug)]
pub struct CloudApiConfig {
    /// Scheme and host, e.g. [`DEFAULT_BASE_URL`]; a local stub in tests.
    pub base_url: String,
    /// Graph API version, e.g. [`DEFAULT_API_VERSION`].
    pub api_version: String,
    /// A system-user access token with `whatsapp_business_messaging` (and
    /// `whatsapp_business_management` for templates).
    pub access_token: Secret,
    /// Whole-request timeout. After it, whether a send reached WhatsApp is
    /// unknown ([`SendError::Uncertain`]).
    pub timeout: Duration,
}

impl CloudApiConfig {
    /// The defaults with `access_token`.
    pub fn new(access_token: impl Into<Secret>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            access_token: access_token.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A Cloud API client. Cheap to clone (the connection pool is shared).
/// `Debug` never shows the access token.
#[derive(Clone)]
pub struct CloudApi {
    http: reqwest::Client,
    /// `{base_url}/{api_version}`, no trailing slash.
    root: String,
    /// The base URL as configured (no trailing slash): paging links must
    /// stay under it, so the token is never sent to another host.
    base_url: String,
    token: Secret,
    timeout: Duration,
}

impl fmt::Debug for CloudApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApi")
            .field("root", &self.root)
            .field("access_token", &self.token)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CloudApi {
    /// A client for `config`. Fails on an unusable configuration or when
    /// no root certificate can be loaded from the system.
    pub fn new(config: CloudApiConfig) -> Result<Self> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) || base_url.contains('?') {
            return Err(Error::Config(format!(
                "base_url `{base_url}` must be an http(s):// URL without a query"
            )));
        }
        let version = config.api_version.trim_matches('/');
        if version.is_empty() || version.contains(['/', '?', '#']) {
            return Err(Error::Config(format!(
                "api_version `{}` must be like `v25.0`",
                config.api_version
            )));
        }
        if config.access_token.expose().trim().is_empty() {
            return Err(Error::Config("access_token is empty".to_owned()));
        }
        if config.timeout.is_zero() {
            return Err(Error::Config("timeout must be positive".to_owned()));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A redirect from the Graph API is unexpected; following it
            // could resend a message.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("palaver/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            root: format!("{base_url}/{version}"),
            base_url,
            token: config.access_token,
            timeout: config.timeout,
        })
    }

    fn url(&self, id: &str, edge: &str) -> String {
        format!("{}/{id}/{edge}", self.root)
    }
}

/// rustls with the ring provider (the one the workspace already builds for
/// tonic) and the platform's root certificates. Built here rather than by
/// reqwest so no process-wide default provider has to be installed.
fn tls_config() -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| Error::Config(format!("TLS root certificates: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous() // Not dangerous: the platform verifier checks certificates fully.
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// An id used as a path segment: Meta's ids are numeric; anything that
/// could change the URL's meaning is refused.
fn check_path_id(what: &str, id: &str) -> std::result::Result<(), String> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!("{what} `{id}` must be a non-empty Meta id (digits)"));
    }
    Ok(())
}

/// The `Retry-After` header in seconds, when given that way.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Graph API error bodies: `{"error": {"message", "type", "code",
/// "error_subcode", "error_data": {"details"}, "fbtrace_id"}}`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
struct GraphErrorBody {
    error: Option<GraphError>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    code: Option<i64>,
    error_data: Option<GraphErrorData>,
    fbtrace_id: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
struct GraphErrorData {
    #[serde(default)]
    details: String,
}

impl GraphError {
    fn from_body(body: &[u8]) -> Self {
        serde_json::from_slice::<GraphErrorBody>(body)
            .ok()
            .and_then(|b| b.error)
            .unwrap_or_default()
    }
}
