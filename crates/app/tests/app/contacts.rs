//! Contacts: creation with the channel's region, auto-merge by phone on and
//! off, manual merges.

use palaver_app::{Error, NewContact};
use palaver_domain::channel::ChannelSettings;
use palaver_domain::contact::ContactKind;
use palaver_domain::ids::ContactId;
use palaver_domain::phone::Region;

use crate::harness::{World, domain_error};

fn user(name: &str, phone: &str) -> NewContact {
    NewContact {
        kind: ContactKind::User,
        name: name.into(),
        phone_numbers: vec![phone.into()],
        wa_id: None,
        external_user_id: None,
    }
}

async fn with_settings(w: &World, identify_existing_users: bool) {
    let settings = ChannelSettings {
        identify_existing_users,
        default_region: Some(Region::parse("GB").unwrap()),
        ..ChannelSettings::default()
    };
    w.app.update_channel_settings(&w.ctx(), settings).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_numbers_use_the_channel_region_and_bad_ones_name_the_field() {
    let w = World::new().await;
    with_settings(&w, false).await;
    let created = w
        .app
        .create_contact(&w.ctx(), user("Ada", "07700 900123"))
        .await
        .unwrap();
    let found = w
        .app
        .contacts_by_phone(w.workspace, "0044 7700 900123", Some(created.position))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].contact_id, created.value.as_uuid());
    assert_eq!(found[0].phone_numbers, vec!["+447700900123".to_owned()]);

    let error = w
        .app
        .create_contact(&w.ctx(), user("Bob", "call me maybe"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                field: "phone_numbers",
                ..
            }
        ),
        "{error:?}"
    );
    let error = w
        .app
        .add_contact_phone(&w.ctx(), created.value, "not a number")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                field: "phone_number",
                ..
            }
        ),
        "{error:?}"
    );
    let lead_without_wa_id = NewContact {
        kind: ContactKind::Lead,
        ..user("Cy", "+447700900999")
    };
    let error = w
        .app
        .create_contact(&w.ctx(), lead_without_wa_id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidArgument { field: "wa_id", .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_identify_existing_users_a_new_lead_joins_the_user() {
    let w = World::new().await;
    with_settings(&w, true).await;
    let ada = w
        .app
        .create_contact(&w.ctx(), user("Ada", "07700 900123"))
        .await
        .unwrap();
    // Auto-merge finds candidates in the read models.
    w.app.wait_for(Some(ada.position)).await.unwrap();

    let inbound = w
        .inbound("447700900123", "wamid.1", "Hi, it's Ada")
        .await
        .unwrap();
    assert_eq!(inbound.value.contact_id, ada.value);
    let row = w
        .app
        .conversation(w.workspace, inbound.value.conversation_id, Some(inbound.position))
        .await
        .unwrap()
        .conversation;
    assert_eq!(row.contact_id, ada.value.as_uuid());
    assert_eq!(row.contact_name, "Ada");
    let found = w
        .app
        .contacts_by_phone(w.workspace, "07700 900123", None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].merged_from.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identify_existing_users_the_lead_stays_separate() {
    let w = World::new().await;
    with_settings(&w, false).await;
    let ada = w
        .app
        .create_contact(&w.ctx(), user("Ada", "07700 900123"))
        .await
        .unwrap();
    w.app.wait_for(Some(ada.position)).await.unwrap();

    let inbound = w
        .inbound("447700900123", "wamid.1", "Hi, it's Ada")
        .await
        .unwrap();
    assert_ne!(inbound.value.contact_id, ada.value);
    let found = w
        .app
        .contacts_by_phone(w.workspace, "07700 900123", Some(inbound.position))
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_merged_into_a_user_by_hand() {
    let w = World::new().await;
    let lead = w
        .inbound("447700900123", "wamid.1", "Hi")
        .await
        .unwrap()
        .value
        .contact_id;
    let user = w
        .app
        .create_contact(&w.ctx(), user("Ada", "+44 7700 900456"))
        .await
        .unwrap()
        .value;

    // Users are never merged away.
    let error = w.app.merge_contacts(&w.ctx(), user, lead).await.unwrap_err();
    assert!(matches!(
        domain_error(error),
        palaver_domain::Error::InvalidMerge(_)
    ));

    let merged = w.app.merge_contacts(&w.ctx(), lead, user).await.unwrap();
    let view = w
        .app
        .contact(w.workspace, lead, Some(merged.position))
        .await
        .unwrap();
    assert_eq!(view.contact_id, user.as_uuid());
    assert_eq!(
        view.phone_numbers,
        vec!["+447700900123".to_owned(), "+447700900456".to_owned()]
    );

    // A merged contact takes no more changes, and says where to go.
    let error = w
        .app
        .add_contact_phone(&w.ctx(), lead, "+447700900789")
        .await
        .unwrap_err();
    assert_eq!(
        domain_error(error),
        palaver_domain::Error::ContactMerged { into: user }
    );

    // The thread's next message reports the survivor.
    let again = w.inbound("447700900123", "wamid.2", "Still me").await.unwrap();
    assert_eq!(again.value.contact_id, user);

    // Unknown ids read as not found.
    let ghost = ContactId::from_uuid(uuid::Uuid::from_u128(404));
    let error = w.app.merge_contacts(&w.ctx(), ghost, user).await.unwrap_err();
    assert!(
        matches!(error, Error::NotFound { what: "contact", .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_may_be_created_with_its_external_id_and_a_lead_may_not() {
    let w = World::new().await;
    with_settings(&w, false).await;
    let created = w
        .app
        .create_contact(
            &w.ctx(),
            NewContact {
                external_user_id: Some("crm-42".into()),
                ..user("Ada", "07700 900123")
            },
        )
        .await
        .unwrap();
    let contact = w
        .app
        .contact(w.workspace, created.value, Some(created.position))
        .await
        .unwrap();
    assert_eq!(contact.external_user_id.as_deref(), Some("crm-42"));
    assert_eq!(contact.kind, "user");

    let before = w.store.head().await.unwrap();
    let lead = NewContact {
        kind: ContactKind::Lead,
        name: "Bo".into(),
        phone_numbers: vec![],
        wa_id: Some(palaver_domain::ids::WaId::new("447700900456")),
        external_user_id: Some("crm-43".into()),
    };
    let error = w.app.create_contact(&w.ctx(), lead).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                field: "external_user_id",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(w.store.head().await.unwrap(), before, "nothing was stored");
}
