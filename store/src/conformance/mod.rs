//! The conformance suite every [`Store`] backend must pass.
//!
//! Each case is a `pub fn` taking a factory `make` that returns a fresh, empty
//! store; a case builds as many stores as it needs and panics on the first
//! violation, with a message naming what broke. [`run_all`] runs every case.
//! Persistent backends also run the cases of [`persistent`], with a factory
//! that reopens one store.
//! Cases only use the [`Store`] trait, so they hold for any backend:
//!
//! ```
//! // In a backend's tests, with a factory of fresh stores:
//! synctree_store::conformance::run_all(synctree_store::MemoryStore::new);
//! ```
//!
//! Other crates get this module with the `conformance` feature (in their
//! dev-dependency on this crate). This crate's own tests compile its source
//! directly, with `#[path]`, so `cargo test` runs it without the feature (see
//! `tests/conformance_memory.rs`). Randomized cases use fixed seeds, so a
//! failure replays exactly.

// A test suite: panicking with a message is how it reports a failure.
#![allow(clippy::expect_used)]

mod gc;
mod lending;
pub mod persistent;
mod support;
mod tree;
mod views;

use synctree_primitives::merkle::{self, FANOUT, TREE_DEPTH};
use synctree_primitives::{Entry, Hash, NodePos, Store, TreeSummary};

use support::{Rng, all, apply, collide, ctx, get, random_entries, root, v};

pub use gc::{
    purge_removes_what_its_rule_names, sweeps_remove_old_tombstones_only,
    the_watermark_refuses_old_values_of_absent_keys,
};
pub use lending::{apply_stored_matches_apply, visit_range_lends_what_range_returns};
pub use support::{Model, assert_matches_model, assert_sketch_recomputes};
pub use tree::{
    node_hashes_are_consistent, paging_follows_key_hash_order,
    range_and_bucket_follow_key_hash_order, root_is_independent_of_order_and_batching,
    root_tracks_many_random_ops,
};
pub use views::{read_views_are_point_in_time, sync_state_round_trips};

/// Runs every case of the suite on stores built by `make`.
pub fn run_all<S: Store>(make: impl Fn() -> S) {
    put_get_and_overwrite(&make);
    tombstones_hide_and_resurrect(&make);
    duplicate_keys_in_one_batch_merge(&make);
    root_is_independent_of_order_and_batching(&make);
    root_tracks_many_random_ops(&make);
    range_and_bucket_follow_key_hash_order(&make);
    paging_follows_key_hash_order(&make);
    contexts_are_isolated(&make);
    node_hashes_are_consistent(&make);
    unknown_context_reads_as_empty(&make);
    apply_report_counts(&make);
    sketch_tracks_random_batches(&make);
    read_views_are_point_in_time(&make);
    sync_state_round_trips(&make);
    visit_range_lends_what_range_returns(&make);
    apply_stored_matches_apply(&make);
    sweeps_remove_old_tombstones_only(&make);
    the_watermark_refuses_old_values_of_absent_keys(&make);
    purge_removes_what_its_rule_names(&make);
}

/// The maintained sketch equals the recomputed one after random batches of
/// puts, overwrites and deletes, and across the growths of its length (a
/// context grows past 2,048 and 4,096 entries here).
pub fn sketch_tracks_random_batches<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("sketch"));
    assert_sketch_recomputes(&store, &c, "empty context");
    let mut rng = Rng::new(0x5eed_5ce7);
    let mut model = Model::default();
    let mut written = 0;
    for round in 0..12u64 {
        let fresh: Vec<Entry> = (0..500)
            .map(|i| Entry::put(format!("s{round}-{i}"), "v", v(round + 1, 1)))
            .collect();
        let mut batch = random_entries(&mut rng, 40);
        batch.extend(fresh);
        rng.shuffle(&mut batch);
        for part in rng.split(batch, 700) {
            model.apply(&part);
            apply(&store, &c, part);
            written += 1;
        }
        assert_sketch_recomputes(&store, &c, &format!("after round {round}"));
    }
    assert!(
        written > 12 && model.len() > 4096,
        "grew past two thresholds"
    );
    assert_matches_model(&store, &c, &model, "after every round");
}

