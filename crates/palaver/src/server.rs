//! `palaver serve`: wires the store, the read models, the application, gRPC
//! and HTTP together, and takes them down in order on SIGINT/SIGTERM.

use std::{process::ExitCode, sync::Arc, time::Duration};

use palaver_api::{ApiOptions, Tokens};
use palaver_app::{App, Clock, ManualClock, SystemClock};
use palaver_projections::{
    PgReadModelDb, Projections, ReadModelDb, SharedLease, models, queries::ReadModels,
};
use palaver_store::EventStore;
use palaver_store_postgres::{PgLeases, PostgresOptions};
use tokio::sync::watch;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::{
    config::{Config, ReadModelsKind, StoreKind},
    http,
    metrics::{GrpcMetricsLayer, MeteredStore, Metrics},
    webhook::WebhookState,
    workers,
};

/// How long shutdown waits for the projection loop to finish its batch.
const PROJECTION_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for calls in flight (and for clients to
/// acknowledge the end of their connections) before it closes anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    // Installed first, so a signal during startup is not lost.
    let signal = shutdown_signal();
    let metrics = Metrics::default();

    let store = open_event_store(config, &metrics).await?;
    let head = store.head().await?;
    tracing::info!(store = ?config.store, %head, "event store open");

    let (tokens, created) = Tokens::load_or_create(&config.tokens_path(), &config.first_token_path())?;
    if let Some(path) = created {
        // Never the token itself: only where to find it.
        tracing::warn!(
            token_file = %path.display(),
            "no API tokens were configured: created an admin token for every workspace; \
             it is in this file, readable by its owner only"
        );
    }

    let (stop, stopped) = watch::channel(false);
    let leases = shared_leases(config).await?;
    let (projections, read_models) =
        open_read_models(config, &store, leases.clone(), wait_for(stopped.clone())).await?;
    metrics.watch_inbox_cache(read_models.clone());

    let manual_clock = config.unsafe_test_clock.then(|| {
        tracing::warn!(
            "unsafe_test_clock is on: clients can set this server's clock; never do this in production"
        );
        Arc::new(ManualClock::new(chrono::Utc::now()))
    });
    let clock: Arc<dyn Clock> = match &manual_clock {
        Some(clock) => clock.clone(),
        None => Arc::new(SystemClock),
    };
    let app = App::new(Arc::clone(&store), projections.clone(), read_models, clock)
        .with_read_timeout(Duration::from_millis(config.read_your_writes_timeout_ms));

    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding gRPC to {}: {e}", config.grpc_addr))?;
    let http_listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding HTTP to {}: {e}", config.http_addr))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(palaver_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let options = ApiOptions {
        query_timeout: Duration::from_millis(config.read_your_writes_timeout_ms),
        shutdown: stopped.clone(),
        test_clock: manual_clock,
        templates: config.cloud_api()?,
        intake: Some(palaver_workers::intake::Intake::new(app.clone())),
    };
    let mut builder = Server::builder();
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let identity = Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
        tracing::info!(cert = %cert.display(), "gRPC over TLS");
    }
    let grpc = builder
        .layer(GrpcMetricsLayer(metrics.clone()))
        .add_routes(palaver_api::routes(app.clone(), tokens, options))
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(
            // Nagle off: a small response held back for the peer's delayed
            // ACK is a 40 ms stall (seen as the send-reply p99 before this).
            // The builder's own `tcp_nodelay` only applies to sockets tonic
            // binds itself, not to a listener handed in.
            tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
            wait_for(stopped.clone()),
        );
    let grpc = tokio::spawn(grpc);
    let webhooks = WebhookState {
        app: app.clone(),
        metrics: metrics.clone(),
        verify_token: config.whatsapp_verify_token.clone(),
        app_secret: config.whatsapp_app_secret.clone(),
    };
    if config.whatsapp_app_secret.is_none() {
        tracing::warn!("whatsapp_app_secret is not set: WhatsApp webhooks are refused until it is");
    }
    let http = tokio::spawn(http::serve(
        http_listener,
        projections.clone(),
        metrics,
        head,
        webhooks,
        config.webhook_body_limit_bytes,
        wait_for(stopped.clone()),
    ));
    let workers = workers::start(config, &app, leases, stopped.clone())?;

    tracing::info!(grpc = %grpc_addr, http = %http_addr, "listening; waiting for SIGINT or SIGTERM");
    signal.await;
    tracing::info!("shutting down: no new calls; finishing the ones in flight");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let grpc = grpc.await;
        let http = http.await;
        (grpc, http)
    })
    .await;
    match drained {
        Ok((grpc, http)) => {
            grpc??;
            http??;
        }
        Err(_) => tracing::warn!(
            timeout = ?DRAIN_TIMEOUT,
            "calls or connections were still open after the drain timeout; closing them"
        ),
    }
    // Workers finish the events in flight and save their checkpoints.
    workers.stop(DRAIN_TIMEOUT).await;
    // The projection loop finishes its batch; the store closes (its queued
    // appends committed) when the last handle is dropped.
    let stopped = tokio::time::timeout(PROJECTION_STOP_TIMEOUT, projections.stopped()).await;
    if stopped.is_err() {
        tracing::warn!(
            timeout = ?PROJECTION_STOP_TIMEOUT,
            "the projection loop did not stop in time: the read models stay unsynced, and are \
             rebuilt if the OS restarts before the next clean stop"
        );
    }
    drop(projections);
    drop(store);
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The configured event store, metered. Where the read models live is
/// separate (`read_models`, see [`open_read_models`]).
async fn open_event_store(config: &Config, metrics: &Metrics) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(match config.store {
        StoreKind::Sqlite => {
            let store = config.open_store()?;
            tracing::info!(path = %store.path().display(), "embedded SQLite store");
            Arc::new(MeteredStore::new(store, metrics.clone()))
        }
        StoreKind::Postgres => {
            let options = palaver_store_postgres::PostgresOptions {
                schema: config.postgres_schema.clone(),
                limits: config.limits(),
                ..Default::default()
            };
            let store = palaver_store_postgres::PostgresStore::open(
                &secret(&config.postgres_url, "postgres_url")?,
                options,
            )
            .await
            .map_err(|e| anyhow::anyhow!("opening the PostgreSQL store: {e}"))?;
            tracing::info!(schema = %config.postgres_schema, "PostgreSQL store");
            Arc::new(MeteredStore::new(store, metrics.clone()))
        }
        StoreKind::Kurrentdb => {
            let options = palaver_store_kurrentdb::KurrentDbOptions {
                limits: config.limits(),
                ..Default::default()
            };
            let store = palaver_store_kurrentdb::KurrentDbStore::connect(
                &secret(&config.kurrentdb_url, "kurrentdb_url")?,
                options,
            )
            .map_err(|e| anyhow::anyhow!("connecting to KurrentDB: {e}"))?;
            tracing::info!("KurrentDB store");
            Arc::new(MeteredStore::new(store, metrics.clone()))
        }
    })
}

