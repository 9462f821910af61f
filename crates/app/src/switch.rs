//! Moving a Messenger conversation to WhatsApp: the offer (automatic, or a
//! teammate's "Continue on WhatsApp") yields a token, a wa.me link carrying
//! it and QR codes of the link. The webhook completes the switch when the
//! customer sends the prefilled text (see [`crate::inbound`]).

use chrono::{DateTime, Utc};
use palaver_domain::ids::{Actor, MessengerConversationId, PhoneNumberId};
use palaver_domain::messenger::{self, SwitchCommand, SwitchEvent, SwitchToken, WhatsAppSwitch};

use crate::context::Cmd;
use crate::error::{Error, Result};
use crate::repository::Step;
use crate::{App, CommandContext, CommandResult};

/// An offer to continue on WhatsApp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchOffer {
    /// The token the customer's first WhatsApp message will carry.
    pub token: SwitchToken,
    /// `https://wa.me/<number>?text=…` with the token in the text.
    pub link: String,
    /// The link as an SVG QR code.
    pub qr_svg: String,
    /// The link as a PNG QR code.
    pub qr_png: Vec<u8>,
    /// After this the token is just text.
    pub expires_at: DateTime<Utc>,
}

impl App {
    /// The automatic offer shown to a Messenger customer: needs the
    /// channel's "offer to switch" toggle and reply times shown during
    /// office hours (`SwitchUnavailable` otherwise). `phone_number_id`
    /// picks the number (the first connected one when `None`). Target: the
    /// new offer.
    pub async fn offer_switch(
        &self,
        ctx: &CommandContext,
        messenger_conversation_id: MessengerConversationId,
        phone_number_id: Option<PhoneNumberId>,
    ) -> Result<CommandResult<SwitchOffer>> {
        let cmd = self.begin(ctx, "offer_switch");
        self.run(
            &cmd,
            self.offer(&cmd, messenger_conversation_id, phone_number_id, Actor::System),
        )
        .await
    }

    /// A teammate's "Continue on WhatsApp": needs only a connected number.
    /// Target: the new offer.
    pub async fn continue_on_whatsapp(
        &self,
        ctx: &CommandContext,
        messenger_conversation_id: MessengerConversationId,
        phone_number_id: Option<PhoneNumberId>,
    ) -> Result<CommandResult<SwitchOffer>> {
        let cmd = self.begin(ctx, "continue_on_whatsapp");
        let by = ctx.actor.clone();
        self.run(
            &cmd,
            self.offer(&cmd, messenger_conversation_id, phone_number_id, by),
        )
        .await
    }

    async fn offer(
        &self,
        cmd: &Cmd<'_>,
        messenger_conversation_id: MessengerConversationId,
        phone_number_id: Option<PhoneNumberId>,
        offered_by: Actor,
    ) -> Result<SwitchOffer> {
        if messenger_conversation_id.as_str().is_empty() {
            return Err(Error::invalid("messenger_conversation_id", "is empty"));
        }
        let workspace = cmd.ctx.workspace_id;
        let channel = self.channel(workspace).await?;
        let number = match &phone_number_id {
            Some(id) => Some(
                channel
                    .state
                    .number(id)
                    .ok_or_else(|| Error::UnknownPhoneNumberId(id.clone()))?,
            ),
            // No number at all is the domain's `SwitchUnavailable`.
            None => channel.state.numbers().values().next(),
        };
        let token = SwitchToken::from_uuid(cmd.new_secret_id("switch-token"));
        let outcome = self
            .execute::<WhatsAppSwitch>(cmd, &WhatsAppSwitch::stream_name(&token), Step::PRIMARY, |_| {
                Ok(vec![SwitchCommand::Offer {
                    token: token.clone(),
                    workspace_id: workspace,
                    messenger_conversation_id: messenger_conversation_id.clone(),
                    settings: channel.state.settings().clone(),
                    business_phone_number: number.map(|n| n.display_phone_number.clone()),
                    offered_by: offered_by.clone(),
                }])
            })
            .await?;
        let (link, expires_at) = outcome
            .loaded
            .events
            .iter()
            .find_map(|e| match &e.event {
                SwitchEvent::Offered { link, expires_at, .. } => Some((link.clone(), *expires_at)),
                SwitchEvent::Completed { .. } => None,
            })
            .ok_or_else(|| Error::Internal(format!("switch offer {token} has no offer")))?;
        let qr = |e: palaver_domain::Error| Error::Internal(e.to_string());
        Ok(SwitchOffer {
            qr_svg: messenger::qr_svg(&link).map_err(qr)?,
            qr_png: messenger::qr_png(&link).map_err(qr)?,
            token,
            link,
            expires_at,
        })
    }
}
