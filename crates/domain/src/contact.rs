//! Contacts (stream `contact-<id>`): leads and users, their names, E.164
//! phone numbers and WhatsApp id, and merges.
//!
//! A merge is recorded on the merged contact's stream and never deleted:
//! the merged contact becomes read-only history pointing at the survivor,
//! and read models move its conversations and threads to the survivor.
//! Users are never merged away (they are someone's account); leads are.
//!
//! Auto-merge ("identify existing users") needs other contacts, so it is a
//! pure function over candidates the application layer looks up:
//! [`choose_merge_target`].

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::ids::{Actor, ContactId, WaId, WorkspaceId};
use crate::phone::{PhoneNumber, Region};
use crate::stream::StreamName;
use crate::{Error, Result};

/// Lead or user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContactKind {
    /// Known only by number and profile.
    Lead,
    /// A user of the customer's product.
    User,
}

/// Why a contact was merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MergeReason {
    /// "Identify existing users" matched the number.
    SamePhone,
    /// A teammate or service merged it.
    Manual,
}

/// What the merge needs to know about the surviving contact, loaded by the
/// application layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeTarget {
    /// The survivor.
    pub id: ContactId,
    /// Lead or user.
    pub kind: ContactKind,
    /// Set if the survivor was itself merged (then it cannot be a target).
    pub merged_into: Option<ContactId>,
}

/// Commands on a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactCommand {
    /// A lead from an unknown WhatsApp id (its id is
    /// [`ContactId::derive_lead`]). A retry is a no-op.
    CreateLead {
        /// Usually `ContactId::derive_lead(workspace_id, &wa_id)`.
        contact_id: ContactId,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The WhatsApp profile name.
        profile_name: String,
        /// The WhatsApp id; its number becomes the lead's phone.
        wa_id: WaId,
    },
    /// A user known to the inbox.
    CreateUser {
        /// New id.
        contact_id: ContactId,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Name.
        name: String,
        /// Numbers as typed.
        phone_numbers: Vec<String>,
        /// Region to read national numbers with.
        default_region: Option<Region>,
        /// The user's id in the customer's own system, if known.
        external_user_id: Option<String>,
        /// Who.
        by: Actor,
    },
    /// Add a number.
    AddPhone {
        /// The number as typed.
        phone_number: String,
        /// Region to read a national number with.
        default_region: Option<Region>,
    },
    /// Identify a lead as a user.
    ConvertToUser {
        /// The user's id in the customer's system, empty if unknown.
        external_user_id: String,
        /// Who.
        by: Actor,
    },
    /// Merge this contact into another.
    Merge {
        /// The survivor.
        into: MergeTarget,
        /// Why.
        reason: MergeReason,
        /// Who.
        by: Actor,
    },
}

