//! [`FaultyStore`]: fault injection for any store, as a [`StoreTap`] hook.

use std::sync::atomic::{AtomicU64, Ordering};

use synctree_primitives::{Store, StoreError};

use crate::store::{StoreHook, StoreOp, StoreTap};

/// A store that counts the operations made on it and, once a threshold is
/// reached, fails every [`Store::apply`] (and, if asked, every read) with
/// [`StoreError::Fault`].
///
/// A failed operation is *not* forwarded to the inner store, so a failed batch
/// leaves it exactly as it was — what an atomic backend must guarantee.
///
/// ```
/// use synctree_primitives::{ContextId, Entry, NodeId, Store, StoreError, Version};
/// use synctree_test_support::{FaultyStore, StoreTap};
/// # use synctree_primitives::{ApplyReport, Hash, NodePos, StoredEntry, TreeSummary};
/// # struct Empty;
/// # impl Store for Empty {
/// #   fn summary(&self, _: &ContextId) -> Result<TreeSummary, StoreError> { Ok(TreeSummary { root: Hash::ZERO, entry_count: 0, depth: 0 }) }
/// #   fn node(&self, _: &ContextId, _: NodePos) -> Result<Hash, StoreError> { Ok(Hash::ZERO) }
/// #   fn range(&self, _: &ContextId, _: &Hash, _: &Hash, _: usize) -> Result<Vec<StoredEntry>, StoreError> { Ok(vec![]) }
/// #   fn get(&self, _: &ContextId, _: &Hash) -> Result<Option<Entry>, StoreError> { Ok(None) }
/// #   fn apply(&self, _: &ContextId, e: Vec<Entry>) -> Result<ApplyReport, StoreError> { Ok(ApplyReport { changed: e.len() as u64, unchanged: 0, refused: 0 }) }
/// #   fn contexts(&self) -> Result<Vec<ContextId>, StoreError> { Ok(vec![]) }
/// # }
///
/// let store: FaultyStore<_> = StoreTap::failing_after(Empty, 1);
/// let ctx = ContextId::new("c").unwrap();
/// let entry = Entry::put("k", "v", Version::new(1, NodeId(1)));
/// assert!(store.apply(&ctx, vec![entry.clone()]).is_ok()); // operation 0
/// let err = store.apply(&ctx, vec![entry]).unwrap_err(); // operation 1
/// assert!(matches!(err, StoreError::Fault { op: "apply" }));
/// ```
pub type FaultyStore<S> = StoreTap<S, Faults>;

/// The hook behind [`FaultyStore`]: an operation counter and a threshold.
#[derive(Debug)]
pub struct Faults {
    /// Operations made so far, failed ones included.
    ops: AtomicU64,
    /// Operation number (0-based) from which operations fail.
    fail_from: AtomicU64,
    /// Whether reads fail too, or only `apply`.
    fail_reads: bool,
}

impl<S: Store> StoreHook<S> for Faults {
    fn before(&self, _inner: &S, op: StoreOp<'_>) -> Result<(), StoreError> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let armed = n >= self.fail_from.load(Ordering::SeqCst);
        if armed && (!op.is_read() || self.fail_reads) {
            return Err(StoreError::Fault { op: op.name() });
        }
        Ok(())
    }
}

impl<S: Store> StoreTap<S, Faults> {
    /// Wraps `inner`: the first `fail_after` operations succeed, every later
    /// `apply` fails. Reads keep working unless [`StoreTap::fail_reads`] is set.
    pub fn failing_after(inner: S, fail_after: u64) -> Self {
        let faults = Faults {
            ops: AtomicU64::new(0),
            fail_from: AtomicU64::new(fail_after),
            fail_reads: false,
        };
        StoreTap::new(inner, faults)
    }

    /// Makes reads fail as well as writes once the threshold is reached.
    pub fn fail_reads(mut self, yes: bool) -> Self {
        self.hook_mut().fail_reads = yes;
        self
    }

    /// Re-arms the fault: `more` further operations succeed, then they fail.
    pub fn fail_after(&self, more: u64) {
        let faults = self.hook();
        let now = faults.ops.load(Ordering::SeqCst);
        faults
            .fail_from
            .store(now.saturating_add(more), Ordering::SeqCst);
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        self.hook().fail_from.store(u64::MAX, Ordering::SeqCst);
    }

    /// Operations made so far, failed ones included.
    pub fn operations(&self) -> u64 {
        self.hook().ops.load(Ordering::SeqCst)
    }
}
