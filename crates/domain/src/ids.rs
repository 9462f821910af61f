//! Identifiers. UUID-backed ids are Palaver's own; string-backed ids are
//! issued by WhatsApp (Meta) or by other systems and are kept verbatim.
//!
//! Some ids are derived (UUID v5) rather than random, so that two decisions
//! about the same real-world thing, taken concurrently or retried, name the
//! same stream and optimistic concurrency lets exactly one of them win.

use std::fmt;

use uuid::Uuid;

/// Namespace for every UUID v5 Palaver derives. Changing it would move every
/// derived stream, so it is fixed forever.
pub(crate) const PALAVER_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_4a0e_8d3b_5e2a_9f47_0b8c_2d61_e3a5);

pub(crate) fn derive(kind: &str, parts: &[&str]) -> Uuid {
    // A separator that cannot appear in any part (ids are ASCII without NUL)
    // keeps ("ab", "c") and ("a", "bc") apart.
    let mut name = String::from(kind);
    for part in parts {
        name.push('\0');
        name.push_str(part);
    }
    Uuid::new_v5(&PALAVER_NAMESPACE, name.as_bytes())
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Lower-case hyphenated: the form used in streams and protos.
                self.0.hyphenated().fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps the id as given.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

uuid_id!(
    /// A workspace (one customer of Palaver, with its own inbox).
    WorkspaceId
);
uuid_id!(
    /// A thread: one business number talking to one customer WhatsApp id.
    ThreadId
);
uuid_id!(
    /// A conversation within a thread.
    ConversationId
);
uuid_id!(
    /// A contact (lead or user).
    ContactId
);
uuid_id!(
    /// An outbound campaign.
    CampaignId
);
uuid_id!(
    /// Palaver's id of an outbound message, chosen by the caller so that a
    /// retried send is the same message.
    MessageId
);

uuid_id!(
    /// A stored webhook payload, derived from its body.
    PayloadId
);
uuid_id!(
    /// A durable timer, derived from what it does and when.
    TimerId
);
string_id!(
    /// WhatsApp's phone number id of a business number (Cloud API path id).
    PhoneNumberId
);
string_id!(
    /// WhatsApp Business Account id; owns a template catalogue.
    BusinessAccountId
);
string_id!(
    /// A customer's WhatsApp id (the digits of their number, as WhatsApp
    /// reports it).
    WaId
);
string_id!(
    /// WhatsApp's message id (`wamid.…`); the same id twice is one message.
    WaMessageId
);
string_id!(
    /// A teammate of the inbox; issued by the inbox, opaque here.
    TeammateId
);
string_id!(
    /// A Messenger conversation of the inbox; opaque here.
    MessengerConversationId
);

impl WaId {
    /// A business-scoped user id (`GB.1000000000000001`): what WhatsApp
    /// gives for customers who hide their number behind a username. It
    /// names the customer but carries no phone number.
    pub fn is_business_scoped(&self) -> bool {
        self.as_str().contains('.')
    }
}

impl ThreadId {
    /// The thread of `business` talking to `customer`. Derived, so that two
    /// inbound messages processed at once land on one stream.
    pub fn derive(business: &PhoneNumberId, customer: &WaId) -> Self {
        Self(derive("thread", &[business.as_str(), customer.as_str()]))
    }
}

impl ConversationId {
    /// The `sequence`-th conversation of `thread` (1-based). Derived, so a
    /// retried decision starts the same conversation, not a second one.
    pub fn derive(thread: ThreadId, sequence: u32) -> Self {
        Self(derive(
            "conversation",
            &[&thread.to_string(), &sequence.to_string()],
        ))
    }
}

impl ContactId {
    /// The lead created for an unknown WhatsApp id in a workspace. Derived,
    /// so concurrent first messages create one lead.
    pub fn derive_lead(workspace: WorkspaceId, wa_id: &WaId) -> Self {
        Self(derive("lead", &[&workspace.to_string(), wa_id.as_str()]))
    }
}

impl MessageId {
    /// The template send of `campaign` to `contact`: one per recipient.
    pub fn derive_campaign_send(campaign: CampaignId, contact: ContactId) -> Self {
        Self(derive(
            "campaign-send",
            &[&campaign.to_string(), &contact.to_string()],
        ))
    }
}

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A person in the inbox.
    Teammate(TeammateId),
    /// Another service calling over gRPC, by its token name.
    Service(String),
    /// Palaver itself: automatic rules, schedulers, webhooks.
    System,
}

impl fmt::Display for Actor {
    /// `teammate:<id>`, `service:<token name>` or `system`: the form read
    /// models and logs show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Teammate(id) => write!(f, "teammate:{id}"),
            Actor::Service(name) => write!(f, "service:{name}"),
            Actor::System => f.write_str("system"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = ThreadId::derive(&PhoneNumberId::new("1"), &WaId::new("23"));
        let b = ThreadId::derive(&PhoneNumberId::new("12"), &WaId::new("3"));
        assert_eq!(a, ThreadId::derive(&PhoneNumberId::new("1"), &WaId::new("23")));
        assert_ne!(a, b);
        assert_ne!(ConversationId::derive(a, 1), ConversationId::derive(a, 2));
    }
}
