//! Reading the read models. Every query is scoped to a workspace and takes
//! the reader's clock where the answer depends on time (a snooze that has
//! run out, a window that has closed): nothing time-dependent is frozen
//! into the tables.
//!
//! Each query is written once, in SQL both backends speak, over a
//! [`Session`]: on SQLite a pooled read-only connection (used from a
//! blocking thread, where its answers are ready at once), on PostgreSQL a
//! pooled client (see [`crate::postgres`]). Rows come back as [`Value`]s
//! and are read by the same code, so both backends give the same answers.

use std::{
    future::Future,
    path::{Path, PathBuf},
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use palaver_domain::ids::{CampaignId, ConversationId, MessageId, TimerId, WorkspaceId};
use palaver_domain::phone::{PhoneNumber, Region};
use palaver_domain::timer::TimerAction;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use crate::{
    Error, Result,
    cache::{CacheStats, Changes, InboxCache, earliest},
    error::{DatabaseError, db},
    postgres::{connect::Connector, reader::PgReader},
    sql::Value,
};

/// Most rows one inbox page may ask for.
pub const MAX_PAGE: u32 = 500;
const IDLE_READERS: usize = 64;
/// Connections a PostgreSQL reader keeps (each pipelines its queries).
const POSTGRES_READERS: usize = 8;

/// Read-only access to the read models, in a SQLite file or a PostgreSQL
/// schema. Clones share the connections.
#[derive(Clone, Debug)]
pub struct ReadModels {
    backend: Arc<Backend>,
    /// First inbox pages kept between commits ([`ReadModels::cached`]).
    inbox_cache: Option<Arc<InboxCache>>,
}

#[derive(Debug)]
enum Backend {
    Sqlite(SqliteReaders),
    Postgres(Box<PgReader>),
}

/// Read-only connections to a SQLite file, opened as needed and kept for
/// the next query.
#[derive(Debug)]
struct SqliteReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Statements SQLite had to prepare again on reuse (see
    /// [`ReadModels::reprepared_statements`]).
    reprepared: Arc<AtomicU64>,
}

/// A conversation's status as a reader sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Open,
    Snoozed,
    Closed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Snoozed => "snoozed",
            Status::Closed => "closed",
        }
    }
}

impl FromStr for Status {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "open" => Ok(Status::Open),
            "snoozed" => Ok(Status::Snoozed),
            "closed" => Ok(Status::Closed),
            other => Err(Error::InvalidArgument {
                field: "status",
                reason: format!("unknown status {other:?}"),
            }),
        }
    }
}

/// Whose conversations an inbox page lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Unassigned,
    Teammate(String),
}

/// One inbox page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxQuery {
    pub workspace_id: Uuid,
    pub status: Option<Status>,
    pub assignee: AssigneeFilter,
    /// Rows per page, 1 to [`MAX_PAGE`].
    pub limit: u32,
    /// `next_cursor` of the previous page; `None` for the first.
    pub cursor: Option<String>,
}

impl InboxQuery {
    /// The first page of a workspace's inbox, 50 rows, no filter.
    pub fn new(workspace_id: Uuid) -> Self {
        InboxQuery {
            workspace_id,
            status: None,
            assignee: AssigneeFilter::Anyone,
            limit: 50,
            cursor: None,
        }
    }
}

/// One inbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    pub conversation_id: Uuid,
    pub workspace_id: Uuid,
    pub thread_id: Uuid,
    pub channel: String,
    /// The contact the conversation stands for now (after merges).
    pub contact_id: Uuid,
    pub contact_name: String,
    pub status: Status,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub assignee: Option<String>,
    pub last_message_preview: Option<String>,
    pub last_message_kind: Option<String>,
    pub last_message_direction: Option<String>,
    pub last_activity_at: DateTime<Utc>,
    pub unread_count: u32,
    pub waiting_since: Option<DateTime<Utc>>,
    /// Whether a reply now must be a template (the 24-hour window is closed).
    pub needs_template: bool,
    pub window_closes_at: Option<DateTime<Utc>>,
    /// The window closes within the warning time and the customer's last
    /// message is unanswered (a `WindowClosingSoon` event, still current).
    pub window_closing_soon: bool,
    pub origin: String,
    pub started_at: DateTime<Utc>,
}

