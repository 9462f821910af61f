//! The WhatsApp channel of a workspace (stream `channel-<workspace id>`):
//! its connected business numbers and its settings. Other aggregates read
//! the settings through values the application layer passes in (the quiet
//! period to a thread, the switch rules to a switch offer).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::aggregate::Aggregate;
use crate::ids::{Actor, BusinessAccountId, PhoneNumberId, WorkspaceId};
use crate::office_hours::OfficeHours;
use crate::phone::{PhoneNumber, Region};
use crate::stream::StreamName;
use crate::{Error, Result};

/// Longest quiet period allowed, in days.
pub const MAX_QUIET_PERIOD_DAYS: u32 = 365;

/// Unit of a quiet period, kept as entered so the inbox shows "3 days", not
/// "4320 minutes".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuietPeriodUnit {
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
    /// Days.
    Days,
}

/// How long after a conversation closes a customer message still reopens
/// it; after that, the message starts a new conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuietPeriod {
    amount: u32,
    unit: QuietPeriodUnit,
}

impl Default for QuietPeriod {
    /// One day: a customer coming back the next morning about the same
    /// issue reopens it; a week later is a new matter.
    fn default() -> Self {
        Self {
            amount: 1,
            unit: QuietPeriodUnit::Days,
        }
    }
}

impl QuietPeriod {
    /// A positive period of at most 365 days.
    pub fn new(amount: u32, unit: QuietPeriodUnit) -> Result<Self> {
        let period = Self { amount, unit };
        if amount == 0 {
            return Err(Error::InvalidSetting("the quiet period must be positive".into()));
        }
        if period.duration() > TimeDelta::days(MAX_QUIET_PERIOD_DAYS.into()) {
            return Err(Error::InvalidSetting(format!(
                "the quiet period must be at most {MAX_QUIET_PERIOD_DAYS} days"
            )));
        }
        Ok(period)
    }

    /// The amount, in `unit`.
    pub fn amount(&self) -> u32 {
        self.amount
    }

    /// The unit.
    pub fn unit(&self) -> QuietPeriodUnit {
        self.unit
    }

    /// The period as a duration.
    pub fn duration(&self) -> TimeDelta {
        let amount = i64::from(self.amount);
        match self.unit {
            QuietPeriodUnit::Minutes => TimeDelta::minutes(amount),
            QuietPeriodUnit::Hours => TimeDelta::hours(amount),
            QuietPeriodUnit::Days => TimeDelta::days(amount),
        }
    }
}

/// The workspace's WhatsApp settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelSettings {
    /// See [`QuietPeriod`].
    pub quiet_period: QuietPeriod,
    /// Auto-merge a new lead into the most recently active contact with the
    /// same number. Off by default: a wrong merge shows one customer's
    /// history to another.
    pub identify_existing_users: bool,
    /// Offer Messenger conversations a move to WhatsApp.
    pub offer_whatsapp_switch: bool,
    /// Reply times are shown during office hours; the switch requires it,
    /// because the offer promises an answer on WhatsApp.
    pub show_reply_times_in_office_hours: bool,
    /// Office hours with their time zone.
    pub office_hours: OfficeHours,
    /// Region used to read national numbers, if any.
    pub default_region: Option<Region>,
}

/// A connected business number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedNumber {
    /// The number customers see.
    pub display_phone_number: PhoneNumber,
    /// The account owning it (and its template catalogue).
    pub business_account_id: BusinessAccountId,
}

/// Commands on a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelCommand {
    /// Connect a business number.
    ConnectNumber {
        /// The workspace (names the stream on first use).
        workspace_id: WorkspaceId,
        /// WhatsApp's phone number id.
        phone_number_id: PhoneNumberId,
        /// The number as typed or as WhatsApp shows it; normalized here.
        display_phone_number: String,
        /// Owning business account.
        business_account_id: BusinessAccountId,
        /// Who.
        by: Actor,
    },
    /// Disconnect a number.
    DisconnectNumber {
        /// WhatsApp's phone number id.
        phone_number_id: PhoneNumberId,
        /// Who.
        by: Actor,
    },
    /// Replace the settings.
    ChangeSettings {
        /// The workspace (names the stream on first use).
        workspace_id: WorkspaceId,
        /// New settings (parts validated by their constructors).
        settings: ChannelSettings,
        /// Who.
        by: Actor,
    },
}

