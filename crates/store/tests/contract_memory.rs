//! The store contract, run against the in-memory store.

mod contract;

contract_suite!((palaver_store::MemoryStore::default(), ()));
