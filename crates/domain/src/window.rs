//! The 24-hour customer care window. WhatsApp lets a business send free-form
//! messages only within 24 hours of the customer's last message; outside it,
//! only approved templates. The window is measured from the timestamp
//! WhatsApp puts on the customer's message, not from when Palaver received
//! it: a webhook delayed by an hour must not stretch the window by an hour.

use chrono::{DateTime, TimeDelta, Utc};

use crate::{Error, Result};

/// How long the window stays open after a customer message.
pub const WINDOW_LENGTH: TimeDelta = TimeDelta::hours(24);

/// The window of one thread, as a value the application layer can hand to a
/// conversation's decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CustomerCareWindow {
    /// Latest customer message timestamp seen. Only the latest matters:
    /// webhooks can arrive out of order, so this is a maximum, not "last
    /// received".
    last_customer_message_at: Option<DateTime<Utc>>,
}

impl CustomerCareWindow {
    /// A window that has seen one customer message at `sent_at`.
    pub fn from_message(sent_at: DateTime<Utc>) -> Self {
        Self::default().with_customer_message(sent_at)
    }

    /// The window after a customer message sent at `sent_at`.
    #[must_use]
    pub fn with_customer_message(self, sent_at: DateTime<Utc>) -> Self {
        Self {
            last_customer_message_at: Some(
                self.last_customer_message_at
                    .map_or(sent_at, |last| last.max(sent_at)),
            ),
        }
    }

    /// The latest customer message timestamp, if any.
    pub fn last_customer_message_at(&self) -> Option<DateTime<Utc>> {
        self.last_customer_message_at
    }

    /// When the window closes (or closed): 24 hours after the latest
    /// customer message. `None` if the customer never wrote.
    pub fn closes_at(&self) -> Option<DateTime<Utc>> {
        self.last_customer_message_at.map(|at| at + WINDOW_LENGTH)
    }

    /// Open at `t` when some customer message lies in `(t - 24h, t]`. A
    /// message stamped after `t` (the customer's clock or WhatsApp's is ahead
    /// of ours) also counts as open: the customer has evidently just written.
    pub fn is_open_at(&self, t: DateTime<Utc>) -> bool {
        self.closes_at().is_some_and(|closes| t < closes)
    }

    /// `Ok` when a free-form message may be sent at `now`, otherwise the
    /// typed error saying a template is required and since when.
    pub fn require_open(&self, now: DateTime<Utc>) -> Result<()> {
        if self.is_open_at(now) {
            Ok(())
        } else {
            Err(Error::TemplateRequired {
                window_closed_at: self.closes_at(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn boundaries_at_24_hours() {
        let window = CustomerCareWindow::from_message(at(0));
        let day = WINDOW_LENGTH.num_seconds();
        assert!(window.is_open_at(at(day - 1)), "one second before");
        assert!(!window.is_open_at(at(day)), "exactly 24h: closed");
        assert!(!window.is_open_at(at(day + 1)), "one second after");
        assert_eq!(
            window.require_open(at(day)),
            Err(Error::TemplateRequired {
                window_closed_at: Some(at(day))
            })
        );
    }

    #[test]
    fn never_opened_window_is_closed_without_a_time() {
        assert_eq!(
            CustomerCareWindow::default().require_open(at(0)),
            Err(Error::TemplateRequired {
                window_closed_at: None
            })
        );
    }

    #[test]
    fn an_older_message_arriving_late_does_not_shorten_the_window() {
        let window = CustomerCareWindow::from_message(at(100)).with_customer_message(at(10));
        assert_eq!(window.last_customer_message_at(), Some(at(100)));
    }

    proptest! {
        /// The window is open at t iff some customer message lies in
        /// (t - 24h, t], for any messages in any order seen by t.
        #[test]
        fn open_iff_a_message_in_the_last_24_hours(
            offsets in proptest::collection::vec(0i64..400_000, 0..12),
            t_offset in 0i64..500_000,
        ) {
            let t = at(t_offset);
            // Decisions happen at `now`, after the messages they see.
            let messages: Vec<_> = offsets.iter().map(|&o| at(o)).filter(|m| *m <= t).collect();
            let window = messages
                .iter()
                .fold(CustomerCareWindow::default(), |w, &m| w.with_customer_message(m));
            let expected = messages.iter().any(|&m| t - WINDOW_LENGTH < m && m <= t);
            prop_assert_eq!(window.is_open_at(t), expected);
        }

        /// Messages from the future (clock skew) keep the window open.
        #[test]
        fn future_messages_count_as_open(ahead in 1i64..3_600) {
            let window = CustomerCareWindow::from_message(at(ahead));
            prop_assert!(window.is_open_at(at(0)));
        }
    }
}
