//! Strategy equivalence: every protocol, run on the same random pair of replicas,
//! leaves both sides with the same final state (the per-key merge of both inputs),
//! through the real executors over a framed in-memory transport.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{arb_replica, ctx, initiate, merged, respond, sorted_entries, store_with};
use proptest::prelude::*;
use synctree_primitives::{Entry, ProtocolKind, Store, merkle};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

const PROTOCOLS: [ProtocolKind; 3] = [
    ProtocolKind::HashComparison,
    ProtocolKind::LevelWise,
    ProtocolKind::Snapshot,
];

/// Runs `protocol` between fresh stores holding `a` and `b`; returns both stores.
fn run(protocol: ProtocolKind, a: &[Entry], b: &[Entry]) -> (MemoryStore, MemoryStore) {
    let (sa, sb) = (store_with(a), store_with(b));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut ta, mut tb) = FramedTransport::memory_pair(4096);
        let initiator = initiate(protocol, &mut ta, &sa);
        let (ra, rb) = tokio::join!(initiator, respond(&mut tb, &sb));
        let (ra, rb) = (ra.expect("initiator"), rb.expect("responder"));
        assert_eq!((ra.protocol, rb.protocol), (protocol, protocol));
        assert!(ra.converged() && rb.converged(), "{protocol:?}");
    });
    (sa, sb)
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
