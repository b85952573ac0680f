//! Checking and applying entries a peer sent.

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::MAX_ENTRIES_PER_BATCH;
use synctree_primitives::wire::{EntryPush, WireEntry};
use synctree_primitives::{ContextId, Entry, ProtocolError, Store, SyncStats};

/// Applies the entries of a peer's push (checked first), counting them in `stats`:
/// what a responder does with every `EntryPush`, whatever the protocol.
pub(crate) fn apply_push<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    stats: &mut SyncStats,
    push: EntryPush,
) -> Result<(), SyncErrorKind> {
    let entries = decode_entries(push.entries)?;
    stats.record_received(&entries);
    if !entries.is_empty() {
        store.apply(context, entries)?;
    }
    Ok(())
}

/// Checks and converts a received batch of entries.
pub(crate) fn decode_entries(entries: Vec<WireEntry>) -> Result<Vec<Entry>, ProtocolError> {
    ProtocolError::check_limit("entries per batch", MAX_ENTRIES_PER_BATCH, entries.len())?;
    entries.into_iter().map(Entry::try_from).collect()
}
