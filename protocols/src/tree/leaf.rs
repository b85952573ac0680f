//! Reconciling one leaf bucket: a merge-join of the local entries with the peer's
//! summaries, deciding what to pull and what to push.
//!
//! Summaries name entries by key-hash prefix. Entries are joined by prefix: a prefix
//! held once on each side is taken for one key and its versions are compared; a
//! prefix held more than once on either side (a collision) cannot be matched entry
//! by entry, so the whole group is pulled (a prefix pull returns every entry with
//! it) and every local entry of the group is pushed. The merge rule makes the extra
//! copies harmless.

use std::cmp::Ordering;
use std::iter::{Peekable, from_fn};

use synctree_primitives::{Entry, StoredEntry};

use super::wire::{KeyPrefix, RemoteSummary, check_of};

/// What one leaf comparison decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LeafPlan {
    /// Key-hash prefixes whose remote entries may win the merge here.
    pub(crate) pulls: Vec<KeyPrefix>,
    /// Local entries that may win the merge at the peer.
    pub(crate) pushes: Vec<Entry>,
}

/// Both inputs are in key-hash order; remote prefixes are `prefix_len` bytes long.
/// Pulls what the peer has newer or we lack, pushes what we have newer or it lacks;
/// equal versions with different contents are exchanged both ways, and the merge
/// rule then picks the same winner on each side.
pub(crate) fn reconcile_leaf(
    local: Vec<StoredEntry>,
    remote: &[RemoteSummary],
    prefix_len: usize,
) -> LeafPlan {
    let mut plan = LeafPlan::default();
    let mut local = local.into_iter().peekable();
    let mut remote = remote.iter().peekable();
    loop {
        let next_local = local.peek().map(|s| KeyPrefix::of(&s.key_hash, prefix_len));
        let prefix = match (next_local, remote.peek().map(|r| r.prefix)) {
            (None, None) => return plan,
            (Some(p), None) | (None, Some(p)) => p,
            (Some(l), Some(r)) => l.min(r),
        };
        let mine = group(&mut local, |s| prefix.matches(&s.key_hash));
        let theirs = group(&mut remote, |r| r.prefix == prefix);
        reconcile_group(&mut plan, prefix, mine, &theirs);
    }
}

/// The leading items of `items` that satisfy `same`.
fn group<T, I: Iterator<Item = T>>(items: &mut Peekable<I>, same: impl Fn(&T) -> bool) -> Vec<T> {
    from_fn(|| items.next_if(&same)).collect()
}

fn reconcile_group(
    plan: &mut LeafPlan,
    prefix: KeyPrefix,
    mut mine: Vec<StoredEntry>,
    theirs: &[&RemoteSummary],
) {
    match (mine.len(), theirs) {
        (_, []) => plan.pushes.extend(mine.into_iter().map(|s| s.entry)),
        (0, _) => plan.pulls.push(prefix),
        (1, [remote]) => {
            if let Some(local) = mine.pop() {
                compare_versions(plan, prefix, local, remote);
            }
        }
        _ => {
            plan.pulls.push(prefix);
            plan.pushes.extend(mine.into_iter().map(|s| s.entry));
        }
    }
}

