//! The store contract, run against the in-memory store.

use crate::contract;

contract_suite!((palaver_store::MemoryStore::default(), ()));
