//! The [`Projector`] trait: how one read model folds events into tables.

use palaver_domain::codec::DomainEvent;
use palaver_store::RecordedEvent;

use crate::sql::Statement;

/// Why a projector could not take an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectError(pub String);

/// A read model: tables, and how each event changes them.
///
/// A projector is pure: it turns an event into SQL statements and never
/// reads its tables itself (anything that depends on current rows is said
/// in SQL: `unread = unread + 1`, `COALESCE(waiting_since, ?1)`). The runner
/// executes the statements and moves the projector's checkpoint in one
/// transaction, so an event is applied exactly once even across crashes.
///
/// The same statements run on SQLite and on PostgreSQL, with only the
/// placeholders translated (`?1` becomes `$1`): write them in the SQL both
/// speak (`CASE WHEN` rather than SQLite's two-argument `MAX`/`MIN`,
/// `ON CONFLICT … DO NOTHING` rather than `INSERT OR IGNORE`), and cast a
/// parameter whose type PostgreSQL cannot infer from its use
/// (`CAST(?3 AS TEXT) IS NULL`). See `docs/adr/0007-postgres-read-models.md`.
pub trait Projector: Send + Sync + 'static {
    /// Unique, stable name; keys the checkpoint.
    fn name(&self) -> &'static str;

    /// Version of the tables' shape and of the folding rules. Bump it on
    /// any change: a stored read model of another version is rebuilt.
    fn version(&self) -> u32;

    /// `CREATE TABLE` / `CREATE INDEX` statements for a fresh SQLite database.
    fn schema(&self) -> &'static str;

    /// The same tables for PostgreSQL: the same names, columns and meanings,
    /// with PostgreSQL's types (`BIGINT` for integers and times). Unqualified:
    /// they are created in the read models' schema. The default is
    /// [`Projector::schema`], for a projector whose DDL both speak.
    fn postgres_schema(&self) -> &'static str {
        self.schema()
    }

    /// Tables the projector owns, in the order they are created.
    fn tables(&self) -> &'static [&'static str];

    /// Event types the projector reads. Others are skipped undecoded, but
    /// still move the checkpoint.
    fn event_types(&self) -> &'static [&'static str];

    /// Appends the statements that fold `event` (stored as `recorded`) into
    /// the tables. The runner decodes each event once for all projectors.
    fn project(
        &self,
        recorded: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError>;
}
