//! ConversationService: inbound messages, replies, templates, lifecycle,
//! delivery statuses and the switch to WhatsApp. Write.

use palaver_app::DeliveryTarget;
use palaver_domain::{
    codec::api,
    delivery::{DeliveryFailure, DeliveryProgress, DeliveryUpdate},
    ids::{MessengerConversationId, PhoneNumberId, TeammateId, WaId, WaMessageId},
    macros::{Macro, MacroPart},
    message::{InboundMessage, Reply},
};
use palaver_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, command_context, result};
use crate::{
    auth::Role,
    convert,
    status::{app_status, invalid},
};

fn reply(reply: Option<pb::Reply>) -> Result<Reply, Status> {
    use pb::reply::Kind;
    match reply
        .and_then(|r| r.kind)
        .ok_or_else(|| invalid("reply", "is required"))?
    {
        Kind::Text(body) => Ok(Reply::Text { body }),
        Kind::Image(image) => Ok(Reply::Image {
            url: image.url,
            media_id: image.media_id,
            caption: image.caption,
        }),
        Kind::Attachment(file) => Ok(Reply::Attachment {
            url: file.url,
            media_id: file.media_id,
            file_name: file.file_name,
            caption: file.caption,
        }),
        Kind::Macro(m) => {
            use pb::macro_part::Kind as Part;
            let parts = m
                .parts
                .into_iter()
                .map(|part| {
                    match part
                        .kind
                        .ok_or_else(|| invalid("reply.macro.parts", "a part is empty"))?
                    {
                        Part::Text(text) => Ok(MacroPart::Text(text)),
                        Part::GifUrl(url) => Ok(MacroPart::Gif { url }),
                        Part::Article(link) => Ok(MacroPart::Article {
                            title: link.title,
                            url: link.url,
                        }),
                        Part::File(link) => Ok(MacroPart::File {
                            name: link.title,
                            url: link.url,
                        }),
                    }
                })
                .collect::<Result<Vec<_>, Status>>()?;
            Ok(Reply::Macro(Macro {
                id: m.macro_id,
                parts,
            }))
        }
    }
}

fn template(send: Option<pb::TemplateSend>) -> Result<palaver_domain::templates::TemplateSend, Status> {
    let send = send.ok_or_else(|| invalid("template", "is required"))?;
    convert::required(&send.name, "template.name")?;
    convert::required(&send.language, "template.language")?;
    Ok(api::template_send(send))
}

fn delivery(request: &pb::RecordDeliveryStatusRequest) -> Result<DeliveryUpdate, Status> {
    let at = convert::time(request.at, "at")?;
    let progress = match pb::DeliveryStatus::try_from(request.status) {
        Ok(pb::DeliveryStatus::Sent) => DeliveryProgress::Sent,
        Ok(pb::DeliveryStatus::Delivered) => DeliveryProgress::Delivered,
        Ok(pb::DeliveryStatus::Read) => DeliveryProgress::Read,
        Ok(pb::DeliveryStatus::Failed) => {
            let failure = request
                .failure
                .clone()
                .ok_or_else(|| invalid("failure", "is required for FAILED"))?;
            return Ok(DeliveryUpdate::Failed {
                failure: DeliveryFailure {
                    code: failure.code,
                    reason: failure.reason,
                },
                at,
            });
        }
        _ => {
            return Err(invalid(
                "status",
                format!("must be SENT, DELIVERED, READ or FAILED, not {}", request.status),
            ));
        }
    };
    Ok(DeliveryUpdate::Progress { progress, at })
}

