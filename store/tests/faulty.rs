//! [`FaultyStore`]: faults are typed, counted, and never reach the inner store.

#![allow(clippy::expect_used)] // Tests fail by panicking.

#[cfg(feature = "conformance")]
use synctree_store::conformance;
// Without the feature the library does not export the suite: compile its source
// here, where its `pub` items are neither reachable nor all used.
#[cfg(not(feature = "conformance"))]
#[path = "../src/conformance/mod.rs"]
#[allow(unreachable_pub, dead_code)]
mod conformance;

use synctree_primitives::{ContextId, Entry, NodeId, NodePos, Store, StoreError, Version, merkle};
use synctree_store::MemoryStore;
use synctree_test_support::FaultyStore;

fn ctx() -> ContextId {
    ContextId::new("faulty").expect("valid context")
}

fn batch(hlc: u64, n: u64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            Entry::put(
                format!("key-{i}"),
                format!("v{hlc}"),
                Version::new(hlc, NodeId(1)),
            )
        })
        .collect()
}

fn is_fault(result: Result<impl std::fmt::Debug, StoreError>, want: &str) -> bool {
    matches!(result, Err(StoreError::Fault { op }) if op == want)
}

#[test]
fn apply_fails_after_n_operations_and_leaves_the_inner_store_unchanged() {
    let store = FaultyStore::failing_after(MemoryStore::new(), 3);
    store.apply(&ctx(), batch(1, 20)).expect("operation 0");
    store.summary(&ctx()).expect("operation 1");
    store.apply(&ctx(), batch(2, 5)).expect("operation 2");
    let root = store.inner().summary(&ctx()).expect("summary").root;
    let entries = store.inner().entries(&ctx());

    assert!(
        is_fault(store.apply(&ctx(), batch(3, 20)), "apply"),
        "operation 3 fails"
    );
    assert!(
        is_fault(store.apply(&ctx(), batch(4, 1)), "apply"),
        "and every apply after it"
    );
    assert_eq!(
        store.inner().summary(&ctx()).expect("summary").root,
        root,
        "root unchanged"
    );
    assert_eq!(store.inner().entries(&ctx()), entries, "entries unchanged");
    assert_eq!(root, merkle::root_of(&entries), "and still consistent");
    assert_eq!(store.operations(), 5, "failed operations are counted too");
}

#[test]
fn reads_keep_working_unless_asked_to_fail() {
    let store = FaultyStore::failing_after(MemoryStore::new(), 0);
    assert!(is_fault(store.apply(&ctx(), batch(1, 1)), "apply"));
    assert!(store.summary(&ctx()).is_ok(), "reads pass by default");

    let store = FaultyStore::failing_after(MemoryStore::new(), 0).fail_reads(true);
    assert!(is_fault(store.summary(&ctx()), "summary"));
    assert!(is_fault(store.node(&ctx(), NodePos::ROOT), "node"));
    assert!(is_fault(store.children(&ctx(), NodePos::ROOT), "children"));
    let (low, high) = NodePos::ROOT.key_hash_range();
    assert!(is_fault(store.range(&ctx(), &low, &high, 10), "range"));
    assert!(is_fault(store.get(&ctx(), &low), "get"));
    assert!(is_fault(store.contexts(), "contexts"));
}

#[test]
fn faults_can_be_healed_and_rearmed() {
    let store = FaultyStore::failing_after(MemoryStore::new(), 0);
    assert!(store.apply(&ctx(), batch(1, 3)).is_err());
    store.heal();
    assert_eq!(store.apply(&ctx(), batch(1, 3)).expect("healed").changed, 3);
    store.fail_after(1);
    assert!(
        store.apply(&ctx(), batch(2, 3)).is_ok(),
        "one more operation passes"
    );
    assert!(
        is_fault(store.apply(&ctx(), batch(3, 3)), "apply"),
        "then faults resume"
    );
    let mut want = batch(2, 3);
    want.sort_by_key(Entry::key_hash);
    assert_eq!(
        store.into_inner().entries(&ctx()),
        want,
        "only the batches that passed"
    );
}

#[test]
fn a_healthy_faulty_store_passes_the_conformance_suite() {
    conformance::run_all(|| FaultyStore::failing_after(MemoryStore::new(), u64::MAX));
}
