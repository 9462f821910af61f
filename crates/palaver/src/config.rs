//! Settings, layered: built-in defaults, then the config file, then
//! `PALAVER_…` environment variables, then command-line flags. Every
//! setting has all four; `palaver serve --dump-config` prints the result.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

/// The effective settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Folder holding the embedded databases, the token file and the first
    /// admin token.
    pub data_dir: PathBuf,
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where HTTP (health, metrics, webhooks) listens.
    pub http_addr: SocketAddr,
    /// Log filter, e.g. `info` or `palaver_store=debug,info`.
    pub log: String,
    /// Largest event the store accepts, in bytes.
    pub max_event_bytes: usize,
    /// Token file (hashes only); default `<data_dir>/tokens.toml`.
    pub tokens_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) for gRPC; TLS is on when both this and
    /// `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for gRPC.
    pub tls_key: Option<PathBuf>,
    /// Longest a query waits for read models to reach its minimum position.
    pub read_your_writes_timeout_ms: u64,
    /// Lets clients set the server's clock (TestClockService). For end-to-end
    /// tests only: never turn it on in production.
    pub unsafe_test_clock: bool,
    /// Where events are kept: `sqlite` (embedded, in `data_dir`),
    /// `postgres` or `kurrentdb`.
    pub store: StoreKind,
    /// Where read models, worker checkpoints and leases are kept: `sqlite`
    /// (in `data_dir`; one instance) or `postgres` (several instances).
    pub read_models: ReadModelsKind,
    /// PostgreSQL connection URL, for `store = "postgres"` and
    /// `read_models = "postgres"`.
    pub postgres_url: Option<Secret>,
    /// PostgreSQL schema Palaver's tables live in.
    pub postgres_schema: String,
    /// PostgreSQL schema the read models live in, for
    /// `read_models = "postgres"` (created if missing).
    pub read_models_schema: String,
    /// KurrentDB connection string (`kurrentdb://…` or `esdb://…`), for
    /// `store = "kurrentdb"`.
    pub kurrentdb_url: Option<Secret>,
    /// This instance's name in leases; default: host name and process id.
    pub instance_id: Option<String>,
    /// The token Meta sends in the webhook subscription handshake.
    pub whatsapp_verify_token: Option<Secret>,
    /// The Meta app secret that signs webhook bodies. Webhooks are refused
    /// until it is set.
    pub whatsapp_app_secret: Option<Secret>,
    /// The Cloud API access token for sending. Without it, nothing is sent
    /// (queued messages wait).
    pub whatsapp_access_token: Option<Secret>,
    /// The Cloud API's base URL (a stub's in tests).
    pub whatsapp_api_base_url: String,
    /// The Graph API version in request paths, e.g. `v25.0`.
    pub whatsapp_api_version: String,
    /// Most messages sent per second, across numbers (the Cloud API's
    /// default throughput is 80 per number).
    pub whatsapp_send_rate: u32,
    /// Campaign recipients handed to delivery per second, all campaigns
    /// together (under `whatsapp_send_rate`, so replies don't wait).
    pub campaign_send_rate: u32,
    /// Largest webhook body accepted, in bytes.
    pub webhook_body_limit_bytes: usize,
    /// How long before a customer's window closes the inbox is warned.
    pub window_warning_minutes: u32,
    /// With several instances on PostgreSQL: how long a lease (on the
    /// read models, on each worker) lasts unless its holder renews it, so
    /// how soon another instance takes over from a dead one.
    pub lease_ttl_seconds: u32,
}

/// A setting that must not be printed: `Debug` and `--dump-config` show
/// only that it is set.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Which event store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded SQLite in the data folder.
    #[default]
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
    /// A KurrentDB (EventStoreDB) server or cluster.
    Kurrentdb,
}

/// Where read models live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReadModelsKind {
    /// SQLite in the data folder.
    #[default]
    Sqlite,
    /// A PostgreSQL schema.
    Postgres,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("palaver-data"),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log: "info".to_owned(),
            max_event_bytes: palaver_store::Limits::default().max_event_bytes,
            tokens_file: None,
            tls_cert: None,
            tls_key: None,
            read_your_writes_timeout_ms: 5_000,
            unsafe_test_clock: false,
            store: StoreKind::Sqlite,
            read_models: ReadModelsKind::Sqlite,
            postgres_url: None,
            postgres_schema: "palaver".to_owned(),
            read_models_schema: palaver_projections::postgres::DEFAULT_SCHEMA.to_owned(),
            kurrentdb_url: None,
            instance_id: None,
            whatsapp_verify_token: None,
            whatsapp_app_secret: None,
            whatsapp_access_token: None,
            whatsapp_api_base_url: "https://graph.facebook.com".to_owned(),
            whatsapp_api_version: "v25.0".to_owned(),
            whatsapp_send_rate: 80,
            campaign_send_rate: 40,
            webhook_body_limit_bytes: 3 * 1024 * 1024,
            window_warning_minutes: 60,
            lease_ttl_seconds: 10,
        }
    }
}

