//! Hostile bytes: a real session of every protocol is replayed with one of its
//! messages corrupted on the wire (bytes flipped, cut short). Whatever decodes is
//! delivered in the state where the real message was expected. No machine may
//! panic or loop: each corrupted session ends in a typed error or completes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::snapshot::{config, responder_init};
use common::{ctx, diverged, store_with, tree_init};
use proptest::prelude::*;
use prost::Message;
use synctree_primitives::wire::Compression;
use synctree_primitives::{Hash, Store, StreamMessage};
use synctree_protocols::{
    Machine, Schedule, SnapshotInitiator, SnapshotResponder, TreeConfig, TreeInitiator,
    TreeResponder, init_message,
};
use synctree_store::MemoryStore;

/// Steps bound: a real session here takes a few dozen.
const MAX_STEPS: usize = 10_000;

/// How to corrupt the message with this index.
#[derive(Clone, Debug)]
struct Corruption {
    index: usize,
    flips: Vec<(usize, u8)>,
    cut: Option<usize>,
}

fn corrupt(message: &StreamMessage, how: &Corruption) -> Option<StreamMessage> {
    let mut bytes = message.encode_to_vec();
    if bytes.is_empty() {
        return None;
    }
    for &(at, mask) in &how.flips {
        let len = bytes.len();
        bytes[at % len] ^= mask;
    }
    if let Some(cut) = how.cut {
        let len = bytes.len();
        bytes.truncate(cut % len);
    }
    StreamMessage::decode(bytes.as_slice()).ok()
}

/// Steps both machines, corrupting message number `how.index` (counting both
/// directions, the init excluded); returns how many messages crossed.
fn session<A, B>(
    a: &mut A,
    sa: &MemoryStore,
    b: &mut B,
    sb: &MemoryStore,
    how: &Corruption,
) -> usize
where
    A: Machine<MemoryStore>,
    B: Machine<MemoryStore>,
{
    let mut sent = 0;
    let Ok(Some(_init)) = a.poll_transmit(sa, crate::common::now()) else {
        panic!("the initiator opens with its init");
    };
    for _ in 0..MAX_STEPS {
        let mut progressed = false;
        for to_b in [true, false] {
            loop {
                let out = if to_b {
                    a.poll_transmit(sa, crate::common::now())
                } else {
                    b.poll_transmit(sb, crate::common::now())
                };
                let Ok(Some(message)) = out else {
                    break;
                };
                progressed = true;
                let message = if sent == how.index {
                    match corrupt(&message, how) {
                        Some(m) => m,
                        None => return sent, // The receiver would fail to decode it.
                    }
                } else {
                    message
                };
                sent += 1;
                let handled = if to_b {
                    b.handle(sb, crate::common::now(), message)
                } else {
                    a.handle(sa, crate::common::now(), message)
                };
                if handled.is_err() {
                    return sent;
                }
            }
        }
        if (a.is_done() && b.is_done()) || !progressed {
            return sent;
        }
    }
    panic!("no end within {MAX_STEPS} steps");
}

fn stores() -> (MemoryStore, MemoryStore) {
    let (a, b) = diverged(150, 30);
    (store_with(&a), store_with(&b))
}

fn root(store: &MemoryStore) -> Hash {
    store.summary(&ctx()).expect("summary").root
}

fn tree(schedule: Schedule, how: &Corruption) -> usize {
    let (sa, sb) = stores();
    let (kind, init) = tree_init(schedule);
    let config = TreeConfig {
        nodes_per_request: 7,
        keys_per_request: 5,
        push_bytes: 512,
        ..TreeConfig::default()
    };
    let init = init_message(&ctx(), init);
    let mut a = TreeInitiator::new(ctx(), kind, schedule, config, init, root(&sa));
    let mut b = TreeResponder::new(ctx(), kind, root(&sb));
    session(&mut a, &sa, &mut b, &sb, how)
}

fn snapshot(compression: Compression, how: &Corruption) -> usize {
    let (sa, sb) = stores();
    let config = config(2, compression);
    let init = responder_init(&config);
    let mut a = SnapshotInitiator::new(ctx(), config, root(&sa));
    let mut b = SnapshotResponder::new(ctx(), init, root(&sb)).with_page_bytes(2_000);
    session(&mut a, &sa, &mut b, &sb, how)
}

fn corruption() -> impl Strategy<Value = Corruption> {
    (
        0usize..24,
        prop::collection::vec((any::<usize>(), 1u8..=255), 1..4),
        prop::option::of(any::<usize>()),
    )
        .prop_map(|(index, flips, cut)| Corruption { index, flips, cut })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_corrupted_message_makes_a_machine_panic_or_loop(how in corruption()) {
        tree(Schedule::Eager, &how);
        tree(Schedule::LevelByLevel, &how);
        snapshot(Compression::None, &how);
        snapshot(Compression::Lz4, &how);
    }
}

#[test]
fn uncorrupted_sessions_cross_enough_messages_to_reach_every_phase() {
    let clean = Corruption {
        index: usize::MAX,
        flips: Vec::new(),
        cut: None,
    };
    // The corruption index range above must cover the real sessions.
    for crossed in [
        tree(Schedule::Eager, &clean),
        tree(Schedule::LevelByLevel, &clean),
        snapshot(Compression::None, &clean),
        snapshot(Compression::Lz4, &clean),
    ] {
        assert!((8..=24).contains(&crossed), "{crossed} messages");
    }
}
