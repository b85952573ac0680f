//! The minimal store trait every backend implements and every protocol uses.

use crate::entry::Entry;
use crate::error::StoreError;
use crate::ids::{ContextId, Hash};
use crate::merkle::{FANOUT, NodePos};
use crate::sketch::CodedSymbol;

/// Root, size and shape of one context's tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeSummary {
    /// Merkle root ([`Hash::ZERO`] when empty).
    pub root: Hash,
    /// Entries, tombstones included.
    pub entry_count: u64,
    /// Levels below the root.
    pub depth: u8,
}

/// An entry as a store keeps it, with its key hash and digest precomputed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// SHA-256 of the key.
    pub key_hash: Hash,
    /// [`Entry::digest`].
    pub digest: Hash,
    /// The entry.
    pub entry: Entry,
}

impl StoredEntry {
    /// Computes the key hash and digest of `entry`.
    pub fn new(entry: Entry) -> Self {
        StoredEntry {
            key_hash: entry.key_hash(),
            digest: entry.digest(),
            entry,
        }
    }
}

/// What applying a batch changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Entries that were new or won the merge.
    pub changed: u64,
    /// Entries the store already held, or held newer.
    pub unchanged: u64,
}

/// A store of many contexts, each a set of entries with a Merkle index.
///
/// Reads of an unknown context see an empty tree. Implementations keep the index
/// current on every [`Store::apply`] (incrementally, see
/// [`crate::merkle::update_paths`]), and apply each batch atomically.
pub trait Store: Send + Sync {
    /// Root, entry count and depth of `context`.
    fn summary(&self, context: &ContextId) -> Result<TreeSummary, StoreError>;

    /// Hash of the node at `pos` ([`Hash::ZERO`] when its subtree is empty).
    fn node(&self, context: &ContextId, pos: NodePos) -> Result<Hash, StoreError>;

    /// The 16 child hashes of the internal node at `pos`.
    fn children(&self, context: &ContextId, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        let mut out = [Hash::ZERO; FANOUT];
        for (c, slot) in out.iter_mut().enumerate() {
            *slot = self.node(context, pos.child(c))?;
        }
        Ok(out)
    }

    /// Up to `limit` entries whose key hash lies in `low..=high`, in key-hash order.
    fn range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError>;

    /// The entry whose key hashes to `key_hash`.
    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError>;

    /// Merges `entries` into `context` atomically: on error nothing is applied.
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError>;

    /// Every context holding at least one entry.
    fn contexts(&self) -> Result<Vec<ContextId>, StoreError>;

    /// How many leading coded symbols of `context`'s sketch the store maintains
    /// ([`crate::sketch::sketch_len_for`] its entry count, at least as many as it
    /// ever kept). Zero, the default, for a backend that keeps no sketch: the
    /// sketch protocol then falls over to a tree protocol.
    fn sketch_len(&self, context: &ContextId) -> Result<u32, StoreError> {
        let _ = context;
        Ok(0)
    }

    /// The maintained symbols `start..start + count` of `context`'s sketch (fewer
    /// past [`Store::sketch_len`]): kept current by [`Store::apply`], in the same
    /// atomic step as the entries, equal to [`crate::sketch::encode`] over the
    /// items of every entry.
    fn sketch(
        &self,
        context: &ContextId,
        start: u32,
        count: usize,
    ) -> Result<Vec<CodedSymbol>, StoreError> {
        let _ = (context, start, count);
        Ok(Vec::new())
    }
}

/// Every entry of a leaf bucket, in key-hash order.
pub fn bucket<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    leaf: NodePos,
) -> Result<Vec<StoredEntry>, StoreError> {
    let (low, high) = leaf.key_hash_range();
    store.range(context, &low, &high, usize::MAX)
}
