//! [`PushBuffer`]: how a responder applies the entries a peer pushes.

use std::time::{Duration, Instant};

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{BATCH_BYTE_BUDGET, MAX_ENTRIES_PER_BATCH};
use synctree_primitives::wire::EntryPush;
use synctree_primitives::{ContextId, Entry, Store, SyncStats, WallClock};

use super::decode::{apply_received, decode_entries};

/// Entry bytes a responder collects from pushes before it applies them: one store
/// transaction (one durable commit on a persistent store) per this much, instead of
/// one per frame, so a peer sending many tiny pushes cannot turn each into a commit.
pub const PUSH_APPLY_BYTES: usize = 4 * BATCH_BYTE_BUDGET;

/// Longest a pushed entry waits to be applied while more pushes keep arriving: short
/// next to a session, long next to a commit.
pub const PUSH_APPLY_WINDOW: Duration = Duration::from_millis(200);

/// Pushed entries not applied yet. They are applied, checked against the clock, when
/// [`PUSH_APPLY_BYTES`] or [`MAX_ENTRIES_PER_BATCH`] of them are waiting, when the
/// oldest has waited [`PUSH_APPLY_WINDOW`], and before the session's `FinishAck` (so
/// the root it reports includes them). A session that fails first applies none of
/// the entries still waiting: nothing acknowledged them, and the next session pushes
/// them again.
#[derive(Debug, Default)]
pub(crate) struct PushBuffer {
    clock: WallClock,
    entries: Vec<Entry>,
    bytes: usize,
    since: Option<Instant>,
}

impl PushBuffer {
    /// Checks received versions against `clock`.
    pub(crate) fn set_clock(&mut self, clock: WallClock) {
        self.clock = clock;
    }

    /// Takes one push (checked first, counted in `stats`), applying the waiting
    /// entries if that fills the buffer.
    pub(crate) fn receive<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        stats: &mut SyncStats,
        push: EntryPush,
        now: Instant,
    ) -> Result<(), SyncErrorKind> {
        let entries = decode_entries(push.entries)?;
        let before = stats.payload_bytes;
        stats.record_received(&entries);
        self.bytes += usize::try_from(stats.payload_bytes - before).unwrap_or(usize::MAX);
        self.entries.extend(entries);
        self.since.get_or_insert(now);
        if self.bytes >= PUSH_APPLY_BYTES || self.entries.len() >= MAX_ENTRIES_PER_BATCH {
            self.flush(store, context, stats)?;
        }
        Ok(())
    }

    /// Applies the waiting entries once the oldest has waited [`PUSH_APPLY_WINDOW`].
    pub(crate) fn flush_due<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        stats: &mut SyncStats,
        now: Instant,
    ) -> Result<(), SyncErrorKind> {
        if self
            .since
            .is_some_and(|t| now.saturating_duration_since(t) >= PUSH_APPLY_WINDOW)
        {
            self.flush(store, context, stats)?;
        }
        Ok(())
    }

    /// Applies every waiting entry, in one store batch.
    pub(crate) fn flush<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        stats: &mut SyncStats,
    ) -> Result<(), SyncErrorKind> {
        let entries = std::mem::take(&mut self.entries);
        (self.bytes, self.since) = (0, None);
        apply_received(store, context, &self.clock, stats, entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::wire::WireEntry;
    use synctree_primitives::{Hash, NodeId, ProtocolKind, Role, Version};

    use crate::entries::recorded::Recorded;

    fn push(i: usize) -> EntryPush {
        let entry = Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(1)));
        EntryPush {
            entries: vec![WireEntry::from(&entry)],
        }
    }

    #[test]
    fn a_flood_of_single_entry_pushes_becomes_few_batches() {
        let (store, ctx) = (Recorded::default(), ContextId::new("c").unwrap());
        let mut stats = SyncStats::new(ProtocolKind::HashComparison, Role::Responder, Hash::ZERO);
        let mut buffer = PushBuffer::default();
        let start = Instant::now();
        for i in 0..1_500 {
            buffer
                .receive(&store, &ctx, &mut stats, push(i), start)
                .unwrap();
            buffer.flush_due(&store, &ctx, &mut stats, start).unwrap();
        }
        assert_eq!(store.batches(), 0, "nothing is due yet");
        buffer
            .flush_due(&store, &ctx, &mut stats, start + PUSH_APPLY_WINDOW)
            .unwrap();
        assert_eq!(store.batches(), 1, "1,500 pushes, one batch");
        buffer.flush(&store, &ctx, &mut stats).unwrap();
        assert_eq!(store.batches(), 1, "an empty buffer applies nothing");
        assert_eq!(stats.entries_pulled, 1_500);
    }
}
