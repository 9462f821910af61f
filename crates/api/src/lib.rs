//! Palaver's gRPC facade (package `palaver.v1`, `proto/palaver/v1/api.proto`).
//!
//! Handlers are thin: check the caller's token scope, convert the request
//! ([`convert`]), call the application layer (`palaver-app`), convert the
//! answer. Errors become `tonic::Status` in one exhaustive place
//! ([`status`]).
//!
//! - [`auth`]: bearer tokens scoped to workspaces and roles.
//! - [`services`]: one module per gRPC service. ListInbox has a route of
//!   its own that answers polls with pages encoded once
//!   ([`services::InboxRoutes`], ADR 0011).

pub mod auth;
pub mod convert;
pub mod services;
pub mod status;

use std::{sync::Arc, time::Duration};

pub use auth::{Principal, Role, Tokens};
use palaver_app::{App, ManualClock};
use palaver_proto::v1::{
    campaign_service_server::CampaignServiceServer, channel_service_server::ChannelServiceServer,
    contact_service_server::ContactServiceServer, conversation_service_server::ConversationServiceServer,
    event_service_server::EventServiceServer, test_clock_service_server::TestClockServiceServer,
    webhook_service_server::WebhookServiceServer,
};
use palaver_whatsapp::CloudApi;
use palaver_workers::intake::Intake;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;

/// How the API behaves beyond what each call says.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Longest a query waits for the read models to reach its minimum position.
    pub query_timeout: Duration,
    /// Turns true at shutdown: event feeds end so the server can drain.
    pub shutdown: watch::Receiver<bool>,
    /// The settable clock of the test mode; `None` in production, and then
    /// the test-clock service is not served at all.
    pub test_clock: Option<Arc<ManualClock>>,
    /// The Cloud API client `PullTemplates` reads catalogues with; `None`
    /// when no access token is configured, and then that call is refused
    /// with `whatsapp_not_configured`.
    pub templates: Option<CloudApi>,
    /// The webhook intake the webhook service lists and reprocesses
    /// payloads with; `None` where no intake runs (that service then
    /// answers `webhook_intake_not_running`).
    pub intake: Option<Intake>,
}

/// Every Palaver gRPC service, each behind the token check.
pub fn routes(app: App, tokens: Tokens, options: ApiOptions) -> tonic::service::Routes {
    let check = tokens.interceptor();
    let api = services::Api {
        app,
        options: options.clone(),
    };
    let mut routes =
        tonic::service::Routes::new(ChannelServiceServer::with_interceptor(api.clone(), check.clone()))
            .add_service(ConversationServiceServer::with_interceptor(
                api.clone(),
                check.clone(),
            ))
            .add_service(ContactServiceServer::with_interceptor(api.clone(), check.clone()))
            .add_service(CampaignServiceServer::with_interceptor(
                api.clone(),
                check.clone(),
            ))
            // ListInbox answers polls from encoded pages (ADR 0011).
            .add_service(InterceptedService::new(
                services::InboxRoutes::new(api.clone()),
                check.clone(),
            ))
            .add_service(EventServiceServer::with_interceptor(api.clone(), check.clone()))
            .add_service(WebhookServiceServer::with_interceptor(api.clone(), check.clone()));
    if let Some(clock) = options.test_clock {
        routes = routes.add_service(TestClockServiceServer::with_interceptor(
            services::TestClock { clock },
            check,
        ));
    }
    routes
}
