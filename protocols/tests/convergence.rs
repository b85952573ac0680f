//! HashComparison and LevelWise converge any two replicas, over the in-memory pair
//! stepper and over a real framed transport.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{arb_replica, assert_converged, ctx, diverged, respond, store_with, tree_init};
use proptest::prelude::*;
use synctree_primitives::merkle::TREE_DEPTH;
use synctree_primitives::{
    Entry, Hash, Identity, NodeId, ProtocolKind, Store, SyncProtocolExecutor, SyncTransport,
    Version,
};
use synctree_protocols::pair::{PairReport, run_pair};
use synctree_protocols::{
    HashComparison, HashComparisonConfig, HashComparisonResponderInit, LevelWise, LevelWiseConfig,
    Schedule, TreeConfig, TreeInitiator, TreeResponder, init_message,
};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

/// Runs HashComparison between two stores with the no-I/O pair stepper.
fn sync_pair(
    sa: &MemoryStore,
    sb: &MemoryStore,
    config: TreeConfig,
) -> synctree_primitives::SyncStats {
    sync_scheduled(sa, sb, config, Schedule::Eager)
}

/// Runs a tree protocol with `schedule` (Eager: HashComparison, LevelByLevel:
/// LevelWise) between two stores with the no-I/O pair stepper.
fn sync_scheduled(
    sa: &MemoryStore,
    sb: &MemoryStore,
    config: TreeConfig,
    schedule: Schedule,
) -> synctree_primitives::SyncStats {
    sync_session(sa, sb, config, schedule).0
}

/// [`sync_scheduled`], with what crossed between the two machines.
fn sync_session(
    sa: &MemoryStore,
    sb: &MemoryStore,
    config: TreeConfig,
    schedule: Schedule,
) -> (synctree_primitives::SyncStats, PairReport) {
    let root = sa.summary(&ctx()).expect("summary").root;
    let (kind, init) = tree_init(schedule);
    let init = init_message(&ctx(), init);
    let mut a = TreeInitiator::new(ctx(), kind, schedule, config, init, root);
    let mut b = TreeResponder::new(ctx(), kind, sb.summary(&ctx()).expect("summary").root);
    let report = run_pair(&mut a, sa, &mut b, sb, 10_000).expect("pair run");
    (a.into_stats(), report)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_replicas_converge(
        a in arb_replica(60, 80),
        b in arb_replica(60, 80),
        small in any::<bool>(),
        level_wise in any::<bool>(),
    ) {
        let (sa, sb) = (store_with(&a), store_with(&b));
        // Small requests exercise splitting and many requests in flight.
        let config = if small {
            TreeConfig { max_in_flight: 2, nodes_per_request: 3, keys_per_request: 2, push_bytes: 64, ..TreeConfig::default() }
        } else {
            TreeConfig::default()
        };
        let schedule = if level_wise { Schedule::LevelByLevel } else { Schedule::Eager };
        let stats = sync_scheduled(&sa, &sb, config, schedule);
        assert_converged(&sa, &sb, &a, &b);
        prop_assert!(stats.converged());
    }
}

#[test]
fn empty_sides_converge_both_ways() {
    let (full, _) = diverged(500, 0);
    for (a, b) in [
        (vec![], full.clone()),
        (full.clone(), vec![]),
        (vec![], vec![]),
    ] {
        let (sa, sb) = (store_with(&a), store_with(&b));
        let stats = sync_pair(&sa, &sb, TreeConfig::default());
        assert_converged(&sa, &sb, &a, &b);
        assert!(stats.converged());
    }
}

#[test]
fn equal_replicas_exchange_only_the_root_and_finish() {
    let (a, _) = diverged(2_000, 0);
    let (sa, sb) = (store_with(&a), store_with(&a));
    let stats = sync_pair(&sa, &sb, TreeConfig::default());
    assert_eq!(
        (stats.rounds, stats.nodes_compared, stats.entries_pulled),
        (2, 1, 0)
    );
    assert_eq!(stats.entries_pushed, 0);
}

/// Round trips after the handshake: two tree levels per compare request (2 for the
/// internal levels 1–4), then leaf summaries, entry pulls and the finish.
const MAX_ROUNDS: u32 = TREE_DEPTH as u32 / 2 + 3;

/// The tree schedules, each with its protocol's defaults.
fn schedules() -> [(Schedule, TreeConfig, ProtocolKind); 2] {
    [
        (
            Schedule::Eager,
            TreeConfig::default(),
            ProtocolKind::HashComparison,
        ),
        (
            Schedule::LevelByLevel,
            TreeConfig::from(LevelWiseConfig::default()),
            ProtocolKind::LevelWise,
        ),
    ]
}

