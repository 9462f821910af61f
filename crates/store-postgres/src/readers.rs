//! The read connections: a few clients used in turn, each with the read
//! statements prepared, each reopened on first use after it was lost.
//!
//! A client pipelines the queries sent to it, so a handful of connections
//! serve many concurrent readers.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use palaver_store::Result;
use tokio::sync::Mutex;
use tokio_postgres::{Client, Statement, types::Type};

use crate::connect::{Connector, db_error, store_session};

/// One read connection and its statements.
pub(crate) struct Reader {
    pub client: Client,
    pub stream_forwards: Statement,
    pub stream_backwards: Statement,
    pub all: Statement,
    pub all_filtered: Statement,
    pub revision: Statement,
    pub head: Statement,
}

impl Reader {
    async fn open(connector: &Connector) -> Result<Self> {
        let client = connector.connect(store_session("reader")).await?;
        let c = &client;
        let (stream_forwards, stream_backwards, all) = futures::future::try_join3(
            c.prepare_typed(
                include_str!("sql/read_stream_forwards.sql"),
                &[Type::TEXT, Type::INT8, Type::INT8],
            ),
            c.prepare_typed(
                include_str!("sql/read_stream_backwards.sql"),
                &[Type::TEXT, Type::INT8, Type::INT8],
            ),
            c.prepare_typed(include_str!("sql/read_all.sql"), &[Type::INT8, Type::INT8]),
        )
        .await
        .map_err(db_error("preparing the read statements"))?;
        let (all_filtered, revision, head) = futures::future::try_join3(
            c.prepare_typed(
                include_str!("sql/read_all_filtered.sql"),
                &[Type::INT8, Type::TEXT_ARRAY, Type::TEXT_ARRAY, Type::INT8],
            ),
            c.prepare_typed(include_str!("sql/stream_revision.sql"), &[Type::TEXT]),
            c.prepare(include_str!("sql/head.sql")),
        )
        .await
        .map_err(db_error("preparing the read statements"))?;
        Ok(Reader {
            client,
            stream_forwards,
            stream_backwards,
            all,
            all_filtered,
            revision,
            head,
        })
    }
}

/// The read connections of one store.
pub(crate) struct Readers {
    connector: Connector,
    slots: Vec<Mutex<Option<Arc<Reader>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("connections", &self.slots.len())
            .finish()
    }
}

impl Readers {
    pub(crate) fn new(connector: Connector, connections: usize) -> Self {
        Readers {
            connector,
            slots: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next connection in turn, opened if it is not (or no longer).
    async fn get(&self) -> Result<Arc<Reader>> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        if let Some(reader) = slot.as_ref().filter(|reader| !reader.client.is_closed()) {
            return Ok(Arc::clone(reader));
        }
        let reader = Arc::new(Reader::open(&self.connector).await?);
        *slot = Some(Arc::clone(&reader));
        Ok(reader)
    }

    /// Runs `read` on a connection; if it fails because that connection was
    /// lost, runs it once more on a fresh one (reads have no side effects).
    pub(crate) async fn read<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: Fn(Arc<Reader>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let reader = self.get().await?;
        match read(Arc::clone(&reader)).await {
            Err(_) if reader.client.is_closed() => read(self.get().await?).await,
            result => result,
        }
    }
}
