//! Cases about the Merkle index and key-hash order: determinism, incremental
//! upkeep, node hashes, ranges and buckets.

use synctree_primitives::merkle::{self, FANOUT, TREE_DEPTH};
use synctree_primitives::store::bucket;
use synctree_primitives::{Entry, Hash, NodePos, Store};

use super::support::{
    MAX_HASH, Model, Rng, all, apply, assert_matches_model, collide, ctx, random_entries,
    successor, v,
};

/// One set of entries applied in three shuffled orders and batch splittings
/// gives the same entries and the same root, equal to [`merkle::root_of`].
pub fn root_is_independent_of_order_and_batching<S: Store>(make: impl Fn() -> S) {
    let mut rng = Rng::new(0x0dd5_eed5);
    let entries = random_entries(&mut rng, 600);
    let model = Model::of(&entries);
    for max_batch in [1, 13, entries.len()] {
        let (store, c) = (make(), ctx("determinism"));
        let mut order = entries.clone();
        rng.shuffle(&mut order);
        for batch in rng.split(order, max_batch) {
            apply(&store, &c, batch);
        }
        assert_matches_model(&store, &c, &model, &format!("batches of up to {max_batch}"));
    }
}

/// After every batch of a long random run, the root equals a recomputation
/// from scratch and the entries equal the merge oracle.
pub fn root_tracks_many_random_ops<S: Store>(make: impl Fn() -> S) {
    let mut rng = Rng::new(0x00c0_ffee);
    let (store, c) = (make(), ctx("random-ops"));
    let mut model = Model::default();
    for round in 0..150 {
        let len = 1 + rng.below(24) as usize;
        let batch = random_entries(&mut rng, len);
        model.apply(&batch);
        let report = apply(&store, &c, batch);
        assert_eq!(
            report.changed + report.unchanged,
            len as u64,
            "round {round}: counts"
        );
        let summary = store.summary(&c).expect("summary");
        assert_eq!(summary.root, model.root(), "round {round}: root");
        assert_eq!(
            summary.entry_count,
            model.len(),
            "round {round}: entry count"
        );
    }
    assert_matches_model(&store, &c, &model, "after the random run");
}

/// `range` and `bucket` return entries in key-hash order, within their bounds,
/// at most `limit` of them, with correct key hashes and digests.
pub fn range_and_bucket_follow_key_hash_order<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("ranges"));
    let mut entries: Vec<Entry> = (0..300)
        .map(|i| Entry::put(format!("range-{i}"), format!("{i}"), v(1, 1)))
        .collect();
    entries.extend(
        collide(12)
            .into_iter()
            .map(|k| Entry::put(k, "shared bucket", v(1, 1))),
    );
    apply(&store, &c, entries.clone());

    let full = all(&store, &c);
    assert_eq!(
        full.len(),
        entries.len(),
        "a full range returns every entry"
    );
    assert!(
        full.windows(2).all(|w| w[0].key_hash < w[1].key_hash),
        "strict key-hash order"
    );
    for e in &full {
        assert_eq!(e.key_hash, e.entry.key_hash(), "stored key hash");
        assert_eq!(e.digest, e.entry.digest(), "stored digest");
    }

    let range = |low: &Hash, high: &Hash, limit| store.range(&c, low, high, limit).expect("range");
    assert_eq!(
        range(&Hash::ZERO, &MAX_HASH, 10),
        full[..10],
        "limit keeps the first entries"
    );
    assert!(range(&Hash::ZERO, &MAX_HASH, 0).is_empty(), "limit 0");
    let (low, high) = (full[50].key_hash, full[120].key_hash);
    assert_eq!(
        range(&low, &high, usize::MAX),
        full[50..=120],
        "inclusive bounds"
    );
    assert_eq!(
        range(&low, &high, 5),
        full[50..55],
        "bounds and limit together"
    );
    assert!(
        range(&high, &low, usize::MAX).is_empty(),
        "low above high is empty"
    );
    // No other key hash lies this close to `low`.
    assert_eq!(
        range(&successor(low), &high, usize::MAX),
        full[51..=120],
        "bound between keys"
    );

    for leaf in full.iter().map(|e| merkle::leaf_index(&e.key_hash)) {
        let want: Vec<_> = full
            .iter()
            .filter(|e| merkle::leaf_index(&e.key_hash) == leaf)
            .cloned()
            .collect();
        let got = bucket(&store, &c, NodePos::new(TREE_DEPTH, leaf)).expect("bucket");
        assert_eq!(
            got, want,
            "bucket {leaf} holds exactly its entries, in order"
        );
    }
    assert!(
        full.iter()
            .any(|e| bucket(&store, &c, NodePos::leaf_of(&e.key_hash))
                .expect("b")
                .len()
                > 1),
        "some bucket holds several entries"
    );
}

