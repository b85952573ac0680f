//! Requests to the tree responder: amplification and per-request limits.

use synctree_primitives::limits::{
    KEY_PREFIX_BYTES, MAX_KEYS_PER_REQUEST, MAX_NODES_PER_REQUEST, MAX_SUBTREES_PER_REQUEST,
    SESSION_ENTRY_SLACK,
};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{AbortCode, EntryRequest};

use super::harness::{Gen, Served};
use super::wire::{Answer, block_on, body, finish, node_request, subtree_request, tree_init};
use synctree_primitives::StreamMessage;

/// First leaf position (levels 0–3 hold 1 + 16 + 256 + 4096 nodes).
const FIRST_LEAF: u32 = 4369;
/// One past the last position in the trie.
const END_OF_TRIE: u32 = FIRST_LEAF + 65_536;

/// `Init{hash_comparison}` then `messages` in one write; the answer.
fn after_init(served: &Served, messages: Vec<StreamMessage>) -> (Answer, Vec<StreamMessage>, u64) {
    let mut raw = served.raw();
    let mut all = vec![tree_init()];
    all.extend(messages);
    let answer = block_on(raw.exchange(&all));
    (answer, raw.skipped, raw.received)
}

fn refused(messages: Vec<StreamMessage>, code: AbortCode) {
    let mut served = Served::start();
    let (answer, _, _) = after_init(&served, messages);
    assert_eq!(answer.code(), code, "{answer:?}");
    served.survived();
}

/// Regression: one request naming the whole store 256 times.
#[test]
fn duplicate_subtrees_in_one_request_are_malformed() {
    let request = subtree_request(1, vec![0; MAX_SUBTREES_PER_REQUEST]);
    refused(vec![request], AbortCode::Malformed);
}

/// Regression: 64 pipelined whole-store pulls get about one store's worth of
/// entries, then a typed `LIMIT_EXCEEDED`.
#[test]
fn pipelined_whole_store_pulls_are_bounded() {
    let data = Gen {
        entries: 4000,
        value_size: 256,
    };
    let mut served = Served::start_with(data, None);
    let requests = (1..=64).map(|id| subtree_request(id, vec![0])).collect();
    let (answer, _, received) = after_init(&served, requests);
    assert_eq!(answer.code(), AbortCode::LimitExceeded, "{answer:?}");
    let entry_bytes = data.value_size as u64 + 64;
    let store_bytes = data.entries * entry_bytes;
    let bound = store_bytes + SESSION_ENTRY_SLACK * entry_bytes + 4 * 1024 * 1024;
    assert!(
        received <= bound,
        "{received} bytes received, bound {bound}"
    );
    assert!(
        received >= store_bytes / 2,
        "the first pull was answered: {received}"
    );
    served.survived();
}

#[test]
fn nodes_per_request_over_the_limit_is_limit_exceeded() {
    let positions = (1..=MAX_NODES_PER_REQUEST as u32 + 1).collect();
    refused(vec![node_request(1, positions)], AbortCode::LimitExceeded);
}

#[test]
fn keys_per_request_over_the_limit_is_limit_exceeded() {
    let prefixes = (0..=MAX_KEYS_PER_REQUEST as u64)
        .map(|i| i.to_be_bytes()[..KEY_PREFIX_BYTES].to_vec().into())
        .collect();
    let request = body(Body::EntryRequest(EntryRequest {
        request_id: 1,
        key_prefixes: prefixes,
        ..EntryRequest::default()
    }));
    refused(vec![request], AbortCode::LimitExceeded);
}

#[test]
fn subtrees_per_request_over_the_limit_is_limit_exceeded() {
    let subtrees = (1..=MAX_SUBTREES_PER_REQUEST as u32 + 1).collect();
    refused(vec![subtree_request(1, subtrees)], AbortCode::LimitExceeded);
}

#[test]
fn node_position_outside_the_trie_is_malformed() {
    refused(
        vec![node_request(1, vec![END_OF_TRIE])],
        AbortCode::Malformed,
    );
}

#[test]
fn node_position_u32_max_is_malformed() {
    refused(vec![node_request(1, vec![u32::MAX])], AbortCode::Malformed);
}

#[test]
fn subtree_position_outside_the_trie_is_malformed() {
    refused(
        vec![subtree_request(1, vec![END_OF_TRIE])],
        AbortCode::Malformed,
    );
}

#[test]
fn key_prefix_of_the_wrong_length_is_malformed() {
    let request = body(Body::EntryRequest(EntryRequest {
        request_id: 1,
        key_prefixes: vec![vec![1u8; KEY_PREFIX_BYTES + 1].into()],
        ..EntryRequest::default()
    }));
    refused(vec![request], AbortCode::Malformed);
}

/// Many large requests written before reading any answer: the responder either
/// answers each or refuses with `LIMIT_EXCEEDED` (unanswered requests); either
/// way its memory stays bounded. Over plain TCP: the answers are about 40 MB,
/// which a debug build on a loaded two-core machine encrypts slowly enough to
/// approach `ANSWER_WAIT` (14.6 s of 25 s measured alone over TLS); the bound
/// under test is the responder's, above the transport.
#[test]
fn unanswered_requests_stay_bounded() {
    let mut served = Served::start_plaintext();
    let leaves: Vec<u32> = (FIRST_LEAF..FIRST_LEAF + MAX_NODES_PER_REQUEST as u32).collect();
    let count = 80u32;
    let requests = (1..=count)
        .map(|id| node_request(id, leaves.clone()))
        .chain([finish()])
        .collect();
    let mut raw = served.raw();
    let mut all = vec![tree_init()];
    all.extend::<Vec<StreamMessage>>(requests);
    let answer = block_on(async {
        let bytes: Vec<u8> = all.iter().flat_map(super::wire::frame).collect();
        // Nothing is read for a second: the kernel buffers fill both ways.
        raw.pipelined(&bytes, std::time::Duration::from_secs(1))
            .await
    });
    let rss = super::harness::rss_bytes(served.pid());
    assert!(rss < super::harness::RSS_LIMIT_BYTES, "{rss}");
    let finals = raw
        .skipped
        .iter()
        .filter(|m| matches!(&m.body, Some(Body::NodeResponse(r)) if r.last))
        .count();
    assert!(
        matches!(answer, Answer::Abort(AbortCode::LimitExceeded, _))
            || (answer == Answer::Closed && finals == count as usize),
        "{answer:?} after {finals} answers"
    );
    served.survived();
}

/// `Finish` while answers are still unread: the responder answers what it was
/// asked, then `FinishAck`, and nothing changes.
#[test]
fn finish_before_answers_are_read_ends_cleanly() {
    let mut served = Served::start();
    let requests: Vec<_> = (1..=16).map(|i| subtree_request(i, vec![i])).collect();
    let mut messages = requests;
    messages.push(finish());
    let (answer, skipped, _) = after_init(&served, messages);
    let acked = skipped
        .iter()
        .any(|m| matches!(m.body, Some(Body::FinishAck(_))));
    assert!(
        (answer == Answer::Closed && acked)
            || matches!(answer, Answer::Abort(AbortCode::UnexpectedMessage, _)),
        "{answer:?}"
    );
    served.survived();
}
