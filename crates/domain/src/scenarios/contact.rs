//! Contacts: leads from WhatsApp, normalized phones, auto-merge and manual
//! merges kept as history.

use uuid::Uuid;

use super::fixtures::*;
use crate::Error;
use crate::contact::{
    Contact, ContactCandidate, ContactCommand, ContactEvent, ContactKind, MergeReason, MergeTarget,
    choose_merge_target,
};
use crate::ids::{Actor, ContactId, WaId};
use crate::phone::{PhoneError, PhoneNumber, Region};
use crate::testing::given;

fn lead_id() -> ContactId {
    ContactId::derive_lead(workspace(), &WaId::new("447700900123"))
}

fn user_id() -> ContactId {
    ContactId::from_uuid(Uuid::from_u128(50))
}

fn number() -> PhoneNumber {
    PhoneNumber::parse("+447700900123", None).unwrap()
}

fn lead_created() -> ContactEvent {
    ContactEvent::Created {
        contact_id: lead_id(),
        workspace_id: workspace(),
        kind: ContactKind::Lead,
        name: "Sam".into(),
        phone_numbers: vec![number()],
        wa_id: Some(WaId::new("447700900123")),
        external_user_id: None,
        by: Actor::System,
        at: t(0),
    }
}

#[test]
fn an_unknown_whatsapp_id_creates_a_lead_with_profile_name_and_number() {
    let create = ContactCommand::CreateLead {
        contact_id: lead_id(),
        workspace_id: workspace(),
        profile_name: "Sam".into(),
        wa_id: WaId::new("447700900123"),
    };
    given::<Contact>([])
        .when(create.clone(), t(0))
        .then([lead_created()]);
    // Two first messages at once: the second create is a no-op.
    given::<Contact>([lead_created()])
        .when(create, t(1))
        .then_nothing();
}

