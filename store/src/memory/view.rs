//! [`MemoryView`]: a point-in-time read view of one context of a
//! [`crate::MemoryStore`].

use std::ops::ControlFlow;
use std::sync::Arc;

use synctree_primitives::store::EntryRef;

use synctree_primitives::{
    ContextView, Entry, Hash, NodePos, StoreError, StoredEntry, TreeSummary, ViewPermit,
};

use super::context::ContextState;

/// The state of one context when the view was taken, shared copy-on-write with
/// the store: writes after it copy what they change and leave this one alone.
#[derive(Debug)]
pub(crate) struct MemoryView {
    state: Arc<ContextState>,
    _permit: ViewPermit,
}

impl MemoryView {
    /// A view of `state`, counted by `permit`.
    pub(crate) fn new(state: Arc<ContextState>, permit: ViewPermit) -> Self {
        MemoryView {
            state,
            _permit: permit,
        }
    }
}

impl ContextView for MemoryView {
    fn summary(&self) -> Result<TreeSummary, StoreError> {
        Ok(self.state.summary())
    }

    fn node(&self, pos: NodePos) -> Result<Hash, StoreError> {
        Ok(self.state.node(pos))
    }

    fn range(&self, low: &Hash, high: &Hash, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        Ok(self.state.range(low, high, limit))
    }

    fn visit_range(
        &self,
        low: &Hash,
        high: &Hash,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<usize, StoreError> {
        Ok(self.state.visit_range(low, high, limit, visit))
    }

    fn get(&self, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        Ok(self.state.get(key_hash))
    }
}
