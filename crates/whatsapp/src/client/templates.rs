//! The template catalogue of a WhatsApp Business Account:
//! `GET {base}/{version}/{waba_id}/message_templates`, following
//! `paging.next` until the last page.

use palaver_domain::templates::{
    ComponentKind, TemplateCategory, TemplateComponent, TemplateDefinition, TemplateStatus,
};
use serde::Deserialize;

use super::{CloudApi, Error, GraphError, Result, check_path_id};

/// Templates asked for per page (the API's maximum is higher; 100 keeps
/// pages small).
const PAGE_SIZE: u32 = 100;
/// Pages read at most: 10,000 templates, beyond any account's limit, so a
/// paging loop on Meta's side cannot keep a sync running forever.
pub const MAX_PAGES: usize = 100;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<TemplateWire>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<String>,
}

#[derive(Deserialize)]
struct TemplateWire {
    name: String,
    language: String,
    status: String,
    category: String,
    #[serde(default)]
    components: Vec<ComponentWire>,
}

#[derive(Deserialize)]
struct ComponentWire {
    #[serde(rename = "type")]
    kind: String,
    format: Option<String>,
    text: Option<String>,
}

impl CloudApi {
    /// Every template of `business_account_id` with its review status, in
    /// the API's order. A template whose category Palaver does not know is
    /// left out with a warning (it could not be checked or priced); so are
    /// components of kinds Palaver does not know.
    pub async fn list_templates(
        &self,
        business_account_id: &str,
    ) -> Result<Vec<(TemplateDefinition, TemplateStatus)>> {
        check_path_id("business_account_id", business_account_id).map_err(Error::InvalidArgument)?;
        let mut url = format!(
            "{}?fields=name,language,status,category,components&limit={PAGE_SIZE}",
            self.url(business_account_id, "message_templates")
        );
        let mut templates = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.template_page(&url).await?;
            templates.extend(page.data.into_iter().filter_map(definition));
            match page.paging.and_then(|p| p.next).filter(|next| !next.is_empty()) {
                None => return Ok(templates),
                Some(next) if next.starts_with(&format!("{}/", self.base_url)) => url = next,
                Some(next) => {
                    return Err(Error::Paging {
                        reason: format!("paging.next `{next}` is not under {}", self.base_url),
                    });
                }
            }
        }
        Err(Error::Paging {
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }

    async fn template_page(&self, url: &str) -> Result<Page> {
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| Error::Transport {
                reason: e.to_string(),
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Error::Transport {
            reason: e.to_string(),
        })?;
        if !status.is_success() {
            let error = GraphError::from_body(&body);
            let code = error.code;
            let unauthorized = status.as_u16() == 401
                || code.is_some_and(|c| super::codes::classify(c) == super::codes::CodeClass::Configuration);
            return Err(if unauthorized {
                Error::Unauthorized {
                    status: status.as_u16(),
                    code,
                    message: error.message,
                }
            } else {
                Error::Api {
                    status: status.as_u16(),
                    code,
                    message: error.message,
                }
            });
        }
        let mut de = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Decode {
            reason: format!("at `{}`: {}", e.path(), e.inner()),
        })
    }
}

fn definition(template: TemplateWire) -> Option<(TemplateDefinition, TemplateStatus)> {
    let category = match template.category.as_str() {
        "MARKETING" => TemplateCategory::Marketing,
        "UTILITY" => TemplateCategory::Utility,
        "AUTHENTICATION" => TemplateCategory::Authentication,
        other => {
            tracing::warn!(
                name = %template.name,
                language = %template.language,
                category = other,
                "template left out of the sync: unknown category"
            );
            return None;
        }
    };
    let components = template
        .components
        .into_iter()
        .filter_map(|c| {
            let kind = match c.kind.as_str() {
                "HEADER" => ComponentKind::Header,
                "BODY" => ComponentKind::Body,
                "FOOTER" => ComponentKind::Footer,
                "BUTTONS" => ComponentKind::Buttons,
                other => {
                    tracing::warn!(
                        name = %template.name,
                        kind = other,
                        "template component left out of the sync: unknown kind"
                    );
                    return None;
                }
            };
            Some(TemplateComponent {
                kind,
                format: if kind == ComponentKind::Header {
                    c.format.unwrap_or_default()
                } else {
                    String::new()
                },
                text: c.text.unwrap_or_default(),
            })
        })
        .collect();
    let status = status(&template.status);
    Some((
        TemplateDefinition {
            name: template.name,
            language: template.language,
            category,
            components,
        },
        status,
    ))
}

/// A template's `status` as the catalogue knows it. Statuses without an
/// equivalent all mean "not usable now" and map to `Disabled`, so the
/// catalogue refuses sends rather than trusting a stale `Approved`.
fn status(status: &str) -> TemplateStatus {
    match status {
        "APPROVED" => TemplateStatus::Approved,
        "PENDING" => TemplateStatus::Pending,
        // Still rejected while the appeal is pending.
        "REJECTED" | "IN_APPEAL" => TemplateStatus::Rejected,
        "PAUSED" => TemplateStatus::Paused,
        "DISABLED" => TemplateStatus::Disabled,
        // PENDING_DELETION, DELETED, ARCHIVED, LIMIT_EXCEEDED, and any
        // status added later.
        other => {
            tracing::debug!(status = other, "template status read as disabled");
            TemplateStatus::Disabled
        }
    }
}
