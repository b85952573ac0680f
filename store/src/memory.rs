//! [`MemoryStore`]: every context in memory, behind one reader-writer lock.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use synctree_primitives::merkle::FANOUT;
use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, NodePos, Store, StoreError, StoredEntry, TreeSummary,
};

use crate::context::ContextState;

/// An in-memory [`Store`] of many contexts, each with an incrementally
/// maintained Merkle index.
///
/// Reads take a shared lock and writes an exclusive one over all contexts, so
/// every [`Store::apply`] is atomic and readers never see half a batch.
///
/// ```
/// use synctree_primitives::{ContextId, Entry, NodeId, Store, Version};
/// use synctree_store::MemoryStore;
///
/// let store = MemoryStore::new();
/// let ctx = ContextId::new("users").unwrap();
/// let v1 = Version::new(1, NodeId(1));
/// let report = store.apply(&ctx, vec![Entry::put("alice", "admin", v1)]).unwrap();
/// assert_eq!(report.changed, 1);
/// assert_eq!(store.summary(&ctx).unwrap().entry_count, 1);
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    contexts: RwLock<HashMap<ContextId, ContextState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entry of `context` (tombstones included), in key-hash order; empty
    /// for an unknown context.
    pub fn entries(&self, context: &ContextId) -> Vec<Entry> {
        self.read_context(context, ContextState::entries)
    }

    /// Runs `f` on `context`, or on an empty context when it is unknown.
    fn read_context<T>(&self, context: &ContextId, f: impl FnOnce(&ContextState) -> T) -> T {
        match self.read().get(context) {
            Some(state) => f(state),
            None => f(&ContextState::default()),
        }
    }

    // A poisoned lock is recovered rather than reported: nothing that runs under
    // the write lock panics short of a bug (allocation failure aborts), so the
    // state behind it is whole.

    fn read(&self) -> RwLockReadGuard<'_, HashMap<ContextId, ContextState>> {
        self.contexts.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<ContextId, ContextState>> {
        self.contexts.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn summary(&self, context: &ContextId) -> Result<TreeSummary, StoreError> {
        Ok(self.read_context(context, ContextState::summary))
    }

    fn node(&self, context: &ContextId, pos: NodePos) -> Result<Hash, StoreError> {
        Ok(self.read_context(context, |state| state.node(pos)))
    }

    /// Reads all 16 children under one lock. A leaf has no children: all zeros.
    fn children(&self, context: &ContextId, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        Ok(self.read_context(context, |state| state.children(pos)))
    }

    fn range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        Ok(self.read_context(context, |state| state.range(low, high, limit)))
    }

    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        Ok(self.read_context(context, |state| state.get(key_hash)))
    }

    /// Merges the batch in order; see the crate docs for how duplicates count.
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        if entries.is_empty() {
            return Ok(ApplyReport::default());
        }
        // Hash before taking the lock: readers wait only for the merge itself.
        let t0 = crate::cpu();
        let entries: Vec<StoredEntry> = entries.into_iter().map(StoredEntry::new).collect();
        crate::add(0, crate::cpu() - t0);
        let mut contexts = self.write();
        let report = match contexts.get_mut(context) {
            Some(state) => state.apply(entries),
            None => contexts.entry(context.clone()).or_default().apply(entries),
        };
        Ok(report)
    }

    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        let contexts = self.read();
        let mut out: Vec<ContextId> =
            contexts.iter().filter(|(_, state)| !state.is_empty()).map(|(id, _)| id.clone()).collect();
        out.sort_unstable();
        Ok(out)
    }
}
