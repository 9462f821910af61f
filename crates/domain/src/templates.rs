//! The template catalogue of a WhatsApp Business Account, synced from the
//! WhatsApp Business Manager, and the check every template send goes
//! through. Templates are the only messages allowed outside the 24-hour
//! window, and WhatsApp rejects a send with a wrong language or parameter
//! count only after the fact, so Palaver checks first and says exactly what
//! is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::ids::BusinessAccountId;
use crate::stream::{InvalidStreamName, StreamName};
use crate::{Error, Result};

/// Review status of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateStatus {
    /// Submitted, not reviewed yet.
    Pending,
    /// Usable.
    Approved,
    /// Paused by WhatsApp for low quality.
    Paused,
    /// Disabled by WhatsApp.
    Disabled,
    /// Rejected at review.
    Rejected,
}

impl fmt::Display for TemplateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
            Self::Rejected => "rejected",
        })
    }
}

/// WhatsApp's template categories (they are priced differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateCategory {
    /// Promotions.
    Marketing,
    /// Updates about an existing transaction.
    Utility,
    /// One-time passwords.
    Authentication,
}

/// Which part of a template a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// Header: text or media.
    Header,
    /// Body text.
    Body,
    /// Footer text.
    Footer,
    /// A group of buttons.
    Buttons,
}

/// One component of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateComponent {
    /// Header, body, footer or buttons.
    pub kind: ComponentKind,
    /// Header format (`TEXT`, `IMAGE`, …), empty for other kinds.
    pub format: String,
    /// Text with `{{1}}`-style placeholders, empty if none.
    pub text: String,
}

/// A template's definition as synced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateDefinition {
    /// Name in the Business Manager.
    pub name: String,
    /// Language code, e.g. `en_GB`.
    pub language: String,
    /// Category.
    pub category: TemplateCategory,
    /// Components in order.
    pub components: Vec<TemplateComponent>,
}

impl TemplateDefinition {
    /// Number of placeholders in the text of the first component of `kind`.
    pub fn parameter_count(&self, kind: ComponentKind) -> u32 {
        self.components
            .iter()
            .find(|c| c.kind == kind)
            .map_or(0, |c| count_placeholders(&c.text))
    }
}

/// Distinct `{{…}}` placeholders in `text`: `{{1}}` used twice is one
/// parameter.
fn count_placeholders(text: &str) -> u32 {
    let mut seen = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                if !name.is_empty() && !name.contains('{') {
                    seen.insert(name.to_owned());
                }
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    u32::try_from(seen.len()).unwrap_or(u32::MAX)
}

/// A template as the catalogue holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// Definition.
    pub definition: TemplateDefinition,
    /// Placeholders in the header text.
    pub header_parameter_count: u32,
    /// Placeholders in the body text.
    pub body_parameter_count: u32,
    /// Review status.
    pub status: TemplateStatus,
}

/// A template send as requested and as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSend {
    /// Template name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Header parameter values, in order.
    pub header_parameters: Vec<String>,
    /// Body parameter values, in order.
    pub body_parameters: Vec<String>,
}

/// A template send that passed [`TemplateCatalogue::check`]. Commands that
/// send templates take this type, so an unchecked send cannot be expressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedTemplateSend {
    send: TemplateSend,
    category: TemplateCategory,
}

impl CheckedTemplateSend {
    /// The send.
    pub fn send(&self) -> &TemplateSend {
        &self.send
    }

    /// The template's category.
    pub fn category(&self) -> TemplateCategory {
        self.category
    }

    /// The send, consumed.
    pub fn into_send(self) -> TemplateSend {
        self.send
    }
}

/// Which parameter list is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    /// Header parameters.
    Header,
    /// Body parameters.
    Body,
}

impl fmt::Display for TemplatePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Body => "body",
        })
    }
}

/// Why a template send was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// No template of that name in the catalogue. Sync the catalogue or pick
    /// another template.
    #[error("no template named `{name}` in the catalogue")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The template exists, but not in that language. Use one of
    /// `available`.
    #[error("template `{name}` has no `{requested}` version (available: {available:?})")]
    LanguageMismatch {
        /// Template name.
        name: String,
        /// Language asked for.
        requested: String,
        /// Languages the catalogue has for it.
        available: Vec<String>,
    },
    /// The template is not approved. Wait for review or pick another one.
    #[error("template `{name}` ({language}) is {status}, not approved")]
    NotApproved {
        /// Template name.
        name: String,
        /// Language.
        language: String,
        /// Its current status.
        status: TemplateStatus,
    },
    /// Wrong number of parameters. Send exactly `expected`.
    #[error("template `{name}` takes {expected} {part} parameters, got {got}")]
    ParameterCount {
        /// Template name.
        name: String,
        /// Header or body.
        part: TemplatePart,
        /// What the template declares.
        expected: u32,
        /// What was given.
        got: usize,
    },
}

/// Commands on a catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateCommand {
    /// Add or update a template from a sync.
    Register {
        /// The account the catalogue belongs to.
        business_account_id: BusinessAccountId,
        /// Definition as synced.
        definition: TemplateDefinition,
        /// Status as synced.
        status: TemplateStatus,
    },
    /// Record a status change (webhook or sync).
    ChangeStatus {
        /// Template name.
        name: String,
        /// Language.
        language: String,
        /// New status.
        status: TemplateStatus,
        /// WhatsApp's reason, empty if none.
        reason: String,
    },
}

