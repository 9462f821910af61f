//! The read models on PostgreSQL, against a real server
//! (`PALAVER_TEST_POSTGRES_URL`, by default the local `test` database),
//! each test in a schema of its own: the same rows and answers as on
//! SQLite for the same history, and the same exactly-once rule.

mod parity;
mod scenario;
mod support;
mod writer;
