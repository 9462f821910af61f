//! Loading aggregates on behalf of a workspace. Every id a caller passes
//! in is checked against the caller's workspace, and an aggregate of
//! another workspace is reported exactly like a missing one, so a tenant
//! cannot even learn that an id exists elsewhere.
//!
//! Where the workspace lives: a thread's identity carries it; a
//! conversation inherits its thread's; contacts, campaigns and switch
//! offers name it in their first event; a channel's stream is named by it.

use palaver_domain::campaign::{Campaign, CampaignEvent};
use palaver_domain::channel::Channel;
use palaver_domain::contact::{Contact, ContactEvent};
use palaver_domain::conversation::Conversation;
use palaver_domain::ids::{CampaignId, ContactId, ConversationId, WorkspaceId};
use palaver_domain::thread::Thread;

use crate::App;
use crate::error::{Error, Result};
use crate::repository::Loaded;

/// The workspace named by a contact's first event.
pub(crate) fn contact_workspace(loaded: &Loaded<Contact>) -> Option<WorkspaceId> {
    loaded.events.iter().find_map(|e| match &e.event {
        ContactEvent::Created { workspace_id, .. } => Some(*workspace_id),
        _ => None,
    })
}

/// The workspace named by a campaign's first event.
pub(crate) fn campaign_workspace(loaded: &Loaded<Campaign>) -> Option<WorkspaceId> {
    loaded.events.iter().find_map(|e| match &e.event {
        CampaignEvent::Created { workspace_id, .. } => Some(*workspace_id),
        _ => None,
    })
}

/// The workspace of a thread.
pub(crate) fn thread_workspace(thread: &Thread) -> Option<WorkspaceId> {
    thread.identity().map(|identity| identity.workspace_id)
}

impl App {
    /// The workspace's channel (default settings if never written).
    pub(crate) async fn channel(&self, workspace: WorkspaceId) -> Result<Loaded<Channel>> {
        self.load(&Channel::stream_name(workspace)).await
    }

    /// A conversation of the workspace, with its thread (which holds the
    /// window and the business number).
    pub(crate) async fn conversation_in(
        &self,
        workspace: WorkspaceId,
        id: ConversationId,
    ) -> Result<(Loaded<Conversation>, Loaded<Thread>)> {
        let conversation = self.load::<Conversation>(&Conversation::stream_name(id)).await?;
        let not_found = || Error::not_found("conversation", id);
        let thread_id = conversation.state.thread_id().ok_or_else(not_found)?;
        let thread = self.load::<Thread>(&Thread::stream_name(thread_id)).await?;
        if thread_workspace(&thread.state) != Some(workspace) {
            return Err(not_found());
        }
        Ok((conversation, thread))
    }

    /// A contact of the workspace.
    pub(crate) async fn contact_in(&self, workspace: WorkspaceId, id: ContactId) -> Result<Loaded<Contact>> {
        let contact = self.load::<Contact>(&Contact::stream_name(id)).await?;
        if contact_workspace(&contact) != Some(workspace) {
            return Err(Error::not_found("contact", id));
        }
        Ok(contact)
    }

    /// A campaign of the workspace.
    pub(crate) async fn campaign_in(
        &self,
        workspace: WorkspaceId,
        id: CampaignId,
    ) -> Result<Loaded<Campaign>> {
        let campaign = self.load::<Campaign>(&Campaign::stream_name(id)).await?;
        if campaign_workspace(&campaign) != Some(workspace) {
            return Err(Error::not_found("campaign", id));
        }
        Ok(campaign)
    }

    /// The contact `id` stands for now: follows merges (a bounded number of
    /// hops, in case history holds a cycle it should not).
    pub(crate) async fn survivor(&self, id: ContactId) -> Result<ContactId> {
        let mut current = id;
        for _ in 0..16 {
            let contact = self.load::<Contact>(&Contact::stream_name(current)).await?;
            match contact.state.merged_into() {
                Some(into) => current = into,
                None => return Ok(current),
            }
        }
        Ok(current)
    }
}
