//! [`recompute_root`]: a context's root recomputed from its entries alone.

use synctree_primitives::merkle::{self, FANOUT, LEAF_COUNT, TREE_DEPTH};
use synctree_primitives::sketch::{self, CodedSymbol, SketchItem};
use synctree_primitives::store::bucket;
use synctree_primitives::{ContextId, Hash, NodePos, Store, StoreError, StoredEntry};

/// Recomputes the root and entry count of `context` from its entries alone,
/// to check a store's index (`synctree root --verify`).
///
/// Reads the entries leaf bucket by leaf bucket
/// ([`synctree_primitives::store::bucket`]) and jumps over runs of empty
/// buckets with a one-entry range probe, so a sparse context costs a few
/// calls per non-empty bucket. Re-hashes each key and entry (the stored key
/// hashes and digests are not trusted) and folds leaf hashes into the root as
/// they come, keeping one open node per level: memory is one bucket plus
/// O(depth × fanout) hashes. Never reads a node hash, so it is independent of
/// the stored index.
///
/// Fails with [`StoreError::Corrupt`] when an entry is stored under a key hash
/// its key does not hash to, outside the bucket asked for, or twice; and with
/// whatever the store's reads fail with.
///
/// ```
/// use synctree_primitives::{merkle, ContextId, Entry, NodeId, Store, Version};
/// use synctree_store::{recompute_root, MemoryStore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let ctx = ContextId::new("users")?;
/// store.apply(&ctx, vec![Entry::put("alice", "admin", Version::new(1, NodeId(1)))])?;
/// let (root, count) = recompute_root(&store, &ctx)?;
/// assert_eq!((root, count), (store.summary(&ctx)?.root, 1));
/// assert_eq!(root, merkle::root_of(&store.entries(&ctx)));
/// # Ok(())
/// # }
/// ```
pub fn recompute_root<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
) -> Result<(Hash, u64), StoreError> {
    recompute_root_with_progress(store, context, |_| {})
}

/// [`recompute_root`], calling `progress` with the number of entries of every
/// bucket as it is rehashed (for a progress bar over the context's entry count).
pub fn recompute_root_with_progress<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    mut progress: impl FnMut(u64),
) -> Result<(Hash, u64), StoreError> {
    let (mut fold, mut count, mut leaf) = (Fold::default(), 0u64, 0u32);
    while leaf < LEAF_COUNT {
        let pos = NodePos::new(TREE_DEPTH, leaf);
        let entries = bucket(store, context, pos)?;
        if entries.is_empty() {
            match next_nonempty_leaf(store, context, leaf)? {
                Some(next) => leaf = next,
                None => break,
            }
            continue;
        }
        let digests = rehash_bucket(context, pos, &entries)?;
        count += digests.len() as u64;
        progress(digests.len() as u64);
        fold.push(TREE_DEPTH, leaf, merkle::leaf_hash(digests.iter()));
        leaf += 1;
    }
    Ok((fold.finish(), count))
}

/// The first leaf after `leaf` that holds an entry, with one range probe.
fn next_nonempty_leaf<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    leaf: u32,
) -> Result<Option<u32>, StoreError> {
    if leaf + 1 >= LEAF_COUNT {
        return Ok(None);
    }
    let (low, _) = NodePos::new(TREE_DEPTH, leaf + 1).key_hash_range();
    let Some(next) = store.range(context, &low, &Hash::MAX, 1)?.pop() else {
        return Ok(None);
    };
    let next_leaf = merkle::leaf_index(&next.key_hash);
    if next_leaf <= leaf {
        let detail = format!("range from {low} returned key hash {}", next.key_hash);
        return Err(corrupt(context, detail));
    }
    Ok(Some(next_leaf))
}

/// The digests of a bucket's entries, recomputed, in recomputed key-hash order.
fn rehash_bucket(
    context: &ContextId,
    leaf: NodePos,
    entries: &[StoredEntry],
) -> Result<Vec<Hash>, StoreError> {
    let mut pairs = Vec::with_capacity(entries.len());
    for stored in entries {
        let key_hash = stored.entry.key_hash();
        if key_hash != stored.key_hash || !leaf.contains(&key_hash) {
            let detail = format!(
                "entry listed under key hash {} in leaf {} hashes to {key_hash}",
                stored.key_hash,
                leaf.index()
            );
            return Err(corrupt(context, detail));
        }
        pairs.push((key_hash, stored.entry.digest()));
    }
    pairs.sort_unstable_by_key(|&(key_hash, _)| key_hash);
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(corrupt(
            context,
            format!("key hash {} stored twice", w[0].0),
        ));
    }
    Ok(pairs.into_iter().map(|(_, digest)| digest).collect())
}

fn corrupt(context: &ContextId, detail: String) -> StoreError {
    StoreError::Corrupt(format!("context `{context}`: {detail}"))
}

