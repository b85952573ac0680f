//! Packing entries into frames: one loop for every frame that carries entries
//! (tree pushes, tree entry batches, snapshot merge pushes).

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::MAX_ENTRIES_PER_BATCH;
use synctree_primitives::wire::WireEntry;
use synctree_primitives::{ContextId, Entry, Store, StoreError, SyncStats};

use super::cursor::{SCAN_CHUNK, SubtreeCursor};

/// Where the entries of a frame come from, in the order they are sent.
pub(crate) trait EntrySource<S: Store + ?Sized> {
    /// Adds the next entries to `batch` (at most [`EntryBatcher::room`] of them);
    /// returns false once the source has nothing more to give.
    fn feed(
        &mut self,
        store: &S,
        context: &ContextId,
        batch: &mut EntryBatcher<'_>,
    ) -> Result<bool, SyncErrorKind>;
}

/// One frame's entries, filled until `budget` bytes of encoded entries (the last
/// entry may overshoot it) or [`MAX_ENTRIES_PER_BATCH`] entries, every entry
/// counted as sent in the session's stats.
#[derive(Debug)]
pub(crate) struct EntryBatcher<'a> {
    budget: usize,
    bytes: usize,
    entries: Vec<WireEntry>,
    stats: &'a mut SyncStats,
}

impl<'a> EntryBatcher<'a> {
    /// An empty frame of at most `budget` bytes of entries.
    pub(crate) fn new(budget: usize, stats: &'a mut SyncStats) -> Self {
        EntryBatcher {
            budget,
            bytes: 0,
            entries: Vec::new(),
            stats,
        }
    }

    /// Feeds from `source` until the frame is full or the source is exhausted.
    pub(crate) fn fill<S, F>(
        mut self,
        store: &S,
        context: &ContextId,
        source: &mut F,
    ) -> Result<Vec<WireEntry>, SyncErrorKind>
    where
        S: Store + ?Sized,
        F: EntrySource<S>,
    {
        while self.has_room() && source.feed(store, context, &mut self)? {}
        Ok(self.entries)
    }

    /// Entries the frame may still take.
    pub(crate) fn room(&self) -> usize {
        MAX_ENTRIES_PER_BATCH.saturating_sub(self.entries.len())
    }

    /// Adds one entry.
    pub(crate) fn push(&mut self, entry: &Entry) {
        self.bytes += self.stats.record_sent(entry);
        self.entries.push(WireEntry::from(entry));
    }

    /// Adds one entry the caller owns (no reference counts to bump).
    pub(crate) fn push_owned(&mut self, entry: Entry) {
        self.bytes += self.stats.record_sent(&entry);
        self.entries.push(WireEntry {
            key: entry.key,
            value: entry.value,
            hlc: entry.version.hlc,
            node: entry.version.node.0,
            tombstone: entry.tombstone,
        });
    }

    /// Adds the next chunk of the subtree under `cursor`; true once it is exhausted.
    pub(crate) fn push_subtree<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        cursor: &mut SubtreeCursor,
    ) -> Result<bool, StoreError> {
        let (chunk, done) = cursor.read(store, context, SCAN_CHUNK.min(self.room()))?;
        for stored in &chunk {
            self.push(&stored.entry);
        }
        Ok(done)
    }

    fn has_room(&self) -> bool {
        self.bytes < self.budget && self.room() > 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use synctree_primitives::{NodeId, ProtocolKind, Role, Version};
    use synctree_store::MemoryStore;

    use super::*;

    /// A list of entries, fed one at a time.
    struct List(VecDeque<Entry>);

    impl<S: Store + ?Sized> EntrySource<S> for List {
        fn feed(
            &mut self,
            _: &S,
            _: &ContextId,
            batch: &mut EntryBatcher<'_>,
        ) -> Result<bool, SyncErrorKind> {
            let Some(entry) = self.0.pop_front() else {
                return Ok(false);
            };
            batch.push(&entry);
            Ok(true)
        }
    }

    fn entries(count: usize) -> List {
        let put = |i| Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(1)));
        List((0..count).map(put).collect())
    }

    fn stats() -> SyncStats {
        SyncStats::new(
            ProtocolKind::HashComparison,
            Role::Initiator,
            Default::default(),
        )
    }

    #[test]
    fn a_frame_stops_at_the_byte_budget_or_the_entry_limit() {
        let (store, context) = (MemoryStore::new(), ContextId::new("c").expect("valid"));
        let mut source = entries(MAX_ENTRIES_PER_BATCH + 3);
        let one = Entry::put("k0".to_owned(), "v", Version::new(1, NodeId(1))).encoded_len();
        let mut stats = stats();
        let frame = EntryBatcher::new(2 * one, &mut stats).fill(&store, &context, &mut source);
        assert_eq!(frame.map(|f| f.len()).ok(), Some(2));
        assert_eq!(stats.entries_pushed, 2);
        let frame = EntryBatcher::new(usize::MAX, &mut stats).fill(&store, &context, &mut source);
        assert_eq!(frame.map(|f| f.len()).ok(), Some(MAX_ENTRIES_PER_BATCH));
        let frame = EntryBatcher::new(usize::MAX, &mut stats).fill(&store, &context, &mut source);
        assert_eq!(frame.map(|f| f.len()).ok(), Some(1));
    }
}
