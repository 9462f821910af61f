//! Channel: numbers and validated settings.

use chrono::Weekday;

use super::fixtures::*;
use crate::Error;
use crate::channel::{
    Channel, ChannelCommand, ChannelEvent, ChannelSettings, ConnectedNumber, QuietPeriod, QuietPeriodUnit,
};
use crate::ids::PhoneNumberId;
use crate::office_hours::{OfficeHours, OfficeInterval};
use crate::phone::{PhoneError, PhoneNumber, Region};
use crate::testing::given;

#[test]
fn quiet_periods_are_positive_and_at_most_365_days() {
    assert!(QuietPeriod::new(0, QuietPeriodUnit::Minutes).is_err());
    assert!(QuietPeriod::new(1, QuietPeriodUnit::Minutes).is_ok());
    assert!(QuietPeriod::new(365, QuietPeriodUnit::Days).is_ok());
    assert!(QuietPeriod::new(366, QuietPeriodUnit::Days).is_err());
    assert!(QuietPeriod::new(365 * 24, QuietPeriodUnit::Hours).is_ok());
    assert!(QuietPeriod::new(365 * 24 + 1, QuietPeriodUnit::Hours).is_err());
    assert!(QuietPeriod::new(365 * 24 * 60, QuietPeriodUnit::Minutes).is_ok());
    assert!(QuietPeriod::new(u32::MAX, QuietPeriodUnit::Days).is_err());
}

#[test]
fn defaults_keep_auto_merge_and_the_switch_off() {
    let settings = ChannelSettings::default();
    assert!(!settings.identify_existing_users);
    assert!(!settings.offer_whatsapp_switch);
}

fn change(settings: ChannelSettings) -> ChannelCommand {
    ChannelCommand::ChangeSettings {
        workspace_id: workspace(),
        settings,
        by: teammate(),
    }
}

#[test]
fn the_switch_requires_reply_times_during_office_hours() {
    let settings = ChannelSettings {
        offer_whatsapp_switch: true,
        ..ChannelSettings::default()
    };
    assert!(matches!(
        given::<Channel>([]).when(change(settings.clone()), t(0)).result(),
        Err(Error::InvalidSetting(_))
    ));
    let settings = ChannelSettings {
        show_reply_times_in_office_hours: true,
        office_hours: OfficeHours::new(
            "Europe/London",
            vec![OfficeInterval {
                weekday: Weekday::Mon,
                start_minute: 540,
                end_minute: 1020,
            }],
        )
        .unwrap(),
        default_region: Some(Region::parse("GB").unwrap()),
        ..settings
    };
    given::<Channel>([])
        .when(change(settings.clone()), t(0))
        .then([ChannelEvent::SettingsChanged {
            workspace_id: workspace(),
            settings: settings.clone(),
            by: teammate(),
            at: t(0),
        }]);
}

#[test]
fn numbers_are_normalized_with_the_default_region_and_connecting_twice_is_a_no_op() {
    let gb = ChannelSettings {
        default_region: Some(Region::parse("GB").unwrap()),
        ..ChannelSettings::default()
    };
    let history = vec![ChannelEvent::SettingsChanged {
        workspace_id: workspace(),
        settings: gb,
        by: teammate(),
        at: t(0),
    }];
    let connect = |display: &str| ChannelCommand::ConnectNumber {
        workspace_id: workspace(),
        phone_number_id: PhoneNumberId::new("1065550001"),
        display_phone_number: display.into(),
        business_account_id: account(),
        by: teammate(),
    };
    let connected = ChannelEvent::NumberConnected {
        workspace_id: workspace(),
        phone_number_id: PhoneNumberId::new("1065550001"),
        number: ConnectedNumber {
            display_phone_number: PhoneNumber::parse("+447700900123", None).unwrap(),
            business_account_id: account(),
        },
        by: teammate(),
        at: t(1),
    };
    given::<Channel>(history.clone())
        .when(connect("07700 900123"), t(1))
        .then([connected.clone()]);
    let mut after = history;
    after.push(connected);
    given::<Channel>(after.clone())
        .when(connect("+44 7700 900123"), t(2))
        .then_nothing();
    given::<Channel>(after)
        .when(connect("+44 7700 900999"), t(2))
        .then_error(Error::NumberAlreadyConnected(PhoneNumberId::new("1065550001")));
    given::<Channel>([])
        .when(connect("not a number"), t(1))
        .then_error(Error::Phone(PhoneError::Unparseable {
            input: "not a number".into(),
            reason: "not a number".into(),
        }));
}

#[test]
fn disconnecting_an_unknown_number_is_refused() {
    given::<Channel>([])
        .when(
            ChannelCommand::DisconnectNumber {
                phone_number_id: PhoneNumberId::new("1"),
                by: teammate(),
            },
            t(0),
        )
        .then_error(Error::NotFound("channel"));
}
