//! [`FaultyStore`]: a fault-injection wrapper for tests.

use std::sync::atomic::{AtomicU64, Ordering};

use synctree_primitives::merkle::FANOUT;
use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, NodePos, Store, StoreError, StoredEntry, TreeSummary,
};

/// A test and fault-injection tool: wraps any [`Store`], counts the operations
/// made on it, and once a threshold is reached fails every [`Store::apply`] (and,
/// if asked, every read) with [`StoreError::Fault`].
///
/// A failed operation is *not* forwarded to the inner store, so a failed batch
/// leaves it exactly as it was — what an atomic backend must guarantee.
///
/// ```
/// use synctree_primitives::{ContextId, Entry, NodeId, Store, StoreError, Version};
/// use synctree_store::{FaultyStore, MemoryStore};
///
/// let store = FaultyStore::new(MemoryStore::new(), 1);
/// let ctx = ContextId::new("c").unwrap();
/// let entry = Entry::put("k", "v", Version::new(1, NodeId(1)));
/// assert!(store.apply(&ctx, vec![entry.clone()]).is_ok()); // operation 0
/// let err = store.apply(&ctx, vec![entry]).unwrap_err(); // operation 1
/// assert!(matches!(err, StoreError::Fault { op: "apply" }));
/// ```
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    /// Operations made so far, failed ones included.
    ops: AtomicU64,
    /// Operation number (0-based) from which operations fail.
    fail_from: AtomicU64,
    /// Whether reads fail too, or only `apply`.
    fail_reads: bool,
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner`: the first `fail_after` operations succeed, every later
    /// `apply` fails. Reads keep working unless [`FaultyStore::fail_reads`] is set.
    pub fn new(inner: S, fail_after: u64) -> Self {
        FaultyStore {
            inner,
            ops: AtomicU64::new(0),
            fail_from: AtomicU64::new(fail_after),
            fail_reads: false,
        }
    }

    /// Makes reads fail as well as writes once the threshold is reached.
    pub fn fail_reads(mut self, yes: bool) -> Self {
        self.fail_reads = yes;
        self
    }

    /// Re-arms the fault: `more` further operations succeed, then they fail.
    pub fn fail_after(&self, more: u64) {
        let now = self.ops.load(Ordering::SeqCst);
        self.fail_from
            .store(now.saturating_add(more), Ordering::SeqCst);
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        self.fail_from.store(u64::MAX, Ordering::SeqCst);
    }

    /// Operations made so far, failed ones included.
    pub fn operations(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// The wrapped store, for inspection that should not count as an operation.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Counts one operation and decides whether it fails.
    fn check(&self, op: &'static str, is_read: bool) -> Result<(), StoreError> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let armed = n >= self.fail_from.load(Ordering::SeqCst);
        if armed && (!is_read || self.fail_reads) {
            return Err(StoreError::Fault { op });
        }
        Ok(())
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn summary(&self, context: &ContextId) -> Result<TreeSummary, StoreError> {
        self.check("summary", true)?;
        self.inner.summary(context)
    }

    fn node(&self, context: &ContextId, pos: NodePos) -> Result<Hash, StoreError> {
        self.check("node", true)?;
        self.inner.node(context, pos)
    }

    fn children(&self, context: &ContextId, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        self.check("children", true)?;
        self.inner.children(context, pos)
    }

    fn range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.check("range", true)?;
        self.inner.range(context, low, high, limit)
    }

    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        self.check("get", true)?;
        self.inner.get(context, key_hash)
    }

    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        self.check("apply", false)?;
        self.inner.apply(context, entries)
    }

    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        self.check("contexts", true)?;
        self.inner.contexts()
    }
}
