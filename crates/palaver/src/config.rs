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
            unsafe_test_clock
        );
        if self.tokens_file.is_some() {
            config.tokens_file.clone_from(&self.tokens_file);
        }
        if self.tls_cert.is_some() {
            config.tls_cert.clone_from(&self.tls_cert);
        }
        if self.tls_key.is_some() {
            config.tls_key.clone_from(&self.tls_key);
        }
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            anyhow::bail!("TLS needs both tls_cert and tls_key");
        }
        Ok(config)
    }
}

impl Config {
    pub fn event_store_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
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
