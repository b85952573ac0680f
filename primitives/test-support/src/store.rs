//! [`StoreTap`]: the one delegating [`Store`].

use std::ops::ControlFlow;

use synctree_primitives::merkle::FANOUT;
use synctree_primitives::store::lend_all;
use synctree_primitives::{
    ApplyReport, ContextId, Entry, EntryRef, Hash, NodePos, PurgeRule, Store, StoreError,
    StoredEntry, TreeSummary,
};

/// Which [`Store`] method a [`StoreTap`] is about to forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp<'a> {
    /// [`Store::summary`].
    Summary,
    /// [`Store::node`].
    Node,
    /// [`Store::children`].
    Children,
    /// [`Store::range`].
    Range,
    /// [`Store::get`].
    Get,
    /// [`Store::apply`], with the batch about to be applied.
    Apply(&'a [Entry]),
    /// [`Store::contexts`].
    Contexts,
    /// [`Store::sketch_len`] or [`Store::sketch`].
    Sketch,
    /// [`Store::purge`], with the key hashes it may remove.
    Purge(&'a [Hash]),
}

impl StoreOp<'_> {
    /// The method's name, for fault and log messages.
    pub fn name(&self) -> &'static str {
        match self {
            StoreOp::Summary => "summary",
            StoreOp::Node => "node",
            StoreOp::Children => "children",
            StoreOp::Range => "range",
            StoreOp::Get => "get",
            StoreOp::Apply(_) => "apply",
            StoreOp::Contexts => "contexts",
            StoreOp::Sketch => "sketch",
            StoreOp::Purge(_) => "purge",
        }
    }

    /// True for the operations that only read.
    pub fn is_read(&self) -> bool {
        !matches!(self, StoreOp::Apply(_) | StoreOp::Purge(_))
    }
}

/// What a [`StoreTap`] does around the store it wraps. Every method has a
/// pass-through default, so a hook implements only what it changes.
pub trait StoreHook<S: Store + ?Sized>: Send + Sync {
    /// Before every operation (`apply` with its batch);
    /// an error fails the operation without forwarding it. `inner` is the wrapped
    /// store, for hooks that act on it (a foreign write mid-session).
    fn before(&self, _inner: &S, _op: StoreOp<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    /// Answers `range` in place of the wrapped store (after [`StoreHook::before`]).
    fn range(
        &self,
        inner: &S,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        inner.range(context, low, high, limit)
    }

    /// After a batch was applied, with what it changed.
    fn after_apply(&self, _context: &ContextId, _report: &ApplyReport) {}

    /// Whether the tap hands out the wrapped store's read views; `false` makes it a
    /// store without views (readers then read live), and lets `before` see every
    /// read.
    fn views(&self) -> bool {
        true
    }
}

/// A store that forwards to `inner` and calls `hook` around every operation.
#[derive(Debug)]
pub struct StoreTap<S, H> {
    inner: S,
    hook: H,
}

impl<S, H> StoreTap<S, H> {
    /// Wraps `inner` with `hook`.
    pub fn new(inner: S, hook: H) -> Self {
        StoreTap { inner, hook }
    }

    /// The wrapped store, for inspection the hook does not see.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The hook, to reconfigure it before use.
    pub fn hook_mut(&mut self) -> &mut H {
        &mut self.hook
    }

    /// Unwraps the inner store.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Store, H: StoreHook<S>> Store for StoreTap<S, H> {
    fn summary(&self, context: &ContextId) -> Result<TreeSummary, StoreError> {
        self.hook.before(&self.inner, StoreOp::Summary)?;
        self.inner.summary(context)
    }

    fn node(&self, context: &ContextId, pos: NodePos) -> Result<Hash, StoreError> {
        self.hook.before(&self.inner, StoreOp::Node)?;
        self.inner.node(context, pos)
    }

    fn children(&self, context: &ContextId, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        self.hook.before(&self.inner, StoreOp::Children)?;
        self.inner.children(context, pos)
    }

