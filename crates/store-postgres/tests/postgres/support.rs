//! What the PostgreSQL tests share: the server's URL and a fresh schema per
//! test, dropped when the test ends.

#![allow(dead_code)]

use palaver_store_postgres::{PostgresOptions, PostgresStore};
use tokio_postgres::{Client, NoTls};

/// `PALAVER_TEST_POSTGRES_URL`, or the local test database.
pub fn url() -> String {
    std::env::var("PALAVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own for one test, dropped (with everything in it) when
/// the guard is.
#[derive(Debug)]
pub struct TestSchema {
    pub name: String,
}

impl TestSchema {
    pub fn new() -> Self {
        TestSchema {
            name: format!("palaver_test_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    pub fn options(&self) -> PostgresOptions {
        PostgresOptions::in_schema(&self.name)
    }

    pub async fn open(&self) -> PostgresStore {
        PostgresStore::open(&url(), self.options()).await.unwrap()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Dropping may happen inside or outside a runtime: use a thread with
        // a runtime of its own, and wait for it.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test schema");
            runtime.block_on(PostgresStore::drop_schema(&url(), &name))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// A fresh, empty store and the guard that drops its schema.
pub async fn fresh() -> (PostgresStore, TestSchema) {
    let schema = TestSchema::new();
    (schema.open().await, schema)
}

/// A plain connection in `schema`, for looking behind the store's back.
pub async fn raw(schema: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
        .unwrap();
    client
}