/// Events of a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactEvent {
    /// First event.
    Created {
        /// This contact.
        contact_id: ContactId,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Lead or user.
        kind: ContactKind,
        /// Display name.
        name: String,
        /// E.164 numbers.
        phone_numbers: Vec<PhoneNumber>,
        /// WhatsApp id, if known.
        wa_id: Option<WaId>,
        /// A user's id in the customer's own system, if given.
        external_user_id: Option<String>,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A number was added.
    PhoneAdded {
        /// This contact.
        contact_id: ContactId,
        /// E.164.
        phone_number: PhoneNumber,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lead is a user.
    ConvertedToUser {
        /// This contact.
        contact_id: ContactId,
        /// External id, empty if unknown.
        external_user_id: String,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Merged into another contact.
    Merged {
        /// This contact.
        contact_id: ContactId,
        /// The survivor.
        into: ContactId,
        /// Why.
        reason: MergeReason,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Profile {
    id: ContactId,
    workspace_id: WorkspaceId,
    kind: ContactKind,
    name: String,
    phone_numbers: Vec<PhoneNumber>,
    wa_id: Option<WaId>,
    external_user_id: Option<String>,
    merged_into: Option<ContactId>,
}

/// A contact's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    profile: Option<Profile>,
}

impl Contact {
    /// The stream of a contact.
    pub fn stream_name(id: ContactId) -> StreamName {
        StreamName::new(Self::CATEGORY, &id.to_string()).expect("a UUID is a valid id")
    }

    /// Id, once created.
    pub fn id(&self) -> Option<ContactId> {
        self.profile.as_ref().map(|p| p.id)
    }

    /// Lead or user, once created.
    pub fn kind(&self) -> Option<ContactKind> {
        self.profile.as_ref().map(|p| p.kind)
    }

    /// Display name.
    pub fn name(&self) -> Option<&str> {
        self.profile.as_ref().map(|p| p.name.as_str())
    }

    /// E.164 numbers.
    pub fn phone_numbers(&self) -> &[PhoneNumber] {
        self.profile.as_ref().map_or(&[], |p| &p.phone_numbers)
    }

    /// WhatsApp id.
    pub fn wa_id(&self) -> Option<&WaId> {
        self.profile.as_ref().and_then(|p| p.wa_id.as_ref())
    }

    /// The survivor, if this contact was merged.
    pub fn merged_into(&self) -> Option<ContactId> {
        self.profile.as_ref().and_then(|p| p.merged_into)
    }

    /// This contact as a merge target.
    pub fn as_merge_target(&self) -> Option<MergeTarget> {
        self.profile.as_ref().map(|p| MergeTarget {
            id: p.id,
            kind: p.kind,
            merged_into: p.merged_into,
        })
    }

    /// The live profile: exists and not merged away.
    fn live(&self) -> Result<&Profile> {
        let profile = self.profile.as_ref().ok_or(Error::NotFound("contact"))?;
        match profile.merged_into {
            Some(into) => Err(Error::ContactMerged { into }),
            None => Ok(profile),
        }
    }
}

impl Aggregate for Contact {
    const CATEGORY: &'static str = "contact";
    type Command = ContactCommand;
    type Event = ContactEvent;

    fn decide(&self, command: ContactCommand, now: DateTime<Utc>) -> Result<Vec<ContactEvent>> {
        match command {
            ContactCommand::CreateLead {
                contact_id,
                workspace_id,
                profile_name,
                wa_id,
            } => {
                if let Some(p) = &self.profile {
                    // Two first messages at once both try; the second is a
                    // no-op, whatever name it saw.
                    return if p.wa_id.as_ref() == Some(&wa_id) {
                        Ok(vec![])
                    } else {
                        Err(Error::AlreadyExists("contact"))
                    };
                }
                // A business-scoped id has no number to record.
                let phone_numbers = if wa_id.is_business_scoped() {
                    vec![]
                } else {
                    vec![PhoneNumber::from_wa_id(wa_id.as_str())?]
                };
                Ok(vec![ContactEvent::Created {
                    contact_id,
                    workspace_id,
                    kind: ContactKind::Lead,
                    name: profile_name,
                    phone_numbers,
                    wa_id: Some(wa_id),
                    external_user_id: None,
                    by: Actor::System,
                    at: now,
                }])
            }
            ContactCommand::CreateUser {
                contact_id,
                workspace_id,
                name,
                phone_numbers,
                default_region,
                external_user_id,
                by,
            } => {
                let mut phones: Vec<PhoneNumber> = vec![];
                for raw in &phone_numbers {
                    let phone = PhoneNumber::parse(raw, default_region)?;
                    if !phones.contains(&phone) {
                        phones.push(phone);
                    }
                }
                if let Some(p) = &self.profile {
                    return if p.kind == ContactKind::User
                        && p.name == name
                        && p.phone_numbers == phones
                        && p.external_user_id == external_user_id
                    {
                        Ok(vec![])
                    } else {
                        Err(Error::AlreadyExists("contact"))
                    };
                }
                Ok(vec![ContactEvent::Created {
                    contact_id,
                    workspace_id,
                    kind: ContactKind::User,
                    name,
                    phone_numbers: phones,
                    wa_id: None,
                    external_user_id,
                    by,
                    at: now,
                }])
            }
            ContactCommand::AddPhone {
                phone_number,
                default_region,
            } => {
                let profile = self.live()?;
                let phone = PhoneNumber::parse(&phone_number, default_region)?;
                if profile.phone_numbers.contains(&phone) {
                    return Ok(vec![]);
                }
                Ok(vec![ContactEvent::PhoneAdded {
                    contact_id: profile.id,
                    phone_number: phone,
                    at: now,
                }])
            }
            ContactCommand::ConvertToUser { external_user_id, by } => {
                let profile = self.live()?;
                if profile.kind == ContactKind::User {
                    return Ok(vec![]);
                }
                Ok(vec![ContactEvent::ConvertedToUser {
                    contact_id: profile.id,
                    external_user_id,
                    by,
                    at: now,
                }])
            }
            ContactCommand::Merge { into, reason, by } => {
                let profile = self.profile.as_ref().ok_or(Error::NotFound("contact"))?;
                match profile.merged_into {
                    Some(existing) if existing == into.id => return Ok(vec![]),
                    Some(existing) => return Err(Error::ContactMerged { into: existing }),
                    None => {}
                }
                if into.id == profile.id {
                    return Err(Error::InvalidMerge("a contact cannot be merged into itself"));
                }
                if into.merged_into.is_some() {
                    return Err(Error::InvalidMerge(
                        "the target was itself merged; merge into its survivor",
                    ));
                }
                if profile.kind == ContactKind::User {
                    return Err(Error::InvalidMerge(
                        "a user is never merged away; merge the lead into the user",
                    ));
                }
                if reason == MergeReason::Manual && into.kind != ContactKind::User {
                    return Err(Error::InvalidMerge("a lead is merged manually into a user"));
                }
                Ok(vec![ContactEvent::Merged {
                    contact_id: profile.id,
                    into: into.id,
                    reason,
                    by,
                    at: now,
                }])
            }
        }
    }

    fn evolve(mut self, event: &ContactEvent) -> Self {
        match event {
            ContactEvent::Created {
                contact_id,
                workspace_id,
                kind,
                name,
                phone_numbers,
                wa_id,
                external_user_id,
                ..
            } => {
                self.profile = Some(Profile {
                    id: *contact_id,
                    workspace_id: *workspace_id,
                    kind: *kind,
                    name: name.clone(),
                    phone_numbers: phone_numbers.clone(),
                    wa_id: wa_id.clone(),
                    external_user_id: external_user_id.clone(),
                    merged_into: None,
                });
            }
            ContactEvent::PhoneAdded { phone_number, .. } => {
                if let Some(p) = &mut self.profile
                    && !p.phone_numbers.contains(phone_number)
                {
                    p.phone_numbers.push(phone_number.clone());
                }
            }
            ContactEvent::ConvertedToUser { external_user_id, .. } => {
                if let Some(p) = &mut self.profile {
                    p.kind = ContactKind::User;
                    p.external_user_id = Some(external_user_id.clone());
                }
            }
            ContactEvent::Merged { into, .. } => {
                if let Some(p) = &mut self.profile {
                    p.merged_into = Some(*into);
                }
            }
        }
        self
    }
}

/// Another contact of the workspace, as the application layer found it by
/// phone number in a read model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactCandidate {
    /// The contact.
    pub id: ContactId,
    /// Lead or user.
    pub kind: ContactKind,
    /// Its E.164 numbers.
    pub phone_numbers: Vec<PhoneNumber>,
    /// When it last had activity (message, update), if ever.
    pub last_active_at: Option<DateTime<Utc>>,
    /// Set if it was merged (then it is not a target).
    pub merged_into: Option<ContactId>,
}

/// The contact a new lead should be merged into, if "identify existing
/// users" is on: among the candidates that share one of its numbers and were
/// not merged themselves, the most recently active one. Ties go to users
/// (they are the identity we trust), then to the smaller id, so the answer
/// never depends on the order of `candidates`. Off, or no match: `None`,
/// and the lead stays separate.
pub fn choose_merge_target(
    identify_existing_users: bool,
    new_lead: ContactId,
    new_lead_phones: &[PhoneNumber],
    candidates: &[ContactCandidate],
) -> Option<MergeTarget> {
    if !identify_existing_users {
        return None;
    }
    candidates
        .iter()
        .filter(|c| c.id != new_lead && c.merged_into.is_none())
        .filter(|c| c.phone_numbers.iter().any(|p| new_lead_phones.contains(p)))
        .max_by(|a, b| {
            a.last_active_at
                .cmp(&b.last_active_at)
                .then_with(|| (a.kind == ContactKind::User).cmp(&(b.kind == ContactKind::User)))
                .then_with(|| b.id.cmp(&a.id))
        })
        .map(|c| MergeTarget {
            id: c.id,
            kind: c.kind,
            merged_into: None,
        })
}
