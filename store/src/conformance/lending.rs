//! Cases for the lending read path ([`Store::visit_range`]) and the pre-hashed
//! write path ([`Store::apply_stored`]).

use std::ops::ControlFlow;

use synctree_primitives::{Entry, Hash, Store, StoredEntry};

use super::support::{all, apply, collide, ctx, v};

const MAX_HASH: Hash = Hash([0xff; 32]);

/// `visit_range` lends exactly what `range` returns, on the store and on a read
/// view, honours `limit` and stops where the visitor breaks.
pub fn visit_range_lends_what_range_returns<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("lending"));
    let mut entries: Vec<Entry> = (0..200)
        .map(|i| Entry::put(format!("lend-{i}"), format!("value {i}"), v(1, 1)))
        .collect();
    entries.extend(collide(6).into_iter().map(|k| Entry::delete(k, v(2, 3))));
    apply(&store, &c, entries);
    let full = all(&store, &c);
    let lend = |low: &Hash, high: &Hash, limit: usize, stop_after: usize| {
        let mut seen = Vec::new();
        let lent = store
            .visit_range(&c, low, high, limit, &mut |e| {
                seen.push(e.to_stored());
                if seen.len() == stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .expect("visit_range");
        assert_eq!(lent, seen.len(), "the count returned is the count lent");
        seen
    };
    assert_eq!(
        lend(&Hash::ZERO, &MAX_HASH, usize::MAX, 0),
        full,
        "whole context"
    );
    assert_eq!(lend(&Hash::ZERO, &MAX_HASH, 7, 0), full[..7], "limit");
    assert_eq!(
        lend(&Hash::ZERO, &MAX_HASH, usize::MAX, 5),
        full[..5],
        "break"
    );
    let (low, high) = (full[40].key_hash, full[90].key_hash);
    assert_eq!(lend(&low, &high, usize::MAX, 0), full[40..=90], "bounds");
    assert!(
        lend(&high, &low, usize::MAX, 0).is_empty(),
        "inverted bounds"
    );
    assert!(
        lend(&Hash::ZERO, &MAX_HASH, 0, 0).is_empty(),
        "limit 0 lends nothing"
    );
    let Some(view) = store.read_view(&c).expect("read_view") else {
        return;
    };
    let mut seen = Vec::new();
    view.visit_range(&Hash::ZERO, &MAX_HASH, usize::MAX, &mut |e| {
        seen.push(e.to_stored());
        ControlFlow::Continue(())
    })
    .expect("view visit_range");
    assert_eq!(seen, full, "a view lends what the store held");
}

/// `apply_stored` merges exactly like `apply`: same roots, same reports.
pub fn apply_stored_matches_apply<S: Store>(make: impl Fn() -> S) {
    let (plain, hashed, c) = (make(), make(), ctx("prehashed"));
    let first: Vec<Entry> = (0..300)
        .map(|i| Entry::put(format!("k{i}"), "one", v(5, 1)))
        .collect();
    let second: Vec<Entry> = (0..300)
        .map(|i| match i % 3 {
            0 => Entry::put(format!("k{i}"), "older", v(4, 1)),
            1 => Entry::delete(format!("k{i}"), v(6, 2)),
            _ => Entry::put(format!("new{i}"), "two", v(6, 2)),
        })
        .collect();
    for batch in [first, second] {
        let want = plain.apply(&c, batch.clone()).expect("apply");
        let stored = batch.into_iter().map(StoredEntry::new).collect();
        let got = hashed.apply_stored(&c, stored).expect("apply_stored");
        assert_eq!(got, want, "the same report");
        assert_eq!(
            hashed.summary(&c).expect("summary"),
            plain.summary(&c).expect("summary"),
            "the same tree"
        );
    }
    assert_eq!(all(&hashed, &c), all(&plain, &c), "the same entries");
}
