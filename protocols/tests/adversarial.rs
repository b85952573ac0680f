//! A peer that breaks the protocol gets a typed error, never a panic, and never
//! changes the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, diverged, store_with};
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    KEY_PREFIX_BYTES, MAX_ENTRIES_PER_BATCH, MAX_ENTRIES_PER_PREFIX, MAX_KEYS_PER_REQUEST,
    MAX_NODES_PER_REQUEST, MAX_REQUESTS_PER_SESSION, MAX_SUBTREES_PER_REQUEST,
    MAX_UNANSWERED_REQUESTS,
};
use synctree_primitives::merkle::NODE_COUNT;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    EntryBatch, EntryPush, EntryRequest, Finish, HashComparisonInit, NodeRequest, NodeResponse,
    WireEntry,
};
use synctree_primitives::{
    ContextId, Entry, Hash, NodeId, ProtocolError, ProtocolKind, Store, StoreError, StoredEntry,
    StreamMessage, Version,
};
use synctree_protocols::pair::{PairError, run_pair};
use synctree_protocols::{
    Machine, Schedule, TreeConfig, TreeInitiator, TreeResponder, init_message,
};
use synctree_store::MemoryStore;
use synctree_test_support::{StoreHook, StoreTap};

const KIND: ProtocolKind = ProtocolKind::HashComparison;

fn responder() -> TreeResponder {
    TreeResponder::new(ctx(), KIND, Hash::ZERO)
}

fn msg(body: Body) -> StreamMessage {
    StreamMessage::new(body)
}

fn node_request(request_id: u32, positions: Vec<u32>) -> StreamMessage {
    msg(Body::NodeRequest(NodeRequest {
        request_id,
        positions,
        compare: vec![],
    }))
}