/// An inbox page.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    pub rows: Vec<InboxRow>,
    /// Pass back for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// One message of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub message_id: String,
    pub direction: String,
    pub kind: String,
    pub summary: String,
    pub media: Option<String>,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub author: Option<String>,
    pub wa_message_id: Option<String>,
    /// Outbound only: queued, sent, delivered, read or failed.
    pub delivery_state: Option<String>,
    pub failure_code: Option<i64>,
    pub failure_reason: Option<String>,
    pub sent_at: DateTime<Utc>,
}

/// A conversation and its messages, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    pub conversation: InboxRow,
    pub messages: Vec<TimelineEntry>,
}

/// A thread's 24-hour window, as of the query's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    pub thread_id: Uuid,
    pub workspace_id: Uuid,
    pub business_phone_number_id: String,
    pub customer_wa_id: String,
    /// The contact the customer stands for now (after merges).
    pub contact_id: Uuid,
    pub current_conversation_id: Option<Uuid>,
    pub last_customer_message_at: Option<DateTime<Utc>>,
    pub closes_at: Option<DateTime<Utc>>,
    /// Whether a free-form reply may be sent now.
    pub free_form_allowed: bool,
}

/// A durable timer whose time has come (and that had not fired when the
/// read models last heard of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    pub timer_id: TimerId,
    /// The workspace its action runs in.
    pub workspace_id: WorkspaceId,
    pub due_at: DateTime<Utc>,
    pub action: TimerAction,
}

/// A contact as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactView {
    pub contact_id: Uuid,
    pub workspace_id: Uuid,
    /// `lead` or `user`.
    pub kind: String,
    pub name: String,
    /// E.164 numbers of this contact and of every contact merged into it.
    pub phone_numbers: Vec<String>,
    pub wa_id: Option<String>,
    pub external_user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: Option<DateTime<Utc>>,
    /// Contacts merged into this one, directly or through others.
    pub merged_from: Vec<Uuid>,
}

impl ReadModels {
    /// Reads the read-model SQLite file at `path` (connections open lazily).
    pub fn open(path: impl AsRef<Path>) -> Self {
        ReadModels {
            backend: Arc::new(Backend::Sqlite(SqliteReaders {
                path: path.as_ref().to_owned(),
                idle: Mutex::new(Vec::new()),
                reprepared: Arc::default(),
            })),
            inbox_cache: None,
        }
    }

    /// These readers, keeping first inbox pages until the next commit that
    /// `changes` counts (see [`crate::cache`]). Only for SQLite read models
    /// that this process alone writes, with `changes` from the
    /// [`crate::Projections`] writing them; PostgreSQL read models may be
    /// written by another instance and are returned as they are.
    pub fn cached(self, changes: Changes) -> Self {
        match &*self.backend {
            Backend::Sqlite(_) => ReadModels {
                inbox_cache: Some(Arc::new(InboxCache::new(changes))),
                ..self
            },
            Backend::Postgres(_) => self,
        }
    }

    /// How often first inbox pages came from the cache (zeros for readers
    /// that do not cache).
    pub fn inbox_cache_stats(&self) -> CacheStats {
        self.inbox_cache
            .as_deref()
            .map(InboxCache::stats)
            .unwrap_or_default()
    }

    /// How many times SQLite prepared a cached query statement again when
    /// it was reused (always 0 on PostgreSQL). Each time costs a parse and
    /// a plan; readers turn on SQLite's stable query plans so that this
    /// stays 0, which the tests check.
    pub fn reprepared_statements(&self) -> u64 {
        match &*self.backend {
            Backend::Sqlite(readers) => readers.reprepared.load(Ordering::Relaxed),
            Backend::Postgres(_) => 0,
        }
    }

    /// Reads the read models in PostgreSQL schema `schema` of the database
    /// at `url` (connections open lazily). Fails only on a malformed URL or
    /// schema name.
    pub fn open_postgres(url: &str, schema: &str) -> Result<Self> {
        let connector = Connector::new(url, schema)?;
        Ok(ReadModels {
            backend: Arc::new(Backend::Postgres(Box::new(PgReader::new(
                connector,
                POSTGRES_READERS,
            )))),
            inbox_cache: None,
        })
    }

