//! The inbound message process (docs/domain.md, "Inbound message process"):
//! what the WhatsApp webhook does with each customer message.
//!
//! 1. Route: the business number must be connected to the caller's
//!    workspace (the `number-…` claim and the channel agree).
//! 2. Contact, for a new thread: the workspace's contact with this WhatsApp
//!    id, or else the derived lead, created if needed; with "identify
//!    existing users" on, the lead is merged into the best contact sharing
//!    its number.
//! 3. A switch token in the text is redeemable? Then a new conversation's
//!    origin is the WhatsApp switch.
//! 4. The thread decides where the message goes; 5. the conversation
//!    records it; 6. the switch is completed.
//!
//! Every step is idempotent, so a redelivered webhook (or a retry after a
//! crash between steps) finishes what is missing and reports a duplicate.
//! A burst of first messages from a new number converges on one lead, one
//! thread and one conversation: their ids are derived, and each step's
//! append lets exactly one writer create a stream while the others read it
//! again and find their work done.

use palaver_domain::channel::Channel;
use palaver_domain::contact::{self, Contact, ContactCandidate, ContactCommand, ContactKind, MergeReason};
use palaver_domain::conversation::ConversationCommand;
use palaver_domain::ids::{Actor, ContactId, ConversationId, PhoneNumberId, ThreadId, WaId, WorkspaceId};
use palaver_domain::message::InboundMessage;
use palaver_domain::messenger::{SwitchCommand, SwitchEvent, SwitchToken, WhatsAppSwitch};
use palaver_domain::phone::PhoneNumber;
use palaver_domain::thread::{ConversationOrigin, Thread, ThreadCommand, ThreadEvent, ThreadIdentity};
use tracing::Instrument;
use uuid::Uuid;

use crate::context::{APP_NAMESPACE, Cmd};
use crate::error::{Error, Result};
use crate::repository::{Loaded, Step};
use crate::{App, CommandContext, CommandResult};

/// Where an inbound message went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The thread of the business number and the customer.
    pub thread_id: ThreadId,
    /// The conversation the message joined, reopened or started.
    pub conversation_id: ConversationId,
    /// The contact the customer stands for now (after merges).
    pub contact_id: ContactId,
    /// The message id was already recorded (a redelivered webhook).
    pub duplicate: bool,
}

impl App {
    /// Records a customer's WhatsApp message sent to the business number
    /// `phone_number_id` (see the module docs for the process). The number
    /// must be connected to the caller's workspace, otherwise
    /// [`Error::UnknownPhoneNumberId`]. A message id seen before is a
    /// no-op reported with `duplicate: true`. Target: the thread.
    pub async fn record_inbound(
        &self,
        ctx: &CommandContext,
        phone_number_id: PhoneNumberId,
        wa_id: WaId,
        profile_name: &str,
        message: InboundMessage,
    ) -> Result<CommandResult<Inbound>> {
        let mut cmd = self.begin(ctx, "record_inbound");
        if !cmd.keyed {
            // WhatsApp's message id is the webhook's natural idempotency
            // key: a redelivery derives the same event ids.
            cmd.id = Uuid::new_v5(
                &APP_NAMESPACE,
                format!("inbound\0{phone_number_id}\0{}", message.wa_message_id).as_bytes(),
            );
        }
        let cmd = cmd;
        let span = tracing::info_span!(
            "inbound",
            phone_number_id = %phone_number_id,
            wa_message_id = %message.wa_message_id,
        );
        let body = self
            .inbound(&cmd, phone_number_id, wa_id, profile_name, message)
            .instrument(span);
        self.run(&cmd, body).await
    }

    /// The workspace a business number is connected to, for a webhook that
    /// must find it before it can build a [`CommandContext`]. `None` if no
    /// workspace has it.
    pub async fn workspace_of_number(&self, phone_number_id: &PhoneNumberId) -> Result<Option<WorkspaceId>> {
        self.number_owner(phone_number_id).await
    }