/// Events of a catalogue (stream `templates-<business account id>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateEvent {
    /// Added or definition changed.
    Registered {
        /// Catalogue owner.
        business_account_id: BusinessAccountId,
        /// The template.
        template: Template,
        /// When.
        at: DateTime<Utc>,
    },
    /// Status changed.
    StatusChanged {
        /// Catalogue owner.
        business_account_id: BusinessAccountId,
        /// Template name.
        name: String,
        /// Language.
        language: String,
        /// New status.
        status: TemplateStatus,
        /// WhatsApp's reason, empty if none.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The catalogue of one business account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateCatalogue {
    business_account_id: Option<BusinessAccountId>,
    /// Keyed by (name, language): WhatsApp treats each language version as
    /// its own template with its own review status.
    templates: BTreeMap<(String, String), Template>,
}

impl TemplateCatalogue {
    /// The stream of a business account's catalogue.
    pub fn stream_name(account: &BusinessAccountId) -> std::result::Result<StreamName, InvalidStreamName> {
        StreamName::new(Self::CATEGORY, account.as_str())
    }

    /// A template by name and language.
    pub fn get(&self, name: &str, language: &str) -> Option<&Template> {
        self.templates.get(&(name.to_owned(), language.to_owned()))
    }

    /// Checks a send: the template must exist, in that language, be
    /// approved, and get exactly the parameters it declares.
    pub fn check(&self, send: TemplateSend) -> std::result::Result<CheckedTemplateSend, TemplateError> {
        let Some(template) = self.get(&send.name, &send.language) else {
            let available: Vec<String> = self
                .templates
                .keys()
                .filter(|(name, _)| *name == send.name)
                .map(|(_, language)| language.clone())
                .collect();
            return Err(if available.is_empty() {
                TemplateError::Unknown { name: send.name }
            } else {
                TemplateError::LanguageMismatch {
                    name: send.name,
                    requested: send.language,
                    available,
                }
            });
        };
        if template.status != TemplateStatus::Approved {
            return Err(TemplateError::NotApproved {
                name: send.name,
                language: send.language,
                status: template.status,
            });
        }
        for (part, expected, got) in [
            (
                TemplatePart::Header,
                template.header_parameter_count,
                send.header_parameters.len(),
            ),
            (
                TemplatePart::Body,
                template.body_parameter_count,
                send.body_parameters.len(),
            ),
        ] {
            if usize::try_from(expected).ok() != Some(got) {
                return Err(TemplateError::ParameterCount {
                    name: send.name,
                    part,
                    expected,
                    got,
                });
            }
        }
        Ok(CheckedTemplateSend {
            category: template.definition.category,
            send,
        })
    }
}

impl Aggregate for TemplateCatalogue {
    const CATEGORY: &'static str = "templates";
    type Command = TemplateCommand;
    type Event = TemplateEvent;

    fn decide(&self, command: TemplateCommand, now: DateTime<Utc>) -> Result<Vec<TemplateEvent>> {
        match command {
            TemplateCommand::Register {
                business_account_id,
                definition,
                status,
            } => {
                if let Some(own) = &self.business_account_id
                    && *own != business_account_id
                {
                    return Err(Error::WrongStream(
                        "the template belongs to another business account",
                    ));
                }
                let template = Template {
                    header_parameter_count: definition.parameter_count(ComponentKind::Header),
                    body_parameter_count: definition.parameter_count(ComponentKind::Body),
                    definition,
                    status,
                };
                let existing = self.get(&template.definition.name, &template.definition.language);
                // Syncs run often; an unchanged template is not news.
                if existing == Some(&template) {
                    return Ok(vec![]);
                }
                Ok(vec![TemplateEvent::Registered {
                    business_account_id,
                    template,
                    at: now,
                }])
            }
            TemplateCommand::ChangeStatus {
                name,
                language,
                status,
                reason,
            } => {
                let (Some(account), Some(template)) = (&self.business_account_id, self.get(&name, &language))
                else {
                    return Err(TemplateError::Unknown { name }.into());
                };
                if template.status == status {
                    return Ok(vec![]);
                }
                Ok(vec![TemplateEvent::StatusChanged {
                    business_account_id: account.clone(),
                    name,
                    language,
                    status,
                    reason,
                    at: now,
                }])
            }
        }
    }

    fn evolve(mut self, event: &TemplateEvent) -> Self {
        match event {
            TemplateEvent::Registered {
                business_account_id,
                template,
                ..
            } => {
                self.business_account_id = Some(business_account_id.clone());
                self.templates.insert(
                    (
                        template.definition.name.clone(),
                        template.definition.language.clone(),
                    ),
                    template.clone(),
                );
            }
            TemplateEvent::StatusChanged {
                name,
                language,
                status,
                ..
            } => {
                if let Some(t) = self.templates.get_mut(&(name.clone(), language.clone())) {
                    t.status = *status;
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted_once_each() {
        assert_eq!(count_placeholders("Hi {{1}}, order {{2}} ({{1}})"), 2);
        assert_eq!(count_placeholders("no params"), 0);
        assert_eq!(count_placeholders("{{name}} and {{ 1 }} and {{"), 2);
    }
}
