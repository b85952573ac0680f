//! The oracle: every write the simulation made, and the check that replicas hold
//! exactly their merge.

use std::collections::BTreeMap;

use bytes::Bytes;
use synctree_primitives::{ContextId, Entry, Hash, Store, merge, merkle};
use synctree_store::MemoryStore;

/// Every write, per context.
#[derive(Debug, Default)]
pub(crate) struct Oracle {
    writes: BTreeMap<ContextId, Vec<Entry>>,
}

/// What the final check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// (replica, context) pairs whose entries or root differ from the expected
    /// merge, or whose root does not verify over its entries.
    pub(crate) mismatches: u64,
    /// Entries of the expected merge, tombstones included, over all contexts.
    pub(crate) entries: u64,
    /// Expected root per context, hex.
    pub(crate) roots: BTreeMap<String, String>,
}

impl Oracle {
    /// Remembers a write.
    pub(crate) fn record(&mut self, context: &ContextId, entry: Entry) {
        self.writes.entry(context.clone()).or_default().push(entry);
    }

    /// Puts and deletes recorded.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let all = self.writes.values().flatten();
        let deletes = all.clone().filter(|e| e.tombstone).count() as u64;
        (all.count() as u64 - deletes, deletes)
    }

    /// The merge of every write of `context`, in key-hash order: a write is
    /// missing only when a newer version of its key won.
    fn expected(&self, context: &ContextId) -> Vec<Entry> {
        let mut winners: BTreeMap<Bytes, Entry> = BTreeMap::new();
        for entry in self.writes.get(context).into_iter().flatten() {
            let merged = match winners.remove(&entry.key) {
                Some(held) => merge(held, entry.clone()),
                None => entry.clone(),
            };
            winners.insert(entry.key.clone(), merged);
        }
        let mut entries: Vec<Entry> = winners.into_values().collect();
        entries.sort_by_key(Entry::key_hash);
        entries
    }

    /// The expected root of every written context.
    pub(crate) fn expected_roots(&self) -> BTreeMap<ContextId, Hash> {
        self.writes
            .keys()
            .map(|c| (c.clone(), merkle::root_of(&self.expected(c))))
            .collect()
    }

    /// Whether every replica's root equals the expected one (the cheap check run
    /// while waiting for convergence).
    pub(crate) fn roots_match(
        expected: &BTreeMap<ContextId, Hash>,
        stores: &[&MemoryStore],
    ) -> bool {
        stores.iter().all(|store| {
            expected
                .iter()
                .all(|(c, root)| store.summary(c).is_ok_and(|s| s.root == *root))
        })
    }

    /// The full check: every replica holds exactly the expected entries of every
    /// context, no other context, and a root that verifies over its entries.
    pub(crate) fn verify(&self, stores: &[&MemoryStore]) -> Verdict {
        let mut verdict = Verdict::default();
        for context in self.writes.keys() {
            let expected = self.expected(context);
            let root = merkle::root_of(&expected);
            verdict.entries += expected.len() as u64;
            verdict.roots.insert(context.to_string(), root.to_hex());
            for store in stores {
                if !replica_matches(store, context, &expected, root) {
                    verdict.mismatches += 1;
                }
            }
        }
        for store in stores {
            let contexts = store.contexts().unwrap_or_default();
            verdict.mismatches += contexts
                .iter()
                .filter(|c| !self.writes.contains_key(c))
                .count() as u64;
        }
        verdict
    }
}

fn replica_matches(
    store: &MemoryStore,
    context: &ContextId,
    expected: &[Entry],
    root: Hash,
) -> bool {
    let entries = store.entries(context);
    let stored_root = store.summary(context).map(|s| s.root).ok();
    entries == expected && merkle::root_of(&entries) == root && stored_root == Some(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::{NodeId, Version};

    #[test]
    fn only_writes_superseded_by_a_newer_version_may_be_missing() {
        let ctx = ContextId::new("c").unwrap();
        let v = |hlc| Version::new(hlc, NodeId(1));
        let mut oracle = Oracle::default();
        oracle.record(&ctx, Entry::put("a", "old", v(1)));
        oracle.record(&ctx, Entry::put("a", "new", v(3)));
        oracle.record(&ctx, Entry::delete("b", v(2)));
        oracle.record(&ctx, Entry::put("b", "stale", v(1)));
        assert_eq!(oracle.counts(), (3, 1));

        let good = MemoryStore::new();
        good.apply(
            &ctx,
            vec![Entry::put("a", "new", v(3)), Entry::delete("b", v(2))],
        )
        .unwrap();
        let stale = MemoryStore::new();
        stale
            .apply(
                &ctx,
                vec![Entry::put("a", "old", v(1)), Entry::delete("b", v(2))],
            )
            .unwrap();
        let expected = oracle.expected_roots();
        assert!(Oracle::roots_match(&expected, &[&good]));
        assert!(!Oracle::roots_match(&expected, &[&good, &stale]));
        let verdict = oracle.verify(&[&good, &stale]);
        assert_eq!((verdict.mismatches, verdict.entries), (1, 2));
    }
}
