//! Errors become gRPC statuses here, and only here. Each match is
//! exhaustive: a new error variant does not compile until someone decides
//! what a client should see.
//!
//! Machine-readable details travel in metadata: `palaver-field` names the
//! request field of an INVALID_ARGUMENT, `palaver-reason` gives the reason
//! of a FAILED_PRECONDITION (`window_closed`, `template_not_approved`, …).

use palaver_projections::Error as ProjectionError;
use palaver_store::Error as StoreError;
use palaver_whatsapp::ClientError as CloudApiError;
use palaver_workers::ProcessError;
use tonic::{Code, Status, metadata::MetadataValue};

/// INVALID_ARGUMENT naming the field.
pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    with_metadata(
        Status::invalid_argument(format!("{field}: {reason}")),
        "palaver-field",
        field,
    )
}

/// FAILED_PRECONDITION with a machine-readable reason.
pub fn precondition(reason_code: &str, message: impl Into<String>) -> Status {
    with_metadata(
        Status::failed_precondition(message),
        "palaver-reason",
        reason_code,
    )
}

fn with_metadata(mut status: Status, key: &'static str, value: &str) -> Status {
    if let Ok(value) = MetadataValue::try_from(value) {
        status.metadata_mut().insert(key, value);
    }
    status
}

/// What a client sees of a store error.
pub fn store_status(error: StoreError) -> Status {
    let message = error.to_string();
    match error {
        StoreError::WrongExpectedRevision { .. } | StoreError::EventIdConflict { .. } => {
            Status::aborted(message)
        }
        StoreError::InvalidStreamName { .. } => invalid("stream", message),
        StoreError::InvalidEventType { .. } => invalid("event_type", message),
        StoreError::InvalidMetadata { .. } => invalid("metadata", message),
        StoreError::EventTooLarge { .. } | StoreError::BatchTooLarge { .. } => invalid("content", message),
        StoreError::EmptyBatch | StoreError::DuplicateIdInBatch { .. } => Status::internal(message),
        StoreError::SchemaTooNew { .. }
        | StoreError::NotAnEventStore { .. }
        | StoreError::Locked { .. }
        | StoreError::Corrupt { .. } => Status::internal(message),
        StoreError::Closed | StoreError::Backend { .. } => Status::unavailable(message),
    }
}

/// What a client sees of a read-model error.
pub fn projection_status(error: ProjectionError) -> Status {
    let message = error.to_string();
    match error {
        ProjectionError::NotCaughtUp { .. } => Status::new(Code::DeadlineExceeded, message),
        ProjectionError::InvalidArgument { field, .. } => invalid(field, message),
        ProjectionError::Stopped(_) | ProjectionError::Database { .. } => Status::unavailable(message),
        ProjectionError::Undecodable { .. } | ProjectionError::SchemaTooNew { .. } => {
            Status::internal(message)
        }
        ProjectionError::Store(error) => store_status(error),
    }
}

/// What a client sees of an application error: the one exhaustive mapping.
pub fn app_status(error: palaver_app::Error) -> Status {
    use palaver_app::Error;
    let message = error.to_string();
    match error {
        Error::InvalidArgument { field, .. } => invalid(field, message),
        Error::NotFound { .. } => Status::not_found(message),
        Error::FailedPrecondition(precondition) => precondition_status(&precondition, message),
        Error::Conflict { .. } => Status::aborted(message),
        Error::UnknownPhoneNumberId(_) => precondition("unknown_phone_number_id", message),
        Error::NotCaughtUp { .. } => Status::new(Code::DeadlineExceeded, message),
        Error::Store(error) => store_status(error),
        Error::ReadModels(error) => projection_status(error),
        Error::Internal(_) => Status::internal(message),
    }
}

fn precondition_status(refusal: &palaver_app::Precondition, message: String) -> Status {
    precondition(refusal.reason(), message)
}

/// The server has no Cloud API access token, so it cannot read from
/// WhatsApp. The operator sets `whatsapp_access_token`.
pub fn whatsapp_not_configured() -> Status {
    precondition(
        "whatsapp_not_configured",
        "this server has no WhatsApp Cloud API access token (whatsapp_access_token)",
    )
}

/// The server runs without the webhook intake, so payloads cannot be
/// listed or handled again here.
pub fn intake_not_running() -> Status {
    precondition(
        "webhook_intake_not_running",
        "this server does not run the webhook intake",
    )
}

/// No payload is stored under this id.
pub fn unknown_payload(payload_id: palaver_domain::ids::PayloadId) -> Status {
    Status::not_found(format!("no webhook payload {payload_id}"))
}

/// What a client sees of a Cloud API error while the template catalogue is
/// read. Transient trouble (unreachable, rate-limited, 5xx) is UNAVAILABLE,
/// so a client retries later; what retrying cannot fix is
/// FAILED_PRECONDITION with a reason for the operator.
pub fn cloud_api_status(error: CloudApiError) -> Status {
    let message = error.to_string();
    match error {
        // The only argument of a catalogue read is the account id.
        CloudApiError::InvalidArgument(_) => invalid("business_account_id", message),
        CloudApiError::Transport { .. } => Status::unavailable(message),
        CloudApiError::Api { status, .. } if status == 429 || status >= 500 => Status::unavailable(message),
        CloudApiError::Api { .. } => precondition("whatsapp_refused", message),
        CloudApiError::Unauthorized { .. } => precondition("whatsapp_unauthorized", message),
        CloudApiError::Config(_) => precondition("whatsapp_not_configured", message),
        // Meta's answer did not have the expected shape: a bug to report,
        // not something a retry fixes.
        CloudApiError::Decode { .. } | CloudApiError::Paging { .. } => Status::internal(message),
    }
}

/// What a client sees of a webhook intake failure: the store or the read
/// models failed (refusals are outcomes, not errors), so retry later.
pub fn intake_status(error: ProcessError) -> Status {
    Status::unavailable(error.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &Status) -> &str {
        status
            .metadata()
            .get("palaver-reason")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn api(status: u16) -> CloudApiError {
        CloudApiError::Api {
            status,
            code: None,
            message: "no".into(),
        }
    }

    #[test]
    fn transient_cloud_api_trouble_is_unavailable() {
        let unreachable = CloudApiError::Transport {
            reason: "timed out".into(),
        };
        for error in [unreachable, api(429), api(500), api(503)] {
            assert_eq!(cloud_api_status(error).code(), Code::Unavailable);
        }
    }

    #[test]
    fn what_a_retry_cannot_fix_has_a_reason() {
        let unauthorized = cloud_api_status(CloudApiError::Unauthorized {
            status: 401,
            code: Some(190),
            message: "expired".into(),
        });
        assert_eq!(unauthorized.code(), Code::FailedPrecondition);
        assert_eq!(reason(&unauthorized), "whatsapp_unauthorized");
        let refused = cloud_api_status(api(400));
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(reason(&refused), "whatsapp_refused");
        assert_eq!(reason(&whatsapp_not_configured()), "whatsapp_not_configured");
        let bad_id = cloud_api_status(CloudApiError::InvalidArgument("not digits".into()));
        assert_eq!(bad_id.code(), Code::InvalidArgument);
        assert_eq!(
            bad_id.metadata().get("palaver-field").unwrap(),
            "business_account_id"
        );
    }
}
