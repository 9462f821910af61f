//! The one place domain events meet protobuf.
//!
//! [`encode`] turns a domain event into `(event_type, schema_version,
//! payload)`: the event type is the protobuf message's full name (e.g.
//! `palaver.v1.MessageReceived`), the schema version is the payload's
//! version, and the payload is the encoded message from
//! `proto/palaver/v1/events.proto`. [`decode`] does the reverse, and fails
//! with a typed [`DecodeError`] for an unknown type, a version it cannot
//! read, bad bytes or a field that does not make sense.
//!
//! Upcasting: when a message's meaning changes, its schema version goes up
//! and [`upcast`] learns to rewrite the old payload into the new one, one
//! version at a time; `decode` runs it before reading. All events are at
//! version 1 today, so it only refuses versions from the future.

use std::borrow::Cow;
use std::str::FromStr;

use chrono::{DateTime, Utc, Weekday};
use palaver_proto::prost::Message;
use palaver_proto::prost_types::Timestamp;
use palaver_proto::v1 as pb;

use crate::campaign::{CampaignEvent, CampaignTrigger};
use crate::channel::{ChannelEvent, ChannelSettings, ConnectedNumber, QuietPeriod, QuietPeriodUnit};
use crate::contact::{ContactEvent, ContactKind, MergeReason};
use crate::conversation::{ConversationEvent, WakeReason};
use crate::delivery::{DeliveryFailure, DeliveryProgress, DeliveryUpdate};
use crate::ids::{
    Actor, BusinessAccountId, MessengerConversationId, PhoneNumberId, TeammateId, WaId, WaMessageId,
};
use crate::intake::PayloadEvent;
use crate::message::{
    ContactCard, InboundContent, InboundMessage, InteractiveReplyKind, Media, MessageContext,
    OutboundContent, Referral,
};
use crate::messenger::{SwitchEvent, SwitchToken};
use crate::office_hours::{OfficeHours, OfficeInterval};
use crate::phone::{PhoneNumber, Region};
use crate::templates::{
    ComponentKind, Template, TemplateCategory, TemplateComponent, TemplateDefinition, TemplateEvent,
    TemplateSend, TemplateStatus,
};
use crate::thread::{ConversationOrigin, InboundRouting, ThreadEvent, ThreadIdentity};
use crate::timer::{TimerAction, TimerEvent};

/// The schema version every event is written with today.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// Every event type this crate writes and reads, by aggregate.
pub mod event_types {
    #![allow(missing_docs)]
    pub const CHANNEL_NUMBER_CONNECTED: &str = "palaver.v1.ChannelNumberConnected";
    pub const CHANNEL_NUMBER_DISCONNECTED: &str = "palaver.v1.ChannelNumberDisconnected";
    pub const CHANNEL_SETTINGS_CHANGED: &str = "palaver.v1.ChannelSettingsChanged";
    pub const THREAD_STARTED: &str = "palaver.v1.ThreadStarted";
    pub const THREAD_CONVERSATION_STARTED: &str = "palaver.v1.ThreadConversationStarted";
    pub const CUSTOMER_MESSAGE_ACCEPTED: &str = "palaver.v1.CustomerMessageAccepted";
    pub const CONVERSATION_STARTED: &str = "palaver.v1.ConversationStarted";
    pub const MESSAGE_RECEIVED: &str = "palaver.v1.MessageReceived";
    pub const OUTBOUND_MESSAGE_QUEUED: &str = "palaver.v1.OutboundMessageQueued";
    pub const OUTBOUND_MESSAGE_ACCEPTED: &str = "palaver.v1.OutboundMessageAccepted";
    pub const DELIVERY_STATUS_CHANGED: &str = "palaver.v1.DeliveryStatusChanged";
    pub const CONVERSATION_ASSIGNED: &str = "palaver.v1.ConversationAssigned";
    pub const CONVERSATION_SNOOZED: &str = "palaver.v1.ConversationSnoozed";
    pub const CONVERSATION_UNSNOOZED: &str = "palaver.v1.ConversationUnsnoozed";
    pub const CONVERSATION_CLOSED: &str = "palaver.v1.ConversationClosed";
    pub const CONVERSATION_REOPENED: &str = "palaver.v1.ConversationReopened";
    pub const CONTACT_CREATED: &str = "palaver.v1.ContactCreated";
    pub const CONTACT_PHONE_ADDED: &str = "palaver.v1.ContactPhoneAdded";
    pub const LEAD_CONVERTED_TO_USER: &str = "palaver.v1.LeadConvertedToUser";
    pub const CONTACT_MERGED: &str = "palaver.v1.ContactMerged";
    pub const TEMPLATE_REGISTERED: &str = "palaver.v1.TemplateRegistered";
    pub const TEMPLATE_STATUS_CHANGED: &str = "palaver.v1.TemplateStatusChanged";
    pub const CAMPAIGN_CREATED: &str = "palaver.v1.CampaignCreated";
    pub const CAMPAIGN_LAUNCHED: &str = "palaver.v1.CampaignLaunched";
    pub const CAMPAIGN_RECIPIENT_QUEUED: &str = "palaver.v1.CampaignRecipientQueued";
    pub const CAMPAIGN_RECIPIENT_STATUS_CHANGED: &str = "palaver.v1.CampaignRecipientStatusChanged";
    pub const CAMPAIGN_CANCELLED: &str = "palaver.v1.CampaignCancelled";
    pub const WHATSAPP_SWITCH_OFFERED: &str = "palaver.v1.WhatsAppSwitchOffered";
    pub const WHATSAPP_SWITCH_COMPLETED: &str = "palaver.v1.WhatsAppSwitchCompleted";
    pub const OUTBOUND_SEND_ATTEMPTED: &str = "palaver.v1.OutboundSendAttempted";
    pub const WINDOW_CLOSING_SOON: &str = "palaver.v1.WindowClosingSoon";
    pub const WEBHOOK_PAYLOAD_RECEIVED: &str = "palaver.v1.WebhookPayloadReceived";
    pub const WEBHOOK_PAYLOAD_PROCESSED: &str = "palaver.v1.WebhookPayloadProcessed";
    pub const WEBHOOK_PAYLOAD_PARKED: &str = "palaver.v1.WebhookPayloadParked";
    pub const WEBHOOK_PAYLOAD_FAILED: &str = "palaver.v1.WebhookPayloadFailed";
    pub const TIMER_SCHEDULED: &str = "palaver.v1.TimerScheduled";
    pub const TIMER_FIRED: &str = "palaver.v1.TimerFired";
}
use event_types as t;

/// An event ready for the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// Full protobuf message name, e.g. `palaver.v1.MessageReceived`.
    pub event_type: &'static str,
    /// Payload schema version.
    pub schema_version: u32,
    /// Encoded protobuf message.
    pub payload: Vec<u8>,
}

/// Any domain event.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainEvent {
    /// Of a channel.
    Channel(ChannelEvent),
    /// Of a thread.
    Thread(ThreadEvent),
    /// Of a conversation.
    Conversation(ConversationEvent),
    /// Of a contact.
    Contact(ContactEvent),
    /// Of a template catalogue.
    Template(TemplateEvent),
    /// Of a campaign.
    Campaign(CampaignEvent),
    /// Of a Messenger-to-WhatsApp switch.
    Switch(SwitchEvent),
    /// Of a stored webhook payload.
    Payload(PayloadEvent),
    /// Of a timer.
    Timer(TimerEvent),
}

/// Why stored bytes could not be read as a domain event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No domain event has this type. A newer writer or another producer
    /// wrote it: skip it, or upgrade this reader.
    #[error("unknown event type `{0}`")]
    UnknownEventType(String),
    /// The schema version is newer than this reader (or was never valid).
    /// Upgrade the reader.
    #[error("`{event_type}` schema version {version} cannot be read")]
    UnsupportedSchemaVersion {
        /// The event type.
        event_type: String,
        /// The version found.
        version: u32,
    },
    /// The payload is not a valid protobuf message of that type. The
    /// stored event is corrupt: report it.
    #[error("`{event_type}` payload is malformed: {reason}")]
    Malformed {
        /// The event type.
        event_type: &'static str,
        /// What prost said.
        reason: String,
    },
    /// A field the event cannot exist without is missing or out of range.
    /// The producer broke the contract: report it.
    #[error("`{event_type}` field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The event type.
        event_type: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The event belongs to another aggregate than the one being loaded.
    /// The stream holds foreign events: report it.
    #[error("`{event_type}` is not an event of {expected}")]
    WrongAggregate {
        /// The event type.
        event_type: &'static str,
        /// The aggregate being loaded.
        expected: &'static str,
    },
}

/// Encodes any domain event.
pub fn encode(event: &DomainEvent) -> EncodedEvent {
    let (event_type, payload) = match event {
        DomainEvent::Channel(e) => encode_channel(e),
        DomainEvent::Thread(e) => encode_thread(e),
        DomainEvent::Conversation(e) => encode_conversation(e),
        DomainEvent::Contact(e) => encode_contact(e),
        DomainEvent::Template(e) => encode_template(e),
        DomainEvent::Campaign(e) => encode_campaign(e),
        DomainEvent::Switch(e) => encode_switch(e),
        DomainEvent::Payload(e) => encode_payload(e),
        DomainEvent::Timer(e) => encode_timer(e),
    };
    EncodedEvent {
        event_type,
        schema_version: CURRENT_SCHEMA_VERSION,
        payload,
    }
}

