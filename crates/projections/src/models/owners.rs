//! Stream owners: the workspace each stream belongs to. Stream names do not
//! carry it (a thread's id derives from the business number and the
//! customer), so it is learnt from the first event that names it; a
//! conversation inherits its thread's.

use palaver_domain::{
    Aggregate,
    campaign::CampaignEvent,
    channel::ChannelEvent,
    codec::{DomainEvent, event_types as t},
    contact::ContactEvent,
    conversation::ConversationEvent,
    messenger::SwitchEvent,
    templates::TemplateCatalogue,
    thread::{Thread, ThreadEvent},
};
use palaver_store::RecordedEvent;

use crate::{ProjectError, Projector, sql::Statement, stmt};

/// The stream-owner projector.
#[derive(Debug, Default)]
pub struct OwnersProjector;

fn own(stream: &str, workspace: String) -> Statement {
    stmt!(
        "INSERT INTO stream_owners (stream, workspace_id) VALUES (?1, ?2) ON CONFLICT (stream) DO NOTHING",
        stream,
        workspace,
    )
}

impl Projector for OwnersProjector {
    fn name(&self) -> &'static str {
        "owners"
    }
    fn version(&self) -> u32 {
        1
    }
    fn schema(&self) -> &'static str {
        include_str!("sql/owners.sql")
    }
    fn postgres_schema(&self) -> &'static str {
        include_str!("sql/owners.postgres.sql")
    }
    fn tables(&self) -> &'static [&'static str] {
        &["stream_owners"]
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[
            t::CHANNEL_NUMBER_CONNECTED,
            t::CHANNEL_SETTINGS_CHANGED,
            t::THREAD_STARTED,
            t::CONVERSATION_STARTED,
            t::CONTACT_CREATED,
            t::CAMPAIGN_CREATED,
            t::WHATSAPP_SWITCH_OFFERED,
        ]
    }

    fn project(
        &self,
        recorded: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError> {
        let stream = recorded.stream.as_str();
        match event {
            DomainEvent::Channel(ChannelEvent::NumberConnected { workspace_id, number, .. }) => {
                out.push(own(stream, workspace_id.to_string()));
                // The number's template catalogue is the workspace's too.
                let catalogue = format!("{}-{}", TemplateCatalogue::CATEGORY, number.business_account_id);
                out.push(own(&catalogue, workspace_id.to_string()));
            }
            DomainEvent::Channel(ChannelEvent::SettingsChanged { workspace_id, .. }) => {
                out.push(own(stream, workspace_id.to_string()))
            }
            DomainEvent::Thread(ThreadEvent::Started { identity, .. }) => {
                out.push(own(stream, identity.workspace_id.to_string()))
            }
            DomainEvent::Conversation(ConversationEvent::Started { thread_id, .. }) => out.push(stmt!(
                "INSERT INTO stream_owners (stream, workspace_id) \
                 SELECT ?1, workspace_id FROM stream_owners WHERE stream = ?2 ON CONFLICT (stream) DO NOTHING",
                stream,
                format!("{}-{thread_id}", Thread::CATEGORY),
            )),
            DomainEvent::Contact(ContactEvent::Created { workspace_id, .. }) => out.push(own(stream, workspace_id.to_string())),
            DomainEvent::Campaign(CampaignEvent::Created { workspace_id, .. }) => {
                out.push(own(stream, workspace_id.to_string()))
            }
            DomainEvent::Switch(SwitchEvent::Offered { workspace_id, .. }) => out.push(own(stream, workspace_id.to_string())),
            _ => {}
        }
        Ok(())
    }
}
