//! ChannelService: numbers, settings, templates. Admin, but for pulling
//! the catalogue from the Cloud API (write).

use palaver_app::channel::SyncedTemplate;
use palaver_domain::{
    codec::api,
    ids::{BusinessAccountId, PhoneNumberId},
    templates::{ComponentKind, TemplateCategory, TemplateComponent, TemplateDefinition, TemplateStatus},
};
use palaver_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, command_context, result};
use crate::{
    auth::Role,
    convert,
    status::{app_status, cloud_api_status, invalid, whatsapp_not_configured},
};

fn template(definition: pb::TemplateDefinition) -> Result<SyncedTemplate, Status> {
    let category = match pb::TemplateCategory::try_from(definition.category) {
        Ok(pb::TemplateCategory::Marketing) => TemplateCategory::Marketing,
        Ok(pb::TemplateCategory::Utility) => TemplateCategory::Utility,
        Ok(pb::TemplateCategory::Authentication) => TemplateCategory::Authentication,
        _ => {
            return Err(invalid(
                "templates.category",
                format!("unknown value {}", definition.category),
            ));
        }
    };
    let status = match pb::TemplateStatus::try_from(definition.status) {
        Ok(pb::TemplateStatus::Pending) => TemplateStatus::Pending,
        Ok(pb::TemplateStatus::Approved) => TemplateStatus::Approved,
        Ok(pb::TemplateStatus::Paused) => TemplateStatus::Paused,
        Ok(pb::TemplateStatus::Disabled) => TemplateStatus::Disabled,
        Ok(pb::TemplateStatus::Rejected) => TemplateStatus::Rejected,
        _ => {
            return Err(invalid(
                "templates.status",
                format!("unknown value {}", definition.status),
            ));
        }
    };
    let components = definition
        .components
        .into_iter()
        .map(|component| {
            let kind = match pb::TemplateComponentType::try_from(component.r#type) {
                Ok(pb::TemplateComponentType::Header) => ComponentKind::Header,
                Ok(pb::TemplateComponentType::Body) => ComponentKind::Body,
                Ok(pb::TemplateComponentType::Footer) => ComponentKind::Footer,
                Ok(pb::TemplateComponentType::Buttons) => ComponentKind::Buttons,
                _ => {
                    return Err(invalid(
                        "templates.components.type",
                        format!("unknown value {}", component.r#type),
                    ));
                }
            };
            Ok(TemplateComponent {
                kind,
                format: component.format,
                text: component.text,
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(SyncedTemplate {
        definition: TemplateDefinition {
            name: convert::required(&definition.name, "templates.name")?.to_owned(),
            language: convert::required(&definition.language, "templates.language")?.to_owned(),
            category,
            components,
        },
        status,
    })
}

#[tonic::async_trait]
impl pb::channel_service_server::ChannelService for Api {
    async fn connect_number(
        &self,
        request: Request<pb::ConnectNumberRequest>,
    ) -> Result<Response<pb::ConnectNumberResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Admin)?;
        let request = request.into_inner();
        let number = PhoneNumberId::new(convert::required(&request.phone_number_id, "phone_number_id")?);
        let account = BusinessAccountId::new(convert::required(
            &request.business_account_id,
            "business_account_id",
        )?);
        let display = convert::required(&request.display_phone_number, "display_phone_number")?;
        let done = self
            .app
            .connect_number(&ctx, number, display, account)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::ConnectNumberResponse {
            result: result(done.position),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Admin)?;
        let settings = request
            .into_inner()
            .settings
            .ok_or_else(|| invalid("settings", "is required"))?;
        let settings = api::channel_settings(settings).map_err(|e| invalid("settings", e))?;
        let done = self
            .app
            .update_channel_settings(&ctx, settings)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::UpdateSettingsResponse {
            result: result(done.position),
        }))
    }

    async fn sync_templates(
        &self,
        request: Request<pb::SyncTemplatesRequest>,
    ) -> Result<Response<pb::SyncTemplatesResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Admin)?;
        let request = request.into_inner();
        let account = BusinessAccountId::new(convert::required(
            &request.business_account_id,
            "business_account_id",
        )?);
        let templates = request
            .templates
            .into_iter()
            .map(template)
            .collect::<Result<_, _>>()?;
        let done = self
            .app
            .sync_templates(&ctx, account, templates)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::SyncTemplatesResponse {
            result: result(done.position),
        }))
    }

    async fn pull_templates(
        &self,
        request: Request<pb::PullTemplatesRequest>,
    ) -> Result<Response<pb::SyncTemplatesResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let cloud_api = self
            .options
            .templates
            .as_ref()
            .ok_or_else(whatsapp_not_configured)?;
        let request = request.into_inner();
        let account = convert::required(&request.business_account_id, "business_account_id")?;
        let listed = cloud_api
            .list_templates(account)
            .await
            .map_err(cloud_api_status)?;
        let done = self
            .app
            .sync_templates(
                &ctx,
                BusinessAccountId::new(account),
                convert::synced_templates(listed),
            )
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::SyncTemplatesResponse {
            result: result(done.position),
        }))
    }
}
