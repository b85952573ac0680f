//! Crash consistency: a child process applies batches to a [`RedbStore`] in a
//! loop, printing each batch number once `apply` has returned; the parent
//! SIGKILLs it at some point, reopens the file, and checks that the stored
//! root equals the root recomputed from the entries, that every batch printed
//! as committed is there, and that the batch in flight is all there or absent.
//!
//! The child is this test binary, re-run on [`crash_child`] with
//! [`CHILD_ENV`] naming the database file; without it, that test does nothing.

#![allow(clippy::expect_used)] // Tests fail by panicking.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use synctree_primitives::{ContextId, Entry, NodeId, Store, StoreError, Version, key_hash};
use synctree_store::{RedbStore, RedbStoreError, recompute_root, recompute_sketch};

/// Set (to the database file) in the child only.
const CHILD_ENV: &str = "SYNCTREE_REDB_CRASH_CHILD";
/// The first batch number the child writes.
const START_ENV: &str = "SYNCTREE_REDB_CRASH_START";
/// What the child prints before each committed batch number.
const MARKER: &str = "synctree-crash-committed ";
/// New keys per batch; each batch also overwrites [`SHARED`] keys.
const NEW_KEYS: u64 = 150;
/// Keys every batch overwrites, so a crash can land between versions of one key.
const SHARED: u64 = 40;
/// A child left running (its parent died) stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

fn ctx() -> ContextId {
    ContextId::new("crash").expect("valid context")
}

/// Batch `n`: new keys at clock `n`, and the shared keys rewritten at clock `n`.
fn batch(n: u64) -> Vec<Entry> {
    let version = Version::new(n, NodeId(1));
    let fresh = (0..NEW_KEYS).map(|i| Entry::put(format!("b{n}-{i}"), format!("{n}"), version));
    let shared = (0..SHARED).map(|i| Entry::put(format!("shared-{i}"), format!("{n}"), version));
    fresh.chain(shared).collect()
}

/// The child's body: applies batches from [`START_ENV`] on until killed.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let start: u64 = std::env::var(START_ENV)
        .expect("start")
        .parse()
        .expect("number");
    let store = RedbStore::open(&path).expect("child opens the store");
    let began = Instant::now();
    let mut out = std::io::stdout().lock();
    for n in start.. {
        store.apply(&ctx(), batch(n)).expect("apply");
        writeln!(out, "{MARKER}{n}").expect("print");
        out.flush().expect("flush");
        if began.elapsed() > CHILD_LIFETIME {
            return;
        }
    }
}

#[test]
fn a_killed_writer_leaves_a_consistent_store_holding_every_committed_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.redb");
    let mut next = 0;
    for (round, kill_after) in [2u64, 7, 3, 12].into_iter().enumerate() {
        let mut child = spawn_child(&path, next);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut committed = Vec::new();
        while (committed.len() as u64) < kill_after {
            let line = lines.next().expect("the child runs").expect("read");
            committed.extend(parse(&line));
            if round == 0 && committed.len() == 1 {
                refused_while_the_child_holds_it(&path);
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // Lines the child printed before it died were committed too.
        committed.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
        let last = *committed.last().expect("some batch committed");
        assert_eq!(
            committed,
            (next..=last).collect::<Vec<_>>(),
            "batches in order"
        );
        next = check_after_crash(&path, last);
    }
}

fn spawn_child(path: &std::path::Path, start: u64) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(START_ENV, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child")
}

/// The batch number on a line of the child's output, if it has one (libtest
/// may print on the same line).
fn parse(line: &str) -> Option<u64> {
    let at = line.find(MARKER)? + MARKER.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A second process cannot open the file the child holds: a typed error.
fn refused_while_the_child_holds_it(path: &std::path::Path) {
    let err = RedbStore::open(path).expect_err("the child holds the file");
    let source = match &err {
        StoreError::Backend { op: "open", source } => source.downcast_ref::<RedbStoreError>(),
        _ => None,
    };
    assert!(
        matches!(
            source,
            Some(RedbStoreError::Open {
                source: redb::DatabaseError::DatabaseAlreadyOpen,
                ..
            })
        ),
        "{err:?}"
    );
}

/// Reopens the store after the child was killed having printed batches up to
/// `last`; checks it; returns the number of the first batch it does not hold.
fn check_after_crash(path: &std::path::Path, last: u64) -> u64 {
    let store = RedbStore::open(path).expect("reopen after SIGKILL");
    let summary = store.summary(&ctx()).expect("summary");
    let recomputed = recompute_root(&store, &ctx()).expect("recompute");
    assert_eq!(
        recomputed,
        (summary.root, summary.entry_count),
        "index matches entries"
    );
    let (maintained, recomputed) = recompute_sketch(&store, &ctx()).expect("recompute sketch");
    assert!(
        maintained == recomputed,
        "sketch matches entries after a crash"
    );

    for n in 0..=last {
        assert_eq!(
            present(&store, n),
            NEW_KEYS,
            "batch {n} was printed as committed"
        );
    }
    // The batch in flight when the child died: all of it, or none of it.
    let in_flight = present(&store, last + 1);
    assert!(
        in_flight == 0 || in_flight == NEW_KEYS,
        "batch {}: {in_flight} keys",
        last + 1
    );
    let held = if in_flight == 0 { last } else { last + 1 };
    assert_eq!(summary.entry_count, (held + 1) * NEW_KEYS + SHARED);
    let shared = store
        .get(&ctx(), &key_hash(b"shared-0"))
        .expect("get")
        .expect("present");
    assert_eq!(shared.version.hlc, held, "shared keys hold the last batch");
    held + 1
}

/// How many of batch `n`'s new keys the store holds.
fn present(store: &RedbStore, n: u64) -> u64 {
    let held = (0..NEW_KEYS).filter(|i| {
        let key = format!("b{n}-{i}");
        let entry = store.get(&ctx(), &key_hash(key.as_bytes())).expect("get");
        entry.is_some_and(|e| e.version.hlc == n)
    });
    held.count() as u64
}
