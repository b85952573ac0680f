//! What a snapshot initiator holds before verification. The staging area lives in a
//! [`SnapshotProgress`] handle that outlives a session, so a snapshot cut off
//! mid-stream resumes after its last staged page.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use synctree_primitives::merkle::{NodeMap, leaf_hash, leaf_index, update_paths};
use synctree_primitives::{ContextId, Entry, Hash, ProtocolError, StoredEntry};

use super::page::Page;

/// The progress of one snapshot download, shared between the sessions that make it.
///
/// Pass the same handle in [`SnapshotConfig::resume`](super::SnapshotConfig) to each
/// attempt: every staged page is recorded here, and a new session resumes after the
/// last one. The handle empties itself once the snapshot is verified and applied, and
/// when it can no longer complete (the responder's state moved, or the data failed
/// verification). Run one session at a time per handle.
///
/// ```
/// use synctree_protocols::{SnapshotConfig, SnapshotProgress};
///
/// let progress = SnapshotProgress::new();
/// let config = SnapshotConfig {
///     resume: Some(progress.clone()),
///     ..SnapshotConfig::default()
/// };
/// assert!(progress.is_empty() && config.resume.is_some());
/// ```
#[derive(Clone, Default)]
pub struct SnapshotProgress(Arc<Mutex<Staging>>);

/// A summary: the staged entries themselves can be gigabytes.
impl fmt::Debug for SnapshotProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(staging) = self.0.try_lock() else {
            return f.write_str("SnapshotProgress(<in use>)");
        };
        f.debug_struct("SnapshotProgress")
            .field("pinned", &staging.pinned)
            .field("cursor", &staging.cursor)
            .field("pages", &staging.pages)
            .field("entries", &staging.entries.len())
            .field("bytes", &staging.bytes)
            .finish()
    }
}

impl SnapshotProgress {
    /// A handle with nothing staged.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no snapshot is pinned: the next session starts from scratch.
    pub fn is_empty(&self) -> bool {
        self.lock().pinned.is_none()
    }

    /// The root the snapshot in progress is pinned to.
    pub fn pinned_root(&self) -> Option<Hash> {
        self.lock().pinned.map(|p| p.root)
    }

    /// Pages staged so far, across sessions.
    pub fn pages_staged(&self) -> u64 {
        self.lock().pages
    }

    /// Entries staged so far, across sessions.
    pub fn entries_staged(&self) -> usize {
        self.lock().entries.len()
    }

    /// Encoded bytes of the entries staged so far.
    pub fn bytes_staged(&self) -> usize {
        self.lock().bytes
    }

    /// Drops everything staged: the next session starts from scratch.
    pub fn clear(&self) {
        *self.lock() = Staging::default();
    }

    /// Locks the staging area. A poisoned lock is recovered: staging changes only
    /// after every check of a page passed, so the state behind it is whole.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Staging> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The version a snapshot is pinned to, as its responder announced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pinned {
    pub(crate) root: Hash,
    pub(crate) entry_count: u64,
}

/// Entries received and checked, not yet verified against the pinned root.
#[derive(Default)]
pub(crate) struct Staging {
    pub(crate) context: Option<ContextId>,
    pub(crate) pinned: Option<Pinned>,
    /// Key hash of the last staged entry: where a resumed session continues.
    pub(crate) cursor: Option<Hash>,
    pub(crate) entries: Vec<StoredEntry>,
    pub(crate) bytes: usize,
    pub(crate) pages: u64,
    builder: RootBuilder,
}

impl Staging {
    /// Starts a snapshot of `context` pinned to `pinned`, dropping anything staged.
    pub(crate) fn pin(&mut self, context: ContextId, pinned: Pinned) {
        *self = Staging {
            context: Some(context),
            pinned: Some(pinned),
            ..Staging::default()
        };
    }

    /// Stages `page` after checking that it continues above the cursor and stays
    /// within `max_bytes` of staged entries. Nothing is staged when a check fails.
    pub(crate) fn stage(&mut self, page: Page, max_bytes: usize) -> Result<(), ProtocolError> {
        let above_cursor = match (self.cursor, page.entries.first()) {
            (Some(cursor), Some(first)) => first.key_hash > cursor,
            _ => true,
        };
        if !above_cursor {
            return Err(ProtocolError::Malformed(
                "snapshot page does not continue above the previous cursor",
            ));
        }
        let bytes = self.bytes.saturating_add(page.bytes);
        ProtocolError::check_limit("snapshot staged bytes", max_bytes, bytes)?;
        // More entries than the begin claimed can never verify: refuse them now,
        // not after the peer has made this node stage up to `max_bytes`.
        if let Some(pinned) = self.pinned {
            let claimed = usize::try_from(pinned.entry_count).unwrap_or(usize::MAX);
            let staged = self.entries.len().saturating_add(page.entries.len());
            ProtocolError::check_limit(
                "snapshot entries beyond the claimed count",
                claimed,
                staged,
            )?;
        }
        for stored in &page.entries {
            self.builder.push(&stored.key_hash, stored.digest);
        }
        if let Some(last) = page.entries.last() {
            self.cursor = Some(last.key_hash);
        }
        self.entries.extend(page.entries);
        self.bytes = bytes;
        self.pages += 1;
        Ok(())
    }

