//! Tests that reach below the store's API: they edit the tables with redb
//! directly, to show what the store reads at open, that a batch failing half
//! way leaves nothing behind, and that damaged records are typed errors.

#![allow(clippy::expect_used)] // Tests fail by panicking.

use std::path::Path;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use synctree_primitives::merkle;
use synctree_primitives::{
    ContextId, Entry, Hash, NodeId, NodePos, Store, StoreError, StoredEntry, Version,
};

use super::codec::{self, ContextMeta};
use super::schema::{self, CONTEXTS, ENTRIES, META, NODES};
use super::{RedbStore, RedbStoreError};
use crate::recompute_root;

fn ctx() -> ContextId {
    ContextId::new("internal").expect("valid")
}

fn put(key: &str, hlc: u64) -> Entry {
    Entry::put(
        key.to_owned(),
        format!("v{hlc}"),
        Version::new(hlc, NodeId(1)),
    )
}

/// `n` puts at clock `hlc`.
fn puts(n: usize, hlc: u64) -> Vec<Entry> {
    (0..n).map(|i| put(&format!("key-{i}"), hlc)).collect()
}

/// Every entry of the test context.
fn all(store: &RedbStore) -> Vec<StoredEntry> {
    let max = Hash::MAX;
    store
        .range(&ctx(), &Hash::ZERO, &max, usize::MAX)
        .expect("range")
}

/// Runs `f` on the raw tables of the (closed) store at `path`, in one write
/// transaction, and returns the context's metadata.
fn edit(path: &Path, f: impl FnOnce(&::redb::WriteTransaction, ContextMeta)) -> ContextMeta {
    let db = Database::create(path).expect("raw open");
    let txn = db.begin_write().expect("write");
    let meta = {
        let contexts = txn.open_table(CONTEXTS).expect("contexts");
        let row = contexts.get(codec::context_key(&ctx())).expect("get");
        ContextMeta::decode(row.expect("context exists").value()).expect("meta")
    };
    f(&txn, meta);
    txn.commit().expect("commit");
    meta
}

/// Writes `value` under `key` of `table`.
fn overwrite(txn: &::redb::WriteTransaction, table: schema::Bytes, key: &[u8], value: &[u8]) {
    let mut table = txn.open_table(table).expect("table");
    table.insert(key, value).expect("insert");
}

#[test]
fn reopening_reads_the_stored_index_instead_of_rebuilding_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let entries = puts(500, 1);
    let root = {
        let store = RedbStore::open(&path).expect("open");
        store.apply(&ctx(), entries.clone()).expect("apply");
        store.summary(&ctx()).expect("summary").root
    };
    // Remove one entry behind the store's back: only a rebuild would notice.
    let removed = entries[0].key_hash();
    edit(&path, |txn, meta| {
        let mut table = txn.open_table(ENTRIES).expect("entries");
        let key = codec::entry_key(meta.num, &removed);
        assert!(table.remove(&key[..]).expect("remove").is_some());
    });
    let store = RedbStore::open(&path).expect("reopen");
    let summary = store.summary(&ctx()).expect("summary");
    assert_eq!(
        (summary.root, summary.entry_count),
        (root, 500),
        "index read back as stored"
    );
    let (recomputed, count) = recompute_root(&store, &ctx()).expect("recompute");
    assert_eq!(count, 499);
    assert_ne!(recomputed, root, "recompute_root does not read the index");
    assert_eq!(recomputed, merkle::root_of(&entries[1..]));
}

#[test]
fn a_failure_just_before_commit_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(dir.path().join("s.redb")).expect("open");
    let fail = || -> Option<super::group::Hook> {
        Some(Box::new(|| Err(StoreError::Fault { op: "commit" })))
    };
    let err = store
        .apply_with(&ctx(), puts(50, 1), fail())
        .expect_err("fails");
    assert!(matches!(err, StoreError::Fault { op: "commit" }));
    assert!(
        store.contexts().expect("contexts").is_empty(),
        "no context created"
    );
    assert_eq!(store.summary(&ctx()).expect("summary").entry_count, 0);

    store.apply(&ctx(), puts(50, 1)).expect("apply");
    let before = (store.summary(&ctx()).expect("summary"), all(&store));
    let err = store
        .apply_with(&ctx(), puts(80, 2), fail())
        .expect_err("fails");
    assert!(matches!(err, StoreError::Fault { .. }));
    assert_eq!(
        (store.summary(&ctx()).expect("summary"), all(&store)),
        before,
        "entries, count and root unchanged"
    );
}

