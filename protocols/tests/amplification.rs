//! Amplification: a small entry request cannot make a tree responder send the
//! same data many times. Items named twice are refused, and one session sends at
//! most the context's entries plus `SESSION_ENTRY_SLACK`, whatever it asks. And the
//! write side: a flood of tiny pushes becomes a few store batches, not one each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, diverged, now, store_with};
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    KEY_PREFIX_BYTES, MAX_SUBTREES_PER_REQUEST, MAX_UNANSWERED_REQUESTS, SESSION_ENTRY_SLACK,
};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{AbortCode, EntryRequest};
use synctree_primitives::wire::{EntryPush, Finish, WireEntry};
use synctree_primitives::{Entry, NodeId, Store, StoreError, Version};
use synctree_primitives::{Hash, ProtocolError, ProtocolKind, StreamMessage};
use synctree_protocols::{Machine, TreeResponder};
use synctree_store::MemoryStore;
use synctree_test_support::{StoreHook, StoreOp, StoreTap};

fn responder() -> TreeResponder {
    TreeResponder::new(ctx(), ProtocolKind::HashComparison, Hash::ZERO)
}

fn request(request_id: u32, req: EntryRequest) -> StreamMessage {
    StreamMessage::new(Body::EntryRequest(EntryRequest { request_id, ..req }))
}

fn whole_store(request_id: u32) -> StreamMessage {
    let subtrees = vec![0];
    request(
        request_id,
        EntryRequest {
            subtrees,
            ..EntryRequest::default()
        },
    )
}

fn refused(result: Result<(), SyncErrorKind>) -> ProtocolError {
    match result {
        Err(SyncErrorKind::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn an_item_named_twice_is_refused_before_anything_is_sent() {
    let store = store_with(&diverged(100, 0).0);
    let cases = [
        (
            "subtree",
            EntryRequest {
                subtrees: vec![0; MAX_SUBTREES_PER_REQUEST],
                ..Default::default()
            },
        ),
        (
            "key hash",
            EntryRequest {
                key_hashes: vec![vec![7; 32].into(); 2],
                ..Default::default()
            },
        ),
        (
            "key prefix",
            EntryRequest {
                key_prefixes: vec![vec![7; KEY_PREFIX_BYTES].into(); 2],
                ..Default::default()
            },
        ),
    ];
    for (what, req) in cases {
        let mut r = responder();
        let err = refused(r.handle(&store, now(), request(1, req)));
        assert_eq!(err, ProtocolError::Duplicate(what));
        assert_eq!(err.abort_code(), AbortCode::Malformed);
        assert!(
            r.poll_transmit(&store, now()).unwrap().is_none(),
            "nothing sent"
        );
    }
}

#[test]
fn repeated_whole_store_requests_stop_at_the_session_budget() {
    let n = 3_000;
    let store: MemoryStore = store_with(&diverged(n, 0).0);
    let mut r = responder();
    for id in 0..MAX_UNANSWERED_REQUESTS as u32 {
        r.handle(&store, now(), whole_store(id)).unwrap();
    }
    let mut sent = 0u64;
    let err = loop {
        match r.poll_transmit(&store, now()) {
            Ok(Some(StreamMessage {
                body: Some(Body::EntryBatch(b)),
            })) => {
                sent += b.entries.len() as u64;
            }
            Ok(other) => panic!("the budget never ran out: {other:?} after {sent} entries"),
            Err(SyncErrorKind::Protocol(e)) => break e,
            Err(e) => panic!("{e}"),
        }
    };
    let budget = n as u64 + SESSION_ENTRY_SLACK;
    assert!(matches!(
        err,
        ProtocolError::LimitExceeded {
            what: "entries sent per session",
            ..
        }
    ));
    assert!(sent <= budget, "sent {sent} of a {budget}-entry budget");
    assert!(
        sent >= n as u64,
        "the first whole-store answer is honest and complete"
    );
    assert!(
        r.stats().entries_pushed > budget,
        "the refused frame is the one over it"
    );
}

/// Counts the batches applied to the store it taps.
#[derive(Default)]
struct Batches(std::sync::atomic::AtomicUsize);

impl StoreHook<MemoryStore> for Batches {
    fn before(&self, _: &MemoryStore, op: StoreOp<'_>) -> Result<(), StoreError> {
        if let StoreOp::Apply(_) = op {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

#[test]
fn a_flood_of_single_entry_pushes_is_applied_in_one_batch_before_the_finish_ack() {
    let store = StoreTap::new(MemoryStore::new(), Batches::default());
    let mut r = responder();
    let at = now();
    for i in 0..1_500 {
        let entry = Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(3)));
        let push = EntryPush {
            entries: vec![WireEntry::from(&entry)],
        };
        r.handle(&store, at, StreamMessage::new(Body::EntryPush(push)))
            .unwrap();
        assert!(r.poll_transmit(&store, at).unwrap().is_none());
    }
    let finish = Finish {
        root: vec![0; 32].into(),
    };
    r.handle(&store, at, StreamMessage::new(Body::Finish(finish)))
        .unwrap();
    let batches = store.hook().0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(batches, 1, "1,500 pushes, one store batch");
    assert_eq!(store.summary(&ctx()).unwrap().entry_count, 1_500);
    let ack = r.poll_transmit(&store, at).unwrap();
    assert!(matches!(
        ack,
        Some(StreamMessage {
            body: Some(Body::FinishAck(_))
        })
    ));
}
