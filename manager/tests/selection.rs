//! The manager picks protocols from real handshakes, every protocol it picks (or is
//! told to run) converges, and an interrupted snapshot resumes in the next session.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use synctree_manager::{ManagerConfig, ManagerError, ProtocolChoice, SessionReport, SyncManager};
use synctree_primitives::{
    ContextId, Entry, Identity, NodeId, ProtocolKind, Store, StreamMessage, SyncTransport,
    TransportError, Version, merkle,
};
use synctree_store::MemoryStore;
use synctree_test_support::{Tap, TransportHook};
use synctree_transport::FramedTransport;

fn ctx() -> ContextId {
    ContextId::new("selection").expect("valid context")
}

fn node(id: u64, entries: Vec<Entry>) -> SyncManager<MemoryStore> {
    let store = MemoryStore::new();
    store.apply(&ctx(), entries).expect("apply");
    SyncManager::new(
        Arc::new(store),
        Identity::new(NodeId(id)),
        ManagerConfig::default(),
    )
}

/// `n` shared entries; `only_a`/`only_b` extra keys on each side, spread over the
/// whole key space.
fn replicas(n: usize, only_a: usize, only_b: usize) -> (Vec<Entry>, Vec<Entry>) {
    let entry = |i: usize, node: u64| {
        Entry::put(
            format!("key-{i}"),
            format!("value-{i}-{node}"),
            Version::new(10 + node, NodeId(node)),
        )
    };
    let shared: Vec<Entry> = (0..n).map(|i| entry(i, 1)).collect();
    let mut a = shared.clone();
    let mut b = shared;
    a.extend((n..n + only_a).map(|i| entry(i, 2)));
    b.extend((n + only_a..n + only_a + only_b).map(|i| entry(i, 3)));
    (a, b)
}

/// One session between two managers over an in-memory pipe.
async fn sync<T: SyncTransport>(
    client: &SyncManager<MemoryStore>,
    server: &SyncManager<MemoryStore>,
    client_end: &mut FramedTransport<tokio::io::DuplexStream>,
    server_end: &mut T,
    choice: ProtocolChoice,
) -> Result<SessionReport, ManagerError> {
    let context = ctx();
    let (report, _) = tokio::join!(
        client.sync(client_end, &context, choice),
        server.handle_stream(server_end)
    );
    report
}

async fn sync_fresh_pipe(
    client: &SyncManager<MemoryStore>,
    server: &SyncManager<MemoryStore>,
    choice: ProtocolChoice,
) -> SessionReport {
    let (mut a, mut b) = FramedTransport::memory_pair(1 << 16);
    sync(client, server, &mut a, &mut b, choice)
        .await
        .expect("session")
}

fn assert_same_verified_state(a: &SyncManager<MemoryStore>, b: &SyncManager<MemoryStore>) {
    let (ea, eb) = (a.store().entries(&ctx()), b.store().entries(&ctx()));
    let root = a.store().summary(&ctx()).expect("summary").root;
    assert_eq!(root, b.store().summary(&ctx()).expect("summary").root);
    assert_eq!(root, merkle::root_of(&ea));
    assert_eq!(root, merkle::root_of(&eb));
}

#[tokio::test]
async fn the_decision_table_picks_from_real_handshakes() {
    let cases: [(usize, usize, usize, Option<ProtocolKind>, &str); 6] = [
        (2_000, 0, 0, None, "roots match"),
        (0, 0, 2_000, Some(ProtocolKind::Snapshot), "initiator empty"),
        (
            50,
            0,
            2_000,
            Some(ProtocolKind::Snapshot),
            "initiator far behind",
        ),
        (
            2_000,
            1,
            0,
            Some(ProtocolKind::Sketch),
            "sketch estimate ~1 differences",
        ),
        (
            20_000,
            10,
            10,
            Some(ProtocolKind::Sketch),
            "sketch estimate ~",
        ),
        (
            2_000,
            200,
            200,
            Some(ProtocolKind::LevelWise),
            "differences spread",
        ),
    ];
    for (n, only_a, only_b, want, reason) in cases {
        let (a, b) = replicas(n, only_a, only_b);
        let (client, server) = (node(1, a), node(2, b));
        let report = sync_fresh_pipe(&client, &server, ProtocolChoice::Auto).await;
        assert_eq!(
            report.selection.protocol, want,
            "case {n}/{only_a}/{only_b}"
        );
        assert!(
            report.selection.reason.starts_with(reason),
            "{}",
            report.selection.reason
        );
        assert!(report.converged());
        assert_eq!(report.json().reason, report.selection.reason);
        assert_same_verified_state(&client, &server);
    }
}

