//! Compare requests at the responder: what it answers for each differing child,
//! and how it refuses hostile compare items.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, diverged, store_with};
use synctree_primitives::limits::{MAX_NODES_PER_REQUEST, NODE_HASH_BYTES};
use synctree_primitives::merkle::{FANOUT, NODE_COUNT};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{NodeChildren, NodeRequest};
use synctree_primitives::{Hash, NodePos, ProtocolError, Store, StreamMessage};
use synctree_protocols::Machine;
use synctree_store::MemoryStore;

use common::tree::*;

// ---------------------------------------------------------------------------
// Responder: answers
// ---------------------------------------------------------------------------

#[test]
fn responder_answers_each_differing_child_with_its_children() {
    let (a, b) = diverged(3_000, 4);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let mine = children_of(&sa, NodePos::ROOT);
    let theirs = children_of(&sb, NodePos::ROOT);
    let mut r = responder();
    let item = children_msg(NodePos::ROOT, &mine);
    r.handle(&sb, crate::common::now(), compare_request(5, vec![item]))
        .expect("valid compare");
    let frames = answers(&mut r, &sb);
    let expected: Vec<NodeChildren> = (0..FANOUT)
        .filter(|&c| mine[c] != theirs[c])
        .map(|c| NodePos::ROOT.child(c))
        .map(|child| children_msg(child, &children_of(&sb, child)))
        .collect();
    assert!(
        (1..FANOUT).contains(&expected.len()),
        "some, not all, differ"
    );
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].request_id, frames[0].last), (5, true));
    assert_eq!(frames[0].children, expected);
    assert!(frames[0].leaves.is_empty());
}

#[test]
fn responder_answers_nothing_for_equal_children() {
    let (a, _) = diverged(2_000, 0);
    let store = store_with(&a);
    let mut r = responder();
    let item = children_msg(NodePos::ROOT, &children_of(&store, NodePos::ROOT));
    r.handle(&store, crate::common::now(), compare_request(0, vec![item]))
        .expect("valid");
    let frames = answers(&mut r, &store);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].last && frames[0].children.is_empty() && frames[0].leaves.is_empty());
}

/// A level-3 node of `store` with at least two non-empty leaves and one empty one.
fn mixed_level3_node(store: &MemoryStore) -> (NodePos, [Hash; FANOUT]) {
    (0..4096)
        .map(|i| NodePos::new(3, i))
        .map(|pos| (pos, children_of(store, pos)))
        .find(|(_, ch)| {
            let full = ch.iter().filter(|h| !h.is_zero()).count();
            (2..FANOUT).contains(&full)
        })
        .expect("such a node")
}

#[test]
fn responder_answers_compared_leaves_with_summaries_and_missing_ones_empty() {
    let (b, _) = diverged(20_000, 0);
    let store = store_with(&b);
    let (x, theirs) = mixed_level3_node(&store);
    let full: Vec<usize> = (0..FANOUT).filter(|&c| !theirs[c].is_zero()).collect();
    let empty = (0..FANOUT)
        .find(|&c| theirs[c].is_zero())
        .expect("an empty leaf");
    let mut mine = theirs;
    mine[full[0]] = Hash([0x11; 32]); // differs
    mine[full[1]] = Hash::ZERO; // the initiator lacks it
    mine[empty] = Hash([0x22; 32]); // the responder lacks it
    let mut r = responder();
    r.handle(
        &store,
        crate::common::now(),
        compare_request(1, vec![children_msg(x, &mine)]),
    )
    .expect("valid");
    let frames = answers(&mut r, &store);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].children.is_empty());
    let mut want = [full[0], full[1], empty];
    want.sort();
    let got: Vec<u32> = frames[0].leaves.iter().map(|l| l.position).collect();
    let want: Vec<u32> = want.iter().map(|&c| x.child(c).raw()).collect();
    assert_eq!(got, want);
    for leaf in &frames[0].leaves {
        let pos = NodePos::from_wire(leaf.position).expect("position");
        let (low, high) = pos.key_hash_range();
        let held = store.range(&ctx(), &low, &high, usize::MAX).expect("range");
        assert_eq!(leaf.entries.len(), held.len());
        assert_eq!(held.is_empty(), slot(pos) == empty);
        assert!(!leaf.partial);
    }
}

