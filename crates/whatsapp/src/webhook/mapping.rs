//! From Meta's notification to what Palaver acts on. A pure function of the
//! parsed notification: same payload, same items, in payload order (entry
//! by entry, change by change; within a `messages` change: messages, then
//! statuses, then errors). Ids are checked on the way; an empty id or a
//! timestamp that is not Unix seconds is an [`Error::Invalid`] naming the
//! JSON path.

use chrono::{DateTime, Utc};
use palaver_domain::delivery::{DeliveryFailure, DeliveryProgress, DeliveryUpdate};
use palaver_domain::ids::{BusinessAccountId, PhoneNumberId, WaId, WaMessageId};
use palaver_domain::message::{
    ContactCard, InboundContent, InboundMessage, InteractiveReplyKind, Media, MessageContext, Referral,
};
use palaver_domain::templates::TemplateStatus;

use super::payload::{
    ApiError, ChangeValue, Contact, MediaObject, Message, MessagesValue, Notification, ReferralObject,
    Status, TemplateStatusValue,
};
use super::{Error, Result};

/// Who wrote a message. At least one of `wa_id` and `user_id` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The customer's WhatsApp id (phone digits); `None` when they hide
    /// their number behind a username.
    pub wa_id: Option<WaId>,
    /// The business-scoped user id (BSUID); `None` in payloads from before
    /// BSUIDs.
    pub user_id: Option<String>,
    /// Profile name, empty if the payload has none.
    pub profile_name: String,
}

/// One thing a notification reports.
#[derive(Clone, Debug, PartialEq)]
// Items are built once per payload and moved straight into the
// application; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// A customer message.
    Message {
        /// The WhatsApp Business Account (`entry[].id`).
        waba_id: BusinessAccountId,
        /// The business number it was sent to.
        phone_number_id: PhoneNumberId,
        /// Who sent it.
        customer: Customer,
        /// The message.
        message: InboundMessage,
    },
    /// A delivery report of a message the business sent.
    Status {
        /// The WhatsApp Business Account.
        waba_id: BusinessAccountId,
        /// The business number that sent the message.
        phone_number_id: PhoneNumberId,
        /// The message reported on.
        wa_message_id: WaMessageId,
        /// The customer's WhatsApp id, when the payload has it.
        recipient: Option<String>,
        /// The customer's business-scoped user id, when the payload has it.
        recipient_user_id: Option<String>,
        /// What happened.
        update: DeliveryUpdate,
        /// `biz_opaque_callback_data` of the send (`<conversation>/<message>`), to
        /// reconcile a send whose answer was lost.
        callback_data: Option<String>,
    },
    /// A template's review status changed.
    TemplateStatus {
        /// The account the template belongs to.
        waba_id: BusinessAccountId,
        /// Template name.
        name: String,
        /// Language code.
        language: String,
        /// The new status.
        status: TemplateStatus,
        /// Meta's reason, `None` for `NONE` or none.
        reason: Option<String>,
    },
    /// Anything Palaver does not act on: other fields, system messages,
    /// errors, statuses and template events without a domain equivalent.
    /// Log or park it.
    Unhandled {
        /// The change's `field`.
        field: String,
        /// What it was, for a person reading the log.
        reason: String,
    },
}

/// The items of a notification, in payload order.
pub fn items(notification: &Notification) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for (i, entry) in notification.entry.iter().enumerate() {
        for (j, change) in entry.changes.iter().enumerate() {
            let path = format!("entry[{i}].changes[{j}].value");
            match &change.value {
                ChangeValue::Messages(value) => {
                    let waba_id = business_account(i, &entry.id)?;
                    messages_items(&path, &waba_id, value, &mut out)?;
                }
                ChangeValue::TemplateStatus(value) => {
                    let waba_id = business_account(i, &entry.id)?;
                    out.push(template_item(&path, waba_id, value)?);
                }
                ChangeValue::Other(_) => out.push(Item::Unhandled {
                    field: change.field.clone(),
                    reason: format!("field `{}` is not handled (WABA {})", change.field, entry.id),
                }),
            }
        }
    }
    Ok(out)
}

const MESSAGES: &str = "messages";

fn business_account(i: usize, id: &str) -> Result<BusinessAccountId> {
    non_empty(&format!("entry[{i}].id"), id).map(BusinessAccountId::new)
}

