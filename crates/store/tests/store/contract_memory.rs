//! The store contract, run against the in-memory store.

contract_suite!((palaver_store::MemoryStore::default(), ()));