#[test]
fn a_users_numbers_in_any_spelling_are_one_e164_number() {
    let state = given::<Contact>([])
        .when(
            ContactCommand::CreateUser {
                external_user_id: None,
                contact_id: user_id(),
                workspace_id: workspace(),
                name: "Sam Jones".into(),
                phone_numbers: vec![
                    "+44 7700 900123".into(),
                    "+447700900123".into(),
                    "0044 7700 900123".into(),
                    "07700 900123".into(),
                ],
                default_region: Some(Region::parse("GB").unwrap()),
                by: teammate(),
            },
            t(0),
        )
        .events();
    match &state[0] {
        ContactEvent::Created { phone_numbers, .. } => assert_eq!(phone_numbers, &vec![number()]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unparseable_number_is_a_typed_error() {
    given::<Contact>([lead_created()])
        .when(
            ContactCommand::AddPhone {
                phone_number: "call me".into(),
                default_region: None,
            },
            t(1),
        )
        .then_error(Error::Phone(PhoneError::Unparseable {
            input: "call me".into(),
            reason: "not a number".into(),
        }));
}

fn candidate(id: u128, kind: ContactKind, phone: &str, active: Option<i64>) -> ContactCandidate {
    ContactCandidate {
        id: ContactId::from_uuid(Uuid::from_u128(id)),
        kind,
        phone_numbers: vec![PhoneNumber::parse(phone, None).unwrap()],
        last_active_at: active.map(t),
        merged_into: None,
    }
}

#[test]
fn with_identify_existing_users_on_a_new_lead_goes_to_the_most_recently_active_match() {
    let mut merged = candidate(13, ContactKind::User, "+447700900123", Some(900));
    merged.merged_into = Some(ContactId::from_uuid(Uuid::from_u128(10)));
    let candidates = vec![
        candidate(10, ContactKind::User, "+447700900123", Some(100)),
        candidate(11, ContactKind::Lead, "+447700900123", Some(500)),
        candidate(12, ContactKind::User, "+15555550100", Some(999)),
        merged,
    ];
    let target = choose_merge_target(true, lead_id(), &[number()], &candidates);
    assert_eq!(
        target,
        Some(MergeTarget {
            id: ContactId::from_uuid(Uuid::from_u128(11)),
            kind: ContactKind::Lead,
            merged_into: None,
        })
    );
    // The order of candidates does not matter.
    let mut reversed = candidates.clone();
    reversed.reverse();
    assert_eq!(
        choose_merge_target(true, lead_id(), &[number()], &reversed),
        target
    );
}

#[test]
fn with_identify_existing_users_off_a_new_lead_stays_separate() {
    let candidates = vec![candidate(10, ContactKind::User, "+447700900123", Some(100))];
    assert_eq!(
        choose_merge_target(false, lead_id(), &[number()], &candidates),
        None
    );
    assert_eq!(choose_merge_target(true, lead_id(), &[number()], &[]), None);
}

#[test]
fn equally_recent_matches_prefer_the_user() {
    let candidates = vec![
        candidate(10, ContactKind::Lead, "+447700900123", Some(100)),
        candidate(11, ContactKind::User, "+447700900123", Some(100)),
    ];
    let target = choose_merge_target(true, lead_id(), &[number()], &candidates).unwrap();
    assert_eq!(target.kind, ContactKind::User);
}

fn user_target() -> MergeTarget {
    MergeTarget {
        id: user_id(),
        kind: ContactKind::User,
        merged_into: None,
    }
}

fn merge(into: MergeTarget, reason: MergeReason) -> ContactCommand {
    ContactCommand::Merge {
        into,
        reason,
        by: teammate(),
    }
}

#[test]
fn a_lead_is_merged_into_a_user_and_the_merge_is_kept_as_history() {
    let merged = ContactEvent::Merged {
        contact_id: lead_id(),
        into: user_id(),
        reason: MergeReason::Manual,
        by: teammate(),
        at: t(5),
    };
    let state = given::<Contact>([lead_created()])
        .when(merge(user_target(), MergeReason::Manual), t(5))
        .then([merged.clone()]);
    // The merged contact still exists, pointing at the survivor.
    assert_eq!(state.merged_into(), Some(user_id()));
    assert_eq!(state.name(), Some("Sam"));
    given::<Contact>([lead_created(), merged.clone()])
        .when(merge(user_target(), MergeReason::Manual), t(6))
        .then_nothing();
    given::<Contact>([lead_created(), merged])
        .when(
            ContactCommand::AddPhone {
                phone_number: "+15555550100".into(),
                default_region: None,
            },
            t(7),
        )
        .then_error(Error::ContactMerged { into: user_id() });
}

#[test]
fn merges_that_would_lose_an_identity_are_refused() {
    given::<Contact>([lead_created()])
        .when(
            merge(
                MergeTarget {
                    id: lead_id(),
                    kind: ContactKind::Lead,
                    merged_into: None,
                },
                MergeReason::SamePhone,
            ),
            t(1),
        )
        .then_error(Error::InvalidMerge("a contact cannot be merged into itself"));
    let merged_target = MergeTarget {
        merged_into: Some(ContactId::from_uuid(Uuid::from_u128(77))),
        ..user_target()
    };
    given::<Contact>([lead_created()])
        .when(merge(merged_target, MergeReason::Manual), t(1))
        .then_error(Error::InvalidMerge(
            "the target was itself merged; merge into its survivor",
        ));
    let lead_target = MergeTarget {
        kind: ContactKind::Lead,
        ..user_target()
    };
    given::<Contact>([lead_created()])
        .when(merge(lead_target, MergeReason::Manual), t(1))
        .then_error(Error::InvalidMerge("a lead is merged manually into a user"));
    // Auto-merge may go lead into lead.
    given::<Contact>([lead_created()])
        .when(merge(lead_target, MergeReason::SamePhone), t(1))
        .then([ContactEvent::Merged {
            contact_id: lead_id(),
            into: user_id(),
            reason: MergeReason::SamePhone,
            by: teammate(),
            at: t(1),
        }]);
    let user = ContactEvent::ConvertedToUser {
        contact_id: lead_id(),
        external_user_id: "u-1".into(),
        by: teammate(),
        at: t(1),
    };
    given::<Contact>([lead_created(), user])
        .when(merge(user_target(), MergeReason::Manual), t(2))
        .then_error(Error::InvalidMerge(
            "a user is never merged away; merge the lead into the user",
        ));
}
