//! Versioned local writes: [`LocalWrites::write_local`] on every [`Store`].
//!
//! A local write must win over whatever the store holds for its key, so its
//! version comes from a hybrid logical clock ticked past the key's current
//! version. Time arrives as an argument, like everywhere in this crate.

use bytes::Bytes;

use crate::entry::{Entry, Version, key_hash};
use crate::error::{ProtocolError, StoreError};
use crate::hlc::Hlc;
use crate::ids::{ContextId, NodeId};
use crate::store::Store;

/// Why a local write was refused or failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteLocalError {
    /// The key's current version holds the largest possible clock value, so no
    /// version can supersede it.
    #[error("no version supersedes the key's current one ({current:?}): the clock is exhausted")]
    ClockExhausted {
        /// The key's current version.
        current: Version,
    },
    /// The entry is not valid (a key or value over its limit).
    #[error("invalid entry")]
    InvalidEntry(#[source] ProtocolError),
    /// The store failed to read the current version or to apply the write.
    #[error("store")]
    Store(#[from] StoreError),
}

/// The version of a local write by `node` at wall time `now_ms` (milliseconds
/// since the Unix epoch): the hybrid logical clock's tick at `now_ms`, or one
/// past the key's `current` version when that is newer, so the write always
/// wins. A current version more than [`MAX_CLOCK_SKEW_MS`](crate::hlc::MAX_CLOCK_SKEW_MS)
/// ahead of `now_ms` (a peer's broken clock) is passed by one all the same; see
/// [`is_ahead_of_clock`] to notice it.
///
/// ```
/// use synctree_primitives::local::next_version;
/// use synctree_primitives::{Entry, NodeId, Version};
///
/// let current = Entry::put("k", "v", Version::new(u64::MAX / 2, NodeId(9)));
/// let next = next_version(Some(&current), NodeId(5), 1_000)?;
/// assert_eq!(next, Version::new(u64::MAX / 2 + 1, NodeId(5)));
/// # Ok::<(), synctree_primitives::local::WriteLocalError>(())
/// ```
pub fn next_version(
    current: Option<&Entry>,
    node: NodeId,
    now_ms: u64,
) -> Result<Version, WriteLocalError> {
    let mut clock = Hlc::new();
    let floor = match current {
        Some(e) => {
            // Accepted or not, the write passes the current version by one.
            clock.observe(e.version.hlc, now_ms);
            e.version
                .hlc
                .checked_add(1)
                .ok_or(WriteLocalError::ClockExhausted { current: e.version })?
        }
        None => 0,
    };
    Ok(Version::new(clock.tick(now_ms).max(floor), node))
}

/// True when `version` is more than [`MAX_CLOCK_SKEW_MS`](crate::hlc::MAX_CLOCK_SKEW_MS)
/// ahead of wall time `now_ms`: a clock the local [`Hlc`] refuses to observe.
pub fn is_ahead_of_clock(version: Version, now_ms: u64) -> bool {
    !Hlc::new().observe(version.hlc, now_ms)
}

/// Local writes with versions minted from a hybrid logical clock, on every
/// [`Store`] (including `dyn Store`).
pub trait LocalWrites: Store {
    /// Writes `value` under `key` in `context` (`None`: a tombstone), by `node`
    /// at wall time `now_ms`, with a version strictly newer than the key's
    /// current one (see [`next_version`]), and returns the entry written.
    ///
    /// The read of the current version and the apply are two store calls: a
    /// concurrent writer of the same key in between merges as any two writes
    /// do. On error nothing is written.
    fn write_local(
        &self,
        context: &ContextId,
        key: impl Into<Bytes>,
        value: Option<Bytes>,
        node: NodeId,
        now_ms: u64,
    ) -> Result<Entry, WriteLocalError> {
        let key = key.into();
        let current = self.get(context, &key_hash(&key))?;
        let version = next_version(current.as_ref(), node, now_ms)?;
        let entry = match value {
            Some(value) => Entry::put(key, value, version),
            None => Entry::delete(key, version),
        };
        entry.validate().map_err(WriteLocalError::InvalidEntry)?;
        self.apply(context, vec![entry.clone()])?;
        Ok(entry)
    }
}

impl<S: Store + ?Sized> LocalWrites for S {}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail by panicking.
mod tests;
