//! The read side on PostgreSQL: a few pooled clients, each pipelining the
//! queries of every caller that shares it, with the statements it has
//! prepared (translated once, on first use).

use futures::TryStreamExt;
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio_postgres::{Client, Statement};

use super::{
    connect::{Connector, Role},
    placeholders::translate,
    value::row_values,
};
use crate::{Error, Result, error::db, queries::Session, sql::Value};

/// Connections to the read models' schema, opened on first use and again
/// after one is lost.
pub(crate) struct PgReader {
    connector: Connector,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Connection>>>>,
    /// Round robin over the slots.
    next: AtomicUsize,
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader")
            .field("location", &self.connector.location())
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

struct Connection {
    client: Client,
    /// Prepared statements by their portable SQL: a statement belongs to
    /// the connection that prepared it.
    statements: Mutex<HashMap<&'static str, Statement>>,
}

/// One connection, for the queries of one call.
pub(crate) struct PgSession(Arc<Connection>);

impl PgReader {
    pub(crate) fn new(connector: Connector, connections: usize) -> Self {
        PgReader {
            connector,
            slots: (0..connections.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next connection in turn, connected if it was not (or was lost).
    pub(crate) async fn session(&self) -> Result<PgSession> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(PgSession(Arc::clone(connection)));
        }
        let client = self.connector.connect(Role::Reader).await?;
        let connection = Arc::new(Connection {
            client,
            statements: Mutex::new(HashMap::new()),
        });
        *slot = Some(Arc::clone(&connection));
        Ok(PgSession(connection))
    }
}

impl Connection {
    async fn statement(&self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.cached(sql) {
            return Ok(statement);
        }
        let translated = translate(sql).map_err(|reason| Error::InvalidArgument { field: "sql", reason })?;
        let statement = self
            .client
            .prepare(&translated)
            .await
            .map_err(db("preparing a query"))?;
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql, statement.clone());
        Ok(statement)
    }

    fn cached(&self, sql: &'static str) -> Option<Statement> {
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned()
    }

    fn forget(&self, sql: &'static str) {
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sql);
    }
}

impl Session for PgSession {
    async fn rows(
        &mut self,
        what: &'static str,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>> {
        let connection = &self.0;
        let statement = connection.statement(sql).await?;
        let rows = match connection.client.query_raw(&statement, params.iter()).await {
            Ok(rows) => rows,
            Err(error) => {
                // Prepared again next time: the tables may have been
                // recreated with another shape (a version change).
                connection.forget(sql);
                return Err(db(what)(error));
            }
        };
        let rows: Vec<tokio_postgres::Row> = rows.try_collect().await.map_err(db(what))?;
        rows.iter().map(|row| row_values(row).map_err(db(what))).collect()
    }
}
