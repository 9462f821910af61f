//! [`Value`]s to and from PostgreSQL: parameters are encoded for the type
//! PostgreSQL inferred for them when the statement was prepared, and result
//! columns are read back as the same few kinds SQLite has.

use bytes::BytesMut;
use tokio_postgres::{
    Row,
    types::{IsNull, ToSql, Type, to_sql_checked},
};

use crate::{Result, error::DatabaseError, sql::Value};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value {
    /// A NULL fits any type. Otherwise integers go to `BIGINT` (or a
    /// smaller integer when they fit, or `BOOLEAN` as 0/1), reals to
    /// `DOUBLE PRECISION`, text to `TEXT`/`VARCHAR`, blobs to `BYTEA`; any
    /// other pairing is refused with the value and the type named, which
    /// means a statement needs a `CAST`.
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                t.as_str().to_sql(ty, out)
            }
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (value, ty) => Err(format!(
                "a {} parameter cannot be passed as PostgreSQL {ty} (cast it in the SQL)",
                kind(value)
            )
            .into()),
        }
    }

    /// Every type: whether the value fits is decided per value, above.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

/// A result row as [`Value`]s, column by column.
pub(crate) fn row_values(row: &Row) -> Result<Vec<Value>, DatabaseError> {
    let read = |i: usize| -> Result<Value, tokio_postgres::Error> {
        let ty = row.columns()[i].type_();
        Ok(match *ty {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)?
                .map_or(Value::Null, Value::Integer),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)?
                .map_or(Value::Null, |v| Value::Integer(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)?
                .map_or(Value::Null, |v| Value::Integer(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)?
                .map_or(Value::Null, |v| Value::Integer(v.into())),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map_or(Value::Null, Value::Real),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(i)?
                .map_or(Value::Null, |v| Value::Real(v.into())),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(i)?
                .map_or(Value::Null, Value::Blob),
            // Text, and whatever else reads as text (names, varchar).
            _ => row
                .try_get::<_, Option<String>>(i)?
                .map_or(Value::Null, Value::Text),
        })
    };
    (0..row.len())
        .map(|i| {
            read(i).map_err(|e| {
                DatabaseError::Unexpected(format!(
                    "column {} ({}) cannot be read: {e}",
                    row.columns()[i].name(),
                    row.columns()[i].type_()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value, ty: &Type) -> Result<Option<Vec<u8>>, BoxError> {
        let mut out = BytesMut::new();
        Ok(match value.to_sql_checked(ty, &mut out)? {
            IsNull::Yes => None,
            IsNull::No => Some(out.to_vec()),
        })
    }

    #[test]
    fn values_encode_for_the_inferred_type() {
        assert_eq!(
            encode(&Value::Integer(-2), &Type::INT8).unwrap(),
            Some((-2i64).to_be_bytes().to_vec())
        );
        assert_eq!(
            encode(&Value::Integer(7), &Type::INT4).unwrap(),
            Some(7i32.to_be_bytes().to_vec())
        );
        assert_eq!(encode(&Value::Integer(1), &Type::BOOL).unwrap(), Some(vec![1]));
        assert_eq!(
            encode(&Value::Text("é".into()), &Type::TEXT).unwrap(),
            Some("é".as_bytes().to_vec())
        );
        assert_eq!(
            encode(&Value::Blob(vec![0, 255]), &Type::BYTEA).unwrap(),
            Some(vec![0, 255])
        );
        assert_eq!(
            encode(&Value::Real(0.5), &Type::FLOAT8).unwrap(),
            Some(0.5f64.to_be_bytes().to_vec())
        );
        for ty in [Type::INT8, Type::TEXT, Type::TIMESTAMPTZ, Type::UUID] {
            assert_eq!(encode(&Value::Null, &ty).unwrap(), None, "{ty}");
        }
    }

    #[test]
    fn mismatches_and_overflows_are_refused() {
        assert!(encode(&Value::Integer(1), &Type::TEXT).is_err());
        assert!(encode(&Value::Text("1".into()), &Type::INT8).is_err());
        assert!(encode(&Value::Integer(i64::from(i32::MAX) + 1), &Type::INT4).is_err());
        assert!(encode(&Value::Real(1.0), &Type::INT8).is_err());
    }
}