#[test]
fn a_corrupt_record_met_mid_batch_aborts_the_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let entries = puts(200, 1);
    let mut by_leaf = entries.clone();
    by_leaf.sort_by_key(|e| merkle::leaf_index(&e.key_hash()));
    // The batch merges leaf by leaf: `early` is written before `late` is read.
    let (early, late) = (by_leaf[0].clone(), by_leaf[by_leaf.len() - 1].clone());
    assert!(merkle::leaf_index(&early.key_hash()) < merkle::leaf_index(&late.key_hash()));
    let before = {
        let store = RedbStore::open(&path).expect("open");
        store.apply(&ctx(), entries).expect("apply");
        store.summary(&ctx()).expect("summary")
    };
    edit(&path, |txn, meta| {
        let key = codec::entry_key(meta.num, &late.key_hash());
        overwrite(txn, ENTRIES, &key, b"short");
    });

    let store = RedbStore::open(&path).expect("reopen");
    let batch = vec![put(&early.key_as_str(), 9), put(&late.key_as_str(), 9)];
    let err = store
        .apply(&ctx(), batch)
        .expect_err("the corrupt entry fails the batch");
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("internal")),
        "{err}"
    );
    assert_eq!(
        store.get(&ctx(), &early.key_hash()).expect("get"),
        Some(early)
    );
    assert_eq!(
        store.summary(&ctx()).expect("summary"),
        before,
        "index unchanged"
    );
    let err = store.get(&ctx(), &late.key_hash()).expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[test]
fn damaged_metadata_and_nodes_are_corrupt_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let store = RedbStore::open(&path).expect("open");
    store.apply(&ctx(), puts(20, 1)).expect("apply");
    let leaf = NodePos::leaf_of(&put("key-0", 1).key_hash());
    drop(store);
    edit(&path, |txn, meta| {
        let parent = leaf.parent().expect("a leaf has a parent");
        overwrite(txn, NODES, &codec::node_key(meta.num, parent), &[1; 5]);
    });
    let store = RedbStore::open(&path).expect("reopen");
    let parent = leaf.parent().expect("parent");
    for result in [
        store.node(&ctx(), parent).map(drop),
        store
            .children(&ctx(), parent.parent().expect("grandparent"))
            .map(drop),
    ] {
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    }
    assert!(store.node(&ctx(), leaf).is_ok(), "other nodes still read");
    drop(store);

    edit(&path, |txn, _| {
        overwrite(txn, CONTEXTS, codec::context_key(&ctx()), &[0; 3])
    });
    let store = RedbStore::open(&path).expect("open reads no context");
    assert!(matches!(store.summary(&ctx()), Err(StoreError::Corrupt(_))));
    assert!(matches!(store.contexts(), Err(StoreError::Corrupt(_))));
    assert!(matches!(
        store.apply(&ctx(), puts(1, 2)),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn foreign_and_other_format_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let foreign = dir.path().join("foreign.redb");
    {
        let db = Database::create(&foreign).expect("create");
        let txn = db.begin_write().expect("write");
        let other: TableDefinition<u64, u64> = TableDefinition::new("someone-else");
        txn.open_table(other)
            .expect("table")
            .insert(1, 2)
            .expect("insert");
        txn.commit().expect("commit");
    }
    let err = RedbStore::open(&foreign).expect_err("not a store");
    let source = backend_source(&err, "open");
    assert!(
        matches!(source, RedbStoreError::NotAStore { tables, .. } if tables == &["someone-else"])
    );

    let newer = dir.path().join("newer.redb");
    drop(RedbStore::open(&newer).expect("create"));
    {
        let db = Database::create(&newer).expect("raw open");
        let txn = db.begin_write().expect("write");
        let version = (schema::FORMAT_VERSION + 1).to_be_bytes();
        overwrite(&txn, META, b"format_version", &version);
        txn.commit().expect("commit");
    }
    let err = RedbStore::open(&newer).expect_err("newer format");
    let source = backend_source(&err, "open");
    assert!(
        matches!(source, RedbStoreError::UnsupportedFormat { found, supported, .. }
            if *found == schema::FORMAT_VERSION + 1 && *supported == schema::FORMAT_VERSION),
        "{source}"
    );
    assert!(err.to_string().contains("open"));
}

#[test]
fn a_fresh_context_takes_the_next_id_and_never_reuses_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let store = RedbStore::open(&path).expect("open");
    let names = ["a", "b", "c"].map(|n| ContextId::new(n).expect("valid"));
    for (i, name) in names.iter().enumerate() {
        store.apply(name, puts(3, 1)).expect("apply");
        let txn = store.db.begin_read().expect("read");
        let table = txn.open_table(CONTEXTS).expect("contexts");
        let row = table
            .get(codec::context_key(name))
            .expect("get")
            .expect("row");
        let meta = ContextMeta::decode(row.value()).expect("meta");
        assert_eq!((meta.num, meta.entry_count), (i as u64, 3));
        assert_eq!(meta.root, merkle::root_of(&puts(3, 1)));
    }
}

