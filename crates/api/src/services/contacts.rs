//! ContactService: create, add phones, convert to user, merge. Write.

use palaver_app::NewContact;
use palaver_domain::{contact::ContactKind, ids::WaId};
use palaver_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, command_context, result};
use crate::{
    auth::Role,
    convert,
    status::{app_status, invalid},
};

#[tonic::async_trait]
impl pb::contact_service_server::ContactService for Api {
    async fn create_contact(
        &self,
        request: Request<pb::CreateContactRequest>,
    ) -> Result<Response<pb::CreateContactResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let request = request.into_inner();
        let kind = match pb::ContactKind::try_from(request.kind) {
            Ok(pb::ContactKind::Lead) => ContactKind::Lead,
            Ok(pb::ContactKind::User) => ContactKind::User,
            _ => {
                return Err(invalid(
                    "kind",
                    format!("must be LEAD or USER, not {}", request.kind),
                ));
            }
        };
        let contact = NewContact {
            kind,
            name: convert::required(&request.name, "name")?.to_owned(),
            phone_numbers: request.phone_numbers,
            wa_id: Some(request.wa_id.trim())
                .filter(|w| !w.is_empty())
                .map(WaId::new),
            external_user_id: Some(request.external_user_id.trim())
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        };
        let done = self.app.create_contact(&ctx, contact).await.map_err(app_status)?;
        Ok(Response::new(pb::CreateContactResponse {
            result: result(done.position),
            contact_id: done.value.to_string(),
        }))
    }

    async fn add_contact_phone(
        &self,
        request: Request<pb::AddContactPhoneRequest>,
    ) -> Result<Response<pb::ContactActionResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let contact = convert::contact(&request.get_ref().contact_id, "contact_id")?;
        let phone = convert::required(&request.get_ref().phone_number, "phone_number")?.to_owned();
        let done = self
            .app
            .add_contact_phone(&ctx, contact, &phone)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::ContactActionResponse {
            result: result(done.position),
        }))
    }

    async fn convert_to_user(
        &self,
        request: Request<pb::ConvertToUserRequest>,
    ) -> Result<Response<pb::ContactActionResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let contact = convert::contact(&request.get_ref().contact_id, "contact_id")?;
        let external = convert::required(&request.get_ref().external_user_id, "external_user_id")?.to_owned();
        let done = self
            .app
            .convert_to_user(&ctx, contact, &external)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::ContactActionResponse {
            result: result(done.position),
        }))
    }

    async fn merge_contacts(
        &self,
        request: Request<pb::MergeContactsRequest>,
    ) -> Result<Response<pb::ContactActionResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let from = convert::contact(&request.get_ref().contact_id, "contact_id")?;
        let into = convert::contact(&request.get_ref().into_contact_id, "into_contact_id")?;
        let done = self
            .app
            .merge_contacts(&ctx, from, into)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::ContactActionResponse {
            result: result(done.position),
        }))
    }
}