    /// A page of a workspace's inbox, most recent activity first. A first
    /// page from the cache is shared, not copied.
    pub async fn inbox(&self, query: InboxQuery, now: DateTime<Utc>) -> Result<Arc<InboxPage>> {
        if query.limit == 0 || query.limit > MAX_PAGE {
            return Err(Error::InvalidArgument {
                field: "limit",
                reason: format!("must be 1 to {MAX_PAGE}"),
            });
        }
        let cursor = query.cursor.as_deref().map(parse_cursor).transpose()?;
        let miss = match self.inbox_cache.as_deref().map(|cache| cache.get(&query, now)) {
            Some(Ok(page)) => return Ok(page),
            Some(Err(miss)) => miss,
            None => None,
        };
        match &*self.backend {
            Backend::Sqlite(readers) => {
                let keep = miss.is_some();
                let (page, until) = readers
                    .read(move |s| {
                        let (page, mut until) = complete_now(inbox_page(s, &query, cursor, now))?;
                        // A snooze running out elsewhere in the workspace
                        // moves a conversation into or out of an open or
                        // snoozed page.
                        if keep && matches!(query.status, Some(Status::Open | Status::Snoozed)) {
                            until =
                                earliest(until, complete_now(next_snooze_end(s, query.workspace_id, now))?);
                        }
                        Ok((page, until))
                    })
                    .await?;
                let page = Arc::new(page);
                if let (Some(cache), Some(miss)) = (&self.inbox_cache, miss) {
                    cache.keep(miss, &page, now, until);
                }
                Ok(page)
            }
            Backend::Postgres(reader) => Ok(Arc::new(
                inbox_page(&mut reader.session().await?, &query, cursor, now)
                    .await?
                    .0,
            )),
        }
    }

