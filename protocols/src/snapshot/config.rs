//! What a snapshot session is tuned by: the initiator's [`SnapshotConfig`] and what
//! the responder learns from the init payload ([`SnapshotResponderInit`]).

use synctree_primitives::limits::{
    BATCH_BYTE_BUDGET, MAX_SNAPSHOT_PAGES, MAX_SNAPSHOT_PAGES_IN_FLIGHT, MAX_SNAPSHOT_STAGED_BYTES,
};
use synctree_primitives::wire::{Compression, SnapshotInit};
use synctree_primitives::{Hash, ProtocolError};

use super::staging::SnapshotProgress;

/// Pages the responder may send ahead of acknowledgements by default: with an ack
/// every two pages the stream never waits on a round trip, while at most four pages
/// are buffered on the way.
pub const DEFAULT_SNAPSHOT_WINDOW: usize = 4;

/// Snapshot initiator tunables.
#[derive(Clone, Debug)]
pub struct SnapshotConfig {
    /// Pages the responder may send ahead of acknowledgements; clamped to
    /// `1..=MAX_SNAPSHOT_PAGES_IN_FLIGHT`.
    pub window: usize,
    /// Page encoding to ask for: one the responder announced in its handshake.
    pub compression: Compression,
    /// Where to stage, and what to resume: `None` stages into a fresh handle.
    pub resume: Option<SnapshotProgress>,
    /// Entry bytes one snapshot may carry before its root is verified; at most
    /// (and by default) [`MAX_SNAPSHOT_STAGED_BYTES`]. Pages are applied as they
    /// arrive, so this bounds unverified writes, not memory.
    pub max_staged_bytes: usize,
    /// Pages one session accepts; at most (and by default) [`MAX_SNAPSHOT_PAGES`].
    pub max_pages: usize,
    /// Byte budget of one merge-mode push frame; at most [`BATCH_BYTE_BUDGET`].
    pub push_bytes: usize,
    /// Key under which the progress is saved with
    /// [`Store::save_sync_state`](synctree_primitives::Store::save_sync_state) after
    /// every page (removed when the snapshot ends), so a restarted process resumes;
    /// `None` keeps it in `resume` only.
    pub persist_key: Option<String>,
    /// Adopt the responder's settled state below this GC watermark (an HLC
    /// value): a local entry older than it whose key the responder's snapshot
    /// lacks is removed instead of pushed, and the local watermark rises to it
    /// once the snapshot verifies. Set by the manager for a node that fell
    /// behind the peer's horizon (docs/PROTOCOL.md, "Tombstone GC"); `None`
    /// merges as usual.
    pub adopt_below: Option<u64>,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            window: DEFAULT_SNAPSHOT_WINDOW,
            compression: Compression::None,
            resume: None,
            max_staged_bytes: MAX_SNAPSHOT_STAGED_BYTES,
            max_pages: MAX_SNAPSHOT_PAGES,
            push_bytes: BATCH_BYTE_BUDGET,
            persist_key: None,
            adopt_below: None,
        }
    }
}

impl SnapshotConfig {
    /// Every tunable brought inside its limit.
    pub(crate) fn clamped(self) -> Self {
        SnapshotConfig {
            window: self.window.clamp(1, MAX_SNAPSHOT_PAGES_IN_FLIGHT),
            max_staged_bytes: self.max_staged_bytes.min(MAX_SNAPSHOT_STAGED_BYTES),
            max_pages: self.max_pages.min(MAX_SNAPSHOT_PAGES),
            push_bytes: self.push_bytes.clamp(1, BATCH_BYTE_BUDGET),
            ..self
        }
    }
}

/// What a Snapshot responder learns from the session's first message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotResponderInit {
    /// The initiator's root when it opened the session.
    pub initiator_root: Hash,
    /// Pages to send ahead of acknowledgements, `1..=MAX_SNAPSHOT_PAGES_IN_FLIGHT`.
    pub window: usize,
    /// Page encoding.
    pub compression: Compression,
    /// Resuming: the root the interrupted session pinned.
    pub resume_root: Option<Hash>,
    /// Resuming: continue above this key hash (only with `resume_root`; from the
    /// first key hash when `None`).
    pub resume_after: Option<Hash>,
}

impl TryFrom<&SnapshotInit> for SnapshotResponderInit {
    type Error = ProtocolError;

    fn try_from(init: &SnapshotInit) -> Result<Self, ProtocolError> {
        let window = usize::try_from(init.window).unwrap_or(usize::MAX);
        if window == 0 {
            return Err(ProtocolError::Malformed("snapshot window of zero pages"));
        }
        ProtocolError::check_limit("snapshot window", MAX_SNAPSHOT_PAGES_IN_FLIGHT, window)?;
        let compression = Compression::try_from(init.compression)
            .map_err(|_| ProtocolError::Malformed("unknown compression"))?;
        let resume_root = optional_hash(&init.resume_root, "resume_root")?;
        let resume_after = optional_hash(&init.resume_after, "resume_after")?;
        if resume_after.is_some() && resume_root.is_none() {
            return Err(ProtocolError::Malformed("resume_after without resume_root"));
        }
        Ok(SnapshotResponderInit {
            initiator_root: Hash::from_wire(&init.root, "root")?,
            window,
            compression,
            resume_root,
            resume_after,
        })
    }
}

/// An optional hash field: empty, or exactly 32 bytes.
fn optional_hash(bytes: &[u8], field: &'static str) -> Result<Option<Hash>, ProtocolError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Hash::from_wire(bytes, field)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(window: u32) -> SnapshotInit {
        SnapshotInit {
            root: vec![0; 32].into(),
            window,
            ..SnapshotInit::default()
        }
    }

    #[test]
    fn responder_init_checks_window_and_compression() {
        assert!(SnapshotResponderInit::try_from(&init(1)).is_ok());
        let max = MAX_SNAPSHOT_PAGES_IN_FLIGHT as u32;
        assert!(SnapshotResponderInit::try_from(&init(max)).is_ok());
        assert!(matches!(
            SnapshotResponderInit::try_from(&init(0)),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            SnapshotResponderInit::try_from(&init(max + 1)),
            Err(ProtocolError::LimitExceeded { .. })
        ));
        let mut bad = init(1);
        bad.compression = 9;
        assert!(SnapshotResponderInit::try_from(&bad).is_err());
    }

    #[test]
    fn responder_init_checks_resume_fields() {
        let mut resume = init(2);
        resume.resume_root = vec![1; 32].into();
        resume.resume_after = vec![2; 32].into();
        let parsed = SnapshotResponderInit::try_from(&resume).map(|i| i.resume_after);
        assert_eq!(parsed, Ok(Some(Hash([2; 32]))));
        let mut orphan = init(2);
        orphan.resume_after = vec![2; 32].into();
        assert!(SnapshotResponderInit::try_from(&orphan).is_err());
        let mut short = init(2);
        short.resume_root = vec![1; 31].into();
        assert!(matches!(
            SnapshotResponderInit::try_from(&short),
            Err(ProtocolError::BadLength { got: 31, .. })
        ));
    }

    #[test]
    fn config_is_clamped_to_the_limits() {
        let config = SnapshotConfig {
            window: 100,
            max_pages: usize::MAX,
            push_bytes: 0,
            ..SnapshotConfig::default()
        }
        .clamped();
        assert_eq!(config.window, MAX_SNAPSHOT_PAGES_IN_FLIGHT);
        assert_eq!(config.max_pages, MAX_SNAPSHOT_PAGES);
        assert_eq!(config.push_bytes, 1);
    }
}
