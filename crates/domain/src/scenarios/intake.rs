//! Stored webhook payloads: stored once, outcomes recorded when they change.

use crate::Error;
use crate::ids::{PayloadId, PhoneNumberId};
use crate::intake::{PayloadCommand as C, PayloadEvent as E, PayloadOutcome, WebhookPayload};
use crate::scenarios::fixtures::t;
use crate::testing::given;

const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

fn received() -> E {
    E::Received {
        payload_id: PayloadId::of_body(BODY),
        body: BODY.to_vec(),
        at: t(0),
    }
}

#[test]
fn a_payload_is_stored_once_under_the_id_of_its_body() {
    let receive = || C::Receive {
        payload_id: PayloadId::of_body(BODY),
        body: BODY.to_vec(),
    };
    given::<WebhookPayload>([])
        .when(receive(), t(0))
        .then([received()]);
    assert!(
        given::<WebhookPayload>([received()])
            .when(receive(), t(5))
            .events()
            .is_empty()
    );
    assert_ne!(PayloadId::of_body(BODY), PayloadId::of_body(b"{}"));
    given::<WebhookPayload>([])
        .when(
            C::Receive {
                payload_id: PayloadId::of_body(b"{}"),
                body: BODY.to_vec(),
            },
            t(0),
        )
        .then_error(Error::WrongStream("the payload id is not the body's"));
}

#[test]
fn a_parked_payload_can_be_processed_later() {
    let number = PhoneNumberId::new("100000000000001");
    let parked = E::Parked {
        payload_id: PayloadId::of_body(BODY),
        phone_number_ids: vec![number.clone()],
        at: t(1),
    };
    let state = given::<WebhookPayload>([received()])
        .when(
            C::Park {
                phone_number_ids: vec![number.clone()],
            },
            t(1),
        )
        .then([parked.clone()]);
    assert_eq!(state.outcome(), &PayloadOutcome::Parked(vec![number.clone()]));
    // Parking again for the same numbers changes nothing.
    assert!(
        given::<WebhookPayload>([received(), parked.clone()])
            .when(
                C::Park {
                    phone_number_ids: vec![number]
                },
                t(2)
            )
            .events()
            .is_empty()
    );
    let state = given::<WebhookPayload>([received(), parked])
        .when(C::MarkProcessed { items: 2 }, t(3))
        .then([E::Processed {
            payload_id: PayloadId::of_body(BODY),
            items: 2,
            at: t(3),
        }]);
    assert_eq!(state.outcome(), &PayloadOutcome::Processed);
}

#[test]
fn outcomes_need_a_stored_payload() {
    given::<WebhookPayload>([])
        .when(C::MarkFailed { error: "boom".into() }, t(0))
        .then_error(Error::NotFound("webhook payload"));
}