    /// A conversation with its timeline, if it belongs to the workspace.
    pub async fn conversation(
        &self,
        workspace_id: Uuid,
        conversation_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<ConversationView>> {
        match &*self.backend {
            Backend::Sqlite(readers) => {
                readers
                    .read(move |s| complete_now(conversation_view(s, workspace_id, conversation_id, now)))
                    .await
            }
            Backend::Postgres(reader) => {
                conversation_view(&mut reader.session().await?, workspace_id, conversation_id, now).await
            }
        }
    }

    /// A thread's window state as of `now`, if the thread is the workspace's.
    pub async fn window(
        &self,
        workspace_id: Uuid,
        thread_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<WindowState>> {
        match &*self.backend {
            Backend::Sqlite(readers) => {
                readers
                    .read(move |s| complete_now(window_state(s, workspace_id, thread_id, now)))
                    .await
            }
            Backend::Postgres(reader) => {
                window_state(&mut reader.session().await?, workspace_id, thread_id, now).await
            }
        }
    }

    /// The contact as it stands now: a merged contact resolves to its survivor.
    pub async fn contact(&self, workspace_id: Uuid, contact_id: Uuid) -> Result<Option<ContactView>> {
        match &*self.backend {
            Backend::Sqlite(readers) => {
                readers
                    .read(move |s| complete_now(contact(s, workspace_id, contact_id)))
                    .await
            }
            Backend::Postgres(reader) => {
                contact(&mut reader.session().await?, workspace_id, contact_id).await
            }
        }
    }

    /// Contacts (as they stand now) with this phone number, written in any
    /// format; national numbers are read in `default_region`. Most recently
    /// active first.
    pub async fn contacts_by_phone(
        &self,
        workspace_id: Uuid,
        phone: &str,
        default_region: Option<Region>,
    ) -> Result<Vec<ContactView>> {
        let number = PhoneNumber::parse(phone, default_region).map_err(|e| Error::InvalidArgument {
            field: "phone",
            reason: e.to_string(),
        })?;
        let e164 = number.as_e164().to_owned();
        match &*self.backend {
            Backend::Sqlite(readers) => {
                readers
                    .read(move |s| complete_now(contacts_with_phone(s, workspace_id, e164)))
                    .await
            }
            Backend::Postgres(reader) => {
                contacts_with_phone(&mut reader.session().await?, workspace_id, e164).await
            }
        }
    }

    /// The workspace a stream belongs to, once the read models know it.
    pub async fn stream_owner(&self, stream: &str) -> Result<Option<Uuid>> {
        let stream = stream.to_owned();
        match &*self.backend {
            Backend::Sqlite(readers) => readers.read(move |s| complete_now(stream_owner(s, stream))).await,
            Backend::Postgres(reader) => stream_owner(&mut reader.session().await?, stream).await,
        }
    }

    /// Pending timers due at `now` or before, most overdue first, at most
    /// `limit`. A timer that fired moments ago may still be listed until
    /// the read models take its `TimerFired`.
    pub async fn due_timers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueTimer>> {
        match &*self.backend {
            Backend::Sqlite(readers) => {
                readers
                    .read(move |s| complete_now(due_timers(s, now, limit)))
                    .await
            }
            Backend::Postgres(reader) => due_timers(&mut reader.session().await?, now, limit).await,
        }
    }

    /// The workspace's contact (as it stands now) with this WhatsApp id.
    pub async fn contact_by_wa_id(&self, workspace_id: Uuid, wa_id: &str) -> Result<Option<ContactView>> {
        let wa_id = wa_id.to_owned();
        match &*self.backend {
            Backend::Sqlite(readers) => {
                readers
                    .read(move |s| complete_now(contact_by_wa_id(s, workspace_id, wa_id)))
                    .await
            }
            Backend::Postgres(reader) => {
                contact_by_wa_id(&mut reader.session().await?, workspace_id, wa_id).await
            }
        }
    }
}

/// One reader's connection: what the queries below are written against.
pub(crate) trait Session {
    /// Runs `sql` (with `?1`-style placeholders, in SQL both backends
    /// speak) and returns its rows; `what` names it in errors.
    fn rows(
        &mut self,
        what: &'static str,
        sql: &'static str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>>> + Send;
}

/// A pooled read-only SQLite connection, and where it counts statements
/// prepared again.
struct SqliteSession<'c> {
    conn: &'c Connection,
    reprepared: &'c AtomicU64,
}

impl Session for SqliteSession<'_> {
    /// Runs at once: the returned future is ready.
    fn rows(
        &mut self,
        what: &'static str,
        sql: &'static str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>>> + Send {
        let rows = (|| -> rusqlite::Result<Vec<Vec<Value>>> {
            let mut statement = self.conn.prepare_cached(sql)?;
            let columns = statement.column_count();
            let mut rows = statement.query(rusqlite::params_from_iter(params.iter()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(sqlite_values(row, columns)?);
            }
            drop(rows);
            let again = statement.reset_status(rusqlite::StatementStatus::RePrepare);
            if again > 0 {
                self.reprepared.fetch_add(again as u64, Ordering::Relaxed);
                tracing::debug!(what, sql, "a read-model statement was prepared again");
            }
            Ok(out)
        })()
        .map_err(db::<rusqlite::Error>(what));
        std::future::ready(rows)
    }
}

fn sqlite_values(row: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<Vec<Value>> {
    use rusqlite::types::ValueRef;
    (0..columns)
        .map(|i| {
            Ok(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(r) => Value::Real(r),
                ValueRef::Text(t) => Value::Text(std::str::from_utf8(t)?.to_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            })
        })
        .collect()
}

/// Turns on SQLite's query planner stability guarantee for a reader: its
/// plans no longer depend on the values bound to a statement. Without it,
/// a statement whose plan looked at a bound value (a LIMIT, a parameter in
/// a join) is expired each time it goes back to the statement cache and is
/// parsed and planned anew on every use; under inbox load that was half
/// the server's time. Our queries are written for their indexes, so the
/// value-independent plan is the one we want anyway.
fn stable_plans(conn: &Connection) -> Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(drop)
        .map_err(db::<rusqlite::Error>("turning on stable query plans"))
}

/// Finishes a query on a [`SqliteSession`], whose answers are all ready
/// at once: one poll runs it to the end.
fn complete_now<T>(query: impl Future<Output = Result<T>>) -> Result<T> {
    query
        .now_or_never()
        .unwrap_or_else(|| Err(Error::Stopped("a SQLite query waited on something".to_owned())))
}

impl SqliteReaders {
    /// Runs `read` on a blocking thread with a pooled connection.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut SqliteSession<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let path = self.path.clone();
        let reprepared = Arc::clone(&self.reprepared);
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(db::<rusqlite::Error>("opening a read-model reader"))?;
                    conn.busy_timeout(std::time::Duration::from_secs(5))
                        .map_err(db::<rusqlite::Error>("setting the busy timeout"))?;
                    stable_plans(&conn)?;
                    conn
                }
            };
            let result = read(&mut SqliteSession {
                conn: &conn,
                reprepared: &reprepared,
            });
            Ok::<_, Error>((conn, result))
        })
        .await
        .map_err(|e| Error::Stopped(format!("a query task failed: {e}")))??;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

fn micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

