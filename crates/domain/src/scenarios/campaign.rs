//! Campaigns: now, scheduled, event-triggered; per-recipient tracking.

use uuid::Uuid;

use super::fixtures::*;
use crate::Error;
use crate::campaign::{Campaign, CampaignCommand, CampaignEvent, CampaignTrigger};
use crate::delivery::{DeliveryProgress, DeliveryUpdate};
use crate::ids::{CampaignId, ContactId, MessageId, PhoneNumberId};
use crate::testing::given;

fn campaign() -> CampaignId {
    CampaignId::from_uuid(Uuid::from_u128(300))
}

fn c(n: u128) -> ContactId {
    ContactId::from_uuid(Uuid::from_u128(n))
}

fn create(recipients: Vec<ContactId>, trigger: CampaignTrigger) -> CampaignCommand {
    CampaignCommand::Create {
        campaign_id: campaign(),
        workspace_id: workspace(),
        business_phone_number_id: PhoneNumberId::new("1065550001"),
        template: checked_order_update(),
        recipients,
        trigger,
        by: teammate(),
    }
}

fn created(recipients: Vec<ContactId>, trigger: CampaignTrigger) -> CampaignEvent {
    CampaignEvent::Created {
        campaign_id: campaign(),
        workspace_id: workspace(),
        business_phone_number_id: PhoneNumberId::new("1065550001"),
        template: order_update(),
        recipients,
        trigger,
        by: teammate(),
        at: t(0),
    }
}

fn queued(contact: ContactId, trigger_event: Option<&str>, at: i64) -> CampaignEvent {
    CampaignEvent::RecipientQueued {
        campaign_id: campaign(),
        contact_id: contact,
        message_id: MessageId::derive_campaign_send(campaign(), contact),
        trigger_event: trigger_event.map(Into::into),
        at: t(at),
    }
}

#[test]
fn a_campaign_sent_now_queues_every_recipient_once() {
    given::<Campaign>([])
        .when(create(vec![c(1), c(2), c(1)], CampaignTrigger::Immediately), t(0))
        .then([
            created(vec![c(1), c(2)], CampaignTrigger::Immediately),
            CampaignEvent::Launched {
                campaign_id: campaign(),
                at: t(0),
            },
            queued(c(1), None, 0),
            queued(c(2), None, 0),
        ]);
    given::<Campaign>([])
        .when(create(vec![], CampaignTrigger::Immediately), t(0))
        .then_error(Error::EmptyAudience);
}

#[test]
fn a_scheduled_campaign_launches_at_its_time_and_once() {
    let trigger = CampaignTrigger::ScheduledAt(t(HOUR));
    let history = vec![created(vec![c(1)], trigger)];
    given::<Campaign>(history.clone())
        .when(CampaignCommand::Launch, t(HOUR - 1))
        .then_error(Error::CampaignNotDue {
            scheduled_at: t(HOUR),
        });
    let launched = vec![
        CampaignEvent::Launched {
            campaign_id: campaign(),
            at: t(HOUR),
        },
        queued(c(1), None, HOUR),
    ];
    given::<Campaign>(history.clone())
        .when(CampaignCommand::Launch, t(HOUR))
        .then(launched.clone());
    let mut after = history;
    after.extend(launched);
    given::<Campaign>(after)
        .when(CampaignCommand::Launch, t(HOUR + 5))
        .then_nothing();
}

#[test]
fn an_event_triggered_campaign_sends_when_its_event_happens_to_a_recipient() {
    let trigger = CampaignTrigger::OnEvent {
        event_name: "contact.tag_added:vip".into(),
    };
    let history = vec![created(vec![c(1), c(2)], trigger.clone())];
    let event = |name: &str, contact| CampaignCommand::HandleEvent {
        event_name: name.into(),
        contact_id: contact,
    };
    given::<Campaign>(history.clone())
        .when(event("contact.tag_added:vip", c(1)), t(10))
        .then([queued(c(1), Some("contact.tag_added:vip"), 10)]);
    given::<Campaign>(history.clone())
        .when(event("order.shipped", c(1)), t(10))
        .then_nothing();
    given::<Campaign>(history.clone())
        .when(event("contact.tag_added:vip", c(3)), t(10))
        .then_nothing();
    let mut after = history.clone();
    after.push(queued(c(1), Some("contact.tag_added:vip"), 10));
    given::<Campaign>(after)
        .when(event("contact.tag_added:vip", c(1)), t(20))
        .then_nothing();
    given::<Campaign>(history)
        .when(CampaignCommand::Launch, t(10))
        .then_error(Error::WrongTrigger);
    // An empty audience listens to everyone.
    given::<Campaign>([created(vec![], trigger)])
        .when(event("contact.tag_added:vip", c(9)), t(10))
        .then([queued(c(9), Some("contact.tag_added:vip"), 10)]);
}

#[test]
fn each_recipients_send_is_tracked_monotonically() {
    let mut history = vec![
        created(vec![c(1)], CampaignTrigger::Immediately),
        CampaignEvent::Launched {
            campaign_id: campaign(),
            at: t(0),
        },
        queued(c(1), None, 0),
    ];
    let read = DeliveryUpdate::Progress {
        progress: DeliveryProgress::Read,
        at: t(5),
    };
    let state = given::<Campaign>(history.clone())
        .when(
            CampaignCommand::RecordRecipientStatus {
                contact_id: c(1),
                update: read.clone(),
            },
            t(5),
        )
        .then([CampaignEvent::RecipientStatusChanged {
            campaign_id: campaign(),
            contact_id: c(1),
            update: read.clone(),
        }]);
    assert_eq!(state.sends()[&c(1)].delivery.progress, DeliveryProgress::Read);
    history.push(CampaignEvent::RecipientStatusChanged {
        campaign_id: campaign(),
        contact_id: c(1),
        update: read,
    });
    let delivered = DeliveryUpdate::Progress {
        progress: DeliveryProgress::Delivered,
        at: t(4),
    };
    given::<Campaign>(history.clone())
        .when(
            CampaignCommand::RecordRecipientStatus {
                contact_id: c(1),
                update: delivered.clone(),
            },
            t(6),
        )
        .then_nothing();
    given::<Campaign>(history)
        .when(
            CampaignCommand::RecordRecipientStatus {
                contact_id: c(2),
                update: delivered,
            },
            t(6),
        )
        .then_error(Error::NotFound("campaign recipient"));
}

#[test]
fn a_cancelled_campaign_sends_nothing_more() {
    let trigger = CampaignTrigger::OnEvent {
        event_name: "x".into(),
    };
    let history = vec![
        created(vec![c(1)], trigger),
        CampaignEvent::Cancelled {
            campaign_id: campaign(),
            by: teammate(),
            at: t(1),
        },
    ];
    given::<Campaign>(history.clone())
        .when(
            CampaignCommand::HandleEvent {
                event_name: "x".into(),
                contact_id: c(1),
            },
            t(2),
        )
        .then_nothing();
    given::<Campaign>(history.clone())
        .when(CampaignCommand::Launch, t(2))
        .then_error(Error::CampaignCancelled);
    given::<Campaign>(history)
        .when(CampaignCommand::Cancel { by: teammate() }, t(3))
        .then_nothing();
}
