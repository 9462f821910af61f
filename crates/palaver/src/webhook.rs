//! `/webhooks/whatsapp`: the WhatsApp Cloud API's webhooks.
//!
//! `GET` answers Meta's subscription handshake. `POST` checks, in this
//! order, that the body fits the configured limit (413), that it carries a
//! valid `X-Hub-Signature-256` of the app secret (401; nothing is parsed
//! before), and that it is a notification Palaver can read (400 with the
//! JSON path at fault); then it stores the raw body durably and only then
//! answers 200. Anything that fails after that point is the intake worker's
//! to record, never a reason to make Meta redeliver. A store failure answers
//! 503, so Meta retries.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use palaver_app::App;
use palaver_whatsapp::handshake::{SubscriptionQuery, verify_subscription};
use palaver_whatsapp::{signature, webhook};

use crate::config::Secret;
use crate::metrics::Metrics;

/// What the webhook routes need.
#[derive(Clone, Debug)]
pub struct WebhookState {
    pub app: App,
    pub metrics: Metrics,
    pub verify_token: Option<Secret>,
    pub app_secret: Option<Secret>,
}

/// `GET /webhooks/whatsapp`: the subscription handshake.
pub async fn handshake(
    State(state): State<WebhookState>,
    Query(query): Query<SubscriptionQuery>,
) -> impl IntoResponse {
    let Some(token) = &state.verify_token else {
        return (
            StatusCode::FORBIDDEN,
            "whatsapp_verify_token is not configured\n".to_owned(),
        );
    };
    match verify_subscription(&query, token.expose()) {
        Ok(challenge) => (StatusCode::OK, challenge),
        Err(error) => (StatusCode::FORBIDDEN, format!("{error}\n")),
    }
}

/// `POST /webhooks/whatsapp`: verify, parse, store, acknowledge.
pub async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let started = Instant::now();
    let (outcome, status, message) = accept(&state, &headers, body).await;
    state
        .metrics
        .record_webhook(outcome, started.elapsed().as_secs_f64());
    (status, message)
}

async fn accept(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Bytes,
) -> (&'static str, StatusCode, String) {
    let Some(secret) = &state.app_secret else {
        return (
            "unsigned",
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are off: whatsapp_app_secret is not configured\n".to_owned(),
        );
    };
    let header = headers
        .get("x-hub-signature-256")
        .map(|value| value.to_str().unwrap_or("\u{fffd}"));
    if let Err(error) = signature::verify(secret.expose().as_bytes(), &body, header) {
        return ("unsigned", StatusCode::UNAUTHORIZED, format!("{error}\n"));
    }
    if let Err(error) = webhook::parse_items(&body) {
        tracing::warn!(%error, "signed webhook refused: not a notification Palaver can read");
        return ("invalid", StatusCode::BAD_REQUEST, format!("{error}\n"));
    }
    match state.app.receive_webhook(body.to_vec()).await {
        Ok(stored) if stored.duplicate => ("duplicate", StatusCode::OK, "duplicate\n".to_owned()),
        Ok(stored) => {
            tracing::debug!(payload_id = %stored.payload_id, position = %stored.position, "webhook stored");
            ("stored", StatusCode::OK, "ok\n".to_owned())
        }
        Err(error) => {
            tracing::error!(%error, "could not store a webhook; Meta will redeliver it");
            (
                "error",
                StatusCode::SERVICE_UNAVAILABLE,
                "could not store the payload; retry\n".to_owned(),
            )
        }
    }
}