/// A value of the wrong kind in a result column.
fn unexpected(column: usize, wanted: &str, found: &Value) -> Error {
    Error::Database {
        what: "reading a row",
        source: DatabaseError::Unexpected(format!("column {column} holds {found:?}, not {wanted}")),
    }
}

fn text(row: &[Value], i: usize) -> Result<String> {
    match &row[i] {
        Value::Text(text) => Ok(text.clone()),
        other => Err(unexpected(i, "text", other)),
    }
}

fn opt_text(row: &[Value], i: usize) -> Result<Option<String>> {
    match &row[i] {
        Value::Null => Ok(None),
        _ => text(row, i).map(Some),
    }
}

fn int(row: &[Value], i: usize) -> Result<i64> {
    match &row[i] {
        Value::Integer(value) => Ok(*value),
        other => Err(unexpected(i, "an integer", other)),
    }
}

fn opt_int(row: &[Value], i: usize) -> Result<Option<i64>> {
    match &row[i] {
        Value::Null => Ok(None),
        _ => int(row, i).map(Some),
    }
}

fn time(row: &[Value], i: usize) -> Result<DateTime<Utc>> {
    int(row, i).map(micros)
}

fn opt_time(row: &[Value], i: usize) -> Result<Option<DateTime<Utc>>> {
    Ok(opt_int(row, i)?.map(micros))
}

fn id(row: &[Value], i: usize) -> Result<Uuid> {
    let text = text(row, i)?;
    Uuid::parse_str(&text).map_err(|_| unexpected(i, "a UUID", &row[i]))
}

fn opt_id(row: &[Value], i: usize) -> Result<Option<Uuid>> {
    match &row[i] {
        Value::Null => Ok(None),
        _ => id(row, i).map(Some),
    }
}

/// The inbox columns, joined with what a row shows of its contact and
/// window; `?1` is the reader's clock. A macro, so the queries built on it
/// stay `'static` strings (prepared once per connection).
macro_rules! inbox_select {
    () => {
        "SELECT i.conversation_id, i.workspace_id, i.thread_id, i.channel, \
         COALESCE(c.survivor_id, i.contact_id), COALESCE(s.name, ''), \
         CASE WHEN i.status = 'snoozed' AND i.snoozed_until <= ?1 THEN 'open' ELSE i.status END, \
         i.snoozed_until, i.assignee, i.last_message_preview, i.last_message_kind, i.last_message_direction, \
         i.last_activity_at, i.unread_count, i.waiting_since, w.window_closes_at, i.origin, i.started_at, \
         i.window_warning_closes_at \
         FROM inbox i \
         LEFT JOIN contacts c ON c.contact_id = i.contact_id \
         LEFT JOIN contacts s ON s.contact_id = c.survivor_id \
         LEFT JOIN window_state w ON w.thread_id = i.thread_id"
    };
}

/// `?3` (status), `?6` and `?7` (the cursor) may be NULL: cast, so
/// PostgreSQL knows their types where only `IS NULL` looks at them. The
/// limit `?8` is cast too: SQLite re-prepares a statement whose bare
/// `LIMIT ?` parameter is bound to a new value.
const INBOX_PAGE: &str = concat!(
    inbox_select!(),
    " WHERE i.workspace_id = ?2 \
     AND (CAST(?3 AS TEXT) IS NULL OR (CASE WHEN i.status = 'snoozed' AND i.snoozed_until <= ?1 THEN 'open' \
          ELSE i.status END) = CAST(?3 AS TEXT)) \
     AND (?4 = 'anyone' OR (?4 = 'unassigned' AND i.assignee IS NULL) OR i.assignee = ?5) \
     AND (CAST(?6 AS BIGINT) IS NULL OR i.last_activity_at < ?6 \
          OR (i.last_activity_at = ?6 AND i.conversation_id < ?7)) \
     ORDER BY i.last_activity_at DESC, i.conversation_id DESC LIMIT CAST(?8 AS BIGINT)"
);

const CONVERSATION: &str = concat!(
    inbox_select!(),
    " WHERE i.conversation_id = ?2 AND i.workspace_id = ?3"
);

