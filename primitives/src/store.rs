//! The minimal store trait every backend implements and every protocol uses.

use std::ops::ControlFlow;

use crate::entry::{Entry, Version};
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

/// A stored entry lent by a store for the length of one visit
/// ([`Store::visit_range`]): borrowed bytes, no copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// SHA-256 of the key.
    pub key_hash: &'a Hash,
    /// [`Entry::digest`].
    pub digest: &'a Hash,
    /// The key.
    pub key: &'a [u8],
    /// The value (empty for tombstones).
    pub value: &'a [u8],
    /// The write that produced the entry.
    pub version: Version,
    /// True when the key was deleted.
    pub tombstone: bool,
}

impl<'a> EntryRef<'a> {
    /// Lends `stored`.
    pub fn of(stored: &'a StoredEntry) -> Self {
        EntryRef {
            key_hash: &stored.key_hash,
            digest: &stored.digest,
            key: &stored.entry.key,
            value: &stored.entry.value,
            version: stored.entry.version,
            tombstone: stored.entry.tombstone,
        }
    }

    /// The entry's wire fields, borrowed (for
    /// [`EntryFields::encode_field`](crate::wire::entry_codec::EntryFields::encode_field)).
    pub fn fields(&self) -> crate::wire::entry_codec::EntryFields<'a> {
        crate::wire::entry_codec::EntryFields {
            key: self.key,
            value: self.value,
            hlc: self.version.hlc,
            node: self.version.node.0,
            tombstone: self.tombstone,
        }
    }

    /// [`Entry::encoded_len`] of the lent entry, without copying it.
    pub fn encoded_len(&self) -> usize {
        self.fields().field_len()
    }

    /// An owned copy of the entry.
    pub fn to_entry(&self) -> Entry {
        Entry {
            key: bytes::Bytes::copy_from_slice(self.key),
            value: bytes::Bytes::copy_from_slice(self.value),
            version: self.version,
            tombstone: self.tombstone,
        }
    }

    /// An owned copy with the hashes kept.
    pub fn to_stored(&self) -> StoredEntry {
        StoredEntry {
            key_hash: *self.key_hash,
            digest: *self.digest,
            entry: self.to_entry(),
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
    /// Entries refused by the tombstone-GC rule: older than the context's
    /// [`Store::gc_watermark`] for a key the store holds nothing for (the value
    /// of a delete that may have been purged; docs/PROTOCOL.md, "Tombstone GC").
    pub refused: u64,
}

/// Which entries [`Store::purge`] removes, among the key hashes it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeRule {
    /// Only entries whose version clock is below this HLC value.
    pub below: u64,
    /// Only tombstones (garbage collection); otherwise any entry (a stale node
    /// adopting a peer's settled state below the peer's watermark).
    pub tombstones_only: bool,
}

impl PurgeRule {
    /// True when `entry` is one the rule removes.
    pub fn removes(&self, entry: &Entry) -> bool {
        entry.version.hlc < self.below && (entry.tombstone || !self.tombstones_only)
    }
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

    /// Lends up to `limit` entries whose key hash lies in `low..=high` to `visit`,
    /// in key-hash order, until it returns [`ControlFlow::Break`]; returns how
    /// many it lent. The read path of every protocol: backends override it to
    /// lend their own bytes (the default copies through [`Store::range`]).
    fn visit_range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<usize, StoreError> {
        let entries = self.range(context, low, high, limit)?;
        Ok(lend_all(&entries, visit))
    }

    /// The entry whose key hashes to `key_hash`.
    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError>;

    /// Merges `entries` into `context` atomically: on error nothing is applied.
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError>;

    /// [`Store::apply`] for entries whose key hash and digest the caller already
    /// computed (a verified snapshot page): backends override it to skip hashing
    /// again. The caller vouches that every `key_hash` and `digest` is right.
    fn apply_stored(
        &self,
        context: &ContextId,
        entries: Vec<StoredEntry>,
    ) -> Result<ApplyReport, StoreError> {
        self.apply(context, entries.into_iter().map(|s| s.entry).collect())
    }

    /// The context's tombstone-GC watermark, an HLC value: [`Store::apply`]
    /// refuses (and counts in [`ApplyReport::refused`]) an entry whose version
    /// clock is below it for a key the context holds nothing for. It only rises,
    /// through [`Store::purge`]. Zero (refuse nothing) for a context never
    /// purged, and for a backend that keeps no GC state.
    fn gc_watermark(&self, context: &ContextId) -> Result<u64, StoreError> {
        let _ = context;
        Ok(0)
    }

