//! A persistent store in a few lines: open a `RedbStore`, write versioned entries
//! with `write_local`, reopen it, and check its Merkle index against a from-scratch
//! recomputation.
//!
//! ```text
//! cargo run -p synctree-store --features redb --example persistent
//! ```

use std::error::Error;

use bytes::Bytes;
use synctree_primitives::{ContextId, LocalWrites, NodeId, Store, WallClock};
use synctree_store::{RedbStore, recompute_root};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let context = ContextId::new("users")?;
    let (me, now_ms) = (NodeId(7), WallClock::System.now_ms());
    {
        let store = RedbStore::open(&path)?;
        store.write_local(&context, "alice", Some(Bytes::from("admin")), me, now_ms)?;
        store.write_local(&context, "bob", Some(Bytes::from("guest")), me, now_ms)?;
        // A delete is a newer tombstone; it syncs like any other write.
        store.write_local(&context, "bob", None, me, now_ms)?;
    }
    // Reopening reads the stored index; it rebuilds nothing.
    let store = RedbStore::open(&path)?;
    let summary = store.summary(&context)?;
    let (recomputed, entries) = recompute_root(&store, &context)?;
    assert_eq!(summary.root, recomputed, "the index matches the entries");
    println!(
        "{context}: {entries} entries (one tombstone), root {}",
        summary.root
    );
    Ok(())
}
