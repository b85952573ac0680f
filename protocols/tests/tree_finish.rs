//! The finish of a tree session rides in the same flight as the last entry
//! requests: the responder answers them before its `FinishAck`, and refuses a
//! finish that arrives while a node answer is still owed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, diverged, now, store_with};
use synctree_primitives::limits::KEY_PREFIX_BYTES;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{EntryRequest, Finish, HashComparisonInit};
use synctree_primitives::{Hash, ProtocolError, ProtocolKind, Store, StreamMessage};
use synctree_protocols::pair::run_pair;
use synctree_protocols::{Machine, Schedule, TreeConfig, TreeInitiator, init_message};
use synctree_store::MemoryStore;

use common::tree::*;

fn finish(root: Hash) -> StreamMessage {
    StreamMessage::new(Body::Finish(Finish {
        root: root.0.to_vec().into(),
    }))
}

fn pull_request(store: &MemoryStore) -> StreamMessage {
    let some = store
        .range(&ctx(), &Hash::ZERO, &Hash([0xff; 32]), 3)
        .expect("range");
    let prefixes = some
        .iter()
        .map(|s| s.key_hash.0[..KEY_PREFIX_BYTES].to_vec().into())
        .collect();
    StreamMessage::new(Body::EntryRequest(EntryRequest {
        request_id: 4,
        key_hashes: vec![],
        subtrees: vec![],
        key_prefixes: prefixes,
    }))
}

#[test]
fn a_finish_with_entry_answers_owed_is_acknowledged_after_them() {
    let (a, _) = diverged(500, 0);
    let store = store_with(&a);
    let mut r = responder();
    r.handle(&store, now(), pull_request(&store))
        .expect("request");
    r.handle(&store, now(), finish(Hash::ZERO))
        .expect("early finish");
    let sent: Vec<&'static str> =
        std::iter::from_fn(|| r.poll_transmit(&store, now()).expect("poll"))
            .map(|m| m.kind())
            .collect();
    assert_eq!(sent, ["entry batch", "finish ack"]);
    assert!(Machine::<MemoryStore>::is_done(&r));
    assert_eq!(r.stats().entries_pushed, 3);
}

#[test]
fn a_finish_with_a_node_answer_owed_is_refused() {
    let (a, _) = diverged(500, 0);
    let store = store_with(&a);
    let mut r = responder();
    let root = children_of(&store, synctree_primitives::NodePos::ROOT);
    let compare = compare_request(
        0,
        vec![children_msg(synctree_primitives::NodePos::ROOT, &root)],
    );
    r.handle(&store, now(), compare).expect("compare");
    let refused = protocol_error(r.handle(&store, now(), finish(Hash::ZERO)));
    assert!(
        matches!(refused, ProtocolError::Malformed(_)),
        "{refused:?}"
    );
}

/// A session with pulls: the finish goes out with them, so it costs no round
/// trip of its own (compare, compare, summaries, pulls + finish).
#[test]
fn pulls_and_the_finish_share_a_round_trip() {
    let (a, b) = diverged(5_000, 300);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let root = sa.summary(&ctx()).expect("summary").root;
    let init = init_message(
        &ctx(),
        Kind::HashComparison(HashComparisonInit {
            root: root.0.to_vec().into(),
        }),
    );
    let kind = ProtocolKind::HashComparison;
    let config = TreeConfig::default();
    let mut i = TreeInitiator::new(ctx(), kind, Schedule::Eager, config, init, root);
    let mut r = synctree_protocols::TreeResponder::new(ctx(), kind, Hash::ZERO);
    run_pair(&mut i, &sa, &mut r, &sb, 10_000).expect("pair run");
    let stats = i.into_stats();
    assert!(stats.entries_pulled > 0 && stats.converged());
    assert_eq!(stats.rounds, 4);
}