    /// Removes the entries of `context` under `key_hashes` that `rule` removes
    /// (absent keys and other entries are skipped), and raises the context's
    /// [`Store::gc_watermark`] to at least `watermark`, in one atomic step with the
    /// index and the sketch. Returns how many entries it removed.
    ///
    /// The default keeps everything and no watermark: a backend without GC never
    /// forgets a delete, so it never needs to refuse anything.
    fn purge(
        &self,
        context: &ContextId,
        key_hashes: &[Hash],
        rule: PurgeRule,
        watermark: u64,
    ) -> Result<u64, StoreError> {
        let _ = (context, key_hashes, rule, watermark);
        Ok(0)
    }

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

    /// A consistent point-in-time view of `context`, which later writes do not
    /// disturb, or `None` when the backend has none (then a reader that needs one
    /// state must check the root around its reads itself).
    ///
    /// A view holds resources until dropped (memory a writer copies on MemoryStore,
    /// pages pinned by a read transaction on redb): a backend hands out at most
    /// [`MAX_READ_VIEWS`](crate::limits::MAX_READ_VIEWS) at once and refuses more
    /// with [`StoreError::ViewsExhausted`].
    fn read_view(&self, context: &ContextId) -> Result<Option<Box<dyn ContextView>>, StoreError> {
        let _ = context;
        Ok(None)
    }

    /// The small record a sync protocol saved under `key` with
    /// [`Store::save_sync_state`] (resume bookkeeping, not entries), if any.
    /// The default keeps nothing.
    fn load_sync_state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = key;
        Ok(None)
    }

    /// Saves (`Some`) or removes (`None`) the record under `key`, durably when the
    /// backend is. The default keeps nothing, so a protocol's bookkeeping lives
    /// only as long as the process.
    fn save_sync_state(&self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        let _ = (key, value);
        Ok(())
    }
}

/// A read-only, point-in-time view of one context ([`Store::read_view`]): every
/// read sees the state of the moment the view was taken.
pub trait ContextView: Send + Sync {
    /// Root, entry count and depth.
    fn summary(&self) -> Result<TreeSummary, StoreError>;

    /// Hash of the node at `pos`.
    fn node(&self, pos: NodePos) -> Result<Hash, StoreError>;

    /// Up to `limit` entries whose key hash lies in `low..=high`, in key-hash order.
    fn range(&self, low: &Hash, high: &Hash, limit: usize) -> Result<Vec<StoredEntry>, StoreError>;

    /// [`Store::visit_range`] on the view.
    fn visit_range(
        &self,
        low: &Hash,
        high: &Hash,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<usize, StoreError> {
        let entries = self.range(low, high, limit)?;
        Ok(lend_all(&entries, visit))
    }

    /// The entry whose key hashes to `key_hash`.
    fn get(&self, key_hash: &Hash) -> Result<Option<Entry>, StoreError>;
}

/// Lends each of `entries` to `visit` until it breaks; returns how many it lent.
pub fn lend_all(
    entries: &[StoredEntry],
    visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
) -> usize {
    let mut lent = 0;
    for stored in entries {
        lent += 1;
        if visit(EntryRef::of(stored)).is_break() {
            break;
        }
    }
    lent
}

/// Counts the read views a store has handed out, up to a limit: each
/// [`ViewPermit`] is one view, returned when dropped. Backends share one per store.
#[derive(Clone, Debug, Default)]
pub struct ViewPermits(std::sync::Arc<std::sync::atomic::AtomicUsize>);

/// One read view's place under [`ViewPermits`]; dropping it frees the place.
#[derive(Debug)]
pub struct ViewPermit(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl ViewPermits {
    /// A place for one more view, or [`StoreError::ViewsExhausted`] when `limit`
    /// views are open.
    pub fn acquire(&self, limit: usize) -> Result<ViewPermit, StoreError> {
        use std::sync::atomic::Ordering;
        let taken = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            });
        match taken {
            Ok(_) => Ok(ViewPermit(self.0.clone())),
            Err(_) => Err(StoreError::ViewsExhausted { limit }),
        }
    }

    /// Views open now.
    pub fn open(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for ViewPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
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
