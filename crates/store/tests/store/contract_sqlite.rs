//! The store contract, run against the embedded SQLite store, each check on
//! a fresh database in its own temporary folder.

fn fresh() -> (palaver_store::SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = palaver_store::SqliteStore::open(dir.path().join("events.db"), Default::default()).unwrap();
    (store, dir)
}

contract_suite!(fresh());
