//! The store contract, run against a KurrentDB server when
//! `PALAVER_TEST_KURRENTDB_URL` is set, each check in its own random
//! namespace. Without the variable every test returns at once, saying so.
//!
//! For example, with a single node in insecure mode whose append limit is
//! above the contract's near-1 MiB event plus its metadata (environment
//! `KURRENTDB_INSECURE=true`, `KURRENTDB_MAX_APPEND_SIZE=2097152`):
//!
//! ```text
//! PALAVER_TEST_KURRENTDB_URL='kurrentdb://localhost:2113?tls=false' \
//!     cargo nextest run -p palaver-store-kurrentdb
//! ```
//!
//! The skipped checks assert consecutive positions (1, 2, 3, …) or an id
//! index across streams, which KurrentDB does not have (see
//! `docs/adr/0006-kurrentdb-store.md`); `kurrentdb.rs` checks what it keeps
//! of each.

use crate::support;

contract_suite!(
    match support::fresh().await {
        Some(made) => made,
        None => return,
    },
    skip = [
        expected_revisions_are_enforced,
        reused_ids_are_refused,
        positions_are_global_and_consecutive,
        read_all_filters_by_prefix_and_type,
        subscriptions_catch_up_then_go_live,
        concurrent_writers_are_seen_once_in_order,
    ]
);
