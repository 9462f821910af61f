//! Following the head: how every instance learns of commits, its own and
//! other processes'.
//!
//! One task per store keeps a connection that LISTENs on the schema's
//! channel; each append transaction NOTIFYs its new head, which PostgreSQL
//! delivers only after the commit. The same task also reads the head every
//! [`PostgresOptions::poll_interval`](crate::PostgresOptions), and once
//! after every (re)connection, so a lost notification or a dropped
//! connection only delays subscribers. The head it publishes only grows:
//! appends take positions in commit order, so every position up to a
//! committed one is committed too.

use std::{sync::Arc, time::Duration};

use palaver_store::{Error, Position, Result};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{Client, Notification, Statement};

use crate::{
    connect::{Connector, db_error, store_session},
    options::channel,
};

/// Shortest and longest wait between two connection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Raises the published head to `position` if it is ahead.
pub(crate) fn publish(head: &watch::Sender<Position>, position: Position) {
    head.send_if_modified(|published| {
        let moved = *published < position;
        if moved {
            *published = position;
        }
        moved
    });
}

/// Follows the head until the task is aborted (when the store closes).
pub(crate) async fn follow(
    connector: Connector,
    head: Arc<watch::Sender<Position>>,
    poll_interval: Duration,
    notifications: bool,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let error =
            follow_one_connection(&connector, &head, poll_interval, notifications, &mut backoff).await;
        tracing::warn!(%error, "following the event store head; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Follows the head on one connection until it is lost; resets `backoff`
/// once connected.
async fn follow_one_connection(
    connector: &Connector,
    head: &watch::Sender<Position>,
    poll_interval: Duration,
    notifications: bool,
    backoff: &mut Duration,
) -> Error {
    match follow_inner(connector, head, poll_interval, notifications, backoff).await {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

async fn follow_inner(
    connector: &Connector,
    head: &watch::Sender<Position>,
    poll_interval: Duration,
    notifications: bool,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible> {
    let (client, mut notes) = if notifications {
        let (client, notes) = connector.connect_listening(store_session("listener")).await?;
        let channel = channel(connector.schema());
        match client.batch_execute(&format!("LISTEN \"{channel}\"")).await {
            Ok(()) => (client, Some(notes)),
            // A pooler may refuse LISTEN: polling alone still finds every
            // commit, later.
            Err(error) if !client.is_closed() => {
                let error = db_error("listening for appends")(error);
                tracing::warn!(%error, "following the event store head by polling alone");
                (client, None)
            }
            Err(error) => return Err(db_error("listening for appends")(error)),
        }
    } else {
        (connector.connect(store_session("poller")).await?, None)
    };
    let statement = client
        .prepare(include_str!("sql/head.sql"))
        .await
        .map_err(db_error("preparing the head query"))?;
    // Catches up on whatever committed while there was no connection.
    poll(&client, &statement, head).await?;
    *backoff = MIN_BACKOFF;
    let mut ticks = tokio::time::interval(poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            note = next_note(&mut notes) => match note {
                Some(note) => {
                    // A payload that is not a position is not ours: ignore it.
                    if let Ok(position) = note.payload().parse::<u64>() {
                        publish(head, Position(position));
                    }
                }
                None => {
                    return Err(Error::Backend {
                        message: "the listening connection was lost".to_owned(),
                        source: None,
                    });
                }
            },
            _ = ticks.tick() => poll(&client, &statement, head).await?,
        }
    }
}

/// The next notification, or `None` once the connection is lost; pending
/// forever when not listening.
async fn next_note(notes: &mut Option<mpsc::UnboundedReceiver<Notification>>) -> Option<Notification> {
    match notes {
        Some(notes) => notes.recv().await,
        None => std::future::pending().await,
    }
}

async fn poll(client: &Client, statement: &Statement, head: &watch::Sender<Position>) -> Result<()> {
    let row = client
        .query_one(statement, &[])
        .await
        .map_err(db_error("reading the head"))?;
    let last: i64 = row.get(0);
    publish(head, Position(last as u64));
    Ok(())
}
