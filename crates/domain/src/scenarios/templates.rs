//! Template catalogue: sync, status changes, and the send check naming what
//! is wrong.

use super::fixtures::*;
use crate::templates::{
    TemplateCatalogue, TemplateCommand, TemplateError, TemplateEvent, TemplatePart, TemplateSend,
    TemplateStatus,
};
use crate::testing::given;
use crate::{Aggregate, Error};

fn send(name: &str, language: &str, header: usize, body: usize) -> TemplateSend {
    TemplateSend {
        name: name.into(),
        language: language.into(),
        header_parameters: vec!["h".into(); header],
        body_parameters: vec!["b".into(); body],
    }
}

#[test]
fn an_approved_template_with_the_declared_parameters_passes() {
    let checked = catalogue().check(send("order_update", "en_GB", 1, 2)).unwrap();
    assert_eq!(checked.send().name, "order_update");
}

#[test]
fn an_unknown_template_is_named() {
    assert_eq!(
        catalogue().check(send("nope", "en_GB", 0, 0)),
        Err(TemplateError::Unknown { name: "nope".into() })
    );
}

#[test]
fn a_language_mismatch_lists_the_available_languages() {
    assert_eq!(
        catalogue().check(send("order_update", "de", 1, 2)),
        Err(TemplateError::LanguageMismatch {
            name: "order_update".into(),
            requested: "de".into(),
            available: vec!["en_GB".into(), "fr".into()],
        })
    );
}

#[test]
fn a_template_that_is_not_approved_says_its_status() {
    assert_eq!(
        catalogue().check(send("order_update", "fr", 1, 2)),
        Err(TemplateError::NotApproved {
            name: "order_update".into(),
            language: "fr".into(),
            status: TemplateStatus::Paused,
        })
    );
}

#[test]
fn a_wrong_parameter_count_says_expected_and_got() {
    assert_eq!(
        catalogue().check(send("order_update", "en_GB", 0, 2)),
        Err(TemplateError::ParameterCount {
            name: "order_update".into(),
            part: TemplatePart::Header,
            expected: 1,
            got: 0,
        })
    );
    assert_eq!(
        catalogue().check(send("order_update", "en_GB", 1, 3)),
        Err(TemplateError::ParameterCount {
            name: "order_update".into(),
            part: TemplatePart::Body,
            expected: 2,
            got: 3,
        })
    );
}

#[test]
fn registering_counts_parameters_and_an_unchanged_sync_is_a_no_op() {
    let register = TemplateCommand::Register {
        business_account_id: account(),
        definition: definition("welcome", "en_GB"),
        status: TemplateStatus::Approved,
    };
    let state = given::<TemplateCatalogue>([])
        .when(register.clone(), t(0))
        .events();
    match &state[0] {
        TemplateEvent::Registered { template, .. } => {
            assert_eq!(
                (template.header_parameter_count, template.body_parameter_count),
                (1, 2)
            );
        }
        other => panic!("{other:?}"),
    }
    given::<TemplateCatalogue>(state)
        .when(register, t(1))
        .then_nothing();
}

#[test]
fn status_changes_are_recorded_and_stop_sends() {
    let history = {
        let c = TemplateCatalogue::default();
        c.decide(
            TemplateCommand::Register {
                business_account_id: account(),
                definition: definition("order_update", "en_GB"),
                status: TemplateStatus::Approved,
            },
            t(0),
        )
        .unwrap()
    };
    for status in [
        TemplateStatus::Paused,
        TemplateStatus::Disabled,
        TemplateStatus::Rejected,
    ] {
        let state = given::<TemplateCatalogue>(history.clone())
            .when(
                TemplateCommand::ChangeStatus {
                    name: "order_update".into(),
                    language: "en_GB".into(),
                    status,
                    reason: "quality".into(),
                },
                t(5),
            )
            .then([TemplateEvent::StatusChanged {
                business_account_id: account(),
                name: "order_update".into(),
                language: "en_GB".into(),
                status,
                reason: "quality".into(),
                at: t(5),
            }]);
        assert!(matches!(
            state.check(order_update()),
            Err(TemplateError::NotApproved { status: s, .. }) if s == status
        ));
    }
    given::<TemplateCatalogue>(history)
        .when(
            TemplateCommand::ChangeStatus {
                name: "ghost".into(),
                language: "en_GB".into(),
                status: TemplateStatus::Paused,
                reason: String::new(),
            },
            t(5),
        )
        .then_error(Error::Template(TemplateError::Unknown { name: "ghost".into() }));
}
