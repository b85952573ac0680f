//! What one initiated session did ([`SessionRecord`], [`Outcome`], [`SessionError`])
//! and a peer's backoff state ([`PeerBackoff`]): the values the anti-entropy
//! scheduler produces and [`crate::metrics`] records. Both depend on this module;
//! it depends on neither.

use std::sync::Arc;
use std::time::Duration;

use synctree_primitives::{ContextId, ProtocolKind, TransportStats};

use crate::error::ManagerError;
use crate::report::SessionReport;

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Both roots were equal at the end (or from the start).
    Converged,
    /// The session completed but the roots differ: someone wrote meanwhile (the
    /// next round picks the writes up), or the tree protocol met a collision it
    /// cannot resolve (the next session with unchanged roots runs Snapshot). Not a
    /// success: the peer's backoff is kept, neither reset nor grown, and it is
    /// counted apart from successes and failures.
    Diverged,
    /// No connection could be made.
    ConnectFailed,
    /// The session ran past its deadline.
    DeadlineExceeded,
    /// The session failed (transport, protocol or store).
    Failed,
}

impl Outcome {
    /// The metric label: `converged`, `diverged`, `connect_failed`,
    /// `deadline_exceeded` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Converged => "converged",
            Outcome::Diverged => "diverged",
            Outcome::ConnectFailed => "connect_failed",
            Outcome::DeadlineExceeded => "deadline_exceeded",
            Outcome::Failed => "failed",
        }
    }

    /// Whether the session converged (and the peer's backoff resets).
    pub fn is_success(self) -> bool {
        self == Outcome::Converged
    }

    /// Whether the session ran to its end, converged or not.
    pub fn is_complete(self) -> bool {
        matches!(self, Outcome::Converged | Outcome::Diverged)
    }
}

/// Why an anti-entropy session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The connector could not reach the peer.
    #[error("connecting to {peer} for context `{context}` failed")]
    Connect {
        /// The peer.
        peer: String,
        /// The context the session was for.
        context: ContextId,
        /// The connector's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Connecting and syncing took longer than the session deadline.
    #[error("session with {peer} on context `{context}` passed its deadline of {deadline:?}")]
    Deadline {
        /// The peer.
        peer: String,
        /// The context.
        context: ContextId,
        /// The deadline.
        deadline: Duration,
    },
    /// The session itself failed.
    #[error("session with {peer} on context `{context}` failed")]
    Sync {
        /// The peer.
        peer: String,
        /// The context.
        context: ContextId,
        /// The manager's error.
        #[source]
        source: ManagerError,
    },
}

/// What one anti-entropy session did, whatever its outcome.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    /// The context synced.
    pub context: ContextId,
    /// The peer.
    pub peer: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The protocol that ran (`None`: roots matched, or the session failed
    /// before a protocol was picked).
    pub protocol: Option<ProtocolKind>,
    /// Round trips, the handshake included (0 when it failed).
    pub rounds: u32,
    /// What the transport moved, failed sessions included.
    pub transport: TransportStats,
    /// Entries received and merged.
    pub entries_pulled: u64,
    /// Entries sent.
    pub entries_pushed: u64,
    /// Entries received but refused: their version ran ahead of this node's clock.
    pub entries_refused_ahead: u64,
    /// Entries received but refused below the GC watermark.
    pub entries_refused_gc: u64,
    /// Local entries removed adopting the peer's state below its watermark.
    pub entries_adopted_away: u64,
    /// Time to connect.
    pub connect_time: Duration,
    /// Time from connected to done (handshake, protocol, close).
    pub sync_time: Duration,
    /// Why it failed.
    pub error: Option<Arc<SessionError>>,
}

impl SessionRecord {
    pub(crate) fn new(context: ContextId, peer: String) -> Self {
        SessionRecord {
            context,
            peer,
            outcome: Outcome::Failed,
            protocol: None,
            rounds: 0,
            transport: TransportStats::default(),
            entries_pulled: 0,
            entries_pushed: 0,
            entries_refused_ahead: 0,
            entries_refused_gc: 0,
            entries_adopted_away: 0,
            connect_time: Duration::ZERO,
            sync_time: Duration::ZERO,
            error: None,
        }
    }

    /// Connect time plus sync time.
    pub fn duration(&self) -> Duration {
        self.connect_time + self.sync_time
    }

    /// The protocol's metric label: its name, `none` when the roots matched, or
    /// `unknown` when the session failed before one was picked.
    pub fn protocol_label(&self) -> &'static str {
        match (self.protocol, self.outcome.is_complete()) {
            (Some(p), _) => p.name(),
            (None, true) => "none",
            (None, false) => "unknown",
        }
    }

    pub(crate) fn fail(mut self, outcome: Outcome, error: SessionError) -> Self {
        self.outcome = outcome;
        self.error = Some(Arc::new(error));
        self
    }

    pub(crate) fn succeed(mut self, report: &SessionReport) -> Self {
        self.outcome = if report.converged() {
            Outcome::Converged
        } else {
            Outcome::Diverged
        };
        self.protocol = report.selection.protocol;
        self.rounds = report.rounds();
        if let Some(stats) = &report.stats {
            self.entries_pulled = stats.entries_pulled;
            self.entries_pushed = stats.entries_pushed;
            self.entries_refused_ahead = stats.entries_refused_ahead;
            self.entries_refused_gc = stats.entries_refused_gc;
            self.entries_adopted_away = stats.entries_adopted_away;
        }
        self
    }
}

/// A peer's backoff state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerBackoff {
    /// Sessions with the peer that failed in a row (0 after a converged session;
    /// a diverged one leaves it as it was).
    pub failures: u32,
    /// How long the peer is left alone after its last failure (zero when healthy).
    pub delay: Duration,
}
