//! Webhook payloads: every fixture (written from Meta's reference, with the
//! ids the end-to-end tests share) parses and maps to the domain values it
//! stands for; bad payloads get errors that name the JSON path.

use chrono::DateTime;
use palaver_domain::delivery::{DeliveryFailure, DeliveryProgress, DeliveryUpdate};
use palaver_domain::ids::{BusinessAccountId, PhoneNumberId, WaId, WaMessageId};
use palaver_domain::message::{ContactCard, InboundContent, InboundMessage, InteractiveReplyKind, Media};
use palaver_domain::templates::TemplateStatus;
use palaver_whatsapp::webhook::{self, Error, Item};
use palaver_whatsapp::{Customer, Notification};
use serde_json::Value;

const WABA: &str = "200000000000001";
const PHONE_NUMBER_ID: &str = "100000000000001";
const WA_ID: &str = "447700900123";
const BSUID: &str = "GB.1000000000000001";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
}

fn items_of(body: &[u8]) -> Vec<Item> {
    webhook::parse_items(body).expect("the payload maps")
}

fn items(name: &str) -> Vec<Item> {
    items_of(&fixture(name))
}

fn ada() -> Customer {
    Customer {
        wa_id: Some(WaId::new(WA_ID)),
        user_id: Some(BSUID.to_owned()),
        profile_name: "Ada Lovelace".to_owned(),
    }
}

/// The one customer message of a fixture, checked to come from Ada to the
/// test number.
fn message(name: &str) -> InboundMessage {
    let mut items = items(name);
    assert_eq!(items.len(), 1, "{name}: {items:?}");
    match items.remove(0) {
        Item::Message {
            waba_id,
            phone_number_id,
            customer,
            message,
        } => {
            assert_eq!(waba_id, BusinessAccountId::new(WABA));
            assert_eq!(phone_number_id, PhoneNumberId::new(PHONE_NUMBER_ID));
            assert_eq!(customer, ada(), "{name}");
            assert_eq!(
                message.wa_message_id,
                WaMessageId::new(format!("wamid.TEST_{name}"))
            );
            message
        }
        other => panic!("{name}: expected a message, got {other:?}"),
    }
}

fn content(name: &str) -> InboundContent {
    message(name).content
}

fn media(id: &str, mime_type: &str, sha256: &str) -> Media {
    Media {
        media_id: id.to_owned(),
        mime_type: mime_type.to_owned(),
        sha256: sha256.to_owned(),
    }
}

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp(secs, 0).expect("valid")
}

#[test]
fn every_fixture_parses_and_maps() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let body = std::fs::read(&path).expect("readable");
        let items = webhook::parse_items(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!items.is_empty(), "{}", path.display());
        count += 1;
    }
    assert!(count >= 20, "only {count} fixtures");
}

#[test]
fn text() {
    let message = message("text");
    assert_eq!(message.sent_at, at(1_764_050_000));
    assert_eq!(
        message.content,
        InboundContent::Text {
            body: "Hello! Is my order on its way?".to_owned()
        }
    );
    assert_eq!(message.context, Default::default(), "a fresh message");
}

#[test]
fn image_video_document() {
    assert_eq!(
        content("image"),
        InboundContent::Image {
            media: media(
                "1000000000000101",
                "image/jpeg",
                "n0jQ5FJ0XrGdQnqT3m0v2o1kD8yQbq9aC1yVw5pL2oE="
            ),
            caption: "The parcel arrived like this".to_owned(),
        }
    );
    assert_eq!(
        content("video"),
        InboundContent::Video {
            media: media(
                "1000000000000102",
                "video/mp4",
                "q2r8vB7l0g0f3m8G0tJ4yC9pA6nT2xS1uW5zE3kH7dQ="
            ),
            caption: "Unboxing".to_owned(),
        }
    );
    assert_eq!(
        content("document"),
        InboundContent::Document {
            media: media(
                "1000000000000104",
                "application/pdf",
                "c1Xa9Lm3Qe7Rt5Yu2Io8Pa4Sd6Fg0Hj1Kl3Zx5Cv7B="
            ),
            file_name: "invoice-0042.pdf".to_owned(),
            caption: "My invoice".to_owned(),
        }
    );
}