/// Rewrites a payload of an older schema version into the current one.
/// The hook for schema evolution: add an arm per (type, old version) that
/// decodes the old shape and re-encodes the new, then bump
/// [`CURRENT_SCHEMA_VERSION`] for that type. Today every type is at 1.
pub fn upcast<'a>(
    event_type: &str,
    schema_version: u32,
    payload: &'a [u8],
) -> Result<Cow<'a, [u8]>, DecodeError> {
    match schema_version {
        CURRENT_SCHEMA_VERSION => Ok(Cow::Borrowed(payload)),
        version => Err(DecodeError::UnsupportedSchemaVersion {
            event_type: event_type.to_owned(),
            version,
        }),
    }
}

/// Decodes a stored event.
pub fn decode(event_type: &str, schema_version: u32, payload: &[u8]) -> Result<DomainEvent, DecodeError> {
    let kind = known_type(event_type).ok_or_else(|| DecodeError::UnknownEventType(event_type.to_owned()))?;
    let payload = upcast(event_type, schema_version, payload)?;
    let cx = Cx(kind);
    let bytes: &[u8] = &payload;
    Ok(match kind {
        t::CHANNEL_NUMBER_CONNECTED | t::CHANNEL_NUMBER_DISCONNECTED | t::CHANNEL_SETTINGS_CHANGED => {
            DomainEvent::Channel(decode_channel(cx, bytes)?)
        }
        t::THREAD_STARTED | t::THREAD_CONVERSATION_STARTED | t::CUSTOMER_MESSAGE_ACCEPTED => {
            DomainEvent::Thread(decode_thread(cx, bytes)?)
        }
        t::CONTACT_CREATED | t::CONTACT_PHONE_ADDED | t::LEAD_CONVERTED_TO_USER | t::CONTACT_MERGED => {
            DomainEvent::Contact(decode_contact(cx, bytes)?)
        }
        t::TEMPLATE_REGISTERED | t::TEMPLATE_STATUS_CHANGED => {
            DomainEvent::Template(decode_template(cx, bytes)?)
        }
        t::CAMPAIGN_CREATED
        | t::CAMPAIGN_LAUNCHED
        | t::CAMPAIGN_RECIPIENT_QUEUED
        | t::CAMPAIGN_RECIPIENT_STATUS_CHANGED
        | t::CAMPAIGN_CANCELLED => DomainEvent::Campaign(decode_campaign(cx, bytes)?),
        t::WHATSAPP_SWITCH_OFFERED | t::WHATSAPP_SWITCH_COMPLETED => {
            DomainEvent::Switch(decode_switch(cx, bytes)?)
        }
        t::WEBHOOK_PAYLOAD_RECEIVED
        | t::WEBHOOK_PAYLOAD_PROCESSED
        | t::WEBHOOK_PAYLOAD_PARKED
        | t::WEBHOOK_PAYLOAD_FAILED => DomainEvent::Payload(decode_payload(cx, bytes)?),
        t::TIMER_SCHEDULED | t::TIMER_FIRED => DomainEvent::Timer(decode_timer(cx, bytes)?),
        _ => DomainEvent::Conversation(decode_conversation(cx, bytes)?),
    })
}

const ALL_TYPES: &[&str] = &[
    t::CHANNEL_NUMBER_CONNECTED,
    t::CHANNEL_NUMBER_DISCONNECTED,
    t::CHANNEL_SETTINGS_CHANGED,
    t::THREAD_STARTED,
    t::THREAD_CONVERSATION_STARTED,
    t::CUSTOMER_MESSAGE_ACCEPTED,
    t::CONVERSATION_STARTED,
    t::MESSAGE_RECEIVED,
    t::OUTBOUND_MESSAGE_QUEUED,
    t::OUTBOUND_MESSAGE_ACCEPTED,
    t::DELIVERY_STATUS_CHANGED,
    t::CONVERSATION_ASSIGNED,
    t::CONVERSATION_SNOOZED,
    t::CONVERSATION_UNSNOOZED,
    t::CONVERSATION_CLOSED,
    t::CONVERSATION_REOPENED,
    t::CONTACT_CREATED,
    t::CONTACT_PHONE_ADDED,
    t::LEAD_CONVERTED_TO_USER,
    t::CONTACT_MERGED,
    t::TEMPLATE_REGISTERED,
    t::TEMPLATE_STATUS_CHANGED,
    t::CAMPAIGN_CREATED,
    t::CAMPAIGN_LAUNCHED,
    t::CAMPAIGN_RECIPIENT_QUEUED,
    t::CAMPAIGN_RECIPIENT_STATUS_CHANGED,
    t::CAMPAIGN_CANCELLED,
    t::WHATSAPP_SWITCH_OFFERED,
    t::WHATSAPP_SWITCH_COMPLETED,
    t::OUTBOUND_SEND_ATTEMPTED,
    t::WINDOW_CLOSING_SOON,
    t::WEBHOOK_PAYLOAD_RECEIVED,
    t::WEBHOOK_PAYLOAD_PROCESSED,
    t::WEBHOOK_PAYLOAD_PARKED,
    t::WEBHOOK_PAYLOAD_FAILED,
    t::TIMER_SCHEDULED,
    t::TIMER_FIRED,
];

/// The `'static` name of a known event type.
fn known_type(event_type: &str) -> Option<&'static str> {
    ALL_TYPES.iter().copied().find(|k| *k == event_type)
}

/// Encoding and decoding for one aggregate's events, so a loader can read
/// a stream straight into that aggregate's event type.
pub trait EventCodec: Sized {
    /// Encodes the event.
    fn encode(&self) -> EncodedEvent;
    /// Decodes a stored event, refusing events of other aggregates.
    fn decode(event_type: &str, schema_version: u32, payload: &[u8]) -> Result<Self, DecodeError>;
}

macro_rules! event_codec {
    ($event:ty, $variant:ident, $name:literal) => {
        impl From<$event> for DomainEvent {
            fn from(event: $event) -> Self {
                DomainEvent::$variant(event)
            }
        }

        impl EventCodec for $event {
            fn encode(&self) -> EncodedEvent {
                encode(&DomainEvent::$variant(self.clone()))
            }

            fn decode(event_type: &str, schema_version: u32, payload: &[u8]) -> Result<Self, DecodeError> {
                match decode(event_type, schema_version, payload)? {
                    DomainEvent::$variant(event) => Ok(event),
                    _ => Err(DecodeError::WrongAggregate {
                        event_type: known_type(event_type).unwrap_or("unknown"),
                        expected: $name,
                    }),
                }
            }
        }
    };
}

event_codec!(ChannelEvent, Channel, "a channel");
event_codec!(ThreadEvent, Thread, "a thread");
event_codec!(ConversationEvent, Conversation, "a conversation");
event_codec!(ContactEvent, Contact, "a contact");
event_codec!(TemplateEvent, Template, "a template catalogue");
event_codec!(CampaignEvent, Campaign, "a campaign");
event_codec!(SwitchEvent, Switch, "a WhatsApp switch");
event_codec!(PayloadEvent, Payload, "a webhook payload");
event_codec!(TimerEvent, Timer, "a timer");

// ---------------------------------------------------------------------------
// Decoding context: which event is being read, for error messages.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Cx(&'static str);

impl Cx {
    fn message<M: Message + Default>(self, bytes: &[u8]) -> Result<M, DecodeError> {
        M::decode(bytes).map_err(|e| DecodeError::Malformed {
            event_type: self.0,
            reason: e.to_string(),
        })
    }

    fn invalid(self, field: &'static str, reason: impl Into<String>) -> DecodeError {
        DecodeError::InvalidField {
            event_type: self.0,
            field,
            reason: reason.into(),
        }
    }

    fn required<T>(self, value: Option<T>, field: &'static str) -> Result<T, DecodeError> {
        value.ok_or_else(|| self.invalid(field, "missing"))
    }

    fn id<T: FromStr>(self, value: &str, field: &'static str) -> Result<T, DecodeError> {
        value
            .parse()
            .map_err(|_| self.invalid(field, format!("`{value}` is not a UUID")))
    }

    fn time(self, value: Option<Timestamp>, field: &'static str) -> Result<DateTime<Utc>, DecodeError> {
        let ts = self.required(value, field)?;
        u32::try_from(ts.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos))
            .ok_or_else(|| self.invalid(field, "timestamp out of range"))
    }

    fn phone(self, value: &str, field: &'static str) -> Result<PhoneNumber, DecodeError> {
        PhoneNumber::from_stored(value).ok_or_else(|| self.invalid(field, format!("`{value}` is not E.164")))
    }

    fn enumeration<E: TryFrom<i32>>(self, value: i32, field: &'static str) -> Result<E, DecodeError> {
        E::try_from(value).map_err(|_| self.invalid(field, format!("unknown value {value}")))
    }

    fn actor(self, value: Option<pb::Actor>, field: &'static str) -> Result<Actor, DecodeError> {
        let actor = self.required(value, field)?;
        match self.enumeration(actor.kind, field)? {
            pb::ActorKind::Teammate => Ok(Actor::Teammate(TeammateId::new(actor.id))),
            pb::ActorKind::Service => Ok(Actor::Service(actor.id)),
            pb::ActorKind::System => Ok(Actor::System),
            pb::ActorKind::Unspecified => Err(self.invalid(field, "actor kind unspecified")),
        }
    }
}

fn ts(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(i32::MAX),
    })
}

fn actor(actor: &Actor) -> Option<pb::Actor> {
    let (kind, id) = match actor {
        Actor::Teammate(id) => (pb::ActorKind::Teammate, id.to_string()),
        Actor::Service(name) => (pb::ActorKind::Service, name.clone()),
        Actor::System => (pb::ActorKind::System, String::new()),
    };
    Some(pb::Actor {
        kind: kind.into(),
        id,
    })
}

