//! Errors become gRPC statuses here, and only here. Each match is
//! exhaustive: a new error variant does not compile until someone decides
//! what a client should see.
//!
//! Machine-readable details travel in metadata: `palaver-field` names the
//! request field of an INVALID_ARGUMENT, `palaver-reason` gives the reason
//! of a FAILED_PRECONDITION (`window_closed`, `template_not_approved`, …).

use palaver_projections::Error as ProjectionError;
use palaver_store::Error as StoreError;
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
