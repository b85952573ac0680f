//! Clock poisoning: no entry whose version runs more than the allowed skew ahead of
//! the receiving node's clock enters its store, through any protocol, in either
//! direction; the rest of the session's entries do, and the refusal is counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{initiate, respond, sorted_entries, store_with};
use synctree_primitives::hlc::{HLC_LOGICAL_BITS, MAX_CLOCK_SKEW_MS};
use synctree_primitives::{Entry, NodeId, ProtocolKind, SyncStats, Version, WallClock};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

const PROTOCOLS: [ProtocolKind; 3] = [
    ProtocolKind::HashComparison,
    ProtocolKind::LevelWise,
    ProtocolKind::Snapshot,
];

const YEAR_MS: u64 = 365 * 86_400_000;

fn at_ms(ms: u64, node: u64) -> Version {
    Version::new(ms << HLC_LOGICAL_BITS, NodeId(node))
}

/// 50 honest entries both sides agree on, written a second ago.
fn honest(now_ms: u64) -> Vec<Entry> {
    (0..50)
        .map(|i| Entry::put(format!("k{i}"), "v", at_ms(now_ms - 1_000, 1)))
        .collect()
}

/// What a hostile or broken node holds on top of the honest entries: the top of
/// the version range on an existing key, a write a year ahead, and one fresh honest
/// write that must still get through.
fn poisoned(now_ms: u64) -> Vec<Entry> {
    let mut entries = honest(now_ms);
    entries[3] = Entry::delete("k3", Version::new(u64::MAX, NodeId(u64::MAX)));
    entries.push(Entry::put("ahead", "x", at_ms(now_ms + YEAR_MS, 9)));
    entries.push(Entry::put("fresh", "y", at_ms(now_ms, 9)));
    entries
}

/// Runs `protocol` with `a` initiating and `b` responding; returns both stats.
fn session(protocol: ProtocolKind, sa: &MemoryStore, sb: &MemoryStore) -> (SyncStats, SyncStats) {
    let runtime = common::snapshot::runtime();
    runtime.block_on(async {
        let (mut ta, mut tb) = FramedTransport::memory_pair(4096);
        let (ra, rb) = tokio::join!(initiate(protocol, &mut ta, sa), respond(&mut tb, sb));
        (ra.expect("initiator"), rb.expect("responder"))
    })
}

/// The honest store after the session: everything but the two poisoned versions.
fn assert_unpoisoned(store: &MemoryStore, now_ms: u64, protocol: ProtocolKind) {
    let mut want = honest(now_ms);
    want.push(Entry::put("fresh", "y", at_ms(now_ms, 9)));
    want.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(sorted_entries(store), want, "{protocol:?}");
}

#[test]
fn a_poisoned_initiator_cannot_push_versions_from_the_future() {
    let now_ms = WallClock::System.now_ms();
    for protocol in PROTOCOLS {
        let (sa, sb) = (store_with(&poisoned(now_ms)), store_with(&honest(now_ms)));
        let (_, responder) = session(protocol, &sa, &sb);
        assert_unpoisoned(&sb, now_ms, protocol);
        assert_eq!(responder.entries_refused_ahead, 2, "{protocol:?}");
        assert!(
            !responder.converged(),
            "{protocol:?}: a refusal is not convergence"
        );
    }
}

#[test]
fn a_poisoned_responder_cannot_serve_versions_from_the_future() {
    let now_ms = WallClock::System.now_ms();
    for protocol in PROTOCOLS {
        let (sa, sb) = (store_with(&honest(now_ms)), store_with(&poisoned(now_ms)));
        let (initiator, _) = session(protocol, &sa, &sb);
        assert_unpoisoned(&sa, now_ms, protocol);
        assert_eq!(initiator.entries_refused_ahead, 2, "{protocol:?}");
        assert!(!initiator.converged(), "{protocol:?}");
    }
}

#[test]
fn a_slightly_fast_honest_clock_is_accepted() {
    let now_ms = WallClock::System.now_ms();
    let mut fast = honest(now_ms);
    fast.push(Entry::put(
        "fast",
        "z",
        at_ms(now_ms + MAX_CLOCK_SKEW_MS / 2, 5),
    ));
    for protocol in PROTOCOLS {
        let (sa, sb) = (store_with(&fast), store_with(&honest(now_ms)));
        let (initiator, responder) = session(protocol, &sa, &sb);
        assert_eq!(sorted_entries(&sb), sorted_entries(&sa), "{protocol:?}");
        assert_eq!(responder.entries_refused_ahead, 0);
        assert!(
            initiator.converged() && responder.converged(),
            "{protocol:?}"
        );
    }
}