/// Folds node hashes, given bottom-up in increasing position order, into the
/// root: one open node per internal level, holding the children seen so far.
/// A node is hashed when a child of another node at its level arrives, or at
/// the end, and then pushed into its own parent.
#[derive(Default)]
struct Fold {
    /// Per internal level (root = 0): the open node's index and children.
    open: [(Option<u32>, [Hash; FANOUT]); TREE_DEPTH as usize],
    root: Hash,
}

impl Fold {
    /// Adds the hash of node `index` of `level` (1..=TREE_DEPTH).
    fn push(&mut self, level: u8, index: u32, hash: Hash) {
        let parent_level = level - 1;
        let parent = index / FANOUT as u32;
        if self.open[usize::from(parent_level)].0 != Some(parent) {
            self.close(parent_level);
            self.open[usize::from(parent_level)].0 = Some(parent);
        }
        self.open[usize::from(parent_level)].1[index as usize % FANOUT] = hash;
    }

    /// Hashes the open node of `level`, if any, into its parent (or the root).
    fn close(&mut self, level: u8) {
        let (index, children) = std::mem::take(&mut self.open[usize::from(level)]);
        let Some(index) = index else {
            return;
        };
        let hash = merkle::internal_hash(&children);
        match level {
            0 => self.root = hash,
            _ => self.push(level, index, hash),
        }
    }

    /// Closes every open node, deepest first; the root.
    fn finish(mut self) -> Hash {
        for level in (0..TREE_DEPTH).rev() {
            self.close(level);
        }
        self.root
    }
}

/// Recomputes the maintained prefix of `context`'s sketch from its entries alone
/// (re-hashing each key and entry), to check a store's [`Store::sketch`]:
/// returns the maintained symbols and the recomputed ones, of
/// [`sketch_len_for`](synctree_primitives::sketch::sketch_len_for) the entry
/// count.
///
/// ```
/// use synctree_primitives::{ContextId, Entry, NodeId, Store, Version};
/// use synctree_store::{recompute_sketch, MemoryStore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let ctx = ContextId::new("users")?;
/// store.apply(&ctx, vec![Entry::put("alice", "admin", Version::new(1, NodeId(1)))])?;
/// let (maintained, recomputed) = recompute_sketch(&store, &ctx)?;
/// assert_eq!(maintained, recomputed);
/// # Ok(())
/// # }
/// ```
pub fn recompute_sketch<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
) -> Result<(Vec<CodedSymbol>, Vec<CodedSymbol>), StoreError> {
    let count = store.summary(context)?.entry_count;
    let len = sketch::sketch_len_for(count);
    let maintained = store.sketch(context, 0, len as usize)?;
    let entries = store.range(context, &Hash::ZERO, &Hash::MAX, usize::MAX)?;
    let items: Vec<SketchItem> = entries
        .iter()
        .map(|e| SketchItem::new(&e.entry.key_hash(), &e.entry.digest()))
        .collect();
    Ok((maintained, sketch::encode(&items, len as usize)))
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use synctree_primitives::merkle::{NodeMap, update_paths};
    use synctree_primitives::{Entry, NodeId, Version};

    use super::*;
    use crate::MemoryStore;

    fn fold_of(leaves: &[(u32, Hash)]) -> Hash {
        let mut fold = Fold::default();
        for &(leaf, hash) in leaves {
            fold.push(TREE_DEPTH, leaf, hash);
        }
        fold.finish()
    }

    #[test]
    fn the_fold_matches_update_paths() {
        let sets: [&[u32]; 6] = [
            &[],
            &[0],
            &[LEAF_COUNT - 1],
            &[0, 1, 15, 16, 17, 255, 256, 4095, 4096],
            &[7, 40_000, 40_001, 65_535],
            &[300, 301, 302, 5000, 5016, 9999, 60_000],
        ];
        for leaves in sets {
            let leaves: Vec<(u32, Hash)> = leaves
                .iter()
                .map(|&i| (i, Hash([(i % 251) as u8 + 1; Hash::LEN])))
                .collect();
            let mut map = NodeMap::default();
            let want = match update_paths(&mut map, leaves.clone()) {
                Ok(root) => root,
                Err(never) => match never {},
            };
            assert_eq!(fold_of(&leaves), want, "{leaves:?}");
        }
    }

    #[test]
    fn recomputes_the_root_of_a_memory_store() {
        let store = MemoryStore::new();
        let ctx = ContextId::new("verify").expect("valid");
        let (empty, none) = recompute_root(&store, &ctx).expect("recompute");
        assert_eq!((empty, none), (Hash::ZERO, 0));
        let entries: Vec<Entry> = (0..2000u64)
            .map(|i| Entry::put(format!("k{i}"), format!("v{i}"), Version::new(i, NodeId(1))))
            .collect();
        store.apply(&ctx, entries).expect("apply");
        let (root, count) = recompute_root(&store, &ctx).expect("recompute");
        assert_eq!(count, 2000);
        assert_eq!(root, merkle::root_of(&store.entries(&ctx)));
        assert_eq!(root, store.summary(&ctx).expect("summary").root);
    }
}
