//! [`forward_store_reads!`](crate::forward_store_reads): the read side of a
//! [`Store`](crate::Store) that wraps another, written once.

/// Inside an `impl Store for Wrapper`, forwards every read method of
/// [`Store`](crate::Store) to the field named (`inner`, or `0` for a tuple
/// struct), so a wrapper writes only what it changes: `apply`, `apply_stored`
/// and `purge` (which it must write, so a wrapper never silently drops one).
///
/// ```
/// use synctree_primitives::{ApplyReport, ContextId, Entry, Hash, PurgeRule, Store, StoreError, StoredEntry};
///
/// /// Counts batches, reads through.
/// struct Counting<S> { inner: S, batches: std::sync::atomic::AtomicU64 }
///
/// impl<S: Store> Store for Counting<S> {
///     synctree_primitives::forward_store_reads!(inner);
///
///     fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
///         self.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.inner.apply(context, entries)
///     }
///     fn apply_stored(&self, context: &ContextId, entries: Vec<StoredEntry>) -> Result<ApplyReport, StoreError> {
///         self.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.inner.apply_stored(context, entries)
///     }
///     fn purge(&self, context: &ContextId, keys: &[Hash], rule: PurgeRule, watermark: u64) -> Result<u64, StoreError> {
///         self.inner.purge(context, keys, rule, watermark)
///     }
/// }
/// ```
#[macro_export]
macro_rules! forward_store_reads {
    ($field:tt) => {
        fn summary(
            &self,
            context: &$crate::ContextId,
        ) -> ::std::result::Result<$crate::TreeSummary, $crate::StoreError> {
            self.$field.summary(context)
        }

        fn node(
            &self,
            context: &$crate::ContextId,
            pos: $crate::NodePos,
        ) -> ::std::result::Result<$crate::Hash, $crate::StoreError> {
            self.$field.node(context, pos)
        }

        fn children(
            &self,
            context: &$crate::ContextId,
            pos: $crate::NodePos,
        ) -> ::std::result::Result<[$crate::Hash; $crate::merkle::FANOUT], $crate::StoreError> {
            self.$field.children(context, pos)
        }

        fn range(
            &self,
            context: &$crate::ContextId,
            low: &$crate::Hash,
            high: &$crate::Hash,
            limit: usize,
        ) -> ::std::result::Result<::std::vec::Vec<$crate::StoredEntry>, $crate::StoreError> {
            self.$field.range(context, low, high, limit)
        }

        fn visit_range(
            &self,
            context: &$crate::ContextId,
            low: &$crate::Hash,
            high: &$crate::Hash,
            limit: usize,
            visit: &mut dyn FnMut($crate::EntryRef<'_>) -> ::std::ops::ControlFlow<()>,
        ) -> ::std::result::Result<usize, $crate::StoreError> {
            self.$field.visit_range(context, low, high, limit, visit)
        }

        fn get(
            &self,
            context: &$crate::ContextId,
            key_hash: &$crate::Hash,
        ) -> ::std::result::Result<::std::option::Option<$crate::Entry>, $crate::StoreError> {
            self.$field.get(context, key_hash)
        }

        fn gc_watermark(
            &self,
            context: &$crate::ContextId,
        ) -> ::std::result::Result<u64, $crate::StoreError> {
            self.$field.gc_watermark(context)
        }

        fn contexts(
            &self,
        ) -> ::std::result::Result<::std::vec::Vec<$crate::ContextId>, $crate::StoreError> {
            self.$field.contexts()
        }

        fn sketch_len(
            &self,
            context: &$crate::ContextId,
        ) -> ::std::result::Result<u32, $crate::StoreError> {
            self.$field.sketch_len(context)
        }

        fn sketch(
            &self,
            context: &$crate::ContextId,
            start: u32,
            count: usize,
        ) -> ::std::result::Result<::std::vec::Vec<$crate::sketch::CodedSymbol>, $crate::StoreError>
        {
            self.$field.sketch(context, start, count)
        }

        fn read_view(
            &self,
            context: &$crate::ContextId,
        ) -> ::std::result::Result<
            ::std::option::Option<::std::boxed::Box<dyn $crate::ContextView>>,
            $crate::StoreError,
        > {
            self.$field.read_view(context)
        }

        fn load_sync_state(
            &self,
            key: &str,
        ) -> ::std::result::Result<::std::option::Option<::std::vec::Vec<u8>>, $crate::StoreError> {
            self.$field.load_sync_state(key)
        }

        fn save_sync_state(
            &self,
            key: &str,
            value: ::std::option::Option<&[u8]>,
        ) -> ::std::result::Result<(), $crate::StoreError> {
            self.$field.save_sync_state(key, value)
        }
    };
}