#[test]
fn round_trips_stay_at_five_whatever_the_difference_count() {
    for (schedule, config, kind) in schedules() {
        for d in [1, 30, 300, 3_000] {
            let (a, b) = diverged(5_000, d);
            let (sa, sb) = (store_with(&a), store_with(&b));
            let stats = sync_scheduled(&sa, &sb, config.clone(), schedule);
            assert_converged(&sa, &sb, &a, &b);
            assert!(
                stats.rounds <= MAX_ROUNDS,
                "{schedule:?} d={d}: {} rounds",
                stats.rounds
            );
            assert_eq!(stats.protocol, kind);
            if d == 1 {
                // One entry only the initiator holds: compare, compare, finish (a
                // push needs no round trip of its own).
                assert_eq!(stats.rounds, 3, "{schedule:?}");
            }
        }
    }
}

/// `PairReport.bytes` of this session (n = 20,000, d = 100), measured for both
/// schedules with one tree level per round trip and full 32-byte child hashes,
/// before compare requests and truncated hashes (7 rounds).
const BYTES_BEFORE_COMPARE: u64 = 78_256;

/// The same session with compare requests and truncated child hashes, but full
/// 32-byte key hashes in leaf summaries and pulls (5 rounds).
const BYTES_BEFORE_KEY_PREFIXES: u64 = 27_349;

#[test]
fn two_levels_per_round_trip_and_key_prefixes_cost_fewer_bytes() {
    let (a, b) = diverged(20_000, 100);
    for (schedule, config, _) in schedules() {
        let (sa, sb) = (store_with(&a), store_with(&b));
        let (stats, report) = sync_session(&sa, &sb, config, schedule);
        assert_converged(&sa, &sb, &a, &b);
        assert!(stats.rounds <= MAX_ROUNDS, "{schedule:?}: {}", stats.rounds);
        assert!(
            report.bytes <= BYTES_WITH_KEY_PREFIXES
                && BYTES_WITH_KEY_PREFIXES < BYTES_BEFORE_KEY_PREFIXES
                && BYTES_BEFORE_KEY_PREFIXES < BYTES_BEFORE_COMPARE,
            "{schedule:?}: {} bytes",
            report.bytes
        );
    }
}

/// Measured with `KEY_PREFIX_BYTES` = 8 prefixes in leaf summaries and pulls.
const BYTES_WITH_KEY_PREFIXES: u64 = 24_925;

#[test]
fn level_wise_splits_a_wide_level_over_several_requests_and_still_converges() {
    let (a, b) = diverged(20_000, 3_000);
    let (sa, sb) = (store_with(&a), store_with(&b));
    // 3,000 differing leaves under at most 4,096 level-3 parents: 8 positions or
    // compare items per request forces hundreds of requests per step, capped by the
    // in-flight window.
    let config = TreeConfig {
        nodes_per_request: 8,
        ..TreeConfig::from(LevelWiseConfig::default())
    };
    let stats = sync_scheduled(&sa, &sb, config, Schedule::LevelByLevel);
    assert_converged(&sa, &sb, &a, &b);
    assert!(stats.converged());
}

#[tokio::test]
async fn level_wise_converges_over_a_framed_transport() {
    let (a, b) = diverged(3_000, 300);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let (mut ta, mut tb) = FramedTransport::memory_pair(64 * 1024);
    let id = Identity::new(NodeId(1));
    let context = ctx();
    let responder = respond(&mut tb, &sb);
    let initiator =
        LevelWise::run_initiator(&mut ta, &sa, &context, &id, LevelWiseConfig::default());
    let (ra, rb) = tokio::join!(initiator, responder);
    let (sa_stats, sb_stats) = (ra.expect("initiator"), rb.expect("responder"));
    assert_converged(&sa, &sb, &a, &b);
    // Only the initiator compares final roots: its `Finish` rides with its last
    // pulls, so the root it carries is the one before they were applied.
    assert!(sa_stats.converged());
    assert_eq!(sb_stats.local_root, sa_stats.remote_root);
    assert_eq!(sb_stats.protocol, ProtocolKind::LevelWise);
    assert_eq!(sa_stats.entries_pulled, sb_stats.entries_pushed);
}

