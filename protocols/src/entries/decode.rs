//! Checking and applying entries a peer sent.

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::MAX_ENTRIES_PER_BATCH;
use synctree_primitives::wire::WireEntry;
use synctree_primitives::{
    ContextId, Entry, ProtocolError, Store, StoredEntry, SyncStats, WallClock,
};

/// Checks and converts a received batch of entries.
pub(crate) fn decode_entries(entries: Vec<WireEntry>) -> Result<Vec<Entry>, ProtocolError> {
    ProtocolError::check_limit("entries per batch", MAX_ENTRIES_PER_BATCH, entries.len())?;
    entries.into_iter().map(Entry::try_from).collect()
}

/// The one way received entries enter a store, in every protocol (the caller has
/// counted them as received): drops those whose version runs more than the allowed skew ahead of `clock`
/// (counted in [`SyncStats::entries_refused_ahead`], logged once per session), and
/// applies the rest in one batch. A refused entry does not fail the session: the
/// rest of the batch is valid on its own, and the session ends "not converged" so a
/// later one retries once the clocks agree.
pub(crate) fn apply_received<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    clock: &WallClock,
    stats: &mut SyncStats,
    mut entries: Vec<Entry>,
) -> Result<(), SyncErrorKind> {
    let received = entries.len();
    entries.retain(|e| clock.admits(e.version.hlc));
    count_refused(context, stats, received, entries.len());
    if !entries.is_empty() {
        let report = store.apply(context, entries)?;
        stats.entries_refused_gc += report.refused;
    }
    Ok(())
}

/// [`apply_received`] for entries the caller already hashed and checked (a
/// verified snapshot page): the same clock rule, then [`Store::apply_stored`], so
/// the store does not hash them again.
pub(crate) fn apply_received_stored<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    clock: &WallClock,
    stats: &mut SyncStats,
    mut entries: Vec<StoredEntry>,
) -> Result<(), SyncErrorKind> {
    let received = entries.len();
    entries.retain(|s| clock.admits(s.entry.version.hlc));
    count_refused(context, stats, received, entries.len());
    if !entries.is_empty() {
        let report = store.apply_stored(context, entries)?;
        stats.entries_refused_gc += report.refused;
    }
    Ok(())
}

/// Counts (and logs once per session) the entries the clock rule refused.
fn count_refused(context: &ContextId, stats: &mut SyncStats, received: usize, kept: usize) {
    let refused = (received - kept) as u64;
    if refused > 0 {
        if stats.entries_refused_ahead == 0 {
            tracing::warn!(
                %context, refused, max_skew_ms = synctree_primitives::hlc::MAX_CLOCK_SKEW_MS,
                "refused entries whose version is ahead of this node's clock"
            );
        }
        stats.entries_refused_ahead += refused;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::hlc::{HLC_LOGICAL_BITS, MAX_CLOCK_SKEW_MS};
    use synctree_primitives::{Hash, NodeId, ProtocolKind, Role, Version};

    use crate::entries::recorded::Recorded;

    #[test]
    fn entries_ahead_of_the_clock_are_refused_and_counted_the_rest_applied() {
        let now_ms = 1_700_000_000_000;
        let clock = WallClock::Fixed(now_ms);
        let at = |ms: u64| Version::new(ms << HLC_LOGICAL_BITS, NodeId(7));
        let entries = vec![
            Entry::put("past", "v", at(now_ms - 5)),
            Entry::put("skewed", "v", at(now_ms + MAX_CLOCK_SKEW_MS)),
            Entry::put("year", "v", at(now_ms + 365 * 86_400_000)),
            Entry::delete("top", Version::new(u64::MAX, NodeId(u64::MAX))),
        ];
        let store = Recorded::default();
        let ctx = ContextId::new("c").unwrap();
        let mut stats = SyncStats::new(ProtocolKind::HashComparison, Role::Responder, Hash::ZERO);
        stats.record_received(&entries);
        apply_received(&store, &ctx, &clock, &mut stats, entries).unwrap();
        let keys: Vec<_> = store.entries().iter().map(|e| e.key.clone()).collect();
        assert_eq!(keys, ["past", "skewed"]);
        assert_eq!((stats.entries_pulled, stats.entries_refused_ahead), (4, 2));
        let later = WallClock::Fixed(now_ms + 365 * 86_400_000);
        let year = vec![Entry::put("year", "v", at(now_ms + 365 * 86_400_000))];
        apply_received(&store, &ctx, &later, &mut stats, year).unwrap();
        assert_eq!(store.entries().len(), 3, "admitted once the clocks agree");
    }
}
