//! What a snapshot initiator knows of a snapshot in progress: the pinned root, the
//! cursor, counts and the streaming root builder, never the entries themselves
//! (each page is applied as it arrives). It lives in a [`SnapshotProgress`] handle
//! that outlives a session, and encodes to a few KiB
//! ([`SnapshotProgress::encode`]) that a store keeps across restarts, so a
//! snapshot cut off mid-stream resumes after its last applied page.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use synctree_primitives::{ContextId, Hash, ProtocolError, StoredEntry};

use super::page::Page;
use super::root::{RootBuilder, take};

/// First byte of an encoded [`SnapshotProgress`]: its layout version.
const ENCODING_VERSION: u8 = 1;

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
            .field("entries", &staging.entries)
            .field("bytes", &staging.bytes)
            .field("rebased", &staging.rebased)
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

    /// The context the snapshot in progress is of.
    pub fn context(&self) -> Option<ContextId> {
        self.lock().context.clone()
    }

    /// The root the snapshot in progress is pinned to.
    pub fn pinned_root(&self) -> Option<Hash> {
        self.lock().pinned.map(|p| p.root)
    }

    /// Pages staged so far, across sessions.
    pub fn pages_staged(&self) -> u64 {
        self.lock().pages
    }

    /// Entries applied so far under the pinned root (since the last rebase).
    pub fn entries_staged(&self) -> usize {
        usize::try_from(self.lock().entries).unwrap_or(usize::MAX)
    }

    /// True when a resumed session found the responder at another root: the
    /// entries applied before it stay (merged), but the final root check cannot
    /// cover them, so the snapshot ends unverified and a tree session converges.
    pub fn is_rebased(&self) -> bool {
        self.lock().rebased
    }

    /// The progress as bytes for
    /// [`Store::save_sync_state`](synctree_primitives::Store::save_sync_state);
    /// empty when nothing is pinned.
    pub fn encode(&self) -> Vec<u8> {
        self.lock().encode()
    }

    /// A handle holding what [`SnapshotProgress::encode`] wrote, or
    /// [`ProtocolError::Malformed`] for bytes it did not write.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let staging = Staging::decode(bytes)?;
        Ok(SnapshotProgress(Arc::new(Mutex::new(staging))))
    }

    /// Encoded bytes of the entries applied so far, across sessions.
    pub fn bytes_staged(&self) -> usize {
        usize::try_from(self.lock().bytes).unwrap_or(usize::MAX)
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

/// What [`Staging::record`] keeps of a page, taken before its entries move into
/// the store: each entry's key hash and digest, and the page's encoded size.
#[derive(Debug)]
pub(crate) struct PageMark {
    pub(crate) hashes: Vec<(Hash, Hash)>,
    pub(crate) bytes: usize,
}

impl PageMark {
    /// The mark of a page of `entries` entries and `bytes` bytes, before any of
    /// its entries is added.
    pub(crate) fn new(entries: usize, bytes: usize) -> Self {
        PageMark {
            hashes: Vec::with_capacity(entries),
            bytes,
        }
    }

    /// Adds the hashes of the next entries of the page.
    pub(crate) fn extend(&mut self, stored: &[StoredEntry]) {
        self.hashes
            .extend(stored.iter().map(|s| (s.key_hash, s.digest)));
    }

    /// The mark of `page`, its digests computed here.
    #[cfg(test)]
    pub(crate) fn of(page: &Page) -> Self {
        let mut mark = PageMark::new(page.entries.len(), page.bytes);
        let stored: Vec<StoredEntry> = page
            .entries
            .iter()
            .cloned()
            .map(|k| k.into_stored())
            .collect();
        mark.extend(&stored);
        mark
    }
}

/// The version a snapshot is pinned to, as its responder announced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pinned {
    pub(crate) root: Hash,
    pub(crate) entry_count: u64,
}

/// How a snapshot that reached its last page ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verified {
    /// Every entry hashes to the pinned root.
    Whole,
    /// Rebased: only the entries since the rebase were received under the pinned
    /// root, so the root check could not run.
    Unverifiable,
}

/// A snapshot in progress: what was pinned and how far it got.
#[derive(Default)]
pub(crate) struct Staging {
    pub(crate) context: Option<ContextId>,
    pub(crate) pinned: Option<Pinned>,
    /// Key hash of the last applied entry: where a resumed session continues.
    pub(crate) cursor: Option<Hash>,
    /// Entries received under the pinned root.
    pub(crate) entries: u64,
    /// Entry bytes received, across sessions.
    pub(crate) bytes: u64,
    pub(crate) pages: u64,
    /// The pinned root changed at a resume (see [`SnapshotProgress::is_rebased`]).
    pub(crate) rebased: bool,
    /// Merge mode: local entries planned for pushing, by key hash (not saved).
    pub(crate) pushes: VecDeque<Hash>,
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