fn messages_items(
    path: &str,
    waba_id: &BusinessAccountId,
    value: &MessagesValue,
    out: &mut Vec<Item>,
) -> Result<()> {
    let phone_number_id = PhoneNumberId::new(non_empty(
        &format!("{path}.metadata.phone_number_id"),
        &value.metadata.phone_number_id,
    )?);
    if value.messages.is_empty() && value.statuses.is_empty() && value.errors.is_empty() {
        out.push(Item::Unhandled {
            field: MESSAGES.to_owned(),
            reason: format!("a messages change for {phone_number_id} with no messages, statuses or errors"),
        });
    }
    for (k, message) in value.messages.iter().enumerate() {
        let path = format!("{path}.messages[{k}]");
        out.push(message_item(
            &path,
            waba_id,
            &phone_number_id,
            &value.contacts,
            message,
        )?);
    }
    for (k, status) in value.statuses.iter().enumerate() {
        let path = format!("{path}.statuses[{k}]");
        out.push(status_item(&path, waba_id, &phone_number_id, status)?);
    }
    for error in &value.errors {
        out.push(Item::Unhandled {
            field: MESSAGES.to_owned(),
            reason: format!("error {} for {phone_number_id}: {}", error.code, error.describe()),
        });
    }
    Ok(())
}

fn message_item(
    path: &str,
    waba_id: &BusinessAccountId,
    phone_number_id: &PhoneNumberId,
    contacts: &[Contact],
    message: &Message,
) -> Result<Item> {
    let wa_message_id = WaMessageId::new(non_empty(&format!("{path}.id"), &message.id)?);
    let sent_at = timestamp(&format!("{path}.timestamp"), &message.timestamp)?;
    let customer = customer(path, contacts, message)?;
    if message.kind == "system" {
        let system = message.system.clone().unwrap_or_default();
        return Ok(Item::Unhandled {
            field: MESSAGES.to_owned(),
            reason: format!(
                "system message {} ({}) from {}: {}",
                wa_message_id,
                system.kind.as_deref().unwrap_or("no type"),
                describe_customer(&customer),
                system.body.as_deref().unwrap_or_default(),
            ),
        });
    }
    let content = content(path, message)?;
    Ok(Item::Message {
        waba_id: waba_id.clone(),
        phone_number_id: phone_number_id.clone(),
        customer,
        message: InboundMessage {
            wa_message_id,
            sent_at,
            content,
            context: context(message),
        },
    })
}

/// The sender: `from` / `from_user_id` of the message, completed (profile
/// name, the other id) from the `contacts[]` entry they match.
fn customer(path: &str, contacts: &[Contact], message: &Message) -> Result<Customer> {
    let from = present(message.from.as_deref());
    let from_user_id = present(message.from_user_id.as_deref());
    if from.is_none() && from_user_id.is_none() {
        return Err(Error::Invalid {
            path: format!("{path}.from"),
            message: "the message has neither `from` nor `from_user_id`".to_owned(),
        });
    }
    let contact = contacts.iter().find(|c| {
        (from.is_some() && present(c.wa_id.as_deref()) == from)
            || (from_user_id.is_some() && present(c.user_id.as_deref()) == from_user_id)
    });
    let wa_id = from.or_else(|| contact.and_then(|c| present(c.wa_id.as_deref())));
    let user_id = from_user_id.or_else(|| contact.and_then(|c| present(c.user_id.as_deref())));
    let profile_name = contact
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.clone())
        .unwrap_or_default();
    Ok(Customer {
        wa_id: wa_id.map(WaId::new),
        user_id: user_id.map(str::to_owned),
        profile_name,
    })
}

fn describe_customer(customer: &Customer) -> String {
    match (&customer.wa_id, &customer.user_id) {
        (Some(wa_id), _) => wa_id.to_string(),
        (None, Some(user_id)) => user_id.clone(),
        (None, None) => "unknown sender".to_owned(),
    }
}