/// The leases of instances that share PostgreSQL (the store is not the
/// embedded one and `postgres_url` is set), opened once for the projection
/// loop and the workers; `None` when this is the only instance.
pub(crate) async fn shared_leases(config: &Config) -> anyhow::Result<Option<PgLeases>> {
    let Some(url) = config
        .postgres_url
        .as_ref()
        .filter(|_| config.store != StoreKind::Sqlite)
    else {
        return Ok(None);
    };
    let options = PostgresOptions {
        schema: config.postgres_schema.clone(),
        ..Default::default()
    };
    let leases = PgLeases::open(url.expose(), &options)
        .await
        .map_err(|e| anyhow::anyhow!("opening the leases in PostgreSQL: {e}"))?;
    Ok(Some(leases))
}

/// The read models where `read_models` says (the file in the data folder,
/// or schema `read_models_schema` at `postgres_url`): the loop that keeps
/// them following `store` (taking turns under `leases` if given), and the
/// side that reads them.
async fn open_read_models(
    config: &Config,
    store: &Arc<dyn EventStore>,
    leases: Option<PgLeases>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(Projections, ReadModels)> {
    Ok(match config.read_models {
        ReadModelsKind::Sqlite => {
            let path = config.read_models_path();
            let db = ReadModelDb::open(&path, models::all())?;
            let projections = Projections::start(Arc::clone(store), db, &path, shutdown);
            // This process alone writes the file: its readers may keep
            // first inbox pages until the projector next commits.
            let read_models = ReadModels::open(&path).cached(projections.changes());
            (projections, read_models)
        }
        ReadModelsKind::Postgres => {
            let url = secret(&config.postgres_url, "postgres_url")?;
            let schema = &config.read_models_schema;
            let db = PgReadModelDb::open(&url, schema, models::all())
                .await
                .map_err(|e| anyhow::anyhow!("opening the PostgreSQL read models: {e}"))?;
            tracing::info!(location = db.location(), "PostgreSQL read models");
            let read_models = ReadModels::open_postgres(&url, schema)?;
            let projections = match leases {
                // Other instances may share these tables: take turns.
                Some(leases) => {
                    let lease = SharedLease {
                        leases,
                        holder: config.instance_name(),
                        ttl: config.lease_ttl(),
                    };
                    Projections::start_shared(Arc::clone(store), db, lease, shutdown)
                }
                // The only instance always projects. No file: a rebuild
                // goes through a scratch schema.
                None => Projections::start(Arc::clone(store), db, "", shutdown),
            };
            (projections, read_models)
        }
    })
}

/// A secret setting's value, or an error naming the missing setting.
fn secret(value: &Option<crate::config::Secret>, name: &str) -> anyhow::Result<String> {
    value
        .as_ref()
        .map(|s| s.expose().to_owned())
        .ok_or_else(|| anyhow::anyhow!("{name} is not set"))
}

/// Resolves once `stop` turns true.
async fn wait_for(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, not when it is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let interrupt = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async {
            match terminate {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
}
