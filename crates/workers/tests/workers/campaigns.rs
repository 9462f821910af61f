//! Campaign sends: a scheduled campaign launched by its timer, each queued
//! recipient turned into a conversation with the template (for the
//! delivery worker), cancellation skipping whoever was not sent yet, and
//! WhatsApp's statuses flowing back into the campaign.

use crate::support;

use std::sync::Arc;

use chrono::TimeDelta;
use palaver_app::Clock as _;
use palaver_app::campaign_sends::CANCELLED_BEFORE_SENDING;
use palaver_app::{CampaignState, CampaignView, DeliveryTarget, NewCampaign, NewContact, RecipientState};
use palaver_domain::campaign::CampaignTrigger;
use palaver_domain::codec::event_types as t;
use palaver_domain::contact::ContactKind;
use palaver_domain::delivery::{DeliveryFailure, DeliveryProgress, DeliveryState, DeliveryUpdate};
use palaver_domain::ids::{CampaignId, ContactId, ConversationId, MessageId, WaMessageId};
use palaver_projections::queries::InboxQuery;
use palaver_store::{AllFilter, Position};
use palaver_workers::campaigns::{CampaignSender, CampaignSenderOptions};
use palaver_workers::runner::Process;
use palaver_workers::timers::{TimerScheduler, TimerSchedulerOptions, TimerService, TimerServiceOptions};
use support::{TestApp, app_with_clock, eventually, t0, welcome};
use tokio::sync::watch;

async fn settle(app: &TestApp) {
    let head = app.store.head().await.unwrap();
    app.app.wait_for(Some(head)).await.unwrap();
}

async fn count(app: &TestApp, event_type: &str) -> usize {
    app.store
        .read_all(Position::START, &AllFilter::event_types([event_type]), 100_000)
        .await
        .unwrap()
        .len()
}

/// Hands `process` every event it wants after `from`, in order, as the
/// runner would, until none is left (the sender reacts to statuses it
/// caused), and moves `from` past them.
async fn pump(app: &TestApp, process: &dyn Process, from: &mut Position) {
    loop {
        let events = app
            .store
            .read_all(*from, &process.filter(), 100_000)
            .await
            .unwrap();
        if events.is_empty() {
            break;
        }
        for event in events {
            *from = event.position;
            process.handle(event).await.unwrap();
        }
    }
    settle(app).await;
}

/// Hands `process` every event it wants from the start of `$all`: a
/// restart that lost its checkpoint.
async fn replay(app: &TestApp, process: &dyn Process) {
    let mut from = Position::START;
    pump(app, process, &mut from).await;
}

fn sender(app: &TestApp) -> CampaignSender {
    CampaignSender::new(app.app.clone(), CampaignSenderOptions::default())
}

async fn contact(app: &TestApp, name: &str, phone: &str) -> ContactId {
    let contact = NewContact {
        kind: ContactKind::User,
        name: name.into(),
        phone_numbers: vec![phone.into()],
        wa_id: None,
        external_user_id: None,
    };
    app.app
        .create_contact(&app.teammate(), contact)
        .await
        .unwrap()
        .value
}

async fn two_contacts(app: &TestApp) -> Vec<ContactId> {
    vec![
        contact(app, "Ada", "+44 7700 900001").await,
        contact(app, "Bob", "+44 7700 900002").await,
    ]
}

async fn campaign(app: &TestApp, recipients: Vec<ContactId>, trigger: CampaignTrigger) -> CampaignId {
    let campaign = NewCampaign {
        phone_number_id: app.number.clone(),
        template: welcome("friend"),
        recipients,
        trigger,
    };
    app.app
        .create_campaign(&app.teammate(), campaign)
        .await
        .unwrap()
        .value
}

async fn status(app: &TestApp, campaign_id: CampaignId) -> CampaignView {
    app.app.campaign_status(app.workspace, campaign_id).await.unwrap()
}

/// Each recipient's merged delivery state; `None` while not queued.
async fn deliveries(app: &TestApp, campaign_id: CampaignId) -> Vec<Option<DeliveryState>> {
    status(app, campaign_id)
        .await
        .recipients
        .into_iter()
        .map(|r| match r.state {
            RecipientState::Waiting => None,
            RecipientState::Queued { delivery, .. } => Some(delivery),
        })
        .collect()
}

fn message_of(view: &CampaignView, contact_id: ContactId) -> MessageId {
    view.recipients
        .iter()
        .find_map(|r| match &r.state {
            RecipientState::Queued { message_id, .. } if r.contact_id == contact_id => Some(*message_id),
            _ => None,
        })
        .expect("the recipient is queued")
}

