//! Read views and sync-state records: what a backend that offers them must do.

use synctree_primitives::limits::MAX_READ_VIEWS;
use synctree_primitives::merkle::{self, FANOUT};
use synctree_primitives::{Entry, Hash, NodePos, Store, StoreError};

use super::support::{all, apply, ctx, root, v};

/// A view sees the state of the moment it was taken, whatever is written after;
/// an unknown context's view is empty; at most [`MAX_READ_VIEWS`] are open at
/// once, and dropping one frees its place. A backend without views (`None`)
/// passes trivially.
pub fn read_views_are_point_in_time<S: Store>(make: impl Fn() -> S) {
    let (store, c) = (make(), ctx("views"));
    let before: Vec<Entry> = (0..300)
        .map(|i| Entry::put(format!("k{i}"), "v", v(1, 1)))
        .collect();
    apply(&store, &c, before);
    let pinned = root(&store, &c);
    let entries = all(&store, &c);
    let Some(view) = store.read_view(&c).expect("read_view") else {
        return;
    };
    let later: Vec<Entry> = (0..300)
        .map(|i| Entry::put(format!("k{}", i * 2), "w", v(2, 1)))
        .collect();
    apply(&store, &c, later);
    assert_ne!(root(&store, &c), pinned, "the writes moved the store");
    let summary = view.summary().expect("summary");
    assert_eq!(summary.root, pinned, "the view keeps its root");
    assert_eq!(summary.entry_count, entries.len() as u64);
    let seen = view
        .range(&Hash::ZERO, &Hash::MAX, usize::MAX)
        .expect("range");
    assert_eq!(seen, entries, "the view keeps its entries");
    assert_eq!(
        merkle::root_of(seen.iter().map(|s| &s.entry)),
        pinned,
        "and they hash to its root"
    );
    let first = &entries[0];
    assert_eq!(
        view.get(&first.key_hash).expect("get"),
        Some(first.entry.clone())
    );
    let child = (0..FANOUT)
        .map(|i| view.node(NodePos::ROOT.child(i)).expect("node"))
        .collect::<Vec<_>>();
    assert_eq!(
        merkle::internal_hash(&child.try_into().expect("16 children")),
        pinned,
        "the view's node hashes are its own"
    );
    let unknown = store.read_view(&ctx("no-such-context")).expect("view");
    let unknown = unknown.expect("a backend with views has them for every context");
    assert_eq!(unknown.summary().expect("summary").root, Hash::ZERO);
    let mut open = vec![view, unknown];
    while open.len() < MAX_READ_VIEWS {
        open.push(store.read_view(&c).expect("view").expect("view"));
    }
    assert!(
        matches!(store.read_view(&c), Err(StoreError::ViewsExhausted { .. })),
        "at most MAX_READ_VIEWS at once"
    );
    open.pop();
    assert!(store.read_view(&c).expect("a place was freed").is_some());
}

/// A record saved is loaded back, overwritten by the next save and gone after a
/// removal; a backend that keeps nothing (the default) loads `None`.
pub fn sync_state_round_trips<S: Store>(make: impl Fn() -> S) {
    let store = make();
    store.save_sync_state("a/b", Some(b"one")).expect("save");
    let kept = store.load_sync_state("a/b").expect("load");
    if kept.is_none() {
        return;
    }
    assert_eq!(kept.as_deref(), Some(&b"one"[..]));
    store.save_sync_state("a/b", Some(b"two")).expect("save");
    store.save_sync_state("a/c", Some(b"other")).expect("save");
    assert_eq!(
        store.load_sync_state("a/b").expect("load").as_deref(),
        Some(&b"two"[..])
    );
    store.save_sync_state("a/b", None).expect("remove");
    assert_eq!(store.load_sync_state("a/b").expect("load"), None);
    assert_eq!(
        store.load_sync_state("a/c").expect("load").as_deref(),
        Some(&b"other"[..])
    );
}
