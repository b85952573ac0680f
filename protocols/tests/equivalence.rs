//! Strategy equivalence: every protocol, run on the same random pair of replicas,
//! leaves both sides with the same final state (the per-key merge of both inputs),
//! through the real executors over a framed in-memory transport.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{arb_replica, ctx, initiate, merged, respond, sorted_entries, store_with};
use proptest::prelude::*;
use synctree_primitives::{Entry, ProtocolKind, Store, SyncStats, merkle};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

const PROTOCOLS: [ProtocolKind; 4] = [
    ProtocolKind::HashComparison,
    ProtocolKind::LevelWise,
    ProtocolKind::Snapshot,
    ProtocolKind::Sketch,
];

/// Runs `protocol` between fresh stores holding `a` and `b`; returns both stores.
fn run(protocol: ProtocolKind, a: &[Entry], b: &[Entry]) -> (MemoryStore, MemoryStore) {
    let (sa, sb, _) = run_stats(protocol, a, b);
    (sa, sb)
}

/// [`run`], with the initiator's stats.
fn run_stats(
    protocol: ProtocolKind,
    a: &[Entry],
    b: &[Entry],
) -> (MemoryStore, MemoryStore, SyncStats) {
    let (sa, sb) = (store_with(a), store_with(b));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let stats = runtime.block_on(async {
        let (mut ta, mut tb) = FramedTransport::memory_pair(4096);
        let initiator = initiate(protocol, &mut ta, &sa);
        let (ra, rb) = tokio::join!(initiator, respond(&mut tb, &sb));
        let (ra, rb) = (ra.expect("initiator"), rb.expect("responder"));
        assert_eq!((ra.protocol, rb.protocol), (protocol, protocol));
        // A tree or sketch initiator's finish goes out with its last pulls, before
        // their answers: then only the initiator sees both final roots.
        let responder_knows = ra.entries_pulled == 0;
        assert!(ra.converged(), "{protocol:?}: {ra:?}");
        assert!(rb.converged() || !responder_knows, "{protocol:?}: {rb:?}");
        ra
    });
    (sa, sb, stats)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_protocol_reaches_the_same_state(a in arb_replica(400, 300), b in arb_replica(400, 300)) {
        let want = merged(&a, &b);
        let root = merkle::root_of(&want);
        for protocol in PROTOCOLS {
            let (sa, sb) = run(protocol, &a, &b);
            prop_assert_eq!(&sorted_entries(&sa), &want, "{:?} initiator", protocol);
            prop_assert_eq!(&sorted_entries(&sb), &want, "{:?} responder", protocol);
            prop_assert_eq!(sa.summary(&ctx()).expect("summary").root, root);
            prop_assert_eq!(sb.summary(&ctx()).expect("summary").root, root);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Few differences over a shared base decode from the sketch (no tree node is
    /// compared); many more than the 64 symbols a small context keeps fall over to
    /// the tree protocol in the same session. Both end where the other protocols do.
    #[test]
    fn sketch_decodes_small_differences_and_falls_over_beyond_the_cap(
        n in 50usize..400, small in 1usize..20, large in 200usize..400,
    ) {
        for (d, decodes) in [(small, true), (large, false)] {
            let (a, b) = common::diverged(n, d);
            let want = merged(&a, &b);
            let (sa, sb, stats) = run_stats(ProtocolKind::Sketch, &a, &b);
            prop_assert_eq!(&sorted_entries(&sa), &want);
            prop_assert_eq!(&sorted_entries(&sb), &want);
            prop_assert_eq!(stats.nodes_compared == 0, decodes, "d {}: {:?}", d, stats);
            if decodes {
                prop_assert_eq!(stats.rounds, 2, "init + windows, then the one reconciling flight");
            }
        }
    }
}