/// A put is readable; a newer version overwrites it; an older one, or one that
/// loses the tie-break of equal versions, does not.
pub fn put_get_and_overwrite<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("put-get"));
    let first = Entry::put("k", "v1", v(1, 1));
    apply(&store, &c, vec![first.clone()]);
    assert_eq!(get(&store, &c, "k"), Some(first), "a put is readable");

    let newer = Entry::put("k", "v2", v(2, 1));
    apply(&store, &c, vec![newer.clone()]);
    assert_eq!(
        get(&store, &c, "k"),
        Some(newer.clone()),
        "a newer version overwrites"
    );
    let before = root(&store, &c);

    let older = Entry::put("k", "zzz-older", v(1, 9));
    let report = apply(&store, &c, vec![older]);
    assert_eq!(
        (report.changed, report.unchanged),
        (0, 1),
        "an older version is unchanged"
    );
    assert_eq!(
        get(&store, &c, "k"),
        Some(newer.clone()),
        "an older version must not win"
    );
    assert_eq!(
        root(&store, &c),
        before,
        "a losing write must not move the root"
    );

    let tie_loses = Entry::put("k", "a-smaller-value", v(2, 1));
    apply(&store, &c, vec![tie_loses]);
    assert_eq!(
        get(&store, &c, "k"),
        Some(newer),
        "equal versions: the smaller value loses"
    );
    let tie_wins = Entry::put("k", "zz-larger-value", v(2, 1));
    apply(&store, &c, vec![tie_wins.clone()]);
    assert_eq!(
        get(&store, &c, "k"),
        Some(tie_wins.clone()),
        "equal versions: larger value wins"
    );

    let summary = store.summary(&c).expect("summary");
    assert_eq!(summary.entry_count, 1, "one key, one entry");
    assert_eq!(
        summary.root,
        merkle::root_of([&tie_wins]),
        "root of the single winner"
    );
}

/// A newer delete hides the value (the tombstone stays, and counts); a stale put
/// does not bring it back; a later put resurrects the key.
pub fn tombstones_hide_and_resurrect<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("tombstones"));
    let mut model = Model::default();
    let mut step = |batch: Vec<Entry>, what: &str| {
        model.apply(&batch);
        apply(&store, &c, batch);
        assert_matches_model(&store, &c, &model, what);
    };
    step(
        vec![
            Entry::put("k", "live", v(1, 1)),
            Entry::put("other", "x", v(1, 1)),
        ],
        "puts",
    );
    step(vec![Entry::delete("k", v(2, 1))], "delete");
    let hidden = get(&store, &c, "k").expect("a tombstone is an entry");
    assert!(
        hidden.tombstone && hidden.value.is_empty(),
        "delete hides the value: {hidden:?}"
    );

    step(
        vec![Entry::put("k", "stale", v(1, 7))],
        "stale put after delete",
    );
    assert!(
        get(&store, &c, "k").is_some_and(|e| e.tombstone),
        "a stale put must not resurrect"
    );

    step(vec![Entry::put("k", "again", v(3, 1))], "put after delete");
    assert_eq!(
        get(&store, &c, "k").map(|e| e.value),
        Some("again".into()),
        "resurrected"
    );

    step(vec![Entry::delete("k", v(3, 1))], "delete tying with a put");
    assert!(
        get(&store, &c, "k").is_some_and(|e| e.tombstone),
        "a delete wins a version tie"
    );

    step(
        vec![Entry::delete("never-written", v(1, 1))],
        "delete of an unknown key",
    );
    assert_eq!(
        store.summary(&c).expect("summary").entry_count,
        3,
        "tombstones are entries"
    );
}

/// Several writes to one key inside one batch merge to the winner, whatever
/// their order in the batch.
pub fn duplicate_keys_in_one_batch_merge<S: Store>(make: impl Fn() -> S) {
    let mut batch = vec![
        Entry::put("k", "a", v(1, 1)),
        Entry::put("k", "c", v(3, 1)),
        Entry::put("j", "x", v(5, 2)),
        Entry::put("k", "b", v(2, 1)),
        Entry::delete("j", v(5, 1)),
        Entry::put("k", "c-old", v(3, 0)),
    ];
    // Keys sharing a bucket, written twice each, exercise bucket re-hashing.
    for (i, key) in collide(6).iter().enumerate() {
        batch.push(Entry::put(key.clone(), "old", v(1, 1)));
        batch.push(Entry::put(key.clone(), format!("new-{i}"), v(2, 1)));
    }
    let model = Model::of(&batch);
    for reverse in [false, true] {
        let (store, c) = (make(), ctx("duplicates"));
        let mut order = batch.clone();
        if reverse {
            order.reverse();
        }
        let report = apply(&store, &c, order);
        assert_eq!(
            report.changed + report.unchanged,
            batch.len() as u64,
            "each entry counted"
        );
        assert_matches_model(&store, &c, &model, "batch with duplicate keys");
        assert_eq!(
            get(&store, &c, "k").map(|e| e.value),
            Some("c".into()),
            "newest wins"
        );
    }
}

