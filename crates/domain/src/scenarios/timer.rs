//! Timers: derived ids, scheduled once, fired once.

use crate::Error;
use crate::ids::{CampaignId, ConversationId, TimerId, WorkspaceId};
use crate::scenarios::fixtures::t;
use crate::testing::given;
use crate::timer::{Timer, TimerAction, TimerCommand as C, TimerEvent as E};

fn action() -> TimerAction {
    TimerAction::LaunchCampaign {
        campaign_id: CampaignId::from_uuid(uuid::Uuid::from_u128(7)),
    }
}

fn scheduled() -> E {
    E::Scheduled {
        timer_id: TimerId::derive(&action(), t(3600)),
        workspace_id: WorkspaceId::from_uuid(uuid::Uuid::from_u128(1)),
        due_at: t(3600),
        action: action(),
        at: t(0),
    }
}

#[test]
fn a_timer_is_scheduled_once_and_fires_once() {
    let schedule = || C::Schedule {
        workspace_id: WorkspaceId::from_uuid(uuid::Uuid::from_u128(1)),
        due_at: t(3600),
        action: action(),
    };
    given::<Timer>([]).when(schedule(), t(0)).then([scheduled()]);
    assert!(
        given::<Timer>([scheduled()])
            .when(schedule(), t(1))
            .events()
            .is_empty()
    );
    let fired = E::Fired {
        timer_id: TimerId::derive(&action(), t(3600)),
        at: t(3600),
    };
    let state = given::<Timer>([scheduled()])
        .when(C::Fire, t(3600))
        .then([fired.clone()]);
    assert!(state.fired());
    assert!(
        given::<Timer>([scheduled(), fired])
            .when(C::Fire, t(3601))
            .events()
            .is_empty()
    );
    given::<Timer>([])
        .when(C::Fire, t(0))
        .then_error(Error::NotFound("timer"));
}

#[test]
fn timer_ids_follow_what_and_when() {
    let wake = |until| TimerAction::WakeConversation {
        conversation_id: ConversationId::from_uuid(uuid::Uuid::from_u128(9)),
        until,
    };
    assert_eq!(
        TimerId::derive(&wake(t(10)), t(10)),
        TimerId::derive(&wake(t(10)), t(10))
    );
    assert_ne!(
        TimerId::derive(&wake(t(10)), t(10)),
        TimerId::derive(&wake(t(20)), t(20))
    );
    assert_ne!(
        TimerId::derive(&wake(t(10)), t(10)),
        TimerId::derive(&action(), t(10))
    );
}