fn opt_string(value: Option<&impl ToString>) -> String {
    value.map(ToString::to_string).unwrap_or_default()
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// Decodes the message in `bytes` as `$ty` within `decode_*` functions.
macro_rules! read {
    ($cx:expr, $bytes:expr, $ty:ty) => {
        $cx.message::<$ty>($bytes)?
    };
}

// ---------------------------------------------------------------------------
// Channel
// ---------------------------------------------------------------------------

fn encode_channel(event: &ChannelEvent) -> (&'static str, Vec<u8>) {
    match event {
        ChannelEvent::NumberConnected {
            workspace_id,
            phone_number_id,
            number,
            by,
            at,
        } => (
            t::CHANNEL_NUMBER_CONNECTED,
            pb::ChannelNumberConnected {
                workspace_id: workspace_id.to_string(),
                phone_number_id: phone_number_id.to_string(),
                display_phone_number: number.display_phone_number.to_string(),
                business_account_id: number.business_account_id.to_string(),
                connected_at: ts(*at),
                connected_by: actor(by),
            }
            .encode_to_vec(),
        ),
        ChannelEvent::NumberDisconnected {
            workspace_id,
            phone_number_id,
            by,
            at,
        } => (
            t::CHANNEL_NUMBER_DISCONNECTED,
            pb::ChannelNumberDisconnected {
                workspace_id: workspace_id.to_string(),
                phone_number_id: phone_number_id.to_string(),
                disconnected_at: ts(*at),
                disconnected_by: actor(by),
            }
            .encode_to_vec(),
        ),
        ChannelEvent::SettingsChanged {
            workspace_id,
            settings,
            by,
            at,
        } => (
            t::CHANNEL_SETTINGS_CHANGED,
            pb::ChannelSettingsChanged {
                workspace_id: workspace_id.to_string(),
                settings: Some(settings_to_pb(settings)),
                changed_at: ts(*at),
                changed_by: actor(by),
            }
            .encode_to_vec(),
        ),
    }
}

fn settings_to_pb(s: &ChannelSettings) -> pb::ChannelSettings {
    let unit = match s.quiet_period.unit() {
        QuietPeriodUnit::Minutes => pb::QuietPeriodUnit::Minutes,
        QuietPeriodUnit::Hours => pb::QuietPeriodUnit::Hours,
        QuietPeriodUnit::Days => pb::QuietPeriodUnit::Days,
    };
    pb::ChannelSettings {
        quiet_period: Some(pb::QuietPeriod {
            amount: s.quiet_period.amount(),
            unit: unit.into(),
        }),
        identify_existing_users: s.identify_existing_users,
        offer_whatsapp_switch: s.offer_whatsapp_switch,
        show_reply_times_in_office_hours: s.show_reply_times_in_office_hours,
        office_hours: Some(pb::OfficeHours {
            time_zone: s.office_hours.time_zone().to_owned(),
            intervals: s
                .office_hours
                .intervals()
                .iter()
                .map(|i| pb::OfficeHoursInterval {
                    iso_weekday: i.weekday.number_from_monday(),
                    start_minute: i.start_minute.into(),
                    end_minute: i.end_minute.into(),
                })
                .collect(),
        }),
        default_region: opt_string(s.default_region.as_ref()),
    }
}

fn settings_from_pb(cx: Cx, s: pb::ChannelSettings) -> Result<ChannelSettings, DecodeError> {
    let qp = cx.required(s.quiet_period, "settings.quiet_period")?;
    let unit = match cx.enumeration(qp.unit, "settings.quiet_period.unit")? {
        pb::QuietPeriodUnit::Minutes => QuietPeriodUnit::Minutes,
        pb::QuietPeriodUnit::Hours => QuietPeriodUnit::Hours,
        pb::QuietPeriodUnit::Days => QuietPeriodUnit::Days,
        pb::QuietPeriodUnit::Unspecified => {
            return Err(cx.invalid("settings.quiet_period.unit", "unspecified"));
        }
    };
    let quiet_period =
        QuietPeriod::new(qp.amount, unit).map_err(|e| cx.invalid("settings.quiet_period", e.to_string()))?;
    let oh = cx.required(s.office_hours, "settings.office_hours")?;
    let intervals = oh
        .intervals
        .into_iter()
        .map(|i| {
            let weekday = i
                .iso_weekday
                .checked_sub(1)
                .and_then(|d| u8::try_from(d).ok())
                .and_then(|d| Weekday::try_from(d).ok())
                .ok_or_else(|| cx.invalid("settings.office_hours.intervals.iso_weekday", "not 1..=7"))?;
            let minute = |m: u32| {
                u16::try_from(m)
                    .map_err(|_| cx.invalid("settings.office_hours.intervals", "minute out of range"))
            };
            Ok(OfficeInterval {
                weekday,
                start_minute: minute(i.start_minute)?,
                end_minute: minute(i.end_minute)?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    let office_hours = OfficeHours::new(&oh.time_zone, intervals)
        .map_err(|e| cx.invalid("settings.office_hours", e.to_string()))?;
    let default_region = match non_empty(s.default_region) {
        None => None,
        Some(code) => {
            Some(Region::parse(&code).map_err(|e| cx.invalid("settings.default_region", e.to_string()))?)
        }
    };
    Ok(ChannelSettings {
        quiet_period,
        identify_existing_users: s.identify_existing_users,
        offer_whatsapp_switch: s.offer_whatsapp_switch,
        show_reply_times_in_office_hours: s.show_reply_times_in_office_hours,
        office_hours,
        default_region,
    })
}

fn decode_channel(cx: Cx, bytes: &[u8]) -> Result<ChannelEvent, DecodeError> {
    Ok(match cx.0 {
        t::CHANNEL_NUMBER_CONNECTED => {
            let m = read!(cx, bytes, pb::ChannelNumberConnected);
            ChannelEvent::NumberConnected {
                workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                phone_number_id: PhoneNumberId::new(m.phone_number_id),
                number: ConnectedNumber {
                    display_phone_number: cx.phone(&m.display_phone_number, "display_phone_number")?,
                    business_account_id: BusinessAccountId::new(m.business_account_id),
                },
                by: cx.actor(m.connected_by, "connected_by")?,
                at: cx.time(m.connected_at, "connected_at")?,
            }
        }
        t::CHANNEL_NUMBER_DISCONNECTED => {
            let m = read!(cx, bytes, pb::ChannelNumberDisconnected);
            ChannelEvent::NumberDisconnected {
                workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                phone_number_id: PhoneNumberId::new(m.phone_number_id),
                by: cx.actor(m.disconnected_by, "disconnected_by")?,
                at: cx.time(m.disconnected_at, "disconnected_at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::ChannelSettingsChanged);
            ChannelEvent::SettingsChanged {
                workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                settings: settings_from_pb(cx, cx.required(m.settings, "settings")?)?,
                by: cx.actor(m.changed_by, "changed_by")?,
                at: cx.time(m.changed_at, "changed_at")?,
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Thread
// ---------------------------------------------------------------------------

fn origin_to_pb(origin: ConversationOrigin) -> i32 {
    match origin {
        ConversationOrigin::Inbound => pb::ConversationOrigin::Inbound,
        ConversationOrigin::Inbox => pb::ConversationOrigin::Inbox,
        ConversationOrigin::Campaign => pb::ConversationOrigin::Campaign,
        ConversationOrigin::WhatsAppSwitch => pb::ConversationOrigin::WhatsappSwitch,
    }
    .into()
}

fn origin_from_pb(cx: Cx, value: i32) -> Result<ConversationOrigin, DecodeError> {
    match cx.enumeration(value, "origin")? {
        pb::ConversationOrigin::Inbound => Ok(ConversationOrigin::Inbound),
        pb::ConversationOrigin::Inbox => Ok(ConversationOrigin::Inbox),
        pb::ConversationOrigin::Campaign => Ok(ConversationOrigin::Campaign),
        pb::ConversationOrigin::WhatsappSwitch => Ok(ConversationOrigin::WhatsAppSwitch),
        pb::ConversationOrigin::Unspecified => Err(cx.invalid("origin", "unspecified")),
    }
}

fn encode_thread(event: &ThreadEvent) -> (&'static str, Vec<u8>) {
    match event {
        ThreadEvent::Started {
            thread_id,
            identity,
            at,
        } => (
            t::THREAD_STARTED,
            pb::ThreadStarted {
                thread_id: thread_id.to_string(),
                workspace_id: identity.workspace_id.to_string(),
                business_phone_number_id: identity.business_phone_number_id.to_string(),
                customer_wa_id: identity.customer_wa_id.to_string(),
                contact_id: identity.contact_id.to_string(),
                started_at: ts(*at),
            }
            .encode_to_vec(),
        ),
        ThreadEvent::ConversationStarted {
            thread_id,
            conversation_id,
            sequence,
            origin,
            request_id,
            at,
        } => (
            t::THREAD_CONVERSATION_STARTED,
            pb::ThreadConversationStarted {
                thread_id: thread_id.to_string(),
                conversation_id: conversation_id.to_string(),
                sequence: *sequence,
                origin: origin_to_pb(*origin),
                request_id: opt_string(request_id.as_ref()),
                started_at: ts(*at),
            }
            .encode_to_vec(),
        ),
        ThreadEvent::CustomerMessageAccepted {
            thread_id,
            wa_message_id,
            sent_at,
            received_at,
            conversation_id,
            routing,
        } => (
            t::CUSTOMER_MESSAGE_ACCEPTED,
            pb::CustomerMessageAccepted {
                thread_id: thread_id.to_string(),
                wa_message_id: wa_message_id.to_string(),
                sent_at: ts(*sent_at),
                received_at: ts(*received_at),
                conversation_id: conversation_id.to_string(),
                routing: match routing {
                    InboundRouting::Joined => pb::InboundRouting::Joined,
                    InboundRouting::Reopened => pb::InboundRouting::Reopened,
                    InboundRouting::Started => pb::InboundRouting::Started,
                }
                .into(),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_thread(cx: Cx, bytes: &[u8]) -> Result<ThreadEvent, DecodeError> {
    Ok(match cx.0 {
        t::THREAD_STARTED => {
            let m = read!(cx, bytes, pb::ThreadStarted);
            ThreadEvent::Started {
                thread_id: cx.id(&m.thread_id, "thread_id")?,
                identity: ThreadIdentity {
                    workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                    business_phone_number_id: PhoneNumberId::new(m.business_phone_number_id),
                    customer_wa_id: WaId::new(m.customer_wa_id),
                    contact_id: cx.id(&m.contact_id, "contact_id")?,
                },
                at: cx.time(m.started_at, "started_at")?,
            }
        }
        t::THREAD_CONVERSATION_STARTED => {
            let m = read!(cx, bytes, pb::ThreadConversationStarted);
            ThreadEvent::ConversationStarted {
                thread_id: cx.id(&m.thread_id, "thread_id")?,
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                sequence: m.sequence,
                origin: origin_from_pb(cx, m.origin)?,
                request_id: match non_empty(m.request_id) {
                    None => None,
                    Some(id) => Some(cx.id(&id, "request_id")?),
                },
                at: cx.time(m.started_at, "started_at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::CustomerMessageAccepted);
            ThreadEvent::CustomerMessageAccepted {
                thread_id: cx.id(&m.thread_id, "thread_id")?,
                wa_message_id: WaMessageId::new(m.wa_message_id),
                sent_at: cx.time(m.sent_at, "sent_at")?,
                received_at: cx.time(m.received_at, "received_at")?,
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                routing: match cx.enumeration(m.routing, "routing")? {
                    pb::InboundRouting::Joined => InboundRouting::Joined,
                    pb::InboundRouting::Reopened => InboundRouting::Reopened,
                    pb::InboundRouting::Started => InboundRouting::Started,
                    pb::InboundRouting::Unspecified => return Err(cx.invalid("routing", "unspecified")),
                },
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Conversation
// ---------------------------------------------------------------------------

fn media_to_pb(m: &Media) -> Option<pb::Media> {
    Some(pb::Media {
        media_id: m.media_id.clone(),
        mime_type: m.mime_type.clone(),
        sha256: m.sha256.clone(),
    })
}

fn media_from_pb(cx: Cx, m: Option<pb::Media>) -> Result<Media, DecodeError> {
    let m = cx.required(m, "content.media")?;
    Ok(Media {
        media_id: m.media_id,
        mime_type: m.mime_type,
        sha256: m.sha256,
    })
}

/// `None` for a fresh message, so old and new payloads look alike.
fn context_to_pb(context: &MessageContext) -> Option<pb::MessageContext> {
    if *context == MessageContext::default() {
        return None;
    }
    Some(pb::MessageContext {
        reply_to_wa_message_id: context
            .reply_to
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        forwarded: context.forwarded,
        frequently_forwarded: context.frequently_forwarded,
        referral: context.referral.as_ref().map(|r| pb::Referral {
            source_url: r.source_url.clone(),
            source_type: r.source_type.clone(),
            source_id: r.source_id.clone(),
            headline: r.headline.clone(),
            body: r.body.clone(),
            media_type: r.media_type.clone(),
            image_url: r.image_url.clone(),
            video_url: r.video_url.clone(),
            thumbnail_url: r.thumbnail_url.clone(),
            ctwa_clid: r.ctwa_clid.clone(),
        }),
    })
}

/// Every field is optional, so any payload decodes (absent = default).
fn context_from_pb(context: Option<pb::MessageContext>) -> MessageContext {
    let Some(c) = context else {
        return MessageContext::default();
    };
    MessageContext {
        reply_to: Some(c.reply_to_wa_message_id)
            .filter(|id| !id.is_empty())
            .map(WaMessageId::new),
        forwarded: c.forwarded,
        frequently_forwarded: c.frequently_forwarded,
        referral: c.referral.map(|r| {
            Box::new(Referral {
                source_url: r.source_url,
                source_type: r.source_type,
                source_id: r.source_id,
                headline: r.headline,
                body: r.body,
                media_type: r.media_type,
                image_url: r.image_url,
                video_url: r.video_url,
                thumbnail_url: r.thumbnail_url,
                ctwa_clid: r.ctwa_clid,
            })
        }),
    }
}

fn inbound_to_pb(content: &InboundContent) -> pb::InboundContent {
    use pb::inbound_content::Kind;
    let kind = match content {
        InboundContent::Text { body } => Kind::Text(pb::TextContent { body: body.clone() }),
        InboundContent::Image { media, caption } => Kind::Image(pb::ImageContent {
            media: media_to_pb(media),
            caption: caption.clone(),
        }),
        InboundContent::Document {
            media,
            file_name,
            caption,
        } => Kind::Document(pb::DocumentContent {
            media: media_to_pb(media),
            file_name: file_name.clone(),
            caption: caption.clone(),
        }),
        InboundContent::Video { media, caption } => Kind::Video(pb::VideoContent {
            media: media_to_pb(media),
            caption: caption.clone(),
        }),
        InboundContent::Gif { media, caption } => Kind::Gif(pb::GifContent {
            media: media_to_pb(media),
            caption: caption.clone(),
        }),
        InboundContent::Audio { media, voice } => Kind::Audio(pb::AudioContent {
            media: media_to_pb(media),
            voice: *voice,
        }),
        InboundContent::Sticker { media, animated } => Kind::Sticker(pb::StickerContent {
            media: media_to_pb(media),
            animated: *animated,
        }),
        InboundContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => Kind::Location(pb::LocationContent {
            latitude: *latitude,
            longitude: *longitude,
            name: name.clone(),
            address: address.clone(),
        }),
        InboundContent::Contacts { cards } => Kind::Contacts(pb::ContactsContent {
            cards: cards
                .iter()
                .map(|c| pb::ContactCard {
                    formatted_name: c.formatted_name.clone(),
                    phone_numbers: c.phone_numbers.clone(),
                })
                .collect(),
        }),
        InboundContent::Reaction { target, emoji } => Kind::Reaction(pb::ReactionContent {
            target_wa_message_id: target.to_string(),
            emoji: emoji.clone().unwrap_or_default(),
        }),
        InboundContent::ButtonReply { payload, text } => Kind::ButtonReply(pb::ButtonReplyContent {
            payload: payload.clone(),
            text: text.clone(),
        }),
        InboundContent::InteractiveReply {
            kind,
            id,
            title,
            description,
        } => Kind::InteractiveReply(pb::InteractiveReplyContent {
            r#type: match kind {
                InteractiveReplyKind::Button => pb::InteractiveReplyType::Button,
                InteractiveReplyKind::List => pb::InteractiveReplyType::List,
            }
            .into(),
            id: id.clone(),
            title: title.clone(),
            description: description.clone(),
        }),
        InboundContent::Unsupported {
            raw_type,
            raw_payload,
        } => Kind::Unsupported(pb::UnsupportedContent {
            raw_type: raw_type.clone(),
            raw_payload: raw_payload.clone(),
        }),
    };
    pb::InboundContent { kind: Some(kind) }
}

fn inbound_from_pb(cx: Cx, content: Option<pb::InboundContent>) -> Result<InboundContent, DecodeError> {
    use pb::inbound_content::Kind;
    let kind = cx.required(cx.required(content, "content")?.kind, "content.kind")?;
    Ok(match kind {
        Kind::Text(c) => InboundContent::Text { body: c.body },
        Kind::Image(c) => InboundContent::Image {
            media: media_from_pb(cx, c.media)?,
            caption: c.caption,
        },
        Kind::Document(c) => InboundContent::Document {
            media: media_from_pb(cx, c.media)?,
            file_name: c.file_name,
            caption: c.caption,
        },
        Kind::Video(c) => InboundContent::Video {
            media: media_from_pb(cx, c.media)?,
            caption: c.caption,
        },
        Kind::Gif(c) => InboundContent::Gif {
            media: media_from_pb(cx, c.media)?,
            caption: c.caption,
        },
        Kind::Audio(c) => InboundContent::Audio {
            media: media_from_pb(cx, c.media)?,
            voice: c.voice,
        },
        Kind::Sticker(c) => InboundContent::Sticker {
            media: media_from_pb(cx, c.media)?,
            animated: c.animated,
        },
        Kind::Location(c) => InboundContent::Location {
            latitude: c.latitude,
            longitude: c.longitude,
            name: c.name,
            address: c.address,
        },
        Kind::Contacts(c) => InboundContent::Contacts {
            cards: c
                .cards
                .into_iter()
                .map(|card| ContactCard {
                    formatted_name: card.formatted_name,
                    phone_numbers: card.phone_numbers,
                })
                .collect(),
        },
        Kind::Reaction(c) => InboundContent::Reaction {
            target: WaMessageId::new(c.target_wa_message_id),
            emoji: non_empty(c.emoji),
        },
        Kind::ButtonReply(c) => InboundContent::ButtonReply {
            payload: c.payload,
            text: c.text,
        },
        Kind::InteractiveReply(c) => InboundContent::InteractiveReply {
            kind: match cx.enumeration(c.r#type, "content.interactive_reply.type")? {
                pb::InteractiveReplyType::Button => InteractiveReplyKind::Button,
                pb::InteractiveReplyType::List => InteractiveReplyKind::List,
                pb::InteractiveReplyType::Unspecified => {
                    return Err(cx.invalid("content.interactive_reply.type", "unspecified"));
                }
            },
            id: c.id,
            title: c.title,
            description: c.description,
        },
        Kind::Unsupported(c) => InboundContent::Unsupported {
            raw_type: c.raw_type,
            raw_payload: c.raw_payload,
        },
    })
}

fn template_send_to_pb(s: &TemplateSend) -> pb::TemplateSend {
    pb::TemplateSend {
        name: s.name.clone(),
        language: s.language.clone(),
        header_parameters: s.header_parameters.clone(),
        body_parameters: s.body_parameters.clone(),
    }
}

fn template_send_from_pb(s: pb::TemplateSend) -> TemplateSend {
    TemplateSend {
        name: s.name,
        language: s.language,
        header_parameters: s.header_parameters,
        body_parameters: s.body_parameters,
    }
}

fn outbound_to_pb(content: &OutboundContent) -> pb::OutboundContent {
    use pb::outbound_content::Kind;
    let kind = match content {
        OutboundContent::Text { body } => Kind::Text(pb::TextContent { body: body.clone() }),
        OutboundContent::Image {
            url,
            media_id,
            caption,
        } => Kind::Image(pb::OutboundImage {
            url: url.clone(),
            caption: caption.clone(),
            media_id: media_id.clone(),
        }),
        OutboundContent::Document {
            url,
            media_id,
            file_name,
            caption,
        } => Kind::Document(pb::OutboundDocument {
            url: url.clone(),
            file_name: file_name.clone(),
            caption: caption.clone(),
            media_id: media_id.clone(),
        }),
        OutboundContent::MacroText { macro_id, body } => Kind::MacroText(pb::MacroText {
            macro_id: macro_id.clone(),
            body: body.clone(),
        }),
        OutboundContent::Template(send) => Kind::Template(template_send_to_pb(send)),
    };
    pb::OutboundContent { kind: Some(kind) }
}

fn outbound_from_pb(cx: Cx, content: Option<pb::OutboundContent>) -> Result<OutboundContent, DecodeError> {
    use pb::outbound_content::Kind;
    Ok(
        match cx.required(cx.required(content, "content")?.kind, "content.kind")? {
            Kind::Text(c) => OutboundContent::Text { body: c.body },
            Kind::Image(c) => OutboundContent::Image {
                url: c.url,
                media_id: c.media_id,
                caption: c.caption,
            },
            Kind::Document(c) => OutboundContent::Document {
                url: c.url,
                media_id: c.media_id,
                file_name: c.file_name,
                caption: c.caption,
            },
            Kind::MacroText(c) => OutboundContent::MacroText {
                macro_id: c.macro_id,
                body: c.body,
            },
            Kind::Template(s) => OutboundContent::Template(template_send_from_pb(s)),
        },
    )
}

/// `(status, at, failure)` fields of a delivery update.
fn update_to_pb(update: &DeliveryUpdate) -> (i32, Option<Timestamp>, Option<pb::DeliveryFailure>) {
    match update {
        DeliveryUpdate::Progress { progress, at } => (
            match progress {
                DeliveryProgress::Queued => pb::DeliveryStatus::Queued,
                DeliveryProgress::Sent => pb::DeliveryStatus::Sent,
                DeliveryProgress::Delivered => pb::DeliveryStatus::Delivered,
                DeliveryProgress::Read => pb::DeliveryStatus::Read,
            }
            .into(),
            ts(*at),
            None,
        ),
        DeliveryUpdate::Failed { failure, at } => (
            pb::DeliveryStatus::Failed.into(),
            ts(*at),
            Some(pb::DeliveryFailure {
                code: failure.code,
                reason: failure.reason.clone(),
            }),
        ),
    }
}

fn update_from_pb(
    cx: Cx,
    status: i32,
    at: Option<Timestamp>,
    failure: Option<pb::DeliveryFailure>,
) -> Result<DeliveryUpdate, DecodeError> {
    let at = cx.time(at, "at")?;
    let progress = match cx.enumeration(status, "status")? {
        pb::DeliveryStatus::Queued => DeliveryProgress::Queued,
        pb::DeliveryStatus::Sent => DeliveryProgress::Sent,
        pb::DeliveryStatus::Delivered => DeliveryProgress::Delivered,
        pb::DeliveryStatus::Read => DeliveryProgress::Read,
        pb::DeliveryStatus::Failed => {
            let f = cx.required(failure, "failure")?;
            return Ok(DeliveryUpdate::Failed {
                failure: DeliveryFailure {
                    code: f.code,
                    reason: f.reason,
                },
                at,
            });
        }
        pb::DeliveryStatus::Unspecified => return Err(cx.invalid("status", "unspecified")),
    };
    Ok(DeliveryUpdate::Progress { progress, at })
}

fn wake_to_pb(reason: WakeReason) -> i32 {
    match reason {
        WakeReason::CustomerMessage => pb::WakeReason::CustomerMessage,
        WakeReason::Manual => pb::WakeReason::Manual,
        WakeReason::SnoozeEnded => pb::WakeReason::SnoozeEnded,
    }
    .into()
}

fn wake_from_pb(cx: Cx, value: i32) -> Result<WakeReason, DecodeError> {
    match cx.enumeration(value, "reason")? {
        pb::WakeReason::CustomerMessage => Ok(WakeReason::CustomerMessage),
        pb::WakeReason::Manual => Ok(WakeReason::Manual),
        pb::WakeReason::SnoozeEnded => Ok(WakeReason::SnoozeEnded),
        pb::WakeReason::Unspecified => Err(cx.invalid("reason", "unspecified")),
    }
}

fn encode_conversation(event: &ConversationEvent) -> (&'static str, Vec<u8>) {
    use ConversationEvent as E;
    match event {
        E::Started {
            conversation_id,
            thread_id,
            contact_id,
            origin,
            at,
        } => (
            t::CONVERSATION_STARTED,
            pb::ConversationStarted {
                conversation_id: conversation_id.to_string(),
                thread_id: thread_id.to_string(),
                contact_id: contact_id.to_string(),
                origin: origin_to_pb(*origin),
                started_at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::MessageReceived {
            conversation_id,
            message,
            received_at,
        } => (
            t::MESSAGE_RECEIVED,
            pb::MessageReceived {
                conversation_id: conversation_id.to_string(),
                wa_message_id: message.wa_message_id.to_string(),
                sent_at: ts(message.sent_at),
                received_at: ts(*received_at),
                content: Some(inbound_to_pb(&message.content)),
                context: context_to_pb(&message.context),
            }
            .encode_to_vec(),
        ),
        E::OutboundQueued {
            conversation_id,
            message_id,
            content,
            author,
            at,
        } => (
            t::OUTBOUND_MESSAGE_QUEUED,
            pb::OutboundMessageQueued {
                conversation_id: conversation_id.to_string(),
                message_id: message_id.to_string(),
                content: Some(outbound_to_pb(content)),
                author: actor(author),
                queued_at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::OutboundAccepted {
            conversation_id,
            message_id,
            wa_message_id,
            at,
        } => (
            t::OUTBOUND_MESSAGE_ACCEPTED,
            pb::OutboundMessageAccepted {
                conversation_id: conversation_id.to_string(),
                message_id: message_id.to_string(),
                wa_message_id: wa_message_id.to_string(),
                accepted_at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::DeliveryStatusChanged {
            conversation_id,
            message_id,
            update,
        } => {
            let (status, at, failure) = update_to_pb(update);
            (
                t::DELIVERY_STATUS_CHANGED,
                pb::DeliveryStatusChanged {
                    conversation_id: conversation_id.to_string(),
                    message_id: message_id.to_string(),
                    status,
                    at,
                    failure,
                }
                .encode_to_vec(),
            )
        }
        E::Assigned {
            conversation_id,
            assignee,
            by,
            at,
        } => (
            t::CONVERSATION_ASSIGNED,
            pb::ConversationAssigned {
                conversation_id: conversation_id.to_string(),
                assignee: opt_string(assignee.as_ref()),
                assigned_by: actor(by),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::Snoozed {
            conversation_id,
            until,
            by,
            at,
        } => (
            t::CONVERSATION_SNOOZED,
            pb::ConversationSnoozed {
                conversation_id: conversation_id.to_string(),
                until: ts(*until),
                snoozed_by: actor(by),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::Unsnoozed {
            conversation_id,
            reason,
            by,
            at,
        } => (
            t::CONVERSATION_UNSNOOZED,
            pb::ConversationUnsnoozed {
                conversation_id: conversation_id.to_string(),
                reason: wake_to_pb(*reason),
                unsnoozed_by: actor(by),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::SendAttempted {
            conversation_id,
            message_id,
            attempt,
            at,
        } => (
            t::OUTBOUND_SEND_ATTEMPTED,
            pb::OutboundSendAttempted {
                conversation_id: conversation_id.to_string(),
                message_id: message_id.to_string(),
                attempt: *attempt,
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::WindowClosingSoon {
            conversation_id,
            closes_at,
            at,
        } => (
            t::WINDOW_CLOSING_SOON,
            pb::WindowClosingSoon {
                conversation_id: conversation_id.to_string(),
                closes_at: ts(*closes_at),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::Closed {
            conversation_id,
            by,
            at,
        } => (
            t::CONVERSATION_CLOSED,
            pb::ConversationClosed {
                conversation_id: conversation_id.to_string(),
                closed_by: actor(by),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        E::Reopened {
            conversation_id,
            reason,
            by,
            at,
        } => (
            t::CONVERSATION_REOPENED,
            pb::ConversationReopened {
                conversation_id: conversation_id.to_string(),
                reason: wake_to_pb(*reason),
                reopened_by: actor(by),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_conversation(cx: Cx, bytes: &[u8]) -> Result<ConversationEvent, DecodeError> {
    use ConversationEvent as E;
    Ok(match cx.0 {
        t::CONVERSATION_STARTED => {
            let m = read!(cx, bytes, pb::ConversationStarted);
            E::Started {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                thread_id: cx.id(&m.thread_id, "thread_id")?,
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                origin: origin_from_pb(cx, m.origin)?,
                at: cx.time(m.started_at, "started_at")?,
            }
        }
        t::MESSAGE_RECEIVED => {
            let m = read!(cx, bytes, pb::MessageReceived);
            E::MessageReceived {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                message: InboundMessage {
                    wa_message_id: WaMessageId::new(m.wa_message_id),
                    sent_at: cx.time(m.sent_at, "sent_at")?,
                    content: inbound_from_pb(cx, m.content)?,
                    context: context_from_pb(m.context),
                },
                received_at: cx.time(m.received_at, "received_at")?,
            }
        }
        t::OUTBOUND_MESSAGE_QUEUED => {
            let m = read!(cx, bytes, pb::OutboundMessageQueued);
            E::OutboundQueued {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                message_id: cx.id(&m.message_id, "message_id")?,
                content: outbound_from_pb(cx, m.content)?,
                author: cx.actor(m.author, "author")?,
                at: cx.time(m.queued_at, "queued_at")?,
            }
        }
        t::OUTBOUND_MESSAGE_ACCEPTED => {
            let m = read!(cx, bytes, pb::OutboundMessageAccepted);
            E::OutboundAccepted {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                message_id: cx.id(&m.message_id, "message_id")?,
                wa_message_id: WaMessageId::new(m.wa_message_id),
                at: cx.time(m.accepted_at, "accepted_at")?,
            }
        }
        t::DELIVERY_STATUS_CHANGED => {
            let m = read!(cx, bytes, pb::DeliveryStatusChanged);
            E::DeliveryStatusChanged {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                message_id: cx.id(&m.message_id, "message_id")?,
                update: update_from_pb(cx, m.status, m.at, m.failure)?,
            }
        }
        t::CONVERSATION_ASSIGNED => {
            let m = read!(cx, bytes, pb::ConversationAssigned);
            E::Assigned {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                assignee: non_empty(m.assignee).map(TeammateId::new),
                by: cx.actor(m.assigned_by, "assigned_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
        t::CONVERSATION_SNOOZED => {
            let m = read!(cx, bytes, pb::ConversationSnoozed);
            E::Snoozed {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                until: cx.time(m.until, "until")?,
                by: cx.actor(m.snoozed_by, "snoozed_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
        t::CONVERSATION_UNSNOOZED => {
            let m = read!(cx, bytes, pb::ConversationUnsnoozed);
            E::Unsnoozed {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                reason: wake_from_pb(cx, m.reason)?,
                by: cx.actor(m.unsnoozed_by, "unsnoozed_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
        t::CONVERSATION_CLOSED => {
            let m = read!(cx, bytes, pb::ConversationClosed);
            E::Closed {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                by: cx.actor(m.closed_by, "closed_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
        t::OUTBOUND_SEND_ATTEMPTED => {
            let m = read!(cx, bytes, pb::OutboundSendAttempted);
            E::SendAttempted {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                message_id: cx.id(&m.message_id, "message_id")?,
                attempt: m.attempt,
                at: cx.time(m.at, "at")?,
            }
        }
        t::WINDOW_CLOSING_SOON => {
            let m = read!(cx, bytes, pb::WindowClosingSoon);
            E::WindowClosingSoon {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                closes_at: cx.time(m.closes_at, "closes_at")?,
                at: cx.time(m.at, "at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::ConversationReopened);
            E::Reopened {
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                reason: wake_from_pb(cx, m.reason)?,
                by: cx.actor(m.reopened_by, "reopened_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Contact
// ---------------------------------------------------------------------------

fn encode_contact(event: &ContactEvent) -> (&'static str, Vec<u8>) {
    match event {
        ContactEvent::Created {
            contact_id,
            workspace_id,
            kind,
            name,
            phone_numbers,
            wa_id,
            external_user_id,
            by,
            at,
        } => (
            t::CONTACT_CREATED,
            pb::ContactCreated {
                contact_id: contact_id.to_string(),
                workspace_id: workspace_id.to_string(),
                kind: match kind {
                    ContactKind::Lead => pb::ContactKind::Lead,
                    ContactKind::User => pb::ContactKind::User,
                }
                .into(),
                name: name.clone(),
                phone_numbers: phone_numbers.iter().map(ToString::to_string).collect(),
                wa_id: opt_string(wa_id.as_ref()),
                external_user_id: external_user_id.clone().unwrap_or_default(),
                created_at: ts(*at),
                created_by: actor(by),
            }
            .encode_to_vec(),
        ),
        ContactEvent::PhoneAdded {
            contact_id,
            phone_number,
            at,
        } => (
            t::CONTACT_PHONE_ADDED,
            pb::ContactPhoneAdded {
                contact_id: contact_id.to_string(),
                phone_number: phone_number.to_string(),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        ContactEvent::ConvertedToUser {
            contact_id,
            external_user_id,
            by,
            at,
        } => (
            t::LEAD_CONVERTED_TO_USER,
            pb::LeadConvertedToUser {
                contact_id: contact_id.to_string(),
                external_user_id: external_user_id.clone(),
                at: ts(*at),
                converted_by: actor(by),
            }
            .encode_to_vec(),
        ),
        ContactEvent::Merged {
            contact_id,
            into,
            reason,
            by,
            at,
        } => (
            t::CONTACT_MERGED,
            pb::ContactMerged {
                contact_id: contact_id.to_string(),
                into_contact_id: into.to_string(),
                reason: match reason {
                    MergeReason::SamePhone => pb::MergeReason::SamePhone,
                    MergeReason::Manual => pb::MergeReason::Manual,
                }
                .into(),
                merged_by: actor(by),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_contact(cx: Cx, bytes: &[u8]) -> Result<ContactEvent, DecodeError> {
    Ok(match cx.0 {
        t::CONTACT_CREATED => {
            let m = read!(cx, bytes, pb::ContactCreated);
            ContactEvent::Created {
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                kind: match cx.enumeration(m.kind, "kind")? {
                    pb::ContactKind::Lead => ContactKind::Lead,
                    pb::ContactKind::User => ContactKind::User,
                    pb::ContactKind::Unspecified => return Err(cx.invalid("kind", "unspecified")),
                },
                name: m.name,
                phone_numbers: m
                    .phone_numbers
                    .iter()
                    .map(|p| cx.phone(p, "phone_numbers"))
                    .collect::<Result<_, _>>()?,
                wa_id: non_empty(m.wa_id).map(WaId::new),
                external_user_id: non_empty(m.external_user_id),
                by: cx.actor(m.created_by, "created_by")?,
                at: cx.time(m.created_at, "created_at")?,
            }
        }
        t::CONTACT_PHONE_ADDED => {
            let m = read!(cx, bytes, pb::ContactPhoneAdded);
            ContactEvent::PhoneAdded {
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                phone_number: cx.phone(&m.phone_number, "phone_number")?,
                at: cx.time(m.at, "at")?,
            }
        }
        t::LEAD_CONVERTED_TO_USER => {
            let m = read!(cx, bytes, pb::LeadConvertedToUser);
            ContactEvent::ConvertedToUser {
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                external_user_id: m.external_user_id,
                by: cx.actor(m.converted_by, "converted_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::ContactMerged);
            ContactEvent::Merged {
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                into: cx.id(&m.into_contact_id, "into_contact_id")?,
                reason: match cx.enumeration(m.reason, "reason")? {
                    pb::MergeReason::SamePhone => MergeReason::SamePhone,
                    pb::MergeReason::Manual => MergeReason::Manual,
                    pb::MergeReason::Unspecified => return Err(cx.invalid("reason", "unspecified")),
                },
                by: cx.actor(m.merged_by, "merged_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Template catalogue
// ---------------------------------------------------------------------------

fn status_to_pb(status: TemplateStatus) -> i32 {
    match status {
        TemplateStatus::Pending => pb::TemplateStatus::Pending,
        TemplateStatus::Approved => pb::TemplateStatus::Approved,
        TemplateStatus::Paused => pb::TemplateStatus::Paused,
        TemplateStatus::Disabled => pb::TemplateStatus::Disabled,
        TemplateStatus::Rejected => pb::TemplateStatus::Rejected,
    }
    .into()
}

fn status_from_pb(cx: Cx, value: i32) -> Result<TemplateStatus, DecodeError> {
    match cx.enumeration(value, "status")? {
        pb::TemplateStatus::Pending => Ok(TemplateStatus::Pending),
        pb::TemplateStatus::Approved => Ok(TemplateStatus::Approved),
        pb::TemplateStatus::Paused => Ok(TemplateStatus::Paused),
        pb::TemplateStatus::Disabled => Ok(TemplateStatus::Disabled),
        pb::TemplateStatus::Rejected => Ok(TemplateStatus::Rejected),
        pb::TemplateStatus::Unspecified => Err(cx.invalid("status", "unspecified")),
    }
}

fn encode_template(event: &TemplateEvent) -> (&'static str, Vec<u8>) {
    match event {
        TemplateEvent::Registered {
            business_account_id,
            template,
            at,
        } => {
            let d = &template.definition;
            (
                t::TEMPLATE_REGISTERED,
                pb::TemplateRegistered {
                    business_account_id: business_account_id.to_string(),
                    name: d.name.clone(),
                    language: d.language.clone(),
                    category: match d.category {
                        TemplateCategory::Marketing => pb::TemplateCategory::Marketing,
                        TemplateCategory::Utility => pb::TemplateCategory::Utility,
                        TemplateCategory::Authentication => pb::TemplateCategory::Authentication,
                    }
                    .into(),
                    components: d
                        .components
                        .iter()
                        .map(|c| pb::TemplateComponent {
                            r#type: match c.kind {
                                ComponentKind::Header => pb::TemplateComponentType::Header,
                                ComponentKind::Body => pb::TemplateComponentType::Body,
                                ComponentKind::Footer => pb::TemplateComponentType::Footer,
                                ComponentKind::Buttons => pb::TemplateComponentType::Buttons,
                            }
                            .into(),
                            format: c.format.clone(),
                            text: c.text.clone(),
                        })
                        .collect(),
                    header_parameter_count: template.header_parameter_count,
                    body_parameter_count: template.body_parameter_count,
                    status: status_to_pb(template.status),
                    at: ts(*at),
                }
                .encode_to_vec(),
            )
        }
        TemplateEvent::StatusChanged {
            business_account_id,
            name,
            language,
            status,
            reason,
            at,
        } => (
            t::TEMPLATE_STATUS_CHANGED,
            pb::TemplateStatusChanged {
                business_account_id: business_account_id.to_string(),
                name: name.clone(),
                language: language.clone(),
                status: status_to_pb(*status),
                reason: reason.clone(),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_template(cx: Cx, bytes: &[u8]) -> Result<TemplateEvent, DecodeError> {
    Ok(match cx.0 {
        t::TEMPLATE_REGISTERED => {
            let m = read!(cx, bytes, pb::TemplateRegistered);
            let components = m
                .components
                .into_iter()
                .map(|c| {
                    Ok(TemplateComponent {
                        kind: match cx.enumeration(c.r#type, "components.type")? {
                            pb::TemplateComponentType::Header => ComponentKind::Header,
                            pb::TemplateComponentType::Body => ComponentKind::Body,
                            pb::TemplateComponentType::Footer => ComponentKind::Footer,
                            pb::TemplateComponentType::Buttons => ComponentKind::Buttons,
                            pb::TemplateComponentType::Unspecified => {
                                return Err(cx.invalid("components.type", "unspecified"));
                            }
                        },
                        format: c.format,
                        text: c.text,
                    })
                })
                .collect::<Result<_, DecodeError>>()?;
            TemplateEvent::Registered {
                business_account_id: BusinessAccountId::new(m.business_account_id),
                template: Template {
                    definition: TemplateDefinition {
                        name: m.name,
                        language: m.language,
                        category: match cx.enumeration(m.category, "category")? {
                            pb::TemplateCategory::Marketing => TemplateCategory::Marketing,
                            pb::TemplateCategory::Utility => TemplateCategory::Utility,
                            pb::TemplateCategory::Authentication => TemplateCategory::Authentication,
                            pb::TemplateCategory::Unspecified => {
                                return Err(cx.invalid("category", "unspecified"));
                            }
                        },
                        components,
                    },
                    header_parameter_count: m.header_parameter_count,
                    body_parameter_count: m.body_parameter_count,
                    status: status_from_pb(cx, m.status)?,
                },
                at: cx.time(m.at, "at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::TemplateStatusChanged);
            TemplateEvent::StatusChanged {
                business_account_id: BusinessAccountId::new(m.business_account_id),
                name: m.name,
                language: m.language,
                status: status_from_pb(cx, m.status)?,
                reason: m.reason,
                at: cx.time(m.at, "at")?,
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Campaign
// ---------------------------------------------------------------------------

fn encode_campaign(event: &CampaignEvent) -> (&'static str, Vec<u8>) {
    use pb::campaign_trigger::Kind;
    match event {
        CampaignEvent::Created {
            campaign_id,
            workspace_id,
            business_phone_number_id,
            template,
            recipients,
            trigger,
            by,
            at,
        } => (
            t::CAMPAIGN_CREATED,
            pb::CampaignCreated {
                campaign_id: campaign_id.to_string(),
                workspace_id: workspace_id.to_string(),
                business_phone_number_id: business_phone_number_id.to_string(),
                template: Some(template_send_to_pb(template)),
                recipient_contact_ids: recipients.iter().map(ToString::to_string).collect(),
                trigger: Some(pb::CampaignTrigger {
                    kind: Some(match trigger {
                        CampaignTrigger::Immediately => Kind::Immediately(pb::ImmediateTrigger {}),
                        CampaignTrigger::ScheduledAt(at) => Kind::ScheduledAt(ts(*at).unwrap_or_default()),
                        CampaignTrigger::OnEvent { event_name } => Kind::EventName(event_name.clone()),
                    }),
                }),
                created_by: actor(by),
                created_at: ts(*at),
            }
            .encode_to_vec(),
        ),
        CampaignEvent::Launched { campaign_id, at } => (
            t::CAMPAIGN_LAUNCHED,
            pb::CampaignLaunched {
                campaign_id: campaign_id.to_string(),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        CampaignEvent::RecipientQueued {
            campaign_id,
            contact_id,
            message_id,
            trigger_event,
            at,
        } => (
            t::CAMPAIGN_RECIPIENT_QUEUED,
            pb::CampaignRecipientQueued {
                campaign_id: campaign_id.to_string(),
                contact_id: contact_id.to_string(),
                message_id: message_id.to_string(),
                trigger_event: trigger_event.clone().unwrap_or_default(),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        CampaignEvent::RecipientStatusChanged {
            campaign_id,
            contact_id,
            update,
        } => {
            let (status, at, failure) = update_to_pb(update);
            (
                t::CAMPAIGN_RECIPIENT_STATUS_CHANGED,
                pb::CampaignRecipientStatusChanged {
                    campaign_id: campaign_id.to_string(),
                    contact_id: contact_id.to_string(),
                    status,
                    at,
                    failure,
                }
                .encode_to_vec(),
            )
        }
        CampaignEvent::Cancelled { campaign_id, by, at } => (
            t::CAMPAIGN_CANCELLED,
            pb::CampaignCancelled {
                campaign_id: campaign_id.to_string(),
                cancelled_by: actor(by),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_campaign(cx: Cx, bytes: &[u8]) -> Result<CampaignEvent, DecodeError> {
    use pb::campaign_trigger::Kind;
    Ok(match cx.0 {
        t::CAMPAIGN_CREATED => {
            let m = read!(cx, bytes, pb::CampaignCreated);
            let trigger = cx.required(cx.required(m.trigger, "trigger")?.kind, "trigger.kind")?;
            CampaignEvent::Created {
                campaign_id: cx.id(&m.campaign_id, "campaign_id")?,
                workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                business_phone_number_id: PhoneNumberId::new(m.business_phone_number_id),
                template: template_send_from_pb(cx.required(m.template, "template")?),
                recipients: m
                    .recipient_contact_ids
                    .iter()
                    .map(|id| cx.id(id, "recipient_contact_ids"))
                    .collect::<Result<_, _>>()?,
                trigger: match trigger {
                    Kind::Immediately(_) => CampaignTrigger::Immediately,
                    Kind::ScheduledAt(at) => {
                        CampaignTrigger::ScheduledAt(cx.time(Some(at), "trigger.scheduled_at")?)
                    }
                    Kind::EventName(event_name) => CampaignTrigger::OnEvent { event_name },
                },
                by: cx.actor(m.created_by, "created_by")?,
                at: cx.time(m.created_at, "created_at")?,
            }
        }
        t::CAMPAIGN_LAUNCHED => {
            let m = read!(cx, bytes, pb::CampaignLaunched);
            CampaignEvent::Launched {
                campaign_id: cx.id(&m.campaign_id, "campaign_id")?,
                at: cx.time(m.at, "at")?,
            }
        }
        t::CAMPAIGN_RECIPIENT_QUEUED => {
            let m = read!(cx, bytes, pb::CampaignRecipientQueued);
            CampaignEvent::RecipientQueued {
                campaign_id: cx.id(&m.campaign_id, "campaign_id")?,
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                message_id: cx.id(&m.message_id, "message_id")?,
                trigger_event: non_empty(m.trigger_event),
                at: cx.time(m.at, "at")?,
            }
        }
        t::CAMPAIGN_RECIPIENT_STATUS_CHANGED => {
            let m = read!(cx, bytes, pb::CampaignRecipientStatusChanged);
            CampaignEvent::RecipientStatusChanged {
                campaign_id: cx.id(&m.campaign_id, "campaign_id")?,
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                update: update_from_pb(cx, m.status, m.at, m.failure)?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::CampaignCancelled);
            CampaignEvent::Cancelled {
                campaign_id: cx.id(&m.campaign_id, "campaign_id")?,
                by: cx.actor(m.cancelled_by, "cancelled_by")?,
                at: cx.time(m.at, "at")?,
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Messenger-to-WhatsApp switch
// ---------------------------------------------------------------------------

fn encode_switch(event: &SwitchEvent) -> (&'static str, Vec<u8>) {
    match event {
        SwitchEvent::Offered {
            token,
            workspace_id,
            messenger_conversation_id,
            business_phone_number,
            link,
            offered_by,
            at,
            expires_at,
        } => (
            t::WHATSAPP_SWITCH_OFFERED,
            pb::WhatsAppSwitchOffered {
                token: token.to_string(),
                workspace_id: workspace_id.to_string(),
                messenger_conversation_id: messenger_conversation_id.to_string(),
                business_phone_number: business_phone_number.to_string(),
                link: link.clone(),
                offered_by: actor(offered_by),
                offered_at: ts(*at),
                expires_at: ts(*expires_at),
            }
            .encode_to_vec(),
        ),
        SwitchEvent::Completed {
            token,
            messenger_conversation_id,
            thread_id,
            contact_id,
            conversation_id,
            wa_message_id,
            at,
        } => (
            t::WHATSAPP_SWITCH_COMPLETED,
            pb::WhatsAppSwitchCompleted {
                token: token.to_string(),
                messenger_conversation_id: messenger_conversation_id.to_string(),
                thread_id: thread_id.to_string(),
                contact_id: contact_id.to_string(),
                conversation_id: conversation_id.to_string(),
                wa_message_id: wa_message_id.to_string(),
                completed_at: ts(*at),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_switch(cx: Cx, bytes: &[u8]) -> Result<SwitchEvent, DecodeError> {
    let token =
        |value: &str| SwitchToken::parse(value).ok_or_else(|| cx.invalid("token", "not 32 hex digits"));
    Ok(match cx.0 {
        t::WHATSAPP_SWITCH_OFFERED => {
            let m = read!(cx, bytes, pb::WhatsAppSwitchOffered);
            SwitchEvent::Offered {
                token: token(&m.token)?,
                workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                messenger_conversation_id: MessengerConversationId::new(m.messenger_conversation_id),
                business_phone_number: cx.phone(&m.business_phone_number, "business_phone_number")?,
                link: m.link,
                offered_by: cx.actor(m.offered_by, "offered_by")?,
                at: cx.time(m.offered_at, "offered_at")?,
                expires_at: cx.time(m.expires_at, "expires_at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::WhatsAppSwitchCompleted);
            SwitchEvent::Completed {
                token: token(&m.token)?,
                messenger_conversation_id: MessengerConversationId::new(m.messenger_conversation_id),
                thread_id: cx.id(&m.thread_id, "thread_id")?,
                contact_id: cx.id(&m.contact_id, "contact_id")?,
                conversation_id: cx.id(&m.conversation_id, "conversation_id")?,
                wa_message_id: WaMessageId::new(m.wa_message_id),
                at: cx.time(m.completed_at, "completed_at")?,
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Webhook payloads
// ---------------------------------------------------------------------------

fn encode_payload(event: &PayloadEvent) -> (&'static str, Vec<u8>) {
    match event {
        PayloadEvent::Received { payload_id, body, at } => (
            t::WEBHOOK_PAYLOAD_RECEIVED,
            pb::WebhookPayloadReceived {
                payload_id: payload_id.to_string(),
                body: body.clone(),
                received_at: ts(*at),
            }
            .encode_to_vec(),
        ),
        PayloadEvent::Processed {
            payload_id,
            items,
            at,
        } => (
            t::WEBHOOK_PAYLOAD_PROCESSED,
            pb::WebhookPayloadProcessed {
                payload_id: payload_id.to_string(),
                items: *items,
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        PayloadEvent::Parked {
            payload_id,
            phone_number_ids,
            at,
        } => (
            t::WEBHOOK_PAYLOAD_PARKED,
            pb::WebhookPayloadParked {
                payload_id: payload_id.to_string(),
                phone_number_ids: phone_number_ids.iter().map(ToString::to_string).collect(),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        PayloadEvent::Failed {
            payload_id,
            error,
            at,
        } => (
            t::WEBHOOK_PAYLOAD_FAILED,
            pb::WebhookPayloadFailed {
                payload_id: payload_id.to_string(),
                error: error.clone(),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_payload(cx: Cx, bytes: &[u8]) -> Result<PayloadEvent, DecodeError> {
    Ok(match cx.0 {
        t::WEBHOOK_PAYLOAD_RECEIVED => {
            let m = read!(cx, bytes, pb::WebhookPayloadReceived);
            PayloadEvent::Received {
                payload_id: cx.id(&m.payload_id, "payload_id")?,
                body: m.body,
                at: cx.time(m.received_at, "received_at")?,
            }
        }
        t::WEBHOOK_PAYLOAD_PROCESSED => {
            let m = read!(cx, bytes, pb::WebhookPayloadProcessed);
            PayloadEvent::Processed {
                payload_id: cx.id(&m.payload_id, "payload_id")?,
                items: m.items,
                at: cx.time(m.at, "at")?,
            }
        }
        t::WEBHOOK_PAYLOAD_PARKED => {
            let m = read!(cx, bytes, pb::WebhookPayloadParked);
            PayloadEvent::Parked {
                payload_id: cx.id(&m.payload_id, "payload_id")?,
                phone_number_ids: m.phone_number_ids.into_iter().map(PhoneNumberId::new).collect(),
                at: cx.time(m.at, "at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::WebhookPayloadFailed);
            PayloadEvent::Failed {
                payload_id: cx.id(&m.payload_id, "payload_id")?,
                error: m.error,
                at: cx.time(m.at, "at")?,
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------

fn timer_action_to_pb(action: &TimerAction) -> pb::TimerAction {
    use pb::timer_action::Kind;
    let kind = match action {
        TimerAction::LaunchCampaign { campaign_id } => Kind::LaunchCampaign(pb::LaunchCampaign {
            campaign_id: campaign_id.to_string(),
        }),
        TimerAction::WakeConversation {
            conversation_id,
            until,
        } => Kind::WakeConversation(pb::WakeConversation {
            conversation_id: conversation_id.to_string(),
            until: ts(*until),
        }),
        TimerAction::WarnWindowClosing {
            conversation_id,
            closes_at,
        } => Kind::WarnWindowClosing(pb::WarnWindowClosing {
            conversation_id: conversation_id.to_string(),
            closes_at: ts(*closes_at),
        }),
        TimerAction::ExpireUncertainSend {
            conversation_id,
            message_id,
        } => Kind::ExpireUncertainSend(pb::ExpireUncertainSend {
            conversation_id: conversation_id.to_string(),
            message_id: message_id.to_string(),
        }),
    };
    pb::TimerAction { kind: Some(kind) }
}

fn timer_action_from_pb(cx: Cx, action: Option<pb::TimerAction>) -> Result<TimerAction, DecodeError> {
    use pb::timer_action::Kind;
    let kind = cx.required(cx.required(action, "action")?.kind, "action.kind")?;
    Ok(match kind {
        Kind::LaunchCampaign(a) => TimerAction::LaunchCampaign {
            campaign_id: cx.id(&a.campaign_id, "action.campaign_id")?,
        },
        Kind::WakeConversation(a) => TimerAction::WakeConversation {
            conversation_id: cx.id(&a.conversation_id, "action.conversation_id")?,
            until: cx.time(a.until, "action.until")?,
        },
        Kind::WarnWindowClosing(a) => TimerAction::WarnWindowClosing {
            conversation_id: cx.id(&a.conversation_id, "action.conversation_id")?,
            closes_at: cx.time(a.closes_at, "action.closes_at")?,
        },
        Kind::ExpireUncertainSend(a) => TimerAction::ExpireUncertainSend {
            conversation_id: cx.id(&a.conversation_id, "action.conversation_id")?,
            message_id: cx.id(&a.message_id, "action.message_id")?,
        },
    })
}

fn encode_timer(event: &TimerEvent) -> (&'static str, Vec<u8>) {
    match event {
        TimerEvent::Scheduled {
            timer_id,
            workspace_id,
            due_at,
            action,
            at,
        } => (
            t::TIMER_SCHEDULED,
            pb::TimerScheduled {
                timer_id: timer_id.to_string(),
                workspace_id: workspace_id.to_string(),
                due_at: ts(*due_at),
                action: Some(timer_action_to_pb(action)),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
        TimerEvent::Fired { timer_id, at } => (
            t::TIMER_FIRED,
            pb::TimerFired {
                timer_id: timer_id.to_string(),
                at: ts(*at),
            }
            .encode_to_vec(),
        ),
    }
}

fn decode_timer(cx: Cx, bytes: &[u8]) -> Result<TimerEvent, DecodeError> {
    Ok(match cx.0 {
        t::TIMER_SCHEDULED => {
            let m = read!(cx, bytes, pb::TimerScheduled);
            TimerEvent::Scheduled {
                timer_id: cx.id(&m.timer_id, "timer_id")?,
                workspace_id: cx.id(&m.workspace_id, "workspace_id")?,
                due_at: cx.time(m.due_at, "due_at")?,
                action: timer_action_from_pb(cx, m.action)?,
                at: cx.time(m.at, "at")?,
            }
        }
        _ => {
            let m = read!(cx, bytes, pb::TimerFired);
            TimerEvent::Fired {
                timer_id: cx.id(&m.timer_id, "timer_id")?,
                at: cx.time(m.at, "at")?,
            }
        }
    })
}

/// Conversions for messages the gRPC API carries too (settings, inbound
/// content, template sends), so the API layer reads them by the same rules
/// as stored events. Errors name the field that is wrong.
pub mod api {
    use palaver_proto::v1 as pb;

    use super::{Cx, DecodeError, event_types as t};
    use crate::{channel::ChannelSettings, message::InboundContent, templates::TemplateSend};

    /// Channel settings from their protobuf form, validated.
    pub fn channel_settings(settings: pb::ChannelSettings) -> Result<ChannelSettings, DecodeError> {
        super::settings_from_pb(Cx(t::CHANNEL_SETTINGS_CHANGED), settings)
    }

    /// Channel settings in their protobuf form.
    pub fn channel_settings_to_proto(settings: &ChannelSettings) -> pb::ChannelSettings {
        super::settings_to_pb(settings)
    }

    /// Inbound content from its protobuf form; `None` is refused as missing.
    pub fn inbound_content(content: Option<pb::InboundContent>) -> Result<InboundContent, DecodeError> {
        super::inbound_from_pb(Cx(t::MESSAGE_RECEIVED), content)
    }

    /// A template send from its protobuf form.
    pub fn template_send(send: pb::TemplateSend) -> TemplateSend {
        super::template_send_from_pb(send)
    }

    /// A template send in its protobuf form.
    pub fn template_send_to_proto(send: &TemplateSend) -> pb::TemplateSend {
        super::template_send_to_pb(send)
    }
}
