//! Office hours of a workspace, in its own time zone. They decide whether
//! reply times are shown, which the Messenger-to-WhatsApp switch requires.
//! The zone is an IANA name (chrono-tz) so daylight saving is right without
//! anyone editing offsets twice a year.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use crate::{Error, Result};

/// Minutes in a day: the exclusive upper bound of an interval's end.
pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// One open interval on one weekday, in local time: `[start, end)` minutes
/// after midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OfficeInterval {
    /// The day.
    pub weekday: Weekday,
    /// Opening minute after local midnight (inclusive).
    pub start_minute: u16,
    /// Closing minute after local midnight (exclusive, at most 1440).
    pub end_minute: u16,
}

/// Weekly office hours in a time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficeHours {
    time_zone: Tz,
    intervals: Vec<OfficeInterval>,
}

impl Default for OfficeHours {
    /// UTC, never open: nothing is promised until the workspace says so.
    fn default() -> Self {
        Self {
            time_zone: Tz::UTC,
            intervals: vec![],
        }
    }
}

impl OfficeHours {
    /// Office hours in the IANA zone `time_zone` (e.g. `Europe/London`).
    /// Refuses unknown zones and empty or inverted intervals.
    pub fn new(time_zone: &str, intervals: Vec<OfficeInterval>) -> Result<Self> {
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| Error::InvalidSetting(format!("unknown time zone `{time_zone}`")))?;
        if let Some(bad) = intervals
            .iter()
            .find(|i| i.start_minute >= i.end_minute || i.end_minute > MINUTES_PER_DAY)
        {
            return Err(Error::InvalidSetting(format!(
                "office hours interval {:?} {}..{} must be non-empty and within the day",
                bad.weekday, bad.start_minute, bad.end_minute
            )));
        }
        Ok(Self { time_zone, intervals })
    }

    /// The IANA zone name.
    pub fn time_zone(&self) -> &'static str {
        self.time_zone.name()
    }

    /// The intervals, as given.
    pub fn intervals(&self) -> &[OfficeInterval] {
        &self.intervals
    }

    /// Whether `t` falls in office hours, in local time.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.time_zone);
        let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(u16::MAX);
        self.intervals
            .iter()
            .any(|i| i.weekday == local.weekday() && i.start_minute <= minute && minute < i.end_minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_and_daylight_saving_are_respected() {
        let hours = OfficeHours::new(
            "Europe/London",
            vec![OfficeInterval {
                weekday: Weekday::Mon,
                start_minute: 9 * 60,
                end_minute: 17 * 60,
            }],
        )
        .unwrap();
        // Monday 2025-07-07 08:30 UTC is 09:30 BST: open.
        let summer = DateTime::parse_from_rfc3339("2025-07-07T08:30:00Z")
            .unwrap()
            .to_utc();
        assert!(hours.contains(summer));
        // Monday 2025-01-06 08:30 UTC is 08:30 GMT: closed.
        let winter = DateTime::parse_from_rfc3339("2025-01-06T08:30:00Z")
            .unwrap()
            .to_utc();
        assert!(!hours.contains(winter));
    }

    #[test]
    fn bad_zones_and_intervals_are_refused() {
        assert!(OfficeHours::new("Mars/Olympus", vec![]).is_err());
        let inverted = OfficeInterval {
            weekday: Weekday::Tue,
            start_minute: 600,
            end_minute: 500,
        };
        assert!(OfficeHours::new("UTC", vec![inverted]).is_err());
    }
}
