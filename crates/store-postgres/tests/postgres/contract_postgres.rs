//! The store contract, run against PostgreSQL, each check in a fresh schema
//! that is dropped afterwards. Needs the server at
//! `PALAVER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use crate::support;

contract_suite!(support::fresh().await);