#[test]
fn an_animated_video_is_a_gif() {
    assert_eq!(
        content("gif"),
        InboundContent::Gif {
            media: media(
                "1000000000000103",
                "video/mp4",
                "b6Hn2yX9w1Q4cV8rT0pL3mK7zJ5aS2dF9gE1hU6iO4Y="
            ),
            caption: "Happy dance".to_owned(),
        }
    );
}

#[test]
fn audio_voice_note_and_sticker() {
    assert_eq!(
        content("audio"),
        InboundContent::Audio {
            media: media(
                "1000000000000105",
                "audio/mpeg",
                "d4Rf6Tg8Yh0Uj2Ik4Ol6Pm8Nb0Vc2Xz4As6Df8Gh0J="
            ),
            voice: false,
        }
    );
    assert_eq!(
        content("voice"),
        InboundContent::Audio {
            media: media(
                "1000000000000106",
                "audio/ogg; codecs=opus",
                "e5Tg7Yh9Uj1Ik3Ol5Pm7Nb9Vc1Xz3As5Df7Gh9Jk1L="
            ),
            voice: true,
        }
    );
    assert_eq!(
        content("sticker"),
        InboundContent::Sticker {
            media: media(
                "1000000000000107",
                "image/webp",
                "f6Yh8Uj0Ik2Ol4Pm6Nb8Vc0Xz2As4Df6Gh8Jk0Lq2W="
            ),
            animated: true,
        }
    );
}

#[test]
fn location_and_contact_cards() {
    assert_eq!(
        content("location"),
        InboundContent::Location {
            latitude: 51.5299,
            longitude: -0.1277,
            name: "The British Library".to_owned(),
            address: "96 Euston Road, London NW1 2DB".to_owned(),
        }
    );
    assert_eq!(
        content("contacts"),
        InboundContent::Contacts {
            cards: vec![
                ContactCard {
                    formatted_name: "Charles Babbage".to_owned(),
                    phone_numbers: vec!["+44 20 7946 0018".to_owned(), "+44 7700 900456".to_owned()],
                },
                ContactCard {
                    formatted_name: "Mary Somerville".to_owned(),
                    // No written number: the WhatsApp id stands in.
                    phone_numbers: vec!["447700900789".to_owned()],
                },
            ],
        }
    );
}

#[test]
fn reactions_and_their_removal() {
    assert_eq!(
        content("reaction"),
        InboundContent::Reaction {
            target: WaMessageId::new("wamid.TEST_outbound"),
            emoji: Some("\u{1F44D}".to_owned()),
        }
    );
    assert_eq!(
        content("reaction_removed"),
        InboundContent::Reaction {
            target: WaMessageId::new("wamid.TEST_outbound"),
            emoji: None,
        }
    );
}

#[test]
fn button_and_interactive_replies() {
    let button = message("button");
    assert_eq!(
        button.content,
        InboundContent::ButtonReply {
            payload: "TRACK_ORDER".to_owned(),
            text: "Track my order".to_owned(),
        }
    );
    assert_eq!(
        button.context.reply_to,
        Some(WaMessageId::new("wamid.TEST_template"))
    );
    assert_eq!(
        content("interactive_button_reply"),
        InboundContent::InteractiveReply {
            kind: InteractiveReplyKind::Button,
            id: "yes-refund".to_owned(),
            title: "Yes, refund me".to_owned(),
            description: String::new(),
        }
    );
    assert_eq!(
        content("interactive_list_reply"),
        InboundContent::InteractiveReply {
            kind: InteractiveReplyKind::List,
            id: "slot-tue-am".to_owned(),
            title: "Tuesday morning".to_owned(),
            description: "9:00 to 12:00".to_owned(),
        }
    );
}

#[test]
fn replies_forwards_and_referrals_fill_the_context() {
    let reply = message("reply");
    assert_eq!(
        reply.context.reply_to,
        Some(WaMessageId::new("wamid.TEST_outbound"))
    );
    assert!(!reply.context.forwarded);

    let forwarded = message("forwarded").context;
    assert_eq!(forwarded.reply_to, None);
    assert!(forwarded.forwarded);
    assert!(forwarded.frequently_forwarded);

    let referral = message("referral").context.referral.expect("a referral");
    assert_eq!(referral.source_url, "https://fb.me/3cr4Wqqkv");
    assert_eq!(referral.source_type, "ad");
    assert_eq!(referral.source_id, "120200000000000001");
    assert_eq!(referral.headline, "Notebooks for engines");
    assert_eq!(referral.body, "Spring sale: 20% off every notebook");
    assert_eq!(referral.media_type, "image");
    assert_eq!(referral.image_url, "https://scontent.example/ad-image.jpg");
    assert_eq!(referral.video_url, "");
    assert!(referral.ctwa_clid.starts_with("ARAkLkA8"));
}

