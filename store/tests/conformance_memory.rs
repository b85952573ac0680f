//! Runs the backend conformance suite on [`MemoryStore`], one test per case.

#![allow(clippy::expect_used)] // Tests fail by panicking.

#[cfg(feature = "conformance")]
use synctree_store::conformance;
// Without the feature the library does not export the suite: compile its source
// here, where its `pub` items are neither reachable nor all used.
#[cfg(not(feature = "conformance"))]
#[path = "../src/conformance/mod.rs"]
#[allow(unreachable_pub, dead_code)]
mod conformance;

use synctree_store::MemoryStore;

#[test]
fn run_all_cases() {
    conformance::run_all(MemoryStore::new);
}

#[test]
fn put_get_and_overwrite() {
    conformance::put_get_and_overwrite(MemoryStore::new);
}

#[test]
fn tombstones_hide_and_resurrect() {
    conformance::tombstones_hide_and_resurrect(MemoryStore::new);
}

#[test]
fn duplicate_keys_in_one_batch_merge() {
    conformance::duplicate_keys_in_one_batch_merge(MemoryStore::new);
}

#[test]
fn root_is_independent_of_order_and_batching() {
    conformance::root_is_independent_of_order_and_batching(MemoryStore::new);
}

#[test]
fn root_tracks_many_random_ops() {
    conformance::root_tracks_many_random_ops(MemoryStore::new);
}

#[test]
fn range_and_bucket_follow_key_hash_order() {
    conformance::range_and_bucket_follow_key_hash_order(MemoryStore::new);
}

#[test]
fn contexts_are_isolated() {
    conformance::contexts_are_isolated(MemoryStore::new);
}

#[test]
fn node_hashes_are_consistent() {
    conformance::node_hashes_are_consistent(MemoryStore::new);
}

#[test]
fn unknown_context_reads_as_empty() {
    conformance::unknown_context_reads_as_empty(MemoryStore::new);
}

#[test]
fn apply_report_counts() {
    conformance::apply_report_counts(MemoryStore::new);
}

#[test]
fn sketch_tracks_random_batches() {
    conformance::sketch_tracks_random_batches(MemoryStore::new);
}

#[test]
fn read_views_are_point_in_time() {
    conformance::read_views_are_point_in_time(MemoryStore::new);
}

#[test]
fn sync_state_round_trips() {
    conformance::sync_state_round_trips(MemoryStore::new);
}
