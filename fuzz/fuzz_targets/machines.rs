//! Each protocol machine (tree initiator and responder for both tree protocols,
//! snapshot initiator and responder) fed a sequence of decoded `StreamMessage`s,
//! sans-IO with a fixed `now`, in a bounded number of steps. Never panics, never
//! sends without end; the store's root still matches its entries.

#![no_main]

use libfuzzer_sys::fuzz_target;
use synctree_fuzz::{context, messages, run_machine};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::{Compression, HashComparisonInit, LevelWiseInit, ProtocolKind};
use synctree_primitives::{Hash, Store, WallClock};
use synctree_protocols::{
    Schedule, SnapshotConfig, SnapshotInitiator, SnapshotResponder, SnapshotResponderInit,
    TreeConfig, TreeInitiator, TreeResponder, init_message,
};
use synctree_store::{MemoryStore, recompute_root};

/// Within a few minutes of the entries' tiny versions: nothing is refused as
/// ahead, and the run does not depend on the machine's clock.
const CLOCK: WallClock = WallClock::Fixed(1_700_000_000_000);

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let store = synctree_fuzz::store();
    let root = store.summary(&context()).expect("summary").root;
    let input = messages(rest);
    let compression = if which & 0x80 == 0 {
        Compression::None
    } else {
        Compression::Lz4
    };
    match which & 0x7 {
        0 => run_machine(
            &mut tree_initiator(ProtocolKind::HashComparison, root),
            &store,
            input,
        ),
        1 => run_machine(
            &mut tree_initiator(ProtocolKind::LevelWise, root),
            &store,
            input,
        ),
        2 => run_machine(
            &mut tree_responder(ProtocolKind::HashComparison, root),
            &store,
            input,
        ),
        3 => run_machine(
            &mut tree_responder(ProtocolKind::LevelWise, root),
            &store,
            input,
        ),
        4 | 5 => {
            let config = SnapshotConfig {
                compression,
                ..SnapshotConfig::default()
            };
            let mut m = SnapshotInitiator::new(context(), config, root).with_clock(CLOCK);
            run_machine(&mut m, &store, input);
        }
        _ => {
            let init = SnapshotResponderInit {
                initiator_root: Hash::ZERO,
                window: usize::from(which >> 3 & 0xf),
                compression,
                resume_root: None,
                resume_after: None,
            };
            let mut m = SnapshotResponder::new(context(), init, root).with_clock(CLOCK);
            run_machine(&mut m, &store, input);
        }
    }
    check_store(&store);
});

fn tree_initiator(kind: ProtocolKind, root: Hash) -> TreeInitiator {
    let bytes = bytes::Bytes::copy_from_slice(&root.0);
    let (schedule, opening) = match kind {
        ProtocolKind::LevelWise => (
            Schedule::LevelByLevel,
            Kind::LevelWise(LevelWiseInit { root: bytes }),
        ),
        _ => (
            Schedule::Eager,
            Kind::HashComparison(HashComparisonInit { root: bytes }),
        ),
    };
    let init = init_message(&context(), opening);
    TreeInitiator::new(context(), kind, schedule, TreeConfig::default(), init, root)
        .with_clock(CLOCK)
}

fn tree_responder(kind: ProtocolKind, root: Hash) -> TreeResponder {
    TreeResponder::new(context(), kind, root).with_clock(CLOCK)
}

fn check_store(store: &MemoryStore) {
    let summary = store.summary(&context()).expect("summary");
    let recomputed = recompute_root(store, &context()).expect("recompute");
    assert_eq!(recomputed, (summary.root, summary.entry_count));
}
