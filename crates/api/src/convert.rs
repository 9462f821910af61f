//! Proto <-> domain and read-model conversions, in one place. Parsing
//! functions name the request field that is wrong, for INVALID_ARGUMENT.

use chrono::{DateTime, Utc};
use palaver_app::channel::SyncedTemplate;
use palaver_domain::ids::{ContactId, ConversationId, MessageId, PayloadId, ThreadId, WorkspaceId};
use palaver_domain::intake::PayloadOutcome;
use palaver_domain::templates::{TemplateDefinition, TemplateStatus};
use palaver_projections::queries::{
    ContactView, ConversationView, InboxPage, InboxRow, Status, TimelineEntry, WindowState,
};
use palaver_proto::{prost_types::Timestamp, v1 as pb};
use palaver_workers::intake::{IntakeOutcome, PayloadSummary};
use tonic::Status as GrpcStatus;
use uuid::Uuid;

use crate::status::invalid;

/// A UUID as hyphenated lower-case text, written straight into a string
/// of the right size (`to_string` goes through the formatter and grows its
/// string several times; inbox pages write four ids a row).
fn id_text(id: Uuid) -> String {
    id.hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// A required UUID field.
pub fn uuid(value: &str, field: &'static str) -> Result<Uuid, GrpcStatus> {
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    Uuid::parse_str(value).map_err(|_| invalid(field, format!("{value:?} is not a UUID")))
}

/// An optional UUID field (empty = none).
pub fn optional_uuid(value: &str, field: &'static str) -> Result<Option<Uuid>, GrpcStatus> {
    if value.is_empty() {
        Ok(None)
    } else {
        uuid(value, field).map(Some)
    }
}

pub fn workspace(value: &str) -> Result<WorkspaceId, GrpcStatus> {
    uuid(value, "options.workspace_id").map(WorkspaceId::from_uuid)
}
pub fn conversation(value: &str) -> Result<ConversationId, GrpcStatus> {
    uuid(value, "conversation_id").map(ConversationId::from_uuid)
}
pub fn contact(value: &str, field: &'static str) -> Result<ContactId, GrpcStatus> {
    uuid(value, field).map(ContactId::from_uuid)
}
pub fn thread(value: &str) -> Result<ThreadId, GrpcStatus> {
    uuid(value, "thread_id").map(ThreadId::from_uuid)
}
pub fn payload_id(value: &str) -> Result<PayloadId, GrpcStatus> {
    uuid(value, "payload_id").map(PayloadId::from_uuid)
}
pub fn message_id(value: &str) -> Result<Option<MessageId>, GrpcStatus> {
    optional_uuid(value, "message_id").map(|id| id.map(MessageId::from_uuid))
}

/// A required non-empty text field.
pub fn required<'a>(value: &'a str, field: &'static str) -> Result<&'a str, GrpcStatus> {
    if value.trim().is_empty() {
        Err(invalid(field, "is required"))
    } else {
        Ok(value)
    }
}

/// A required timestamp.
pub fn time(value: Option<Timestamp>, field: &'static str) -> Result<DateTime<Utc>, GrpcStatus> {
    let ts = value.ok_or_else(|| invalid(field, "is required"))?;
    u32::try_from(ts.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos))
        .ok_or_else(|| invalid(field, "is out of range"))
}

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn opt_timestamp(time: Option<DateTime<Utc>>) -> Option<Timestamp> {
    time.map(timestamp)
}

pub fn status_to_proto(status: Status) -> pb::ConversationStatus {
    match status {
        Status::Open => pb::ConversationStatus::Open,
        Status::Snoozed => pb::ConversationStatus::Snoozed,
        Status::Closed => pb::ConversationStatus::Closed,
    }
}

