//! Per-peer access rules: which contexts an authenticated peer may read and write.
//!
//! A served stream carries the [`Access`] its acceptor granted (everything, for a
//! plaintext or allowlisted peer without rules). A context the peer may not read
//! is refused at the first message exactly like a context this node does not
//! know (`UNKNOWN_CONTEXT`), whether it exists or not; a context it may read but
//! not write is served through [`ReadOnly`], which refuses every received batch
//! with [`StoreError::WriteDenied`] (abort `WRITE_DENIED`) before touching the
//! store.

use std::collections::BTreeSet;

use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, PurgeRule, Store, StoreError, StoredEntry,
};

/// A set of contexts: all of them, or the listed ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextSet {
    /// Every context.
    #[default]
    All,
    /// Only these contexts (none, when empty).
    Only(BTreeSet<ContextId>),
}

impl ContextSet {
    /// No context at all.
    pub fn none() -> Self {
        ContextSet::Only(BTreeSet::new())
    }

    /// Whether `context` is in the set.
    pub fn contains(&self, context: &ContextId) -> bool {
        match self {
            ContextSet::All => true,
            ContextSet::Only(set) => set.contains(context),
        }
    }
}

/// What one peer may do: read (be answered about) and write (push into) contexts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Contexts the peer may sync at all.
    pub read: ContextSet,
    /// Contexts whose entries the peer may change; only those it may also read
    /// matter.
    pub write: ContextSet,
}

impl Access {
    /// Every context, read and write: the default for an allowlisted peer.
    pub fn all() -> Self {
        Access::default()
    }

    /// Every context, read only.
    pub fn read_only() -> Self {
        Access {
            read: ContextSet::All,
            write: ContextSet::none(),
        }
    }

    /// Whether the peer may sync `context`.
    pub fn may_read(&self, context: &ContextId) -> bool {
        self.read.contains(context)
    }

    /// Whether the peer may change entries of `context`.
    pub fn may_write(&self, context: &ContextId) -> bool {
        self.may_read(context) && self.write.contains(context)
    }
}

/// A view of a store that reads through and refuses every non-empty batch with
/// [`StoreError::WriteDenied`], applying nothing.
#[derive(Debug)]
pub struct ReadOnly<'a, S: ?Sized>(pub &'a S);

impl<S: Store + ?Sized> Store for ReadOnly<'_, S> {
    synctree_primitives::forward_store_reads!(0);

    /// Refuses the batch (an empty one is a no-op).
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        if entries.is_empty() {
            return Ok(ApplyReport::default());
        }
        Err(StoreError::WriteDenied {
            context: context.to_string(),
        })
    }

    /// Refuses the batch (an empty one is a no-op).
    fn apply_stored(
        &self,
        context: &ContextId,
        entries: Vec<StoredEntry>,
    ) -> Result<ApplyReport, StoreError> {
        self.apply(context, entries.into_iter().map(|s| s.entry).collect())
    }

    /// Refuses to remove anything (an empty key list is a no-op).
    fn purge(
        &self,
        context: &ContextId,
        key_hashes: &[Hash],
        _rule: PurgeRule,
        _watermark: u64,
    ) -> Result<u64, StoreError> {
        if key_hashes.is_empty() {
            return Ok(0);
        }
        Err(StoreError::WriteDenied {
            context: context.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::{NodeId, Version};
    use synctree_store::MemoryStore;

    fn ctx(name: &str) -> ContextId {
        ContextId::new(name).unwrap()
    }

    #[test]
    fn default_access_allows_everything_and_rules_narrow_it() {
        assert!(Access::all().may_write(&ctx("a")));
        let ro = Access::read_only();
        assert!(ro.may_read(&ctx("a")) && !ro.may_write(&ctx("a")));
        let only_b = Access {
            read: ContextSet::Only([ctx("b")].into()),
            write: ContextSet::All,
        };
        assert!(!only_b.may_read(&ctx("a")) && !only_b.may_write(&ctx("a")));
        assert!(only_b.may_write(&ctx("b")));
    }

    #[test]
    fn read_only_view_refuses_batches_and_changes_nothing() {
        let store = MemoryStore::new();
        let c = ctx("a");
        let before = store.summary(&c).unwrap().root;
        let entry = Entry::put("k", "v", Version::new(1, NodeId(1)));
        let refused = ReadOnly(&store).apply(&c, vec![entry]);
        assert!(matches!(refused, Err(StoreError::WriteDenied { .. })));
        assert!(ReadOnly(&store).apply(&c, Vec::new()).is_ok());
        assert_eq!(store.summary(&c).unwrap().root, before);
    }
}
