//! Cases for tombstone GC: [`Store::purge`], [`Store::gc_watermark`] and the
//! refusal rule of [`Store::apply`] (docs/PROTOCOL.md, "Tombstone GC").

use synctree_primitives::gc::purge_tombstones;
use synctree_primitives::{Entry, PurgeRule, Store, key_hash};

use super::support::{Model, all, apply, assert_matches_model, assert_sketch_recomputes, ctx, v};

/// A sweep removes exactly the tombstones below the cutoff, keeps the tree, the
/// count and the sketch right, and raises the watermark just above the newest
/// tombstone it removed.
pub fn sweeps_remove_old_tombstones_only<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("gc-sweep"));
    let puts: Vec<Entry> = (0..3_000)
        .map(|i| Entry::put(format!("g{i}"), "value", v(5, 1)))
        .collect();
    apply(&store, &c, puts);
    let deletes: Vec<Entry> = (0..3_000)
        .filter(|i| i % 3 != 0)
        .map(|i| Entry::delete(format!("g{i}"), v(if i % 3 == 1 { 10 } else { 50 }, 2)))
        .collect();
    apply(&store, &c, deletes);
    assert_eq!(
        store.gc_watermark(&c).expect("watermark"),
        0,
        "never purged"
    );
    let report = purge_tombstones(&store, &c, 30).expect("sweep");
    assert_eq!(
        report.purged, 1_000,
        "the tombstones at 10, not those at 50"
    );
    assert_eq!(report.watermark, 11, "one past the newest purged tombstone");
    let kept: Vec<Entry> = all(&store, &c).into_iter().map(|s| s.entry).collect();
    assert_eq!(kept.len(), 2_000);
    assert!(kept.iter().all(|e| !e.tombstone || e.version.hlc == 50));
    assert_matches_model(&store, &c, &Model::of(&kept), "after a sweep");
    assert_sketch_recomputes(&store, &c, "after a sweep");
    // A second sweep at the same cutoff finds nothing; the watermark never lowers.
    assert_eq!(purge_tombstones(&store, &c, 30).expect("sweep").purged, 0);
    assert_eq!(
        purge_tombstones(&store, &c, 5).expect("sweep").watermark,
        11
    );
}

/// Below the watermark, an entry for a key the store holds nothing for is
/// refused and counted; one for a held key merges as always; newer ones pass.
pub fn the_watermark_refuses_old_values_of_absent_keys<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("gc-refuse"));
    apply(
        &store,
        &c,
        vec![
            Entry::put("held", "old", v(5, 1)),
            Entry::put("gone", "old", v(5, 1)),
        ],
    );
    apply(&store, &c, vec![Entry::delete("gone", v(10, 1))]);
    purge_tombstones(&store, &c, 30).expect("sweep");
    assert_eq!(store.get(&c, &key_hash(b"gone")).expect("get"), None);

    let resurrect = store
        .apply(&c, vec![Entry::put("gone", "old", v(5, 1))])
        .expect("apply");
    assert_eq!((resurrect.refused, resurrect.changed), (1, 0), "refused");
    assert_eq!(store.get(&c, &key_hash(b"gone")).expect("get"), None);

    let held = store
        .apply(&c, vec![Entry::put("held", "newer but old", v(20, 1))])
        .expect("apply");
    assert_eq!((held.refused, held.changed), (0, 1), "a held key merges");

    let fresh = store
        .apply(&c, vec![Entry::put("gone", "new", v(31, 1))])
        .expect("apply");
    assert_eq!(
        (fresh.refused, fresh.changed),
        (0, 1),
        "above the watermark"
    );
    let old_tombstone = store
        .apply(&c, vec![Entry::delete("never", v(7, 1))])
        .expect("apply");
    assert_eq!(
        old_tombstone.refused, 1,
        "old tombstones of absent keys too"
    );
}

/// `purge` of any entries (a stale node adopting a peer's state) removes live
/// entries below `below` among the keys given, skips absent and newer ones, and
/// raises the watermark even when it removes nothing.
pub fn purge_removes_what_its_rule_names<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("gc-purge"));
    let entries = vec![
        Entry::put("a", "1", v(5, 1)),
        Entry::put("b", "1", v(40, 1)),
        Entry::delete("c", v(6, 1)),
    ];
    apply(&store, &c, entries.clone());
    let rule = PurgeRule {
        below: 30,
        tombstones_only: false,
    };
    let keys = [key_hash(b"a"), key_hash(b"b"), key_hash(b"absent")];
    assert_eq!(store.purge(&c, &[], rule, 25).expect("purge"), 0);
    assert_eq!(store.gc_watermark(&c).expect("watermark"), 25);
    assert_eq!(
        store.purge(&c, &keys, rule, 30).expect("purge"),
        1,
        "only a"
    );
    assert_matches_model(&store, &c, &Model::of(&entries[1..]), "after a purge");
    assert_sketch_recomputes(&store, &c, "after a purge");
    assert_eq!(store.gc_watermark(&c).expect("watermark"), 30);
    let untouched = ctx("gc-untouched");
    assert_eq!(store.gc_watermark(&untouched).expect("watermark"), 0);
}
