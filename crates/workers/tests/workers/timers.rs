//! Durable timers: scheduled from events, fired once when the App's clock
//! reaches them (never again after another tick or a restart), and each
//! action re-checking its subject.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use palaver_app::Clock as _;
use palaver_app::timer_actions::{PALAVER_FAILURE_CODE, UNCERTAIN_SEND_EXPIRED};
use palaver_domain::codec::event_types as t;
use palaver_domain::ids::{ConversationId, MessageId, TimerId, WaMessageId};
use palaver_domain::timer::TimerAction;
use palaver_projections::queries::{InboxQuery, InboxRow, Status};
use palaver_store::{AllFilter, Position};
use palaver_workers::runner::Process;
use palaver_workers::timers::{
    TickReport, TimerScheduler, TimerSchedulerOptions, TimerService, TimerServiceOptions,
};
use support::{TestApp, app_with_clock, eventually, t0};
use tokio::sync::watch;

/// Waits until the read models have taken every event.
async fn settle(app: &TestApp) {
    let head = app.store.head().await.unwrap();
    app.app.wait_for(Some(head)).await.unwrap();
}

/// Events of this type in the store.
async fn count(app: &TestApp, event_type: &str) -> usize {
    app.store
        .read_all(Position::START, &AllFilter::event_types([event_type]), 100_000)
        .await
        .unwrap()
        .len()
}

/// Hands `process` every event it wants after `from`, in order, as the
/// runner would, and moves `from` past them.
async fn pump(app: &TestApp, process: &dyn Process, from: &mut Position) {
    let events = app
        .store
        .read_all(*from, &process.filter(), 100_000)
        .await
        .unwrap();
    for event in events {
        *from = event.position;
        process.handle(event).await.unwrap();
    }
    settle(app).await;
}

/// Hands `process` every event it wants from the start of `$all`: a
/// restart that lost its checkpoint.
async fn replay(app: &TestApp, process: &dyn Process) {
    let mut from = Position::START;
    pump(app, process, &mut from).await;
}

fn service(app: &TestApp) -> TimerService {
    TimerService::new(app.app.clone(), TimerServiceOptions::default())
}

fn fired(n: usize) -> TickReport {
    TickReport { fired: n, failed: 0 }
}