fn inbox_row(row: &[Value], now: DateTime<Utc>) -> Result<InboxRow> {
    let status = text(row, 6)?;
    let closes = opt_int(row, 15)?;
    let unread = int(row, 13)?;
    Ok(InboxRow {
        conversation_id: id(row, 0)?,
        workspace_id: opt_text(row, 1)?
            .and_then(|text| Uuid::parse_str(&text).ok())
            .unwrap_or_default(),
        thread_id: id(row, 2)?,
        channel: text(row, 3)?,
        contact_id: id(row, 4)?,
        contact_name: text(row, 5)?,
        status: status.parse().unwrap_or(Status::Open),
        snoozed_until: opt_time(row, 7)?,
        assignee: opt_text(row, 8)?,
        last_message_preview: opt_text(row, 9)?,
        last_message_kind: opt_text(row, 10)?,
        last_message_direction: opt_text(row, 11)?,
        last_activity_at: time(row, 12)?,
        unread_count: u32::try_from(unread).map_err(|_| unexpected(13, "an unread count", &row[13]))?,
        waiting_since: opt_time(row, 14)?,
        needs_template: closes.is_none_or(|closes| closes <= now.timestamp_micros()),
        window_closes_at: closes.map(micros),
        origin: text(row, 16)?,
        started_at: time(row, 17)?,
        window_closing_soon: opt_int(row, 18)?.is_some_and(|closes| closes > now.timestamp_micros()),
    })
}

fn parse_cursor(cursor: &str) -> Result<(i64, String)> {
    let bad = || Error::InvalidArgument {
        field: "cursor",
        reason: format!("{cursor:?} is not a cursor from this API"),
    };
    let (at, id) = cursor.split_once('_').ok_or_else(bad)?;
    let at = at.parse::<i64>().map_err(|_| bad())?;
    Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id.to_owned()))
}

/// A page of the inbox, and the first time after `now` at which the clock
/// alone would change one of its rows (`None`: never).
async fn inbox_page(
    s: &mut impl Session,
    query: &InboxQuery,
    cursor: Option<(i64, String)>,
    now: DateTime<Utc>,
) -> Result<(InboxPage, Option<i64>)> {
    let (assignee_filter, teammate) = match &query.assignee {
        AssigneeFilter::Anyone => ("anyone", None),
        AssigneeFilter::Unassigned => ("unassigned", None),
        AssigneeFilter::Teammate(id) => ("teammate", Some(id.clone())),
    };
    let (cursor_at, cursor_id) = cursor.unzip();
    let rows = s
        .rows(
            "reading the inbox",
            INBOX_PAGE,
            vec![
                now.into(),
                query.workspace_id.into(),
                query.status.map(Status::as_str).into(),
                assignee_filter.into(),
                teammate.into(),
                cursor_at.into(),
                cursor_id.into(),
                (i64::from(query.limit) + 1).into(),
            ],
        )
        .await?;
    let mut until = None;
    for row in &rows {
        until = earliest(until, row_changes_at(row, now)?);
    }
    let mut rows = rows
        .iter()
        .map(|row| inbox_row(row, now))
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if rows.len() > query.limit as usize {
        rows.truncate(query.limit as usize);
        rows.last().map(|last| {
            format!(
                "{}_{}",
                last.last_activity_at.timestamp_micros(),
                last.conversation_id
            )
        })
    } else {
        None
    };
    Ok((InboxPage { rows, next_cursor }, until))
}

/// The first time after `now` at which [`inbox_row`] would read `row`
/// differently: its snooze runs out, its window closes, or its
/// closing-soon warning lapses.
fn row_changes_at(row: &[Value], now: DateTime<Utc>) -> Result<Option<i64>> {
    let now = now.timestamp_micros();
    let snooze_ends = if text(row, 6)? == Status::Snoozed.as_str() {
        opt_int(row, 7)?
    } else {
        None
    };
    Ok([snooze_ends, opt_int(row, 15)?, opt_int(row, 18)?]
        .into_iter()
        .flatten()
        .filter(|at| *at > now)
        .min())
}

/// The first snooze in the workspace to run out after `now`.
async fn next_snooze_end(
    s: &mut impl Session,
    workspace_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let rows = s
        .rows(
            "reading the next snooze to run out",
            "SELECT MIN(snoozed_until) FROM inbox \
             WHERE workspace_id = ?1 AND status = 'snoozed' AND snoozed_until > ?2",
            vec![workspace_id.into(), now.into()],
        )
        .await?;
    rows.first().map_or(Ok(None), |row| opt_int(row, 0))
}

