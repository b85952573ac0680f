//! Property tests: the state of a store depends only on the set of entries it
//! was given, never on their order or on how they were batched.

#![allow(clippy::expect_used)] // Tests fail by panicking.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use synctree_primitives::{
    ContextId, Entry, Hash, NodeId, Store, Version, key_hash, merge, merkle,
};
use synctree_store::MemoryStore;

/// Keys: eight plain ones plus six that share leaf buckets, so overwrites and
/// multi-entry buckets are common.
fn keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut by_leaf: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for i in 0..8192 {
            let key = format!("p{i}");
            by_leaf
                .entry(merkle::leaf_index(&key_hash(key.as_bytes())))
                .or_default()
                .push(key);
        }
        let shared = by_leaf
            .into_values()
            .filter(|k| k.len() > 1)
            .flatten()
            .take(6);
        (0..8).map(|i| format!("k{i}")).chain(shared).collect()
    })
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    let key = 0..keys().len();
    (key, 0u64..4, 0u64..3, prop::bool::weighted(0.2), 0u8..3).prop_map(
        |(k, hlc, node, tomb, val)| {
            let (key, version) = (keys()[k].clone(), Version::new(hlc, NodeId(node)));
            if tomb {
                Entry::delete(key, version)
            } else {
                Entry::put(key, format!("v{val}"), version)
            }
        },
    )
}

fn arb_entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(arb_entry(), 0..60)
}

fn ctx() -> ContextId {
    ContextId::new("props").expect("valid context")
}

/// Applies `entries` in consecutive batches of `batch` entries.
fn store_of(entries: &[Entry], batch: usize) -> MemoryStore {
    let store = MemoryStore::new();
    for chunk in entries.chunks(batch.max(1)) {
        store.apply(&ctx(), chunk.to_vec()).expect("apply");
    }
    store
}

fn state(store: &MemoryStore) -> (Hash, Vec<Entry>) {
    (
        store.summary(&ctx()).expect("summary").root,
        store.entries(&ctx()),
    )
}

/// The merge oracle: per key, the winner of all `entries`, in key-hash order.
fn merged(entries: &[Entry]) -> Vec<Entry> {
    let mut by_hash: BTreeMap<Hash, Entry> = BTreeMap::new();
    for e in entries {
        let winner = match by_hash.remove(&e.key_hash()) {
            Some(held) => merge(held, e.clone()),
            None => e.clone(),
        };
        by_hash.insert(e.key_hash(), winner);
    }
    by_hash.into_values().collect()
}

proptest! {
    #[test]
    fn any_permutation_and_batching_gives_the_same_state(
        (entries, shuffled) in arb_entries().prop_flat_map(|e| (Just(e.clone()), Just(e).prop_shuffle())),
        batch in 1usize..20,
    ) {
        let (root, stored) = state(&store_of(&entries, entries.len()));
        let want = merged(&entries);
        prop_assert_eq!(&stored, &want);
        prop_assert_eq!(root, merkle::root_of(&want));
        prop_assert_eq!(state(&store_of(&shuffled, batch)), (root, want));
    }

    #[test]
    fn applying_a_then_b_equals_b_then_a(a in arb_entries(), b in arb_entries()) {
        let ab = store_of(&a, a.len());
        ab.apply(&ctx(), b.clone()).expect("apply");
        let ba = store_of(&b, b.len());
        ba.apply(&ctx(), a.clone()).expect("apply");
        let (root, stored) = state(&ab);
        prop_assert_eq!(state(&ba), (root, stored.clone()));
        let all: Vec<Entry> = a.into_iter().chain(b).collect();
        prop_assert_eq!(stored, merged(&all));
    }

    #[test]
    fn reapplying_is_idempotent(entries in arb_entries()) {
        let store = store_of(&entries, entries.len());
        let before = state(&store);
        let report = store.apply(&ctx(), entries.clone()).expect("apply");
        prop_assert_eq!(report.changed, 0);
        prop_assert_eq!(report.unchanged, entries.len() as u64);
        prop_assert_eq!(state(&store), before);
    }
}
