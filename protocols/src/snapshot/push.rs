//! Merge mode: after a snapshot is applied, the initiator knows the responder's whole
//! pinned set, so it can push exactly the local entries the responder lacks or holds
//! older, and both replicas converge.

use std::collections::VecDeque;

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::wire::EntryPush;
use synctree_primitives::{ContextId, Hash, Store, StoreError, SyncStats};

use super::page::Keyed;
use crate::entries::{EntryBatcher, EntrySource, SCAN_CHUNK, successor};

/// Merge mode, one page at a time: appends to `pushes` the key hashes of the local
/// entries in `low..=high` that win the merge against `page` (the responder's
/// entries of that range, in key-hash order): keys it lacks, or holds older. Run
/// before the page is applied; reads the local range in bounded chunks.
pub(crate) fn plan_page_pushes<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    (low, high): (Hash, Hash),
    page: &[Keyed],
    pushes: &mut VecDeque<Hash>,
) -> Result<(), StoreError> {
    let mut theirs = page.iter().peekable();
    let mut next = Some(low);
    while let Some(from) = next {
        let chunk = store.range(context, &from, &high, SCAN_CHUNK)?;
        next = match chunk.last() {
            Some(last) if chunk.len() == SCAN_CHUNK => successor(&last.key_hash),
            _ => None,
        };
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
    }
    Ok(())
}

/// The local entries still to push, by key hash, in key-hash order.
#[derive(Debug, Default)]
pub(crate) struct Pushes(pub(crate) VecDeque<Hash>);

impl<S: Store + ?Sized> EntrySource<S> for Pushes {
    fn feed(
        &mut self,
        store: &S,
        context: &ContextId,
        batch: &mut EntryBatcher<'_>,
    ) -> Result<bool, SyncErrorKind> {
        let Some(key_hash) = self.0.pop_front() else {
            return Ok(false);
        };
        // A key is never removed (deletes are tombstones), so `None` cannot happen
        // short of a store bug; there is then nothing to push.
        if let Some(entry) = store.get(context, &key_hash)? {
            batch.push(&entry);
        }
        Ok(true)
    }
}

/// The next push frame: entries read from the store by key hash, up to `budget`
/// bytes (one entry may overshoot it) and `MAX_ENTRIES_PER_BATCH` entries.
pub(crate) fn push_frame<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    pushes: &mut Pushes,
    budget: usize,
    stats: &mut SyncStats,
) -> Result<Option<EntryPush>, SyncErrorKind> {
    let entries = EntryBatcher::new(budget, stats).fill(store, context, pushes)?;
    Ok((!entries.is_empty()).then_some(EntryPush { entries }))
}
