//! The salted truncation of node hashes: both sides keyed alike converge under any
//! key; a forced collision (both sides under a key that makes every non-empty
//! hash truncate alike) ends "not converged" without applying anything wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_converged, ctx, diverged, store_with, tree_init};
use synctree_primitives::salt::{SessionKey, SessionNonce};
use synctree_primitives::{Store, SyncStats};
use synctree_protocols::pair::run_pair;
use synctree_protocols::{Schedule, TreeConfig, TreeInitiator, TreeResponder, init_message};
use synctree_store::MemoryStore;

/// Runs a tree session with both machines keyed by `key`.
fn keyed_session(
    sa: &MemoryStore,
    sb: &MemoryStore,
    schedule: Schedule,
    key: &SessionKey,
) -> SyncStats {
    let root = sa.summary(&ctx()).expect("summary").root;
    let (kind, init) = tree_init(schedule);
    let config = TreeConfig {
        key: key.clone(),
        ..TreeConfig::default()
    };
    let init = init_message(&ctx(), init);
    let mut a = TreeInitiator::new(ctx(), kind, schedule, config, init, root);
    let root_b = sb.summary(&ctx()).expect("summary").root;
    let mut b = TreeResponder::new(ctx(), kind, root_b).with_key(key.clone());
    run_pair(&mut a, sa, &mut b, sb, 10_000).expect("pair run");
    a.into_stats()
}

#[test]
fn sessions_keyed_alike_converge_under_any_key() {
    for (n, schedule) in [(1u8, Schedule::Eager), (2, Schedule::LevelByLevel)] {
        let (a, b) = diverged(2_000, 150);
        let (sa, sb) = (store_with(&a), store_with(&b));
        let key = SessionKey::derive(&SessionNonce([n; 16]), &SessionNonce([n ^ 0x5a; 16]));
        let stats = keyed_session(&sa, &sb, schedule, &key);
        assert!(stats.converged(), "{schedule:?}");
        assert_converged(&sa, &sb, &a, &b);
    }
}

#[test]
fn a_forced_collision_ends_not_converged_and_the_next_key_repairs_it() {
    let (a, b) = diverged(2_000, 150);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let (before_a, before_b) = (sa.summary(&ctx()).unwrap(), sb.summary(&ctx()).unwrap());
    let stats = keyed_session(
        &sa,
        &sb,
        Schedule::Eager,
        &SessionKey::dangerous_colliding(),
    );
    assert!(!stats.converged());
    assert_eq!(stats.root_before, stats.local_root, "nothing was applied");
    assert_eq!(sa.summary(&ctx()).unwrap(), before_a);
    assert_eq!(sb.summary(&ctx()).unwrap(), before_b);
    let fresh = SessionKey::derive(&SessionNonce([9; 16]), &SessionNonce([7; 16]));
    assert!(keyed_session(&sa, &sb, Schedule::Eager, &fresh).converged());
    assert_converged(&sa, &sb, &a, &b);
}

#[test]
fn sides_keyed_differently_never_apply_anything_wrong() {
    let (a, b) = diverged(500, 40);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let root = sa.summary(&ctx()).expect("summary").root;
    let (kind, init) = tree_init(Schedule::Eager);
    let config = TreeConfig {
        key: SessionKey::derive(&SessionNonce([1; 16]), &SessionNonce([2; 16])),
        ..TreeConfig::default()
    };
    let mut ia = TreeInitiator::new(
        ctx(),
        kind,
        Schedule::Eager,
        config,
        init_message(&ctx(), init),
        root,
    );
    let mut rb = TreeResponder::new(ctx(), kind, sb.summary(&ctx()).unwrap().root);
    // Every child differs under two keys, so the descent reaches every leaf and the
    // leaf summaries (unkeyed) reconcile everything: more work, same result.
    run_pair(&mut ia, &sa, &mut rb, &sb, 100_000).expect("pair run");
    assert!(ia.into_stats().converged());
    assert_converged(&sa, &sb, &a, &b);
}
