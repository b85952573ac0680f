//! Reconciling one leaf bucket: a merge-join of the local entries, lent by the
//! store one at a time ([`Store::visit_range`]), with the peer's summaries,
//! deciding what to pull and what to push. Nothing is copied per entry: pushes
//! are named by key hash and read again when their frame is built.
//!
//! Summaries name entries by key-hash prefix. Entries are joined by prefix: a prefix
//! held once on each side is taken for one key and its versions are compared; a
//! prefix held more than once on either side (a collision) cannot be matched entry
//! by entry, so the whole group is pulled (a prefix pull returns every entry with
//! it) and every local entry of the group is pushed. The merge rule makes the extra
//! copies harmless.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use synctree_primitives::{ContextId, EntryRef, Hash, NodePos, Store, StoreError};

use super::wire::{KeyPrefix, RemoteSummary, check_of};

/// What one leaf comparison decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LeafPlan {
    /// Key-hash prefixes whose remote entries may win the merge here.
    pub(crate) pulls: Vec<KeyPrefix>,
    /// Key hashes of local entries that may win the merge at the peer.
    pub(crate) pushes: Vec<Hash>,
}

/// Reads the local bucket `leaf` through [`Store::visit_range`] and joins it with
/// `remote` (in key-hash order, prefixes `prefix_len` bytes long). Pulls what the
/// peer has newer or we lack, pushes what we have newer or it lacks; equal versions
/// with different contents are exchanged both ways, and the merge rule then picks
/// the same winner on each side.
pub(crate) fn reconcile_leaf<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    leaf: NodePos,
    remote: &[RemoteSummary],
    prefix_len: usize,
) -> Result<LeafPlan, StoreError> {
    let (low, high) = leaf.key_hash_range();
    let mut join = LeafJoin::new(remote, prefix_len);
    store.visit_range(context, &low, &high, usize::MAX, &mut |entry| {
        join.visit(entry);
        ControlFlow::Continue(())
    })?;
    Ok(join.finish())
}

/// The local entries of the prefix group being joined.
#[derive(Debug)]
struct Group {
    prefix: KeyPrefix,
    /// Remote summaries with this prefix.
    remote: usize,
    /// Key hash of the group's latest local entry, and whether it is pushed.
    last: Hash,
    last_pushed: bool,
    pulled: bool,
}

/// A merge-join fed one local entry at a time, in key-hash order.
#[derive(Debug)]
pub(crate) struct LeafJoin<'r> {
    remote: &'r [RemoteSummary],
    /// The first remote summary not joined yet.
    next: usize,
    prefix_len: usize,
    group: Option<Group>,
    plan: LeafPlan,
}

impl<'r> LeafJoin<'r> {
    /// A join against `remote`, whose prefixes are `prefix_len` bytes long.
    pub(crate) fn new(remote: &'r [RemoteSummary], prefix_len: usize) -> Self {
        LeafJoin {
            remote,
            next: 0,
            prefix_len,
            group: None,
            plan: LeafPlan::default(),
        }
    }

    /// Joins the next local entry (key hashes must not decrease).
    pub(crate) fn visit(&mut self, entry: EntryRef<'_>) {
        let prefix = KeyPrefix::of(entry.key_hash, self.prefix_len);
        if let Some(group) = self.group.as_mut().filter(|g| g.prefix == prefix) {
            // A second local entry with one prefix: the whole group moves.
            if group.remote > 0 && !group.pulled {
                self.plan.pulls.push(prefix);
                group.pulled = true;
            }
            if !group.last_pushed {
                self.plan.pushes.push(group.last);
            }
            self.plan.pushes.push(*entry.key_hash);
            (group.last, group.last_pushed) = (*entry.key_hash, true);
            return;
        }
        self.pull_remote_below(&prefix);
        let remote = self.take_run(&prefix);
        let (pull, push) = self.decide(&entry, remote);
        if pull {
            self.plan.pulls.push(prefix);
        }
        if push {
            self.plan.pushes.push(*entry.key_hash);
        }
        self.group = Some(Group {
            prefix,
            remote: remote.len(),
            last: *entry.key_hash,
            last_pushed: push,
            pulled: pull,
        });
    }

    /// The plan, once every local entry was joined: the remote prefixes left are
    /// ones we lack.
    pub(crate) fn finish(mut self) -> LeafPlan {
        while let Some(first) = self.remote.get(self.next) {
            let prefix = first.prefix;
            self.take_run(&prefix);
            self.plan.pulls.push(prefix);
        }
        self.plan
    }

