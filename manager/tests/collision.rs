//! A collision the tree protocols cannot see (forced here: both sides truncate
//! every non-empty node hash to the same bytes) ends the tree session "not
//! converged"; with neither root moved since, the manager's next session with that
//! peer and context runs Snapshot in merge mode, which compares no truncated hash,
//! and converges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use synctree_manager::registry::InitiatorPlan;
use synctree_manager::{
    ExecutorProtocol, ManagerConfig, ProtocolChoice, ProtocolRegistry, SessionReport, SyncManager,
};
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::HashComparisonInit;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{ContextId, Entry, Identity, NodeId, ProtocolKind, Store, Version};
use synctree_protocols::{HashComparison, HashComparisonConfig, TreeResponderInit};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

fn ctx() -> ContextId {
    ContextId::new("collision").expect("valid context")
}

fn hash_comparison_init(kind: &Kind) -> Option<&HashComparisonInit> {
    match kind {
        Kind::HashComparison(init) => Some(init),
        _ => None,
    }
}

/// The initiator truncates under the colliding key (and ignores the fingerprint,
/// keyed by the real session key).
fn colliding_config(_: &InitiatorPlan<'_>) -> HashComparisonConfig {
    HashComparisonConfig {
        key: SessionKey::dangerous_colliding(),
        ..HashComparisonConfig::default()
    }
}

/// So does the responder, whatever the handshake gave.
fn colliding_responder(init: TreeResponderInit, _: &SessionKey) -> TreeResponderInit {
    init.with_key(SessionKey::dangerous_colliding())
}

/// The standard registry with HashComparison blind to differences, and without
/// Sketch (whose row of the table would take these few differences first).
fn colliding_registry() -> ProtocolRegistry {
    let hash_comparison = ExecutorProtocol::<HashComparison, HashComparisonInit>::new(
        hash_comparison_init,
        colliding_config,
    )
    .with_keyed(colliding_responder);
    ProtocolRegistry::standard()
        .without(ProtocolKind::Sketch)
        .with(hash_comparison)
}

fn node(id: u64, entries: Vec<Entry>) -> SyncManager<MemoryStore> {
    let store = MemoryStore::new();
    store.apply(&ctx(), entries).expect("apply");
    let registry = colliding_registry();
    let config = ManagerConfig {
        supported: registry.kinds(),
        ..ManagerConfig::default()
    };
    SyncManager::with_registry(Arc::new(store), Identity::new(NodeId(id)), config, registry)
}

/// 500 shared entries, a few differing ones on each side.
fn replicas() -> (Vec<Entry>, Vec<Entry>) {
    let entry = |i: usize, node: u64| {
        let version = Version::new(10 + node, NodeId(node));
        Entry::put(format!("key-{i}"), format!("value-{i}-{node}"), version)
    };
    let shared: Vec<Entry> = (0..500).map(|i| entry(i, 1)).collect();
    let (mut a, mut b) = (shared.clone(), shared);
    a.extend((500..503).map(|i| entry(i, 2)));
    b.extend((503..505).map(|i| entry(i, 3)));
    b.push(entry(7, 3));
    (a, b)
}

async fn sync(
    client: &SyncManager<MemoryStore>,
    server: &SyncManager<MemoryStore>,
) -> SessionReport {
    let (mut a, mut b) = FramedTransport::memory_pair(1 << 16);
    let context = ctx();
    let (report, served) = tokio::join!(
        client.sync(&mut a, &context, ProtocolChoice::Auto),
        server.handle_stream(&mut b)
    );
    served.expect("served");
    report.expect("session")
}

fn root(m: &SyncManager<MemoryStore>) -> synctree_primitives::Hash {
    m.store().summary(&ctx()).expect("summary").root
}

#[tokio::test]
async fn an_unconverged_tree_session_is_followed_by_a_snapshot_that_converges() {
    let (ea, eb) = replicas();
    let (a, b) = (node(1, ea), node(2, eb));
    let (before_a, before_b) = (root(&a), root(&b));

    let first = sync(&a, &b).await;
    assert_eq!(first.selection.protocol, Some(ProtocolKind::HashComparison));
    assert!(
        !first.converged(),
        "the forced collision hides every difference"
    );
    assert_eq!((root(&a), root(&b)), (before_a, before_b), "nothing moved");

    let second = sync(&a, &b).await;
    assert_eq!(second.selection.protocol, Some(ProtocolKind::Snapshot));
    assert_eq!(
        second.selection.reason,
        "previous tree session did not converge (hash-comparison, roots unchanged since)"
    );
    assert!(second.converged(), "{second:?}");
    assert_eq!(root(&a), root(&b));
    assert_eq!(a.store().entries(&ctx()), b.store().entries(&ctx()));

    let third = sync(&a, &b).await;
    assert_eq!(
        (third.selection.protocol, third.selection.reason.as_str()),
        (None, "roots match")
    );
}

#[tokio::test]
async fn a_write_since_the_unconverged_session_runs_the_table_as_usual() {
    let (ea, eb) = replicas();
    let (a, b) = (node(1, ea), node(2, eb));
    assert!(!sync(&a, &b).await.converged());
    let write = Entry::put("fresh", "x", Version::new(99, NodeId(2)));
    b.store().apply(&ctx(), vec![write]).expect("apply");
    let again = sync(&a, &b).await;
    assert_eq!(again.selection.protocol, Some(ProtocolKind::HashComparison));
    assert!(
        !again.converged(),
        "still blind: the write explains nothing"
    );
    assert_eq!(
        sync(&a, &b).await.selection.protocol,
        Some(ProtocolKind::Snapshot)
    );
    assert_eq!(root(&a), root(&b));
}
