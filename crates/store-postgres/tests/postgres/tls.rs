//! TLS as the URL's `sslmode` says, against the test server (whose `ssl`
//! setting is read first: with it off, `prefer` falls back to plain and
//! `require` is refused for that; with it on, `require` checks the
//! certificate, which a test server's is not issued by a public
//! authority). Assumes the test URL sets no `sslmode` of its own.

use std::{net::IpAddr, path::PathBuf};

use palaver_store::Error;
use palaver_store_postgres::{
    PostgresOptions, PostgresStore,
    connect::{self, Connector, MAX_IDENTIFIER_LEN, SchemaName, Session, SslMode},
};

use crate::support::url;

const SESSION: Session<'static> = Session {
    role: "tls-test",
    settings: "",
};

/// The test URL with `params` added.
fn with_params(params: &str) -> String {
    let base = url();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{params}")
}

fn connector(url: &str) -> connect::Result<Connector> {
    Connector::new(
        url,
        SchemaName::new("palaver_tls_test", MAX_IDENTIFIER_LEN, "schema").unwrap(),
    )
}

/// Whether a session of `connector` runs over TLS.
async fn encrypted(connector: &Connector) -> connect::Result<bool> {
    let client = connector.connect(SESSION).await?;
    Ok(client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0))
}

/// Whether the server offers TLS, and its certificate's file when this
/// process can read it.
async fn server_tls() -> (bool, Option<PathBuf>) {
    let client = connector(&with_params("sslmode=disable"))
        .unwrap()
        .connect(SESSION)
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('ssl'), current_setting('ssl_cert_file'), \
             current_setting('data_directory')",
            &[],
        )
        .await
        .unwrap();
    let (ssl, cert, data): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    // A relative path is the data directory's.
    let cert = PathBuf::from(data).join(cert);
    let readable = std::fs::File::open(&cert).is_ok();
    (ssl == "on", readable.then_some(cert))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_connects_in_plain_and_prefer_uses_tls_when_offered() {
    let (server_tls, _) = server_tls().await;
    let plain = connector(&with_params("sslmode=disable")).unwrap();
    assert_eq!(plain.ssl_mode(), SslMode::Disable);
    assert!(!encrypted(&plain).await.unwrap());

    let default = connector(&url()).unwrap();
    assert_eq!(default.ssl_mode(), SslMode::Prefer);
    assert_eq!(encrypted(&default).await.unwrap(), server_tls);
    let prefer = connector(&with_params("sslmode=prefer")).unwrap();
    assert_eq!(encrypted(&prefer).await.unwrap(), server_tls);

    // The store itself, both ways.
    for params in ["sslmode=disable", "sslmode=prefer"] {
        let schema = format!("palaver_test_{}", uuid::Uuid::new_v4().simple());
        let store = PostgresStore::open(&with_params(params), PostgresOptions::in_schema(&schema))
            .await
            .unwrap_or_else(|e| panic!("{params}: {e}"));
        drop(store);
        PostgresStore::drop_schema(&url(), &schema).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_refuses_a_server_it_cannot_check_and_says_tls() {
    let (server_tls, _) = server_tls().await;
    let url = with_params("sslmode=require");
    let connector = match connector(&url) {
        Ok(connector) => connector,
        // A machine without CA certificates cannot check anything.
        Err(error @ connect::Error::Tls(_)) => {
            assert!(error.to_string().contains("TLS"), "{error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let message = connector.connect(SESSION).await.unwrap_err().to_string();
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains("sslmode=require"), "{message}");
    if server_tls {
        // Offered, but not by a certificate the platform's roots vouch for.
        assert!(message.contains("certificate"), "{message}");
    } else {
        assert!(message.contains("server does not support TLS"), "{message}");
    }

    // The store reports it the same way.
    match PostgresStore::open(&url, PostgresOptions::in_schema("palaver_tls_test")).await {
        Err(Error::Backend { message, .. }) => assert!(message.contains("TLS"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// With the server's own certificate as the root: `verify-ca` accepts it
/// whatever the host is called, `verify-full` only under a name the
/// certificate was issued for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslrootcert_checks_the_chain_and_verify_full_the_name() {
    let (true, Some(cert)) = server_tls().await else {
        eprintln!("skipped: the test server has no TLS, or its certificate file cannot be read");
        return;
    };
    let root = cert.to_str().unwrap();
    let verify_ca = connector(&with_params(&format!("sslmode=verify-ca&sslrootcert={root}"))).unwrap();
    assert_eq!(verify_ca.ssl_mode(), SslMode::VerifyCa);
    assert!(encrypted(&verify_ca).await.unwrap());

    // The same server under a name no certificate is issued for: `host`
    // names it for TLS, `hostaddr` is where the connection goes.
    let config: tokio_postgres::Config = url().parse().unwrap();
    let Some(tokio_postgres::config::Host::Tcp(address)) = config.get_hosts().first() else {
        eprintln!("skipped: the test server is not reached over TCP");
        return;
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        eprintln!("skipped: the test server's host is not an IP address");
        return;
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let dbname = config.get_dbname().unwrap_or(user);
    let password = match config.get_password() {
        Some(password) => format!(
            " password='{}'",
            String::from_utf8_lossy(password)
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
        ),
        None => String::new(),
    };
    let renamed = |mode: &str| {
        format!(
            "host=palaver-tls-test.invalid hostaddr={address} port={port} user={user}{password} \
             dbname={dbname} sslmode={mode} sslrootcert='{root}'"
        )
    };
    assert!(
        encrypted(&connector(&renamed("verify-ca")).unwrap())
            .await
            .unwrap()
    );
    for mode in ["verify-full", "require"] {
        let message = connector(&renamed(mode))
            .unwrap()
            .connect(SESSION)
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("TLS"), "{mode}: {message}");
        assert!(message.contains("not valid for name"), "{mode}: {message}");
    }
}
