//! Merge mode: after a snapshot is applied, the initiator knows the responder's whole
//! pinned set, so it can push exactly the local entries the responder lacks or holds
//! older, and both replicas converge.

use std::collections::VecDeque;

use synctree_primitives::limits::MAX_ENTRIES_PER_BATCH;
use synctree_primitives::wire::{EntryPush, WireEntry};
use synctree_primitives::{ContextId, Hash, NodePos, Store, StoreError, StoredEntry, SyncStats};

use crate::subtree::{SCAN_CHUNK, SubtreeCursor};

/// Key hashes of the local entries that win the merge against `snapshot` (the
/// responder's pinned set, in key-hash order): keys it lacks, or holds older.
/// Reads the local context in bounded chunks.
pub(crate) fn plan_pushes<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    snapshot: &[StoredEntry],
) -> Result<VecDeque<Hash>, StoreError> {
    let mut pushes = VecDeque::new();
    let mut theirs = snapshot.iter().peekable();
    let mut cursor = SubtreeCursor::new(NodePos::ROOT);
    loop {
        let (chunk, done) = cursor.read(store, context, SCAN_CHUNK)?;
        for local in chunk {
            while theirs.next_if(|t| t.key_hash < local.key_hash).is_some() {}
            let wins = match theirs.peek() {
                Some(t) if t.key_hash == local.key_hash => local.entry.supersedes(&t.entry),
                _ => true,
            };
            if wins {
                pushes.push_back(local.key_hash);
            }
        }
        if done {
            return Ok(pushes);
        }
    }
}

/// The next push frame: entries read from the store by key hash, up to `budget`
/// bytes (one entry may overshoot it) and [`MAX_ENTRIES_PER_BATCH`] entries.
pub(crate) fn push_frame<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    pushes: &mut VecDeque<Hash>,
    budget: usize,
    stats: &mut SyncStats,
) -> Result<Option<EntryPush>, StoreError> {
    let mut entries = Vec::new();
    let mut size = 0;
    while size < budget && entries.len() < MAX_ENTRIES_PER_BATCH {
        let Some(key_hash) = pushes.pop_front() else {
            break;
        };
        // A key is never removed (deletes are tombstones), so `None` cannot happen
        // short of a store bug; there is then nothing to push.
        if let Some(entry) = store.get(context, &key_hash)? {
            size += stats.record_sent(&entry);
            entries.push(WireEntry::from(&entry));
        }
    }
    Ok((!entries.is_empty()).then_some(EntryPush { entries }))
}