    async fn inbound(
        &self,
        cmd: &Cmd<'_>,
        number: PhoneNumberId,
        wa_id: WaId,
        profile_name: &str,
        message: InboundMessage,
    ) -> Result<Inbound> {
        let workspace = cmd.ctx.workspace_id;
        // A business-scoped user id names the customer without a number.
        let phone = if wa_id.is_business_scoped() {
            None
        } else {
            Some(PhoneNumber::from_wa_id(wa_id.as_str()).map_err(|e| Error::invalid("wa_id", e))?)
        };
        if message.wa_message_id.as_str().is_empty() {
            return Err(Error::invalid("wa_message_id", "is empty"));
        }
        let wa_message_id = message.wa_message_id.clone();

        // 1. Route.
        if self.number_owner(&number).await? != Some(workspace) {
            return Err(Error::UnknownPhoneNumberId(number));
        }
        let channel = self.channel(workspace).await?;
        if channel.state.number(&number).is_none() {
            return Err(Error::UnknownPhoneNumberId(number));
        }
        let settings = channel.state.settings().clone();
        let thread_id = ThreadId::derive(&number, &wa_id);

        // 2. Contact, when the thread is new (an existing thread keeps the
        // contact it started with; read models follow merges).
        let thread = self.load::<Thread>(&Thread::stream_name(thread_id)).await?;
        let contact_id = match thread.state.identity() {
            Some(identity) if identity.workspace_id != workspace => {
                return Err(Error::Internal(format!(
                    "thread {thread_id} serves another workspace"
                )));
            }
            Some(identity) => identity.contact_id,
            None => {
                self.find_or_create_contact(cmd, &channel, &wa_id, phone.as_ref(), profile_name)
                    .await?
            }
        };

        // 3. A switch token that this thread may redeem.
        let switch = match message.content.text().and_then(SwitchToken::find_in) {
            Some(token) => self.redeemable_switch(cmd, token, thread_id).await?,
            None => None,
        };
        let origin = match switch {
            Some(_) => ConversationOrigin::WhatsAppSwitch,
            None => ConversationOrigin::Inbound,
        };

        // 4. The thread routes the message.
        let identity = ThreadIdentity {
            workspace_id: workspace,
            business_phone_number_id: number.clone(),
            customer_wa_id: wa_id.clone(),
            contact_id,
        };
        let thread = self
            .on_thread(cmd, thread_id, Step::PRIMARY, |_, current| {
                Ok(vec![ThreadCommand::ReceiveInbound {
                    identity: identity.clone(),
                    wa_message_id: wa_message_id.clone(),
                    sent_at: message.sent_at,
                    current,
                    quiet_period: settings.quiet_period,
                    origin,
                }])
            })
            .await?;
        let duplicate = thread.new.is_empty();
        // Where the message went, whether decided now or before.
        let (conversation_id, accepted) = thread
            .loaded
            .events
            .iter()
            .find_map(|e| match &e.event {
                ThreadEvent::CustomerMessageAccepted {
                    wa_message_id: id,
                    conversation_id,
                    ..
                } if *id == wa_message_id => Some((*conversation_id, e.id)),
                _ => None,
            })
            .ok_or_else(|| Error::Internal(format!("thread {thread_id} did not accept {wa_message_id}")))?;
        let thread_contact = thread
            .loaded
            .state
            .identity()
            .map_or(contact_id, |identity| identity.contact_id);

        // 5. The conversation records it (a no-op for a repeat).
        self.on_conversation(cmd, conversation_id, Step::caused_by(Some(accepted)), |_| {
            Ok(vec![ConversationCommand::ReceiveMessage {
                conversation_id,
                thread_id,
                contact_id: thread_contact,
                message: message.clone(),
            }])
        })
        .await?;

        // 6. The switch, completed with where the customer now is.
        if let Some(token) = switch {
            let redeemed = self
                .execute::<WhatsAppSwitch>(
                    cmd,
                    &WhatsAppSwitch::stream_name(&token),
                    Step::caused_by(Some(accepted)),
                    |_| {
                        Ok(vec![SwitchCommand::Redeem {
                            thread_id,
                            contact_id: thread_contact,
                            conversation_id,
                            wa_message_id: wa_message_id.clone(),
                        }])
                    },
                )
                .await;
            if let Err(error) = redeemed {
                // The message is recorded either way; a token that went
                // bad in between is just text.
                tracing::info!(%error, %token, "switch token not redeemed");
            }
        }

        Ok(Inbound {
            thread_id,
            conversation_id,
            contact_id: self.survivor(thread_contact).await?,
            duplicate,
        })
    }