/// Events of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// A number was connected.
    NumberConnected {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// WhatsApp's phone number id.
        phone_number_id: PhoneNumberId,
        /// The number.
        number: ConnectedNumber,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A number was disconnected.
    NumberDisconnected {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// WhatsApp's phone number id.
        phone_number_id: PhoneNumberId,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Settings replaced.
    SettingsChanged {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The whole new settings.
        settings: ChannelSettings,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A workspace's WhatsApp channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    workspace_id: Option<WorkspaceId>,
    numbers: BTreeMap<PhoneNumberId, ConnectedNumber>,
    settings: ChannelSettings,
}

impl Channel {
    /// The stream of a workspace's channel.
    pub fn stream_name(workspace: WorkspaceId) -> StreamName {
        StreamName::new(Self::CATEGORY, &workspace.to_string()).expect("a UUID is a valid id")
    }

    /// Current settings (defaults until changed).
    pub fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    /// A connected number.
    pub fn number(&self, id: &PhoneNumberId) -> Option<&ConnectedNumber> {
        self.numbers.get(id)
    }

    /// Connected numbers by phone number id.
    pub fn numbers(&self) -> &BTreeMap<PhoneNumberId, ConnectedNumber> {
        &self.numbers
    }

    fn check_workspace(&self, workspace_id: WorkspaceId) -> Result<()> {
        match self.workspace_id {
            Some(own) if own != workspace_id => Err(Error::WrongStream("another workspace's channel")),
            _ => Ok(()),
        }
    }
}

impl Aggregate for Channel {
    const CATEGORY: &'static str = "channel";
    type Command = ChannelCommand;
    type Event = ChannelEvent;

    fn decide(&self, command: ChannelCommand, now: DateTime<Utc>) -> Result<Vec<ChannelEvent>> {
        match command {
            ChannelCommand::ConnectNumber {
                workspace_id,
                phone_number_id,
                display_phone_number,
                business_account_id,
                by,
            } => {
                self.check_workspace(workspace_id)?;
                let number = ConnectedNumber {
                    display_phone_number: PhoneNumber::parse(
                        &display_phone_number,
                        self.settings.default_region,
                    )?,
                    business_account_id,
                };
                match self.numbers.get(&phone_number_id) {
                    Some(existing) if *existing == number => Ok(vec![]),
                    Some(_) => Err(Error::NumberAlreadyConnected(phone_number_id)),
                    None => Ok(vec![ChannelEvent::NumberConnected {
                        workspace_id,
                        phone_number_id,
                        number,
                        by,
                        at: now,
                    }]),
                }
            }
            ChannelCommand::DisconnectNumber { phone_number_id, by } => {
                let Some(workspace_id) = self.workspace_id else {
                    return Err(Error::NotFound("channel"));
                };
                if !self.numbers.contains_key(&phone_number_id) {
                    return Err(Error::NumberNotConnected(phone_number_id));
                }
                Ok(vec![ChannelEvent::NumberDisconnected {
                    workspace_id,
                    phone_number_id,
                    by,
                    at: now,
                }])
            }
            ChannelCommand::ChangeSettings {
                workspace_id,
                settings,
                by,
            } => {
                self.check_workspace(workspace_id)?;
                if settings.offer_whatsapp_switch && !settings.show_reply_times_in_office_hours {
                    return Err(Error::InvalidSetting(
                        "offering the WhatsApp switch requires showing reply times during office hours"
                            .into(),
                    ));
                }
                if self.workspace_id.is_some() && settings == self.settings {
                    return Ok(vec![]);
                }
                Ok(vec![ChannelEvent::SettingsChanged {
                    workspace_id,
                    settings,
                    by,
                    at: now,
                }])
            }
        }
    }

    fn evolve(mut self, event: &ChannelEvent) -> Self {
        match event {
            ChannelEvent::NumberConnected {
                workspace_id,
                phone_number_id,
                number,
                ..
            } => {
                self.workspace_id = Some(*workspace_id);
                self.numbers.insert(phone_number_id.clone(), number.clone());
            }
            ChannelEvent::NumberDisconnected { phone_number_id, .. } => {
                self.numbers.remove(phone_number_id);
            }
            ChannelEvent::SettingsChanged {
                workspace_id,
                settings,
                ..
            } => {
                self.workspace_id = Some(*workspace_id);
                self.settings = settings.clone();
            }
        }
        self
    }
}
