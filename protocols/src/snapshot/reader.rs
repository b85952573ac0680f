//! The responder's read path: pages built straight from the entries a store lends
//! ([`Store::visit_range`] / [`ContextView::visit_range`]), each entry encoded once
//! into the page buffer, never copied into an owned entry or a `WireEntry`.

use std::ops::ControlFlow;

use synctree_primitives::limits::MAX_ENTRIES_PER_BATCH;
use synctree_primitives::wire::Compression;
use synctree_primitives::wire::entry_codec::{ENTRY_PUSH_ENTRIES_TAG, SNAPSHOT_PAGE_ENTRIES_TAG};
use synctree_primitives::{ContextId, ContextView, EntryRef, Hash, Store, StoreError};

use crate::entries::successor;

/// One page's entries, encoded as the page's entries field (or, compressed, as
/// an `EntryPush`'s) in key-hash order.
#[derive(Debug, Default)]
pub(crate) struct PageEntries {
    /// The encoded fields; its length is the sum of the entries' `encoded_len`.
    pub(crate) bytes: Vec<u8>,
    /// Entries encoded.
    pub(crate) count: usize,
    /// Key hash of the last entry.
    pub(crate) cursor: Option<Hash>,
}

impl PageEntries {
    /// An empty page whose buffer holds `capacity` bytes before it grows.
    fn with_capacity(capacity: usize) -> Self {
        PageEntries {
            bytes: Vec::with_capacity(capacity),
            ..PageEntries::default()
        }
    }

    /// Appends `entry`, encoded with the field tag of `compression`'s layout.
    pub(crate) fn push(&mut self, entry: EntryRef<'_>, compression: Compression) {
        let tag = match compression {
            Compression::None => SNAPSHOT_PAGE_ENTRIES_TAG,
            Compression::Lz4 => ENTRY_PUSH_ENTRIES_TAG,
        };
        entry.fields().encode_field(tag, &mut self.bytes);
        self.count += 1;
        self.cursor = Some(*entry.key_hash);
    }

    /// Whether `len` more bytes would overflow the page: past `budget` bytes or
    /// [`MAX_ENTRIES_PER_BATCH`] entries, except that a page takes its first entry
    /// whatever its size.
    fn is_full_for(&self, len: usize, budget: usize) -> bool {
        self.count > 0 && (self.bytes.len() + len > budget || self.count >= MAX_ENTRIES_PER_BATCH)
    }
}

/// A read view, held by the responder while it streams.
pub(crate) struct View(pub(crate) Box<dyn ContextView>);

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("View")
    }
}

/// Where pages are read from: the view when there is one, else the live store.
pub(crate) struct Source<'a, S: ?Sized> {
    pub(crate) store: &'a S,
    pub(crate) context: &'a ContextId,
    pub(crate) view: Option<&'a View>,
}

impl<S: Store + ?Sized> Source<'_, S> {
    /// Lends up to `limit` entries from `low` on, in key-hash order, to `visit`.
    fn visit(
        &self,
        low: &Hash,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<usize, StoreError> {
        match self.view {
            Some(view) => view.0.visit_range(low, &Hash::MAX, limit, visit),
            None => self
                .store
                .visit_range(self.context, low, &Hash::MAX, limit, visit),
        }
    }
}

/// Reads the context in key-hash order, one page per store visit.
#[derive(Debug)]
pub(crate) struct PageReader {
    /// Key hash to read from next; `None` once the store is exhausted.
    next: Option<Hash>,
}

impl PageReader {
    /// A reader starting above `after` (from the first key hash when `None`).
    pub(crate) fn new(after: Option<Hash>) -> Self {
        PageReader {
            next: after.map_or(Some(Hash::ZERO), |h| successor(&h)),
        }
    }

    /// The entries of one page of at most `budget` bytes (an entry larger than
    /// the budget goes alone), encoded for `compression`, and whether the page is
    /// the last.
    pub(crate) fn page<S: Store + ?Sized>(
        &mut self,
        source: &Source<'_, S>,
        budget: usize,
        compression: Compression,
    ) -> Result<(PageEntries, bool), StoreError> {
        let mut page = PageEntries::with_capacity(budget);
        while let Some(low) = self.next {
            // One more than fits, to learn whether anything follows a full page.
            let limit = MAX_ENTRIES_PER_BATCH - page.count + 1;
            let mut full = false;
            let lent = source.visit(&low, limit, &mut |entry| {
                if page.is_full_for(entry.encoded_len(), budget) {
                    full = true;
                    return ControlFlow::Break(());
                }
                page.push(entry, compression);
                ControlFlow::Continue(())
            })?;
            let more = full || lent == limit;
            self.next = match page.cursor {
                Some(cursor) if more => successor(&cursor),
                _ => None,
            };
            if full {
                return Ok((page, false));
            }
        }
        Ok((page, true))
    }
}
