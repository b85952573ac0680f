//! Throughput of [`RedbStore`], printed rather than asserted (machines differ):
//!
//! ```sh
//! cargo test -p synctree-store --release --test redb_bench -- --ignored --nocapture
//! ```
//!
//! Writes 10^5 entries as one batch and as 1,000-entry batches (each committed
//! with immediate durability, so each pays an fsync), overwrites them in
//! 1,000-entry batches, then times a reopen (which must not depend on the
//! entry count), a summary and a full [`recompute_root`].

#![allow(clippy::expect_used)] // Tests fail by panicking.

use std::time::{Duration, Instant};

use synctree_primitives::{ContextId, Entry, NodeId, Store, Version};
use synctree_store::{RedbStore, recompute_root};

/// Entries written in each run.
const ENTRIES: u64 = 100_000;
/// Entries per batch in the small-batch run.
const SMALL_BATCH: u64 = 1_000;

fn entries(hlc: u64) -> Vec<Entry> {
    (0..ENTRIES)
        .map(|i| {
            Entry::put(
                format!("key-{i:08}"),
                format!("value-{hlc}-{i}"),
                Version::new(hlc, NodeId(1)),
            )
        })
        .collect()
}

fn report(what: &str, upserts: u64, took: Duration) {
    let rate = upserts as f64 / took.as_secs_f64();
    println!("{what:<44} {upserts:>7} upserts in {took:>10.1?}: {rate:>9.0} upserts/s");
}

/// Applies `batch` in chunks of `size`; the time taken.
fn apply_in(store: &RedbStore, ctx: &ContextId, batch: Vec<Entry>, size: u64) -> Duration {
    let start = Instant::now();
    for chunk in batch.chunks(size as usize) {
        store.apply(ctx, chunk.to_vec()).expect("apply");
    }
    start.elapsed()
}

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn measure_upserts_per_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ContextId::new("bench").expect("valid");

    let one = RedbStore::open(dir.path().join("one.redb")).expect("open");
    let took = apply_in(&one, &ctx, entries(1), ENTRIES);
    report("one batch of 10^5, new keys", ENTRIES, took);
    let took = apply_in(&one, &ctx, entries(2), ENTRIES);
    report("one batch of 10^5, overwriting every key", ENTRIES, took);
    drop(one);

    let path = dir.path().join("small.redb");
    let small = RedbStore::open(&path).expect("open");
    let took = apply_in(&small, &ctx, entries(1), SMALL_BATCH);
    report("1k-entry batches, new keys (10^5 total)", ENTRIES, took);
    let took = apply_in(&small, &ctx, entries(2), SMALL_BATCH);
    report("1k-entry batches, overwriting (10^5 total)", ENTRIES, took);
    let stale = apply_in(&small, &ctx, entries(1), SMALL_BATCH);
    report("1k-entry batches, all stale (no change)", ENTRIES, stale);
    drop(small);

    let start = Instant::now();
    let store = RedbStore::open(&path).expect("reopen");
    let opened = start.elapsed();
    let summary = store.summary(&ctx).expect("summary");
    let summarized = start.elapsed() - opened;
    let (root, count) = recompute_root(&store, &ctx).expect("recompute");
    let recomputed = start.elapsed() - opened - summarized;
    assert_eq!((root, count), (summary.root, summary.entry_count));
    println!(
        "reopen a 10^5-entry store: {opened:.1?}; summary: {summarized:.1?}; recompute_root: {recomputed:.1?}"
    );
    drop(store);
    let tiny = dir.path().join("tiny.redb");
    let store = RedbStore::open(&tiny).expect("open");
    store.apply(&ctx, entries(1)[..1].to_vec()).expect("apply");
    drop(store);
    let start = Instant::now();
    drop(RedbStore::open(&tiny).expect("reopen"));
    println!("reopen a 1-entry store: {:.1?}", start.elapsed());
    let size = std::fs::metadata(&path).expect("metadata").len();
    println!("file size: {:.1} MiB", size as f64 / (1 << 20) as f64);
}
