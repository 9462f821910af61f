//! Reading the read models. Every query is scoped to a workspace and takes
//! the reader's clock where the answer depends on time (a snooze that has
//! run out, a window that has closed): nothing time-dependent is frozen
//! into the tables.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use palaver_domain::ids::{CampaignId, ConversationId, MessageId, TimerId, WorkspaceId};
use palaver_domain::phone::{PhoneNumber, Region};
use palaver_domain::timer::TimerAction;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{Error, Result, error::db};

/// Most rows one inbox page may ask for.
pub const MAX_PAGE: u32 = 500;
const IDLE_READERS: usize = 64;

/// Read-only access to a read-model database. Clones share a connection pool.
#[derive(Clone, Debug)]
pub struct ReadModels {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// A conversation's status as a reader sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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

fn micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

fn uuid(text: String) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

const INBOX_COLUMNS: &str = "i.conversation_id, i.workspace_id, i.thread_id, i.channel, \
     COALESCE(c.survivor_id, i.contact_id), COALESCE(s.name, ''), \
     CASE WHEN i.status = 'snoozed' AND i.snoozed_until <= ?1 THEN 'open' ELSE i.status END, \
     i.snoozed_until, i.assignee, i.last_message_preview, i.last_message_kind, i.last_message_direction, \
     i.last_activity_at, i.unread_count, i.waiting_since, w.window_closes_at, i.origin, i.started_at, \
     i.window_warning_closes_at \
     FROM inbox i \
     LEFT JOIN contacts c ON c.contact_id = i.contact_id \
     LEFT JOIN contacts s ON s.contact_id = c.survivor_id \
     LEFT JOIN window_state w ON w.thread_id = i.thread_id";

fn inbox_row(row: &Row<'_>, now: DateTime<Utc>) -> rusqlite::Result<InboxRow> {
    let status: String = row.get(6)?;
    let closes: Option<i64> = row.get(15)?;
    Ok(InboxRow {
        conversation_id: uuid(row.get(0)?)?,
        workspace_id: uuid(row.get::<_, Option<String>>(1)?.unwrap_or_default()).unwrap_or_default(),
        thread_id: uuid(row.get(2)?)?,
        channel: row.get(3)?,
        contact_id: uuid(row.get(4)?)?,
        contact_name: row.get(5)?,
        status: status.parse().unwrap_or(Status::Open),
        snoozed_until: row.get::<_, Option<i64>>(7)?.map(micros),
        assignee: row.get(8)?,
        last_message_preview: row.get(9)?,
        last_message_kind: row.get(10)?,
        last_message_direction: row.get(11)?,
        last_activity_at: micros(row.get(12)?),
        unread_count: row.get(13)?,
        waiting_since: row.get::<_, Option<i64>>(14)?.map(micros),
        needs_template: closes.is_none_or(|closes| closes <= now.timestamp_micros()),
        window_closes_at: closes.map(micros),
        origin: row.get(16)?,
        started_at: micros(row.get(17)?),
        window_closing_soon: row
            .get::<_, Option<i64>>(18)?
            .is_some_and(|closes| closes > now.timestamp_micros()),
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

impl ReadModels {
    /// Reads the read-model database at `path` (connections open lazily).
    pub fn open(path: impl AsRef<Path>) -> Self {
        ReadModels {
            inner: Arc::new(Inner {
                path: path.as_ref().to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(db("opening a read-model reader"))?;
                    conn.busy_timeout(std::time::Duration::from_secs(5))
                        .map_err(db("setting the busy timeout"))?;
                    conn
                }
            };
            let result = read(&conn);
            let mut idle = inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::Stopped(format!("a query task failed: {e}")))?
    }

    /// A page of a workspace's inbox, most recent activity first.
    pub async fn inbox(&self, query: InboxQuery, now: DateTime<Utc>) -> Result<InboxPage> {
        if query.limit == 0 || query.limit > MAX_PAGE {
            return Err(Error::InvalidArgument {
                field: "limit",
                reason: format!("must be 1 to {MAX_PAGE}"),
            });
        }
        let cursor = query.cursor.as_deref().map(parse_cursor).transpose()?;
        self.read(move |conn| {
            let sql = format!(
                "SELECT {INBOX_COLUMNS} WHERE i.workspace_id = ?2 \
                 AND (?3 IS NULL OR (CASE WHEN i.status = 'snoozed' AND i.snoozed_until <= ?1 THEN 'open' \
                      ELSE i.status END) = ?3) \
                 AND (?4 = 'anyone' OR (?4 = 'unassigned' AND i.assignee IS NULL) OR i.assignee = ?5) \
                 AND (?6 IS NULL OR i.last_activity_at < ?6 OR (i.last_activity_at = ?6 AND i.conversation_id < ?7)) \
                 ORDER BY i.last_activity_at DESC, i.conversation_id DESC LIMIT ?8"
            );
            let (assignee_filter, teammate) = match &query.assignee {
                AssigneeFilter::Anyone => ("anyone", None),
                AssigneeFilter::Unassigned => ("unassigned", None),
                AssigneeFilter::Teammate(id) => ("teammate", Some(id.clone())),
            };
            let mut statement = conn.prepare_cached(&sql).map_err(db("preparing the inbox query"))?;
            let rows = statement
                .query_map(
                    params![
                        now.timestamp_micros(),
                        query.workspace_id.to_string(),
                        query.status.map(Status::as_str),
                        assignee_filter,
                        teammate,
                        cursor.as_ref().map(|c| c.0),
                        cursor.as_ref().map(|c| c.1.clone()),
                        i64::from(query.limit) + 1,
                    ],
                    |row| inbox_row(row, now),
                )
                .map_err(db("reading the inbox"))?;
            let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db("reading an inbox row"))?;
            let next_cursor = if rows.len() > query.limit as usize {
                rows.truncate(query.limit as usize);
                rows.last().map(|last| format!("{}_{}", last.last_activity_at.timestamp_micros(), last.conversation_id))
            } else {
                None
            };
            Ok(InboxPage { rows, next_cursor })
        })
        .await
    }

    /// A conversation with its timeline, if it belongs to the workspace.
    pub async fn conversation(
        &self,
        workspace_id: Uuid,
        conversation_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<ConversationView>> {
        self.read(move |conn| {
            let sql = format!("SELECT {INBOX_COLUMNS} WHERE i.conversation_id = ?2 AND i.workspace_id = ?3");
            let conversation = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![now.timestamp_micros(), conversation_id.to_string(), workspace_id.to_string()], |row| {
                        inbox_row(row, now)
                    })
                    .optional()
                })
                .map_err(db("reading a conversation"))?;
            let Some(conversation) = conversation else { return Ok(None) };
            let mut statement = conn
                .prepare_cached(
                    "SELECT message_id, direction, kind, summary, media, mime_type, file_name, author, wa_message_id, \
                     delivery_state, failure_code, failure_reason, sent_at FROM timeline \
                     WHERE conversation_id = ?1 ORDER BY sent_at, position",
                )
                .map_err(db("preparing the timeline query"))?;
            let messages = statement
                .query_map([conversation_id.to_string()], |row| {
                    Ok(TimelineEntry {
                        message_id: row.get(0)?,
                        direction: row.get(1)?,
                        kind: row.get(2)?,
                        summary: row.get(3)?,
                        media: row.get(4)?,
                        mime_type: row.get(5)?,
                        file_name: row.get(6)?,
                        author: row.get(7)?,
                        wa_message_id: row.get(8)?,
                        delivery_state: row.get(9)?,
                        failure_code: row.get(10)?,
                        failure_reason: row.get(11)?,
                        sent_at: micros(row.get(12)?),
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(db("reading the timeline"))?;
            Ok(Some(ConversationView { conversation, messages }))
        })
        .await
    }

    /// A thread's window state as of `now`, if the thread is the workspace's.
    pub async fn window(
        &self,
        workspace_id: Uuid,
        thread_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<WindowState>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT w.thread_id, w.workspace_id, w.business_phone_number_id, w.customer_wa_id, \
                 COALESCE(c.survivor_id, w.contact_id), w.current_conversation_id, w.last_customer_message_at, \
                 w.window_closes_at FROM window_state w LEFT JOIN contacts c ON c.contact_id = w.contact_id \
                 WHERE w.thread_id = ?1 AND w.workspace_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![thread_id.to_string(), workspace_id.to_string()], |row| {
                    let closes: Option<i64> = row.get(7)?;
                    Ok(WindowState {
                        thread_id: uuid(row.get(0)?)?,
                        workspace_id: uuid(row.get(1)?)?,
                        business_phone_number_id: row.get(2)?,
                        customer_wa_id: row.get(3)?,
                        contact_id: uuid(row.get(4)?)?,
                        current_conversation_id: row.get::<_, Option<String>>(5)?.map(uuid).transpose()?,
                        last_customer_message_at: row.get::<_, Option<i64>>(6)?.map(micros),
                        closes_at: closes.map(micros),
                        free_form_allowed: closes.is_some_and(|closes| now.timestamp_micros() < closes),
                    })
                })
                .optional()
            })
            .map_err(db("reading a window"))
        })
        .await
    }