/// The [`RedbStoreError`] inside a [`StoreError::Backend`] for `op`.
fn backend_source<'e>(err: &'e StoreError, want_op: &str) -> &'e RedbStoreError {
    match err {
        StoreError::Backend { op, source } if *op == want_op => source
            .downcast_ref::<RedbStoreError>()
            .expect("a RedbStoreError source"),
        other => panic!("expected a backend error during {want_op}, got {other:?}"),
    }
}

trait KeyText {
    fn key_as_str(&self) -> String;
}

impl KeyText for Entry {
    fn key_as_str(&self) -> String {
        String::from_utf8(self.key.to_vec()).expect("test keys are text")
    }
}

/// A prepared job of `entries` for the test context.
fn job(entries: Vec<Entry>, hook: Option<super::group::Hook>) -> std::sync::Arc<super::group::Job> {
    let batch = super::apply::prepare(&ctx(), entries).expect("valid");
    std::sync::Arc::new(super::group::Job::new(&ctx(), batch, hook))
}

#[test]
fn a_group_commits_each_batch_against_the_ones_before_it() {
    use super::group::Commit;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(dir.path().join("s.redb")).expect("open");
    let (older, newer) = (puts(30, 1), puts(30, 2));
    let jobs = [
        job(newer.clone(), None),
        job(older, None),
        job(puts(30, 2), None),
    ];
    let reports: Vec<_> = store
        .commit_group(&jobs)
        .into_iter()
        .map(|r| r.expect("applied"))
        .collect();
    let counts: Vec<_> = reports.iter().map(|r| (r.changed, r.unchanged)).collect();
    assert_eq!(counts, [(30, 0), (0, 30), (0, 30)]);
    assert_eq!(
        store.summary(&ctx()).expect("summary").root,
        merkle::root_of(&newer)
    );
}

#[test]
fn a_failing_batch_in_a_group_fails_alone_and_the_others_are_applied() {
    use super::group::Commit;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(dir.path().join("s.redb")).expect("open");
    let a: Vec<Entry> = (0..40).map(|i| put(&format!("a-{i}"), 1)).collect();
    let b: Vec<Entry> = (0..40).map(|i| put(&format!("b-{i}"), 1)).collect();
    let c: Vec<Entry> = (0..40).map(|i| put(&format!("c-{i}"), 1)).collect();
    let fail: super::group::Hook = Box::new(|| Err(StoreError::Fault { op: "commit" }));
    let jobs = [
        job(a.clone(), None),
        job(b, Some(fail)),
        job(c.clone(), None),
    ];
    let outcomes = store.commit_group(&jobs);
    assert_eq!(outcomes[0].as_ref().expect("a applied").changed, 40);
    assert!(matches!(
        outcomes[1],
        Err(StoreError::Fault { op: "commit" })
    ));
    assert_eq!(outcomes[2].as_ref().expect("c applied").changed, 40);
    let expected: Vec<Entry> = a.into_iter().chain(c).collect();
    let summary = store.summary(&ctx()).expect("summary");
    assert_eq!(summary.entry_count, 80, "nothing of b");
    assert_eq!(summary.root, merkle::root_of(&expected));
    assert_eq!(
        recompute_root(&store, &ctx()).expect("recompute").0,
        summary.root
    );
}
