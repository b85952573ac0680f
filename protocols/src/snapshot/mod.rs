//! Snapshot: a whole replica in one pass, for a node with no state in a context or
//! far behind.
//!
//! ```text
//!  initiator                                          responder
//!  Init{snapshot{root, window, compression,
//!       [resume_root, resume_after]}}     ──────────►  pin the current root
//!                                          ◄────────── SnapshotBegin{root, entry_count}
//!                                          ◄────────── SnapshotPage{seq 0, cursor, entries}
//!  stage, check                                         … up to `window` pages unacked;
//!  SnapshotAck{seq} every max(1, window/2) ──────────►  root re-checked around each page
//!                                          ◄────────── SnapshotPage{seq n, …, last}
//!  verify root, apply in one batch
//!  EntryPush{local entries it lacks}…      ──────────►  apply (merge)
//!  Finish{root}                            ──────────►
//!                                          ◄────────── FinishAck{root}
//! ```
//!
//! - **Pinning.** The responder pins its root when the session opens (a resumed
//!   session must find the root it pinned before) and checks before and after
//!   reading each page that its root is still the pinned one; if it moved, the
//!   session fails with [`ProtocolError::StateMoved`], sent as a `STATE_MOVED` abort.
//! - **Pages** hold entries in strictly increasing key-hash order above the previous
//!   cursor, at most
//!   [`MAX_SNAPSHOT_PAGE_BYTES`](synctree_primitives::limits::MAX_SNAPSHOT_PAGE_BYTES) of encoded entries and
//!   `MAX_ENTRIES_PER_BATCH` entries (an entry larger than a page travels alone);
//!   `cursor` is the last key hash; only the last page may be empty. With LZ4 the
//!   entries travel as an lz4 block of an encoded `EntryPush`, and `raw_len` is
//!   checked before decompressing.
//! - **Flow control.** The responder keeps at most `window` pages unacknowledged
//!   (acks are cumulative). The initiator acks after staging
//!   `max(1, window / 2)` pages since its previous ack, never the last page, and
//!   refuses a page beyond the window it granted.
//! - **Verification.** Received entries are staged in memory (never visible in the
//!   store) while a streaming builder computes their root. After the last page a
//!   root other than the pinned one is [`ProtocolError::VerificationFailed`] and
//!   nothing is applied; otherwise the snapshot goes through the merge rule in one
//!   [`Store::apply`], so a node with state keeps its newer versions.
//! - **Merge mode.** The initiator then knows the responder's whole pinned set and
//!   pushes every local entry the responder lacks or holds older, so both sides end
//!   with the merged set.
//! - **Resume.** Staging lives in a [`SnapshotProgress`] handle. A session cut off
//!   mid-stream leaves it holding every page that arrived; passing it to a new
//!   session resumes after the last staged key hash (at most the page cut in flight
//!   is sent again). A responder whose root moved answers `STATE_MOVED`, which clears
//!   the handle.

mod initiator;
mod page;
mod push;
mod responder;
mod staging;

pub use initiator::SnapshotInitiator;
pub use responder::SnapshotResponder;
pub use staging::SnapshotProgress;

use async_trait::async_trait;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    BATCH_BYTE_BUDGET, MAX_SNAPSHOT_PAGES, MAX_SNAPSHOT_PAGES_IN_FLIGHT, MAX_SNAPSHOT_STAGED_BYTES,
};
use synctree_primitives::wire::{AbortCode, Compression, SnapshotInit};
use synctree_primitives::{
    ContextId, Hash, Identity, ProtocolError, ProtocolKind, Role, Store, SyncError,
    SyncProtocolExecutor, SyncStats, SyncTransport,
};

use crate::{opening_root, run_machine, session};

/// The Snapshot protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot;

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
    /// Entry bytes staged before verification; at most (and by default)
    /// [`MAX_SNAPSHOT_STAGED_BYTES`]. Lower it on a node with less memory to spare.
    pub max_staged_bytes: usize,
    /// Pages one session accepts; at most (and by default) [`MAX_SNAPSHOT_PAGES`].
    pub max_pages: usize,
    /// Byte budget of one merge-mode push frame; at most [`BATCH_BYTE_BUDGET`].
    pub push_bytes: usize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            window: 4,
            compression: Compression::None,
            resume: None,
            max_staged_bytes: MAX_SNAPSHOT_STAGED_BYTES,
            max_pages: MAX_SNAPSHOT_PAGES,
            push_bytes: BATCH_BYTE_BUDGET,
        }
    }
}

impl SnapshotConfig {
    fn clamped(self) -> Self {
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

#[async_trait]
impl SyncProtocolExecutor for Snapshot {
    type Config = SnapshotConfig;
    type ResponderInit = SnapshotResponderInit;
    type Stats = SyncStats;

    const KIND: ProtocolKind = ProtocolKind::Snapshot;

    async fn run_initiator<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        config: SnapshotConfig,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let info = session(transport.peer(), context, Self::KIND, Role::Initiator);
        let root = opening_root(store, &info)?;
        tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, %root, "initiating snapshot");
        let machine = SnapshotInitiator::new(context.clone(), config, root);
        let progress = machine.progress().clone();
        run_machine(
            transport,
            store,
            &info,
            machine,
            SnapshotInitiator::into_stats,
        )
        .await
        .map_err(|e| state_moved_abort(e, &progress))
    }

    async fn run_responder<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        init: SnapshotResponderInit,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let info = session(transport.peer(), context, Self::KIND, Role::Responder);
        let root = opening_root(store, &info)?;
        tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, resume = init.resume_root.is_some(), "responding snapshot");
        let machine = SnapshotResponder::new(context.clone(), init, root);
        run_machine(
            transport,
            store,
            &info,
            machine,
            SnapshotResponder::into_stats,
        )
        .await
    }
}

/// Turns the responder's `STATE_MOVED` abort into the typed error, and clears the
/// handle: the pinned version can no longer be completed.
fn state_moved_abort(mut error: SyncError, progress: &SnapshotProgress) -> SyncError {
    if let SyncErrorKind::Protocol(ProtocolError::Aborted {
        code: AbortCode::StateMoved,
        ..
    }) = &error.kind
    {
        let pinned = progress.pinned_root().unwrap_or_default().to_hex();
        progress.clear();
        error.kind = ProtocolError::StateMoved { pinned }.into();
    }
    error
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