/// Every node hash matches its children: `internal_hash(children(pos)) ==
/// node(pos)` from the root down, leaves hash their bucket, and empty subtrees
/// are zero and hold no entries.
pub fn node_hashes_are_consistent<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("nodes"));
    let mut rng = Rng::new(0xbeef);
    apply(&store, &c, random_entries(&mut rng, 200));
    let summary = store.summary(&c).expect("summary");
    let children = store.children(&c, NodePos::ROOT).expect("children");
    assert_eq!(
        merkle::internal_hash(&children),
        summary.root,
        "root = hash of its children"
    );
    assert_eq!(
        store.node(&c, NodePos::ROOT).expect("node"),
        summary.root,
        "node(ROOT) = root"
    );

    let mut stack = vec![NodePos::ROOT];
    let mut seen = 0u64;
    while let Some(pos) = stack.pop() {
        let hash = store.node(&c, pos).expect("node");
        let entries = bucket(&store, &c, pos).expect("subtree range");
        if hash.is_zero() {
            assert!(entries.is_empty(), "zero node {pos:?} must hold no entries");
        } else if pos.is_leaf() {
            assert_eq!(
                hash,
                merkle::leaf_hash(entries.iter().map(|e| &e.digest)),
                "leaf {pos:?}"
            );
            seen += entries.len() as u64;
        } else {
            let kids = store.children(&c, pos).expect("children");
            assert_eq!(merkle::internal_hash(&kids), hash, "internal node {pos:?}");
            for (i, kid) in kids.iter().enumerate() {
                assert_eq!(
                    *kid,
                    store.node(&c, pos.child(i)).expect("node"),
                    "child {i}"
                );
            }
            stack.extend((0..FANOUT).map(|i| pos.child(i)));
        }
    }
    assert_eq!(seen, summary.entry_count, "the leaves hold every entry");
}

/// Paging through `range` with a small `limit`, each page starting just after
/// the last key hash of the page before (how protocols stream a subtree),
/// visits every entry within the bounds exactly once, in key-hash order, for
/// any page size.
pub fn paging_follows_key_hash_order<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("paging"));
    let mut rng = Rng::new(0x9a6e);
    let mut entries: Vec<Entry> = (0..400)
        .map(|i| Entry::put(format!("page-{i}"), "v", v(1, 1)))
        .collect();
    entries.extend(
        collide(30)
            .into_iter()
            .map(|k| Entry::put(k, "shared", v(1, 1))),
    );
    entries.extend(random_entries(&mut rng, 100));
    let model = Model::of(&entries);
    for batch in rng.split(entries, 64) {
        apply(&store, &c, batch);
    }
    assert_matches_model(&store, &c, &model, "before paging");
    let full = all(&store, &c);
    let bounds = [
        (Hash::ZERO, MAX_HASH),
        NodePos::new(1, 5).key_hash_range(),
        (full[40].key_hash, full[300].key_hash),
        (successor(full[10].key_hash), full[11].key_hash),
    ];
    for (low, high) in bounds {
        let want: Vec<_> = full
            .iter()
            .filter(|e| low <= e.key_hash && e.key_hash <= high)
            .cloned()
            .collect();
        assert!(!want.is_empty(), "bounds {low}..={high} hold entries");
        for size in [1, 7, 64] {
            assert_eq!(
                page_through(&store, &c, low, high, size),
                want,
                "pages of {size} over {low}..={high}"
            );
        }
    }
}

/// Every entry in `low..=high`, read in pages of `size`.
fn page_through<S: Store>(
    store: &S,
    c: &synctree_primitives::ContextId,
    low: Hash,
    high: Hash,
    size: usize,
) -> Vec<synctree_primitives::StoredEntry> {
    let (mut out, mut cursor) = (Vec::new(), low);
    loop {
        let page = store.range(c, &cursor, &high, size).expect("range");
        assert!(page.len() <= size, "a page holds at most `limit` entries");
        let Some(last) = page.last().map(|e| e.key_hash) else {
            return out;
        };
        let more = page.len() == size && last < high;
        out.extend(page);
        if !more || last == MAX_HASH {
            return out;
        }
        cursor = successor(last);
    }
}
