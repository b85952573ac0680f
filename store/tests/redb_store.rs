//! [`RedbStore`] beyond the conformance suite: opening files (good, bad, busy),
//! batch atomicity under faults and invalid entries, [`recompute_root`] on both
//! backends, readers during writes, and damaged files.

#![allow(clippy::expect_used)] // Tests fail by panicking.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use synctree_primitives::{
    ContextId, Entry, Hash, NodeId, Store, StoreError, StoredEntry, Version, merkle,
};
use synctree_store::{MemoryStore, RedbStore, RedbStoreError, recompute_root};
use synctree_test_support::FaultyStore;

fn ctx(name: &str) -> ContextId {
    ContextId::new(name).expect("valid context")
}

fn puts(prefix: &str, n: u64, hlc: u64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            Entry::put(
                format!("{prefix}-{i}"),
                format!("v{hlc}"),
                Version::new(hlc, NodeId(1)),
            )
        })
        .collect()
}

fn all<S: Store + ?Sized>(store: &S, c: &ContextId) -> Vec<StoredEntry> {
    store
        .range(c, &Hash::ZERO, &Hash::MAX, usize::MAX)
        .expect("range")
}

/// What a reader sees of `c`: summary and entries.
fn state<S: Store + ?Sized>(
    store: &S,
    c: &ContextId,
) -> (synctree_primitives::TreeSummary, Vec<StoredEntry>) {
    (store.summary(c).expect("summary"), all(store, c))
}

/// The [`RedbStoreError`] inside a [`StoreError::Backend`] for `want_op`.
fn source_of<'e>(err: &'e StoreError, want_op: &str) -> &'e RedbStoreError {
    match err {
        StoreError::Backend { op, source } if *op == want_op => source
            .downcast_ref::<RedbStoreError>()
            .expect("a RedbStoreError source"),
        other => panic!("expected a backend error during {want_op}, got {other:?}"),
    }
}

#[test]
fn open_dir_creates_the_directory_and_reopens_the_same_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a/b/node-1");
    let c = ctx("users");
    let root = {
        let store = RedbStore::open_dir(&dir).expect("open_dir");
        assert_eq!(store.path(), dir.join(RedbStore::FILE_NAME));
        store.apply(&c, puts("k", 10, 1)).expect("apply");
        store.summary(&c).expect("summary").root
    };
    assert!(dir.join("synctree.redb").is_file());
    let store = RedbStore::open(dir.join(RedbStore::FILE_NAME)).expect("open the file");
    assert_eq!(store.summary(&c).expect("summary").root, root);

    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let err = RedbStore::open_dir(&file).expect_err("a file is not a directory");
    assert!(
        matches!(source_of(&err, "open"), RedbStoreError::CreateDir { .. }),
        "{err:?}"
    );
}

#[test]
fn a_file_open_elsewhere_is_refused_with_a_typed_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("s.redb");
    let first = RedbStore::open(&path).expect("first open");
    let err = RedbStore::open(&path).expect_err("second open");
    assert!(
        matches!(
            source_of(&err, "open"),
            RedbStoreError::Open { source: redb::DatabaseError::DatabaseAlreadyOpen, path: p } if p == &path
        ),
        "{err:?}"
    );
    assert!(RedbStoreError::is_locked(&err));
    drop(first);
    let bad = RedbStore::open(tmp.path()).expect_err("a directory is not a database");
    assert!(!RedbStoreError::is_locked(&bad));
    RedbStore::open(&path).expect("open once the first handle is gone");
}

#[test]
fn bad_files_are_typed_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let garbage = tmp.path().join("garbage.redb");
    let bytes: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, &bytes).expect("write");
    let err = RedbStore::open(&garbage).expect_err("garbage");
    assert!(is_typed(&err), "{err:?}");
    assert_eq!(
        std::fs::read(&garbage).expect("read"),
        bytes,
        "a foreign file is left as it was"
    );

    let text = tmp.path().join("text.redb");
    std::fs::write(&text, b"hello").expect("write");
    assert!(is_typed(&RedbStore::open(&text).expect_err("too short")));

    let err = RedbStore::open(tmp.path()).expect_err("a directory");
    assert!(
        matches!(source_of(&err, "open"), RedbStoreError::Open { .. }),
        "{err:?}"
    );
    let err = RedbStore::open(tmp.path().join("missing/s.redb")).expect_err("no directory");
    assert!(
        matches!(source_of(&err, "open"), RedbStoreError::Open { .. }),
        "{err:?}"
    );

    let empty = tmp.path().join("empty.redb");
    std::fs::write(&empty, b"").expect("write");
    let err = RedbStore::open(&empty).expect_err("an empty file is refused, not replaced");
    assert!(
        matches!(source_of(&err, "open"), RedbStoreError::EmptyFile { .. }),
        "{err:?}"
    );
    assert_eq!(std::fs::metadata(&empty).expect("still there").len(), 0);
}