async fn conversation_view(
    s: &mut impl Session,
    workspace_id: Uuid,
    conversation_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<ConversationView>> {
    let rows = s
        .rows(
            "reading a conversation",
            CONVERSATION,
            vec![now.into(), conversation_id.into(), workspace_id.into()],
        )
        .await?;
    let Some(conversation) = rows.first().map(|row| inbox_row(row, now)).transpose()? else {
        return Ok(None);
    };
    let messages = s
        .rows(
            "reading the timeline",
            "SELECT message_id, direction, kind, summary, media, mime_type, file_name, author, wa_message_id, \
             delivery_state, failure_code, failure_reason, sent_at FROM timeline \
             WHERE conversation_id = ?1 ORDER BY sent_at, position",
            vec![conversation_id.into()],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(TimelineEntry {
                message_id: text(row, 0)?,
                direction: text(row, 1)?,
                kind: text(row, 2)?,
                summary: text(row, 3)?,
                media: opt_text(row, 4)?,
                mime_type: opt_text(row, 5)?,
                file_name: opt_text(row, 6)?,
                author: opt_text(row, 7)?,
                wa_message_id: opt_text(row, 8)?,
                delivery_state: opt_text(row, 9)?,
                failure_code: opt_int(row, 10)?,
                failure_reason: opt_text(row, 11)?,
                sent_at: time(row, 12)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ConversationView {
        conversation,
        messages,
    }))
}

async fn window_state(
    s: &mut impl Session,
    workspace_id: Uuid,
    thread_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<WindowState>> {
    let rows = s
        .rows(
            "reading a window",
            "SELECT w.thread_id, w.workspace_id, w.business_phone_number_id, w.customer_wa_id, \
             COALESCE(c.survivor_id, w.contact_id), w.current_conversation_id, w.last_customer_message_at, \
             w.window_closes_at FROM window_state w LEFT JOIN contacts c ON c.contact_id = w.contact_id \
             WHERE w.thread_id = ?1 AND w.workspace_id = ?2",
            vec![thread_id.into(), workspace_id.into()],
        )
        .await?;
    rows.first()
        .map(|row| {
            let closes = opt_int(row, 7)?;
            Ok(WindowState {
                thread_id: id(row, 0)?,
                workspace_id: id(row, 1)?,
                business_phone_number_id: text(row, 2)?,
                customer_wa_id: text(row, 3)?,
                contact_id: id(row, 4)?,
                current_conversation_id: opt_id(row, 5)?,
                last_customer_message_at: opt_time(row, 6)?,
                closes_at: closes.map(micros),
                free_form_allowed: closes.is_some_and(|closes| now.timestamp_micros() < closes),
            })
        })
        .transpose()
}

async fn contact(s: &mut impl Session, workspace_id: Uuid, contact_id: Uuid) -> Result<Option<ContactView>> {
    let rows = s
        .rows(
            "resolving a contact",
            "SELECT survivor_id FROM contacts WHERE contact_id = ?1 AND workspace_id = ?2",
            vec![contact_id.into(), workspace_id.into()],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(contact_view(s, text(row, 0)?).await?)),
        None => Ok(None),
    }
}

async fn contacts_with_phone(
    s: &mut impl Session,
    workspace_id: Uuid,
    e164: String,
) -> Result<Vec<ContactView>> {
    let survivors = s
        .rows(
            "looking up a phone number",
            "SELECT DISTINCT c.survivor_id FROM contact_phones p JOIN contacts c ON c.contact_id = p.contact_id \
             WHERE p.phone_e164 = ?1 AND c.workspace_id = ?2",
            vec![e164.into(), workspace_id.into()],
        )
        .await?;
    let mut views = Vec::with_capacity(survivors.len());
    for row in &survivors {
        views.push(contact_view(s, text(row, 0)?).await?);
    }
    views.sort_by(|a, b| {
        b.last_active_at
            .cmp(&a.last_active_at)
            .then(a.contact_id.cmp(&b.contact_id))
    });
    Ok(views)
}

async fn stream_owner(s: &mut impl Session, stream: String) -> Result<Option<Uuid>> {
    let rows = s
        .rows(
            "looking up a stream's owner",
            "SELECT workspace_id FROM stream_owners WHERE stream = ?1",
            vec![stream.into()],
        )
        .await?;
    Ok(match rows.first() {
        Some(row) => Uuid::parse_str(&text(row, 0)?).ok(),
        None => None,
    })
}

async fn due_timers(s: &mut impl Session, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueTimer>> {
    s.rows(
        "reading due timers",
        "SELECT timer_id, workspace_id, due_at, action, subject_id, message_id, action_at \
         FROM pending_timers WHERE due_at <= ?1 ORDER BY due_at, timer_id LIMIT CAST(?2 AS BIGINT)",
        vec![now.into(), i64::from(limit).into()],
    )
    .await?
    .iter()
    .map(|row| due_timer(row))
    .collect()
}

async fn contact_by_wa_id(
    s: &mut impl Session,
    workspace_id: Uuid,
    wa_id: String,
) -> Result<Option<ContactView>> {
    let rows = s
        .rows(
            "looking up a WhatsApp id",
            "SELECT survivor_id FROM contacts WHERE workspace_id = ?1 AND wa_id = ?2 ORDER BY created_at LIMIT 1",
            vec![workspace_id.into(), wa_id.into()],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(contact_view(s, text(row, 0)?).await?)),
        None => Ok(None),
    }
}

fn due_timer(row: &[Value]) -> Result<DueTimer> {
    let name = text(row, 3)?;
    let subject = id(row, 4)?;
    let message = opt_id(row, 5)?;
    let at = opt_time(row, 6)?;
    let corrupt = |what: &str| Error::Database {
        what: "reading due timers",
        source: DatabaseError::Unexpected(format!("timer action {name:?}: {what}")),
    };
    let action = match name.as_str() {
        "launch_campaign" => TimerAction::LaunchCampaign {
            campaign_id: CampaignId::from_uuid(subject),
        },
        "wake_conversation" => TimerAction::WakeConversation {
            conversation_id: ConversationId::from_uuid(subject),
            until: at.ok_or_else(|| corrupt("no snooze end"))?,
        },
        "warn_window_closing" => TimerAction::WarnWindowClosing {
            conversation_id: ConversationId::from_uuid(subject),
            closes_at: at.ok_or_else(|| corrupt("no window close"))?,
        },
        "expire_uncertain_send" => TimerAction::ExpireUncertainSend {
            conversation_id: ConversationId::from_uuid(subject),
            message_id: MessageId::from_uuid(message.ok_or_else(|| corrupt("no message"))?),
        },
        _ => return Err(corrupt("unknown")),
    };
    Ok(DueTimer {
        timer_id: TimerId::from_uuid(id(row, 0)?),
        workspace_id: WorkspaceId::from_uuid(id(row, 1)?),
        due_at: time(row, 2)?,
        action,
    })
}

async fn contact_view(s: &mut impl Session, contact_id: String) -> Result<ContactView> {
    let rows = s
        .rows(
            "reading a contact",
            "SELECT contact_id, workspace_id, kind, name, wa_id, external_user_id, created_at, \
             (SELECT MAX(last_active_at) FROM contacts m WHERE m.survivor_id = c.contact_id) \
             FROM contacts c WHERE contact_id = ?1",
            vec![contact_id.as_str().into()],
        )
        .await?;
    let row = rows.first().ok_or_else(|| Error::Database {
        what: "reading a contact",
        source: DatabaseError::Unexpected(format!("survivor {contact_id} has no row")),
    })?;
    let mut view = ContactView {
        contact_id: id(row, 0)?,
        workspace_id: id(row, 1)?,
        kind: text(row, 2)?,
        name: text(row, 3)?,
        phone_numbers: Vec::new(),
        wa_id: opt_text(row, 4)?,
        external_user_id: opt_text(row, 5)?,
        created_at: time(row, 6)?,
        last_active_at: opt_time(row, 7)?,
        merged_from: Vec::new(),
    };
    view.phone_numbers = s
        .rows(
            "reading a contact's phones",
            "SELECT DISTINCT p.phone_e164 FROM contact_phones p JOIN contacts c ON c.contact_id = p.contact_id \
             WHERE c.survivor_id = ?1 ORDER BY p.phone_e164",
            vec![contact_id.as_str().into()],
        )
        .await?
        .iter()
        .map(|row| text(row, 0))
        .collect::<Result<_>>()?;
    view.merged_from = s
        .rows(
            "reading a contact's merges",
            "SELECT contact_id FROM contacts WHERE survivor_id = ?1 AND contact_id <> ?1 ORDER BY contact_id",
            vec![contact_id.as_str().into()],
        )
        .await?
        .iter()
        .map(|row| id(row, 0))
        .collect::<Result<_>>()?;
    Ok(view)
}
