//! What a Cloud API error code means for a sender: wait and retry, stop and
//! fix the configuration, or give up on this message. docs/whatsapp.md has
//! the table with the reference's meaning of each code.

/// How a sender should treat an error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeClass {
    /// A rate limit was hit: retry after a pause (longer for the pair and
    /// spam limits).
    Throttled,
    /// Meta had a temporary problem: retry with backoff.
    Temporary,
    /// The access token, the app's permissions or the account are wrong:
    /// no message can go out until a person fixes the configuration.
    Configuration,
    /// This message cannot be delivered as it is: do not retry it.
    Permanent,
}

/// The class of a Cloud API (Graph API) error code.
pub fn classify(code: i64) -> CodeClass {
    match code {
        // 4: application request limit; 80007: WABA rate limit;
        // 130429: Cloud API throughput; 131048: spam rate limit;
        // 131056: (business, customer) pair rate limit.
        4 | 80_007 | 130_429 | 131_048 | 131_056 => CodeClass::Throttled,
        // 1: unknown, possibly downtime; 2: service temporarily unavailable;
        // 131000: something went wrong; 131016: service unavailable;
        // 131057: account in maintenance mode (e.g. a throughput upgrade);
        // 133004: server temporarily unavailable.
        1 | 2 | 131_000 | 131_016 | 131_057 | 133_004 => CodeClass::Temporary,
        // 0: AuthException; 3: capability missing; 10 and 200-299: permission
        // not granted or revoked; 190: access token expired or invalid.
        0 | 3 | 10 | 190 | 200..=299 => CodeClass::Configuration,
        _ => CodeClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_the_reference_fall_in_their_class() {
        for code in [4, 80_007, 130_429, 131_048, 131_056] {
            assert_eq!(classify(code), CodeClass::Throttled, "{code}");
        }
        for code in [1, 2, 131_000, 131_016, 133_004] {
            assert_eq!(classify(code), CodeClass::Temporary, "{code}");
        }
        for code in [0, 10, 190, 200, 299] {
            assert_eq!(classify(code), CodeClass::Configuration, "{code}");
        }
        for code in [100, 131_026, 131_047, 131_051, 132_000, 132_001, 132_015, 368] {
            assert_eq!(classify(code), CodeClass::Permanent, "{code}");
        }
    }
}
