//! Integration tests of the KurrentDB store, one binary. Those that need a
//! server run only when `PALAVER_TEST_KURRENTDB_URL` is set.

#[macro_use]
#[path = "../../../store/tests/contract/mod.rs"]
mod contract;
mod support;

mod contract_kurrentdb;
mod kurrentdb;
mod offline;