/// Truncated or overwritten files: every outcome is a value (`Ok` or a typed
/// error), whatever part of the file was damaged; nothing panics out of the store.
#[test]
fn damaged_files_give_errors_not_panics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("s.redb");
    let c = ctx("damaged");
    {
        let store = RedbStore::open(&path).expect("open");
        for hlc in 1..=4 {
            store.apply(&c, puts("k", 300, hlc)).expect("apply");
        }
    }
    let good = std::fs::read(&path).expect("read");
    let mut damaged = Vec::new();
    for cut in [0, 100, 4096, good.len() / 3, good.len() / 2, good.len() - 1] {
        damaged.push(good[..cut].to_vec());
    }
    let step = good.len() / 40;
    for at in (0..good.len()).step_by(step) {
        let mut bytes = good.clone();
        let end = (at + 64).min(bytes.len());
        bytes[at..end].iter_mut().for_each(|b| *b ^= 0xa5);
        damaged.push(bytes);
    }
    let mut errors = 0;
    for bytes in &damaged {
        std::fs::write(&path, bytes).expect("write");
        let outcome = std::panic::catch_unwind(|| exercise(&path, &c));
        match outcome {
            Ok(result) => errors += usize::from(result.is_err()),
            Err(_) => panic!("a damaged file made the store panic"),
        }
    }
    assert!(errors > 0, "some damage is noticed");
}

/// Opens the store and reads and writes everything.
fn exercise(path: &Path, c: &ContextId) -> Result<(), StoreError> {
    let store = RedbStore::open(path)?;
    for listed in store.contexts()? {
        let (root, count) = recompute_root(&store, &listed)?;
        let summary = store.summary(&listed)?;
        if (summary.root, summary.entry_count) != (root, count) {
            return Err(StoreError::Corrupt("root mismatch".into()));
        }
    }
    store.children(c, synctree_primitives::NodePos::ROOT)?;
    store.apply(c, puts("new", 10, 9))?;
    Ok(())
}

/// A typed error: corruption, or a backend error with a typed source.
fn is_typed(err: &StoreError) -> bool {
    match err {
        StoreError::Corrupt(_) => true,
        StoreError::Backend { source, .. } => source.downcast_ref::<RedbStoreError>().is_some(),
        _ => false,
    }
}

#[test]
fn an_invalid_entry_fails_the_whole_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(tmp.path().join("s.redb")).expect("open");
    let c = ctx("invalid");
    store.apply(&c, puts("k", 100, 1)).expect("apply");
    let before = state(&store, &c);
    let mut batch = puts("k", 100, 2);
    let mut bad = Entry::delete("k-50", Version::new(3, NodeId(1)));
    bad.value = "a tombstone with a value".into();
    batch.insert(50, bad.clone());
    let err = store.apply(&c, batch).expect_err("invalid entry");
    assert!(
        matches!(source_of(&err, "apply"), RedbStoreError::InvalidEntry { context, key_hash, .. }
            if context == &c && *key_hash == bad.key_hash()),
        "{err:?}"
    );
    assert_eq!(
        state(&store, &c),
        before,
        "nothing of the batch was applied"
    );
    let oversized = Entry::put(vec![b'k'; 5000], "v", Version::new(1, NodeId(1)));
    assert!(store.apply(&ctx("other"), vec![oversized]).is_err());
    assert_eq!(store.contexts().expect("contexts"), vec![c]);
}

