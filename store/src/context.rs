//! One context of a [`crate::MemoryStore`]: its entries and their Merkle index.

use std::collections::BTreeMap;

use synctree_primitives::merkle::{self, FANOUT, TREE_DEPTH, TreeNodes};
use synctree_primitives::{ApplyReport, Entry, Hash, NodePos, StoredEntry, TreeSummary};

use crate::bucket::{Bucket, Merged};
use crate::nodes::Nodes;

/// The entries of one context, bucketed by leaf, and the node hashes above them.
///
/// Buckets in leaf order hold their entries in key-hash order, so iterating
/// them gives key-hash order and a bucket is read without searching a tree.
/// Invariant: every hash in `nodes` is the hash of the entries below it;
/// [`ContextState::apply`] keeps it by re-hashing only the paths above the
/// buckets a batch changed.
#[derive(Debug, Default)]
pub(crate) struct ContextState {
    /// Leaf index → its entries. No bucket is empty.
    buckets: BTreeMap<u32, Bucket>,
    /// Entries in all buckets.
    count: u64,
    /// Non-zero node hashes.
    nodes: Nodes,
}

impl ContextState {
    /// True when the context holds no entry (tombstones count as entries).
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Root, entry count and depth.
    pub(crate) fn summary(&self) -> TreeSummary {
        TreeSummary {
            root: self.node(NodePos::ROOT),
            entry_count: self.count,
            depth: TREE_DEPTH,
        }
    }

    /// Hash of the node at `pos`.
    pub(crate) fn node(&self, pos: NodePos) -> Hash {
        infallible(self.nodes.node(pos))
    }

    /// The 16 child hashes of `pos`; all zeros for a leaf, which has no children.
    pub(crate) fn children(&self, pos: NodePos) -> [Hash; FANOUT] {
        infallible(self.nodes.children(pos))
    }

    /// Up to `limit` entries with key hash in `low..=high`, in key-hash order.
    pub(crate) fn range(&self, low: &Hash, high: &Hash, limit: usize) -> Vec<StoredEntry> {
        if low > high {
            return Vec::new();
        }
        let leaves = merkle::leaf_index(low)..=merkle::leaf_index(high);
        let buckets = self
            .buckets
            .range(leaves)
            .map(|(_, bucket)| bucket.range(low, high));
        buckets.flatten().take(limit).collect()
    }

    /// The entry stored under `key_hash`.
    pub(crate) fn get(&self, key_hash: &Hash) -> Option<Entry> {
        self.buckets
            .get(&merkle::leaf_index(key_hash))?
            .get(key_hash)
            .cloned()
    }

    /// Every entry, in key-hash order.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.buckets
            .values()
            .flat_map(Bucket::entries)
            .cloned()
            .collect()
    }

    /// Merges `batch`, then re-hashes the touched buckets and their ancestors,
    /// each once.
    ///
    /// Entries are merged bucket by bucket, in leaf order (so the bucket map is
    /// walked forwards), and in batch order within a bucket. Each entry is
    /// counted once against the state the entries before it left: `changed`
    /// when it was new or won the merge, `unchanged` otherwise.
    pub(crate) fn apply(&mut self, batch: Vec<StoredEntry>) -> ApplyReport {
        let batch = by_leaf(batch);
        let mut report = ApplyReport::default();
        let mut leaves = Vec::new();
        let mut rest = batch.into_iter().peekable();
        while let Some(leaf) = rest.peek().map(|e| merkle::leaf_index(&e.key_hash)) {
            let group =
                std::iter::from_fn(|| rest.next_if(|e| merkle::leaf_index(&e.key_hash) == leaf));
            if let Some(hash) = self.merge_bucket(leaf, group, &mut report) {
                leaves.push((leaf, hash));
            }
        }
        infallible(merkle::update_paths(&mut self.nodes, leaves));
        report
    }

    /// Merges entries that all belong to bucket `leaf`; returns the bucket's new
    /// hash if any of them changed it.
    fn merge_bucket(
        &mut self,
        leaf: u32,
        group: impl Iterator<Item = StoredEntry>,
        report: &mut ApplyReport,
    ) -> Option<Hash> {
        let bucket = self.buckets.entry(leaf).or_default();
        let mut changed = false;
        for entry in group {
            match bucket.merge(entry) {
                Merged::Inserted => self.count += 1,
                Merged::Replaced => {}
                Merged::Kept => {
                    report.unchanged += 1;
                    continue;
                }
            }
            report.changed += 1;
            changed = true;
        }
        changed.then(|| bucket.hash())
    }
}

/// `batch` reordered by leaf index, and in batch order within one leaf, so the
/// entries of one key keep their order. Sorts small `(leaf, position)` pairs
/// rather than moving whole entries around, then moves each entry once.
fn by_leaf(batch: Vec<StoredEntry>) -> Vec<StoredEntry> {
    let mut order: Vec<(u32, usize)> = batch
        .iter()
        .enumerate()
        .map(|(i, e)| (merkle::leaf_index(&e.key_hash), i))
        .collect();
    order.sort_unstable();
    let mut slots: Vec<Option<StoredEntry>> = batch.into_iter().map(Some).collect();
    order.iter().filter_map(|&(_, i)| slots[i].take()).collect()
}

/// Unwraps the result of an operation on [`Nodes`], which cannot fail.
fn infallible<T>(result: Result<T, std::convert::Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}