#[tonic::async_trait]
impl pb::conversation_service_server::ConversationService for Api {
    async fn record_inbound_message(
        &self,
        request: Request<pb::RecordInboundMessageRequest>,
    ) -> Result<Response<pb::RecordInboundMessageResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let request = request.into_inner();
        let number = PhoneNumberId::new(convert::required(&request.phone_number_id, "phone_number_id")?);
        let wa_id = WaId::new(convert::required(&request.wa_id, "wa_id")?);
        let message = InboundMessage {
            wa_message_id: WaMessageId::new(convert::required(&request.wa_message_id, "wa_message_id")?),
            sent_at: convert::time(request.sent_at, "sent_at")?,
            content: api::inbound_content(request.content).map_err(|e| invalid("content", e))?,
            context: Default::default(),
        };
        let done = self
            .app
            .record_inbound(&ctx, number, wa_id, &request.profile_name, message)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::RecordInboundMessageResponse {
            result: result(done.position),
            thread_id: done.value.thread_id.to_string(),
            conversation_id: done.value.conversation_id.to_string(),
            contact_id: done.value.contact_id.to_string(),
            duplicate: done.value.duplicate,
        }))
    }

    async fn send_reply(
        &self,
        request: Request<pb::SendReplyRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let request = request.into_inner();
        let conversation = convert::conversation(&request.conversation_id)?;
        let message_id = convert::message_id(&request.message_id)?;
        let reply = reply(request.reply)?;
        let done = self
            .app
            .send_reply(&ctx, conversation, message_id, reply)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::SendMessageResponse {
            result: result(done.position),
            message_id: done.value.to_string(),
        }))
    }

    async fn send_template(
        &self,
        request: Request<pb::SendTemplateRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let request = request.into_inner();
        let conversation = convert::conversation(&request.conversation_id)?;
        let message_id = convert::message_id(&request.message_id)?;
        let template = template(request.template)?;
        let done = self
            .app
            .send_template(&ctx, conversation, message_id, template)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::SendMessageResponse {
            result: result(done.position),
            message_id: done.value.to_string(),
        }))
    }

    async fn start_conversation(
        &self,
        request: Request<pb::StartConversationRequest>,
    ) -> Result<Response<pb::StartConversationResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let request = request.into_inner();
        let contact = convert::contact(&request.contact_id, "contact_id")?;
        let number = PhoneNumberId::new(convert::required(&request.phone_number_id, "phone_number_id")?);
        let message_id = convert::message_id(&request.message_id)?;
        let template = template(request.template)?;
        let done = self
            .app
            .start_conversation(&ctx, contact, number, template, message_id)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::StartConversationResponse {
            result: result(done.position),
            conversation_id: done.value.conversation_id.to_string(),
            message_id: done.value.message_id.to_string(),
        }))
    }

    async fn close_conversation(
        &self,
        request: Request<pb::ConversationActionRequest>,
    ) -> Result<Response<pb::ConversationActionResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let conversation = convert::conversation(&request.get_ref().conversation_id)?;
        let done = self.app.close(&ctx, conversation).await.map_err(app_status)?;
        Ok(Response::new(pb::ConversationActionResponse {
            result: result(done.position),
        }))
    }

    async fn reopen_conversation(
        &self,
        request: Request<pb::ConversationActionRequest>,
    ) -> Result<Response<pb::ConversationActionResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let conversation = convert::conversation(&request.get_ref().conversation_id)?;
        let done = self.app.reopen(&ctx, conversation).await.map_err(app_status)?;
        Ok(Response::new(pb::ConversationActionResponse {
            result: result(done.position),
        }))
    }

    async fn snooze_conversation(
        &self,
        request: Request<pb::SnoozeConversationRequest>,
    ) -> Result<Response<pb::ConversationActionResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let conversation = convert::conversation(&request.get_ref().conversation_id)?;
        let until = convert::time(request.get_ref().until, "until")?;
        let done = self
            .app
            .snooze(&ctx, conversation, until)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::ConversationActionResponse {
            result: result(done.position),
        }))
    }

    async fn assign_conversation(
        &self,
        request: Request<pb::AssignConversationRequest>,
    ) -> Result<Response<pb::ConversationActionResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let conversation = convert::conversation(&request.get_ref().conversation_id)?;
        let assignee = Some(request.get_ref().assignee.trim())
            .filter(|a| !a.is_empty())
            .map(TeammateId::new);
        let done = self
            .app
            .assign(&ctx, conversation, assignee)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::ConversationActionResponse {
            result: result(done.position),
        }))
    }

    async fn record_delivery_status(
        &self,
        request: Request<pb::RecordDeliveryStatusRequest>,
    ) -> Result<Response<pb::RecordDeliveryStatusResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let update = delivery(request.get_ref())?;
        let wa_message = WaMessageId::new(convert::required(
            &request.get_ref().wa_message_id,
            "wa_message_id",
        )?);
        let done = self
            .app
            .record_delivery_status(&ctx, DeliveryTarget::WhatsApp(wa_message), update)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::RecordDeliveryStatusResponse {
            result: result(done.position),
        }))
    }

    async fn offer_whats_app_switch(
        &self,
        request: Request<pb::OfferWhatsAppSwitchRequest>,
    ) -> Result<Response<pb::OfferWhatsAppSwitchResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let request = request.into_inner();
        let messenger = MessengerConversationId::new(convert::required(
            &request.messenger_conversation_id,
            "messenger_conversation_id",
        )?);
        let number = Some(request.phone_number_id.trim())
            .filter(|n| !n.is_empty())
            .map(PhoneNumberId::new);
        let done = if request.by_teammate {
            self.app.continue_on_whatsapp(&ctx, messenger, number).await
        } else {
            self.app.offer_switch(&ctx, messenger, number).await
        }
        .map_err(app_status)?;
        let offer = done.value;
        Ok(Response::new(pb::OfferWhatsAppSwitchResponse {
            result: result(done.position),
            token: offer.token.to_string(),
            link: offer.link,
            qr_svg: offer.qr_svg,
            qr_png: offer.qr_png,
        }))
    }
}
