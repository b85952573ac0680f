//! A store for unit tests that only records the batches applied to it.

use std::sync::Mutex;

use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, NodePos, Store, StoreError, StoredEntry, TreeSummary,
};

/// Records every batch `apply` receives; every read is a test bug.
#[derive(Default)]
pub(crate) struct Recorded(pub(crate) Mutex<Vec<Vec<Entry>>>);

impl Recorded {
    /// Every entry applied so far, in order.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.0.lock().unwrap().concat()
    }

    /// Batches applied so far.
    pub(crate) fn batches(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Store for Recorded {
    fn summary(&self, _: &ContextId) -> Result<TreeSummary, StoreError> {
        unreachable!("reads are not recorded")
    }
    fn node(&self, _: &ContextId, _: NodePos) -> Result<Hash, StoreError> {
        unreachable!("reads are not recorded")
    }
    fn range(
        &self,
        _: &ContextId,
        _: &Hash,
        _: &Hash,
        _: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        unreachable!("reads are not recorded")
    }
    fn get(&self, _: &ContextId, _: &Hash) -> Result<Option<Entry>, StoreError> {
        unreachable!("reads are not recorded")
    }
    fn apply(&self, _: &ContextId, batch: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        assert!(!batch.is_empty(), "no empty batches");
        self.0.lock().unwrap().push(batch);
        Ok(ApplyReport::default())
    }
    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        unreachable!("reads are not recorded")
    }
}
