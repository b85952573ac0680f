//! [`LocalWrites`] on a tiny in-test store (a map under a mutex): the store
//! backends live in another crate.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::hlc::{HLC_LOGICAL_BITS, MAX_CLOCK_SKEW_MS};
use crate::ids::Hash;
use crate::limits::MAX_KEY_BYTES;
use crate::merkle::{self, NodePos, TREE_DEPTH};
use crate::store::{ApplyReport, StoredEntry, TreeSummary};

/// Wall time of the tests, in milliseconds since the Unix epoch.
const NOW_MS: u64 = 1_000;
/// The writing node.
const ME: NodeId = NodeId(5);

/// Entries by (context, key hash), merged by [`Entry::supersedes`]; applies fail
/// while `fail_apply` is set.
#[derive(Default)]
struct MapStore {
    entries: Mutex<BTreeMap<(ContextId, Hash), Entry>>,
    fail_apply: bool,
}

impl MapStore {
    fn of(&self, context: &ContextId) -> Vec<Entry> {
        let map = self.entries.lock().unwrap();
        map.iter()
            .filter(|((c, _), _)| c == context)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

impl Store for MapStore {
    fn summary(&self, context: &ContextId) -> Result<TreeSummary, StoreError> {
        let entries = self.of(context);
        Ok(TreeSummary {
            root: merkle::root_of(&entries),
            entry_count: entries.len() as u64,
            depth: TREE_DEPTH,
        })
    }

    fn node(&self, _: &ContextId, _: NodePos) -> Result<Hash, StoreError> {
        Ok(Hash::ZERO)
    }

    fn range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let mut out: Vec<StoredEntry> =
            self.of(context).into_iter().map(StoredEntry::new).collect();
        out.retain(|s| (low..=high).contains(&&s.key_hash));
        out.sort_by_key(|s| s.key_hash);
        out.truncate(limit);
        Ok(out)
    }

    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        let map = self.entries.lock().unwrap();
        Ok(map.get(&(context.clone(), *key_hash)).cloned())
    }

    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        if self.fail_apply {
            return Err(StoreError::Fault { op: "apply" });
        }
        let mut map = self.entries.lock().unwrap();
        let mut report = ApplyReport::default();
        for entry in entries {
            let slot = (context.clone(), entry.key_hash());
            match map.get(&slot) {
                Some(held) if !entry.supersedes(held) => report.unchanged += 1,
                _ => {
                    map.insert(slot, entry);
                    report.changed += 1;
                }
            }
        }
        Ok(report)
    }

    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        let map = self.entries.lock().unwrap();
        let mut out: Vec<ContextId> = map.keys().map(|(c, _)| c.clone()).collect();
        out.dedup();
        Ok(out)
    }
}

fn ctx() -> ContextId {
    ContextId::new("local").expect("valid")
}

/// A store holding `key` at `hlc`, written by another node.
fn holding(key: &str, hlc: u64) -> MapStore {
    let store = MapStore::default();
    let entry = Entry::put(key.to_owned(), "theirs", Version::new(hlc, NodeId(9)));
    store.apply(&ctx(), vec![entry]).expect("apply");
    store
}

fn current(store: &MapStore, key: &str) -> Option<Entry> {
    store.get(&ctx(), &key_hash(key.as_bytes())).expect("get")
}

#[test]
fn a_fresh_key_gets_the_clock_at_now() {
    let store = MapStore::default();
    let written = store
        .write_local(&ctx(), "k", Some(Bytes::from_static(b"v")), ME, NOW_MS)
        .expect("write");
    assert_eq!(
        written.version,
        Version::new(NOW_MS << HLC_LOGICAL_BITS, ME)
    );
    assert_eq!(
        (written.key.as_ref(), written.value.as_ref()),
        (&b"k"[..], &b"v"[..])
    );
    assert_eq!(current(&store, "k"), Some(written));
}

#[test]
fn writes_supersede_the_current_version_even_at_the_same_instant() {
    let store = MapStore::default();
    let first = store
        .write_local(&ctx(), "k", None, ME, NOW_MS)
        .expect("first");
    let second = store
        .write_local(&ctx(), "k", Some(Bytes::from_static(b"v")), ME, NOW_MS)
        .expect("second");
    assert!(second.version > first.version && second.supersedes(&first));
    assert_eq!(current(&store, "k"), Some(second));
}

#[test]
fn a_newer_current_version_within_the_skew_is_passed_by_one() {
    let ahead = (NOW_MS + MAX_CLOCK_SKEW_MS) << HLC_LOGICAL_BITS;
    let store = holding("k", ahead);
    let written = store
        .write_local(&ctx(), "k", None, ME, NOW_MS)
        .expect("write");
    assert_eq!(written.version, Version::new(ahead + 1, ME));
    assert!(written.tombstone && written.value.is_empty());
    assert!(!is_ahead_of_clock(Version::new(ahead, ME), NOW_MS));
    assert_eq!(current(&store, "k"), Some(written));
}

#[test]
fn a_current_version_far_ahead_is_passed_by_one_as_the_cli_does() {
    let far = u64::MAX / 2;
    let store = holding("k", far);
    assert!(is_ahead_of_clock(Version::new(far, NodeId(9)), NOW_MS));
    let written = store
        .write_local(&ctx(), "k", None, ME, NOW_MS)
        .expect("write");
    assert_eq!(written.version.hlc, far + 1);
}

#[test]
fn the_largest_current_version_is_refused_and_nothing_is_written() {
    let store = holding("k", u64::MAX);
    let before = current(&store, "k");
    let err = store
        .write_local(&ctx(), "k", None, ME, NOW_MS)
        .expect_err("refused");
    assert!(matches!(
        err,
        WriteLocalError::ClockExhausted { current } if current == Version::new(u64::MAX, NodeId(9))
    ));
    assert_eq!(current(&store, "k"), before);
}

#[test]
fn an_invalid_entry_is_refused_and_nothing_is_written() {
    let store = MapStore::default();
    let key = "x".repeat(MAX_KEY_BYTES + 1);
    let err = store
        .write_local(&ctx(), key.clone(), None, ME, NOW_MS)
        .expect_err("refused");
    assert!(matches!(
        err,
        WriteLocalError::InvalidEntry(ProtocolError::LimitExceeded { .. })
    ));
    assert_eq!(current(&store, &key), None);
}

#[test]
fn a_failing_store_is_reported() {
    let store = MapStore {
        fail_apply: true,
        ..MapStore::default()
    };
    let err = store
        .write_local(&ctx(), "k", None, ME, NOW_MS)
        .expect_err("fails");
    assert!(matches!(
        err,
        WriteLocalError::Store(StoreError::Fault { op: "apply" })
    ));
}

#[test]
fn works_through_a_dyn_store_and_matches_next_version() {
    let store = holding("k", 7);
    let held = current(&store, "k");
    let expected = next_version(held.as_ref(), ME, NOW_MS).expect("version");
    let dyn_store: &dyn Store = &store;
    let written = dyn_store
        .write_local(&ctx(), "k", None, ME, NOW_MS)
        .expect("write");
    assert_eq!(written.version, expected);
    assert_eq!(store.summary(&ctx()).expect("summary").entry_count, 1);
}