fn protocol_error(result: Result<(), SyncErrorKind>) -> ProtocolError {
    match result {
        Err(SyncErrorKind::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn assert_limit(result: Result<(), SyncErrorKind>, what: &str) {
    match protocol_error(result) {
        ProtocolError::LimitExceeded { what: w, .. } => assert_eq!(w, what),
        other => panic!("expected limit `{what}`, got {other:?}"),
    }
}

fn wire(e: &Entry) -> WireEntry {
    WireEntry::from(e)
}

#[test]
fn responder_enforces_nodes_per_request() {
    let store = MemoryStore::new();
    let too_many = vec![0; MAX_NODES_PER_REQUEST + 1];
    assert_limit(
        responder().handle(&store, crate::common::now(), node_request(0, too_many)),
        "nodes per request",
    );
    assert!(
        responder()
            .handle(
                &store,
                crate::common::now(),
                node_request(0, vec![0; MAX_NODES_PER_REQUEST])
            )
            .is_ok()
    );
}

#[test]
fn responder_rejects_positions_outside_the_trie() {
    let store = MemoryStore::new();
    let err = protocol_error(responder().handle(
        &store,
        crate::common::now(),
        node_request(0, vec![NODE_COUNT]),
    ));
    assert_eq!(err, ProtocolError::BadPosition(NODE_COUNT));
}

#[test]
fn responder_enforces_keys_and_subtrees_per_request() {
    let store = MemoryStore::new();
    let keys = vec![vec![0u8; 32].into(); MAX_KEYS_PER_REQUEST + 1];
    let req = EntryRequest {
        key_hashes: keys,
        ..EntryRequest::default()
    };
    assert_limit(
        responder().handle(&store, crate::common::now(), msg(Body::EntryRequest(req))),
        "keys per request",
    );
    let req = EntryRequest {
        subtrees: vec![1; MAX_SUBTREES_PER_REQUEST + 1],
        ..EntryRequest::default()
    };
    assert_limit(
        responder().handle(&store, crate::common::now(), msg(Body::EntryRequest(req))),
        "subtrees per request",
    );
    let req = EntryRequest {
        key_hashes: vec![vec![0u8; 31].into()],
        ..EntryRequest::default()
    };
    let err = protocol_error(responder().handle(
        &store,
        crate::common::now(),
        msg(Body::EntryRequest(req)),
    ));
    assert!(matches!(err, ProtocolError::BadLength { got: 31, .. }));
}

/// `n` distinct values of `len` bytes (duplicates in one request are refused).
fn distinct(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n as u32)
        .map(|i| {
            let mut v = vec![0u8; len];
            v[..4].copy_from_slice(&i.to_be_bytes());
            v
        })
        .collect()
}

fn prefix_request(prefixes: Vec<Vec<u8>>, key_hashes: usize) -> StreamMessage {
    msg(Body::EntryRequest(EntryRequest {
        request_id: 3,
        key_hashes: distinct(key_hashes, 32)
            .into_iter()
            .map(Into::into)
            .collect(),
        key_prefixes: prefixes.into_iter().map(Into::into).collect(),
        ..EntryRequest::default()
    }))
}

#[test]
fn responder_counts_prefixes_with_key_hashes_per_request() {
    let store = MemoryStore::new();
    let prefix = vec![0u8; KEY_PREFIX_BYTES];
    let too_many = prefix_request(vec![prefix.clone(); MAX_KEYS_PER_REQUEST + 1], 0);
    assert_limit(
        responder().handle(&store, crate::common::now(), too_many),
        "keys per request",
    );
    let half = MAX_KEYS_PER_REQUEST / 2;
    let mixed = prefix_request(vec![prefix.clone(); half + 1], half);
    assert_limit(
        responder().handle(&store, crate::common::now(), mixed),
        "keys per request",
    );
    let at_limit = prefix_request(distinct(half, prefix.len()), half);
    assert!(
        responder()
            .handle(&store, crate::common::now(), at_limit)
            .is_ok()
    );
}

#[test]
fn responder_refuses_prefixes_of_the_wrong_length() {
    let store = MemoryStore::new();
    for len in [0, 2, KEY_PREFIX_BYTES - 1, KEY_PREFIX_BYTES + 1, 32] {
        let req = prefix_request(vec![vec![1; len]], 0);
        let err = protocol_error(responder().handle(&store, crate::common::now(), req));
        assert_eq!(
            err,
            ProtocolError::BadLength {
                field: "key_prefixes",
                expected: KEY_PREFIX_BYTES,
                got: len
            }
        );
    }
}

/// Every entry of `store` in one `EntryBatch` answer to `req`.
fn entry_answer<S: Store>(store: &S, req: StreamMessage) -> Result<Vec<Entry>, SyncErrorKind> {
    let mut r = responder();
    r.handle(store, crate::common::now(), req)?;
    let mut got = Vec::new();
    while let Some(m) = r.poll_transmit(store, crate::common::now())? {
        match m.body {
            Some(Body::EntryBatch(b)) => {
                got.extend(
                    b.entries
                        .into_iter()
                        .map(|e| Entry::try_from(e).expect("valid")),
                );
            }
            other => panic!("expected an entry batch, got {other:?}"),
        }
    }
    Ok(got)
}

#[test]
fn responder_answers_a_prefix_with_the_entries_it_starts() {
    let (entries, _) = diverged(200, 0);
    let store = store_with(&entries);
    let wanted = &entries[17];
    let prefix = wanted.key_hash().0[..KEY_PREFIX_BYTES].to_vec();
    let absent = vec![0xee; KEY_PREFIX_BYTES];
    let got = entry_answer(&store, prefix_request(vec![prefix, absent], 0)).expect("answer");
    assert_eq!(got, vec![wanted.clone()]);
}

/// A [`StoreTap`] hook whose every range holds all the store's entries, as if they
/// all shared a prefix.
struct Crowd;

impl StoreHook<MemoryStore> for Crowd {
    fn range(
        &self,
        inner: &MemoryStore,
        context: &ContextId,
        _: &Hash,
        _: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        inner.range(context, &Hash::ZERO, &Hash::MAX, limit)
    }
}

fn crowd(store: MemoryStore) -> StoreTap<MemoryStore, Crowd> {
    StoreTap::new(store, Crowd)
}

#[test]
fn responder_refuses_a_prefix_matching_too_many_entries() {
    let prefix = vec![vec![0u8; KEY_PREFIX_BYTES]];
    let (entries, _) = diverged(MAX_ENTRIES_PER_PREFIX, 0);
    let crowded = crowd(store_with(&entries));
    let got = entry_answer(&crowded, prefix_request(prefix.clone(), 0));
    assert_eq!(got.map(|e| e.len()).ok(), Some(MAX_ENTRIES_PER_PREFIX));
    let (entries, _) = diverged(MAX_ENTRIES_PER_PREFIX + 1, 0);
    let crowded = crowd(store_with(&entries));
    match entry_answer(&crowded, prefix_request(prefix, 0)) {
        Err(SyncErrorKind::Protocol(ProtocolError::LimitExceeded { what, .. })) => {
            assert_eq!(what, "entries per key prefix");
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn responder_enforces_unanswered_and_total_requests() {
    let store = MemoryStore::new();
    let mut r = responder();
    for id in 0..MAX_UNANSWERED_REQUESTS as u32 {
        assert!(
            r.handle(&store, crate::common::now(), node_request(id, vec![0]))
                .is_ok()
        );
    }
    assert_limit(
        r.handle(&store, crate::common::now(), node_request(99, vec![0])),
        "unanswered requests",
    );

    let mut r = responder();
    for id in 0..MAX_REQUESTS_PER_SESSION as u32 {
        r.handle(&store, crate::common::now(), node_request(id, vec![0]))
            .expect("within the limit");
        while r
            .poll_transmit(&store, crate::common::now())
            .expect("answer")
            .is_some()
        {}
    }
    assert_limit(
        r.handle(&store, crate::common::now(), node_request(0, vec![0])),
        "requests per session",
    );
}

#[test]
fn responder_rejects_bad_pushes_and_leaves_the_store_unchanged() {
    let (entries, _) = diverged(50, 0);
    let store = store_with(&entries);
    let before = store.summary(&ctx()).expect("summary");
    let good = wire(&Entry::put("new", "v", Version::new(9, NodeId(9))));

    let oversized = vec![good.clone(); MAX_ENTRIES_PER_BATCH + 1];
    let push = msg(Body::EntryPush(EntryPush { entries: oversized }));
    assert_limit(
        responder().handle(&store, crate::common::now(), push),
        "entries per batch",
    );

    let mut forged = wire(&Entry::delete("gone", Version::new(9, NodeId(9))));
    forged.value = vec![1, 2, 3].into();
    let push = msg(Body::EntryPush(EntryPush {
        entries: vec![good, forged],
    }));
    assert!(matches!(
        protocol_error(responder().handle(&store, crate::common::now(), push)),
        ProtocolError::Malformed(_)
    ));
    assert_eq!(store.summary(&ctx()).expect("summary"), before);
}

#[test]
fn responder_rejects_messages_after_finish_and_unknown_bodies() {
    let store = MemoryStore::new();
    let mut r = responder();
    let finish = msg(Body::Finish(Finish {
        root: vec![0; 32].into(),
    }));
    r.handle(&store, crate::common::now(), finish.clone())
        .expect("finish");
    assert!(matches!(
        protocol_error(r.handle(&store, crate::common::now(), finish)),
        ProtocolError::Unexpected { .. }
    ));
    let empty = StreamMessage { body: None };
    assert!(matches!(
        protocol_error(responder().handle(&store, crate::common::now(), empty)),
        ProtocolError::Unexpected { .. }
    ));
}

/// An initiator that has sent its init and its first node request (request id 0:
/// compare the root's children).
fn started_initiator(store: &MemoryStore) -> TreeInitiator {
    let init = init_message(&ctx(), Kind::HashComparison(HashComparisonInit::default()));
    let mut i = TreeInitiator::new(
        ctx(),
        KIND,
        Schedule::Eager,
        TreeConfig::default(),
        init,
        Hash::ZERO,
    );
    let sent: Vec<_> =
        std::iter::from_fn(|| i.poll_transmit(store, crate::common::now()).expect("poll"))
            .collect();
    assert_eq!(
        sent.iter().map(StreamMessage::kind).collect::<Vec<_>>(),
        ["init", "node request"]
    );
    i
}

#[test]
fn initiator_rejects_unsolicited_answers_and_entries() {
    let store = MemoryStore::new();
    let mut i = started_initiator(&store);
    let stray = msg(Body::NodeResponse(NodeResponse {
        request_id: 7,
        last: true,
        ..Default::default()
    }));
    assert!(matches!(
        protocol_error(i.handle(&store, crate::common::now(), stray)),
        ProtocolError::Unsolicited(_)
    ));

    let mut i = started_initiator(&store);
    let entry = wire(&Entry::put("planted", "x", Version::new(1, NodeId(1))));
    let batch = msg(Body::EntryBatch(EntryBatch {
        request_id: 0,
        entries: vec![entry],
        last: true,
    }));
    assert!(matches!(
        protocol_error(i.handle(&store, crate::common::now(), batch)),
        ProtocolError::Unsolicited(_)
    ));
    assert!(store.entries(&ctx()).is_empty(), "nothing was applied");
}

#[test]
fn initiator_rejects_answers_for_nodes_it_did_not_ask_for() {
    let store = MemoryStore::new();
    // Request 0 compares the root: only level-1 nodes may be answered. Position 17
    // is a level-2 node, position 0 the compared node itself.
    for position in [17, 0] {
        let mut i = started_initiator(&store);
        let wrong = synctree_primitives::wire::NodeChildren {
            position,
            present: 0,
            hashes: Default::default(),
        };
        let resp = NodeResponse {
            request_id: 0,
            children: vec![wrong],
            leaves: vec![],
            last: true,
        };
        assert!(matches!(
            protocol_error(i.handle(&store, crate::common::now(), msg(Body::NodeResponse(resp)))),
            ProtocolError::Unsolicited(_)
        ));
    }
}

/// A responder that never marks a node answer as its last frame.
struct NeverLast(TreeResponder);

impl Machine<MemoryStore> for NeverLast {
    fn handle(
        &mut self,
        store: &MemoryStore,
        now: std::time::Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        self.0.handle(store, now, message)
    }

    fn poll_transmit(
        &mut self,
        store: &MemoryStore,
        now: std::time::Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        let mut out = self.0.poll_transmit(store, now)?;
        if let Some(Body::NodeResponse(resp)) = out.as_mut().and_then(|m| m.body.as_mut()) {
            resp.last = false;
        }
        Ok(out)
    }

    fn is_done(&self) -> bool {
        Machine::<MemoryStore>::is_done(&self.0)
    }

    fn phase(&self) -> &'static str {
        Machine::<MemoryStore>::phase(&self.0)
    }
}

#[test]
fn initiator_never_finishes_while_a_last_frame_is_missing() {
    let (a, b) = diverged(500, 20);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let init = init_message(&ctx(), Kind::HashComparison(HashComparisonInit::default()));
    let root = sa.summary(&ctx()).expect("summary").root;
    let config = TreeConfig::default();
    let mut i = TreeInitiator::new(ctx(), KIND, Schedule::Eager, config, init, root);
    let mut r = NeverLast(TreeResponder::new(ctx(), KIND, Hash::ZERO));
    // Over a transport the wait ends with the idle timeout.
    let result = run_pair(&mut i, &sa, &mut r, &sb, 1_000);
    assert!(matches!(result, Err(PairError::Stalled)), "{result:?}");
    let done = Machine::<MemoryStore>::is_done(&i);
    assert!(!done && i.stats().rounds == 0, "no finish was sent");
}
