//! Macros: canned replies from the inbox's library. A macro can hold parts
//! WhatsApp cannot carry in a free-form message here (gifs, help-center
//! articles, files other than the reply's own attachment). Rather than
//! refusing the macro, those parts become links in the text, so the
//! customer still gets everything.

/// A canned reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Macro {
    /// Id in the inbox's macro library.
    pub id: String,
    /// Its content, in order.
    pub parts: Vec<MacroPart>,
}

/// One piece of a macro.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacroPart {
    /// Text (emoji included), sent as is.
    Text(String),
    /// A GIF: sent as its link.
    Gif {
        /// Public URL.
        url: String,
    },
    /// A help-center article: sent as title and link.
    Article {
        /// Title shown before the link.
        title: String,
        /// Public URL.
        url: String,
    },
    /// A file: sent as name and link.
    File {
        /// File name shown before the link.
        name: String,
        /// Public URL.
        url: String,
    },
}

impl Macro {
    /// The plain text sent on WhatsApp: text parts as they are, other parts
    /// turned into links, one part per paragraph.
    pub fn render_for_whatsapp(&self) -> String {
        let paragraphs: Vec<String> = self
            .parts
            .iter()
            .map(|part| match part {
                MacroPart::Text(text) => text.trim().to_owned(),
                MacroPart::Gif { url } => url.clone(),
                MacroPart::Article { title, url } | MacroPart::File { name: title, url } => {
                    format!("{title}: {url}")
                }
            })
            .filter(|p| !p.is_empty())
            .collect();
        paragraphs.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_whatsapp_cannot_carry_become_links() {
        let m = Macro {
            id: "m1".into(),
            parts: vec![
                MacroPart::Text("Hi 👋 here is how:".into()),
                MacroPart::Gif {
                    url: "https://g.example/x.gif".into(),
                },
                MacroPart::Article {
                    title: "Resetting your password".into(),
                    url: "https://help.example/reset".into(),
                },
                MacroPart::File {
                    name: "guide.pdf".into(),
                    url: "https://files.example/guide.pdf".into(),
                },
            ],
        };
        assert_eq!(
            m.render_for_whatsapp(),
            "Hi 👋 here is how:\n\nhttps://g.example/x.gif\n\n\
             Resetting your password: https://help.example/reset\n\n\
             guide.pdf: https://files.example/guide.pdf"
        );
    }
}