/// The same settings as flags (and environment variables). Unset ones fall
/// back to the config file, then to the defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// TOML config file with any of the settings below (as snake_case keys).
    #[arg(long, global = true, env = "PALAVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Folder holding the embedded databases [default: palaver-data].
    #[arg(long, global = true, env = "PALAVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, global = true, env = "PALAVER_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "PALAVER_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Log filter [default: info].
    #[arg(long, global = true, env = "PALAVER_LOG")]
    pub log: Option<String>,
    /// Largest event the store accepts, in bytes [default: 1048576].
    #[arg(long, global = true, env = "PALAVER_MAX_EVENT_BYTES")]
    pub max_event_bytes: Option<usize>,
    /// Token file [default: <data-dir>/tokens.toml].
    #[arg(long, global = true, env = "PALAVER_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// TLS certificate chain for gRPC (PEM).
    #[arg(long, global = true, env = "PALAVER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key for gRPC (PEM).
    #[arg(long, global = true, env = "PALAVER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Longest a query waits for its minimum position, in ms [default: 5000].
    #[arg(long, global = true, env = "PALAVER_READ_YOUR_WRITES_TIMEOUT_MS")]
    pub read_your_writes_timeout_ms: Option<u64>,
    /// For end-to-end tests only: lets clients set the server's clock.
    #[arg(long, global = true, env = "PALAVER_UNSAFE_TEST_CLOCK", hide = true)]
    pub unsafe_test_clock: Option<bool>,
    /// Event store: sqlite, postgres or kurrentdb.
    #[arg(long, global = true, env = "PALAVER_STORE")]
    pub store: Option<StoreKind>,
    /// Read models, checkpoints and leases: sqlite or postgres.
    #[arg(long, global = true, env = "PALAVER_READ_MODELS")]
    pub read_models: Option<ReadModelsKind>,
    /// PostgreSQL connection URL.
    #[arg(long, global = true, env = "PALAVER_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<Secret>,
    /// PostgreSQL schema.
    #[arg(long, global = true, env = "PALAVER_POSTGRES_SCHEMA")]
    pub postgres_schema: Option<String>,
    /// PostgreSQL schema of the read models [default: palaver_read].
    #[arg(long, global = true, env = "PALAVER_READ_MODELS_SCHEMA")]
    pub read_models_schema: Option<String>,
    /// KurrentDB connection string.
    #[arg(long, global = true, env = "PALAVER_KURRENTDB_URL", hide_env_values = true)]
    pub kurrentdb_url: Option<Secret>,
    /// This instance's name in leases.
    #[arg(long, global = true, env = "PALAVER_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Webhook subscription verify token.
    #[arg(
        long,
        global = true,
        env = "PALAVER_WHATSAPP_VERIFY_TOKEN",
        hide_env_values = true
    )]
    pub whatsapp_verify_token: Option<Secret>,
    /// Meta app secret (webhook signatures).
    #[arg(
        long,
        global = true,
        env = "PALAVER_WHATSAPP_APP_SECRET",
        hide_env_values = true
    )]
    pub whatsapp_app_secret: Option<Secret>,
    /// Cloud API access token.
    #[arg(
        long,
        global = true,
        env = "PALAVER_WHATSAPP_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub whatsapp_access_token: Option<Secret>,
    /// Cloud API base URL.
    #[arg(long, global = true, env = "PALAVER_WHATSAPP_API_BASE_URL")]
    pub whatsapp_api_base_url: Option<String>,
    /// Graph API version, e.g. v25.0.
    #[arg(long, global = true, env = "PALAVER_WHATSAPP_API_VERSION")]
    pub whatsapp_api_version: Option<String>,
    /// Most messages sent per second.
    #[arg(long, global = true, env = "PALAVER_WHATSAPP_SEND_RATE")]
    pub whatsapp_send_rate: Option<u32>,
    /// Campaign recipients sent per second.
    #[arg(long, global = true, env = "PALAVER_CAMPAIGN_SEND_RATE")]
    pub campaign_send_rate: Option<u32>,
    /// Largest webhook body accepted, in bytes.
    #[arg(long, global = true, env = "PALAVER_WEBHOOK_BODY_LIMIT_BYTES")]
    pub webhook_body_limit_bytes: Option<usize>,
    /// Minutes before a window closes that the inbox is warned.
    #[arg(long, global = true, env = "PALAVER_WINDOW_WARNING_MINUTES")]
    pub window_warning_minutes: Option<u32>,
    /// Seconds a lease lasts unless renewed (several instances).
    #[arg(long, global = true, env = "PALAVER_LEASE_TTL_SECONDS")]
    pub lease_ttl_seconds: Option<u32>,
}