async fn inbox_row(app: &TestApp, conversation_id: ConversationId) -> InboxRow {
    let page = app
        .app
        .inbox(InboxQuery::new(app.workspace.as_uuid()), None)
        .await
        .unwrap();
    page.rows
        .iter()
        .find(|row| row.conversation_id == conversation_id.as_uuid())
        .cloned()
        .expect("the conversation is in the inbox")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncertain_send_expires_once_at_its_time_and_a_settled_one_is_left_alone() {
    let app = app_with_clock().await;
    let conversation = app.inbound(support::CUSTOMER, "wamid.in1", "hello").await;
    let (lost, _) = app.template(conversation, "Ada").await;
    let (answered, _) = app.template(conversation, "Ada").await;
    app.app
        .record_accepted(
            &app.system(),
            conversation,
            answered,
            WaMessageId::new("wamid.out2"),
        )
        .await
        .unwrap();
    let due = t0() + TimeDelta::minutes(15);
    for message_id in [lost, answered] {
        let action = TimerAction::ExpireUncertainSend {
            conversation_id: conversation,
            message_id,
        };
        app.app.schedule_timer(&app.system(), due, action).await.unwrap();
    }
    settle(&app).await;

    // Not yet due.
    assert_eq!(service(&app).tick().await, fired(0));
    app.clock.advance(TimeDelta::minutes(15) - TimeDelta::seconds(1));
    assert_eq!(service(&app).tick().await, fired(0));
    assert_eq!(count(&app, t::DELIVERY_STATUS_CHANGED).await, 0);

    app.clock.advance(TimeDelta::seconds(1));
    assert_eq!(service(&app).tick().await, fired(2));
    let view = app
        .app
        .conversation(app.workspace, conversation, None)
        .await
        .unwrap();
    let entry = |id: MessageId| {
        view.messages
            .iter()
            .find(|m| m.message_id == id.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(entry(lost).delivery_state.as_deref(), Some("failed"));
    assert_eq!(entry(lost).failure_code, Some(i64::from(PALAVER_FAILURE_CODE)));
    assert_eq!(
        entry(lost).failure_reason.as_deref(),
        Some(UNCERTAIN_SEND_EXPIRED)
    );
    assert_eq!(entry(answered).failure_code, None);
    assert_eq!(entry(answered).delivery_state.as_deref(), Some("queued"));

    // Neither another tick nor a new service (a restart) fires them again.
    assert_eq!(service(&app).tick().await, fired(0));
    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(service(&app).tick().await, fired(0));
    assert_eq!(count(&app, t::TIMER_FIRED).await, 2);
    assert_eq!(count(&app, t::DELIVERY_STATUS_CHANGED).await, 1);
    assert!(
        app.app
            .read_models()
            .due_timers(app.clock.now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_timer_the_read_models_still_list_is_not_fired_again() {
    let app = app_with_clock().await;
    let conversation = app.inbound(support::CUSTOMER, "wamid.in1", "hello").await;
    let (message_id, _) = app.template(conversation, "Ada").await;
    let action = TimerAction::ExpireUncertainSend {
        conversation_id: conversation,
        message_id,
    };
    let timer = app
        .app
        .schedule_timer(&app.system(), t0(), action)
        .await
        .unwrap()
        .value;
    settle(&app).await;
    // Recorded fired behind the service's back (another instance that
    // fired it just before its lease moved): the row lags, the stream not.
    app.app.record_timer_fired(&app.system(), timer).await.unwrap();
    assert!(!app.app.timer_pending(app.workspace, timer).await.unwrap());

    assert_eq!(service(&app).tick().await, fired(0));
    assert_eq!(count(&app, t::DELIVERY_STATUS_CHANGED).await, 0);
    assert_eq!(count(&app, t::TIMER_FIRED).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_loop_fires_due_timers_and_a_restarted_loop_does_not_fire_them_again() {
    let app = app_with_clock().await;
    let conversation = app.inbound(support::CUSTOMER, "wamid.in1", "hello").await;
    let (message_id, _) = app.template(conversation, "Ada").await;
    let action = TimerAction::ExpireUncertainSend {
        conversation_id: conversation,
        message_id,
    };
    let due = t0() + TimeDelta::hours(1);
    let timer = app
        .app
        .schedule_timer(&app.system(), due, action)
        .await
        .unwrap()
        .value;
    assert_eq!(timer, TimerId::derive(&action_of(conversation, message_id), due));
    settle(&app).await;

    let options = TimerServiceOptions {
        tick: Duration::from_millis(10),
        batch: 100,
    };
    let runtime = app.runtime(app.checkpoints("workers.db"));
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(TimerService::new(app.app.clone(), options).run(runtime.clone(), shutdown));
    app.clock.advance(TimeDelta::hours(1));
    eventually("the timer fired", async || count(&app, t::TIMER_FIRED).await == 1).await;
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(count(&app, t::DELIVERY_STATUS_CHANGED).await, 1);

    // Restarted: the read models no longer list it, its stream says fired.
    settle(&app).await;
    assert!(
        app.app
            .read_models()
            .due_timers(app.clock.now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!app.app.timer_pending(app.workspace, timer).await.unwrap());
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(TimerService::new(app.app.clone(), options).run(runtime, shutdown));
    assert_eq!(service(&app).tick().await, fired(0));
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(count(&app, t::TIMER_FIRED).await, 1);
    assert_eq!(count(&app, t::DELIVERY_STATUS_CHANGED).await, 1);
}

fn action_of(conversation_id: ConversationId, message_id: MessageId) -> TimerAction {
    TimerAction::ExpireUncertainSend {
        conversation_id,
        message_id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_warning_comes_an_hour_before_closing_unless_a_teammate_replied() {
    let app = app_with_clock().await;
    let scheduler = TimerScheduler::new(app.app.clone(), TimerSchedulerOptions::default());
    let waiting = app.inbound("447700900001", "wamid.a1", "anyone there?").await;
    let answered = app.inbound("447700900002", "wamid.b1", "hi").await;
    app.reply(answered, "Hello! How can we help?").await;
    let mut seen = Position::START;
    pump(&app, &scheduler, &mut seen).await;
    // Scheduling again (a redelivered event) makes no second timer.
    replay(&app, &scheduler).await;
    assert_eq!(count(&app, t::TIMER_SCHEDULED).await, 2);

    app.clock.advance(TimeDelta::hours(23) - TimeDelta::seconds(1));
    assert_eq!(service(&app).tick().await, fired(0));
    assert!(!inbox_row(&app, waiting).await.window_closing_soon);

    app.clock.advance(TimeDelta::seconds(1));
    assert_eq!(service(&app).tick().await, fired(2));
    assert_eq!(count(&app, t::WINDOW_CLOSING_SOON).await, 1);
    let conversation = app.app.conversation(app.workspace, waiting, None).await.unwrap();
    assert!(conversation.conversation.window_closing_soon);
    assert!(inbox_row(&app, waiting).await.window_closing_soon);
    assert!(!inbox_row(&app, answered).await.window_closing_soon);

    // Once the window has closed there is nothing to warn about.
    app.clock.advance(TimeDelta::hours(1));
    assert!(!inbox_row(&app, waiting).await.window_closing_soon);
    assert_eq!(service(&app).tick().await, fired(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_warning_time_is_configurable_and_a_newer_message_moves_it() {
    let app = app_with_clock().await;
    let options = TimerSchedulerOptions {
        window_warning: Duration::from_secs(2 * 60 * 60),
    };
    let scheduler = TimerScheduler::new(app.app.clone(), options);
    let conversation = app.inbound(support::CUSTOMER, "wamid.a1", "first").await;
    app.clock.advance(TimeDelta::hours(1));
    app.inbound(support::CUSTOMER, "wamid.a2", "second").await;
    let mut seen = Position::START;
    pump(&app, &scheduler, &mut seen).await;

    // The first message's warning (at 22 h) is stale: its window was
    // extended by the second message.
    app.clock.advance(TimeDelta::hours(21));
    assert_eq!(service(&app).tick().await, fired(1));
    assert_eq!(count(&app, t::WINDOW_CLOSING_SOON).await, 0);
    // The second's, two hours before its window closes at 25 h.
    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(service(&app).tick().await, fired(1));
    assert_eq!(count(&app, t::WINDOW_CLOSING_SOON).await, 1);
    assert!(inbox_row(&app, conversation).await.window_closing_soon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_conversation_wakes_at_its_time_but_not_at_the_time_of_an_earlier_snooze() {
    let app = app_with_clock().await;
    let scheduler = TimerScheduler::new(app.app.clone(), TimerSchedulerOptions::default());
    let snoozed = app.inbound("447700900001", "wamid.a1", "later").await;
    let resnoozed = app.inbound("447700900002", "wamid.b1", "later too").await;
    let teammate = app.teammate();
    let hour = t0() + TimeDelta::hours(1);
    app.app.snooze(&teammate, snoozed, hour).await.unwrap();
    app.app.snooze(&teammate, resnoozed, hour).await.unwrap();
    app.app
        .snooze(&teammate, resnoozed, t0() + TimeDelta::hours(3))
        .await
        .unwrap();
    let mut seen = Position::START;
    pump(&app, &scheduler, &mut seen).await;
    let wakes = |conversation_id| TimerAction::WakeConversation {
        conversation_id,
        until: hour,
    };
    for conversation_id in [snoozed, resnoozed] {
        let timer = TimerId::derive(&wakes(conversation_id), hour);
        assert!(app.app.timer_pending(app.workspace, timer).await.unwrap());
    }

    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(service(&app).tick().await, fired(2));
    assert_eq!(inbox_row(&app, snoozed).await.status, Status::Open);
    let row = inbox_row(&app, resnoozed).await;
    assert_eq!(row.status, Status::Snoozed);
    assert_eq!(row.snoozed_until, Some(t0() + TimeDelta::hours(3)));
    // Only the snooze that ended is recorded as woken.
    assert_eq!(count(&app, t::CONVERSATION_UNSNOOZED).await, 1);

    app.clock.advance(TimeDelta::hours(2));
    assert_eq!(service(&app).tick().await, fired(1));
    assert_eq!(inbox_row(&app, resnoozed).await.status, Status::Open);
    assert_eq!(count(&app, t::CONVERSATION_UNSNOOZED).await, 2);
    assert!(
        app.app
            .read_models()
            .due_timers(app.clock.now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_under_the_worker_loop_across_a_restart() {
    let app = app_with_clock().await;
    let scheduler = Arc::new(TimerScheduler::new(
        app.app.clone(),
        TimerSchedulerOptions::default(),
    ));
    let runtime = app.runtime(app.checkpoints("workers.db"));
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(palaver_workers::run(runtime.clone(), scheduler.clone(), shutdown));
    app.inbound("447700900001", "wamid.a1", "one").await;
    eventually("the first timer", async || {
        count(&app, t::TIMER_SCHEDULED).await == 1
    })
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();

    app.inbound("447700900002", "wamid.b1", "two").await;
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(palaver_workers::run(runtime, scheduler, shutdown));
    eventually("the second timer", async || {
        count(&app, t::TIMER_SCHEDULED).await == 2
    })
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();
}
