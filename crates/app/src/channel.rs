//! The workspace's WhatsApp channel: numbers, settings, and the template
//! catalogues of the numbers' business accounts.

use std::collections::BTreeSet;

use palaver_domain::Aggregate;
use palaver_domain::channel::{Channel, ChannelCommand, ChannelSettings};
use palaver_domain::ids::{BusinessAccountId, PhoneNumberId};
use palaver_domain::phone::PhoneNumber;
use palaver_domain::templates::{
    TemplateCatalogue, TemplateCommand, TemplateDefinition, TemplateEvent, TemplateStatus,
};

use crate::error::{Error, Result};
use crate::lookups::number_stream;
use crate::repository::Step;
use crate::{App, CommandContext, CommandResult};

/// One template as the WhatsApp Business Manager lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedTemplate {
    /// Name, language, category and components.
    pub definition: TemplateDefinition,
    /// Its review status.
    pub status: TemplateStatus,
}

/// Reason recorded when a sync no longer lists a template.
const UNLISTED: &str = "no longer listed by the WhatsApp Business Manager";

impl App {
    /// Connects a WhatsApp business number to the workspace. The display
    /// number is read with the channel's default region. A number serves one
    /// workspace: connecting one another workspace holds is refused
    /// ([`crate::Precondition::NumberInUse`]). Target for
    /// `expected_version`: the channel.
    pub async fn connect_number(
        &self,
        ctx: &CommandContext,
        phone_number_id: PhoneNumberId,
        display_phone_number: &str,
        business_account_id: BusinessAccountId,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "connect_number");
        self.run(&cmd, async {
            number_stream(&phone_number_id)?;
            if business_account_id.as_str().is_empty() {
                return Err(Error::invalid("business_account_id", "is empty"));
            }
            TemplateCatalogue::stream_name(&business_account_id)
                .map_err(|e| Error::invalid("business_account_id", e))?;
            let channel = self.channel(ctx.workspace_id).await?;
            PhoneNumber::parse(display_phone_number, channel.state.settings().default_region)
                .map_err(|e| Error::invalid("display_phone_number", e))?;
            let command = ChannelCommand::ConnectNumber {
                workspace_id: ctx.workspace_id,
                phone_number_id: phone_number_id.clone(),
                display_phone_number: display_phone_number.to_owned(),
                business_account_id: business_account_id.clone(),
                by: ctx.actor.clone(),
            };
            // Refusals the channel would give (the number connected with
            // other details) come before the claim, so a refused connect
            // does not keep the number from anyone.
            channel
                .state
                .decide(command.clone(), cmd.now)
                .map_err(|e| Error::from_domain(e, channel.id()))?;
            self.claim_number(&cmd, &phone_number_id).await?;
            self.execute::<Channel>(
                &cmd,
                &Channel::stream_name(ctx.workspace_id),
                Step::PRIMARY,
                |_| Ok(vec![command.clone()]),
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Disconnects a number; its threads stay readable, and another
    /// workspace may connect it afterwards. Target: the channel.
    pub async fn disconnect_number(
        &self,
        ctx: &CommandContext,
        phone_number_id: PhoneNumberId,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "disconnect_number");
        self.run(&cmd, async {
            number_stream(&phone_number_id)?;
            let outcome = self
                .execute::<Channel>(
                    &cmd,
                    &Channel::stream_name(ctx.workspace_id),
                    Step::PRIMARY,
                    |_| {
                        Ok(vec![ChannelCommand::DisconnectNumber {
                            phone_number_id: phone_number_id.clone(),
                            by: ctx.actor.clone(),
                        }])
                    },
                )
                .await;
            // Released after the channel let go (so the number never serves
            // two workspaces), and also when the channel had already let go:
            // a retry after a crash between the two finishes the job.
            match outcome {
                Ok(_) | Err(Error::UnknownPhoneNumberId(_)) => {
                    self.release_number(&cmd, &phone_number_id).await?
                }
                Err(_) => {}
            }
            outcome.map(|_| ())
        })
        .await
    }

    /// Replaces the channel's settings with `settings` (the whole value).
    /// Target: the channel.
    pub async fn update_channel_settings(
        &self,
        ctx: &CommandContext,
        settings: ChannelSettings,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "update_channel_settings");
        self.run(&cmd, async {
            self.execute::<Channel>(
                &cmd,
                &Channel::stream_name(ctx.workspace_id),
                Step::PRIMARY,
                |_| {
                    Ok(vec![ChannelCommand::ChangeSettings {
                        workspace_id: ctx.workspace_id,
                        settings: settings.clone(),
                        by: ctx.actor.clone(),
                    }])
                },
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Makes a business account's catalogue match a sync from the WhatsApp
    /// Business Manager: each listed template is registered (a no-op when
    /// unchanged) and templates the sync no longer lists are disabled. The
    /// account must own one of the workspace's connected numbers. Target:
    /// the catalogue.
    pub async fn sync_templates(
        &self,
        ctx: &CommandContext,
        business_account_id: BusinessAccountId,
        templates: Vec<SyncedTemplate>,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "sync_templates");
        self.run(&cmd, async {
            let stream = TemplateCatalogue::stream_name(&business_account_id)
                .map_err(|e| Error::invalid("business_account_id", e))?;
            let channel = self.channel(ctx.workspace_id).await?;
            if !channel
                .state
                .numbers()
                .values()
                .any(|n| n.business_account_id == business_account_id)
            {
                return Err(Error::not_found("business account", &business_account_id));
            }
            let mut listed = BTreeSet::new();
            for (index, template) in templates.iter().enumerate() {
                let definition = &template.definition;
                if definition.name.is_empty() || definition.language.is_empty() {
                    return Err(Error::invalid(
                        "templates",
                        format!("template {index} needs a name and a language"),
                    ));
                }
                if !listed.insert((definition.name.clone(), definition.language.clone())) {
                    return Err(Error::invalid(
                        "templates",
                        format!("{} ({}) is listed twice", definition.name, definition.language),
                    ));
                }
            }
            self.execute::<TemplateCatalogue>(&cmd, &stream, Step::PRIMARY, |catalogue| {
                let mut commands: Vec<TemplateCommand> = templates
                    .iter()
                    .map(|t| TemplateCommand::Register {
                        business_account_id: business_account_id.clone(),
                        definition: t.definition.clone(),
                        status: t.status,
                    })
                    .collect();
                let known: BTreeSet<(String, String)> = catalogue
                    .events
                    .iter()
                    .filter_map(|e| match &e.event {
                        TemplateEvent::Registered { template, .. } => Some((
                            template.definition.name.clone(),
                            template.definition.language.clone(),
                        )),
                        TemplateEvent::StatusChanged { .. } => None,
                    })
                    .collect();
                for (name, language) in known.difference(&listed) {
                    let disabled = catalogue
                        .state
                        .get(name, language)
                        .is_some_and(|t| t.status == TemplateStatus::Disabled);
                    if !disabled {
                        commands.push(TemplateCommand::ChangeStatus {
                            name: name.clone(),
                            language: language.clone(),
                            status: TemplateStatus::Disabled,
                            reason: UNLISTED.to_owned(),
                        });
                    }
                }
                Ok(commands)
            })
            .await?;
            Ok(())
        })
        .await
    }
}
