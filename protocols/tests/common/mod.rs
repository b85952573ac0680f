//! Helpers shared by the protocol tests: replicas and the merge oracle.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code, unreachable_pub)]

pub mod snapshot;
pub mod tree;

use std::collections::BTreeMap;

use bytes::Bytes;
use synctree_primitives::{ContextId, Entry, NodeId, Store, Version, merge, merkle};
use synctree_store::MemoryStore;

pub fn ctx() -> ContextId {
    ContextId::new("test").expect("valid context")
}

/// A store holding `entries` in the test context.
pub fn store_with(entries: &[Entry]) -> MemoryStore {
    let store = MemoryStore::new();
    store.apply(&ctx(), entries.to_vec()).expect("apply");
    store
}

/// What both replicas must hold after a sync: the per-key merge of both inputs.
pub fn merged(a: &[Entry], b: &[Entry]) -> Vec<Entry> {
    let mut by_key: BTreeMap<Bytes, Entry> = BTreeMap::new();
    for e in a.iter().chain(b) {
        let winner = match by_key.remove(&e.key) {
            Some(prev) => merge(prev, e.clone()),
            None => e.clone(),
        };
        by_key.insert(e.key.clone(), winner);
    }
    by_key.into_values().collect()
}

/// Entries of a store, sorted by key, for comparison with [`merged`].
pub fn sorted_entries(store: &MemoryStore) -> Vec<Entry> {
    let mut v = store.entries(&ctx());
    v.sort_by(|x, y| x.key.cmp(&y.key));
    v
}

/// Asserts both stores hold exactly the merge of `a` and `b`, with equal, verified roots.
pub fn assert_converged(sa: &MemoryStore, sb: &MemoryStore, a: &[Entry], b: &[Entry]) {
    let want = merged(a, b);
    assert_eq!(sorted_entries(sa), want, "initiator state");
    assert_eq!(sorted_entries(sb), want, "responder state");
    let root = sa.summary(&ctx()).expect("summary").root;
    assert_eq!(root, sb.summary(&ctx()).expect("summary").root);
    assert_eq!(root, merkle::root_of(&want));
}

/// `n` shared entries plus `d` differences split three ways (only A, only B, both
/// with different versions), with every 7th difference a delete. Deterministic.
pub fn diverged(n: usize, d: usize) -> (Vec<Entry>, Vec<Entry>) {
    let entry = |i: usize, hlc: u64, node: u64| {
        Entry::put(
            format!("key-{i:08}"),
            format!("value-{i}-{hlc}"),
            Version::new(hlc, NodeId(node)),
        )
    };
    let shared: Vec<Entry> = (0..n).map(|i| entry(i, 1, 1)).collect();
    let (mut a, mut b) = (shared.clone(), shared);
    for j in 0..d {
        let i = n + j;
        let mut e = entry(i, 2 + j as u64 % 5, 2);
        if j % 7 == 6 {
            e = Entry::delete(e.key, e.version);
        }
        match j % 3 {
            0 => a.push(e),
            1 => b.push(e),
            _ => {
                a.push(e.clone());
                b.push(entry(i, 100, 3));
            }
        }
    }
    (a, b)
}
