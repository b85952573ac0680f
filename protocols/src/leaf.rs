//! Reconciling one leaf bucket: a merge-join of the local entries with the peer's
//! summaries, deciding what to pull and what to push.

use std::cmp::Ordering;

use synctree_primitives::{Entry, Hash, StoredEntry};

use crate::tree_wire::{RemoteSummary, check_of};

/// What one leaf comparison decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LeafPlan {
    /// Key hashes whose remote entry may win the merge here.
    pub(crate) pulls: Vec<Hash>,
    /// Local entries that may win the merge at the peer.
    pub(crate) pushes: Vec<Entry>,
}

/// Both inputs are in key-hash order. Equal versions with different contents are
/// exchanged both ways; the merge rule then picks the same winner on each side.
pub(crate) fn reconcile_leaf(local: Vec<StoredEntry>, remote: &[RemoteSummary]) -> LeafPlan {
    let mut plan = LeafPlan::default();
    let mut remote = remote.iter().peekable();
    let mut local = local.into_iter().peekable();
    loop {
        let order = match (local.peek(), remote.peek()) {
            (None, None) => return plan,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(l), Some(r)) => l.key_hash.cmp(&r.key_hash),
        };
        match order {
            Ordering::Less => plan.pushes.extend(local.next().map(|s| s.entry)),
            Ordering::Greater => plan.pulls.extend(remote.next().map(|r| r.key_hash)),
            Ordering::Equal => {
                if let (Some(l), Some(r)) = (local.next(), remote.next()) {
                    compare_versions(&mut plan, l, r);
                }
            }
        }
    }
}

fn compare_versions(plan: &mut LeafPlan, local: StoredEntry, remote: &RemoteSummary) {
    match local.entry.version.cmp(&remote.version) {
        Ordering::Less => plan.pulls.push(remote.key_hash),
        Ordering::Greater => plan.pushes.push(local.entry),
        Ordering::Equal if check_of(&local.digest) != remote.check => {
            plan.pulls.push(remote.key_hash);
            plan.pushes.push(local.entry);
        }
        Ordering::Equal => {}
    }
}

#[cfg(test)]
mod tests {
    use synctree_primitives::{NodeId, Version};

    use super::*;

    fn stored(key: &str, hlc: u64, value: &str) -> StoredEntry {
        StoredEntry::new(Entry::put(
            key.to_owned(),
            value.to_owned(),
            Version::new(hlc, NodeId(1)),
        ))
    }

    fn summary(s: &StoredEntry) -> RemoteSummary {
        RemoteSummary {
            key_hash: s.key_hash,
            version: s.entry.version,
            check: check_of(&s.digest),
        }
    }

    fn sorted(mut v: Vec<StoredEntry>) -> Vec<StoredEntry> {
        v.sort_by_key(|s| s.key_hash);
        v
    }

    #[test]
    fn plans_pulls_pushes_and_skips_equal_entries() {
        let same = stored("same", 1, "x");
        let only_local = stored("mine", 1, "x");
        let only_remote = stored("theirs", 1, "x");
        let (old, new) = (stored("k", 1, "old"), stored("k", 2, "new"));
        let (older_remote, newer_local) = (stored("j", 1, "a"), stored("j", 5, "b"));
        let local = sorted(vec![
            same.clone(),
            only_local.clone(),
            old.clone(),
            newer_local.clone(),
        ]);
        let remote = sorted(vec![same, only_remote.clone(), new.clone(), older_remote]);
        let remote: Vec<_> = remote.iter().map(summary).collect();
        let mut plan = reconcile_leaf(local, &remote);
        plan.pulls.sort();
        let mut want_pulls = vec![only_remote.key_hash, new.key_hash];
        want_pulls.sort();
        assert_eq!(plan.pulls, want_pulls);
        assert_eq!(plan.pushes.len(), 2);
        assert!(
            plan.pushes.contains(&only_local.entry) && plan.pushes.contains(&newer_local.entry)
        );
    }

    #[test]
    fn equal_versions_with_different_contents_go_both_ways() {
        let (a, b) = (stored("k", 3, "a"), stored("k", 3, "b"));
        let plan = reconcile_leaf(vec![a.clone()], &[summary(&b)]);
        assert_eq!(plan.pulls, vec![b.key_hash]);
        assert_eq!(plan.pushes, vec![a.entry]);
    }
}
