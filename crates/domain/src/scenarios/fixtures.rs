//! Shared test data: a fixed clock, ids, a thread identity, a catalogue.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::Aggregate;
use crate::ids::Actor;
use crate::ids::{BusinessAccountId, ContactId, PhoneNumberId, TeammateId, WaId, WorkspaceId};
use crate::templates::{
    CheckedTemplateSend, ComponentKind, TemplateCatalogue, TemplateCategory, TemplateCommand,
    TemplateComponent, TemplateDefinition, TemplateSend, TemplateStatus,
};
use crate::thread::ThreadIdentity;

/// `secs` seconds after a fixed instant.
pub fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap() + TimeDelta::seconds(secs)
}

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 24 * HOUR;

pub fn workspace() -> WorkspaceId {
    WorkspaceId::from_uuid(Uuid::from_u128(1))
}

pub fn contact() -> ContactId {
    ContactId::from_uuid(Uuid::from_u128(2))
}

pub fn teammate() -> Actor {
    Actor::Teammate(TeammateId::new("alice"))
}

pub fn identity() -> ThreadIdentity {
    ThreadIdentity {
        workspace_id: workspace(),
        business_phone_number_id: PhoneNumberId::new("1065550001"),
        customer_wa_id: WaId::new("447700900123"),
        contact_id: contact(),
    }
}

pub fn account() -> BusinessAccountId {
    BusinessAccountId::new("waba-1")
}

pub fn definition(name: &str, language: &str) -> TemplateDefinition {
    TemplateDefinition {
        name: name.into(),
        language: language.into(),
        category: TemplateCategory::Utility,
        components: vec![
            TemplateComponent {
                kind: ComponentKind::Header,
                format: "TEXT".into(),
                text: "Order {{1}}".into(),
            },
            TemplateComponent {
                kind: ComponentKind::Body,
                format: String::new(),
                text: "Hi {{1}}, your order ships on {{2}}.".into(),
            },
        ],
    }
}

/// A catalogue with `order_update` approved in en_GB and paused in fr.
pub fn catalogue() -> TemplateCatalogue {
    let mut catalogue = TemplateCatalogue::default();
    for (language, status) in [
        ("en_GB", TemplateStatus::Approved),
        ("fr", TemplateStatus::Paused),
    ] {
        let events = catalogue
            .decide(
                TemplateCommand::Register {
                    business_account_id: account(),
                    definition: definition("order_update", language),
                    status,
                },
                t(0),
            )
            .unwrap();
        catalogue = events.iter().fold(catalogue, |c, e| c.evolve(e));
    }
    catalogue
}

pub fn order_update() -> TemplateSend {
    TemplateSend {
        name: "order_update".into(),
        language: "en_GB".into(),
        header_parameters: vec!["#42".into()],
        body_parameters: vec!["Sam".into(), "Monday".into()],
    }
}

pub fn checked_order_update() -> CheckedTemplateSend {
    catalogue().check(order_update()).unwrap()
}
