//! A stale node adopting its peer's settled state (docs/PROTOCOL.md, "Tombstone
//! GC"): in a merge snapshot with [`SnapshotConfig::adopt_below`](super::SnapshotConfig::adopt_below), a local entry
//! older than the peer's watermark whose key the peer's snapshot lacks is the
//! value of a delete the peer has purged (or a write that never reached it
//! within the horizon, which it refuses anyway): it is removed, not pushed.

use std::collections::VecDeque;

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::{ContextId, Hash, PurgeRule, Store};

use super::page::Keyed;

/// Takes out of `pushes` the keys merge mode planned to push for this page
/// (those from index `first` on; earlier ones belong to earlier pages) that the
/// page lacks and whose local entry is older than `below`, and removes those
/// entries from the store; returns how many went.
pub(crate) fn forget_unlisted<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    below: u64,
    (first, page): (usize, &[Keyed]),
    pushes: &mut VecDeque<Hash>,
) -> Result<u64, SyncErrorKind> {
    let listed = |key: &Hash| page.binary_search_by(|s| s.key_hash.cmp(key)).is_ok();
    let mut forget = Vec::new();
    let first = first.min(pushes.len());
    let mut kept = VecDeque::with_capacity(pushes.len());
    kept.extend(pushes.drain(..first));
    for key in pushes.drain(..) {
        let old = !listed(&key)
            && store
                .get(context, &key)?
                .is_some_and(|e| e.version.hlc < below);
        if old {
            forget.push(key);
        } else {
            kept.push_back(key);
        }
    }
    *pushes = kept;
    if forget.is_empty() {
        return Ok(0);
    }
    let rule = PurgeRule {
        below,
        tombstones_only: false,
    };
    Ok(store.purge(context, &forget, rule, 0)?)
}

/// Raises the local watermark to the adopted one once the whole snapshot is
/// in: below it, this node now holds what the peer holds.
pub(crate) fn raise_watermark<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    below: u64,
) -> Result<(), SyncErrorKind> {
    let rule = PurgeRule {
        below,
        tombstones_only: true,
    };
    store.purge(context, &[], rule, below)?;
    Ok(())
}
