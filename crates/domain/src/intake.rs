//! A WhatsApp webhook payload (stream `webhook-<payload id>`): stored
//! verbatim before the webhook is acknowledged, then turned into commands.
//!
//! The payload id is derived from the body, so Meta's redelivery of the same
//! payload lands on the same stream and is stored once. The outcome events
//! record what became of it: processed, parked (a business number no
//! workspace has connected yet) or failed (kept for `palaver webhooks
//! reprocess`). A parked or failed payload can be processed later; history
//! keeps every outcome.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::ids::{PALAVER_NAMESPACE, PayloadId, PhoneNumberId};
use crate::stream::StreamName;
use crate::{Error, Result};

impl PayloadId {
    /// The id of a payload with this body: the same bytes, the same id.
    pub fn of_body(body: &[u8]) -> Self {
        let mut name = b"webhook-payload\0".to_vec();
        name.extend_from_slice(body);
        Self::from_uuid(Uuid::new_v5(&PALAVER_NAMESPACE, &name))
    }
}

/// Commands on a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadCommand {
    /// Store a signed payload (a no-op if this body is already stored).
    Receive {
        /// Derived from the body with [`PayloadId::of_body`].
        payload_id: PayloadId,
        /// The raw body.
        body: Vec<u8>,
    },
    /// Every item was handled.
    MarkProcessed {
        /// Messages, statuses and template updates it carried.
        items: u32,
    },
    /// Items for these numbers wait until a workspace connects them.
    Park {
        /// The unconnected business numbers.
        phone_number_ids: Vec<PhoneNumberId>,
    },
    /// Handling failed; the payload waits for a reprocess.
    MarkFailed {
        /// What went wrong.
        error: String,
    },
}

/// What happened to a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadEvent {
    /// Stored before the webhook was acknowledged.
    Received {
        /// This payload.
        payload_id: PayloadId,
        /// The raw body.
        body: Vec<u8>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every item was handled.
    Processed {
        /// This payload.
        payload_id: PayloadId,
        /// How many items it carried.
        items: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Waiting for numbers to be connected.
    Parked {
        /// This payload.
        payload_id: PayloadId,
        /// The unconnected business numbers.
        phone_number_ids: Vec<PhoneNumberId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Handling failed.
    Failed {
        /// This payload.
        payload_id: PayloadId,
        /// What went wrong.
        error: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Where a payload stands now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PayloadOutcome {
    /// Stored, not handled yet.
    #[default]
    Pending,
    /// Handled.
    Processed,
    /// Waiting for these numbers.
    Parked(Vec<PhoneNumberId>),
    /// Failed with this error.
    Failed(String),
}

/// A stored webhook payload.
#[derive(Clone, Debug, Default)]
pub struct WebhookPayload {
    id: Option<PayloadId>,
    body: Vec<u8>,
    received_at: Option<DateTime<Utc>>,
    outcome: PayloadOutcome,
}

impl WebhookPayload {
    /// The stream of a payload.
    pub fn stream_name(id: PayloadId) -> StreamName {
        StreamName::new(Self::CATEGORY, &id.to_string()).expect("a UUID is a valid id")
    }

    /// Its id, once received.
    pub fn id(&self) -> Option<PayloadId> {
        self.id
    }

    /// The raw body (empty before it is received).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// When it was received.
    pub fn received_at(&self) -> Option<DateTime<Utc>> {
        self.received_at
    }

    /// What became of it.
    pub fn outcome(&self) -> &PayloadOutcome {
        &self.outcome
    }

    fn require_received(&self) -> Result<PayloadId> {
        self.id.ok_or(Error::NotFound("webhook payload"))
    }
}

impl Aggregate for WebhookPayload {
    const CATEGORY: &'static str = "webhook";
    type Command = PayloadCommand;
    type Event = PayloadEvent;

    fn decide(&self, command: PayloadCommand, now: DateTime<Utc>) -> Result<Vec<PayloadEvent>> {
        use PayloadCommand as C;
        use PayloadEvent as E;
        match command {
            C::Receive { payload_id, body } => {
                if self.id.is_some() {
                    return Ok(vec![]);
                }
                if payload_id != PayloadId::of_body(&body) {
                    return Err(Error::WrongStream("the payload id is not the body's"));
                }
                Ok(vec![E::Received {
                    payload_id,
                    body,
                    at: now,
                }])
            }
            C::MarkProcessed { items } => {
                let payload_id = self.require_received()?;
                if self.outcome == PayloadOutcome::Processed {
                    return Ok(vec![]);
                }
                Ok(vec![E::Processed {
                    payload_id,
                    items,
                    at: now,
                }])
            }
            C::Park { phone_number_ids } => {
                let payload_id = self.require_received()?;
                if self.outcome == PayloadOutcome::Parked(phone_number_ids.clone()) {
                    return Ok(vec![]);
                }
                Ok(vec![E::Parked {
                    payload_id,
                    phone_number_ids,
                    at: now,
                }])
            }
            C::MarkFailed { error } => {
                let payload_id = self.require_received()?;
                if self.outcome == PayloadOutcome::Failed(error.clone()) {
                    return Ok(vec![]);
                }
                Ok(vec![E::Failed {
                    payload_id,
                    error,
                    at: now,
                }])
            }
        }
    }

    fn evolve(mut self, event: &PayloadEvent) -> Self {
        match event {
            PayloadEvent::Received { payload_id, body, at } => {
                self.id = Some(*payload_id);
                self.body = body.clone();
                self.received_at = Some(*at);
            }
            PayloadEvent::Processed { .. } => self.outcome = PayloadOutcome::Processed,
            PayloadEvent::Parked { phone_number_ids, .. } => {
                self.outcome = PayloadOutcome::Parked(phone_number_ids.clone());
            }
            PayloadEvent::Failed { error, .. } => self.outcome = PayloadOutcome::Failed(error.clone()),
        }
        self
    }
}
