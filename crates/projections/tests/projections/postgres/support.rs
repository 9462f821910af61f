//! What the PostgreSQL tests share: the server's URL, a fresh schema per
//! test (dropped when the test ends), and the rows of a table on either
//! backend in a form that compares across them.

use std::path::Path;

use tokio_postgres::{Client, NoTls};

/// `PALAVER_TEST_POSTGRES_URL`, or the local test database.
pub fn url() -> String {
    std::env::var("PALAVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own for one test, dropped (with everything in it, and
/// any scratch schema a rebuild left beside it) when the guard is.
#[derive(Debug)]
pub struct TestSchema {
    pub name: String,
}

impl TestSchema {
    pub fn new() -> Self {
        // Short enough for a rebuild's scratch name beside it.
        TestSchema {
            name: format!("palaver_rm_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
        }
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
            runtime.block_on(async {
                let client = raw("public").await;
                let schemas = client
                    .query(
                        "SELECT nspname::text FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $1 || '\\_rebuild\\_%'",
                        &[&name],
                    )
                    .await?;
                for schema in schemas {
                    let schema: String = schema.get(0);
                    client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// A plain connection in `schema`, for looking behind the read models' back.
pub async fn raw(schema: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
        .unwrap();
    client
}

/// One table's rows, each value as text (NULL as `None`), sorted: the same
/// rows give the same value on either backend.
pub type Rows = Vec<Vec<Option<String>>>;

/// A table's column names, in order, from the SQLite file.
pub fn sqlite_columns(path: &Path, table: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap();
    statement
        .query_map([table], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// A table's column names, in order, in a PostgreSQL schema.
pub async fn postgres_columns(client: &Client, schema: &str, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn select_as_text(table: &str, columns: &[String]) -> String {
    let columns: Vec<String> = columns.iter().map(|c| format!("CAST(\"{c}\" AS TEXT)")).collect();
    format!("SELECT {} FROM \"{table}\"", columns.join(", "))
}

/// The rows of `columns` of `table` in the SQLite file.
pub fn sqlite_rows(path: &Path, table: &str, columns: &[String]) -> Rows {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn.prepare(&select_as_text(table, columns)).unwrap();
    let mut rows: Rows = statement
        .query_map([], |row| {
            (0..columns.len())
                .map(|i| row.get::<_, Option<String>>(i))
                .collect()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows.sort();
    rows
}

/// The rows of `columns` of `table` in the PostgreSQL schema `client` is in.
pub async fn postgres_rows(client: &Client, table: &str, columns: &[String]) -> Rows {
    let mut rows: Rows = client
        .query(&select_as_text(table, columns), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (0..columns.len()).map(|i| row.get(i)).collect())
        .collect();
    rows.sort();
    rows
}