/// A status filter; unspecified means any.
pub fn status_filter(value: i32) -> Result<Option<Status>, GrpcStatus> {
    match pb::ConversationStatus::try_from(value) {
        Ok(pb::ConversationStatus::Unspecified) => Ok(None),
        Ok(pb::ConversationStatus::Open) => Ok(Some(Status::Open)),
        Ok(pb::ConversationStatus::Snoozed) => Ok(Some(Status::Snoozed)),
        Ok(pb::ConversationStatus::Closed) => Ok(Some(Status::Closed)),
        Err(_) => Err(invalid("status", format!("unknown value {value}"))),
    }
}

/// An inbox page as ListInbox answers it.
pub fn inbox_page(page: &InboxPage) -> pb::ListInboxResponse {
    pb::ListInboxResponse {
        rows: page.rows.iter().map(inbox_row).collect(),
        next_cursor: page.next_cursor.clone().unwrap_or_default(),
    }
}

pub fn inbox_row(row: &InboxRow) -> pb::InboxRow {
    pb::InboxRow {
        conversation_id: id_text(row.conversation_id),
        workspace_id: id_text(row.workspace_id),
        thread_id: id_text(row.thread_id),
        channel: row.channel.clone(),
        contact_id: id_text(row.contact_id),
        contact_name: row.contact_name.clone(),
        status: status_to_proto(row.status) as i32,
        snoozed_until: opt_timestamp(row.snoozed_until),
        assignee: row.assignee.clone().unwrap_or_default(),
        last_message_preview: row.last_message_preview.clone().unwrap_or_default(),
        last_message_kind: row.last_message_kind.clone().unwrap_or_default(),
        last_message_direction: row.last_message_direction.clone().unwrap_or_default(),
        last_activity_at: Some(timestamp(row.last_activity_at)),
        unread_count: row.unread_count,
        waiting_since: opt_timestamp(row.waiting_since),
        needs_template: row.needs_template,
        window_closes_at: opt_timestamp(row.window_closes_at),
        origin: row.origin.clone(),
        started_at: Some(timestamp(row.started_at)),
        window_closing_soon: row.window_closing_soon,
    }
}

fn delivery_status(state: Option<&str>) -> pb::DeliveryStatus {
    match state {
        Some("queued") => pb::DeliveryStatus::Queued,
        Some("sent") => pb::DeliveryStatus::Sent,
        Some("delivered") => pb::DeliveryStatus::Delivered,
        Some("read") => pb::DeliveryStatus::Read,
        Some("failed") => pb::DeliveryStatus::Failed,
        _ => pb::DeliveryStatus::Unspecified,
    }
}

pub fn timeline_message(entry: TimelineEntry) -> pb::TimelineMessage {
    let failure = entry.failure_code.map(|code| pb::DeliveryFailure {
        code: i32::try_from(code).unwrap_or_default(),
        reason: entry.failure_reason.clone().unwrap_or_default(),
    });
    pb::TimelineMessage {
        delivery_status: delivery_status(entry.delivery_state.as_deref()) as i32,
        message_id: entry.message_id,
        direction: entry.direction,
        kind: entry.kind,
        summary: entry.summary,
        media: entry.media.unwrap_or_default(),
        mime_type: entry.mime_type.unwrap_or_default(),
        file_name: entry.file_name.unwrap_or_default(),
        author: entry.author.unwrap_or_default(),
        wa_message_id: entry.wa_message_id.unwrap_or_default(),
        failure,
        sent_at: Some(timestamp(entry.sent_at)),
    }
}

pub fn conversation_view(view: ConversationView) -> pb::GetConversationResponse {
    pb::GetConversationResponse {
        conversation: Some(inbox_row(&view.conversation)),
        messages: view.messages.into_iter().map(timeline_message).collect(),
    }
}

pub fn window_state(window: WindowState) -> pb::WindowState {
    pb::WindowState {
        thread_id: id_text(window.thread_id),
        contact_id: id_text(window.contact_id),
        current_conversation_id: window.current_conversation_id.map(id_text).unwrap_or_default(),
        last_customer_message_at: opt_timestamp(window.last_customer_message_at),
        closes_at: opt_timestamp(window.closes_at),
        free_form_allowed: window.free_form_allowed,
        business_phone_number_id: window.business_phone_number_id,
        customer_wa_id: window.customer_wa_id,
    }
}

