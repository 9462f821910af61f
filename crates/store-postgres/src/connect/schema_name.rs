//! The rules for schema names: checked once, so the name can go into SQL
//! text (quoted) and into other identifiers built from it.

use super::{Error, Result};

/// PostgreSQL's longest identifier, in bytes: a longer one is cut short
/// silently, so two long names could end up the same.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// A schema name that passed [`SchemaName::new`]: lower-case ASCII letters,
/// digits and `_`, not starting with a digit or `pg_`, not too long. Safe to
/// put in SQL text quoted, and in identifiers built from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

impl SchemaName {
    /// Checks `name`, at most `max_len` bytes long (the caller leaves room
    /// for what it appends to the name; never more than
    /// [`MAX_IDENTIFIER_LEN`]). `field` names the setting in the error.
    pub fn new(name: &str, max_len: usize, field: &'static str) -> Result<Self> {
        let max_len = max_len.min(MAX_IDENTIFIER_LEN);
        let reason = if name.is_empty() {
            Some("it is empty".to_owned())
        } else if name.len() > max_len {
            Some(format!("it is longer than {max_len} bytes"))
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            Some("only lower-case ASCII letters, digits and _ are allowed".to_owned())
        } else if name.as_bytes()[0].is_ascii_digit() {
            Some("it starts with a digit".to_owned())
        } else if name.starts_with("pg_") {
            Some("names starting with pg_ are reserved by PostgreSQL".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::SchemaName {
                field,
                name: name.to_owned(),
                reason,
            }),
            None => Ok(SchemaName(name.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The schema as a quoted SQL identifier.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// A second key for advisory locks on this schema (FNV-1a of the name),
    /// beside a first key that says what is locked: users of different
    /// schemas do not wait for each other, and a collision only makes two
    /// schemas share a lock.
    pub fn lock_key(&self) -> i32 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self.0.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash as i32
    }
}

impl std::fmt::Display for SchemaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for good in ["palaver", "p_1", "_x", &"a".repeat(20)] {
            assert!(
                SchemaName::new(good, 20, "schema").is_ok(),
                "{good:?} was refused"
            );
        }
        for bad in [
            "",
            "Palaver",
            "with space",
            "quote\"",
            "1abc",
            "pg_temp",
            "dash-ed",
            &"a".repeat(21),
        ] {
            assert!(
                matches!(
                    SchemaName::new(bad, 20, "my_schema"),
                    Err(Error::SchemaName {
                        field: "my_schema",
                        ..
                    })
                ),
                "{bad:?} was accepted"
            );
        }
        assert!(SchemaName::new(&"a".repeat(64), 100, "schema").is_err());
        let error = SchemaName::new("Bad", 20, "my_schema").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid my_schema \"Bad\": only lower-case ASCII letters, digits and _ are allowed"
        );
    }

    #[test]
    fn lock_keys_differ_by_name() {
        let name = |s| SchemaName::new(s, MAX_IDENTIFIER_LEN, "schema").unwrap();
        assert_eq!(name("palaver").lock_key(), name("palaver").lock_key());
        assert_ne!(name("palaver").lock_key(), name("palaver2").lock_key());
        assert_eq!(name("palaver").quoted(), "\"palaver\"");
    }
}