fn content(path: &str, message: &Message) -> Result<InboundContent> {
    let kind = message.kind.as_str();
    let missing = || Error::Invalid {
        path: format!("{path}.{kind}"),
        message: format!("a `{kind}` message without its `{kind}` object"),
    };
    let unsupported = || InboundContent::Unsupported {
        raw_type: message.kind.clone(),
        raw_payload: message.raw.clone(),
    };
    let media_path = format!("{path}.{kind}.id");
    Ok(match kind {
        "text" => InboundContent::Text {
            body: message.text.as_ref().ok_or_else(missing)?.body.clone(),
        },
        "image" => {
            let image = message.image.as_ref().ok_or_else(missing)?;
            InboundContent::Image {
                media: media(&media_path, image)?,
                caption: text(&image.caption),
            }
        }
        "video" => {
            let video = message.video.as_ref().ok_or_else(missing)?;
            let media = media(&media_path, video)?;
            let caption = text(&video.caption);
            if video.animated == Some(true) {
                InboundContent::Gif { media, caption }
            } else {
                InboundContent::Video { media, caption }
            }
        }
        "audio" => {
            let audio = message.audio.as_ref().ok_or_else(missing)?;
            InboundContent::Audio {
                media: media(&media_path, audio)?,
                voice: audio.voice.unwrap_or(false),
            }
        }
        "document" => {
            let document = message.document.as_ref().ok_or_else(missing)?;
            InboundContent::Document {
                media: media(&media_path, document)?,
                file_name: text(&document.filename),
                caption: text(&document.caption),
            }
        }
        "sticker" => {
            let sticker = message.sticker.as_ref().ok_or_else(missing)?;
            InboundContent::Sticker {
                media: media(&media_path, sticker)?,
                animated: sticker.animated.unwrap_or(false),
            }
        }
        "location" => {
            let location = message.location.as_ref().ok_or_else(missing)?;
            InboundContent::Location {
                latitude: location.latitude,
                longitude: location.longitude,
                name: text(&location.name),
                address: text(&location.address),
            }
        }
        "contacts" => InboundContent::Contacts {
            cards: message
                .contacts
                .as_ref()
                .ok_or_else(missing)?
                .iter()
                .map(|card| ContactCard {
                    formatted_name: card
                        .name
                        .as_ref()
                        .and_then(|n| n.formatted_name.clone())
                        .unwrap_or_default(),
                    phone_numbers: card
                        .phones
                        .iter()
                        .filter_map(|p| present(p.phone.as_deref()).or(present(p.wa_id.as_deref())))
                        .map(str::to_owned)
                        .collect(),
                })
                .collect(),
        },
        "reaction" => {
            let reaction = message.reaction.as_ref().ok_or_else(missing)?;
            InboundContent::Reaction {
                target: WaMessageId::new(non_empty(
                    &format!("{path}.reaction.message_id"),
                    &reaction.message_id,
                )?),
                emoji: present(reaction.emoji.as_deref()).map(str::to_owned),
            }
        }
        "button" => {
            let button = message.button.as_ref().ok_or_else(missing)?;
            InboundContent::ButtonReply {
                payload: text(&button.payload),
                text: text(&button.text),
            }
        }
        "interactive" => {
            let interactive = message.interactive.as_ref().ok_or_else(missing)?;
            let reply = match interactive.kind.as_str() {
                "button_reply" => interactive
                    .button_reply
                    .as_ref()
                    .map(|r| (InteractiveReplyKind::Button, r)),
                "list_reply" => interactive
                    .list_reply
                    .as_ref()
                    .map(|r| (InteractiveReplyKind::List, r)),
                // Flows and other interactive replies: kept verbatim.
                _ => None,
            };
            match reply {
                Some((kind, reply)) => InboundContent::InteractiveReply {
                    kind,
                    id: reply.id.clone(),
                    title: reply.title.clone(),
                    description: text(&reply.description),
                },
                None => unsupported(),
            }
        }
        // `unsupported` (with its `errors`) and every kind added later.
        _ => unsupported(),
    })
}

fn media(id_path: &str, object: &MediaObject) -> Result<Media> {
    Ok(Media {
        media_id: non_empty(id_path, &object.id)?.to_owned(),
        mime_type: text(&object.mime_type),
        sha256: text(&object.sha256),
    })
}

fn context(message: &Message) -> MessageContext {
    let context = message.context.clone().unwrap_or_default();
    MessageContext {
        reply_to: present(context.id.as_deref()).map(WaMessageId::new),
        forwarded: context.forwarded,
        frequently_forwarded: context.frequently_forwarded,
        referral: message.referral.as_ref().map(|r| Box::new(referral(r))),
    }
}

