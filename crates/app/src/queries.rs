//! Queries, passed through to the read models with the app's clock (a
//! snooze that ran out, a window that closed, are decided at read time)
//! and an optional minimum position: the query first waits, bounded by
//! [`App::read_timeout`], until every read model has taken that position,
//! so a caller reads its own write by passing back a command's `position`.
//!
//! Every query is scoped to a workspace; the read models filter by it, and
//! a row of another workspace reads as not found.

use std::sync::Arc;

use palaver_domain::ids::{ContactId, ConversationId, ThreadId, WorkspaceId};
use palaver_projections::queries::{ContactView, ConversationView, InboxPage, InboxQuery, WindowState};
use palaver_store::Position;

use crate::App;
use crate::error::{Error, Result};

impl App {
    /// Waits until the read models have taken `min_position` (no wait for
    /// `None` or position 0).
    pub async fn wait_for(&self, min_position: Option<Position>) -> Result<()> {
        match min_position {
            Some(position) if position > Position::START => Ok(self
                .inner
                .projections
                .wait_for(position, self.read_timeout)
                .await?),
            _ => Ok(()),
        }
    }

    /// A page of the inbox of `query.workspace_id`.
    pub async fn inbox(&self, query: InboxQuery, min_position: Option<Position>) -> Result<Arc<InboxPage>> {
        self.wait_for(min_position).await?;
        Ok(self
            .inner
            .read_models
            .inbox(query, self.inner.clock.now())
            .await?)
    }

    /// A conversation of the workspace with its timeline.
    pub async fn conversation(
        &self,
        workspace: WorkspaceId,
        conversation_id: ConversationId,
        min_position: Option<Position>,
    ) -> Result<ConversationView> {
        self.wait_for(min_position).await?;
        self.inner
            .read_models
            .conversation(
                workspace.as_uuid(),
                conversation_id.as_uuid(),
                self.inner.clock.now(),
            )
            .await?
            .ok_or_else(|| Error::not_found("conversation", conversation_id))
    }

    /// A thread's 24-hour window, as of the app's clock.
    pub async fn window(
        &self,
        workspace: WorkspaceId,
        thread_id: ThreadId,
        min_position: Option<Position>,
    ) -> Result<WindowState> {
        self.wait_for(min_position).await?;
        self.inner
            .read_models
            .window(workspace.as_uuid(), thread_id.as_uuid(), self.inner.clock.now())
            .await?
            .ok_or_else(|| Error::not_found("thread", thread_id))
    }

    /// A contact as it stands now (a merged contact reads as its survivor).
    pub async fn contact(
        &self,
        workspace: WorkspaceId,
        contact_id: ContactId,
        min_position: Option<Position>,
    ) -> Result<ContactView> {
        self.wait_for(min_position).await?;
        self.inner
            .read_models
            .contact(workspace.as_uuid(), contact_id.as_uuid())
            .await?
            .ok_or_else(|| Error::not_found("contact", contact_id))
    }

    /// The workspace's contacts with this number (any format; national
    /// numbers in the channel's default region), most recently active first.
    pub async fn contacts_by_phone(
        &self,
        workspace: WorkspaceId,
        phone: &str,
        min_position: Option<Position>,
    ) -> Result<Vec<ContactView>> {
        let region = self.channel(workspace).await?.state.settings().default_region;
        self.wait_for(min_position).await?;
        Ok(self
            .inner
            .read_models
            .contacts_by_phone(workspace.as_uuid(), phone, region)
            .await?)
    }
}
