//! InboxService: queries over the read models, scoped to the caller's
//! workspace, with read-your-writes through `min_position`.

use std::sync::Arc;

use palaver_projections::queries::{AssigneeFilter, InboxPage, InboxQuery};
use palaver_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, query_context};
use crate::{
    convert,
    status::{app_status, invalid},
};

impl Api {
    /// The page a ListInbox request asks for, after the scope check. Shared
    /// by the generated handler below and the encoded-answer route
    /// ([`super::inbox_answers`]), which is the one the server mounts.
    pub(crate) async fn inbox_page(
        &self,
        request: Request<pb::ListInboxRequest>,
    ) -> Result<Arc<InboxPage>, Status> {
        let (workspace, min_position) = query_context(&request, request.get_ref().options.as_ref())?;
        let request = request.into_inner();
        let status = convert::status_filter(request.status)?;
        let assignee = match (request.unassigned, request.assignee.is_empty()) {
            (true, false) => return Err(invalid("unassigned", "cannot be combined with assignee")),
            (true, true) => AssigneeFilter::Unassigned,
            (false, true) => AssigneeFilter::Anyone,
            (false, false) => AssigneeFilter::Teammate(request.assignee),
        };
        let query = InboxQuery {
            workspace_id: workspace.as_uuid(),
            status,
            assignee,
            limit: if request.limit == 0 { 50 } else { request.limit },
            cursor: (!request.cursor.is_empty()).then_some(request.cursor),
        };
        self.app.inbox(query, min_position).await.map_err(app_status)
    }
}

#[tonic::async_trait]
impl pb::inbox_service_server::InboxService for Api {
    async fn list_inbox(
        &self,
        request: Request<pb::ListInboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let page = self.inbox_page(request).await?;
        Ok(Response::new(convert::inbox_page(&page)))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        let (workspace, min_position) = query_context(&request, request.get_ref().options.as_ref())?;
        let id = convert::conversation(&request.get_ref().conversation_id)?;
        let view = self
            .app
            .conversation(workspace, id, min_position)
            .await
            .map_err(app_status)?;
        Ok(Response::new(convert::conversation_view(view)))
    }

    async fn get_window(
        &self,
        request: Request<pb::GetWindowRequest>,
    ) -> Result<Response<pb::WindowState>, Status> {
        let (workspace, min_position) = query_context(&request, request.get_ref().options.as_ref())?;
        let id = convert::thread(&request.get_ref().thread_id)?;
        let window = self
            .app
            .window(workspace, id, min_position)
            .await
            .map_err(app_status)?;
        Ok(Response::new(convert::window_state(window)))
    }

    async fn get_contact(
        &self,
        request: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let (workspace, min_position) = query_context(&request, request.get_ref().options.as_ref())?;
        let id = convert::contact(&request.get_ref().contact_id, "contact_id")?;
        let contact = self
            .app
            .contact(workspace, id, min_position)
            .await
            .map_err(app_status)?;
        Ok(Response::new(convert::contact_view(contact)))
    }

    async fn find_contacts_by_phone(
        &self,
        request: Request<pb::FindContactsByPhoneRequest>,
    ) -> Result<Response<pb::FindContactsByPhoneResponse>, Status> {
        let (workspace, min_position) = query_context(&request, request.get_ref().options.as_ref())?;
        let phone = convert::required(&request.get_ref().phone_number, "phone_number")?.to_owned();
        let contacts = self
            .app
            .contacts_by_phone(workspace, &phone, min_position)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::FindContactsByPhoneResponse {
            contacts: contacts.into_iter().map(convert::contact_view).collect(),
        }))
    }
}
