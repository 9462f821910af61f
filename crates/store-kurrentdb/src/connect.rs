//! Connection strings and options, and what can go wrong before the first
//! request.

use kurrentdb::ClientSettings;
use palaver_store::Limits;

/// How the store talks to KurrentDB, beside the connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KurrentDbOptions {
    /// Checked before every append, as every backend does. KurrentDB has a
    /// limit of its own on one append's total size (`MaxAppendSize`, 1 MiB
    /// by default): raise it on the server for batches above that.
    pub limits: Limits,
    /// A prefix on every stream this store writes, and the only streams it
    /// reads (see `namespace.rs`): lets several installations or test runs
    /// share one KurrentDB, which cannot drop a database. Letters, digits
    /// and `- _ . : @`, for example `staging.`. `None`: the store owns every
    /// non-system stream of the database.
    pub namespace: Option<String>,
    /// How many events before a batch's place an append reads back to
    /// recognise a retry sent with `Any` or `StreamExists` (see `retry.rs`).
    /// Retries with an exact revision or `NoStream` are recognised at any
    /// distance.
    pub idempotency_window: usize,
}

impl Default for KurrentDbOptions {
    fn default() -> Self {
        KurrentDbOptions {
            limits: Limits::default(),
            namespace: None,
            idempotency_window: 32,
        }
    }
}

/// Why [`crate::KurrentDbStore::connect`] refused.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The connection string is not one the KurrentDB client understands.
    /// Fix it: `kurrentdb://user:password@host:2113` (`esdb://` and
    /// `+discover` work too; `?tls=false` for an insecure server). The URL
    /// shown has its password masked.
    #[error("invalid KurrentDB connection string {url}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The namespace breaks the stream naming rules. Fix the option.
    #[error("invalid KurrentDB namespace {namespace:?}: {reason}")]
    InvalidNamespace { namespace: String, reason: String },

    /// The store was created outside a Tokio runtime, which the client
    /// needs for its connection task. Create it inside one.
    #[error("the KurrentDB store must be created inside a Tokio runtime")]
    NoRuntime,

    /// The client could not be set up (TLS files, certificates). Fix the
    /// setting the reason names.
    #[error("cannot set up the KurrentDB client: {reason}")]
    Client { reason: String },
}

impl From<ConnectError> for palaver_store::Error {
    fn from(error: ConnectError) -> Self {
        palaver_store::Error::backend("connecting to KurrentDB", error)
    }
}

/// Parses a connection string, keeping any password out of the error.
pub(crate) fn settings(url: &str) -> Result<ClientSettings, ConnectError> {
    url.parse::<ClientSettings>()
        .map_err(|error| ConnectError::InvalidUrl {
            url: redact(url),
            // When the URL itself does not parse, the client's message is the
            // whole URL, password included: use the parser's reason instead.
            reason: match error.error() {
                Some(parse) => parse.to_string(),
                None => error.message().to_owned(),
            },
        })
}

/// `url` with the password (if any) replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((user_info, hosts)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match user_info.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{hosts}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("kurrentdb://admin:changeit@localhost:2113?tls=false"),
            "kurrentdb://admin:***@localhost:2113?tls=false"
        );
        assert_eq!(
            redact("esdb://admin:p@ss:w0rd@node1:2113,node2:2113,node3:2113"),
            "esdb://admin:***@node1:2113,node2:2113,node3:2113"
        );
        assert_eq!(redact("kurrentdb://localhost:2113"), "kurrentdb://localhost:2113");
        assert_eq!(
            redact("kurrentdb://admin@localhost"),
            "kurrentdb://admin@localhost"
        );
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn good_connection_strings_parse() {
        for url in [
            "kurrentdb://localhost:2113?tls=false",
            "kurrentdb://admin:changeit@localhost:2113",
            "esdb://admin:changeit@node1:2113,node2:2113,node3:2113?nodePreference=leader",
            "kurrentdb+discover://cluster.example:2113",
        ] {
            assert!(settings(url).is_ok(), "{url}");
        }
        let parsed = settings("kurrentdb://admin:changeit@node1:2113,node2:2114").unwrap();
        assert_eq!(parsed.hosts().len(), 2);
        assert!(parsed.is_secure_mode_enabled(), "TLS is the client's default");
        assert!(
            !settings("esdb://localhost?tls=false")
                .unwrap()
                .is_secure_mode_enabled()
        );
    }

    #[test]
    fn bad_connection_strings_are_refused_without_their_password() {
        for url in [
            "postgres://admin:secret@localhost:5432",
            "kurrentdb://admin:secret@",
            "kurrentdb://admin:secret@localhost:2113/some/path",
            "kurrentdb://admin:secret@localhost:2113?nodePreference=nearest",
            "kurrentdb://admin:secret@localhost:notaport",
            "kurrentdb://admin:secret@node1:2113,node2:x",
            "kurrentdb://admin:secret@localhost:2113?tls=maybe",
            "",
        ] {
            let error = settings(url).expect_err(url);
            let shown = error.to_string();
            assert!(matches!(error, ConnectError::InvalidUrl { .. }), "{shown}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }
}