    fn range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.hook.before(&self.inner, StoreOp::Range)?;
        self.hook.range(&self.inner, context, low, high, limit)
    }

    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        self.hook.before(&self.inner, StoreOp::Get)?;
        self.inner.get(context, key_hash)
    }

    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        self.hook.before(&self.inner, StoreOp::Apply(&entries))?;
        let report = self.inner.apply(context, entries)?;
        self.hook.after_apply(context, &report);
        Ok(report)
    }

    /// Lends what the hook's [`StoreHook::range`] returns, so a hook that alters
    /// ranges alters both read paths.
    fn visit_range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<usize, StoreError> {
        self.hook.before(&self.inner, StoreOp::Range)?;
        let entries = self.hook.range(&self.inner, context, low, high, limit)?;
        Ok(lend_all(&entries, visit))
    }

    fn apply_stored(
        &self,
        context: &ContextId,
        entries: Vec<StoredEntry>,
    ) -> Result<ApplyReport, StoreError> {
        let plain: Vec<Entry> = entries.iter().map(|s| s.entry.clone()).collect();
        self.hook.before(&self.inner, StoreOp::Apply(&plain))?;
        let report = self.inner.apply_stored(context, entries)?;
        self.hook.after_apply(context, &report);
        Ok(report)
    }

    fn gc_watermark(&self, context: &ContextId) -> Result<u64, StoreError> {
        self.inner.gc_watermark(context)
    }

    fn purge(
        &self,
        context: &ContextId,
        key_hashes: &[Hash],
        rule: PurgeRule,
        watermark: u64,
    ) -> Result<u64, StoreError> {
        self.hook.before(&self.inner, StoreOp::Purge(key_hashes))?;
        self.inner.purge(context, key_hashes, rule, watermark)
    }

    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        self.hook.before(&self.inner, StoreOp::Contexts)?;
        self.inner.contexts()
    }

    fn sketch_len(&self, context: &ContextId) -> Result<u32, StoreError> {
        self.hook.before(&self.inner, StoreOp::Sketch)?;
        self.inner.sketch_len(context)
    }

    fn sketch(
        &self,
        context: &ContextId,
        start: u32,
        count: usize,
    ) -> Result<Vec<synctree_primitives::sketch::CodedSymbol>, StoreError> {
        self.hook.before(&self.inner, StoreOp::Sketch)?;
        self.inner.sketch(context, start, count)
    }

    fn read_view(
        &self,
        context: &ContextId,
    ) -> Result<Option<Box<dyn synctree_primitives::ContextView>>, StoreError> {
        if !self.hook.views() {
            return Ok(None);
        }
        self.inner.read_view(context)
    }

    fn load_sync_state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.load_sync_state(key)
    }

    fn save_sync_state(&self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        self.inner.save_sync_state(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use synctree_primitives::{NodeId, Version};

    /// Keeps applied entries in a list; enough to see what a tap forwards.
    #[derive(Default)]
    struct ListStore(Mutex<Vec<Entry>>);

    impl Store for ListStore {
        fn summary(&self, _: &ContextId) -> Result<TreeSummary, StoreError> {
            let n = self.0.lock().unwrap().len() as u64;
            Ok(TreeSummary {
                root: Hash::ZERO,
                entry_count: n,
                depth: 0,
            })
        }
        fn node(&self, _: &ContextId, _: NodePos) -> Result<Hash, StoreError> {
            Ok(Hash::ZERO)
        }
        fn range(
            &self,
            _: &ContextId,
            _: &Hash,
            _: &Hash,
            limit: usize,
        ) -> Result<Vec<StoredEntry>, StoreError> {
            let all = self.0.lock().unwrap();
            Ok(all
                .iter()
                .take(limit)
                .cloned()
                .map(StoredEntry::new)
                .collect())
        }
        fn get(&self, _: &ContextId, _: &Hash) -> Result<Option<Entry>, StoreError> {
            Ok(None)
        }
        fn apply(&self, _: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
            let changed = entries.len() as u64;
            self.0.lock().unwrap().extend(entries);
            Ok(ApplyReport {
                changed,
                ..ApplyReport::default()
            })
        }
        fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
            Ok(vec![])
        }
    }

    /// Records every operation's name, refuses reads of `range`, logs applies.
    #[derive(Default)]
    struct Recorder {
        ops: Mutex<Vec<&'static str>>,
        applied: Mutex<u64>,
    }

    impl StoreHook<ListStore> for Recorder {
        fn before(&self, _: &ListStore, op: StoreOp<'_>) -> Result<(), StoreError> {
            self.ops.lock().unwrap().push(op.name());
            match op {
                StoreOp::Apply([]) => Err(StoreError::Fault { op: "apply" }),
                _ => Ok(()),
            }
        }
        fn after_apply(&self, _: &ContextId, report: &ApplyReport) {
            *self.applied.lock().unwrap() += report.changed;
        }
    }

    #[test]
    fn every_operation_passes_the_hook_and_a_refusal_forwards_nothing() {
        let tap = StoreTap::new(ListStore::default(), Recorder::default());
        let ctx = ContextId::new("c").unwrap();
        let entry = Entry::put("k", "v", Version::new(1, NodeId(1)));
        tap.apply(&ctx, vec![entry]).unwrap();
        assert!(tap.apply(&ctx, vec![]).is_err());
        assert_eq!(tap.summary(&ctx).unwrap().entry_count, 1);
        assert_eq!(
            tap.range(&ctx, &Hash::ZERO, &Hash::MAX, 10).unwrap().len(),
            1
        );
        tap.node(&ctx, NodePos::ROOT).unwrap();
        tap.children(&ctx, NodePos::ROOT).unwrap();
        tap.get(&ctx, &Hash::ZERO).unwrap();
        tap.contexts().unwrap();
        let ops = tap.hook().ops.lock().unwrap().clone();
        assert_eq!(
            ops,
            [
                "apply", "apply", "summary", "range", "node", "children", "get", "contexts"
            ]
        );
        assert_eq!(*tap.hook().applied.lock().unwrap(), 1);
        assert!(StoreOp::Range.is_read() && !StoreOp::Apply(&[]).is_read());
    }
}
