//! What a projector asks of its tables: plain SQL statements with
//! positional parameters (`?1`, `?2`, …).
//!
//! Projectors never touch a connection: they turn an event into statements
//! and the runner executes them, in the same transaction as the checkpoint.
//! That keeps projectors pure (easy to test, deterministic) and lets the
//! same projector feed another SQL backend by translating placeholders.

/// One parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<chrono::DateTime<chrono::Utc>> for Value {
    /// Times are stored as microseconds since 1970 UTC.
    fn from(v: chrono::DateTime<chrono::Utc>) -> Self {
        Value::Integer(v.timestamp_micros())
    }
}
impl From<uuid::Uuid> for Value {
    /// Ids are stored as hyphenated text, readable from any SQL tool.
    fn from(v: uuid::Uuid) -> Self {
        Value::Text(v.to_string())
    }
}

/// One SQL statement and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// SQL with `?1`-style placeholders. A `'static` string, so runners can
    /// cache the prepared statement.
    pub sql: &'static str,
    pub params: Vec<Value>,
}

impl Statement {
    pub fn new(sql: &'static str, params: Vec<Value>) -> Self {
        Statement { sql, params }
    }
}

/// Builds a [`Statement`]: `stmt!("UPDATE t SET a = ?1", a)`.
#[macro_export]
macro_rules! stmt {
    ($sql:expr $(, $param:expr)* $(,)?) => {
        $crate::sql::Statement::new($sql, vec![$($crate::sql::Value::from($param)),*])
    };
}
