//! Compare requests at the initiator: the two-levels-then-fetch sequence, prefix
//! pulls, and every hostile answer refused before anything is applied.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, store_with};
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{KEY_PREFIX_BYTES, MAX_ENTRIES_PER_PREFIX, NODE_HASH_BYTES};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    EntryBatch, EntryRequest, EntrySummary, HashComparisonInit, LeafSummary, NodeChildren,
    NodeRequest, WireEntry,
};
use synctree_primitives::{
    Entry, NodeId, NodePos, ProtocolError, ProtocolKind, Store, StoredEntry, StreamMessage, Version,
};
use synctree_protocols::{Machine, Schedule, TreeConfig, TreeInitiator, init_message};
use synctree_store::MemoryStore;

const KIND: ProtocolKind = ProtocolKind::HashComparison;

use common::tree::*;

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
    let init = i
        .poll_transmit(store, crate::common::now())
        .expect("init")
        .map(|m| m.kind());
    assert_eq!(init, Some("init"));
    let first = next_request(&mut i, store);
    (i, first)
}

fn next_request(i: &mut TreeInitiator, store: &MemoryStore) -> NodeRequest {
    match i
        .poll_transmit(store, crate::common::now())
        .expect("poll")
        .and_then(|m| m.body)
    {
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
    protocol_error(i.handle(
        &store,
        crate::common::now(),
        response(first.request_id, children, leaves),
    ))
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
        crate::common::now(),
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
        crate::common::now(),
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
    i.handle(
        &store,
        crate::common::now(),
        response(first.request_id, vec![lacks], vec![]),
    )
    .expect("valid");
    let next = i
        .poll_transmit(&store, crate::common::now())
        .expect("poll")
        .map(|m| m.kind());
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
    i.handle(
        store,
        crate::common::now(),
        response(first.request_id, answer, vec![]),
    )
    .expect("valid");
    let second = next_request(&mut i, store);
    let answer = vec![other_hash(leaf, 0xbb)];
    i.handle(
        store,
        crate::common::now(),
        response(second.request_id, answer, vec![]),
    )
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
    let err = protocol_error(i.handle(&store, crate::common::now(), response(id, vec![], vec![])));
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");

    // The last frame ends in the middle of the leaf's summary.
    let (mut i, id) = fetching_leaf(&store, path);
    let part = LeafSummary {
        position: leaf.raw(),
        partial: true,
        ..LeafSummary::default()
    };
    let err = protocol_error(i.handle(
        &store,
        crate::common::now(),
        response(id, vec![], vec![part]),
    ));
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");

    // A frame after the last one.
    let (mut i, id) = fetching_leaf(&store, path);
    let whole = LeafSummary {
        position: leaf.raw(),
        ..LeafSummary::default()
    };
    i.handle(
        &store,
        crate::common::now(),
        response(id, vec![], vec![whole.clone()]),
    )
    .expect("valid");
    let err = protocol_error(i.handle(
        &store,
        crate::common::now(),
        response(id, vec![], vec![whole]),
    ));
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
    let result = i.handle(
        &store,
        crate::common::now(),
        response(id, vec![], vec![leaf]),
    );
    let mut sent = Vec::new();
    if result.is_ok() {
        while let Some(m) = i.poll_transmit(&store, crate::common::now()).expect("poll") {
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
    (i.handle(&store, crate::common::now(), batch), store)
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
