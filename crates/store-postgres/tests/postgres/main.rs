//! Integration tests of the PostgreSQL store, one binary: the shared store
//! contract and what only this backend promises, against the server at
//! `PALAVER_TEST_POSTGRES_URL` (default 127.0.0.1:5432).

#[macro_use]
#[path = "../../../store/tests/contract/mod.rs"]
mod contract;
mod support;

mod contract_postgres;
mod postgres;
mod tls;
