//! Writes during a session: each side takes a local batch in the middle of a
//! session (at a random store read), every protocol — Sketch included, on the same
//! random replica pairs — still ends without error, and the next session leaves
//! both sides with the merge of everything written, with equal roots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;

use common::{arb_replica, ctx, merged, sorted_entries, store_with};
use proptest::prelude::*;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{
    Entry, Identity, NodeId, ProtocolKind, Store, StoreError, SyncError, SyncProtocolExecutor,
    SyncStats, SyncTransport, merkle,
};
use synctree_protocols::{
    HashComparison, HashComparisonConfig, HashComparisonResponderInit, LevelWise, LevelWiseConfig,
    LevelWiseResponderInit, Sketch, SketchConfig, SketchResponderInit,
};
use synctree_store::MemoryStore;
use synctree_test_support::{StoreHook, StoreOp, StoreTap};
use synctree_transport::FramedTransport;

/// Applies `writes` to the wrapped store before its `at`-th read.
struct WriteOnce {
    at: usize,
    state: Mutex<(usize, Vec<Entry>)>,
}

impl StoreHook<MemoryStore> for WriteOnce {
    fn before(&self, inner: &MemoryStore, op: StoreOp<'_>) -> Result<(), StoreError> {
        if !op.is_read() {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        if state.0 == self.at && !state.1.is_empty() {
            inner.apply(&ctx(), std::mem::take(&mut state.1))?;
        }
        Ok(())
    }
}

async fn initiate<T: SyncTransport, S: Store>(
    protocol: ProtocolKind,
    transport: &mut T,
    store: &S,
) -> Result<SyncStats, SyncError> {
    let id = Identity::new(NodeId(1));
    match protocol {
        ProtocolKind::HashComparison => {
            let config = HashComparisonConfig::default();
            HashComparison::run_initiator(transport, store, &ctx(), &id, config).await
        }
        ProtocolKind::LevelWise => {
            let config = LevelWiseConfig::default();
            LevelWise::run_initiator(transport, store, &ctx(), &id, config).await
        }
        _ => Sketch::run_initiator(transport, store, &ctx(), &id, SketchConfig::default()).await,
    }
}

async fn respond<T: SyncTransport, S: Store>(
    transport: &mut T,
    store: &S,
) -> Result<SyncStats, SyncError> {
    let id = Identity::new(NodeId(2));
    let first = transport.recv().await.expect("recv").expect("init");
    let Some(Body::Init(init)) = first.body else {
        panic!("not an init");
    };
    match init.kind.expect("kind") {
        Kind::HashComparison(init) => {
            let init = HashComparisonResponderInit::try_from(&init).expect("init");
            HashComparison::run_responder(transport, store, &ctx(), &id, init).await
        }
        Kind::LevelWise(init) => {
            let init = LevelWiseResponderInit::try_from(&init).expect("init");
            LevelWise::run_responder(transport, store, &ctx(), &id, init).await
        }
        Kind::Sketch(init) => {
            let init = SketchResponderInit::try_from(&init).expect("init");
            Sketch::run_responder(transport, store, &ctx(), &id, init).await
        }
        _ => panic!("unexpected init"),
    }
}

fn session<S: Store>(protocol: ProtocolKind, a: &S, b: &S) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut ta, mut tb) = FramedTransport::memory_pair(4096);
        let (ra, rb) = tokio::join!(initiate(protocol, &mut ta, a), respond(&mut tb, b));
        ra.expect("initiator");
        rb.expect("responder");
    });
}

fn tapped(entries: &[Entry], at: usize, writes: Vec<Entry>) -> StoreTap<MemoryStore, WriteOnce> {
    let state = Mutex::new((0, writes));
    StoreTap::new(store_with(entries), WriteOnce { at, state })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn writes_during_a_session_converge_by_the_next(
        a in arb_replica(300, 200),
        b in arb_replica(300, 200),
        wa in arb_replica(300, 8),
        wb in arb_replica(300, 8),
        at_a in 1usize..12,
        at_b in 1usize..12,
    ) {
        let want = merged(&merged(&a, &wa), &merged(&b, &wb));
        for protocol in [ProtocolKind::HashComparison, ProtocolKind::LevelWise, ProtocolKind::Sketch] {
            let (sa, sb) = (tapped(&a, at_a, wa.clone()), tapped(&b, at_b, wb.clone()));
            session(protocol, &sa, &sb);
            // Whatever was not written yet, is now; then one more session.
            sa.inner().apply(&ctx(), wa.clone()).expect("apply");
            sb.inner().apply(&ctx(), wb.clone()).expect("apply");
            session(protocol, sa.inner(), sb.inner());
            prop_assert_eq!(&sorted_entries(sa.inner()), &want, "{:?} initiator", protocol);
            prop_assert_eq!(&sorted_entries(sb.inner()), &want, "{:?} responder", protocol);
            let root = merkle::root_of(&want);
            prop_assert_eq!(sa.inner().summary(&ctx()).expect("summary").root, root);
            prop_assert_eq!(sb.inner().summary(&ctx()).expect("summary").root, root);
        }
    }
}