fn referral(r: &ReferralObject) -> Referral {
    Referral {
        source_url: text(&r.source_url),
        source_type: text(&r.source_type),
        source_id: text(&r.source_id),
        headline: text(&r.headline),
        body: text(&r.body),
        media_type: text(&r.media_type),
        image_url: text(&r.image_url),
        video_url: text(&r.video_url),
        thumbnail_url: text(&r.thumbnail_url),
        ctwa_clid: text(&r.ctwa_clid),
    }
}

fn status_item(
    path: &str,
    waba_id: &BusinessAccountId,
    phone_number_id: &PhoneNumberId,
    status: &Status,
) -> Result<Item> {
    let wa_message_id = WaMessageId::new(non_empty(&format!("{path}.id"), &status.id)?);
    let at = timestamp(&format!("{path}.timestamp"), &status.timestamp)?;
    let update = match status.status.as_str() {
        "sent" => progress(DeliveryProgress::Sent, at),
        "delivered" => progress(DeliveryProgress::Delivered, at),
        "read" => progress(DeliveryProgress::Read, at),
        "failed" => DeliveryUpdate::Failed {
            failure: failure(status.errors.first()),
            at,
        },
        other => {
            return Ok(Item::Unhandled {
                field: MESSAGES.to_owned(),
                reason: format!("status `{other}` of {wa_message_id} has no delivery equivalent"),
            });
        }
    };
    Ok(Item::Status {
        waba_id: waba_id.clone(),
        phone_number_id: phone_number_id.clone(),
        wa_message_id,
        recipient: present(status.recipient_id.as_deref()).map(str::to_owned),
        recipient_user_id: present(status.recipient_user_id.as_deref()).map(str::to_owned),
        update,
        callback_data: present(status.biz_opaque_callback_data.as_deref()).map(str::to_owned),
    })
}

fn progress(progress: DeliveryProgress, at: DateTime<Utc>) -> DeliveryUpdate {
    DeliveryUpdate::Progress { progress, at }
}

fn failure(error: Option<&ApiError>) -> DeliveryFailure {
    match error {
        Some(error) => DeliveryFailure {
            // Meta's codes fit in i32 (the largest is six digits); a code
            // that did not would be nonsense, recorded as the maximum.
            code: i32::try_from(error.code).unwrap_or(i32::MAX),
            reason: error.describe(),
        },
        // A failure must reach the teammate even without an explanation.
        None => DeliveryFailure {
            code: 0,
            reason: "WhatsApp reported the message as failed without an error".to_owned(),
        },
    }
}

fn template_item(path: &str, waba_id: BusinessAccountId, value: &TemplateStatusValue) -> Result<Item> {
    let name = non_empty(
        &format!("{path}.message_template_name"),
        &value.message_template_name,
    )?;
    let language = non_empty(
        &format!("{path}.message_template_language"),
        &value.message_template_language,
    )?;
    let status = match value.event.as_str() {
        "APPROVED" => TemplateStatus::Approved,
        // Unpaused after its quality recovered: usable again.
        "REINSTATED" => TemplateStatus::Approved,
        "PENDING" => TemplateStatus::Pending,
        "REJECTED" => TemplateStatus::Rejected,
        "PAUSED" => TemplateStatus::Paused,
        "DISABLED" => TemplateStatus::Disabled,
        other => {
            return Ok(Item::Unhandled {
                field: "message_template_status_update".to_owned(),
                reason: format!("template event `{other}` for {name} ({language}) of WABA {waba_id}"),
            });
        }
    };
    Ok(Item::TemplateStatus {
        waba_id,
        name: name.to_owned(),
        language: language.to_owned(),
        status,
        reason: present(value.reason.as_deref())
            .filter(|r| *r != "NONE")
            .map(str::to_owned),
    })
}

fn non_empty<'a>(path: &str, value: &'a str) -> Result<&'a str> {
    if value.trim().is_empty() {
        return Err(Error::Invalid {
            path: path.to_owned(),
            message: "must not be empty".to_owned(),
        });
    }
    Ok(value)
}

fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn timestamp(path: &str, value: &str) -> Result<DateTime<Utc>> {
    value
        .parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| Error::Invalid {
            path: path.to_owned(),
            message: format!("`{value}` is not a Unix timestamp in seconds"),
        })
}
