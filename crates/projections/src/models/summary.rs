//! How a message reads in a list: its kind and a one-line preview. Shared by
//! the inbox (last message) and the timeline (every message).

use palaver_domain::message::{InboundContent, OutboundContent};

/// Longest preview, in characters.
const PREVIEW_CHARS: usize = 120;

/// Kind and preview of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `text`, `image`, `document`, `video`, `gif`, `audio`, `voice`,
    /// `sticker`, `location`, `contacts`, `reaction`, `button`,
    /// `interactive`, `macro`, `template`, or the raw type of a kind
    /// WhatsApp added later.
    pub kind: String,
    /// One line for lists.
    pub preview: String,
    /// Media id (inbound) or URL (outbound), if any.
    pub media: Option<String>,
    /// MIME type of inbound media.
    pub mime_type: Option<String>,
    /// File name of a document.
    pub file_name: Option<String>,
}

fn with_caption(label: &str, caption: &str) -> String {
    if caption.trim().is_empty() {
        label.to_owned()
    } else {
        format!("{label}: {caption}")
    }
}

fn summary(kind: &str, preview: String) -> Summary {
    Summary {
        kind: kind.to_owned(),
        preview: shorten(&preview),
        media: None,
        mime_type: None,
        file_name: None,
    }
}

/// One line of at most [`PREVIEW_CHARS`] characters.
fn shorten(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= PREVIEW_CHARS {
        return line;
    }
    let mut short: String = line.chars().take(PREVIEW_CHARS - 1).collect();
    short.push('…');
    short
}

/// What a customer sent.
pub fn inbound(content: &InboundContent) -> Summary {
    let media = |kind: &str, label: &str, caption: &str, media: &palaver_domain::message::Media| Summary {
        media: Some(media.media_id.clone()),
        mime_type: Some(media.mime_type.clone()),
        ..summary(kind, with_caption(label, caption))
    };
    match content {
        InboundContent::Text { body } => summary("text", body.clone()),
        InboundContent::Image { media: m, caption } => media("image", "Image", caption, m),
        InboundContent::Document {
            media: m,
            file_name,
            caption,
        } => Summary {
            file_name: Some(file_name.clone()),
            ..media("document", &format!("Attachment {file_name}"), caption, m)
        },
        InboundContent::Video { media: m, caption } => media("video", "Video", caption, m),
        InboundContent::Gif { media: m, caption } => media("gif", "GIF", caption, m),
        InboundContent::Audio { media: m, voice } => {
            if *voice {
                media("voice", "Voice note", "", m)
            } else {
                media("audio", "Audio", "", m)
            }
        }
        InboundContent::Sticker { media: m, .. } => media("sticker", "Sticker", "", m),
        InboundContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            let place = [name.as_str(), address.as_str()]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            let place = if place.is_empty() {
                format!("{latitude:.5}, {longitude:.5}")
            } else {
                place
            };
            summary("location", format!("Location: {place}"))
        }
        InboundContent::Contacts { cards } => summary("contacts", format!("{} contact card(s)", cards.len())),
        InboundContent::Reaction { emoji, .. } => match emoji {
            Some(emoji) => summary("reaction", format!("Reacted {emoji}")),
            None => summary("reaction", "Removed a reaction".to_owned()),
        },
        InboundContent::ButtonReply { text, .. } => summary("button", text.clone()),
        InboundContent::InteractiveReply { title, .. } => summary("interactive", title.clone()),
        InboundContent::Unsupported { raw_type, .. } => {
            summary(raw_type, format!("Unsupported message ({raw_type})"))
        }
    }
}

/// What we sent.
pub fn outbound(content: &OutboundContent) -> Summary {
    match content {
        OutboundContent::Text { body } => summary("text", body.clone()),
        OutboundContent::Image {
            url,
            media_id,
            caption,
        } => Summary {
            media: Some(if url.is_empty() {
                media_id.clone()
            } else {
                url.clone()
            }),
            ..summary("image", with_caption("Image", caption))
        },
        OutboundContent::Document {
            url,
            media_id,
            file_name,
            caption,
        } => Summary {
            media: Some(if url.is_empty() {
                media_id.clone()
            } else {
                url.clone()
            }),
            file_name: Some(file_name.clone()),
            ..summary(
                "document",
                with_caption(&format!("Attachment {file_name}"), caption),
            )
        },
        OutboundContent::MacroText { body, .. } => summary("macro", body.clone()),
        OutboundContent::Template(send) => summary(
            "template",
            format!(
                "Template {} ({}) {}",
                send.name,
                send.language,
                send.body_parameters.join(" ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use palaver_domain::message::Media;

    use super::*;

    #[test]
    fn previews_are_one_short_line() {
        let long = "word ".repeat(100);
        let s = inbound(&InboundContent::Text {
            body: format!("two\nlines {long}"),
        });
        assert!(!s.preview.contains('\n'));
        assert_eq!(s.preview.chars().count(), PREVIEW_CHARS);
        assert!(s.preview.ends_with('…'));
    }

    #[test]
    fn kinds_name_voice_notes_and_unknown_types() {
        let media = Media {
            media_id: "m1".into(),
            mime_type: "audio/ogg".into(),
            sha256: String::new(),
        };
        let voice = inbound(&InboundContent::Audio {
            media: media.clone(),
            voice: true,
        });
        assert_eq!(
            (voice.kind.as_str(), voice.media.as_deref()),
            ("voice", Some("m1"))
        );
        assert_eq!(
            inbound(&InboundContent::Audio { media, voice: false }).kind,
            "audio"
        );
        let odd = inbound(&InboundContent::Unsupported {
            raw_type: "poll".into(),
            raw_payload: "{}".into(),
        });
        assert_eq!(odd.kind, "poll");
    }
}
