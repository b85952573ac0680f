//! The deep descent: with many differences estimated, a differing node above
//! level 3 is answered by compare items for all of its level-3 descendants at
//! once, whose answers are leaf summaries, so a session saves a round trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_converged, ctx, diverged, store_with};
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::HashComparisonInit;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{Hash, NodePos, ProtocolKind, Store, SyncStats};
use synctree_protocols::pair::run_pair;
use synctree_protocols::{
    DEEP_DESCENT_DIFFERENCES, Schedule, TreeConfig, TreeInitiator, TreeResponder, init_message,
};
use synctree_store::MemoryStore;

fn session(
    sa: &MemoryStore,
    sb: &MemoryStore,
    config: TreeConfig,
    schedule: Schedule,
) -> SyncStats {
    let root = sa.summary(&ctx()).expect("summary").root;
    let init = init_message(
        &ctx(),
        Kind::HashComparison(HashComparisonInit {
            root: root.0.to_vec().into(),
        }),
    );
    let kind = ProtocolKind::HashComparison;
    let mut i = TreeInitiator::new(ctx(), kind, schedule, config, init, root);
    let mut r = TreeResponder::new(ctx(), kind, Hash::ZERO);
    run_pair(&mut i, sa, &mut r, sb, 10_000).expect("pair run");
    i.into_stats()
}

/// The responder's level-1 hashes, as the handshake's top fingerprint carries them.
fn top_of(store: &MemoryStore) -> [[u8; 8]; 16] {
    let children = store.children(&ctx(), NodePos::ROOT).expect("children");
    children.map(|h| SessionKey::default().truncate(&h))
}

fn deep(estimate: u64) -> TreeConfig {
    TreeConfig {
        estimated_differences: Some(estimate),
        ..TreeConfig::default()
    }
}

#[test]
fn with_the_top_level_known_a_spread_deep_session_takes_two_round_trips_after_the_handshake() {
    for schedule in [Schedule::Eager, Schedule::LevelByLevel] {
        for (d, rounds) in [(1, 3), (3_000, 2)] {
            let (a, b) = diverged(20_000, d);
            let (sa, sb) = (store_with(&a), store_with(&b));
            let config = TreeConfig {
                remote_top: Some(top_of(&sb)),
                ..deep(u64::MAX)
            };
            let stats = session(&sa, &sb, config, schedule);
            assert_converged(&sa, &sb, &a, &b);
            assert!(stats.converged());
            // Spread differences: compare every level-3 node under the differing
            // level-1 nodes, then pulls + finish. One difference is not spread:
            // it descends two levels per round trip (compare, compare, finish).
            assert_eq!(stats.rounds, rounds, "{schedule:?} d={d}");
        }
    }
}

#[test]
fn without_the_top_level_a_deep_session_takes_three() {
    let (a, b) = diverged(20_000, 3_000);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let stats = session(&sa, &sb, deep(DEEP_DESCENT_DIFFERENCES), Schedule::Eager);
    assert_converged(&sa, &sb, &a, &b);
    assert_eq!(
        stats.rounds, 3,
        "compare root, compare level 3, pulls + finish"
    );
    // Below the threshold the descent stays two levels per round trip.
    let (sa, sb) = (store_with(&a), store_with(&b));
    let shallow = session(
        &sa,
        &sb,
        deep(DEEP_DESCENT_DIFFERENCES - 1),
        Schedule::Eager,
    );
    assert_converged(&sa, &sb, &a, &b);
    assert_eq!(shallow.rounds, 4);
}

#[test]
fn a_deep_session_converges_when_one_side_lacks_whole_subtrees() {
    let (a, _) = diverged(3_000, 0);
    // The initiator holds only keys whose hash starts with nibble 0..8: whole
    // level-1, 2 and 3 subtrees are empty on its side.
    let half: Vec<_> = a
        .iter()
        .filter(|e| e.key_hash().0[0] < 0x80)
        .cloned()
        .collect();
    let (sa, sb) = (store_with(&half), store_with(&a));
    let config = TreeConfig {
        remote_top: Some(top_of(&sb)),
        ..deep(u64::MAX)
    };
    let stats = session(&sa, &sb, config, Schedule::Eager);
    assert_converged(&sa, &sb, &half, &a);
    assert_eq!(stats.entries_pulled as usize, a.len() - half.len());
}