    /// Step 2: the workspace's contact with this WhatsApp id, or the
    /// derived lead (created if needed, merged by phone if the channel
    /// says so).
    async fn find_or_create_contact(
        &self,
        cmd: &Cmd<'_>,
        channel: &Loaded<Channel>,
        wa_id: &WaId,
        phone: Option<&PhoneNumber>,
        profile_name: &str,
    ) -> Result<ContactId> {
        let workspace = cmd.ctx.workspace_id;
        // The read model may lag behind a contact created moments ago; the
        // derived lead id below then still finds the same lead.
        if let Some(known) = self
            .read_models()
            .contact_by_wa_id(workspace.as_uuid(), wa_id.as_str())
            .await?
        {
            return Ok(ContactId::from_uuid(known.contact_id));
        }
        let lead = ContactId::derive_lead(workspace, wa_id);
        self.execute::<Contact>(cmd, &Contact::stream_name(lead), Step::default(), |_| {
            Ok(vec![ContactCommand::CreateLead {
                contact_id: lead,
                workspace_id: workspace,
                profile_name: profile_name.to_owned(),
                wa_id: wa_id.clone(),
            }])
        })
        .await?;
        if let Some(phone) = phone
            && channel.state.settings().identify_existing_users
        {
            self.merge_by_phone(cmd, lead, phone).await?;
        }
        Ok(lead)
    }

    /// "Identify existing users": merges a new lead into the most recently
    /// active contact sharing its number, if any. A merge the contacts no
    /// longer allow (someone merged them meanwhile) is skipped: the lead
    /// stays separate, which is what "off" would do.
    async fn merge_by_phone(&self, cmd: &Cmd<'_>, lead: ContactId, phone: &PhoneNumber) -> Result<()> {
        let workspace = cmd.ctx.workspace_id;
        let views = self
            .read_models()
            .contacts_by_phone(workspace.as_uuid(), phone.as_e164(), None)
            .await?;
        let candidates: Vec<ContactCandidate> = views
            .into_iter()
            .map(|view| ContactCandidate {
                id: ContactId::from_uuid(view.contact_id),
                kind: if view.kind == "user" {
                    ContactKind::User
                } else {
                    ContactKind::Lead
                },
                phone_numbers: view
                    .phone_numbers
                    .iter()
                    .filter_map(|p| PhoneNumber::from_e164(p).ok())
                    .collect(),
                last_active_at: view.last_active_at,
                merged_into: None,
            })
            .collect();
        let Some(target) = contact::choose_merge_target(true, lead, std::slice::from_ref(phone), &candidates)
        else {
            return Ok(());
        };
        // The read model's view of the target may be stale: decide on the
        // target's own stream.
        let target = self.contact_in(workspace, target.id).await?;
        let Some(into) = target.state.as_merge_target() else {
            return Ok(());
        };
        let merged = self
            .execute::<Contact>(cmd, &Contact::stream_name(lead), Step::default(), |_| {
                Ok(vec![ContactCommand::Merge {
                    into,
                    reason: MergeReason::SamePhone,
                    by: Actor::System,
                }])
            })
            .await;
        match merged {
            Ok(_) => Ok(()),
            Err(Error::FailedPrecondition(reason)) => {
                tracing::info!(%reason, %lead, into = %into.id, "auto-merge skipped");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Step 3: the token's offer, if this thread may redeem it now and it
    /// was offered by this workspace. Anything else means the token is
    /// just text.
    async fn redeemable_switch(
        &self,
        cmd: &Cmd<'_>,
        token: SwitchToken,
        thread_id: ThreadId,
    ) -> Result<Option<SwitchToken>> {
        let offer = self
            .load::<WhatsAppSwitch>(&WhatsAppSwitch::stream_name(&token))
            .await?;
        let ours = offer.events.iter().any(|e| {
            matches!(&e.event, SwitchEvent::Offered { workspace_id, .. } if *workspace_id == cmd.ctx.workspace_id)
        });
        match offer.state.check_redeemable(thread_id, cmd.now) {
            Ok(()) if ours => Ok(Some(token)),
            Ok(()) => Ok(None),
            Err(reason) => {
                tracing::info!(%reason, %token, "switch token is just text");
                Ok(None)
            }
        }
    }
}
