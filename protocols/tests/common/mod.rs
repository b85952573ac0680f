//! Helpers shared by the protocol tests: replicas and the merge oracle.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code, unreachable_pub)]

pub mod snapshot;
pub mod tree;

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{HashComparisonInit, InitPayload, LevelWiseInit};
use synctree_primitives::{
    ContextId, Entry, Identity, NodeId, ProtocolKind, Store, SyncError, SyncProtocolExecutor,
    SyncStats, SyncTransport, Version, merge, merkle,
};
use synctree_protocols::{
    HashComparison, HashComparisonResponderInit, LevelWise, LevelWiseResponderInit, Schedule,
    Snapshot, SnapshotResponderInit,
};
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

/// The protocol a tree schedule belongs to, and its init payload.
pub fn tree_init(schedule: Schedule) -> (ProtocolKind, Kind) {
    match schedule {
        Schedule::Eager => (
            ProtocolKind::HashComparison,
            Kind::HashComparison(HashComparisonInit::default()),
        ),
        Schedule::LevelByLevel => (
            ProtocolKind::LevelWise,
            Kind::LevelWise(LevelWiseInit::default()),
        ),
    }
}

/// Up to `max_entries` random entries over `keys` keys: several versions per key,
/// deletes, values of 1–8 bytes.
pub fn arb_replica(keys: u16, max_entries: usize) -> impl Strategy<Value = Vec<Entry>> {
    let entry = (0..keys, 0u64..4, 0u64..3, any::<bool>(), any::<u8>()).prop_map(
        |(key, hlc, node, delete, value)| {
            let version = Version::new(hlc, NodeId(node));
            let key = format!("k{key}");
            if delete {
                Entry::delete(key, version)
            } else {
                Entry::put(key, vec![value; 1 + usize::from(value % 8)], version)
            }
        },
    );
    prop::collection::vec(entry, 0..max_entries)
}

/// The responder's half of a session: reads the init frame and runs the protocol
/// it names, as the manager does.
pub async fn respond<T: SyncTransport>(
    transport: &mut T,
    store: &MemoryStore,
) -> Result<SyncStats, SyncError> {
    let id = Identity::new(NodeId(2));
    let first = transport.recv().await.expect("recv").expect("init frame");
    let Some(Body::Init(InitPayload {
        kind: Some(kind), ..
    })) = first.body
    else {
        panic!("first frame is not an init payload");
    };
    let context = ctx();
    match kind {
        Kind::HashComparison(init) => {
            let init = HashComparisonResponderInit::try_from(&init).expect("init");
            HashComparison::run_responder(transport, store, &context, &id, init).await
        }
        Kind::LevelWise(init) => {
            let init = LevelWiseResponderInit::try_from(&init).expect("init");
            LevelWise::run_responder(transport, store, &context, &id, init).await
        }
        Kind::Snapshot(init) => {
            let init = SnapshotResponderInit::try_from(&init).expect("init");
            Snapshot::run_responder(transport, store, &context, &id, init).await
        }
        Kind::Sketch(init) => {
            let init = synctree_protocols::SketchResponderInit::try_from(&init).expect("init");
            synctree_protocols::Sketch::run_responder(transport, store, &context, &id, init).await
        }
        Kind::Handshake(_) | Kind::ListContexts(_) => {
            panic!("no handshake or listing in this test")
        }
    }
}

/// The initiator's half of a session of `protocol` through its executor, with each
/// protocol's default config (Snapshot: LZ4 pages, a window of 2).
pub async fn initiate<T: SyncTransport>(
    protocol: ProtocolKind,
    transport: &mut T,
    store: &MemoryStore,
) -> Result<SyncStats, SyncError> {
    let (id, context) = (Identity::new(NodeId(1)), ctx());
    match protocol {
        ProtocolKind::HashComparison => {
            let config = synctree_protocols::HashComparisonConfig::default();
            HashComparison::run_initiator(transport, store, &context, &id, config).await
        }
        ProtocolKind::LevelWise => {
            let config = synctree_protocols::LevelWiseConfig::default();
            LevelWise::run_initiator(transport, store, &context, &id, config).await
        }
        ProtocolKind::Sketch => {
            let config = synctree_protocols::SketchConfig::default();
            synctree_protocols::Sketch::run_initiator(transport, store, &context, &id, config).await
        }
        _ => {
            let config = synctree_protocols::SnapshotConfig {
                compression: synctree_primitives::wire::Compression::Lz4,
                window: 2,
                ..synctree_protocols::SnapshotConfig::default()
            };
            Snapshot::run_initiator(transport, store, &context, &id, config).await
        }
    }
}

/// The time handed to machines stepped by hand: they never read a clock, and no
/// test here depends on a timer expiring.
pub fn now() -> std::time::Instant {
    std::time::Instant::now()
}
