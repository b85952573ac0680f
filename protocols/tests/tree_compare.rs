//! Compare requests: what the responder answers for a compare item, what the
//! initiator sends and accepts, and how both refuse a peer that breaks the rules.
//! Child hashes travel truncated to `NODE_HASH_BYTES`; the helpers here build that
//! encoding independently of the crate, as a check of the wire format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, diverged, store_with};
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
/// `NODE_HASH_BYTES` bytes of each.
fn children_msg(pos: NodePos, children: &[Hash; FANOUT]) -> NodeChildren {
    let mut present = 0;
    let mut hashes = Vec::new();
    for (c, h) in children.iter().enumerate().filter(|(_, h)| !h.is_zero()) {
        present |= 1 << c;
        hashes.extend_from_slice(&h.0[..NODE_HASH_BYTES]);
    }
    NodeChildren {
        position: pos.raw(),
        present,
        hashes: hashes.into(),
    }
}

fn children_of(store: &MemoryStore, pos: NodePos) -> [Hash; FANOUT] {
    store.children(&ctx(), pos).expect("children")
}

fn compare_request(request_id: u32, compare: Vec<NodeChildren>) -> StreamMessage {
    StreamMessage::new(Body::NodeRequest(NodeRequest {
        request_id,
        positions: vec![],
        compare,
    }))
}