    /// Checks the staged entries against the pinned root and entry count. Clears
    /// everything on failure: data that does not verify is not kept for a resume.
    pub(crate) fn verify(&mut self) -> Result<(), ProtocolError> {
        let pinned = self
            .pinned
            .ok_or(ProtocolError::Unsolicited("snapshot page before its begin"))?;
        let computed = self.builder.root();
        let result = if computed != pinned.root {
            Err(ProtocolError::VerificationFailed {
                claimed: pinned.root.to_hex(),
                computed: computed.to_hex(),
            })
        } else if self.entries.len() as u64 != pinned.entry_count {
            Err(ProtocolError::Malformed(
                "snapshot entry count differs from its begin",
            ))
        } else {
            Ok(())
        };
        if result.is_err() {
            *self = Staging::default();
        }
        result
    }

    /// Takes the staged entries out, emptying the staging area.
    pub(crate) fn take_entries(&mut self) -> Vec<Entry> {
        let staged = std::mem::take(self).entries;
        staged.into_iter().map(|s| s.entry).collect()
    }
}

/// Computes a Merkle root from entries arriving in increasing key-hash order: each
/// leaf bucket is hashed as soon as the stream leaves it, so only the open bucket's
/// digests and one hash per finished bucket are kept.
#[derive(Debug, Default)]
struct RootBuilder {
    bucket: Option<u32>,
    digests: Vec<Hash>,
    leaves: Vec<(u32, Hash)>,
}

impl RootBuilder {
    /// Adds the next entry; key hashes must increase from call to call.
    fn push(&mut self, key_hash: &Hash, digest: Hash) {
        let bucket = leaf_index(key_hash);
        if self.bucket != Some(bucket) {
            self.seal();
            self.bucket = Some(bucket);
        }
        self.digests.push(digest);
    }

    fn seal(&mut self) {
        if let Some(bucket) = self.bucket.take() {
            self.leaves.push((bucket, leaf_hash(self.digests.iter())));
            self.digests.clear();
        }
    }

    /// The root of everything pushed so far.
    fn root(&self) -> Hash {
        let open = self.bucket.map(|b| (b, leaf_hash(self.digests.iter())));
        let leaves = self.leaves.iter().copied().chain(open);
        match update_paths(&mut NodeMap::default(), leaves) {
            Ok(root) => root,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use synctree_primitives::merkle::root_of;
    use synctree_primitives::{NodeId, Version};

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        // A few thousand keys put several entries in some of the 65,536 buckets.
        #[test]
        fn streaming_root_matches_the_reference(keys in prop::collection::btree_set(any::<u32>(), 0..3000)) {
            let mut stored: Vec<StoredEntry> = keys
                .iter()
                .map(|k| Entry::put(format!("key-{k}"), k.to_string(), Version::new(u64::from(*k), NodeId(1))))
                .map(StoredEntry::new)
                .collect();
            stored.sort_by_key(|s| s.key_hash);
            let mut builder = RootBuilder::default();
            for s in &stored {
                builder.push(&s.key_hash, s.digest);
            }
            prop_assert_eq!(builder.root(), root_of(stored.iter().map(|s| &s.entry)));
        }
    }

    #[test]
    fn a_page_below_the_cursor_is_refused_and_nothing_is_staged() {
        let entry = StoredEntry::new(Entry::put("k", "v", Version::new(1, NodeId(1))));
        let page = || Page {
            entries: vec![entry.clone()],
            bytes: entry.entry.encoded_len(),
            last: false,
        };
        let mut staging = Staging::default();
        staging.stage(page(), usize::MAX).expect("first page");
        assert!(staging.stage(page(), usize::MAX).is_err());
        assert_eq!((staging.pages, staging.entries.len()), (1, 1));
    }

    #[test]
    fn entries_beyond_the_claimed_count_are_refused_at_the_page_that_brings_them() {
        let mut stored: Vec<StoredEntry> = (0..3)
            .map(|i| StoredEntry::new(Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(1)))))
            .collect();
        stored.sort_by_key(|s| s.key_hash);
        let page = |e: &StoredEntry| Page {
            entries: vec![e.clone()],
            bytes: e.entry.encoded_len(),
            last: false,
        };
        let mut staging = Staging::default();
        let pinned = Pinned {
            root: Hash::ZERO,
            entry_count: 2,
        };
        staging.pin(ContextId::new("c").unwrap(), pinned);
        staging
            .stage(page(&stored[0]), usize::MAX)
            .expect("within the claim");
        staging
            .stage(page(&stored[1]), usize::MAX)
            .expect("at the claim");
        let err = staging.stage(page(&stored[2]), usize::MAX).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::LimitExceeded {
                    limit: 2,
                    got: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            staging.entries.len(),
            2,
            "nothing of the refused page is staged"
        );
    }
}