fn compare_versions(
    plan: &mut LeafPlan,
    prefix: KeyPrefix,
    local: StoredEntry,
    remote: &RemoteSummary,
) {
    match local.entry.version.cmp(&remote.version) {
        Ordering::Less => plan.pulls.push(prefix),
        Ordering::Greater => plan.pushes.push(local.entry),
        Ordering::Equal if check_of(&local.digest) != remote.check => {
            plan.pulls.push(prefix);
            plan.pushes.push(local.entry);
        }
        Ordering::Equal => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use synctree_primitives::limits::KEY_PREFIX_BYTES;
    use synctree_primitives::{Hash, NodeId, Version, merge};

    use super::*;

    fn stored(key: &str, hlc: u64, value: &str) -> StoredEntry {
        StoredEntry::new(Entry::put(
            key.to_owned(),
            value.to_owned(),
            Version::new(hlc, NodeId(1)),
        ))
    }

    fn summary(s: &StoredEntry, prefix_len: usize) -> RemoteSummary {
        RemoteSummary {
            prefix: KeyPrefix::of(&s.key_hash, prefix_len),
            version: s.entry.version,
            check: check_of(&s.digest),
        }
    }

    fn summaries(v: &[StoredEntry], prefix_len: usize) -> Vec<RemoteSummary> {
        v.iter().map(|s| summary(s, prefix_len)).collect()
    }

    fn sorted(mut v: Vec<StoredEntry>) -> Vec<StoredEntry> {
        v.sort_by_key(|s| s.key_hash);
        v
    }

    fn prefix(s: &StoredEntry) -> KeyPrefix {
        KeyPrefix::of(&s.key_hash, KEY_PREFIX_BYTES)
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
        let remote = summaries(&remote, KEY_PREFIX_BYTES);
        let mut plan = reconcile_leaf(local, &remote, KEY_PREFIX_BYTES);
        plan.pulls.sort();
        let mut want_pulls = vec![prefix(&only_remote), prefix(&new)];
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
        let plan = reconcile_leaf(vec![a.clone()], &[summary(&b, 8)], 8);
        assert_eq!(plan.pulls, vec![prefix(&b)]);
        assert_eq!(plan.pushes, vec![a.entry]);
    }

    /// Keys whose hashes share their first byte: with a 1-byte prefix they collide.
    fn colliding_keys(count: usize) -> Vec<String> {
        let first = |k: &String| Entry::put(k.clone(), "", Version::new(1, NodeId(1))).key_hash();
        let keys = (0..).map(|i| format!("c{i}"));
        let byte = first(&"c0".to_owned()).0[0];
        keys.filter(|k| first(k).0[0] == byte).take(count).collect()
    }

    #[test]
    fn a_collided_prefix_is_pulled_once_and_pushed_whole() {
        let keys = colliding_keys(3);
        let mine = sorted(vec![stored(&keys[0], 1, "a"), stored(&keys[1], 1, "b")]);
        let theirs = sorted(vec![stored(&keys[0], 1, "a"), stored(&keys[2], 1, "c")]);
        let plan = reconcile_leaf(mine.clone(), &summaries(&theirs, 1), 1);
        assert_eq!(plan.pulls, vec![KeyPrefix::of(&mine[0].key_hash, 1)]);
        assert_eq!(plan.pushes.len(), 2, "every local entry of the group");
        // Only the peer collides: still a group.
        let plan = reconcile_leaf(vec![theirs[0].clone()], &summaries(&theirs, 1), 1);
        assert_eq!((plan.pulls.len(), plan.pushes.len()), (1, 1));
    }

    /// What each side holds after the initiator carries out `plan`: pulls answered
    /// with every remote entry having a pulled prefix, pushes merged at the peer.
    fn carry_out(
        local: &[StoredEntry],
        remote: &[StoredEntry],
        plan: LeafPlan,
    ) -> (BTreeMap<Hash, Entry>, BTreeMap<Hash, Entry>) {
        let merge_into = |map: &mut BTreeMap<Hash, Entry>, e: Entry| {
            let winner = match map.remove(&e.key_hash()) {
                Some(prev) => merge(prev, e),
                None => e,
            };
            map.insert(winner.key_hash(), winner);
        };
        let mut mine = BTreeMap::new();
        let mut theirs = BTreeMap::new();
        local
            .iter()
            .for_each(|s| merge_into(&mut mine, s.entry.clone()));
        remote
            .iter()
            .for_each(|s| merge_into(&mut theirs, s.entry.clone()));
        for s in remote {
            if plan.pulls.iter().any(|p| p.matches(&s.key_hash)) {
                merge_into(&mut mine, s.entry.clone());
            }
        }
        plan.pushes
            .into_iter()
            .for_each(|e| merge_into(&mut theirs, e));
        (mine, theirs)
    }

    #[test]
    fn short_prefixes_with_many_collisions_still_converge() {
        let keys = colliding_keys(6);
        let mut all: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        all.extend(keys);
        for prefix_len in [1, 2, KEY_PREFIX_BYTES] {
            for seed in 0..12usize {
                let (mut local, mut remote) = (Vec::new(), Vec::new());
                for (i, key) in all.iter().enumerate() {
                    let pick = (i * 7 + seed * 13) % 6;
                    let hlc = 1 + (i + seed) as u64 % 3;
                    if pick != 0 {
                        local.push(stored(key, hlc, "l"));
                    }
                    if pick != 1 {
                        let hlc = if pick == 2 { hlc + 1 } else { hlc };
                        let value = if pick == 3 { "r" } else { "l" };
                        remote.push(stored(key, hlc, value));
                    }
                }
                let (local, remote) = (sorted(local), sorted(remote));
                let summary = summaries(&remote, prefix_len);
                let plan = reconcile_leaf(local.clone(), &summary, prefix_len);
                let (mine, theirs) = carry_out(&local, &remote, plan);
                assert_eq!(mine, theirs, "prefix {prefix_len}, seed {seed}");
            }
        }
    }
}