    /// A resumed session found the responder at another root: keep the cursor
    /// (what was applied stays) and continue under `pinned`, unverifiable.
    pub(crate) fn rebase(&mut self, pinned: Pinned) {
        self.pinned = Some(pinned);
        self.entries = 0;
        self.rebased = true;
        self.builder = RootBuilder::default();
    }

    /// Where the next page starts: just above the cursor.
    pub(crate) fn next_low(&self) -> Option<Hash> {
        match self.cursor {
            Some(cursor) => crate::entries::successor(&cursor),
            None => Some(Hash::ZERO),
        }
    }

    /// Records `page` after checking that it continues above the cursor and stays
    /// within `max_bytes` of entries. Nothing changes when a check fails.
    #[cfg(test)]
    pub(crate) fn stage(&mut self, page: &Page, max_bytes: usize) -> Result<(), ProtocolError> {
        self.check(page, max_bytes)?;
        self.record(&PageMark::of(page));
        Ok(())
    }

    /// The checks of [`Staging::stage`], changing nothing: run before the page is
    /// applied, and [`Staging::record`] after, so the cursor never passes entries
    /// that did not reach the store.
    pub(crate) fn check(&self, page: &Page, max_bytes: usize) -> Result<(), ProtocolError> {
        let above_cursor = match (self.cursor, page.entries.first()) {
            (Some(cursor), Some(first)) => first.key_hash > cursor,
            _ => true,
        };
        if !above_cursor {
            return Err(ProtocolError::Malformed(
                "snapshot page does not continue above the previous cursor",
            ));
        }
        let bytes = self.bytes.saturating_add(page.bytes as u64);
        ProtocolError::check_limit(
            "snapshot staged bytes",
            max_bytes,
            usize::try_from(bytes).unwrap_or(usize::MAX),
        )?;
        // More entries than the begin claimed can never verify: refuse them now,
        // not after the peer has made this node apply up to `max_bytes`.
        let staged = self.entries.saturating_add(page.entries.len() as u64);
        if let Some(pinned) = self.pinned {
            let claimed = usize::try_from(pinned.entry_count).unwrap_or(usize::MAX);
            let staged = usize::try_from(staged).unwrap_or(usize::MAX);
            ProtocolError::check_limit(
                "snapshot entries beyond the claimed count",
                claimed,
                staged,
            )?;
        }
        Ok(())
    }

    /// Records a page that passed [`Staging::check`] and was applied.
    pub(crate) fn record(&mut self, page: &PageMark) {
        for (key_hash, digest) in &page.hashes {
            self.builder.push(key_hash, *digest);
        }
        if let Some((last, _)) = page.hashes.last() {
            self.cursor = Some(*last);
        }
        self.entries = self.entries.saturating_add(page.hashes.len() as u64);
        self.bytes = self.bytes.saturating_add(page.bytes as u64);
        self.pages += 1;
    }

    /// Checks what arrived against the pinned root and entry count. Clears
    /// everything on failure: there is nothing left to resume.
    pub(crate) fn verify(&mut self) -> Result<Verified, ProtocolError> {
        let pinned = self
            .pinned
            .ok_or(ProtocolError::Unsolicited("snapshot page before its begin"))?;
        if self.rebased {
            return Ok(Verified::Unverifiable);
        }
        let computed = self.builder.root();
        let result = if computed != pinned.root {
            Err(ProtocolError::VerificationFailed {
                claimed: pinned.root.to_hex(),
                computed: computed.to_hex(),
            })
        } else if self.entries != pinned.entry_count {
            Err(ProtocolError::Malformed(
                "snapshot entry count differs from its begin",
            ))
        } else {
            Ok(Verified::Whole)
        };
        if result.is_err() {
            *self = Staging::default();
        }
        result
    }