/// The raw payload is the message object as received.
fn assert_raw(content: &InboundContent, fixture_name: &str, raw_type: &str) {
    let InboundContent::Unsupported {
        raw_type: got_type,
        raw_payload,
    } = content
    else {
        panic!("expected unsupported, got {content:?}");
    };
    assert_eq!(got_type, raw_type);
    let original = &fixture_json(fixture_name)["entry"][0]["changes"][0]["value"]["messages"][0];
    let kept: Value = serde_json::from_str(raw_payload).expect("raw payload is JSON");
    assert_eq!(&kept, original);
}

#[test]
fn unsupported_and_unknown_kinds_are_kept_verbatim() {
    assert_raw(&content("unsupported"), "unsupported", "unsupported");
    let order = message_of_kind("unknown_type");
    assert_raw(&order.content, "unknown_type", "order");
    assert_eq!(
        order.context.reply_to,
        Some(WaMessageId::new("wamid.TEST_catalog"))
    );
}

fn message_of_kind(name: &str) -> InboundMessage {
    match items(name).remove(0) {
        Item::Message { message, .. } => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_made_up_kind_and_a_flow_reply_are_unsupported_not_errors() {
    let mut json = fixture_json("text");
    let message = &mut json["entry"][0]["changes"][0]["value"]["messages"][0];
    message["type"] = "hologram".into();
    message["hologram"] = serde_json::json!({ "frames": [1, 2, 3] });
    let items = items_of(json.to_string().as_bytes());
    let Item::Message { message, .. } = &items[0] else {
        panic!("{items:?}")
    };
    assert!(
        matches!(&message.content, InboundContent::Unsupported { raw_type, .. } if raw_type == "hologram")
    );

    let mut json = fixture_json("interactive_button_reply");
    json["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"] = serde_json::json!({
        "type": "nfm_reply",
        "nfm_reply": { "name": "flow", "body": "Sent", "response_json": "{\"a\":1}" }
    });
    let items = items_of(json.to_string().as_bytes());
    let Item::Message { message, .. } = &items[0] else {
        panic!("{items:?}")
    };
    assert!(
        matches!(&message.content, InboundContent::Unsupported { raw_type, .. } if raw_type == "interactive")
    );
}

#[test]
fn a_username_only_sender_is_known_by_bsuid() {
    let items = items("bsuid_only");
    let Item::Message {
        customer, message, ..
    } = &items[0]
    else {
        panic!("{items:?}")
    };
    assert_eq!(
        customer,
        &Customer {
            wa_id: None,
            user_id: Some(BSUID.to_owned()),
            profile_name: "Ada Lovelace".to_owned(),
        }
    );
    assert_eq!(message.wa_message_id, WaMessageId::new("wamid.TEST_bsuid"));
}

#[test]
fn the_sender_is_completed_from_the_matching_contact() {
    // `from` only: the BSUID comes from contacts[] by wa_id.
    let mut json = fixture_json("text");
    let value = &mut json["entry"][0]["changes"][0]["value"];
    value["messages"][0]
        .as_object_mut()
        .expect("object")
        .remove("from_user_id");
    let items = items_of(json.to_string().as_bytes());
    let Item::Message { customer, .. } = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(customer, &ada());

    // A sender without a contacts entry: no profile name, ids as given.
    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]
        .as_object_mut()
        .expect("object")
        .remove("contacts");
    let items = items_of(json.to_string().as_bytes());
    let Item::Message { customer, .. } = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(customer.profile_name, "");
    assert_eq!(customer.wa_id, Some(WaId::new(WA_ID)));
}

#[test]
fn a_system_message_is_unhandled_not_dropped() {
    let items = items("system");
    assert_eq!(items.len(), 1);
    let Item::Unhandled { field, reason } = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(field, "messages");
    assert!(reason.contains("user_changed_number"), "{reason}");
    assert!(reason.contains("447700900456"), "{reason}");
}

fn status(item: &Item) -> (&WaMessageId, &DeliveryUpdate, Option<&str>) {
    match item {
        Item::Status {
            waba_id,
            phone_number_id,
            wa_message_id,
            recipient,
            update,
            callback_data,
            ..
        } => {
            assert_eq!(waba_id.as_str(), WABA);
            assert_eq!(phone_number_id.as_str(), PHONE_NUMBER_ID);
            assert_eq!(recipient.as_deref(), Some(WA_ID));
            (wa_message_id, update, callback_data.as_deref())
        }
        other => panic!("expected a status, got {other:?}"),
    }
}

#[test]
fn a_status_batch_keeps_payload_order() {
    let items = items("statuses");
    let updates: Vec<_> = items.iter().map(status).collect();
    let progress = |progress, secs| DeliveryUpdate::Progress {
        progress,
        at: at(secs),
    };
    assert_eq!(
        updates.iter().map(|(_, u, _)| (*u).clone()).collect::<Vec<_>>(),
        vec![
            progress(DeliveryProgress::Read, 1_764_050_032),
            progress(DeliveryProgress::Sent, 1_764_050_030),
            progress(DeliveryProgress::Delivered, 1_764_050_031),
        ]
    );
    for (id, _, callback) in &updates {
        assert_eq!(id.as_str(), "wamid.TEST_outbound");
        assert_eq!(*callback, Some("0197a3f2-5b1e-7c44-9a2d-3f6e8b1c0d42"));
    }
    let Item::Status {
        recipient_user_id, ..
    } = &items[0]
    else {
        unreachable!()
    };
    assert_eq!(recipient_user_id.as_deref(), Some(BSUID));
}

#[test]
fn a_failed_status_carries_the_error() {
    let items = items("status_failed");
    let (id, update, callback) = status(&items[0]);
    assert_eq!(id.as_str(), "wamid.TEST_failed");
    assert_eq!(callback, Some("0197a3f2-5b1e-7c44-9a2d-3f6e8b1c0d43"));
    assert_eq!(
        update,
        &DeliveryUpdate::Failed {
            failure: DeliveryFailure {
                code: 131_047,
                reason: "Re-engagement message: Message failed to send because more than 24 hours have passed since \
                         the customer last replied to this number."
                    .to_owned(),
            },
            at: at(1_764_050_040),
        }
    );
}

#[test]
fn an_unknown_status_is_unhandled() {
    let mut json = fixture_json("statuses");
    json["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "played".into();
    let items = items_of(json.to_string().as_bytes());
    assert!(matches!(&items[0], Item::Unhandled { reason, .. } if reason.contains("played")));
    assert!(matches!(&items[1], Item::Status { .. }));
}

#[test]
fn template_status_updates() {
    assert_eq!(
        items("template_status"),
        vec![Item::TemplateStatus {
            waba_id: BusinessAccountId::new(WABA),
            name: "order_update".to_owned(),
            language: "en_GB".to_owned(),
            status: TemplateStatus::Approved,
            reason: None,
        }]
    );
    assert_eq!(
        items("template_status_rejected"),
        vec![Item::TemplateStatus {
            waba_id: BusinessAccountId::new(WABA),
            name: "order_update".to_owned(),
            language: "en_GB".to_owned(),
            status: TemplateStatus::Rejected,
            reason: Some("INCORRECT_CATEGORY".to_owned()),
        }]
    );
    let notification: Notification = webhook::parse(&fixture("template_status")).expect("parses");
    let webhook::ChangeValue::TemplateStatus(value) = &notification.entry[0].changes[0].value else {
        panic!("{notification:?}")
    };
    assert_eq!(value.message_template_id.as_deref(), Some("1234567890123456"));
}

#[test]
fn a_template_event_without_a_domain_status_is_unhandled() {
    let mut json = fixture_json("template_status");
    json["entry"][0]["changes"][0]["value"]["event"] = "FLAGGED".into();
    let items = items_of(json.to_string().as_bytes());
    assert!(matches!(&items[..], [Item::Unhandled { field, reason }]
            if field == "message_template_status_update" && reason.contains("FLAGGED")));
}

#[test]
fn a_batch_maps_in_payload_order() {
    let items = items("batch");
    let kinds: Vec<String> = items
        .iter()
        .map(|item| match item {
            Item::Message { message, .. } => format!("message {}", message.wa_message_id),
            Item::Status { wa_message_id, .. } => format!("status {wa_message_id}"),
            Item::TemplateStatus { name, status, .. } => format!("template {name} {status}"),
            Item::Unhandled { field, .. } => format!("unhandled {field}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "message wamid.TEST_batch_1",
            "message wamid.TEST_batch_2",
            "status wamid.TEST_outbound",
            "unhandled messages",
            "unhandled account_update",
            "template spring_sale paused",
        ]
    );
    let Item::Unhandled { reason, .. } = &items[3] else {
        unreachable!()
    };
    assert!(reason.contains("131000"), "{reason}");
}

#[test]
fn the_same_payload_maps_the_same_way() {
    assert_eq!(items("batch"), items("batch"));
}

// ---- Bad payloads -------------------------------------------------------

fn error_of(json: &Value) -> Error {
    webhook::parse_items(json.to_string().as_bytes()).expect_err("must be refused")
}

#[test]
fn malformed_json_is_a_syntax_error() {
    let body = fixture("text");
    let cut = &body[..body.len() / 2];
    assert!(matches!(webhook::parse(cut), Err(Error::Syntax { .. })));
    assert!(matches!(
        webhook::parse(b"{\"object\": nope}"),
        Err(Error::Syntax { line: 1, .. })
    ));
    assert!(matches!(webhook::parse(b""), Err(Error::Syntax { .. })));
}

#[test]
fn wrong_shapes_name_the_path() {
    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = 1_764_050_000.into();
    assert!(
        matches!(error_of(&json), Error::Shape { path, .. } if path == "entry[0].changes[0].value.messages[0].timestamp")
    );

    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]["metadata"]
        .as_object_mut()
        .expect("object")
        .remove("phone_number_id");
    assert!(
        matches!(error_of(&json), Error::Shape { path, message } if path == "entry[0].changes[0].value.metadata" && message.contains("phone_number_id"))
    );

    let mut json = fixture_json("statuses");
    json["entry"][0]["changes"][0]["value"]["statuses"][1]["errors"] = "none".into();
    assert!(
        matches!(error_of(&json), Error::Shape { path, .. } if path == "entry[0].changes[0].value.statuses[1].errors")
    );

    let json = serde_json::json!({ "object": "whatsapp_business_account", "entry": {} });
    assert!(matches!(error_of(&json), Error::Shape { path, .. } if path == "entry"));

    let json = serde_json::json!("a notification");
    assert!(matches!(error_of(&json), Error::Shape { path, .. } if path == "$"));
}

#[test]
fn unusable_values_name_the_path() {
    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "".into();
    assert!(
        matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].changes[0].value.messages[0].id")
    );

    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "soon".into();
    assert!(
        matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].changes[0].value.messages[0].timestamp")
    );

    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = " ".into();
    assert!(
        matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].changes[0].value.metadata.phone_number_id")
    );

    let mut json = fixture_json("text");
    json["entry"][0]["id"] = "".into();
    assert!(matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].id"));

    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]["messages"][0]
        .as_object_mut()
        .expect("object")
        .remove("text");
    assert!(
        matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].changes[0].value.messages[0].text")
    );

    let mut json = fixture_json("bsuid_only");
    json["entry"][0]["changes"][0]["value"]["messages"][0]
        .as_object_mut()
        .expect("object")
        .remove("from_user_id");
    assert!(
        matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].changes[0].value.messages[0].from")
    );

    let mut json = fixture_json("image");
    json["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"] = "".into();
    assert!(
        matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].changes[0].value.messages[0].image.id")
    );

    let mut json = fixture_json("statuses");
    json["entry"][0]["changes"][0]["value"]["statuses"][2]["id"] = "".into();
    assert!(
        matches!(error_of(&json), Error::Invalid { path, .. } if path == "entry[0].changes[0].value.statuses[2].id")
    );
}

#[test]
fn another_products_notification_is_refused() {
    let mut json = fixture_json("text");
    json["object"] = "page".into();
    assert_eq!(error_of(&json), Error::UnexpectedObject("page".to_owned()));
}

#[test]
fn unknown_fields_are_ignored() {
    let mut json = fixture_json("text");
    json["entry"][0]["changes"][0]["value"]["messages"][0]["brand_new_field"] =
        serde_json::json!({ "x": [1] });
    json["entry"][0]["changes"][0]["value"]["contacts"][0]["identity_key_hash"] = "abc".into();
    json["brand_new_top_level"] = true.into();
    assert_eq!(items_of(json.to_string().as_bytes()), items("text"));
}