fn response(
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

fn responder() -> TreeResponder {
    TreeResponder::new(ctx(), KIND, Hash::ZERO)
}

/// Every node response frame the responder has to send.
fn answers(r: &mut TreeResponder, store: &MemoryStore) -> Vec<NodeResponse> {
    std::iter::from_fn(|| r.poll_transmit(store).expect("answer"))
        .map(|m| match m.body {
            Some(Body::NodeResponse(resp)) => resp,
            other => panic!("expected a node response, got {other:?}"),
        })
        .collect()
}

fn protocol_error(result: Result<(), SyncErrorKind>) -> ProtocolError {
    match result {
        Err(SyncErrorKind::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// Child index of `pos` under its parent.
fn slot(pos: NodePos) -> usize {
    pos.index() as usize % FANOUT
}

/// A compare item or answer with `hash_bytes` bytes of 7s as hashes.
fn item(position: u32, present: u32, hash_bytes: usize) -> NodeChildren {
    NodeChildren {
        position,
        present,
        hashes: vec![7; hash_bytes].into(),
    }
}

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
    r.handle(&sb, compare_request(5, vec![item]))
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
    r.handle(&store, compare_request(0, vec![item]))
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
    r.handle(&store, compare_request(1, vec![children_msg(x, &mine)]))
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
    r.handle(&store, compare_request(2, vec![children_msg(x, &mine)]))
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
    r.handle(&sb, req).expect("valid");
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
    let err = protocol_error(r.handle(&store, compare_request(0, compare)));
    assert!(
        r.poll_transmit(&store).expect("poll").is_none(),
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
        protocol_error(responder().handle(&store, mixed)),
        ProtocolError::LimitExceeded { .. }
    ));
    let at_limit = distinct(MAX_NODES_PER_REQUEST as u32);
    assert!(
        responder()
            .handle(&store, compare_request(0, at_limit))
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

// ---------------------------------------------------------------------------
// Initiator: what it sends, what it accepts
// ---------------------------------------------------------------------------

/// An initiator over `store` that has sent its init; returns it with its first
/// node request.
fn started(store: &MemoryStore) -> (TreeInitiator, NodeRequest) {
    let init = init_message(&ctx(), Kind::HashComparison(HashComparisonInit::default()));
    let root = store.summary(&ctx()).expect("summary").root;
    let config = TreeConfig::default();
    let mut i = TreeInitiator::new(ctx(), KIND, Schedule::Eager, config, init, root);
    let init = i.poll_transmit(store).expect("init").map(|m| m.kind());
    assert_eq!(init, Some("init"));
    let first = next_request(&mut i, store);
    (i, first)
}

fn next_request(i: &mut TreeInitiator, store: &MemoryStore) -> NodeRequest {
    match i.poll_transmit(store).expect("poll").and_then(|m| m.body) {
        Some(Body::NodeRequest(req)) => req,
        other => panic!("expected a node request, got {other:?}"),
    }
}

/// One entry, and the nodes on its path: level 1, 2, 3 and its leaf.
fn one_entry() -> (MemoryStore, [NodePos; 4]) {
    let entry = Entry::put("only", "v", Version::new(1, NodeId(1)));
    let leaf = NodePos::leaf_of(&entry.key_hash());
    let l3 = leaf.parent().expect("parent");
    let l2 = l3.parent().expect("parent");
    let l1 = l2.parent().expect("parent");
    (store_with(&[entry]), [l1, l2, l3, leaf])
}

/// The children of `pos`'s parent as a peer holding only `pos`, with a made-up
/// hash, would send them.
fn other_hash(pos: NodePos, byte: u8) -> NodeChildren {
    let parent = pos.parent().expect("parent");
    NodeChildren {
        position: parent.raw(),
        present: 1 << slot(pos),
        hashes: vec![byte; NODE_HASH_BYTES].into(),
    }
}

/// The initiator's error for an answer to its first request (compare the root).
fn answer_error(children: Vec<NodeChildren>, leaves: Vec<LeafSummary>) -> ProtocolError {
    let (store, _) = one_entry();
    let (mut i, first) = started(&store);
    protocol_error(i.handle(&store, response(first.request_id, children, leaves)))
}

#[test]
fn initiator_descends_two_levels_per_request_then_fetches_leaves() {
    let (store, [l1, l2, l3, leaf]) = one_entry();
    let (mut i, first) = started(&store);
    assert!(first.positions.is_empty());
    let root_children = children_of(&store, NodePos::ROOT);
    assert_eq!(
        first.compare,
        vec![children_msg(NodePos::ROOT, &root_children)]
    );

    // The peer holds something else under l2: it answers with l1's children.
    i.handle(
        &store,
        response(first.request_id, vec![other_hash(l2, 0xaa)], vec![]),
    )
    .expect("valid");
    let second = next_request(&mut i, &store);
    assert!(second.positions.is_empty());
    let mine = children_msg(l2, &children_of(&store, l2));
    assert_eq!(second.compare, vec![mine]);

    // Under l3 the peer's leaf differs: the initiator asks for its summary.
    i.handle(
        &store,
        response(second.request_id, vec![other_hash(leaf, 0xbb)], vec![]),
    )
    .expect("valid");
    let third = next_request(&mut i, &store);
    assert_eq!((third.positions, third.compare), (vec![leaf.raw()], vec![]));
    assert_eq!(i.stats().nodes_compared, 4, "root, l1, l2 and l3");
    assert_eq!(
        (l1.level(), l2.level(), l3.level(), leaf.level()),
        (1, 2, 3, 4)
    );
}

#[test]
fn initiator_pushes_a_subtree_the_peer_answers_as_empty() {
    let (store, [l1, ..]) = one_entry();
    let (mut i, first) = started(&store);
    let lacks = NodeChildren {
        position: l1.raw(),
        present: 0,
        hashes: Default::default(),
    };
    i.handle(&store, response(first.request_id, vec![lacks], vec![]))
        .expect("valid");
    let next = i.poll_transmit(&store).expect("poll").map(|m| m.kind());
    assert_eq!(next, Some("entry push"));
}

#[test]
fn initiator_refuses_answers_for_children_never_compared_or_answered_twice() {
    let (store, [_, l2, _, leaf]) = one_entry();
    let grandchild = children_msg(l2, &children_of(&store, l2));
    let leaf = LeafSummary {
        position: leaf.raw(),
        ..LeafSummary::default()
    };
    for err in [
        answer_error(vec![other_hash(l2, 0xaa), other_hash(l2, 0xaa)], vec![]),
        answer_error(vec![grandchild], vec![]),
        answer_error(vec![], vec![leaf]),
    ] {
        assert!(matches!(err, ProtocolError::Unsolicited(_)), "{err:?}");
    }
}

#[test]
fn initiator_refuses_malformed_answers() {
    let (_, [l1, ..]) = one_entry();
    let l1 = l1.raw();
    let wide = answer_error(vec![item(l1, 1 << 16, 0)], vec![]);
    assert!(matches!(wide, ProtocolError::Malformed(_)), "{wide:?}");
    for bytes in [32, NODE_HASH_BYTES - 1] {
        let err = answer_error(vec![item(l1, 1, bytes)], vec![]);
        assert!(matches!(err, ProtocolError::BadLength { .. }), "{err:?}");
    }
    let zero = NodeChildren {
        hashes: vec![0; NODE_HASH_BYTES].into(),
        ..item(l1, 1, 0)
    };
    let err = answer_error(vec![zero], vec![]);
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
    let leaf = NodePos::new(4, 3).raw();
    let err = answer_error(vec![item(leaf, 0, 0)], vec![]);
    assert_eq!(err, ProtocolError::BadPosition(leaf));
    // A leaf summary at an internal position.
    let summary = LeafSummary {
        position: l1,
        ..LeafSummary::default()
    };
    assert_eq!(
        answer_error(vec![], vec![summary]),
        ProtocolError::BadPosition(l1)
    );
}

/// An initiator over `one_entry` driven to its leaf fetch; returns the request id.
fn fetching_leaf(store: &MemoryStore, [_, l2, _, leaf]: [NodePos; 4]) -> (TreeInitiator, u32) {
    let (mut i, first) = started(store);
    let answer = vec![other_hash(l2, 0xaa)];
    i.handle(store, response(first.request_id, answer, vec![]))
        .expect("valid");
    let second = next_request(&mut i, store);
    let answer = vec![other_hash(leaf, 0xbb)];
    i.handle(store, response(second.request_id, answer, vec![]))
        .expect("valid");
    let third = next_request(&mut i, store);
    assert_eq!(third.positions, vec![leaf.raw()]);
    (i, third.request_id)
}

#[test]
fn initiator_refuses_a_last_frame_that_lies() {
    let (store, path) = one_entry();
    let leaf = path[3];
    let before = store.summary(&ctx()).expect("summary");

    // The last frame leaves the fetched leaf unanswered.
    let (mut i, id) = fetching_leaf(&store, path);
    let err = protocol_error(i.handle(&store, response(id, vec![], vec![])));
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");

    // The last frame ends in the middle of the leaf's summary.
    let (mut i, id) = fetching_leaf(&store, path);
    let part = LeafSummary {
        position: leaf.raw(),
        partial: true,
        ..LeafSummary::default()
    };
    let err = protocol_error(i.handle(&store, response(id, vec![], vec![part])));
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");

    // A frame after the last one.
    let (mut i, id) = fetching_leaf(&store, path);
    let whole = LeafSummary {
        position: leaf.raw(),
        ..LeafSummary::default()
    };
    i.handle(&store, response(id, vec![], vec![whole.clone()]))
        .expect("valid");
    let err = protocol_error(i.handle(&store, response(id, vec![], vec![whole])));
    assert!(matches!(err, ProtocolError::Unsolicited(_)), "{err:?}");
    assert_eq!(
        store.summary(&ctx()).expect("summary"),
        before,
        "nothing applied"
    );
}

// ---------------------------------------------------------------------------
// Initiator: leaf summaries by key-hash prefix, and prefix pulls
// ---------------------------------------------------------------------------

/// The entry `one_entry` holds.
fn the_entry() -> Entry {
    Entry::put("only", "v", Version::new(1, NodeId(1)))
}

fn prefix_of(entry: &Entry) -> Vec<u8> {
    entry.key_hash().0[..KEY_PREFIX_BYTES].to_vec()
}

/// A summary of `prefix` at version (`hlc`, node 9).
fn summary(prefix: &[u8], hlc: u64) -> EntrySummary {
    EntrySummary {
        key_prefix: prefix.to_vec().into(),
        hlc,
        node: 9,
        check: 0,
    }
}

/// The result of answering `one_entry`'s leaf fetch with `entries`, the initiator
/// and its store, and everything the initiator sent next.
fn after_summary(
    entries: Vec<EntrySummary>,
) -> (
    Result<(), SyncErrorKind>,
    TreeInitiator,
    MemoryStore,
    Vec<Body>,
) {
    let (store, path) = one_entry();
    let (mut i, id) = fetching_leaf(&store, path);
    let leaf = LeafSummary {
        position: path[3].raw(),
        entries,
        partial: false,
    };
    let result = i.handle(&store, response(id, vec![], vec![leaf]));
    let mut sent = Vec::new();
    if result.is_ok() {
        while let Some(m) = i.poll_transmit(&store).expect("poll") {
            sent.extend(m.body);
            if matches!(sent.last(), Some(Body::Finish(_))) {
                break;
            }
        }
    }
    (result, i, store, sent)
}

fn entry_request(sent: &[Body]) -> &EntryRequest {
    sent.iter()
        .find_map(|b| match b {
            Body::EntryRequest(r) => Some(r),
            _ => None,
        })
        .expect("an entry request")
}

fn pushed(sent: &[Body]) -> Vec<WireEntry> {
    sent.iter()
        .filter_map(|b| match b {
            Body::EntryPush(p) => Some(p.entries.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A prefix in the same leaf as the entry, but not the entry's.
fn neighbour_prefix() -> Vec<u8> {
    let mut p = prefix_of(&the_entry());
    p[KEY_PREFIX_BYTES - 1] ^= 0x5a;
    p
}

#[test]
fn initiator_pulls_by_key_prefix_and_pushes_what_the_peer_lacks() {
    let theirs = neighbour_prefix();
    let (result, _, _, sent) = after_summary(vec![summary(&theirs, 5)]);
    result.expect("valid summary");
    let req = entry_request(&sent);
    assert!(req.key_hashes.is_empty() && req.subtrees.is_empty());
    assert_eq!(req.key_prefixes, vec![theirs]);
    assert_eq!(pushed(&sent), vec![WireEntry::from(&the_entry())]);
}

#[test]
fn initiator_reconciles_a_collided_prefix_as_a_group() {
    // The peer holds two keys starting with our entry's prefix: one is our entry at
    // our version, the other unknown. Neither can be told apart by prefix, so the
    // prefix is pulled once and our entry pushed, even though one summary matches.
    let entry = the_entry();
    let stored = StoredEntry::new(entry.clone());
    let check = u32::from_be_bytes([
        stored.digest.0[0],
        stored.digest.0[1],
        stored.digest.0[2],
        stored.digest.0[3],
    ]);
    let prefix = prefix_of(&entry);
    let same = EntrySummary {
        hlc: 1,
        node: 1,
        check,
        ..summary(&prefix, 1)
    };
    let (result, _, _, sent) = after_summary(vec![same.clone(), summary(&prefix, 7)]);
    result.expect("a collision is valid");
    assert_eq!(entry_request(&sent).key_prefixes, vec![prefix]);
    assert_eq!(pushed(&sent), vec![WireEntry::from(&entry)]);
    // Without the collision the same summary means "in sync": nothing moves.
    let (result, _, _, sent) = after_summary(vec![same]);
    result.expect("valid");
    assert!(matches!(sent.as_slice(), [Body::Finish(_)]), "{sent:?}");
}

#[test]
fn initiator_refuses_hostile_leaf_summaries() {
    let prefix = prefix_of(&the_entry());
    let full = the_entry().key_hash().0.to_vec();
    let (result, ..) = after_summary(vec![summary(&full, 5)]);
    let err = protocol_error(result);
    assert!(
        matches!(err, ProtocolError::BadLength { got: 32, .. }),
        "{err:?}"
    );
    let crowd = vec![summary(&prefix, 5); MAX_ENTRIES_PER_PREFIX + 1];
    let (result, ..) = after_summary(crowd);
    let err = protocol_error(result);
    assert!(
        matches!(err, ProtocolError::LimitExceeded { .. }),
        "{err:?}"
    );
    let mut elsewhere = prefix.clone();
    elsewhere[0] ^= 0xff;
    let (result, ..) = after_summary(vec![summary(&elsewhere, 5)]);
    assert!(matches!(
        protocol_error(result),
        ProtocolError::Malformed(_)
    ));
    let (result, ..) = after_summary(vec![summary(&neighbour_prefix(), 5), summary(&prefix, 5)]);
    let sorted_first = neighbour_prefix() < prefix;
    assert_eq!(result.is_ok(), sorted_first, "order is checked");
}

/// Answers the entry request that followed `entries` with `answer`.
fn answer_pull(
    entries: Vec<EntrySummary>,
    answer: Vec<WireEntry>,
) -> (Result<(), SyncErrorKind>, MemoryStore) {
    let (result, mut i, store, sent) = after_summary(entries);
    result.expect("valid summary");
    let req = entry_request(&sent);
    let batch = StreamMessage::new(Body::EntryBatch(EntryBatch {
        request_id: req.request_id,
        entries: answer,
        last: true,
    }));
    (i.handle(&store, batch), store)
}

#[test]
fn initiator_accepts_only_entries_starting_with_a_pulled_prefix() {
    let newer = Entry::put("only", "w", Version::new(7, NodeId(9)));
    let asked = vec![summary(&prefix_of(&newer), 7)];
    let (result, store) = answer_pull(asked.clone(), vec![WireEntry::from(&newer)]);
    result.expect("asked for");
    assert_eq!(
        store.get(&ctx(), &newer.key_hash()).expect("get"),
        Some(newer.clone())
    );

    let stranger = Entry::put("stranger", "x", Version::new(7, NodeId(9)));
    let (result, store) = answer_pull(asked.clone(), vec![WireEntry::from(&stranger)]);
    assert!(matches!(
        protocol_error(result),
        ProtocolError::Unsolicited(_)
    ));
    assert_eq!(store.get(&ctx(), &stranger.key_hash()).expect("get"), None);

    let at_limit = vec![WireEntry::from(&newer); MAX_ENTRIES_PER_PREFIX];
    answer_pull(asked.clone(), at_limit)
        .0
        .expect("within the limit");
    let too_many = vec![WireEntry::from(&newer); MAX_ENTRIES_PER_PREFIX + 1];
    let (result, store) = answer_pull(asked, too_many);
    assert!(matches!(
        protocol_error(result),
        ProtocolError::LimitExceeded { .. }
    ));
    assert_eq!(
        store.get(&ctx(), &newer.key_hash()).expect("get"),
        Some(the_entry())
    );
}
