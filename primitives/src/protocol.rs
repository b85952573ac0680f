//! The trait every sync protocol implements, and what a session reports.

use async_trait::async_trait;

use crate::entry::Entry;
use crate::error::{SyncError, SyncErrorKind};
use crate::ids::{ContextId, Hash, Identity};
use crate::store::Store;
use crate::transport::{SyncTransport, TransportStats};
use crate::wire::ProtocolKind;

/// Which end of a session a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opened the session.
    Initiator,
    /// Answered it.
    Responder,
}

impl Role {
    /// `initiator` or `responder`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Initiator => "initiator",
            Role::Responder => "responder",
        }
    }
}

/// What one session did, from one side's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStats {
    /// The protocol that ran.
    pub protocol: ProtocolKind,
    /// This side's role.
    pub role: Role,
    /// Request/response round trips on the critical path, the final one included.
    pub rounds: u32,
    /// What the transport moved during the session.
    pub transport: TransportStats,
    /// Entries received from the peer and merged locally.
    pub entries_pulled: u64,
    /// Entries sent to the peer.
    pub entries_pushed: u64,
    /// Entries received but not applied because their version ran more than
    /// [`MAX_CLOCK_SKEW_MS`](crate::hlc::MAX_CLOCK_SKEW_MS) ahead of this node's
    /// clock (counted in `entries_pulled` too).
    pub entries_refused_ahead: u64,
    /// Entries received but refused by the store's tombstone-GC rule: older than
    /// its watermark for a key it holds nothing for (counted in
    /// `entries_pulled` too; docs/PROTOCOL.md, "Tombstone GC").
    pub entries_refused_gc: u64,
    /// Local entries removed because a stale node adopted the peer's settled
    /// state (older than the peer's watermark, and the peer lacks them).
    pub entries_adopted_away: u64,
    /// Encoded size of every entry that crossed the wire, either way.
    pub payload_bytes: u64,
    /// Internal tree nodes whose children were compared.
    pub nodes_compared: u64,
    /// Leaf buckets whose entries were compared.
    pub leaves_compared: u64,
    /// Local root when the session started.
    pub root_before: Hash,
    /// Local root when the session ended.
    pub local_root: Hash,
    /// The peer's root when the session ended, as it reported it.
    pub remote_root: Hash,
}

impl SyncStats {
    /// Empty stats for a session about to start.
    pub fn new(protocol: ProtocolKind, role: Role, root_before: Hash) -> Self {
        SyncStats {
            protocol,
            role,
            rounds: 0,
            transport: TransportStats::default(),
            entries_pulled: 0,
            entries_pushed: 0,
            entries_refused_ahead: 0,
            entries_refused_gc: 0,
            entries_adopted_away: 0,
            payload_bytes: 0,
            nodes_compared: 0,
            leaves_compared: 0,
            root_before,
            local_root: root_before,
            remote_root: Hash::ZERO,
        }
    }

    /// Counts entries received from the peer.
    pub fn record_received(&mut self, entries: &[Entry]) {
        self.entries_pulled += entries.len() as u64;
        self.payload_bytes += entries.iter().map(|e| e.encoded_len() as u64).sum::<u64>();
    }

    /// Counts one entry sent to the peer; returns its encoded size for batching.
    pub fn record_sent(&mut self, entry: &Entry) -> usize {
        let len = entry.encoded_len();
        self.entries_pushed += 1;
        self.payload_bytes += len as u64;
        len
    }

    /// Both sides ended with the same root. False means someone wrote during the
    /// session: the next session picks the writes up.
    pub fn converged(&self) -> bool {
        self.local_root == self.remote_root
    }
}

/// Who a session is with and about: turns failures into [`SyncError`]s.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The peer's address or label.
    pub peer: String,
    /// The context being synced.
    pub context: ContextId,
    /// The protocol.
    pub protocol: ProtocolKind,
    /// This side's role.
    pub role: Role,
}

impl SessionInfo {
    /// A [`SyncError`] for a failure in `phase`.
    pub fn error(&self, phase: &'static str, kind: impl Into<SyncErrorKind>) -> SyncError {
        SyncError {
            peer: self.peer.clone(),
            context: self.context.clone(),
            protocol: self.protocol.name(),
            role: self.role.name(),
            phase,
            kind: kind.into(),
        }
    }
}

/// A sync protocol. The manager runs `run_responder` with what it extracted from the
/// first message of a stream; a caller runs `run_initiator` to open a session.
#[async_trait]
pub trait SyncProtocolExecutor {
    /// Initiator tunables.
    type Config: Send + Default;
    /// What the responder needs from the session's first message.
    type ResponderInit: Send;
    /// What a session reports.
    type Stats: Send;

    /// The protocol's wire identifier.
    const KIND: ProtocolKind;

    /// Opens a session on `transport` and runs it to the end.
    async fn run_initiator<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        config: Self::Config,
    ) -> Result<Self::Stats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized;

    /// Answers a session whose first message has already been read.
    async fn run_responder<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        init: Self::ResponderInit,
    ) -> Result<Self::Stats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized;
}