#[tokio::test]
async fn converges_over_a_framed_transport_and_counts_bytes() {
    let (a, b) = diverged(3_000, 300);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let (mut ta, mut tb) = FramedTransport::memory_pair(64 * 1024);
    let id = Identity::new(NodeId(1));
    let context = ctx();
    let responder = async {
        let first = tb.recv().await.expect("recv").expect("init");
        assert_eq!(first.kind(), "init");
        let init = HashComparisonResponderInit {
            initiator_root: Hash::ZERO,
            key: Default::default(),
        };
        HashComparison::run_responder(&mut tb, &sb, &context, &id, init).await
    };
    let initiator =
        HashComparison::run_initiator(&mut ta, &sa, &context, &id, HashComparisonConfig::default());
    let (ra, rb) = tokio::join!(initiator, responder);
    let (sa_stats, sb_stats) = (ra.expect("initiator"), rb.expect("responder"));
    assert_converged(&sa, &sb, &a, &b);
    // Only the initiator compares final roots: its `Finish` rides with its last
    // pulls, so the root it carries is the one before they were applied.
    assert!(sa_stats.converged());
    assert_eq!(sb_stats.local_root, sa_stats.remote_root);
    assert_eq!(sa_stats.entries_pulled, sb_stats.entries_pushed);
    assert_eq!(sa_stats.entries_pushed, sb_stats.entries_pulled);
    assert!(sa_stats.transport.bytes_sent > 0 && sa_stats.transport.bytes_received > 0);
    assert!(
        sa_stats.payload_bytes > 0
            && sa_stats.payload_bytes
                < sa_stats.transport.bytes_received + sa_stats.transport.bytes_sent
    );
}

#[test]
fn tiny_entries_never_overfill_a_frame_in_either_direction() {
    // ~12-byte entries: a 1 MiB frame would hold more than MAX_ENTRIES_PER_BATCH.
    let tiny: Vec<Entry> = (0u32..70_000)
        .map(|i| {
            Entry::put(
                i.to_be_bytes()[1..].to_vec(),
                "",
                Version::new(1, NodeId(1)),
            )
        })
        .collect();
    assert!(tiny[0].encoded_len() * synctree_primitives::limits::MAX_ENTRIES_PER_BATCH < 1 << 20);
    for (a, b) in [(vec![], tiny.clone()), (tiny.clone(), vec![])] {
        let (sa, sb) = (store_with(&a), store_with(&b));
        let stats = sync_pair(&sa, &sb, TreeConfig::default());
        assert_converged(&sa, &sb, &a, &b);
        assert!(stats.converged());
    }
}

/// The responder's level-1 hashes as a handshake carries them.
fn top_of(store: &MemoryStore) -> [[u8; synctree_primitives::limits::NODE_HASH_BYTES]; 16] {
    let children = store
        .children(&ctx(), synctree_primitives::NodePos::ROOT)
        .expect("children");
    // Keyed like the session (no handshake: the fixed key).
    let key = synctree_primitives::salt::SessionKey::default();
    children.map(|h| key.truncate(&h))
}

#[test]
fn a_known_remote_top_level_saves_a_round_trip() {
    for schedule in [Schedule::Eager, Schedule::LevelByLevel] {
        for d in [1, 300, 3_000] {
            let (a, b) = diverged(5_000, d);
            let (sa, sb) = (store_with(&a), store_with(&b));
            let config = TreeConfig {
                remote_top: Some(top_of(&sb)),
                ..TreeConfig::from(LevelWiseConfig::default())
            };
            let stats = sync_scheduled(&sa, &sb, config, schedule);
            assert_converged(&sa, &sb, &a, &b);
            assert!(
                stats.rounds <= 4,
                "{schedule:?} d={d}: {} rounds",
                stats.rounds
            );
        }
    }
}

#[test]
fn a_stale_remote_top_level_costs_bytes_not_correctness() {
    let (a, b) = diverged(2_000, 50);
    let (sa, sb) = (store_with(&a), store_with(&b));
    // Claims the responder is empty: the initiator pushes everything it has, and
    // the merge rule keeps both replicas correct (the pulls are simply missed).
    let config = TreeConfig {
        remote_top: Some([[0; synctree_primitives::limits::NODE_HASH_BYTES]; 16]),
        ..TreeConfig::default()
    };
    let stats = sync_scheduled(&sa, &sb, config, Schedule::Eager);
    assert_eq!(stats.entries_pulled, 0);
    let want = common::merged(&a, &b);
    assert_eq!(common::sorted_entries(&sb), want);
    assert!(!stats.converged() || common::sorted_entries(&sa) == want);
}
