//! One context of a [`crate::MemoryStore`]: its entries and their Merkle index.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use synctree_primitives::merkle::{self, FANOUT, TREE_DEPTH};
use synctree_primitives::sketch::{self, CodedSymbol, SKETCH_MIN_SYMBOLS, SketchItem};
use synctree_primitives::store::EntryRef;
use synctree_primitives::{ApplyReport, Entry, Hash, NodePos, PurgeRule, StoredEntry, TreeSummary};

use super::batch::Batch;
use super::bucket::{Bucket, Merged};
use super::leaves::Leaves;
use super::nodes::Nodes;

/// Level of the nodes whose children are leaf buckets.
const TWIG_LEVEL: u8 = TREE_DEPTH - 1;

/// The entries of one context, bucketed by leaf, and the node hashes above them.
///
/// Buckets are kept 16 at a time, with their leaf hashes, under the level-3
/// node they belong to ([`Leaves`]); in node order they give key-hash order.
/// The 4,096 level-3 nodes make a small map whose search stays in cache, and
/// one lookup reaches a bucket, its hash and its parent.
/// Invariant: every hash in `leaves` and `nodes` is the hash of the entries
/// below it; [`ContextState::apply`] keeps it by re-hashing only the paths
/// above the buckets a batch changed.
///
/// Copy-on-write: the groups of 16 buckets and of 16 node hashes are behind
/// `Arc`s, so a clone (a read view) copies about 8,500 pointers at most and a
/// write after it copies only the groups it changes ([`Arc::make_mut`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct ContextState {
    /// Level-3 index → the buckets under that node. None is empty.
    leaves: BTreeMap<u32, Arc<Leaves>>,
    /// Entries in all buckets.
    count: u64,
    /// Hashes of the nodes of levels 0 to 3.
    nodes: Nodes,
    /// The leading coded symbols of the sketch of every entry's item
    /// ([`sketch::sketch_len_for`] the count; empty until the first write).
    sketch: Vec<CodedSymbol>,
    /// The tombstone-GC watermark ([`synctree_primitives::Store::gc_watermark`]).
    watermark: u64,
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
        if !pos.is_leaf() {
            return self.nodes.node(pos);
        }
        let (twig, slot) = split(pos.index());
        self.leaves
            .get(&twig)
            .map_or(Hash::ZERO, |leaves| leaves.hashes()[slot])
    }

    /// The 16 child hashes of `pos`; all zeros for a leaf, which has no children.
    pub(crate) fn children(&self, pos: NodePos) -> [Hash; FANOUT] {
        if pos.level() != TWIG_LEVEL {
            return self.nodes.children(pos);
        }
        self.leaves
            .get(&pos.index())
            .map_or([Hash::ZERO; FANOUT], |leaves| *leaves.hashes())
    }

    /// Up to `limit` entries with key hash in `low..=high`, in key-hash order.
    pub(crate) fn range(&self, low: &Hash, high: &Hash, limit: usize) -> Vec<StoredEntry> {
        self.in_range(low, high).take(limit).cloned().collect()
    }

    /// Lends up to `limit` entries with key hash in `low..=high` to `visit`, in
    /// key-hash order, until it breaks; returns how many it lent.
    pub(crate) fn visit_range(
        &self,
        low: &Hash,
        high: &Hash,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> usize {
        let mut lent = 0;
        for stored in self.in_range(low, high).take(limit) {
            lent += 1;
            if visit(EntryRef::of(stored)).is_break() {
                break;
            }
        }
        lent
    }

    /// The entries with key hash in `low..=high`, in key-hash order, borrowed.
    fn in_range<'a>(
        &'a self,
        low: &'a Hash,
        high: &'a Hash,
    ) -> impl Iterator<Item = &'a StoredEntry> + 'a {
        let leaves = merkle::leaf_index(low)..=merkle::leaf_index(high);
        let twigs = split(*leaves.start()).0..=split(*leaves.end()).0;
        // An empty range visits nothing (and `BTreeMap::range` would panic on it).
        let twigs = (low <= high)
            .then(|| self.leaves.range(twigs))
            .into_iter()
            .flatten();
        // Only the buckets whose leaf lies in the range: a one-leaf read must not
        // search the 15 siblings stored with it.
        let buckets = twigs.flat_map(move |(&twig, l)| {
            let base = twig * FANOUT as u32;
            let leaves = leaves.clone();
            l.buckets()
                .iter()
                .enumerate()
                .filter(move |(slot, _)| leaves.contains(&(base + *slot as u32)))
                .map(|(_, b)| b)
        });
        buckets.flat_map(move |bucket| bucket.range(low, high))
    }

    /// The entry stored under `key_hash`.
    pub(crate) fn get(&self, key_hash: &Hash) -> Option<Entry> {
        let (twig, slot) = split(merkle::leaf_index(key_hash));
        let bucket = self.leaves.get(&twig)?.bucket(slot);
        bucket.get(key_hash).cloned()
    }

    /// Symbols maintained (an untouched context reads as the minimum, all empty).
    pub(crate) fn sketch_len(&self) -> u32 {
        (self.sketch.len() as u32).max(SKETCH_MIN_SYMBOLS)
    }

    /// Symbols `start..start + count`, fewer past [`Self::sketch_len`].
    pub(crate) fn sketch(&self, start: u32, count: usize) -> Vec<CodedSymbol> {
        let end = (start as usize)
            .saturating_add(count)
            .min(self.sketch_len() as usize);
        (start as usize..end)
            .map(|i| self.sketch.get(i).copied().unwrap_or(CodedSymbol::EMPTY))
            .collect()
    }

    /// Every entry, in key-hash order.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        let buckets = self.leaves.values().flat_map(|l| l.buckets());
        buckets.flat_map(Bucket::entries).cloned().collect()
    }

    /// Merges `batch`, then re-hashes the touched buckets and their ancestors,
    /// each once.
    ///
    /// Entries are merged in key-hash order (so each bucket is visited once and
    /// the map of level-3 nodes is walked forwards), and entries of one key in
    /// batch order. Each entry is counted once against the state the entries
    /// before it left: `changed` when it was new or won the merge, `unchanged`
    /// otherwise.
    pub(crate) fn apply(&mut self, mut batch: Batch) -> ApplyReport {
        let mut report = ApplyReport::default();
        if batch.any_below(self.watermark) {
            let below = self.watermark;
            report.refused =
                batch.refuse(|e| e.entry.version.hlc < below && self.get(&e.key_hash).is_none());
        }
        let mut count = |merged| match merged {
            Merged::Inserted => {
                self.count += 1;
                report.changed += 1;
            }
            Merged::Replaced => report.changed += 1,
            Merged::Kept => report.unchanged += 1,
        };
        let (runs, mut entries) = batch.into_parts();
        let mut twigs = Vec::new();
        let mut toggles = Vec::new();
        for group in runs.chunk_by(|a, b| split(a.0).0 == split(b.0).0) {
            let twig = split(group[0].0).0;
            let leaves = Arc::make_mut(self.leaves.entry(twig).or_default());
            let runs = group.iter().map(|&(leaf, len)| (split(leaf).1, len));
            if let Some(hash) = leaves.merge(runs, &mut entries, &mut toggles, &mut count) {
                twigs.push((twig, hash));
            }
            debug_assert!(!leaves.is_empty(), "a new bucket takes its first entry");
        }
        self.nodes.update(TWIG_LEVEL, twigs);
        self.update_sketch(&toggles);
        report
    }

    /// The tombstone-GC watermark.
    pub(crate) fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Removes the entries under `key_hashes` that `rule` removes, then
    /// re-hashes the touched buckets and their ancestors once and XORs the
    /// removed items out of the sketch; raises the watermark to `watermark`.
    /// Returns how many entries it removed.
    pub(crate) fn purge(&mut self, key_hashes: &[Hash], rule: &PurgeRule, watermark: u64) -> u64 {
        self.watermark = self.watermark.max(watermark);
        let mut sorted = key_hashes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut toggles = Vec::new();
        let mut twigs = Vec::new();
        for run in sorted.chunk_by(|a, b| merkle::leaf_index(a) == merkle::leaf_index(b)) {
            let (twig, slot) = split(merkle::leaf_index(&run[0]));
            let Some(leaves) = self.leaves.get_mut(&twig) else {
                continue;
            };
            let leaves = Arc::make_mut(leaves);
            let removed = |gone: StoredEntry| toggles.push(SketchItem::of(&gone));
            if let Some(hash) = leaves.purge(slot, run, rule, removed) {
                push_twig(&mut twigs, twig, hash);
            }
            if leaves.is_empty() {
                self.leaves.remove(&twig);
            }
        }
        self.count -= toggles.len() as u64;
        self.nodes.update(TWIG_LEVEL, twigs);
        // The sketch shrinks with the count, as it grows: a later growth
        // recomputes the tail from every entry.
        let len = sketch::sketch_len_for(self.count) as usize;
        self.sketch.truncate(len);
        for item in &toggles {
            sketch::toggle_into(&mut self.sketch, item);
        }
        toggles.len() as u64
    }

    /// XORs the changed items into the maintained symbols, then grows the sketch
    /// to the length the new count calls for, computing only the new tail from
    /// every entry (each doubling: amortised O(log m) per entry written).
    fn update_sketch(&mut self, toggles: &[SketchItem]) {
        if self.sketch.is_empty() {
            self.sketch = vec![CodedSymbol::EMPTY; SKETCH_MIN_SYMBOLS as usize];
        }
        for item in toggles {
            sketch::toggle_into(&mut self.sketch, item);
        }
        let (old, new) = (
            self.sketch.len(),
            sketch::sketch_len_for(self.count) as usize,
        );
        if new <= old {
            return;
        }
        let mut tail = vec![CodedSymbol::EMPTY; new - old];
        let buckets = self.leaves.values().flat_map(|l| l.buckets());
        for stored in buckets.flat_map(Bucket::stored) {
            sketch::toggle_range(&mut tail, old as u64, &SketchItem::of(stored));
        }
        self.sketch.extend(tail);
    }
}

/// Records `twig`'s new hash, once per twig (runs of one twig are adjacent).
fn push_twig(twigs: &mut Vec<(u32, Hash)>, twig: u32, hash: Hash) {
    match twigs.last_mut() {
        Some(last) if last.0 == twig => last.1 = hash,
        _ => twigs.push((twig, hash)),
    }
}

/// The level-3 node above leaf `leaf`, and the leaf's slot under it.
fn split(leaf: u32) -> (u32, usize) {
    (leaf / FANOUT as u32, leaf as usize % FANOUT)
}
