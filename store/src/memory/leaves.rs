//! [`Leaves`]: the 16 leaf buckets under one level-3 node, with their hashes.

use synctree_primitives::merkle::{FANOUT, InternalMidstates};
use synctree_primitives::sketch::SketchItem;
use synctree_primitives::{Hash, PurgeRule, StoredEntry};

use super::bucket::{Bucket, Merged};

/// The 16 buckets under one level-3 node, their leaf hashes, and the node's own
/// hash kept resumable (a change to leaf `c` re-hashes only the input blocks
/// from `c` on). Keeping the buckets, the leaf hashes and the parent together
/// means a write to a bucket finds all three with one lookup.
#[derive(Clone, Debug, Default)]
pub(crate) struct Leaves {
    buckets: [Bucket; FANOUT],
    hashes: [Hash; FANOUT],
    parent: InternalMidstates,
}

impl Leaves {
    /// True when no bucket holds an entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.iter().all(Bucket::is_empty)
    }

    /// The bucket in `slot` (the leaf index modulo 16).
    pub(crate) fn bucket(&self, slot: usize) -> &Bucket {
        &self.buckets[slot]
    }

    /// Every bucket, in leaf order.
    pub(crate) fn buckets(&self) -> &[Bucket; FANOUT] {
        &self.buckets
    }

    /// The leaf hashes, in leaf order.
    pub(crate) fn hashes(&self) -> &[Hash; FANOUT] {
        &self.hashes
    }

    /// Removes the entries under `key_hashes` (all in bucket `slot`) that `rule`
    /// removes, passing each to `removed`; returns this node's new hash when the
    /// bucket changed.
    pub(crate) fn purge(
        &mut self,
        slot: usize,
        key_hashes: &[Hash],
        rule: &PurgeRule,
        mut removed: impl FnMut(StoredEntry),
    ) -> Option<Hash> {
        let bucket = &mut self.buckets[slot];
        let before = bucket.len();
        for key_hash in key_hashes {
            if let Some(gone) = bucket.purge(key_hash, rule) {
                removed(gone);
            }
        }
        if bucket.len() == before {
            return None;
        }
        self.hashes[slot] = bucket.hash();
        Some(self.parent.hash(&self.hashes, slot))
    }

    /// Merges the next entries of `entries` (in key-hash order) bucket by
    /// bucket: `runs` holds `(slot, how many entries)` in increasing slot
    /// order. Then re-hashes each changed bucket and this node once; returns the
    /// node's new hash when a bucket changed.
    pub(crate) fn merge(
        &mut self,
        runs: impl Iterator<Item = (usize, usize)>,
        entries: &mut impl ExactSizeIterator<Item = StoredEntry>,
        toggles: &mut Vec<SketchItem>,
        mut merged: impl FnMut(Merged),
    ) -> Option<Hash> {
        let mut first_changed = None;
        for (slot, len) in runs {
            if let Some(hash) =
                self.buckets[slot].merge(entries.by_ref().take(len), toggles, &mut merged)
            {
                self.hashes[slot] = hash;
                first_changed.get_or_insert(slot);
            }
        }
        let unchanged = first_changed?;
        Some(self.parent.hash(&self.hashes, unchanged))
    }
}
