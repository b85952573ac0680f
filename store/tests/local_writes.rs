//! [`LocalWrites::write_local`] on [`MemoryStore`]: versioned local writes win
//! over what the store holds and keep the index current.

#![allow(clippy::expect_used)] // Tests fail by panicking.

use bytes::Bytes;
use synctree_primitives::{
    ContextId, Entry, LocalWrites, NodeId, Store, Version, WriteLocalError, key_hash, merkle,
};
use synctree_store::MemoryStore;

/// Wall time of the tests, in milliseconds since the Unix epoch.
const NOW_MS: u64 = 1_000;

#[test]
fn local_writes_win_and_keep_the_root_current() {
    let store = MemoryStore::new();
    let ctx = ContextId::new("local").expect("valid");
    let theirs = Entry::put("k", "theirs", Version::new(u64::MAX / 2, NodeId(9)));
    store.apply(&ctx, vec![theirs.clone()]).expect("apply");
    let ours = store
        .write_local(
            &ctx,
            "k",
            Some(Bytes::from_static(b"ours")),
            NodeId(5),
            NOW_MS,
        )
        .expect("write");
    assert!(ours.supersedes(&theirs));
    assert_eq!(store.get(&ctx, &key_hash(b"k")).expect("get"), Some(ours));
    let root = store.summary(&ctx).expect("summary").root;
    assert_eq!(root, merkle::root_of(&store.entries(&ctx)));
}

#[test]
fn the_largest_version_is_refused() {
    let store = MemoryStore::new();
    let ctx = ContextId::new("local").expect("valid");
    let max = Entry::put("k", "v", Version::new(u64::MAX, NodeId(9)));
    store.apply(&ctx, vec![max.clone()]).expect("apply");
    let err = store
        .write_local(&ctx, "k", None, NodeId(5), NOW_MS)
        .expect_err("refused");
    assert!(matches!(err, WriteLocalError::ClockExhausted { .. }));
    assert_eq!(store.entries(&ctx), vec![max]);
}