#[test]
fn a_failed_batch_through_a_faulty_store_leaves_the_file_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("s.redb");
    let c = ctx("faulty");
    let store = FaultyStore::failing_after(RedbStore::open(&path).expect("open"), 2);
    store.apply(&c, puts("k", 200, 1)).expect("operation 0");
    store.apply(&c, puts("j", 50, 1)).expect("operation 1");
    let before = state(store.inner(), &c);

    let err = store
        .apply(&c, puts("k", 200, 2))
        .expect_err("operation 2 fails");
    assert!(matches!(err, StoreError::Fault { op: "apply" }), "{err:?}");
    assert_eq!(state(store.inner(), &c), before, "unchanged");

    drop(store.into_inner());
    let reopened = RedbStore::open(&path).expect("reopen");
    assert_eq!(state(&reopened, &c), before, "unchanged on disk");
    let (root, count) = recompute_root(&reopened, &c).expect("recompute");
    assert_eq!((root, count), (before.0.root, 250));
}

#[test]
fn recompute_root_matches_root_of_on_both_backends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let redb = RedbStore::open(tmp.path().join("s.redb")).expect("open");
    let memory = MemoryStore::new();
    let stores: [&dyn Store; 2] = [&memory, &redb];
    let contexts = [ctx("small"), ctx("large"), ctx("tombstones")];
    let mut written: Vec<Vec<Entry>> = vec![puts("s", 3, 1), puts("l", 5000, 1), Vec::new()];
    written[2] = puts("t", 300, 1);
    written[2].extend(
        (0..300)
            .step_by(3)
            .map(|i| Entry::delete(format!("t-{i}"), Version::new(2, NodeId(2)))),
    );
    for store in stores {
        for (c, entries) in contexts.iter().zip(&written) {
            for batch in entries.chunks(700) {
                store.apply(c, batch.to_vec()).expect("apply");
            }
        }
        for (c, entries) in contexts.iter().zip(&written) {
            let (root, count) = recompute_root(store, c).expect("recompute");
            let summary = store.summary(c).expect("summary");
            assert_eq!(root, merkle::root_of(entries), "{c}");
            assert_eq!((root, count), (summary.root, summary.entry_count), "{c}");
        }
        let unknown = recompute_root(store, &ctx("unknown")).expect("recompute");
        assert_eq!(unknown, (Hash::ZERO, 0));
    }
}

#[test]
fn readers_see_whole_batches_while_a_writer_applies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(tmp.path().join("s.redb")).expect("open");
    let c = ctx("concurrent");
    /// Batches the writer applies while readers check each state.
    const BATCHES: u64 = 30;
    /// Entries per batch.
    const SIZE: u64 = 40;
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    let before = store.summary(&c).expect("summary").entry_count;
                    let seen = all(&store, &c).len() as u64;
                    let after = store.summary(&c).expect("summary").entry_count;
                    assert!(
                        before <= seen && seen <= after,
                        "{before} <= {seen} <= {after}"
                    );
                    assert_eq!(seen % SIZE, 0, "whole batches only");
                }
            });
        }
        for b in 0..BATCHES {
            store
                .apply(&c, puts(&format!("b{b}"), SIZE, 1))
                .expect("apply");
        }
        done.store(true, Ordering::Release);
    });
    let summary = store.summary(&c).expect("summary");
    assert_eq!(summary.entry_count, BATCHES * SIZE);
    assert_eq!(
        recompute_root(&store, &c).expect("recompute"),
        (summary.root, BATCHES * SIZE)
    );
}

#[test]
fn concurrent_writers_converge_to_the_merge() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(tmp.path().join("s.redb")).expect("open");
    let c = ctx("writers");
    let batches: Vec<Vec<Entry>> = (0..4u64)
        .map(|t| {
            (0..300)
                .map(|i| {
                    Entry::put(
                        format!("k{}", i % 120),
                        format!("t{t}"),
                        Version::new(i, NodeId(t)),
                    )
                })
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        for batch in &batches {
            let (store, c) = (&store, &c);
            s.spawn(move || {
                for chunk in batch.chunks(25) {
                    store.apply(c, chunk.to_vec()).expect("apply");
                }
            });
        }
    });
    let memory = MemoryStore::new();
    memory.apply(&c, batches.concat()).expect("apply");
    assert_eq!(
        state(&store, &c),
        state(&memory, &c),
        "the same merge as one batch"
    );
    let summary = store.summary(&c).expect("summary");
    assert_eq!(
        recompute_root(&store, &c).expect("recompute"),
        (summary.root, 120)
    );
}