/// Writes to one context never change another; `contexts()` lists exactly the
/// non-empty ones, sorted.
pub fn contexts_are_isolated<S: Store>(make: impl Fn() -> S) {
    let store = make();
    // Written first, listed second: `contexts()` sorts by name.
    let (first, second, idle) = (ctx("ctx-b"), ctx("ctx-a"), ctx("ctx-idle"));
    let mut rng = Rng::new(7);
    let (for_first, for_second) = (random_entries(&mut rng, 50), random_entries(&mut rng, 50));
    apply(&store, &first, for_first.clone());
    assert_eq!(
        root(&store, &second),
        Hash::ZERO,
        "a write to one context shows in no other"
    );
    let snapshot = |c| (store.summary(c).expect("summary"), all(&store, c));
    let before = snapshot(&first);

    apply(&store, &second, for_second.clone());
    apply(&store, &second, for_first.clone());
    apply(&store, &idle, Vec::new());
    assert_eq!(
        snapshot(&first),
        before,
        "writes to another context must not change this one"
    );
    assert_matches_model(&store, &first, &Model::of(&for_first), "first context");
    let both: Vec<Entry> = for_second.into_iter().chain(for_first).collect();
    assert_matches_model(&store, &second, &Model::of(&both), "second context");
    let listed = store.contexts().expect("contexts");
    assert_eq!(
        listed,
        vec![second, first],
        "exactly the non-empty contexts, sorted"
    );
}

/// An unknown context reads as an empty tree everywhere.
pub fn unknown_context_reads_as_empty<S: Store>(make: impl Fn() -> S) {
    let store = make();
    assert!(
        store.contexts().expect("contexts").is_empty(),
        "a fresh store has no contexts"
    );
    apply(
        &store,
        &ctx("someone-else"),
        vec![Entry::put("k", "v", v(1, 1))],
    );
    let c = ctx("never-written");
    let empty = TreeSummary {
        root: Hash::ZERO,
        entry_count: 0,
        depth: TREE_DEPTH,
    };
    assert_eq!(store.summary(&c).expect("summary"), empty, "empty summary");
    assert_eq!(
        store.node(&c, NodePos::ROOT).expect("node"),
        Hash::ZERO,
        "zero root node"
    );
    let leaf = NodePos::leaf_of(&synctree_primitives::key_hash(b"k"));
    assert_eq!(store.node(&c, leaf).expect("node"), Hash::ZERO, "zero leaf");
    assert_eq!(
        store.children(&c, NodePos::ROOT).expect("children"),
        [Hash::ZERO; FANOUT]
    );
    assert!(all(&store, &c).is_empty(), "no entries in range");
    assert_eq!(
        get(&store, &c, "k"),
        None,
        "no entry for a key written elsewhere"
    );
    assert!(
        !store.contexts().expect("contexts").contains(&c),
        "not listed"
    );
}

/// [`synctree_primitives::ApplyReport`] counts new and winning entries as
/// changed, the rest as unchanged; an empty batch changes nothing.
pub fn apply_report_counts<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("reports"));
    let counts = |batch: Vec<Entry>| {
        let r = apply(&store, &c, batch);
        (r.changed, r.unchanged)
    };
    assert_eq!(counts(Vec::new()), (0, 0), "empty batch");
    assert!(
        store.contexts().expect("contexts").is_empty(),
        "an empty batch creates nothing"
    );

    let put = |i: u64, hlc: u64| Entry::put(format!("key-{i}"), format!("v{hlc}"), v(hlc, 1));
    assert_eq!(
        counts((0..10).map(|i| put(i, 5)).collect()),
        (10, 0),
        "new keys"
    );
    assert_eq!(
        counts((0..10).map(|i| put(i, 5)).collect()),
        (0, 10),
        "same entries again"
    );
    let mixed = (0..10)
        .map(|i| put(i, if i % 2 == 0 { 6 } else { 4 }))
        .collect();
    assert_eq!(counts(mixed), (5, 5), "newer change, older do not");
    assert_eq!(
        counts(vec![Entry::delete("key-0", v(7, 1))]),
        (1, 0),
        "a winning delete"
    );
    assert_eq!(
        counts(vec![Entry::delete("key-0", v(7, 1))]),
        (0, 1),
        "the same delete again"
    );

    let (changed, unchanged) = counts(vec![put(99, 1), put(99, 3), put(99, 2)]);
    assert_eq!(
        changed + unchanged,
        3,
        "every entry of a batch is counted once"
    );
    assert!(changed >= 1, "a new key changes the store");
}