    /// The contact as it stands now: a merged contact resolves to its survivor.
    pub async fn contact(&self, workspace_id: Uuid, contact_id: Uuid) -> Result<Option<ContactView>> {
        self.read(move |conn| {
            let survivor: Option<String> = conn
                .prepare_cached(
                    "SELECT survivor_id FROM contacts WHERE contact_id = ?1 AND workspace_id = ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![contact_id.to_string(), workspace_id.to_string()], |r| {
                        r.get(0)
                    })
                    .optional()
                })
                .map_err(db("resolving a contact"))?;
            survivor.map(|survivor| contact_view(conn, &survivor)).transpose()
        })
        .await
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
        self.read(move |conn| {
            let survivors = conn
                .prepare_cached(
                    "SELECT DISTINCT c.survivor_id FROM contact_phones p JOIN contacts c ON c.contact_id = p.contact_id \
                     WHERE p.phone_e164 = ?1 AND c.workspace_id = ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![e164, workspace_id.to_string()], |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db("looking up a phone number"))?;
            let mut views = survivors.iter().map(|id| contact_view(conn, id)).collect::<Result<Vec<_>>>()?;
            views.sort_by(|a, b| b.last_active_at.cmp(&a.last_active_at).then(a.contact_id.cmp(&b.contact_id)));
            Ok(views)
        })
        .await
    }

    /// The workspace a stream belongs to, once the read models know it.
    pub async fn stream_owner(&self, stream: &str) -> Result<Option<Uuid>> {
        let stream = stream.to_owned();
        self.read(move |conn| {
            let owner: Option<String> = conn
                .prepare_cached("SELECT workspace_id FROM stream_owners WHERE stream = ?1")
                .and_then(|mut s| s.query_row([stream], |r| r.get(0)).optional())
                .map_err(db("looking up a stream's owner"))?;
            Ok(owner.and_then(|o| Uuid::parse_str(&o).ok()))
        })
        .await
    }

    /// Pending timers due at `now` or before, most overdue first, at most
    /// `limit`. A timer that fired moments ago may still be listed until
    /// the read models take its `TimerFired`.
    pub async fn due_timers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueTimer>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT timer_id, workspace_id, due_at, action, subject_id, message_id, action_at \
                 FROM pending_timers WHERE due_at <= ?1 ORDER BY due_at, timer_id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![now.timestamp_micros(), i64::from(limit)], due_timer)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db("reading due timers"))
        })
        .await
    }

    /// The workspace's contact (as it stands now) with this WhatsApp id.
    pub async fn contact_by_wa_id(&self, workspace_id: Uuid, wa_id: &str) -> Result<Option<ContactView>> {
        let wa_id = wa_id.to_owned();
        self.read(move |conn| {
            let survivor: Option<String> = conn
                .prepare_cached("SELECT survivor_id FROM contacts WHERE workspace_id = ?1 AND wa_id = ?2 ORDER BY created_at LIMIT 1")
                .and_then(|mut s| s.query_row(params![workspace_id.to_string(), wa_id], |r| r.get(0)).optional())
                .map_err(db("looking up a WhatsApp id"))?;
            survivor.map(|survivor| contact_view(conn, &survivor)).transpose()
        })
        .await
    }
}

