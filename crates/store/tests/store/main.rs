//! Integration tests of the store crate, one binary: the store contract on
//! the memory and SQLite stores, and what only SQLite promises.

#[macro_use]
#[path = "../contract/mod.rs"]
mod contract;

mod contract_memory;
mod contract_sqlite;
mod sqlite;
