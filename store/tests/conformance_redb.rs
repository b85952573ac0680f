//! Runs the backend conformance suite on [`RedbStore`], one test per case, each
//! in its own temporary directory (one database file per store it builds).

#![allow(clippy::expect_used)] // Tests fail by panicking.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(feature = "conformance")]
use synctree_store::conformance;
// Without the feature the library does not export the suite: compile its source
// here, where its `pub` items are neither reachable nor all used.
#[cfg(not(feature = "conformance"))]
#[path = "../src/conformance/mod.rs"]
#[allow(unreachable_pub, dead_code)]
mod conformance;

use synctree_store::RedbStore;
use tempfile::TempDir;

/// A temporary directory that hands out fresh stores, one file each.
struct Stores {
    dir: TempDir,
    made: AtomicUsize,
}

impl Stores {
    fn new() -> Self {
        Stores {
            dir: tempfile::tempdir().expect("tempdir"),
            made: AtomicUsize::new(0),
        }
    }

    /// A fresh, empty store in a new file.
    fn make(&self) -> RedbStore {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        RedbStore::open(self.dir.path().join(format!("store-{n}.redb"))).expect("open")
    }

    /// The same file on every call: each call reopens it.
    fn reopen(&self) -> RedbStore {
        RedbStore::open(self.file()).expect("reopen")
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("reopened.redb")
    }
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            let stores = Stores::new();
            conformance::$case(|| stores.make());
        }
    )*};
}

cases!(
    put_get_and_overwrite,
    tombstones_hide_and_resurrect,
    duplicate_keys_in_one_batch_merge,
    root_is_independent_of_order_and_batching,
    root_tracks_many_random_ops,
    range_and_bucket_follow_key_hash_order,
    paging_follows_key_hash_order,
    contexts_are_isolated,
    node_hashes_are_consistent,
    unknown_context_reads_as_empty,
    apply_report_counts,
    sketch_tracks_random_batches,
    read_views_are_point_in_time,
    sync_state_round_trips,
);

#[test]
fn run_all_cases() {
    let stores = Stores::new();
    conformance::run_all(|| stores.make());
}

#[test]
fn reopen_preserves_entries_and_index() {
    let stores = Stores::new();
    conformance::persistent::reopen_preserves_entries_and_index(|| stores.reopen());
}

#[test]
fn purges_and_watermarks_survive_reopen() {
    let stores = Stores::new();
    conformance::persistent::purges_and_watermarks_survive_reopen(|| stores.reopen());
}
