//! [`MemoryStore`]: every context in memory, behind one reader-writer lock.
//!
//! Its parts, from the top down: [`context`] (one context: entries and index),
//! [`leaves`] (level-3 groups of 16 buckets), [`bucket`] (one leaf's entries,
//! sorted by key hash), [`nodes`] (internal levels 0–3 with their midstates) and
//! [`batch`] (a batch hashed and sorted before the write lock is taken) and
//! [`view`] (point-in-time read views).

mod batch;
mod bucket;
mod context;
mod leaves;
mod nodes;
mod view;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use synctree_primitives::limits::MAX_READ_VIEWS;
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::sketch::CodedSymbol;
use synctree_primitives::store::EntryRef;
use synctree_primitives::{
    ApplyReport, ContextId, ContextView, Entry, Hash, NodePos, PurgeRule, Store, StoreError,
    StoredEntry, TreeSummary, ViewPermits,
};

use batch::Batch;
use context::ContextState;
use view::MemoryView;

/// An in-memory [`Store`] of many contexts, each with an incrementally
/// maintained Merkle index.
///
/// Reads take a shared lock and writes an exclusive one over all contexts, so
/// every [`Store::apply`] is atomic and readers never see half a batch.
///
/// [`Store::read_view`] is O(1): each context's state is an `Arc` shared with its
/// views, and its buckets and node groups are `Arc`s too, so the first write after
/// a view was taken copies the context's two maps of pointers (at most ~8,500) and
/// every write copies only the groups of 16 buckets or hashes it changes. A view
/// costs memory only for what is written while it lives.
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
    contexts: RwLock<HashMap<ContextId, Arc<ContextState>>>,
    views: ViewPermits,
    /// Records saved with [`Store::save_sync_state`], for the process's lifetime.
    sync_state: Mutex<HashMap<String, Vec<u8>>>,
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

    /// Takes the shared lock. A poisoned lock is recovered rather than reported:
    /// nothing that runs under the write lock panics short of a bug (allocation
    /// failure aborts), so the state behind it is whole.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<ContextId, Arc<ContextState>>> {
        self.contexts.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the exclusive lock, recovering it from poisoning like [`Self::read`].
    /// Merges a prepared batch under the write lock, where nothing can fail.
    fn merge(&self, context: &ContextId, entries: Batch) -> Result<ApplyReport, StoreError> {
        let mut contexts = self.write();
        let report = match contexts.get_mut(context) {
            Some(state) => Arc::make_mut(state).apply(entries),
            None => Arc::make_mut(contexts.entry(context.clone()).or_default()).apply(entries),
        };
        Ok(report)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<ContextId, Arc<ContextState>>> {
        self.contexts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
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

    fn visit_range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<usize, StoreError> {
        Ok(self.read_context(context, |state| state.visit_range(low, high, limit, visit)))
    }

    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        Ok(self.read_context(context, |state| state.get(key_hash)))
    }

    /// Hashes the batch outside the lock, then merges it under the write lock,
    /// where nothing can fail. See the crate docs for how duplicates count.
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        if entries.is_empty() {
            return Ok(ApplyReport::default());
        }
        // Hash and sort before taking the lock: readers wait only for the merge.
        self.merge(context, Batch::new(entries))
    }

    /// Sorts the batch outside the lock; its hashes are the caller's.
    fn apply_stored(
        &self,
        context: &ContextId,
        entries: Vec<StoredEntry>,
    ) -> Result<ApplyReport, StoreError> {
        if entries.is_empty() {
            return Ok(ApplyReport::default());
        }
        self.merge(context, Batch::from_stored(entries))
    }

    fn gc_watermark(&self, context: &ContextId) -> Result<u64, StoreError> {
        Ok(self.read_context(context, ContextState::watermark))
    }

    /// Removes under the write lock; a context never written starts with the
    /// watermark.
    fn purge(
        &self,
        context: &ContextId,
        key_hashes: &[Hash],
        rule: PurgeRule,
        watermark: u64,
    ) -> Result<u64, StoreError> {
        let mut contexts = self.write();
        let state = contexts.entry(context.clone()).or_default();
        Ok(Arc::make_mut(state).purge(key_hashes, &rule, watermark))
    }

    fn sketch_len(&self, context: &ContextId) -> Result<u32, StoreError> {
        Ok(self.read_context(context, ContextState::sketch_len))
    }

    fn sketch(
        &self,
        context: &ContextId,
        start: u32,
        count: usize,
    ) -> Result<Vec<CodedSymbol>, StoreError> {
        Ok(self.read_context(context, |state| state.sketch(start, count)))
    }

    /// Shares the context's current state with the view (O(1)); at most
    /// [`MAX_READ_VIEWS`] at once.
    fn read_view(&self, context: &ContextId) -> Result<Option<Box<dyn ContextView>>, StoreError> {
        let permit = self.views.acquire(MAX_READ_VIEWS)?;
        let state = self.read().get(context).cloned().unwrap_or_default();
        Ok(Some(Box::new(MemoryView::new(state, permit))))
    }

    fn load_sync_state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let records = self
            .sync_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(records.get(key).cloned())
    }

    fn save_sync_state(&self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        let mut records = self
            .sync_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match value {
            Some(value) => records.insert(key.to_owned(), value.to_vec()),
            None => records.remove(key),
        };
        Ok(())
    }

    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        let contexts = self.read();
        let mut out: Vec<ContextId> = contexts
            .iter()
            .filter(|(_, state)| !state.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use synctree_primitives::merkle::{self, TREE_DEPTH};
    use synctree_primitives::{NodeId, Version};

    use super::*;

    fn ctx() -> ContextId {
        ContextId::new("unit").expect("valid context")
    }

    fn put(key: &str, hlc: u64) -> Entry {
        Entry::put(
            key.to_owned(),
            format!("v{hlc}"),
            Version::new(hlc, NodeId(1)),
        )
    }

    #[test]
    fn duplicates_in_a_batch_count_in_batch_order() {
        let store = MemoryStore::new();
        let report = store
            .apply(&ctx(), vec![put("k", 1), put("k", 3), put("k", 2)])
            .expect("apply");
        assert_eq!((report.changed, report.unchanged), (2, 1));
        let report = store
            .apply(&ctx(), vec![put("j", 3), put("j", 1)])
            .expect("apply");
        assert_eq!((report.changed, report.unchanged), (1, 1));
        assert_eq!(store.entries(&ctx()).len(), 2);
    }

    #[test]
    fn a_leaf_has_no_children() {
        let store = MemoryStore::new();
        let entry = put("k", 1);
        store.apply(&ctx(), vec![entry.clone()]).expect("apply");
        let leaf = NodePos::leaf_of(&entry.key_hash());
        assert!(!store.node(&ctx(), leaf).expect("node").is_zero());
        assert_eq!(
            store.children(&ctx(), leaf).expect("children"),
            [Hash::ZERO; FANOUT]
        );
        assert_eq!(leaf.level(), TREE_DEPTH);
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let store = MemoryStore::new();
        store.apply(&ctx(), vec![put("k", 1)]).expect("apply");
        let poisoner = std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = store.contexts.write();
                panic!("poisoning the lock on purpose");
            })
            .join()
        });
        assert!(poisoner.is_err() && store.contexts.is_poisoned());
        store
            .apply(&ctx(), vec![put("j", 1)])
            .expect("apply after poisoning");
        let entries = store.entries(&ctx());
        assert_eq!(
            store.summary(&ctx()).expect("summary").root,
            merkle::root_of(&entries)
        );
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn concurrent_writers_converge_to_the_merge() {
        let store = MemoryStore::new();
        let batches: Vec<Vec<Entry>> = (0..4u64)
            .map(|t| {
                (0..500)
                    .map(|i| put(&format!("k{}", i % 300), t * 1000 + i))
                    .collect()
            })
            .collect();
        std::thread::scope(|s| {
            for batch in &batches {
                let store = &store;
                s.spawn(move || {
                    for chunk in batch.chunks(50) {
                        store.apply(&ctx(), chunk.to_vec()).expect("apply");
                    }
                });
            }
        });
        let all: Vec<Entry> = batches.concat();
        let mut want: Vec<Entry> = Vec::new();
        for e in all {
            match want.iter_mut().find(|w| w.key == e.key) {
                Some(w) => *w = synctree_primitives::merge(w.clone(), e),
                None => want.push(e),
            }
        }
        want.sort_by_key(Entry::key_hash);
        assert_eq!(store.entries(&ctx()), want);
        assert_eq!(
            store.summary(&ctx()).expect("summary").root,
            merkle::root_of(&want)
        );
    }
}