pub fn contact_view(contact: ContactView) -> pb::Contact {
    let kind = if contact.kind == "user" {
        pb::ContactKind::User
    } else {
        pb::ContactKind::Lead
    };
    pb::Contact {
        contact_id: id_text(contact.contact_id),
        kind: kind as i32,
        name: contact.name,
        phone_numbers: contact.phone_numbers,
        wa_id: contact.wa_id.unwrap_or_default(),
        external_user_id: contact.external_user_id.unwrap_or_default(),
        created_at: Some(timestamp(contact.created_at)),
        last_active_at: opt_timestamp(contact.last_active_at),
        merged_contact_ids: contact.merged_from.iter().copied().map(id_text).collect(),
    }
}

/// The Cloud API's catalogue, as a sync takes it.
pub fn synced_templates(listed: Vec<(TemplateDefinition, TemplateStatus)>) -> Vec<SyncedTemplate> {
    listed
        .into_iter()
        .map(|(definition, status)| SyncedTemplate { definition, status })
        .collect()
}

/// Which listed payloads a `WebhookPayloadState` filter keeps. Only parked
/// and failed payloads are ever listed, so other states are refused rather
/// than answered with a partial list.
pub fn payload_filter(value: i32) -> Result<fn(&PayloadOutcome) -> bool, GrpcStatus> {
    match pb::WebhookPayloadState::try_from(value) {
        Ok(pb::WebhookPayloadState::Unspecified) => {
            Ok(|outcome| matches!(outcome, PayloadOutcome::Parked(_) | PayloadOutcome::Failed(_)))
        }
        Ok(pb::WebhookPayloadState::Parked) => Ok(|outcome| matches!(outcome, PayloadOutcome::Parked(_))),
        Ok(pb::WebhookPayloadState::Failed) => Ok(|outcome| matches!(outcome, PayloadOutcome::Failed(_))),
        Ok(pb::WebhookPayloadState::Pending | pb::WebhookPayloadState::Processed) => Err(invalid(
            "state",
            "only PARKED or FAILED payloads are listed (unspecified: both)",
        )),
        Err(_) => Err(invalid("state", format!("unknown value {value}"))),
    }
}

pub fn payload_summary(summary: PayloadSummary) -> pb::WebhookPayloadSummary {
    let (state, parked, error) = match summary.outcome {
        PayloadOutcome::Pending => (pb::WebhookPayloadState::Pending, Vec::new(), String::new()),
        PayloadOutcome::Processed => (pb::WebhookPayloadState::Processed, Vec::new(), String::new()),
        PayloadOutcome::Parked(numbers) => (
            pb::WebhookPayloadState::Parked,
            numbers.iter().map(ToString::to_string).collect(),
            String::new(),
        ),
        PayloadOutcome::Failed(error) => (pb::WebhookPayloadState::Failed, Vec::new(), error),
    };
    pb::WebhookPayloadSummary {
        payload_id: id_text(summary.payload_id.as_uuid()),
        received_at: opt_timestamp(summary.received_at),
        state: state as i32,
        parked_phone_number_ids: parked,
        error,
    }
}

/// A payload just handled again: `outcome` is what the intake recorded.
pub fn reprocessed(
    payload_id: PayloadId,
    received_at: Option<DateTime<Utc>>,
    outcome: IntakeOutcome,
) -> pb::WebhookPayloadSummary {
    let outcome = match outcome {
        IntakeOutcome::Processed { .. } => PayloadOutcome::Processed,
        IntakeOutcome::Parked(numbers) => PayloadOutcome::Parked(numbers),
        IntakeOutcome::Failed(error) => PayloadOutcome::Failed(error),
    };
    payload_summary(PayloadSummary {
        payload_id,
        received_at,
        outcome,
    })
}
