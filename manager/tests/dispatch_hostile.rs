//! Hostile byte streams at the manager's first-message dispatch: valid opening
//! frames corrupted on the wire (bytes flipped, stream cut short) or replaced by
//! noise. The manager never panics, always ends the stream, and a refused stream
//! leaves the store as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use proptest::prelude::*;
use prost::Message;
use synctree_manager::{ManagerConfig, ManagerError, SyncManager};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    Handshake, HashComparisonInit, InitPayload, NodeChildren, NodeRequest, PROTOCOL_VERSION,
    SnapshotInit,
};
use synctree_primitives::{ContextId, Entry, Identity, NodeId, Store, StreamMessage, Version};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;
use tokio::io::AsyncWriteExt;

fn ctx() -> ContextId {
    ContextId::new("hostile").expect("valid context")
}

fn init(kind: Kind) -> StreamMessage {
    StreamMessage::new(Body::Init(InitPayload {
        protocol_version: PROTOCOL_VERSION,
        context_id: ctx().as_str().to_owned(),
        kind: Some(kind),
    }))
}

/// A plausible opening: a handshake, then a protocol init and its first request.
fn opening() -> Vec<u8> {
    let messages = [
        init(Kind::Handshake(Handshake {
            root: vec![1; 32].into(),
            entry_count: 3,
            tree_depth: 4,
            has_state: true,
            supported: vec![1, 2, 3],
            node_id: 9,
            compression: vec![1],
            top_fingerprint: Default::default(),
            nonce: vec![5; 16].into(),
            sketch_len: 0,
            sketch_probe: Default::default(),
            gc_watermark: u64::MAX,
        })),
        init(Kind::HashComparison(HashComparisonInit {
            root: vec![1; 32].into(),
        })),
        StreamMessage::new(Body::NodeRequest(NodeRequest {
            request_id: 0,
            positions: vec![0, 1],
            compare: vec![NodeChildren {
                position: 0,
                present: 1,
                hashes: vec![7; 8].into(),
            }],
        })),
        init(Kind::Snapshot(SnapshotInit {
            root: vec![0; 32].into(),
            window: 2,
            ..SnapshotInit::default()
        })),
    ];
    let mut bytes = Vec::new();
    for m in messages {
        let body = m.encode_to_vec();
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
    }
    bytes
}

/// Feeds `bytes` to a fresh manager and ends the stream; returns whether the
/// store kept its root and whether the stream was refused.
fn serve(bytes: Vec<u8>) -> (bool, bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = MemoryStore::new();
        let entries = (0..20).map(|i| Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(2))));
        store.apply(&ctx(), entries.collect()).expect("apply");
        let before = store.summary(&ctx()).expect("summary").root;
        let manager = SyncManager::new(
            Arc::new(store),
            Identity::new(NodeId(2)),
            ManagerConfig::default(),
        );
        let (mut raw, server_end) = tokio::io::duplex(1 << 20);
        raw.write_all(&bytes).await.expect("write");
        raw.shutdown().await.expect("shutdown");
        let mut server = FramedTransport::new(server_end, "hostile");
        let outcome = manager.handle_stream(&mut server).await;
        let kept = manager.store().summary(&ctx()).expect("summary").root == before;
        (kept, matches!(outcome, Err(ManagerError::Rejected { .. })))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_corrupted_opening_never_panics_and_a_refusal_changes_nothing(
        flips in prop::collection::vec((any::<usize>(), 1u8..=255), 0..6),
        cut in prop::option::of(any::<usize>()),
    ) {
        let mut bytes = opening();
        let len = bytes.len();
        for (at, mask) in flips {
            bytes[at % len] ^= mask;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % len);
        }
        let (kept, refused) = serve(bytes);
        prop_assert!(kept || !refused, "a refused stream changed the store");
    }

    #[test]
    fn noise_never_panics_and_changes_nothing(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (kept, _) = serve(bytes);
        prop_assert!(kept);
    }
}

#[test]
fn the_uncorrupted_opening_reaches_a_protocol() {
    // Sanity check of the generator: the clean opening is served (handshake
    // answered, HashComparison started) and only the stray snapshot init after
    // the node request is refused.
    let (kept, refused) = serve(opening());
    assert!(
        kept && !refused,
        "kept {kept}, refused at dispatch {refused}"
    );
}