fn cancelled_before_sending(state: &DeliveryState) -> bool {
    state
        .failures
        .iter()
        .any(|f| f.reason == CANCELLED_BEFORE_SENDING)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_campaign_launches_at_its_time_and_queues_each_recipients_template() {
    let app = app_with_clock().await;
    let recipients = two_contacts(&app).await;
    let at = t0() + TimeDelta::hours(1);
    let campaign_id = campaign(&app, recipients.clone(), CampaignTrigger::ScheduledAt(at)).await;
    let scheduler = TimerScheduler::new(app.app.clone(), TimerSchedulerOptions::default());
    let timers = TimerService::new(app.app.clone(), TimerServiceOptions::default());
    let sender = sender(&app);
    let (mut scheduled, mut sent) = (Position::START, Position::START);
    pump(&app, &scheduler, &mut scheduled).await;

    assert_eq!(timers.tick().await.fired, 0);
    assert_eq!(status(&app, campaign_id).await.state, CampaignState::Created);
    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(timers.tick().await.fired, 1);
    assert_eq!(status(&app, campaign_id).await.state, CampaignState::Launched);
    assert_eq!(count(&app, t::CAMPAIGN_RECIPIENT_QUEUED).await, 2);

    pump(&app, &sender, &mut sent).await;
    assert_eq!(count(&app, t::OUTBOUND_MESSAGE_QUEUED).await, 2);
    let inbox = app
        .app
        .inbox(InboxQuery::new(app.workspace.as_uuid()), None)
        .await
        .unwrap();
    assert_eq!(inbox.rows.len(), 2);
    assert!(inbox.rows.iter().all(|row| row.origin == "campaign"));
    assert!(
        inbox
            .rows
            .iter()
            .all(|row| recipients.contains(&ContactId::from_uuid(row.contact_id)))
    );
    let view = status(&app, campaign_id).await;
    for row in &inbox.rows {
        let conversation = app
            .app
            .conversation(
                app.workspace,
                ConversationId::from_uuid(row.conversation_id),
                None,
            )
            .await
            .unwrap();
        let message = &conversation.messages[0];
        let contact_id = ContactId::from_uuid(row.contact_id);
        assert_eq!(message.message_id, message_of(&view, contact_id).to_string());
        assert_eq!(message.kind, "template");
        assert_eq!(message.delivery_state.as_deref(), Some("queued"));
    }

    // Handled again from the start (a restart that lost its checkpoint):
    // nothing new.
    replay(&app, &sender).await;
    assert_eq!(count(&app, t::OUTBOUND_MESSAGE_QUEUED).await, 2);
    assert_eq!(count(&app, t::CONVERSATION_STARTED).await, 2);
    assert_eq!(timers.tick().await.fired, 0);
    assert_eq!(count(&app, t::CAMPAIGN_LAUNCHED).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_cancelled_before_its_time_sends_nothing() {
    let app = app_with_clock().await;
    let recipients = two_contacts(&app).await;
    let at = t0() + TimeDelta::hours(1);
    let campaign_id = campaign(&app, recipients, CampaignTrigger::ScheduledAt(at)).await;
    let scheduler = TimerScheduler::new(app.app.clone(), TimerSchedulerOptions::default());
    let timers = TimerService::new(app.app.clone(), TimerServiceOptions::default());
    replay(&app, &scheduler).await;
    app.app
        .cancel_campaign(&app.teammate(), campaign_id)
        .await
        .unwrap();

    app.clock.advance(TimeDelta::hours(1));
    // The timer is spent (its campaign refuses to launch), not retried.
    assert_eq!(timers.tick().await.fired, 1);
    assert_eq!(timers.tick().await.fired, 0);
    replay(&app, &sender(&app)).await;
    let view = status(&app, campaign_id).await;
    assert_eq!(view.state, CampaignState::Cancelled);
    assert!(view.recipients.iter().all(|r| r.state == RecipientState::Waiting));
    assert_eq!(count(&app, t::CAMPAIGN_RECIPIENT_QUEUED).await, 0);
    assert_eq!(count(&app, t::OUTBOUND_MESSAGE_QUEUED).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_queued_but_not_started_when_the_campaign_is_cancelled_are_skipped() {
    let app = app_with_clock().await;
    let recipients = two_contacts(&app).await;
    let campaign_id = campaign(&app, recipients, CampaignTrigger::Immediately).await;
    app.app
        .cancel_campaign(&app.teammate(), campaign_id)
        .await
        .unwrap();

    replay(&app, &sender(&app)).await;
    assert_eq!(count(&app, t::OUTBOUND_MESSAGE_QUEUED).await, 0);
    let states = deliveries(&app, campaign_id).await;
    assert_eq!(states.len(), 2);
    for state in states {
        let state = state.expect("queued before the cancel");
        assert!(cancelled_before_sending(&state), "{state:?}");
        assert_eq!(state.progress, DeliveryProgress::Queued);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_skips_messages_the_delivery_worker_has_not_tried_and_leaves_the_others() {
    let app = app_with_clock().await;
    let recipients = two_contacts(&app).await;
    let campaign_id = campaign(&app, recipients.clone(), CampaignTrigger::Immediately).await;
    let sender = sender(&app);
    let mut seen = Position::START;
    pump(&app, &sender, &mut seen).await;
    let view = status(&app, campaign_id).await;
    let (tried, untried) = (message_of(&view, recipients[0]), message_of(&view, recipients[1]));
    let conversation_of = async |message_id| {
        app.app
            .campaign_send(message_id)
            .await
            .unwrap()
            .and_then(|send| send.conversation_id)
            .expect("the send names its conversation")
    };
    let (tried_in, untried_in) = (conversation_of(tried).await, conversation_of(untried).await);
    // The delivery worker is sending the first one.
    app.app
        .record_send_attempt(&app.system(), tried_in, tried, 0)
        .await
        .unwrap();

    app.app
        .cancel_campaign(&app.teammate(), campaign_id)
        .await
        .unwrap();
    pump(&app, &sender, &mut seen).await;

    let tried_state = app
        .app
        .pending_send(app.workspace, tried_in, tried)
        .await
        .unwrap()
        .unwrap();
    assert!(!tried_state.settled, "a send in flight is left to its outcome");
    let untried_state = app
        .app
        .pending_send(app.workspace, untried_in, untried)
        .await
        .unwrap()
        .unwrap();
    assert!(untried_state.settled, "settled, so the delivery worker skips it");
    let states = deliveries(&app, campaign_id).await;
    assert!(!cancelled_before_sending(states[0].as_ref().unwrap()));
    assert!(cancelled_before_sending(states[1].as_ref().unwrap()));
    // The timeline shows why.
    let timeline = app
        .app
        .conversation(app.workspace, untried_in, None)
        .await
        .unwrap();
    assert_eq!(
        timeline.messages[0].failure_reason.as_deref(),
        Some(CANCELLED_BEFORE_SENDING)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_statuses_flow_into_the_campaign() {
    let app = app_with_clock().await;
    let recipients = two_contacts(&app).await;
    let campaign_id = campaign(&app, recipients.clone(), CampaignTrigger::Immediately).await;
    let sender = sender(&app);
    let mut seen = Position::START;
    pump(&app, &sender, &mut seen).await;
    let view = status(&app, campaign_id).await;
    let system = app.system();
    for (i, contact_id) in recipients.iter().enumerate() {
        let message_id = message_of(&view, *contact_id);
        let conversation_id = app
            .app
            .campaign_send(message_id)
            .await
            .unwrap()
            .unwrap()
            .conversation_id
            .unwrap();
        app.app
            .record_accepted(
                &system,
                conversation_id,
                message_id,
                WaMessageId::new(format!("wamid.c{i}")),
            )
            .await
            .unwrap();
    }
    pump(&app, &sender, &mut seen).await;
    let states = deliveries(&app, campaign_id).await;
    assert!(
        states
            .iter()
            .all(|s| s.as_ref().unwrap().progress == DeliveryProgress::Sent)
    );

    let at = app.clock.now();
    let report = async |wamid: &str, update: DeliveryUpdate| {
        app.app
            .record_delivery_status(&system, DeliveryTarget::WhatsApp(WaMessageId::new(wamid)), update)
            .await
            .unwrap();
    };
    for progress in [DeliveryProgress::Delivered, DeliveryProgress::Read] {
        report("wamid.c0", DeliveryUpdate::Progress { progress, at }).await;
    }
    let failure = DeliveryFailure {
        code: 131_026,
        reason: "Message undeliverable".into(),
    };
    report(
        "wamid.c1",
        DeliveryUpdate::Failed {
            failure: failure.clone(),
            at,
        },
    )
    .await;
    pump(&app, &sender, &mut seen).await;

    let states = deliveries(&app, campaign_id).await;
    let (read, failed) = (states[0].clone().unwrap(), states[1].clone().unwrap());
    assert_eq!(read.progress, DeliveryProgress::Read);
    assert!(read.failures.is_empty());
    assert_eq!(failed.failures, vec![failure]);
    // Handled again: the merge makes repeats no news.
    let changes = count(&app, t::CAMPAIGN_RECIPIENT_STATUS_CHANGED).await;
    replay(&app, &sender).await;
    assert_eq!(count(&app, t::CAMPAIGN_RECIPIENT_STATUS_CHANGED).await, changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_campaign_sends_when_its_event_happens_and_into_an_open_conversation() {
    let app = app_with_clock().await;
    // A customer who wrote: their conversation is open.
    let open = app.inbound(support::CUSTOMER, "wamid.in1", "hello").await;
    settle(&app).await;
    let lead = app
        .app
        .conversation(app.workspace, open, None)
        .await
        .unwrap()
        .conversation
        .contact_id;
    let lead = ContactId::from_uuid(lead);
    let user = contact(&app, "Bob", "+44 7700 900002").await;
    let trigger = CampaignTrigger::OnEvent {
        event_name: "tag_added:vip".into(),
    };
    let campaign_id = campaign(&app, vec![], trigger).await;
    let sender = sender(&app);
    let mut seen = Position::START;
    pump(&app, &sender, &mut seen).await;
    assert_eq!(count(&app, t::OUTBOUND_MESSAGE_QUEUED).await, 0);

    for contact_id in [lead, user] {
        app.app
            .trigger_event(&app.teammate(), "tag_added:vip", contact_id)
            .await
            .unwrap();
    }
    pump(&app, &sender, &mut seen).await;
    let view = status(&app, campaign_id).await;
    assert_eq!(view.recipients.len(), 2);
    // The lead's template went into the conversation they had open.
    let into_open = app
        .app
        .campaign_send(message_of(&view, lead))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(into_open.conversation_id, Some(open));
    let timeline = app.app.conversation(app.workspace, open, None).await.unwrap();
    assert_eq!(timeline.messages.len(), 2);
    assert_eq!(
        timeline.messages[1].message_id,
        message_of(&view, lead).to_string()
    );
    // The other recipient got a new conversation.
    assert_eq!(count(&app, t::CONVERSATION_STARTED).await, 2);
    assert_eq!(count(&app, t::OUTBOUND_MESSAGE_QUEUED).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_refused_for_good_fails_the_recipient() {
    let app = app_with_clock().await;
    let recipients = two_contacts(&app).await;
    // The number is disconnected after the campaign was made: sends refused.
    let campaign_id = campaign(
        &app,
        recipients,
        CampaignTrigger::ScheduledAt(t0() + TimeDelta::hours(1)),
    )
    .await;
    app.app
        .disconnect_number(&app.teammate(), app.number.clone())
        .await
        .unwrap();
    app.clock.advance(TimeDelta::hours(1));
    app.app.launch_campaign(&app.system(), campaign_id).await.unwrap();
    replay(&app, &sender(&app)).await;
    assert_eq!(count(&app, t::OUTBOUND_MESSAGE_QUEUED).await, 0);
    for state in deliveries(&app, campaign_id).await {
        let state = state.unwrap();
        assert_eq!(state.failures.len(), 1, "{state:?}");
        assert_eq!(state.failures[0].code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_together_send_a_scheduled_campaign() {
    let app = app_with_clock().await;
    let recipients = two_contacts(&app).await;
    let at = t0() + TimeDelta::hours(1);
    let campaign_id = campaign(&app, recipients, CampaignTrigger::ScheduledAt(at)).await;
    let runtime = app.runtime(app.checkpoints("workers.db"));
    let (stop, shutdown) = watch::channel(false);
    let scheduler = Arc::new(TimerScheduler::new(
        app.app.clone(),
        TimerSchedulerOptions::default(),
    ));
    let sender = Arc::new(sender(&app));
    let timers = TimerService::new(
        app.app.clone(),
        TimerServiceOptions {
            tick: std::time::Duration::from_millis(10),
            batch: 100,
        },
    );
    let tasks = [
        tokio::spawn(palaver_workers::run(runtime.clone(), scheduler, shutdown.clone())),
        tokio::spawn(palaver_workers::run(runtime.clone(), sender, shutdown.clone())),
        tokio::spawn(timers.run(runtime, shutdown)),
    ];
    eventually("the launch timer", async || {
        count(&app, t::TIMER_SCHEDULED).await == 1
    })
    .await;
    app.clock.advance(TimeDelta::hours(1));
    eventually("both sends", async || {
        count(&app, t::OUTBOUND_MESSAGE_QUEUED).await == 2
    })
    .await;
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(status(&app, campaign_id).await.state, CampaignState::Launched);
}
