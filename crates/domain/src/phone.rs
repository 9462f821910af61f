//! Phone numbers. Contacts are matched by number, so every number is stored
//! in one canonical form, E.164 (`+447700900123`), whatever way it was
//! typed. Parsing uses the `phonenumber` crate (Google's libphonenumber
//! metadata; see docs/adr/0002-phonenumber.md).
//!
//! A number only has to parse, not to be "valid" in libphonenumber's sense:
//! validity tables lag behind real allocations, and refusing a customer's
//! real number is worse than storing a number nobody can call.

use std::fmt;
use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id as CountryId;

/// A phone number in E.164 form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber(String);

/// An ISO 3166-1 region whose national format is used to read numbers
/// written without a country code (`07700 900123` in `GB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region(CountryId);

/// Why a phone number or region was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// The text is not a phone number (or is national and no region was
    /// given to read it). Ask for the number with its country code.
    #[error("`{input}` is not a phone number: {reason}")]
    Unparseable {
        /// The text as given.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// The region code is not an ISO 3166-1 alpha-2 code libphonenumber
    /// knows. Pick another region.
    #[error("`{0}` is not a known region code")]
    UnknownRegion(String),
}

impl Region {
    /// Reads a region code such as `GB` (case-insensitive).
    pub fn parse(code: &str) -> Result<Self, PhoneError> {
        CountryId::from_str(&code.to_ascii_uppercase())
            .map(Self)
            .map_err(|_| PhoneError::UnknownRegion(code.to_owned()))
    }

    /// The two-letter code, upper case.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl PhoneNumber {
    /// Normalizes `input`: international (`+44 …`, `0044 …` when the region
    /// dials out with `00`) or national with a `default_region`.
    pub fn parse(input: &str, default_region: Option<Region>) -> Result<Self, PhoneError> {
        let unparseable = |reason: String| PhoneError::Unparseable {
            input: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        // `00` is the international prefix in most of the world; without a
        // region libphonenumber would not know that, so read it as `+`.
        let international;
        let text = match (default_region, trimmed.strip_prefix("00")) {
            (None, Some(rest)) => {
                international = format!("+{rest}");
                international.as_str()
            }
            _ => trimmed,
        };
        let number =
            phonenumber::parse(default_region.map(|r| r.0), text).map_err(|e| unparseable(e.to_string()))?;
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    /// The number of a WhatsApp id: WhatsApp ids are the international
    /// digits of the customer's number, without the `+`.
    pub fn from_wa_id(wa_id: &str) -> Result<Self, PhoneError> {
        if wa_id.is_empty() || !wa_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Unparseable {
                input: wa_id.to_owned(),
                reason: "a WhatsApp id is digits only".to_owned(),
            });
        }
        Self::parse(&format!("+{wa_id}"), None)
    }

    /// Reads an already normalized number back (from an event).
    pub fn from_e164(e164: &str) -> Result<Self, PhoneError> {
        let parsed = Self::parse(e164, None)?;
        if parsed.0 == e164 {
            Ok(parsed)
        } else {
            Err(PhoneError::Unparseable {
                input: e164.to_owned(),
                reason: "not in E.164 form".to_owned(),
            })
        }
    }

    /// Reads a number from a stored event, checking only its shape: events
    /// written under older phone metadata must still replay, so stored
    /// numbers are not re-parsed.
    pub(crate) fn from_stored(e164: &str) -> Option<Self> {
        let digits = e164.strip_prefix('+')?;
        (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(e164.to_owned()))
    }

    /// `+447700900123`.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// The digits without `+`, as wa.me links want them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_one_number() {
        let gb = Some(Region::parse("GB").unwrap());
        let expected = "+447700900123";
        for input in ["+44 7700 900123", "+447700900123", "0044 7700 900123"] {
            assert_eq!(
                PhoneNumber::parse(input, None).unwrap().as_e164(),
                expected,
                "{input}"
            );
            assert_eq!(
                PhoneNumber::parse(input, gb).unwrap().as_e164(),
                expected,
                "{input} GB"
            );
        }
        assert_eq!(
            PhoneNumber::parse("07700 900123", gb).unwrap().as_e164(),
            expected
        );
        assert_eq!(
            PhoneNumber::from_wa_id("447700900123").unwrap().as_e164(),
            expected
        );
    }

    #[test]
    fn unparseable_numbers_are_typed_errors() {
        for input in ["hello", "12", "07700 900123", "", "+999 1234"] {
            assert!(
                matches!(
                    PhoneNumber::parse(input, None),
                    Err(PhoneError::Unparseable { .. })
                ),
                "{input}"
            );
        }
        assert_eq!(Region::parse("XX"), Err(PhoneError::UnknownRegion("XX".into())));
        assert_eq!(Region::parse("gb").unwrap().code(), "GB");
    }
}