impl Overrides {
    /// Defaults, then the file, then these.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading config file {}: {e}", path.display()))?;
                toml::from_str::<Config>(&text)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?
            }
            None => Config::default(),
        };
        macro_rules! take {
            ($($field:ident),*) => { $(if let Some(value) = &self.$field { config.$field = value.clone(); })* };
        }
        take!(
            data_dir,
            grpc_addr,
            http_addr,
            log,
            max_event_bytes,
            read_your_writes_timeout_ms,
            unsafe_test_clock,
            store,
            read_models,
            postgres_schema,
            read_models_schema,
            whatsapp_api_base_url,
            whatsapp_api_version,
            whatsapp_send_rate,
            campaign_send_rate,
            webhook_body_limit_bytes,
            window_warning_minutes,
            lease_ttl_seconds
        );
        macro_rules! take_optional {
            ($($field:ident),*) => { $(if self.$field.is_some() { config.$field.clone_from(&self.$field); })* };
        }
        take_optional!(
            postgres_url,
            kurrentdb_url,
            instance_id,
            whatsapp_verify_token,
            whatsapp_app_secret,
            whatsapp_access_token
        );
        take_optional!(tokens_file, tls_cert, tls_key);
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            anyhow::bail!("TLS needs both tls_cert and tls_key");
        }
        let needs_postgres =
            config.store == StoreKind::Postgres || config.read_models == ReadModelsKind::Postgres;
        if needs_postgres && config.postgres_url.is_none() {
            anyhow::bail!("store = postgres and read_models = postgres need postgres_url");
        }
        if config.store == StoreKind::Kurrentdb && config.kurrentdb_url.is_none() {
            anyhow::bail!("store = kurrentdb needs kurrentdb_url");
        }
        if !(1..=86_400).contains(&config.lease_ttl_seconds) {
            anyhow::bail!("lease_ttl_seconds must be from 1 to 86400 (a day)");
        }
        if config.whatsapp_send_rate == 0 || config.campaign_send_rate == 0 {
            anyhow::bail!("whatsapp_send_rate and campaign_send_rate must be at least 1 per second");
        }
        Ok(config)
    }
}

impl Config {
    pub fn event_store_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }

    /// This instance's name in leases: `instance_id`, or host name and
    /// process id (unique among live processes, which is what a lease
    /// holder must be).
    pub fn instance_name(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "palaver".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }

    /// How long a lease lasts unless renewed.
    pub fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.lease_ttl_seconds))
    }

    pub fn read_models_path(&self) -> PathBuf {
        self.data_dir.join("read-models.db")
    }

    pub fn tokens_path(&self) -> PathBuf {
        self.tokens_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tokens.toml"))
    }

    pub fn first_token_path(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }

    /// The settings as TOML.
    pub fn dump(&self) -> anyhow::Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// The Cloud API client, when an access token is configured (without
    /// one, nothing is sent and templates cannot be pulled).
    pub fn cloud_api(&self) -> anyhow::Result<Option<palaver_whatsapp::CloudApi>> {
        let Some(token) = &self.whatsapp_access_token else {
            return Ok(None);
        };
        let config = palaver_whatsapp::CloudApiConfig {
            base_url: self.whatsapp_api_base_url.clone(),
            api_version: self.whatsapp_api_version.clone(),
            ..palaver_whatsapp::CloudApiConfig::new(token.expose())
        };
        let api = palaver_whatsapp::CloudApi::new(config)
            .map_err(|e| anyhow::anyhow!("the Cloud API client: {e}"))?;
        Ok(Some(api))
    }

    pub fn limits(&self) -> palaver_store::Limits {
        palaver_store::Limits {
            max_event_bytes: self.max_event_bytes,
            ..palaver_store::Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("palaver.toml");
        std::fs::write(&file, "log = \"debug\"\ngrpc_addr = \"0.0.0.0:6000\"\n").unwrap();
        let overrides = Overrides {
            config: Some(file.clone()),
            grpc_addr: Some("127.0.0.1:7000".parse().unwrap()),
            ..Overrides::default()
        };
        let config = overrides.resolve().unwrap();
        assert_eq!(config.log, "debug");
        assert_eq!(config.grpc_addr, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(config.http_addr, Config::default().http_addr);
        // What --dump-config prints reads back as the same settings.
        let dumped = config.dump().unwrap();
        assert_eq!(toml::from_str::<Config>(&dumped).unwrap(), config);
    }

    #[test]
    fn unknown_keys_and_half_tls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("palaver.toml");
        std::fs::write(&file, "grpc_adr = \"0.0.0.0:6000\"\n").unwrap();
        let error = Overrides {
            config: Some(file),
            ..Overrides::default()
        }
        .resolve()
        .unwrap_err();
        assert!(error.to_string().contains("grpc_adr"), "{error}");
        let half = Overrides {
            tls_cert: Some("cert.pem".into()),
            ..Overrides::default()
        };
        assert!(half.resolve().is_err());
    }
}
