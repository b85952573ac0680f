//! What a leaf summary costs on the wire per entry, now that entries are named by
//! `KEY_PREFIX_BYTES` of their key hash instead of all 32.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, store_with};
use prost::Message;
use synctree_primitives::limits::KEY_PREFIX_BYTES;
use synctree_primitives::wire::NodeRequest;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{Entry, Hash, NodeId, NodePos, ProtocolKind, StreamMessage, Version};
use synctree_protocols::{Machine, TreeResponder};

/// A clock reading of today (milliseconds since 1970 in the upper 48 bits), so the
/// varint of `hlc` has a realistic length.
const HLC: u64 = 1_764_000_000_000 << 16;

#[test]
fn an_entry_summary_costs_29_bytes() {
    let entries: Vec<Entry> = (0..20_000)
        .map(|i| {
            Entry::put(
                format!("key-{i:010}"),
                "v",
                Version::new(HLC + i, NodeId(7)),
            )
        })
        .collect();
    let store = store_with(&entries);
    let leaves: Vec<u32> = entries
        .iter()
        .take(256)
        .map(|e| NodePos::leaf_of(&e.key_hash()).raw())
        .collect();
    let mut r = TreeResponder::new(ctx(), ProtocolKind::HashComparison, Hash::ZERO);
    let req = NodeRequest {
        request_id: 1,
        positions: leaves,
        compare: vec![],
    };
    r.handle(
        &store,
        crate::common::now(),
        StreamMessage::new(Body::NodeRequest(req)),
    )
    .expect("valid");
    let mut summaries = 0;
    while let Some(m) = r
        .poll_transmit(&store, crate::common::now())
        .expect("answer")
    {
        let Some(Body::NodeResponse(resp)) = m.body else {
            panic!("expected a node response");
        };
        for e in resp.leaves.iter().flat_map(|l| &l.entries) {
            // Field tag and length in the LeafSummary, then: 1 + 1 + 8 (prefix),
            // 1 + 9 (hlc), 1 + 1 (node), 1 + 4 (check). With 32-byte key hashes it
            // was 53.
            assert_eq!(2 + e.encoded_len(), 29, "{e:?}");
            assert_eq!(e.key_prefix.len(), KEY_PREFIX_BYTES);
            summaries += 1;
        }
    }
    assert!(summaries >= 256, "{summaries}");
}
