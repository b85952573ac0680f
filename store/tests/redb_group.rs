//! Group commit in [`RedbStore`]: many writers at once, over several contexts,
//! through `apply` and `apply_stored`, one of them sending an invalid batch;
//! every batch is applied whole or refused alone, and the file reopens with
//! each context's root equal to the root of its entries.

#![allow(clippy::expect_used)] // Tests fail by panicking.

use synctree_primitives::limits::MAX_VALUE_BYTES;
use synctree_primitives::{ContextId, Entry, NodeId, Store, StoreError, StoredEntry, Version};
use synctree_store::{RedbStore, recompute_root, recompute_sketch};

const WRITERS: u64 = 8;
const BATCHES: u64 = 6;
const PER_BATCH: u64 = 50;

fn ctx(writer: u64) -> ContextId {
    ContextId::new(format!("group-{}", writer % 3)).expect("valid context")
}

/// Batch `b` of `writer`: new keys, at clock `b + 1`.
fn batch(writer: u64, b: u64) -> Vec<Entry> {
    let version = Version::new(b + 1, NodeId(writer));
    (0..PER_BATCH)
        .map(|i| Entry::put(format!("w{writer}-b{b}-{i}"), format!("{b}"), version))
        .collect()
}

/// Writes every batch of `writer`, odd writers through `apply_stored`; writer 0
/// also sends an invalid batch half way. Returns the entries it got applied.
fn write(store: &RedbStore, writer: u64) -> u64 {
    let c = ctx(writer);
    let mut changed = 0;
    for b in 0..BATCHES {
        let entries = batch(writer, b);
        let report = if writer % 2 == 1 {
            let stored = entries.into_iter().map(StoredEntry::new).collect();
            store.apply_stored(&c, stored)
        } else {
            store.apply(&c, entries)
        };
        changed += report.expect("a valid batch applies").changed;
        if writer == 0 && b == BATCHES / 2 {
            let mut bad = batch(99, b);
            bad.push(Entry::put(
                "huge",
                vec![0u8; MAX_VALUE_BYTES + 1],
                Version::new(1, NodeId(0)),
            ));
            let err = store.apply(&c, bad).expect_err("invalid");
            assert!(
                matches!(err, StoreError::Backend { op: "apply", .. }),
                "{err:?}"
            );
        }
    }
    changed
}

#[test]
fn concurrent_batches_over_several_contexts_are_each_applied_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("s.redb");
    let summaries = {
        let store = RedbStore::open(&path).expect("open");
        let changed: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let store = &store;
                    s.spawn(move || write(store, w))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("writer"))
                .collect()
        });
        assert_eq!(changed, vec![BATCHES * PER_BATCH; WRITERS as usize]);
        (0..3)
            .map(|w| store.summary(&ctx(w)).expect("summary"))
            .collect::<Vec<_>>()
    };
    let store = RedbStore::open(&path).expect("reopen");
    for w in 0..3 {
        let c = ctx(w);
        let writers = (0..WRITERS).filter(|x| x % 3 == w).count() as u64;
        let summary = store.summary(&c).expect("summary");
        assert_eq!(summary, summaries[w as usize], "as committed");
        assert_eq!(
            summary.entry_count,
            writers * BATCHES * PER_BATCH,
            "nothing of the invalid batch"
        );
        assert_eq!(
            recompute_root(&store, &c).expect("recompute").0,
            summary.root
        );
        let (maintained, recomputed) = recompute_sketch(&store, &c).expect("recompute sketch");
        assert!(!maintained.is_empty());
        assert_eq!(maintained, recomputed, "sketch maintained through groups");
    }
}