    /// Version, context, pinned root and count, cursor, counters, rebased flag,
    /// then the root builder; big-endian. Empty when nothing is pinned.
    fn encode(&self) -> Vec<u8> {
        let (Some(context), Some(pinned)) = (&self.context, self.pinned) else {
            return Vec::new();
        };
        let mut out = vec![ENCODING_VERSION];
        let name = context.as_str().as_bytes();
        out.extend((name.len() as u16).to_be_bytes());
        out.extend(name);
        out.extend(pinned.root.0);
        out.extend(pinned.entry_count.to_be_bytes());
        out.push(u8::from(self.cursor.is_some()));
        out.extend(self.cursor.unwrap_or(Hash::ZERO).0);
        for n in [self.entries, self.bytes, self.pages] {
            out.extend(n.to_be_bytes());
        }
        out.push(u8::from(self.rebased));
        self.builder.encode(&mut out);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Staging, ProtocolError> {
        let mut input = bytes;
        if input.is_empty() {
            return Ok(Staging::default());
        }
        let [version] = take::<1>(&mut input)?;
        if version != ENCODING_VERSION {
            return Err(ProtocolError::Malformed("saved snapshot progress version"));
        }
        let len = usize::from(u16::from_be_bytes(take(&mut input)?));
        let Some((name, rest)) = input.split_at_checked(len) else {
            return Err(ProtocolError::Malformed(
                "saved snapshot progress truncated",
            ));
        };
        input = rest;
        let name = std::str::from_utf8(name)
            .map_err(|_| ProtocolError::Malformed("saved snapshot context"))?;
        let context = ContextId::new(name)?;
        let root = Hash(take(&mut input)?);
        let entry_count = u64::from_be_bytes(take(&mut input)?);
        let [has_cursor] = take::<1>(&mut input)?;
        let cursor = Hash(take(&mut input)?);
        let mut counter = || take(&mut input).map(u64::from_be_bytes);
        let (entries, bytes, pages) = (counter()?, counter()?, counter()?);
        let [rebased] = take::<1>(&mut input)?;
        let builder = RootBuilder::decode(&mut input)?;
        if !input.is_empty() || has_cursor > 1 || rebased > 1 {
            return Err(ProtocolError::Malformed("saved snapshot progress"));
        }
        Ok(Staging {
            context: Some(context),
            pinned: Some(Pinned { root, entry_count }),
            cursor: (has_cursor == 1).then_some(cursor),
            entries,
            bytes,
            pages,
            rebased: rebased == 1,
            pushes: VecDeque::new(),
            builder,
        })
    }
}

#[cfg(test)]
mod tests {
    use synctree_primitives::{Entry, NodeId, Version};

    use super::super::page::Keyed;
    use super::*;

    fn keyed(stored: &StoredEntry) -> Keyed {
        Keyed {
            key_hash: stored.key_hash,
            entry: stored.entry.clone(),
        }
    }

    #[test]
    fn a_page_below_the_cursor_is_refused_and_nothing_is_staged() {
        let entry = StoredEntry::new(Entry::put("k", "v", Version::new(1, NodeId(1))));
        let page = || Page {
            entries: vec![keyed(&entry)],
            bytes: entry.entry.encoded_len(),
            last: false,
        };
        let mut staging = Staging::default();
        staging.stage(&page(), usize::MAX).expect("first page");
        assert!(staging.stage(&page(), usize::MAX).is_err());
        assert_eq!((staging.pages, staging.entries), (1, 1));
    }

    #[test]
    fn entries_beyond_the_claimed_count_are_refused_at_the_page_that_brings_them() {
        let mut stored: Vec<StoredEntry> = (0..3)
            .map(|i| StoredEntry::new(Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(1)))))
            .collect();
        stored.sort_by_key(|s| s.key_hash);
        let page = |e: &StoredEntry| Page {
            entries: vec![keyed(e)],
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
            .stage(&page(&stored[0]), usize::MAX)
            .expect("within the claim");
        staging
            .stage(&page(&stored[1]), usize::MAX)
            .expect("at the claim");
        let err = staging.stage(&page(&stored[2]), usize::MAX).unwrap_err();
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
        assert_eq!(staging.entries, 2, "nothing of the refused page is staged");
    }

    #[test]
    fn progress_round_trips_through_its_encoding() {
        let mut stored: Vec<StoredEntry> = (0..40)
            .map(|i| StoredEntry::new(Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(1)))))
            .collect();
        stored.sort_by_key(|s| s.key_hash);
        let page = Page {
            bytes: stored.iter().map(|s| s.entry.encoded_len()).sum(),
            entries: stored[..25].iter().map(keyed).collect(),
            last: false,
        };
        let progress = SnapshotProgress::new();
        let pinned = Pinned {
            root: Hash([7; 32]),
            entry_count: 40,
        };
        progress.lock().pin(ContextId::new("c").unwrap(), pinned);
        progress.lock().stage(&page, usize::MAX).expect("stage");
        let bytes = progress.encode();
        let back = SnapshotProgress::decode(&bytes).expect("decode");
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.lock().cursor, progress.lock().cursor);
        assert_eq!(back.lock().builder, progress.lock().builder);
        for cut in 0..bytes.len() {
            assert!(
                SnapshotProgress::decode(&bytes[..cut]).map_or(true, |p| p.is_empty() && cut == 0)
            );
        }
        assert!(SnapshotProgress::new().encode().is_empty());
    }
}
