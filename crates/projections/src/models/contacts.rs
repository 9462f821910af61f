//! Contacts: leads and users with their E.164 phones, WhatsApp id, last
//! activity and merges. A merged contact keeps its row (history is never
//! deleted) and points at its survivor.

use palaver_domain::{
    codec::{DomainEvent, event_types as t},
    contact::{ContactEvent, ContactKind, MergeReason},
    thread::ThreadEvent,
};
use palaver_store::RecordedEvent;

use crate::{ProjectError, Projector, sql::Statement, stmt};

/// The contacts projector.
#[derive(Debug, Default)]
pub struct ContactsProjector;

fn kind_name(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Lead => "lead",
        ContactKind::User => "user",
    }
}

fn reason_name(reason: &MergeReason) -> &'static str {
    match reason {
        MergeReason::SamePhone => "same_phone",
        MergeReason::Manual => "manual",
    }
}

impl Projector for ContactsProjector {
    fn name(&self) -> &'static str {
        "contacts"
    }
    fn version(&self) -> u32 {
        1
    }
    fn schema(&self) -> &'static str {
        include_str!("sql/contacts.sql")
    }
    fn postgres_schema(&self) -> &'static str {
        include_str!("sql/contacts.postgres.sql")
    }
    fn tables(&self) -> &'static [&'static str] {
        &["contacts", "contact_phones", "contact_threads"]
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[
            t::CONTACT_CREATED,
            t::CONTACT_PHONE_ADDED,
            t::LEAD_CONVERTED_TO_USER,
            t::CONTACT_MERGED,
            t::THREAD_STARTED,
            t::CUSTOMER_MESSAGE_ACCEPTED,
        ]
    }

    fn project(
        &self,
        _: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError> {
        match event {
            DomainEvent::Contact(ContactEvent::Created { contact_id, workspace_id, kind, name, phone_numbers, wa_id, external_user_id, at, .. }) => {
                out.push(stmt!(
                    "INSERT INTO contacts (contact_id, workspace_id, kind, name, wa_id, external_user_id, survivor_id, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1, ?7) ON CONFLICT (contact_id) DO NOTHING",
                    contact_id.to_string(),
                    workspace_id.to_string(),
                    kind_name(*kind),
                    name.as_str(),
                    wa_id.as_ref().map(|id| id.as_str()),
                    external_user_id.as_deref(),
                    *at,
                ));
                for phone in phone_numbers {
                    out.push(phone_row(&contact_id.to_string(), phone.as_e164()));
                }
            }
            DomainEvent::Contact(ContactEvent::PhoneAdded { contact_id, phone_number, .. }) => {
                out.push(phone_row(&contact_id.to_string(), phone_number.as_e164()));
            }
            DomainEvent::Contact(ContactEvent::ConvertedToUser { contact_id, external_user_id, .. }) => out.push(stmt!(
                "UPDATE contacts SET kind = 'user', external_user_id = ?2 WHERE contact_id = ?1",
                contact_id.to_string(),
                external_user_id.as_str(),
            )),
            DomainEvent::Contact(ContactEvent::Merged { contact_id, into, reason, at, .. }) => {
                out.push(stmt!(
                    "UPDATE contacts SET merged_into = ?2, merged_reason = ?3, merged_at = ?4 WHERE contact_id = ?1",
                    contact_id.to_string(),
                    into.to_string(),
                    reason_name(reason),
                    *at,
                ));
                // Everything that stood for the merged contact (itself, and
                // contacts merged into it before) now stands for the survivor.
                out.push(stmt!(
                    "UPDATE contacts SET survivor_id = \
                     COALESCE((SELECT survivor_id FROM contacts WHERE contact_id = ?2), ?2) \
                     WHERE survivor_id = ?1",
                    contact_id.to_string(),
                    into.to_string(),
                ));
            }
            DomainEvent::Thread(ThreadEvent::Started { thread_id, identity, .. }) => out.push(stmt!(
                "INSERT INTO contact_threads (thread_id, contact_id) VALUES (?1, ?2) ON CONFLICT (thread_id) DO NOTHING",
                thread_id.to_string(),
                identity.contact_id.to_string(),
            )),
            DomainEvent::Thread(ThreadEvent::CustomerMessageAccepted { thread_id, sent_at, .. }) => out.push(stmt!(
                "UPDATE contacts SET last_active_at = CASE WHEN ?2 >= COALESCE(last_active_at, ?2) THEN ?2 \
                 ELSE last_active_at END \
                 WHERE contact_id = (SELECT contact_id FROM contact_threads WHERE thread_id = ?1)",
                thread_id.to_string(),
                *sent_at,
            )),
            _ => {}
        }
        Ok(())
    }
}

fn phone_row(contact_id: &str, e164: &str) -> Statement {
    stmt!(
        "INSERT INTO contact_phones (phone_e164, contact_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        e164,
        contact_id,
    )
}
