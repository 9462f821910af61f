//! Moving a Messenger conversation to WhatsApp (stream `switch-<token>`).
//!
//! An offer yields a token, a `https://wa.me/<number>?text=…` link whose
//! prefilled text carries the token, and a QR code of that link (SVG and
//! PNG, drawn with the `qrcode` crate and encoded with `png`; see
//! docs/adr/0003-qr-codes.md). When a WhatsApp message carrying the token
//! arrives, the offer is completed: the Messenger conversation is linked to
//! the WhatsApp thread, contact and conversation, and the customer is
//! answered on WhatsApp from then on. An unknown or expired token is just
//! text: redeeming it fails with a typed error the caller ignores.
//!
//! The stream is named by the token, so the webhook handler finds the offer
//! with one stream read, without a read model.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::channel::ChannelSettings;
use crate::ids::{
    Actor, ContactId, ConversationId, MessengerConversationId, ThreadId, WaMessageId, WorkspaceId,
};
use crate::phone::PhoneNumber;
use crate::stream::StreamName;
use crate::{Error, Result};

/// How long an offer's token is honoured: long enough for a customer to
/// pick up their phone later that week, short enough that an old screenshot
/// does not hijack a new thread.
pub const SWITCH_TOKEN_LIFETIME: TimeDelta = TimeDelta::days(7);

/// The token of an offer: 32 lower-case hex digits (a random UUID chosen by
/// the caller, because `decide` has no randomness of its own).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwitchToken(String);

impl SwitchToken {
    const LEN: usize = 32;

    /// The token for a random UUID (v4).
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid.simple().to_string())
    }

    /// Reads a token; `None` unless it is exactly 32 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == Self::LEN && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }

    /// The first token-shaped word in a customer's text. The customer may
    /// have edited the prefilled text; any 32-hex-digit run standing alone
    /// counts, and the stream lookup decides whether it is real.
    pub fn find_in(text: &str) -> Option<Self> {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .find_map(Self::parse)
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SwitchToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The text prefilled in the customer's WhatsApp: polite, and carrying the
/// token as a separate word.
pub fn switch_message_text(token: &SwitchToken) -> String {
    format!("Hi! I'd like to continue my conversation here. (ref {token})")
}

/// `https://wa.me/<digits>?text=<percent-encoded text>`.
pub fn whatsapp_link(number: &PhoneNumber, text: &str) -> String {
    let mut link = format!("https://wa.me/{}?text=", number.digits());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            link.push(char::from(byte));
        } else {
            link.push_str(&format!("%{byte:02X}"));
        }
    }
    link
}

fn qr(link: &str) -> Result<qrcode::QrCode> {
    qrcode::QrCode::new(link.as_bytes()).map_err(|e| Error::QrCode(e.to_string()))
}

/// The link as an SVG QR code.
pub fn qr_svg(link: &str) -> Result<String> {
    Ok(qr(link)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build())
}

/// Pixels per QR module in the PNG: big enough to scan from a screen.
const PNG_MODULE_PIXELS: usize = 8;
/// Light modules around the code, as the QR standard asks.
const QUIET_ZONE_MODULES: usize = 4;

/// The link as a grayscale PNG QR code.
pub fn qr_png(link: &str) -> Result<Vec<u8>> {
    let code = qr(link)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE_MODULES) * PNG_MODULE_PIXELS;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET_ZONE_MODULES, i / modules + QUIET_ZONE_MODULES);
        for y in my * PNG_MODULE_PIXELS..(my + 1) * PNG_MODULE_PIXELS {
            let row = y * side;
            pixels[row + mx * PNG_MODULE_PIXELS..row + (mx + 1) * PNG_MODULE_PIXELS].fill(0);
        }
    }
    let side = u32::try_from(side).map_err(|e| Error::QrCode(e.to_string()))?;
    let mut out = Vec::new();
    let png_error = |e: png::EncodingError| Error::QrCode(e.to_string());
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// Commands on a switch offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchCommand {
    /// Offer the switch. Automatic offers (`offered_by: Actor::System`)
    /// need the channel's toggle on and reply times shown during office
    /// hours; a teammate's "Continue on WhatsApp" needs only a number.
    Offer {
        /// Fresh token (names the stream).
        token: SwitchToken,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The Messenger conversation.
        messenger_conversation_id: MessengerConversationId,
        /// The channel's settings.
        settings: ChannelSettings,
        /// The business number to send the customer to, `None` if the
        /// workspace has no connected number.
        business_phone_number: Option<PhoneNumber>,
        /// System for automatic offers, or the teammate.
        offered_by: Actor,
    },
    /// A WhatsApp message carrying the token arrived and was routed.
    Redeem {
        /// The WhatsApp thread.
        thread_id: ThreadId,
        /// Its contact.
        contact_id: ContactId,
        /// The conversation the message went to.
        conversation_id: ConversationId,
        /// The message that carried the token.
        wa_message_id: WaMessageId,
    },
}

/// Events of a switch offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchEvent {
    /// Offered.
    Offered {
        /// The token.
        token: SwitchToken,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The Messenger conversation.
        messenger_conversation_id: MessengerConversationId,
        /// Business number.
        business_phone_number: PhoneNumber,
        /// wa.me link carrying the token.
        link: String,
        /// Who.
        offered_by: Actor,
        /// When.
        at: DateTime<Utc>,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
    },
    /// Completed: the conversation continues on WhatsApp.
    Completed {
        /// The token.
        token: SwitchToken,
        /// The Messenger conversation.
        messenger_conversation_id: MessengerConversationId,
        /// The WhatsApp thread.
        thread_id: ThreadId,
        /// Its contact.
        contact_id: ContactId,
        /// The WhatsApp conversation.
        conversation_id: ConversationId,
        /// The message that carried the token.
        wa_message_id: WaMessageId,
        /// When.
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Offer {
    token: SwitchToken,
    messenger_conversation_id: MessengerConversationId,
    link: String,
    expires_at: DateTime<Utc>,
}

/// A switch offer's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhatsAppSwitch {
    offer: Option<Offer>,
    completed_by: Option<ThreadId>,
}

