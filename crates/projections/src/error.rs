//! The errors of read models and their projectors.

use palaver_store::Position;

/// Result of a read-model operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while projecting or querying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A projector met an event it cannot read. It stopped before the event
    /// and its checkpoint did not move past it. Upgrade Palaver (a newer
    /// version wrote the event) or report the corrupt event.
    #[error("projector {projector} cannot read event {event_type} at position {position}: {reason}")]
    Undecodable {
        projector: &'static str,
        position: Position,
        event_type: String,
        reason: String,
    },

    /// The read model has not reached the position the caller asked for in
    /// time. Retry the query later, or without a minimum position.
    #[error("read models reached position {reached}, not {wanted}, in time")]
    NotCaughtUp { wanted: Position, reached: Position },

    /// The projection loop has stopped (after an error, or at shutdown).
    #[error("projections stopped: {0}")]
    Stopped(String),

    /// A query argument is not acceptable (a bad cursor, a limit of 0).
    /// Fix the caller.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// The read-model database (a SQLite file, or a PostgreSQL schema) was
    /// written by a newer Palaver. Upgrade.
    #[error("{path} was written by a newer Palaver (schema {found}, this one knows {supported})")]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },

    /// The event store failed.
    #[error(transparent)]
    Store(#[from] palaver_store::Error),

    /// The read-model database failed. Retrying may help.
    #[error("read-model database failed while {what}: {source}")]
    Database {
        what: &'static str,
        #[source]
        source: DatabaseError,
    },
}

/// What the read-model database said, whichever backend it is.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The SQLite file failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server failed, or the connection to it.
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A row did not hold what the query expects: a table changed behind
    /// Palaver's back, or damaged. Rebuild the read models.
    #[error("{0}")]
    Unexpected(String),
}

/// The driver's own text is only "db error": the server's message is in
/// its source.
fn postgres_message(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// Wraps a database error with what was being done.
pub(crate) fn db<E: Into<DatabaseError>>(what: &'static str) -> impl Fn(E) -> Error {
    move |source| Error::Database {
        what,
        source: source.into(),
    }
}
