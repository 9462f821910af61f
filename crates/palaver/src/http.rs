//! The HTTP side of `palaver serve`: health, readiness, metrics and the
//! WhatsApp webhooks ([`crate::webhook`]).

use std::net::SocketAddr;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
};
use palaver_projections::{Projections, Status};
use palaver_store::Position;

use crate::metrics::Metrics;
use crate::webhook::{self, WebhookState};

#[derive(Clone, Debug)]
struct HttpState {
    projections: Projections,
    metrics: Metrics,
    /// The store's head at start: ready once every read model is there.
    ready_at: Position,
}

/// Serves HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    projections: Projections,
    metrics: Metrics,
    ready_at: Position,
    webhooks: WebhookState,
    body_limit: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = HttpState {
        projections,
        metrics,
        ready_at,
    };
    let whatsapp = Router::new()
        .route(
            "/webhooks/whatsapp",
            get(webhook::handshake).post(webhook::receive),
        )
        // Larger bodies are refused with 413 before they are read whole.
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(webhooks);
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
        .merge(whatsapp);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the read models have caught up with what was stored at start,
/// and the projection loop is running.
async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match state.projections.status() {
        Status::Failed(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("projections failed: {reason}\n"),
        ),
        Status::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".to_owned()),
        Status::Running if state.projections.position() < state.ready_at => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "catching up: {} of {}\n",
                state.projections.position(),
                state.ready_at
            ),
        ),
        Status::Running => (StatusCode::OK, "ready\n".to_owned()),
    }
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state.projections).await,
    )
}
