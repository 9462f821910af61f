//! Contacts: creating leads and users, their phone numbers, converting a
//! lead to a user, and merging a lead into a user. Phone numbers are read
//! with the channel's default region, so national numbers work.

use palaver_domain::contact::{Contact, ContactCommand, ContactKind, MergeReason};
use palaver_domain::ids::{ContactId, WaId};
use palaver_domain::phone::PhoneNumber;

use crate::error::{Error, Result};
use crate::repository::Step;
use crate::tenancy::contact_workspace;
use crate::{App, CommandContext, CommandResult};

/// A contact to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContact {
    /// Lead or user.
    pub kind: ContactKind,
    /// Display name.
    pub name: String,
    /// Phone numbers in any format; national ones are read in the channel's
    /// default region.
    pub phone_numbers: Vec<String>,
    /// The customer's WhatsApp id. Required for a lead (leads are people
    /// who wrote on WhatsApp; the lead's id is derived from it, so the
    /// webhook finds the same lead); refused for a user, whom the domain
    /// matches by phone number (add the number instead).
    pub wa_id: Option<WaId>,
    /// A user's id in the customer's own system (optional). Refused for a
    /// lead: a lead becomes a user, with this id, by `convert_to_user`.
    pub external_user_id: Option<String>,
}

impl App {
    /// Creates a contact. A lead's id is derived from the workspace and the
    /// WhatsApp id (creating it twice, or after the customer wrote, finds
    /// the same lead); a user's is generated (from the idempotency key when
    /// there is one). Target: the new contact.
    pub async fn create_contact(
        &self,
        ctx: &CommandContext,
        contact: NewContact,
    ) -> Result<CommandResult<ContactId>> {
        let cmd = self.begin(ctx, "create_contact");
        self.run(&cmd, async {
            let workspace = ctx.workspace_id;
            let region = self.channel(workspace).await?.state.settings().default_region;
            // Each number is read here first so a bad one is named.
            for (index, raw) in contact.phone_numbers.iter().enumerate() {
                PhoneNumber::parse(raw, region)
                    .map_err(|e| Error::invalid("phone_numbers", format!("number {index}: {e}")))?;
            }
            if contact.kind == ContactKind::Lead && contact.external_user_id.is_some() {
                return Err(Error::invalid(
                    "external_user_id",
                    "a lead has none: create a user, or convert the lead to a user with this id",
                ));
            }
            let (contact_id, mut commands) = match (contact.kind, &contact.wa_id) {
                (ContactKind::Lead, Some(wa_id)) => {
                    PhoneNumber::from_wa_id(wa_id.as_str()).map_err(|e| Error::invalid("wa_id", e))?;
                    let id = ContactId::derive_lead(workspace, wa_id);
                    let create = ContactCommand::CreateLead {
                        contact_id: id,
                        workspace_id: workspace,
                        profile_name: contact.name.clone(),
                        wa_id: wa_id.clone(),
                    };
                    (id, vec![create])
                }
                (ContactKind::Lead, None) => {
                    return Err(Error::invalid("wa_id", "a lead is created from a WhatsApp id"));
                }
                (ContactKind::User, Some(_)) => {
                    return Err(Error::invalid(
                        "wa_id",
                        "users are matched by phone number; pass the number in phone_numbers",
                    ));
                }
                (ContactKind::User, None) => {
                    if contact.name.trim().is_empty() {
                        return Err(Error::invalid("name", "a user needs a name"));
                    }
                    let id = ContactId::from_uuid(cmd.new_id("contact"));
                    let create = ContactCommand::CreateUser {
                        contact_id: id,
                        workspace_id: workspace,
                        name: contact.name.clone(),
                        phone_numbers: contact.phone_numbers.clone(),
                        default_region: region,
                        external_user_id: contact.external_user_id.clone(),
                        by: ctx.actor.clone(),
                    };
                    return self
                        .execute::<Contact>(&cmd, &Contact::stream_name(id), Step::PRIMARY, |_| {
                            Ok(vec![create.clone()])
                        })
                        .await
                        .map(|_| id);
                }
            };
            // A lead's other numbers follow its creation, in one append.
            commands.extend(contact.phone_numbers.iter().map(|raw| ContactCommand::AddPhone {
                phone_number: raw.clone(),
                default_region: region,
            }));
            self.execute::<Contact>(
                &cmd,
                &Contact::stream_name(contact_id),
                Step::PRIMARY,
                |existing| {
                    if existing.revision.is_some() && contact_workspace(existing) != Some(workspace) {
                        return Err(Error::Internal(format!(
                            "lead {contact_id} belongs to another workspace"
                        )));
                    }
                    Ok(commands.clone())
                },
            )
            .await?;
            Ok(contact_id)
        })
        .await
    }

    /// Adds a phone number (any format; national numbers in the channel's
    /// default region) to a contact. Target: the contact.
    pub async fn add_contact_phone(
        &self,
        ctx: &CommandContext,
        contact_id: ContactId,
        phone_number: &str,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "add_contact_phone");
        self.run(&cmd, async {
            let region = self
                .channel(ctx.workspace_id)
                .await?
                .state
                .settings()
                .default_region;
            PhoneNumber::parse(phone_number, region).map_err(|e| Error::invalid("phone_number", e))?;
            self.contact_in(ctx.workspace_id, contact_id).await?;
            self.execute::<Contact>(&cmd, &Contact::stream_name(contact_id), Step::PRIMARY, |_| {
                Ok(vec![ContactCommand::AddPhone {
                    phone_number: phone_number.to_owned(),
                    default_region: region,
                }])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// Converts a lead into a user with the id it has in the customer's own
    /// system (a no-op for a user). Target: the contact.
    pub async fn convert_to_user(
        &self,
        ctx: &CommandContext,
        contact_id: ContactId,
        external_user_id: &str,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "convert_to_user");
        self.run(&cmd, async {
            self.contact_in(ctx.workspace_id, contact_id).await?;
            self.execute::<Contact>(&cmd, &Contact::stream_name(contact_id), Step::PRIMARY, |_| {
                Ok(vec![ContactCommand::ConvertToUser {
                    external_user_id: external_user_id.to_owned(),
                    by: ctx.actor.clone(),
                }])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// Merges the lead `from` into the user `into`. The merge is kept as
    /// history on `from`'s stream, which takes no more changes; read models
    /// move its conversations and threads to `into`. Refusals (a user
    /// merged away, into itself, into a merged contact) come back as
    /// `InvalidMerge` / `ContactMerged` preconditions. Target: `from`.
    pub async fn merge_contacts(
        &self,
        ctx: &CommandContext,
        from: ContactId,
        into: ContactId,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "merge_contacts");
        self.run(&cmd, async {
            self.contact_in(ctx.workspace_id, from).await?;
            let target = self.contact_in(ctx.workspace_id, into).await?;
            let target = target
                .state
                .as_merge_target()
                .ok_or_else(|| Error::not_found("contact", into))?;
            self.execute::<Contact>(&cmd, &Contact::stream_name(from), Step::PRIMARY, |_| {
                Ok(vec![ContactCommand::Merge {
                    into: target,
                    reason: MergeReason::Manual,
                    by: ctx.actor.clone(),
                }])
            })
            .await?;
            Ok(())
        })
        .await
    }
}