#[tokio::test]
async fn every_forced_protocol_converges_diverged_replicas() {
    for protocol in [
        ProtocolKind::HashComparison,
        ProtocolKind::LevelWise,
        ProtocolKind::Snapshot,
        ProtocolKind::Sketch,
    ] {
        let (a, b) = replicas(3_000, 40, 60);
        let (client, server) = (node(1, a), node(2, b));
        let report = sync_fresh_pipe(&client, &server, ProtocolChoice::Force(protocol)).await;
        assert_eq!(report.selection.protocol, Some(protocol));
        assert_eq!(report.selection.reason, "forced");
        let stats = report.stats.as_ref().expect("stats");
        assert_eq!(stats.entries_pushed, 40, "{protocol:?}");
        assert!(report.converged(), "{protocol:?}");
        assert_same_verified_state(&client, &server);
    }
}

/// A [`Tap`] hook that fails every send after the first `sends` ones: a connection
/// lost mid-session, seen from the side that was writing.
struct CutAfter {
    sends: usize,
}

impl TransportHook for CutAfter {
    fn before_send(&mut self, _: &StreamMessage) -> Result<(), TransportError> {
        self.sends = self.sends.checked_sub(1).ok_or(TransportError::Closed)?;
        Ok(())
    }
}

#[tokio::test]
async fn an_interrupted_snapshot_resumes_in_the_next_session() {
    // ~12 pages of 1 MiB: big values so that pages fill up.
    let big = |i: usize| {
        Entry::put(
            format!("big-{i}"),
            vec![i as u8; 10_000],
            Version::new(1, NodeId(2)),
        )
    };
    let (client, server) = (node(1, vec![]), node(2, (0..1_200).map(big).collect()));

    // Handshake + begin + 6 pages, then the responder's connection dies.
    let (mut a, b) = FramedTransport::memory_pair(1 << 16);
    let mut cut = Tap::new(b, CutAfter { sends: 8 });
    let first = sync(&client, &server, &mut a, &mut cut, ProtocolChoice::Auto).await;
    assert!(first.is_err(), "the cut session must fail");
    let applied = client.store().summary(&ctx()).expect("summary").entry_count;
    assert!(applied > 0, "the pages that arrived are applied");

    let (mut a, mut b) = FramedTransport::memory_pair(1 << 16);
    let second = sync(&client, &server, &mut a, &mut b, ProtocolChoice::Auto)
        .await
        .expect("resumed session");
    assert_eq!(second.selection.protocol, Some(ProtocolKind::Snapshot));
    assert_eq!(second.selection.reason, "resuming an interrupted snapshot");
    assert!(second.converged());
    assert_same_verified_state(&client, &server);
    // The resumed session moved at most the missing pages plus one.
    let total = 1_200 * 10_000;
    let pulled = second.stats.as_ref().expect("stats").payload_bytes as usize;
    assert!(
        pulled < total - 4 * 1024 * 1024,
        "pulled {pulled} of {total}"
    );
}

#[tokio::test]
async fn a_snapshot_cut_before_a_restart_resumes_from_the_progress_saved_in_the_store() {
    let big = |i: usize| {
        Entry::put(
            format!("big-{i}"),
            vec![i as u8; 10_000],
            Version::new(1, NodeId(2)),
        )
    };
    let server = node(2, (0..1_200).map(big).collect());
    let before = node(1, vec![]);
    let (mut a, b) = FramedTransport::memory_pair(1 << 16);
    let mut cut = Tap::new(b, CutAfter { sends: 8 });
    let first = sync(&before, &server, &mut a, &mut cut, ProtocolChoice::Auto).await;
    assert!(first.is_err(), "the cut session must fail");
    let applied = before.store().summary(&ctx()).expect("summary").entry_count;

    // A restart: a new manager (nothing in memory) over the same store.
    let store = before.store().clone();
    drop(before);
    let after = SyncManager::new(store, Identity::new(NodeId(1)), ManagerConfig::default());
    let (mut a, mut b) = FramedTransport::memory_pair(1 << 16);
    let second = sync(&after, &server, &mut a, &mut b, ProtocolChoice::Auto)
        .await
        .expect("resumed session");
    assert_eq!(second.selection.reason, "resuming an interrupted snapshot");
    assert!(second.converged());
    assert_same_verified_state(&after, &server);
    // Entries received twice: at most one page's worth (a page holds ~104 of them).
    let pulled = second.stats.as_ref().expect("stats").entries_pulled;
    let resent = (applied + pulled).saturating_sub(1_200);
    assert!(resent <= 105, "{resent} entries re-sent");
    let key = synctree_manager::snapshot_progress_key(a.peer(), &ctx());
    assert_eq!(
        after.store().load_sync_state(&key).expect("load"),
        None,
        "saved progress is removed once done"
    );
}