fn due_timer(row: &Row<'_>) -> rusqlite::Result<DueTimer> {
    let name: String = row.get(3)?;
    let subject = uuid(row.get(4)?)?;
    let message = row.get::<_, Option<String>>(5)?.map(uuid).transpose()?;
    let at = row.get::<_, Option<i64>>(6)?.map(micros);
    let corrupt = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("timer action {name:?}: {what}").into(),
        )
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
        timer_id: TimerId::from_uuid(uuid(row.get(0)?)?),
        workspace_id: WorkspaceId::from_uuid(uuid(row.get(1)?)?),
        due_at: micros(row.get(2)?),
        action,
    })
}

fn contact_view(conn: &Connection, contact_id: &str) -> Result<ContactView> {
    let mut view = conn
        .prepare_cached(
            "SELECT contact_id, workspace_id, kind, name, wa_id, external_user_id, created_at, \
             (SELECT MAX(last_active_at) FROM contacts m WHERE m.survivor_id = c.contact_id) \
             FROM contacts c WHERE contact_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([contact_id], |row| {
                Ok(ContactView {
                    contact_id: uuid(row.get(0)?)?,
                    workspace_id: uuid(row.get(1)?)?,
                    kind: row.get(2)?,
                    name: row.get(3)?,
                    phone_numbers: Vec::new(),
                    wa_id: row.get(4)?,
                    external_user_id: row.get(5)?,
                    created_at: micros(row.get(6)?),
                    last_active_at: row.get::<_, Option<i64>>(7)?.map(micros),
                    merged_from: Vec::new(),
                })
            })
        })
        .map_err(db("reading a contact"))?;
    view.phone_numbers = conn
        .prepare_cached(
            "SELECT DISTINCT p.phone_e164 FROM contact_phones p JOIN contacts c ON c.contact_id = p.contact_id \
             WHERE c.survivor_id = ?1 ORDER BY p.phone_e164",
        )
        .and_then(|mut s| s.query_map([contact_id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(db("reading a contact's phones"))?;
    view.merged_from = conn
        .prepare_cached(
            "SELECT contact_id FROM contacts WHERE survivor_id = ?1 AND contact_id <> ?1 ORDER BY contact_id",
        )
        .and_then(|mut s| {
            s.query_map([contact_id], |r| uuid(r.get(0)?))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("reading a contact's merges"))?;
    Ok(view)
}