impl WhatsAppSwitch {
    /// The stream of an offer.
    pub fn stream_name(token: &SwitchToken) -> StreamName {
        StreamName::new(Self::CATEGORY, token.as_str()).expect("a token is hex digits")
    }

    /// The wa.me link, once offered.
    pub fn link(&self) -> Option<&str> {
        self.offer.as_ref().map(|o| o.link.as_str())
    }

    /// The Messenger conversation, once offered.
    pub fn messenger_conversation_id(&self) -> Option<&MessengerConversationId> {
        self.offer.as_ref().map(|o| &o.messenger_conversation_id)
    }

    /// The thread it was completed by, if any.
    pub fn completed_by(&self) -> Option<ThreadId> {
        self.completed_by
    }

    /// Whether a message on `thread` can redeem the token at `now`; lets the
    /// webhook handler decide, before routing the message, whether it is a
    /// switch (and so which origin a new conversation gets).
    pub fn check_redeemable(&self, thread: ThreadId, now: DateTime<Utc>) -> Result<()> {
        let offer = self.offer.as_ref().ok_or(Error::UnknownSwitchToken)?;
        match self.completed_by {
            Some(t) if t == thread => Ok(()),
            Some(_) => Err(Error::SwitchTokenUsed),
            None if now >= offer.expires_at => Err(Error::SwitchTokenExpired {
                expired_at: offer.expires_at,
            }),
            None => Ok(()),
        }
    }
}

impl Aggregate for WhatsAppSwitch {
    const CATEGORY: &'static str = "switch";
    type Command = SwitchCommand;
    type Event = SwitchEvent;

    fn decide(&self, command: SwitchCommand, now: DateTime<Utc>) -> Result<Vec<SwitchEvent>> {
        match command {
            SwitchCommand::Offer {
                token,
                workspace_id,
                messenger_conversation_id,
                settings,
                business_phone_number,
                offered_by,
            } => {
                if let Some(offer) = &self.offer {
                    return if offer.messenger_conversation_id == messenger_conversation_id {
                        Ok(vec![])
                    } else {
                        Err(Error::AlreadyExists("switch offer"))
                    };
                }
                if offered_by == Actor::System {
                    if !settings.offer_whatsapp_switch {
                        return Err(Error::SwitchUnavailable("the switch toggle is off"));
                    }
                    if !settings.show_reply_times_in_office_hours {
                        return Err(Error::SwitchUnavailable(
                            "reply times during office hours are not shown",
                        ));
                    }
                }
                let number = business_phone_number
                    .ok_or(Error::SwitchUnavailable("no WhatsApp number is connected"))?;
                let link = whatsapp_link(&number, &switch_message_text(&token));
                Ok(vec![SwitchEvent::Offered {
                    token,
                    workspace_id,
                    messenger_conversation_id,
                    business_phone_number: number,
                    link,
                    offered_by,
                    at: now,
                    expires_at: now + SWITCH_TOKEN_LIFETIME,
                }])
            }
            SwitchCommand::Redeem {
                thread_id,
                contact_id,
                conversation_id,
                wa_message_id,
            } => {
                self.check_redeemable(thread_id, now)?;
                if self.completed_by.is_some() {
                    return Ok(vec![]);
                }
                let offer = self.offer.as_ref().ok_or(Error::UnknownSwitchToken)?;
                Ok(vec![SwitchEvent::Completed {
                    token: offer.token.clone(),
                    messenger_conversation_id: offer.messenger_conversation_id.clone(),
                    thread_id,
                    contact_id,
                    conversation_id,
                    wa_message_id,
                    at: now,
                }])
            }
        }
    }

    fn evolve(mut self, event: &SwitchEvent) -> Self {
        match event {
            SwitchEvent::Offered {
                token,
                messenger_conversation_id,
                link,
                expires_at,
                ..
            } => {
                self.offer = Some(Offer {
                    token: token.clone(),
                    messenger_conversation_id: messenger_conversation_id.clone(),
                    link: link.clone(),
                    expires_at: *expires_at,
                });
            }
            SwitchEvent::Completed { thread_id, .. } => {
                self.completed_by.get_or_insert(*thread_id);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_percent_encoded() {
        let number = PhoneNumber::parse("+447700900123", None).unwrap();
        let token = SwitchToken::from_uuid(Uuid::from_u128(0xabc));
        let link = whatsapp_link(&number, &switch_message_text(&token));
        assert!(link.starts_with("https://wa.me/447700900123?text=Hi%21%20I%27d%20like"));
        assert!(link.ends_with(&format!("%28ref%20{token}%29")));
        assert_eq!(SwitchToken::find_in(&switch_message_text(&token)), Some(token));
        assert_eq!(SwitchToken::find_in("call me at 447700900123"), None);
    }

    #[test]
    fn qr_codes_render_as_svg_and_png() {
        let link = "https://wa.me/447700900123?text=hello";
        let svg = qr_svg(link).unwrap();
        assert!(svg.contains("<svg"));
        let png = qr_png(link).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
