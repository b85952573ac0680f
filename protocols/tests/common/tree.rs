//! Helpers shared by the compare-request tests.

#![allow(dead_code, unused_imports, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{ctx, diverged, store_with};
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    KEY_PREFIX_BYTES, MAX_ENTRIES_PER_PREFIX, MAX_NODES_PER_REQUEST, NODE_HASH_BYTES,
};
use synctree_primitives::merkle::{FANOUT, NODE_COUNT};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    EntryBatch, EntryRequest, EntrySummary, HashComparisonInit, LeafSummary, NodeChildren,
    NodeRequest, NodeResponse, WireEntry,
};
use synctree_primitives::{
    Entry, Hash, NodeId, NodePos, ProtocolError, ProtocolKind, Store, StoredEntry, StreamMessage,
    Version,
};
use synctree_protocols::{
    Machine, Schedule, TreeConfig, TreeInitiator, TreeResponder, init_message,
};
use synctree_store::MemoryStore;

const KIND: ProtocolKind = ProtocolKind::HashComparison;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `NodeChildren` for `children`: a bitmap of the non-zero ones and the first
/// `NODE_HASH_BYTES` bytes of each, truncated under the fixed no-handshake key.
pub fn children_msg(pos: NodePos, children: &[Hash; FANOUT]) -> NodeChildren {
    let mut present = 0;
    let mut hashes = Vec::new();
    for (c, h) in children.iter().enumerate().filter(|(_, h)| !h.is_zero()) {
        present |= 1 << c;
        // Machines without a handshake truncate under the fixed key.
        hashes.extend_from_slice(&synctree_primitives::salt::SessionKey::default().truncate(h));
    }
    NodeChildren {
        position: pos.raw(),
        present,
        hashes: hashes.into(),
    }
}

pub fn children_of(store: &MemoryStore, pos: NodePos) -> [Hash; FANOUT] {
    store.children(&ctx(), pos).expect("children")
}

pub fn compare_request(request_id: u32, compare: Vec<NodeChildren>) -> StreamMessage {
    StreamMessage::new(Body::NodeRequest(NodeRequest {
        request_id,
        positions: vec![],
        compare,
    }))
}

pub fn response(
    request_id: u32,
    children: Vec<NodeChildren>,
    leaves: Vec<LeafSummary>,
) -> StreamMessage {
    StreamMessage::new(Body::NodeResponse(NodeResponse {
        request_id,
        children,
        leaves,
        last: true,
    }))
}

pub fn responder() -> TreeResponder {
    TreeResponder::new(ctx(), KIND, Hash::ZERO)
}

/// Every node response frame the responder has to send.
pub fn answers(r: &mut TreeResponder, store: &MemoryStore) -> Vec<NodeResponse> {
    std::iter::from_fn(|| {
        r.poll_transmit(store, crate::common::now())
            .expect("answer")
    })
    .map(|m| match m.body {
        Some(Body::NodeResponse(resp)) => resp,
        other => panic!("expected a node response, got {other:?}"),
    })
    .collect()
}

pub fn protocol_error(result: Result<(), SyncErrorKind>) -> ProtocolError {
    match result {
        Err(SyncErrorKind::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// Child index of `pos` under its parent.
pub fn slot(pos: NodePos) -> usize {
    pos.index() as usize % FANOUT
}

/// A compare item or answer with `hash_bytes` bytes of 7s as hashes.
pub fn item(position: u32, present: u32, hash_bytes: usize) -> NodeChildren {
    NodeChildren {
        position,
        present,
        hashes: vec![7; hash_bytes].into(),
    }
}
