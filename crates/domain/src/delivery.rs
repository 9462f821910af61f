//! Delivery states of outbound messages. WhatsApp's status webhooks arrive
//! at least once and in any order, so states merge monotonically: progress
//! only moves forward (queued < sent < delivered < read), and a failure is
//! recorded whenever it comes, even after "read" (WhatsApp can fail a
//! message it already reported; the teammate must see it). The merge is
//! order-independent, so any arrival order gives the same final state.

use chrono::{DateTime, Utc};

/// How far a message got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum DeliveryProgress {
    /// Recorded by Palaver, not yet accepted by WhatsApp.
    #[default]
    Queued,
    /// WhatsApp sent it to the customer's phone.
    Sent,
    /// The phone received it.
    Delivered,
    /// The customer opened it.
    Read,
}

/// Why a message failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryFailure {
    /// WhatsApp error code, 0 if the failure happened before WhatsApp
    /// answered.
    pub code: i32,
    /// Human-readable reason.
    pub reason: String,
}

/// One status report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryUpdate {
    /// Progress reached this point at `at`.
    Progress {
        /// The point reached; `Queued` is never reported and changes nothing.
        progress: DeliveryProgress,
        /// When WhatsApp says it happened.
        at: DateTime<Utc>,
    },
    /// Sending failed at `at`.
    Failed {
        /// Why.
        failure: DeliveryFailure,
        /// When WhatsApp says it happened.
        at: DateTime<Utc>,
    },
}

/// The merged state of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryState {
    /// Furthest progress reported.
    pub progress: DeliveryProgress,
    /// Every distinct failure reported, in the order recorded.
    pub failures: Vec<DeliveryFailure>,
}

impl DeliveryState {
    /// Whether `update` changes this state, i.e. whether it must be
    /// recorded. A repeated failure (same code and reason) is a webhook
    /// retry, not news.
    pub fn is_news(&self, update: &DeliveryUpdate) -> bool {
        match update {
            DeliveryUpdate::Progress { progress, .. } => *progress > self.progress,
            DeliveryUpdate::Failed { failure, .. } => !self.failures.contains(failure),
        }
    }

    /// The state after `update` (a no-op for stale or repeated updates).
    #[must_use]
    pub fn merge(mut self, update: &DeliveryUpdate) -> Self {
        if self.is_news(update) {
            match update {
                DeliveryUpdate::Progress { progress, .. } => self.progress = *progress,
                DeliveryUpdate::Failed { failure, .. } => self.failures.push(failure.clone()),
            }
        }
        self
    }

    /// Whether any failure was reported.
    pub fn has_failed(&self) -> bool {
        !self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn update() -> impl Strategy<Value = DeliveryUpdate> {
        prop_oneof![
            (0usize..4, 0i64..100).prop_map(|(p, s)| DeliveryUpdate::Progress {
                progress: [
                    DeliveryProgress::Queued,
                    DeliveryProgress::Sent,
                    DeliveryProgress::Delivered,
                    DeliveryProgress::Read
                ][p],
                at: at(s),
            }),
            (0i32..3, 0i64..100).prop_map(|(code, s)| DeliveryUpdate::Failed {
                failure: DeliveryFailure {
                    code,
                    reason: format!("reason {code}")
                },
                at: at(s),
            }),
        ]
    }

    #[test]
    fn late_delivered_after_read_changes_nothing() {
        let read = DeliveryState::default().merge(&DeliveryUpdate::Progress {
            progress: DeliveryProgress::Read,
            at: at(2),
        });
        let late = DeliveryUpdate::Progress {
            progress: DeliveryProgress::Delivered,
            at: at(1),
        };
        assert!(!read.is_news(&late));
        assert_eq!(read.clone().merge(&late), read);
    }

    #[test]
    fn failure_is_recorded_even_after_read() {
        let read = DeliveryState::default().merge(&DeliveryUpdate::Progress {
            progress: DeliveryProgress::Read,
            at: at(2),
        });
        let failed = DeliveryUpdate::Failed {
            failure: DeliveryFailure {
                code: 131_047,
                reason: "re-engagement".into(),
            },
            at: at(3),
        };
        assert!(read.is_news(&failed));
        let state = read.merge(&failed);
        assert!(state.has_failed());
        assert_eq!(state.progress, DeliveryProgress::Read);
        assert!(!state.is_news(&failed), "the same failure twice is one");
    }

    proptest! {
        /// Final progress and the set of failures do not depend on arrival
        /// order.
        #[test]
        fn merge_is_order_independent(
            updates in proptest::collection::vec(update(), 0..10),
            seed in any::<u64>(),
        ) {
            let forward = updates.iter().fold(DeliveryState::default(), DeliveryState::merge);
            let mut shuffled = updates.clone();
            // A cheap deterministic shuffle from the seed.
            let n = shuffled.len();
            for i in (1..n).rev() {
                let j = ((seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i as u64)) >> 33) as usize % (i + 1);
                shuffled.swap(i, j);
            }
            let other = shuffled.iter().fold(DeliveryState::default(), DeliveryState::merge);
            prop_assert_eq!(forward.progress, other.progress);
            let mut a = forward.failures.clone();
            let mut b = other.failures.clone();
            a.sort_by_key(|f| f.code);
            b.sort_by_key(|f| f.code);
            prop_assert_eq!(a, b);
        }
    }
}
