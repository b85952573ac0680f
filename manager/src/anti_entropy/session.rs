//! One anti-entropy session: connect, sync under a deadline, and record what
//! happened whatever the outcome.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use synctree_primitives::{ContextId, ProtocolKind, Store, SyncTransport, TransportStats};
use tokio::time::{Instant, timeout_at};

use super::Connector;
use crate::error::ManagerError;
use crate::manager::SyncManager;
use crate::report::SessionReport;
use crate::selection::ProtocolChoice;

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Both roots were equal at the end (or from the start).
    Converged,
    /// The session completed but the roots differ: someone wrote meanwhile, and
    /// the next round picks the writes up.
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

    /// Whether the session completed (and the peer's backoff resets).
    pub fn is_success(self) -> bool {
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
    /// Time to connect.
    pub connect_time: Duration,
    /// Time from connected to done (handshake, protocol, close).
    pub sync_time: Duration,
    /// Why it failed.
    pub error: Option<Arc<SessionError>>,
}

impl SessionRecord {
    fn new(context: ContextId, peer: String) -> Self {
        SessionRecord {
            context,
            peer,
            outcome: Outcome::Failed,
            protocol: None,
            rounds: 0,
            transport: TransportStats::default(),
            entries_pulled: 0,
            entries_pushed: 0,
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
        match (self.protocol, self.outcome.is_success()) {
            (Some(p), _) => p.name(),
            (None, true) => "none",
            (None, false) => "unknown",
        }
    }

    fn fail(mut self, outcome: Outcome, error: SessionError) -> Self {
        self.outcome = outcome;
        self.error = Some(Arc::new(error));
        self
    }

    fn succeed(mut self, report: &SessionReport) -> Self {
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
        }
        self
    }
}

/// Totals over a scheduler's sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AntiEntropyStats {
    /// Sessions started.
    pub attempted: u64,
    /// Sessions that completed.
    pub succeeded: u64,
    /// Sessions that failed (connect, deadline, transport, protocol, store).
    pub failed: u64,
    /// Round trips of completed sessions, handshakes included.
    pub rounds: u64,
    /// Bytes sent, failed sessions included.
    pub bytes_sent: u64,
    /// Bytes received, failed sessions included.
    pub bytes_received: u64,
    /// Entries pulled by completed sessions.
    pub entries_pulled: u64,
    /// Entries pushed by completed sessions.
    pub entries_pushed: u64,
}

impl AntiEntropyStats {
    fn record(&mut self, record: &SessionRecord) {
        if record.outcome.is_success() {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        self.rounds += u64::from(record.rounds);
        self.bytes_sent += record.transport.bytes_sent;
        self.bytes_received += record.transport.bytes_received;
        self.entries_pulled += record.entries_pulled;
        self.entries_pushed += record.entries_pushed;
    }
}

/// [`AntiEntropyStats`] shared between a scheduler and whoever watches it; it
/// outlives the scheduler (a simulated node keeps its totals across restarts).
#[derive(Clone, Debug, Default)]
pub struct SharedStats(Arc<Mutex<AntiEntropyStats>>);

impl SharedStats {
    /// The totals so far.
    pub fn snapshot(&self) -> AntiEntropyStats {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn started(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .attempted += 1;
    }

    pub(crate) fn finished(&self, record: &SessionRecord) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(record);
    }
}

/// Connects to `peer` and syncs `context`, all within `deadline`.
pub(crate) async fn run_session<S, C>(
    manager: Arc<SyncManager<S>>,
    connector: Arc<C>,
    context: ContextId,
    peer: String,
    deadline: Duration,
    choice: ProtocolChoice,
) -> SessionRecord
where
    S: Store + 'static,
    C: Connector,
{
    let started = Instant::now();
    let until = started + deadline;
    let record = SessionRecord::new(context.clone(), peer.clone());
    let late = |peer: String, context: ContextId| SessionError::Deadline {
        peer,
        context,
        deadline,
    };
    let mut transport = match timeout_at(until, connector.connect(&peer)).await {
        Ok(Ok(transport)) => transport,
        Ok(Err(e)) => {
            let error = SessionError::Connect {
                peer,
                context,
                source: Box::new(e),
            };
            return with_time(record, started, None).fail(Outcome::ConnectFailed, error);
        }
        Err(_) => {
            let record = with_time(record, started, None);
            return record.fail(Outcome::DeadlineExceeded, late(peer, context));
        }
    };
    let connected = Instant::now();
    let synced = timeout_at(until, manager.sync(&mut transport, &context, choice)).await;
    let mut record = with_time(record, started, Some(connected));
    record.transport = transport.stats();
    match synced {
        Ok(Ok(report)) => record.succeed(&report),
        Ok(Err(source)) => {
            let error = SessionError::Sync {
                peer,
                context,
                source,
            };
            record.fail(Outcome::Failed, error)
        }
        Err(_) => record.fail(Outcome::DeadlineExceeded, late(peer, context)),
    }
}

/// Fills in the phase timings: connect until `connected` (or until now when it
/// never connected), sync from then until now.
fn with_time(
    mut record: SessionRecord,
    started: Instant,
    connected: Option<Instant>,
) -> SessionRecord {
    let now = Instant::now();
    let connected_at = connected.unwrap_or(now);
    record.connect_time = connected_at - started;
    record.sync_time = now - connected_at;
    record
}
