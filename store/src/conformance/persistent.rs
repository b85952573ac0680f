//! Cases for persistent backends: what a store holds survives dropping it and
//! opening the same storage again. Not part of [`super::run_all`], which builds
//! fresh stores; these take a factory that reopens one.

use synctree_primitives::merkle::FANOUT;
use synctree_primitives::{ContextId, Hash, NodePos, Store, StoredEntry, TreeSummary};

use super::support::{Model, Rng, all, apply, assert_matches_model, ctx, random_entries};

/// Everything a reader can see of some contexts.
#[derive(Debug, PartialEq)]
struct Snapshot {
    contexts: Vec<ContextId>,
    summaries: Vec<TreeSummary>,
    entries: Vec<Vec<StoredEntry>>,
    /// Every non-zero node, from the root down.
    nodes: Vec<Vec<(NodePos, Hash)>>,
}

impl Snapshot {
    fn of<S: Store>(store: &S, contexts: &[&ContextId]) -> Self {
        Snapshot {
            contexts: store.contexts().expect("contexts"),
            summaries: contexts
                .iter()
                .map(|c| store.summary(c).expect("summary"))
                .collect(),
            entries: contexts.iter().map(|c| all(store, c)).collect(),
            nodes: contexts.iter().map(|c| nodes(store, c)).collect(),
        }
    }
}

/// Every non-zero node of `c`, depth first.
fn nodes<S: Store>(store: &S, c: &ContextId) -> Vec<(NodePos, Hash)> {
    let mut out = Vec::new();
    let mut stack = vec![(NodePos::ROOT, store.node(c, NodePos::ROOT).expect("node"))];
    while let Some((pos, hash)) = stack.pop() {
        if hash.is_zero() {
            continue;
        }
        out.push((pos, hash));
        if !pos.is_leaf() {
            let kids = store.children(c, pos).expect("children");
            stack.extend((0..FANOUT).map(|i| (pos.child(i), kids[i])));
        }
    }
    out
}

/// Writes to two contexts, drops the store, reopens it: the same contexts,
/// summaries, entries and node hashes, matching the merge oracle. Writes made
/// after a reopen persist across the next one. `open` must return a handle on
/// the same storage each time it is called (after the last one was dropped).
pub fn reopen_preserves_entries_and_index<S: Store>(open: impl Fn() -> S) {
    let (a, b, idle) = (ctx("reopen-a"), ctx("reopen-b"), ctx("reopen-idle"));
    let mut rng = Rng::new(0x5eed);
    let (mut model_a, mut model_b) = (Model::default(), Model::default());
    let written = {
        let store = open();
        let entries = random_entries(&mut rng, 300);
        for batch in rng.split(entries, 40) {
            model_a.apply(&batch);
            apply(&store, &a, batch);
        }
        let batch = random_entries(&mut rng, 50);
        model_b.apply(&batch);
        apply(&store, &b, batch);
        Snapshot::of(&store, &[&a, &b, &idle])
    };

    let store = open();
    let reopened = Snapshot::of(&store, &[&a, &b, &idle]);
    assert_eq!(reopened, written, "a reopened store holds what was written");
    assert_eq!(reopened.contexts, vec![a.clone(), b.clone()], "contexts");
    assert_matches_model(&store, &a, &model_a, "first context after reopening");
    assert_matches_model(&store, &b, &model_b, "second context after reopening");

    let batch = random_entries(&mut rng, 80);
    model_a.apply(&batch);
    apply(&store, &a, batch);
    let written = Snapshot::of(&store, &[&a, &b, &idle]);
    drop(store);
    let store = open();
    assert_eq!(
        Snapshot::of(&store, &[&a, &b, &idle]),
        written,
        "writes after a reopen persist"
    );
    assert_matches_model(&store, &a, &model_a, "after the second reopen");
}

/// A purge and the watermark it raised survive a reopen, and the reopened store
/// still refuses what the watermark refuses.
pub fn purges_and_watermarks_survive_reopen<S: Store>(open: impl Fn() -> S) {
    use synctree_primitives::gc::purge_tombstones;
    use synctree_primitives::{Entry, key_hash};

    use super::support::v;

    let c = ctx("reopen-gc");
    let written = {
        let store = open();
        apply(
            &store,
            &c,
            vec![
                Entry::put("kept", "1", v(50, 1)),
                Entry::delete("gone", v(10, 1)),
            ],
        );
        let report = purge_tombstones(&store, &c, 30).expect("sweep");
        assert_eq!(report.purged, 1);
        Snapshot::of(&store, &[&c])
    };
    let store = open();
    assert_eq!(Snapshot::of(&store, &[&c]), written, "the purge persisted");
    assert_eq!(store.gc_watermark(&c).expect("watermark"), 11);
    let old = store
        .apply(&c, vec![Entry::put("gone", "old", v(5, 1))])
        .expect("apply");
    assert_eq!(old.refused, 1, "the reopened store still refuses");
    assert_eq!(store.get(&c, &key_hash(b"gone")).expect("get"), None);
}