    /// Pulls every remote prefix ordered before `prefix` (we hold none of them).
    fn pull_remote_below(&mut self, prefix: &KeyPrefix) {
        while let Some(first) = self.remote.get(self.next).filter(|r| r.prefix < *prefix) {
            let below = first.prefix;
            self.take_run(&below);
            self.plan.pulls.push(below);
        }
    }

    /// The remote summaries with `prefix` at the join's position, consumed.
    fn take_run(&mut self, prefix: &KeyPrefix) -> &'r [RemoteSummary] {
        let rest = &self.remote[self.next..];
        let len = rest.iter().take_while(|r| r.prefix == *prefix).count();
        self.next += len;
        &rest[..len]
    }

    /// (pull the prefix, push the entry) for the first local entry of a group
    /// against the group's remote summaries.
    fn decide(&self, local: &EntryRef<'_>, remote: &[RemoteSummary]) -> (bool, bool) {
        let [remote] = remote else {
            // None remote: push; two or more (a collision): pull and push.
            return (!remote.is_empty(), true);
        };
        match local.version.cmp(&remote.version) {
            Ordering::Less => (true, false),
            Ordering::Greater => (false, true),
            Ordering::Equal => {
                let differ = check_of(local.digest) != remote.check;
                (differ, differ)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use synctree_primitives::limits::KEY_PREFIX_BYTES;
    use synctree_primitives::{Entry, NodeId, StoredEntry, Version, merge};

    use super::*;

    /// The join of `local` (in key-hash order) with `remote`.
    fn reconcile(local: &[StoredEntry], remote: &[RemoteSummary], prefix_len: usize) -> LeafPlan {
        let mut join = LeafJoin::new(remote, prefix_len);
        local.iter().for_each(|s| join.visit(EntryRef::of(s)));
        join.finish()
    }

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
        let mut plan = reconcile(&local, &remote, KEY_PREFIX_BYTES);
        plan.pulls.sort();
        let mut want_pulls = vec![prefix(&only_remote), prefix(&new)];
        want_pulls.sort();
        assert_eq!(plan.pulls, want_pulls);
        assert_eq!(plan.pushes.len(), 2);
        assert!(
            plan.pushes.contains(&only_local.key_hash)
                && plan.pushes.contains(&newer_local.key_hash)
        );
    }

    #[test]
    fn a_bucket_lent_by_the_store_joins_like_its_copy() {
        let store = synctree_store::MemoryStore::new();
        let context = ContextId::new("leaf").expect("context");
        let local: Vec<StoredEntry> = (0..400).map(|i| stored(&format!("k{i}"), 2, "x")).collect();
        let entries = local.iter().map(|s| s.entry.clone()).collect();
        store.apply(&context, entries).expect("apply");
        let leaf = NodePos::leaf_of(&local[0].key_hash);
        let bucket = sorted(
            local
                .into_iter()
                .filter(|s| leaf.contains(&s.key_hash))
                .collect(),
        );
        let remote = summaries(&bucket, KEY_PREFIX_BYTES);
        let lent = reconcile_leaf(&store, &context, leaf, &remote[1..], KEY_PREFIX_BYTES);
        let copied = reconcile(&bucket, &remote[1..], KEY_PREFIX_BYTES);
        assert_eq!(lent.as_ref().ok(), Some(&copied));
        assert_eq!(
            copied.pushes,
            vec![bucket[0].key_hash],
            "the one the peer lacks"
        );
    }

    #[test]
    fn equal_versions_with_different_contents_go_both_ways() {
        let (a, b) = (stored("k", 3, "a"), stored("k", 3, "b"));
        let plan = reconcile(std::slice::from_ref(&a), &[summary(&b, 8)], 8);
        assert_eq!(plan.pulls, vec![prefix(&b)]);
        assert_eq!(plan.pushes, vec![a.key_hash]);
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
        let plan = reconcile(&mine, &summaries(&theirs, 1), 1);
        assert_eq!(plan.pulls, vec![KeyPrefix::of(&mine[0].key_hash, 1)]);
        assert_eq!(plan.pushes.len(), 2, "every local entry of the group");
        // Only the peer collides: still a group.
        let plan = reconcile(&theirs[..1], &summaries(&theirs, 1), 1);
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
        for key_hash in plan.pushes {
            let pushed = local.iter().find(|s| s.key_hash == key_hash);
            pushed
                .into_iter()
                .for_each(|s| merge_into(&mut theirs, s.entry.clone()));
        }
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
                let plan = reconcile(&local, &summary, prefix_len);
                let (mine, theirs) = carry_out(&local, &remote, plan);
                assert_eq!(mine, theirs, "prefix {prefix_len}, seed {seed}");
            }
        }
    }
}