#[test]
fn responder_answers_an_internal_child_it_lacks_with_an_empty_bitmap() {
    let (b, _) = diverged(50, 0);
    let store = store_with(&b);
    // A level-1 node with some, not all, of its 16 children: 50 entries spread over
    // 256 level-2 nodes.
    let leaf = NodePos::leaf_of(&b[0].key_hash());
    let x = leaf.parent().and_then(NodePos::parent);
    let x = x.and_then(NodePos::parent).expect("level 1");
    let mut mine = children_of(&store, x);
    let missing = (0..FANOUT)
        .find(|&c| mine[c].is_zero())
        .expect("an empty child");
    mine[missing] = Hash([0x33; 32]);
    let mut r = responder();
    r.handle(
        &store,
        crate::common::now(),
        compare_request(2, vec![children_msg(x, &mine)]),
    )
    .expect("valid");
    let frames = answers(&mut r, &store);
    let lacks = NodeChildren {
        position: x.child(missing).raw(),
        present: 0,
        hashes: Default::default(),
    };
    assert_eq!(frames[0].children, vec![lacks]);
}

#[test]
fn positions_and_compare_items_share_one_request() {
    let (a, b) = diverged(3_000, 4);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let item = children_msg(NodePos::ROOT, &children_of(&sa, NodePos::ROOT));
    let leaf = NodePos::new(4, 77);
    let req = StreamMessage::new(Body::NodeRequest(NodeRequest {
        request_id: 9,
        positions: vec![leaf.raw(), 3],
        compare: vec![item],
    }));
    let mut r = responder();
    r.handle(&sb, crate::common::now(), req).expect("valid");
    let frames = answers(&mut r, &sb);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].leaves.len(), 1);
    let node3 = NodePos::new(1, 2);
    assert_eq!(
        frames[0].children[0],
        children_msg(node3, &children_of(&sb, node3))
    );
    assert!(frames[0].children.len() > 1, "plus the compare answers");
}

// ---------------------------------------------------------------------------
// Responder: hostile compare items
// ---------------------------------------------------------------------------

fn refused(compare: Vec<NodeChildren>) -> ProtocolError {
    let store = MemoryStore::new();
    let mut r = responder();
    let err = protocol_error(r.handle(&store, crate::common::now(), compare_request(0, compare)));
    assert!(
        r.poll_transmit(&store, crate::common::now())
            .expect("poll")
            .is_none(),
        "nothing queued"
    );
    err
}

#[test]
fn responder_limits_compare_items_with_positions_per_request() {
    let store = MemoryStore::new();
    let too_many = vec![item(0, 0, 0); MAX_NODES_PER_REQUEST + 1];
    assert!(matches!(
        refused(too_many),
        ProtocolError::LimitExceeded {
            what: "nodes per request",
            ..
        }
    ));
    let distinct = |n: u32| {
        (0..n)
            .map(|p| item(p, 1, NODE_HASH_BYTES))
            .collect::<Vec<_>>()
    };
    let mixed = StreamMessage::new(Body::NodeRequest(NodeRequest {
        request_id: 0,
        positions: vec![0; MAX_NODES_PER_REQUEST / 2 + 1],
        compare: distinct(MAX_NODES_PER_REQUEST as u32 / 2),
    }));
    assert!(matches!(
        protocol_error(responder().handle(&store, crate::common::now(), mixed)),
        ProtocolError::LimitExceeded { .. }
    ));
    let at_limit = distinct(MAX_NODES_PER_REQUEST as u32);
    assert!(
        responder()
            .handle(&store, crate::common::now(), compare_request(0, at_limit))
            .is_ok()
    );
}

#[test]
fn responder_refuses_compare_items_at_bad_positions() {
    let leaf = NodePos::new(4, 0).raw();
    for position in [NODE_COUNT, u32::MAX, leaf, NODE_COUNT - 1] {
        assert_eq!(
            refused(vec![item(position, 0, 0)]),
            ProtocolError::BadPosition(position)
        );
    }
    assert!(matches!(
        refused(vec![item(5, 0, 0), item(5, 0, 0)]),
        ProtocolError::Malformed(_)
    ));
}

#[test]
fn responder_refuses_bad_bitmaps_and_hash_lengths() {
    let wide = item(0, 1 << 16 | 1, 2 * NODE_HASH_BYTES);
    assert!(matches!(refused(vec![wide]), ProtocolError::Malformed(_)));
    let all_bits = item(0, u32::MAX, 32 * NODE_HASH_BYTES);
    assert!(matches!(
        refused(vec![all_bits]),
        ProtocolError::Malformed(_)
    ));
    for bytes in [0, NODE_HASH_BYTES - 1, NODE_HASH_BYTES + 1, 32] {
        assert!(matches!(
            refused(vec![item(0, 1, bytes)]),
            ProtocolError::BadLength {
                field: "hashes",
                ..
            }
        ));
    }
    let mut zero = item(0, 0b11, 2 * NODE_HASH_BYTES);
    zero.hashes = [vec![7; NODE_HASH_BYTES], vec![0; NODE_HASH_BYTES]]
        .concat()
        .into();
    assert!(matches!(refused(vec![zero]), ProtocolError::Malformed(_)));
}
