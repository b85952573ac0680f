//! A merge snapshot that adopts the responder's state below a GC watermark
//! (docs/PROTOCOL.md, "Tombstone GC", rule 4), over many small pages: a local
//! entry older than the watermark is removed only where the responder's pages
//! lack its key; one the responder holds older is pushed, whichever page it
//! fell in, and so is one newer than the watermark.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ctx;
use common::snapshot::{config, root, sync_pair};
use synctree_primitives::wire::Compression;
use synctree_primitives::{Entry, NodeId, Store, Version, key_hash};
use synctree_store::MemoryStore;

const BELOW: u64 = 1_000;

fn v(hlc: u64) -> Version {
    Version::new(hlc, NodeId(1))
}

#[test]
fn adoption_removes_only_old_entries_the_pages_lack() {
    let (local, remote) = (MemoryStore::new(), MemoryStore::new());
    let shared: Vec<Entry> = (0..600)
        .map(|i| Entry::put(format!("shared-{i}"), "old", v(10)))
        .collect();
    remote.apply(&ctx(), shared).expect("remote");
    let mut mine = Vec::new();
    for i in 0..600 {
        // Newer than the peer's copy, still below the watermark: pushed.
        mine.push(Entry::put(format!("shared-{i}"), "newer", v(20)));
    }
    for i in 0..200 {
        // Old and unknown to the peer: adopted away.
        mine.push(Entry::put(format!("stale-{i}"), "old", v(5)));
        // Unknown to the peer but newer than the watermark: pushed.
        mine.push(Entry::put(format!("fresh-{i}"), "new", v(BELOW + 1)));
    }
    local.apply(&ctx(), mine).expect("local");

    let adopting = synctree_protocols::SnapshotConfig {
        adopt_below: Some(BELOW),
        ..config(2, Compression::None)
    };
    // 4 KiB pages: dozens of them, so earlier pages' planned pushes are still
    // queued when later pages are adopted against.
    let (stats, _) = sync_pair(&local, &remote, adopting, 4096).expect("pair run");
    assert_eq!(stats.entries_adopted_away, 200, "{stats:?}");
    for i in 0..200 {
        let stale = key_hash(format!("stale-{i}").as_bytes());
        assert_eq!(local.get(&ctx(), &stale).expect("get"), None);
        let fresh = key_hash(format!("fresh-{i}").as_bytes());
        assert!(
            remote.get(&ctx(), &fresh).expect("get").is_some(),
            "fresh-{i} pushed"
        );
    }
    for i in 0..600 {
        let shared = key_hash(format!("shared-{i}").as_bytes());
        let held = remote.get(&ctx(), &shared).expect("get").expect("held");
        assert_eq!(held.version, v(20), "shared-{i}: the newer copy was pushed");
    }
    assert_eq!(root(&local), root(&remote), "converged");
    assert_eq!(local.gc_watermark(&ctx()).expect("watermark"), BELOW);
}
